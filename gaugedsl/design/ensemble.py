"""Seeds of a gradient-descent model in one vmapped program, each with its own data.

`gaugedsl run` simulates particles that share one dataset. The inverse-design experiments
(docs/theory.md §5 E4, E5) ask how a model does over several draws of the *data* as well, so
member s of an `Ensemble` gets:

- its data: every seeded random draw of the data block with its seed hashed with s (member 0
  keeps the file's seeds), and unseeded draws made with data seed s;
- its initial point: the initializers drawn with the key `gaugedsl run` gives particle s.

The loss, its gradient and the records are the dynamics' own (`gaugedsl.dynamics.objective`,
`.records`) built on a lowering whose data are the member's, so all members run under one
`jit` and one `vmap`. Only plain full-batch gradient descent (`dynamics = gd`, no added noise)
is driven here, the setting of the paper's inverse-design experiments.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import ir
from .._jax_config import x64_enabled
from ..diagnostics import GaugeError, error
from ..dynamics.objective import Objective
from ..dynamics.records import Recorder
from ..geometry import Geometry
from ..kinds import NOISES
from ..lowering import Lowered, stable_id
from ._lowered import structure

RANDOM = ("normal", "uniform", "bernoulli", "sparse", "orthonormal")

# XLA options that cut compile time: LLVM's expensive passes do not speed up these loops
# (measured on E4/E5), and a program that runs once (the data) needs no optimization.
# (jax.stages.CompilerOptions declares str | bool values; XLA takes the integer level too.)
_FAST_COMPILE: dict[str, Any] = {"xla_llvm_disable_expensive_passes": True}
_RUN_ONCE: dict[str, Any] = {**_FAST_COMPILE, "xla_backend_optimization_level": 0}


def member_seed(seed: int, member: int) -> int:
    """The seed member `member` uses where the file says `seed`."""
    return seed if member == 0 else stable_id(f"{seed}/{member}")


def seeded_sites(model: ir.Model) -> list[int]:
    """The seeds of the data block's seeded random draws, in a fixed order (`reseed`'s)."""
    found: list[int] = []
    _walk_data(model, lambda seed: found.append(seed) or seed)
    return found


def reseed(model: ir.Model, seeds) -> ir.Model:
    """The model with its data's seeded draws given the seeds `seeds` (one per site of
    `seeded_sites`, in order). The seeds may be traced integers: the lowering turns a
    seed into `PRNGKey(seed)`, so every member's data come out of one compiled program."""
    it = iter(seeds)
    return _walk_data(model, lambda seed: next(it))


def _walk_data(model: ir.Model, new_seed) -> ir.Model:
    def seeded(e):  # `transform` reaches inner draws first: a fixed order
        if isinstance(e, ir.Call) and e.func in RANDOM and e.option("seed") is not None:
            return dataclasses.replace(e, static=tuple((k, new_seed(v) if k == "seed" else v) for k, v in e.static))
        return e

    return dataclasses.replace(
        model, data=tuple(dataclasses.replace(d, value=ir.transform(d.value, seeded)) for d in model.data)
    )


# Data made for ensembles in this process, keyed by the data block without source positions
# (an unseeded draw's key comes from its site, which the key holds) and the member count.
_DATA: dict = {}


def _data_key(model: ir.Model):
    return tuple((d.name, d.shape, _expr_key(d.value)) for d in model.data)


def _expr_key(e):
    if isinstance(e, tuple):
        return tuple(_expr_key(x) for x in e)
    if not dataclasses.is_dataclass(e):
        return repr(e)
    return (type(e).__name__, *(_expr_key(getattr(e, f.name)) for f in dataclasses.fields(e) if f.name != "span"))


@dataclasses.dataclass
class EnsembleResult:
    """`records[label]`: (R, S, ...) at `steps[label]`; `theta`: final (S, D); `finite`:
    which members stayed finite; `wall`: seconds of simulation, `setup`: seconds to make the
    data and compile."""

    model: ir.Model
    seeds: int
    total_steps: int
    records: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    theta: np.ndarray
    finite: np.ndarray
    wall: float
    setup: float

    def final(self, label: str) -> np.ndarray:
        return self.records[label][-1]


class Ensemble:
    """**Arguments:** `model` (checked, `dynamics = gd`), `seeds` (members), `steps`
    (override of the run length), `unroll` (GD steps per loop iteration of the compiled
    program: fewer loop overheads)."""

    def __init__(self, model: ir.Model, seeds: int = 5, steps: int | None = None, unroll: int = 5):
        start = time.perf_counter()
        run = model.run
        if run is None or run.get("dynamics", "sde" if model.noise is not None else "gd") != "gd":
            raise GaugeError(
                [
                    error(
                        "E610",
                        run.span if run is not None else model.loss.span if model.loss is not None else None,
                        f"model '{model.name}' is not a gradient-descent run; the design ensemble drives dynamics = gd",
                        "use `gaugedsl run` for sde and sgd dynamics",
                    )
                ]
            )
        if model.noise is not None and NOISES[model.noise.kind].discrete is not None:
            raise GaugeError(
                [
                    error(
                        "E610",
                        model.noise.span,
                        f"the design ensemble runs plain gradient descent; {model.noise.kind} noise would be added to it",
                        "remove the noise model, or use `gaugedsl run`",
                    )
                ]
            )
        self.model, self.seeds = model, seeds
        self._run = run
        self.lr = run.get("lr") or (model.noise.get("lr") if model.noise is not None else None)
        self.steps = steps or run.get("steps", 1000)
        self.dtype = jnp.float64 if run.get("dtype", "float32") == "float64" else jnp.float32
        if self.dtype == jnp.float64 and not x64_enabled():
            raise GaugeError(
                [
                    error(
                        "E610",
                        run.span_of("dtype"),
                        "dtype = float64 needs JAX's 64-bit mode",
                        'in Python: jax.config.update("jax_enable_x64", True) first; or set JAX_ENABLE_X64=1 (`gaugedsl design --compare` switches it on by itself)',
                    )
                ]
            )
        self.records = run.records
        everys = [r.every for r in self.records] or [self.steps]
        self.unit = math.gcd(*everys)
        self.unroll = max(1, min(unroll, self.unit))
        self.template = structure(model)
        # JAX draws other numbers in 64-bit mode: the run's dtype decides, not the caller's
        # mode, so that seed s is the same experiment everywhere (float32: as `gaugedsl run`).
        with jax.enable_x64(self.dtype == jnp.float64):
            self.data, self.theta0 = self._prepare()
        self._chunk = jax.jit(jax.vmap(self._member_chunk, in_axes=(0, 0, None, None)), static_argnums=3)
        self._compiled: dict[int, Callable] = {}
        self.setup = time.perf_counter() - start

    def _prepare(self):
        """Every member's data and initial point, each from one compiled program (eagerly,
        each random draw of a new shape would compile a program of its own). Models with the
        same data block (a designed model and its source) share the data."""
        sites = seeded_sites(self.model)
        table = np.array([[member_seed(x, s) for x in sites] for s in range(self.seeds)], dtype=np.int64).reshape(
            self.seeds, len(sites)
        )
        members = (jnp.asarray(table.astype(np.int32)), jnp.asarray(np.arange(self.seeds, dtype=np.int32)))
        key = (_data_key(self.model), self.seeds, np.dtype(self.dtype).name, x64_enabled())
        data = _DATA.get(key)
        if data is None:

            def make(seeds, s):
                lowered = Lowered(reseed(self.model, [seeds[i] for i in range(len(sites))]), seed=s)
                return {k: v.astype(self.dtype) for k, v in lowered.data.items()}

            data = _DATA[key] = jax.jit(jax.vmap(make)).lower(*members).compile(_RUN_ONCE)(*members)

        def init(data, s):
            # The key `gaugedsl run` gives particle s (dynamics.ensemble.Simulation.keys).
            k_init, _ = jax.random.split(jax.random.PRNGKey(self._run.get("seed", 0)))
            lowered = copy.copy(self.template)
            lowered.data = data
            return lowered.layout.flatten(lowered.init_params(jax.random.fold_in(k_init, s))).astype(self.dtype)

        theta0 = jax.jit(jax.vmap(init)).lower(data, members[1]).compile(_RUN_ONCE)(data, members[1])
        return data, theta0

    def compile(self) -> None:
        """Compile the programs `run` will use."""
        for blocks in sorted(set(self._chunks())):
            self.compiled(blocks)

    def _chunks(self) -> list[int]:
        """Record blocks per chunk: about ten chunks (progress lines), all of one size when
        the run divides evenly."""
        total = self.steps // self.unit
        per = max(1, -(-total // 10))
        return [min(per, total - done) for done in range(0, total, per)]

    def compiled(self, blocks: int) -> Callable:
        """The program for a chunk of `blocks` record blocks, compiled ahead of time (so that
        the simulation's wall time does not include compiling)."""
        if blocks not in self._compiled:
            t0 = time.perf_counter()
            start = jax.ShapeDtypeStruct((), jnp.int32)
            with jax.enable_x64(self.dtype == jnp.float64):  # as the data: the run's dtype decides
                self._compiled[blocks] = self._chunk.lower(self.theta0, self.data, start, blocks).compile(_FAST_COMPILE)
            self.setup += time.perf_counter() - t0
        return self._compiled[blocks]

    def _pieces(self, data) -> tuple[Objective, Callable[[int], Callable]]:
        lowered = copy.copy(self.template)
        lowered.data = data
        objective = Objective(lowered, self.dtype)
        recorder = Recorder(lowered, self.records, objective.loss, Geometry(lowered).hooks(), self.dtype)
        return objective, recorder.group

    def _member_chunk(self, theta, data, start, blocks: int):
        objective, group = self._pieces(data)
        lr = jnp.asarray(self.lr, self.dtype)
        groups = [(r.every, group(i)) for i, r in enumerate(self.records)]

        def step(th, _):
            return th - lr * objective.grad(th), None

        def block(th, b):
            th, _ = jax.lax.scan(step, th, None, length=self.unit, unroll=self.unroll)
            done = start + (b + 1) * self.unit
            outs = []
            for every, fn in groups:
                shape = jax.eval_shape(fn, th)
                zeros = lambda shape=shape: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape)  # noqa: E731
                outs.append(jax.lax.cond(done % every == 0, lambda fn=fn: fn(th), zeros))
            return th, tuple(outs)

        first = tuple(fn(theta) for _, fn in groups)  # the records at the chunk's start
        theta, outs = jax.lax.scan(block, theta, jnp.arange(blocks))
        return theta, first, outs

    def run(self, progress=None) -> EnsembleResult:
        """Simulate every member; `progress` (a text stream) gets a line per chunk."""
        if self.steps % self.unit:
            raise GaugeError(
                [
                    error(
                        "E610",
                        self._run.span,
                        f"steps = {self.steps} is not a multiple of the record intervals' common divisor {self.unit}",
                        f"use steps = {self.steps // self.unit * self.unit or self.unit}",
                    )
                ]
            )
        labels = [[i.label for i in r.items] for r in self.records]
        kept: dict[str, list] = {lab: [] for group in labels for lab in group}
        theta, done = self.theta0, 0
        wall = 0.0
        for blocks in self._chunks():
            program = self.compiled(blocks)
            t0 = time.perf_counter()
            theta, first, outs = program(theta, self.data, np.int32(done * self.unit))
            theta = jax.block_until_ready(theta)
            wall += time.perf_counter() - t0
            if done == 0:
                for group, values in zip(labels, first):
                    for lab in group:
                        kept[lab].append(np.asarray(values[lab])[None])
            steps_done = (done + np.arange(1, blocks + 1)) * self.unit
            for r, group, values in zip(self.records, labels, outs):
                rows = steps_done % r.every == 0
                for lab in group:
                    kept[lab].append(np.moveaxis(np.asarray(values[lab]), 1, 0)[rows])
            done += blocks
            if progress is not None:
                print(f"  {self.model.name}: step {done * self.unit:,} of {self.steps:,}", file=progress, flush=True)
        records = {lab: np.concatenate(v) for lab, v in kept.items()}
        steps = {lab: np.arange(0, self.steps + 1, r.every) for r, group in zip(self.records, labels) for lab in group}
        theta = np.asarray(theta)
        return EnsembleResult(
            self.model,
            self.seeds,
            self.steps,
            records,
            steps,
            theta,
            np.all(np.isfinite(theta), axis=1),
            wall,
            self.setup,
        )
