"""An ensemble of particles: the whole chunk of a run under one `jit`, particles `vmap`ped,
and the Python loop over chunks where progress, checkpoints and divergence checks go."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from typing import TYPE_CHECKING, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import ir
from .._jax_config import x64_enabled
from .._threefry import straight_line_threefry
from ..diagnostics import Diagnostic, GaugeError, error, warning
from ..geometry.checks import initial_not_finite
from ..kinds import MANIFOLDS, NOISES
from ..kinds.manifolds import coordinates_where
from ..lowering import Lowered
from . import _geometry, branches, cone, gl_quotient, quotient
from .devices import ParticleSharding
from .discrete import DiscreteChunk, steps_ahead
from .drift import Drift
from .manifolds import Constraint
from .objective import Objective, cast_data
from .plan import Numbers, Plan, numbers, resolve
from .records import Recorder
from .solve import SDEChunk, solver_for

if TYPE_CHECKING:
    from .sweep import Sweep


@dataclasses.dataclass
class State:
    """Where a run stands: every particle's θ (N, D), its key, the steps done, the records
    so far (label → list of host arrays (R, N, ...)) and the first non-finite step of each
    particle (−1: healthy)."""

    theta: np.ndarray
    keys: np.ndarray
    step: int
    records: dict[str, list[np.ndarray]]
    diverged_at: np.ndarray
    theta0: np.ndarray | None = None


@dataclasses.dataclass
class Result:
    """A finished run. `records[label]` has shape (R, N, *shape) at the steps
    `record_steps[label]`; `healthy` marks the particles that stayed finite."""

    plan: Plan
    numbers: dict[str, float]
    records: dict[str, np.ndarray]
    record_steps: dict[str, np.ndarray]
    theta: np.ndarray
    theta0: np.ndarray | None  # None: continued from a state that did not keep its start
    healthy: np.ndarray
    diverged_at: np.ndarray
    wall_time: float
    diagnostics: list[Diagnostic]

    def times(self, label: str) -> np.ndarray:
        """Record times in the run's time unit (t = step·dt, or step·lr for sgd/gd)."""
        return self.record_steps[label] * self.numbers["dt"]


# The data, the stream sample and the initial points are drawn in one-off programs, which
# compile several times faster with the straight-line hash (E2: 1.1 s less); the same numbers.
_one_off = straight_line_threefry


class Simulation:
    """A model's run block, ready to run.

    **Arguments:**

    - `model`: the checked IR (`gaugedsl.check.check_file`).
    - `particles`, `steps`, `seed`, `chunk`, `dtype`: overrides of the run block.
    - `max_traces`: if given, the compiled chunk function asserts it is traced at most this
      many times (`equinox.debug.assert_max_traces`).
    - `sweep`: a `gaugedsl.dynamics.sweep.Sweep`: its points run side by side in the one
      compiled program, `particles` each (sweep.py); `sweep.split` cuts the result per point.

    `run()` simulates; `numbers(T=...)` makes the numeric settings, which can change
    between runs without recompiling, as can the seed.
    """

    def __init__(
        self,
        model: ir.Model,
        *,
        particles=None,
        steps=None,
        seed=None,
        chunk=None,
        dtype=None,
        max_traces: int | None = None,
        sweep: Sweep | None = None,
    ):
        self.model = model
        plan = resolve(model, particles=particles, steps=steps, seed=seed, chunk=chunk, dtype=dtype)
        self.sweep = sweep
        self.per_point = plan.particles  # a sweep's points each have the run block's particles
        if sweep is not None:
            plan = dataclasses.replace(plan, particles=plan.particles * sweep.size)
        self.plan = plan
        if plan.dtype == "float64" and not x64_enabled():
            raise GaugeError(
                [
                    error(
                        "E805",
                        self._run.span_of("dtype"),
                        "dtype = float64 needs JAX's 64-bit mode",
                        'in Python: jax.config.update("jax_enable_x64", True) before loading; or set JAX_ENABLE_X64=1 (`gaugedsl run` switches it on by itself)',
                    )
                ]
            )
        self.dtype = jnp.float64 if plan.dtype == "float64" else jnp.float32
        with _one_off():
            self.lowered = Lowered(model, seed=0)
            cast_data(self.lowered, self.dtype)
            self.layout = self.lowered.layout
            self.geo = _geometry.geometry(self.lowered)
            self.constraint = Constraint(model, self.layout)
            self.objective = Objective(self.lowered, self.dtype)
            self.recorder = Recorder(self.lowered, plan.records, self.objective.loss, self.geo.hooks(), self.dtype)
        groups = tuple((r.every, self.recorder.group(i)) for i, r in enumerate(plan.records))
        self.noise_kind = NOISES[model.noise.kind] if model.noise is not None else None
        self.noise = self._noise()
        self._lowering = contextlib.nullcontext
        self.chains = None
        self.quotient = None
        self._quotient_drift: quotient.QuotientDrift | cone.ConeDrift | gl_quotient.GLQuotientDrift | None = None
        rademacher = plan.increments == "rademacher"
        if plan.dynamics == "quotient":
            # The projected-noise SDE on the slice's lines (quotient.py): no charges to keep.
            self.quotient = chart = quotient.line_chart(model, self.geo)
            positive = tuple(bool(p) for p in chart.positive)
            if isinstance(chart, gl_quotient.GLQuotientChart):  # GL(r): a chart centred at each step, state θ
                balance = gl_quotient.GLBalance(chart)
                self.noise = gl_quotient.GLQuotientNoise(balance, chart)
                solver = solver_for(model, plan, self.noise, balance)
                drift = gl_quotient.GLQuotientDrift(self.objective.grad, chart)
                self.particle_chunk = SDEChunk(drift, self.noise, solver, groups, plan.segment, rademacher)
            elif isinstance(chart, cone.ConeChart):  # lines and cones (cone.py): ω on spheres
                spheres = tuple((w, n) for _, _, _, w, _, n in chart.pairs)
                self.noise = cone.ConeNoise(cone.ConeRetraction(positive, spheres), chart)
                solver = solver_for(model, plan, self.noise, self.noise.constraint)
                drift = cone.ConeDrift(self.objective.grad, chart)
            else:
                reflection = quotient.Reflection(positive)
                self.noise = quotient.QuotientNoise(reflection, tuple(float(m) for m in chart.metric))
                solver = solver_for(model, plan, self.noise, reflection)
                drift = quotient.QuotientDrift(self.objective.grad, chart)
            self._quotient_drift = drift
            if not isinstance(chart, gl_quotient.GLQuotientChart):
                self.particle_chunk = quotient.QuotientChunk(
                    drift, self.noise, solver, chart, groups, plan.segment, rademacher
                )
        elif plan.dynamics == "sde":
            # The SDE's charges follow an ODE that Euler–Maruyama only matches on average; the
            # keeper integrates it (gauge.py). The discrete maps are run as written: their own
            # charge change (P2, c' = c(1 − lr²g²)) is the point of simulating them.
            horizontal = self.noise_kind is not None and self.noise_kind.horizontal
            keeper = _geometry.charge_keeper(self.geo) if horizontal else None
            # What the exact projected SDE keeps and a step may still break near a degenerate
            # orbit: the relative signs along balanced chains (branches.py, W802).
            action = _geometry.torus_action(self.geo) if horizontal else None
            positive = coordinates_where(model, self.geo.layout, "absolute")
            self.chains = None if action is None else branches.chains(action, positive)
            assert self.noise is not None  # dynamics = sde has a noise model (the checker's E508)
            solver = solver_for(model, plan, self.noise, self.constraint, keeper)
            drift = Drift(self.objective.grad, self.constraint)
            self.particle_chunk = SDEChunk(drift, self.noise, solver, groups, plan.segment, rademacher)
        else:
            discrete = self.noise_kind.discrete if self.noise_kind is not None else None
            kick = self.noise if discrete == "kick" else None
            if kick is None:  # see gaugedsl/_threefry.py for why not with a kick
                self._lowering = straight_line_threefry
            batch = plan.batch if plan.dynamics == "sgd" else None
            self.particle_chunk = DiscreteChunk(
                self.objective, self.constraint, kick, discrete == "labels", batch, groups, plan.chunk, plan.unit,
                steps_ahead(self.objective, batch, plan.unit, plan.particles),
            )  # fmt: skip
        chunk_fn = _ensemble(self.particle_chunk, batched_numbers=True)
        if max_traces is not None:
            chunk_fn = eqx.debug.assert_max_traces(chunk_fn, max_traces=max_traces)
        self._chunk = eqx.filter_jit(chunk_fn)
        self.sharding = ParticleSharding(plan.particles)
        self._placed: tuple[Numbers, Numbers] | None = None  # the numbers last put per particle on the devices
        self._init = eqx.filter_jit(self._initial_points)
        self.notes: list[Diagnostic] = []
        if plan.dynamics == "gd" and discrete is None and model.noise is not None:
            self.notes.append(
                warning(
                    "W801",
                    model.noise.span,
                    f"dynamics = gd takes full batches: the {model.noise.kind} noise model is not used",
                    "use dynamics = sgd for the minibatch map, or dynamics = sde for its diffusion limit",
                )
            )

    @property
    def _run(self) -> ir.Run:
        """The model's run block (the plan's `resolve` refuses a model without one)."""
        assert self.model.run is not None
        return self.model.run

    # ---- construction ----

    def _noise(self):
        if self.model.noise is None:
            return None
        kind = NOISES[self.model.noise.kind]
        if kind.per_sample and not self.objective.per_sample:
            raise GaugeError(
                [
                    error(
                        "E509",
                        self.model.noise.span,
                        f"{kind.name} noise needs a per-sample loss",
                        "write the loss as `loss per (x, t) in (X, y) = ...`",
                    )
                ]
            )
        return kind.diffusion(self)

    def numbers(self, **overrides) -> Numbers:
        """The numeric settings (`dt`, the noise model's settings, `lr` of a discrete map) with
        overrides; in a sweep, one value per particle: its point's."""
        if self.sweep is None:
            return numbers(self.model, self.plan, self.dtype, **overrides)
        try:
            each = [numbers(self.model, self.plan, self.dtype, **{**overrides, **p}) for p in self._point_settings()]
        except GaugeError as exc:  # a setting the run does not read: point at the run block's sweep, if it is its
            run = self._run
            if run.sweep_span is None or not any(name in dict(run.sweep) for name in self.sweep.names):
                raise
            raise GaugeError([dataclasses.replace(d, span=run.sweep_span) for d in exc.diagnostics]) from None
        return jax.tree.map(lambda *leaves: jnp.repeat(jnp.stack(leaves), self.per_point), *each)

    def point_numbers(self, numbers: Numbers) -> list[dict[str, float]]:
        """The numeric settings of each sweep point (one point outside a sweep), as
        `Result.numbers` has them."""
        if self.sweep is None:
            return [numbers.as_dict()]
        return [jax.tree.map(lambda x, i=i: x[i * self.per_point], numbers).as_dict() for i in range(self.sweep.size)]

    def _point_settings(self) -> list[dict[str, float]]:
        assert self.sweep is not None
        return [{k: v for k, v in p.items() if k != "seed"} for p in self.sweep.points()]

    # ---- initial points ----

    def keys(self, seed: int):
        """Per-particle keys (init, noise): particle i's streams do not depend on N. In a sweep,
        each point's particles have the keys of a lone run with the point's seed (`seed` where
        the sweep has no seed axis)."""
        if self.sweep is None:
            return _particle_keys(jnp.asarray(seed, jnp.uint32), self.plan.particles)
        parts = [
            _particle_keys(jnp.asarray(p.get("seed", seed), jnp.uint32), self.per_point) for p in self.sweep.points()
        ]
        return tuple(jnp.concatenate([part[i] for part in parts]) for i in range(2))

    def _initial_points(self, init_keys):
        def one(k):
            theta = self.layout.flatten(self.lowered.init_params(k)).astype(self.dtype)
            if self.plan.start == "slice" or self.quotient is not None:
                theta = self.geo.project_to_slice(theta)
            return theta

        return jax.vmap(one)(init_keys)

    @_one_off()
    def initial_state(self, seed: int | None = None) -> State:
        seed = self.plan.seed if seed is None else seed
        init_keys, noise_keys = self.keys(seed)
        theta = np.asarray(self._init(init_keys))
        self._check_initial(theta)
        return State(
            theta,
            np.asarray(noise_keys),
            0,
            {label: [] for label in self.recorder.labels},
            np.full(self.plan.particles, -1, np.int64),
            theta.copy(),
        )

    def _check_initial(self, theta):
        if not np.all(np.isfinite(theta)):
            bad = [p for p in self.model.params if not np.all(np.isfinite(theta[:, self.layout.slice_of(p.name)]))]
            raise GaugeError([initial_not_finite(p) for p in bad or self.model.params[:1]])
        tol = 1e-4 if self.dtype == jnp.float32 else 1e-8
        bad = []
        for p in self.model.params:
            block = self.constraint.block_of(self.layout.slice_of(p.name).start)
            if block is None:
                continue
            off = float(
                np.max(jax.vmap(lambda t, block=block: self.constraint.block_violation(block, t))(jnp.asarray(theta)))
            )
            if off > tol:
                hint = MANIFOLDS[p.manifold.kind].init_hint
                bad.append(
                    error(
                        "E807",
                        p.span,
                        f"the initial value of '{p.name}' is not on {p.manifold.kind} (off by {off:.3g})",
                        hint,
                    )
                )
        if bad:
            raise GaugeError(bad)

    # ---- running ----

    def advance(self, state: State, numbers: Numbers, n: int):
        """Runs one chunk of n ≤ `plan.chunk` steps; returns the new θ, the records of the
        chunk (label → (R, N, ...)) and the first non-finite step per particle. An SDE chunk
        runs as calls of the one compiled `plan.segment`-step program (see `Plan.segment`)."""
        segment = self.plan.segment
        if n <= segment:
            return self._advance(state.theta, state.keys, state.step, numbers, n)
        theta, step, parts = state.theta, state.step, []
        bad = np.full(state.theta.shape[0], -1)
        while step < state.step + n:
            m = min(segment, state.step + n - step)
            theta, out, now = self._advance(theta, state.keys, step, numbers, m)
            parts.append(out)
            bad = np.where(bad >= 0, bad, now)  # the first call that saw a particle go
            step += m
        records = {label: np.concatenate([p[label] for p in parts]) for label in parts[0]}
        return theta, records, bad

    def _advance(self, theta, keys, step: int, numbers: Numbers, n: int):
        put, take = self.sharding.put, self.sharding.take
        with self._lowering():  # applies when the chunk is compiled, on the first call
            theta, records, bad = self._chunk(
                put(theta),
                put(keys),
                jnp.asarray(step, jnp.int32),
                jnp.asarray(n, jnp.int32),
                self._per_particle(numbers),
            )
        theta = take(theta)
        first = 0 if step == 0 else 1
        out = {}
        for (every, _), group in zip(((r.every, None) for r in self.plan.records), records):
            count = 1 + n // every
            for label, values in group.items():
                out[label] = np.moveaxis(take(values)[:, first:count], 1, 0)
        bad = take(bad)
        if self.plan.dynamics in ("sde", "quotient"):
            bad = self._first_bad(step, n, theta, out)
        return theta, out, bad

    def _per_particle(self, numbers: Numbers) -> Numbers:
        """`numbers` with one value per particle, on the devices: put once per run, not per segment."""
        if self._placed is None or self._placed[0] is not numbers:
            put = self.sharding.put
            each = jax.tree.map(lambda x: put(np.broadcast_to(np.asarray(x), (self.plan.particles,))), numbers)
            self._placed = (numbers, each)
        return self._placed[1]

    def state_at(self, theta, seed: int | None = None) -> State:
        """A fresh state starting every particle at `theta` (D,) or `theta` (N, D)."""
        state = self.initial_state(seed)
        state.theta = np.broadcast_to(np.asarray(theta, state.theta.dtype), state.theta.shape).copy()
        if self.quotient is not None:  # the quotient dynamics lives on the slice
            state.theta = np.asarray(jax.vmap(self.geo.project_to_slice)(jnp.asarray(state.theta)))
        state.theta0 = state.theta.copy()
        self._check_initial(state.theta)
        return state

    def _first_bad(self, start: int, n: int, theta, records) -> np.ndarray:
        """Where each particle of an SDE chunk stopped being finite (−1: it did not): the first
        record at which all its recorded values are non-finite, if it ended non-finite (a
        record can be non-finite on its own, e.g. log 0); else the chunk's end."""
        ended_bad = ~np.all(np.isfinite(theta), axis=1)
        bad = np.where(ended_bad, start + n, -1)
        for rec in self.plan.records:
            labels = [i.label for i in rec.items]
            if not labels:
                continue
            rows = records[labels[0]].shape[0]
            gone = np.ones((rows, theta.shape[0]), bool)
            for label in labels:
                v = records[label].reshape(rows, theta.shape[0], -1)
                gone &= ~np.isfinite(v).any(axis=2)
            offset = 0 if start == 0 else 1  # the chunk's own first record was dropped unless at step 0
            steps = start + (np.arange(rows) + offset) * rec.every
            first = np.where(gone.any(axis=0), steps[np.argmax(gone, axis=0)], start + n)
            bad = np.where(ended_bad, np.minimum(bad, first), bad)
        return bad

    def run(
        self,
        numbers: Numbers | None = None,
        *,
        seed: int | None = None,
        steps: int | None = None,
        state: State | None = None,
        on_chunk: Callable[[State], None] | None = None,
        stop_after: int | None = None,
    ) -> Result:
        """Simulates the whole run (or continues `state`); `steps` overrides the run length
        (no recompilation). `on_chunk(state)` is called after every chunk (progress bars,
        checkpoints); `stop_after` stops after that many chunks (to test interruption).
        Raises `GaugeError` when every particle diverges."""
        numbers = self.numbers() if numbers is None else numbers
        state = self.initial_state(seed) if state is None else state
        theta0 = state.theta0 if state.theta0 is not None else (state.theta.copy() if state.step == 0 else None)
        plan = self.plan
        total = plan.steps if steps is None else steps
        start = time.perf_counter()
        chunks = 0
        while state.step < total and (stop_after is None or chunks < stop_after):
            n = min(plan.chunk, total - state.step)
            theta, recs, bad = self.advance(state, numbers, n)
            for label, values in recs.items():
                state.records[label].append(values)
            newly = (state.diverged_at < 0) & (bad >= 0)
            state.diverged_at = np.where(newly, bad, state.diverged_at)
            state.theta, state.step = theta, state.step + n
            chunks += 1
            if on_chunk is not None:
                on_chunk(state)
            if np.all(state.diverged_at >= 0):
                raise GaugeError([self.divergence(state.diverged_at, float(np.max(numbers.dt)), everyone=True)])
        wall = time.perf_counter() - start
        records = {k: (np.concatenate(v) if v else np.zeros((0, plan.particles))) for k, v in state.records.items()}
        record_steps = {label: self._record_steps(label, state.step) for label in records}
        healthy = state.diverged_at < 0
        diags = list(self.notes)
        if not healthy.all():
            diags.append(self.divergence(state.diverged_at, float(np.max(numbers.dt))))  # a sweep's largest dt
        if self.chains is not None and theta0 is not None:
            diags.extend(self._branch_check(self.chains, theta0, state.theta, healthy, numbers))
        plan = plan if seed is None else dataclasses.replace(plan, seed=seed)  # what this run used
        # a sweep's numbers differ by particle: its points' own are in their results (sweep.split)
        values = self.point_numbers(numbers)[0]
        return Result(plan, values, records, record_steps, state.theta, theta0, healthy, state.diverged_at, wall, diags)

    def _record_steps(self, label: str, done: int) -> np.ndarray:
        every = self.recorder.every(label)
        return np.arange(0, done + 1, every)

    def divergence(self, diverged_at: np.ndarray, dt: float, everyone: bool = False) -> Diagnostic:
        """E811 (`everyone`) or W811 for the particles of `diverged_at` (the step each diverged at,
        −1 for none; a run's or one sweep point's) that ran with step `dt` (the lr of a discrete map)."""
        bad = diverged_at[diverged_at >= 0]
        n, N = bad.size, diverged_at.size
        first, median = int(bad.min()), int(np.median(bad))
        setting = "dt" if self.plan.dynamics in ("sde", "quotient") else "lr"
        value = dt
        limit = self.stability_limit()
        hint = f"reduce {setting} (now {value:g})"
        if limit is not None:
            if setting == "dt":
                hint += f"; the drift's stability limit at the start is about 2/λ_max = {limit:.3g}"
            else:
                hint += f"; gradient steps are stable at the start for lr below 2/λ_max ≈ {limit:.3g}"
        span = (
            self._run.span_of(setting)
            if self._run.get(setting) is not None
            else (self.model.noise.span if self.model.noise is not None and setting == "lr" else self._run.span)
        )
        what = f"all {N} particles diverged" if everyone else f"{n} of {N} particles diverged"
        msg = f"{what} (θ became infinite or NaN; the first at step {first}, half of them by step {median})"
        if everyone:
            return error("E811", span, msg, hint)
        return warning(
            "W811", span, msg + "; their records are NaN from then on and the statistics use the other particles", hint
        )

    def _branch_check(self, chains: branches.Chains, theta0, theta, healthy, numbers: Numbers) -> list[Diagnostic]:
        """W802 where particles left their sign branch through a degenerate orbit."""
        tol = 1e-4 if self.dtype == jnp.float32 else 1e-8  # balanced at the start, to rounding
        left = branches.left_branch(chains, np.asarray(theta0), np.asarray(theta), tol) & healthy
        if not left.any():
            return []
        n, N = int(left.sum()), int(healthy.sum())
        span = self._run.span_of("dt") if self._run.get("dt") is not None else self._run.span
        msg = f"{n} of {N} particles left their sign branch through a degenerate orbit (a discretization artefact)"
        msg += " — reduce dt"
        hint = (
            f"reduce dt (now {float(np.max(numbers.dt)):g}): the exact dynamics crosses a degenerate orbit along its line, "
            "keeping the relative signs that a balanced start ties together"
        )
        if self.dtype == jnp.float32:  # the charges are kept to rounding, a large imbalance near the origin
            hint = (
                "use dtype = float64: in float32 the charges are kept only to rounding, which near a degenerate "
                "orbit is a large relative imbalance; or " + hint
            )
        return [warning("W802", span, msg, hint)]

    def stability_limit(self, theta=None) -> float | None:
        """2/λ_max of the loss Hessian at the first particle's start (power iteration):
        gradient steps longer than this blow up. (For `quotient`, of the drift's Jacobian in
        the slice coordinates, g⁻¹DφᵀHDφ.)"""
        try:
            if theta is None:
                theta = np.asarray(self._init(self.keys(self.plan.seed)[0][:1]))[0]
            else:
                theta = np.asarray(theta)[0]
            theta = jnp.asarray(theta)
            grad = self.objective.grad
            drift = self._quotient_drift
            if self.quotient is not None and drift is not None:  # the drift g⁻¹∇_s L(φ(s)) of the slice coordinates
                theta = self.geo.project_to_slice(theta)
                s, sigma = self.quotient.split(theta)
                theta, grad = s, (lambda s: drift.gradient(s, sigma))
            hvp = jax.jit(lambda v: jax.jvp(grad, (theta,), (v,))[1])
            v = jax.random.normal(jax.random.PRNGKey(0), theta.shape, theta.dtype)
            lam = 0.0
            for _ in range(50):
                w = hvp(v / jnp.linalg.norm(v))
                lam = float(jnp.linalg.norm(w))
                v = w
            return 2.0 / lam if lam > 0 and np.isfinite(lam) else None
        except Exception:  # noqa: BLE001 — a hint only
            return None


@functools.partial(jax.jit, static_argnums=1)
def _particle_keys(seed, particles: int):
    k_init, k_noise = jax.random.split(jax.random.PRNGKey(seed))
    ids = jnp.arange(particles)
    per = jax.vmap(jax.random.fold_in, in_axes=(None, 0))
    return per(k_init, ids), per(k_noise, ids)


def _ensemble(particle_chunk, batched_numbers: bool = False) -> Callable:
    """The compiled unit: every particle's chunk, vmapped; settings and keys as arguments (the
    settings one per particle in a sweep)."""
    axes = (0, 0, None, None, 0 if batched_numbers else None)

    def chunk(theta, keys, start, n, numbers):
        return jax.vmap(particle_chunk, in_axes=axes)(theta, keys, start, n, numbers)

    return chunk
