"""`dynamics = sde`: the SDE integrated by `diffrax.diffeqsolve`.

Time inside the solver is the step index s (t = s·dt): the drift and diffusion operators are
already scaled by dt and sqrt(dt), so every solve takes unit steps between integer times.
That keeps dt a traced number (changing it does not recompile) and makes record times exact.

The Brownian path costs one increment per step: `StepBrownianPath` draws the increment of
step s of the run from `fold_in(particle key, s)` (one hash; `diffrax.UnsafeBrownianPath`
hashes twice), with the space-time Lévy area beside it for the solvers that need one. A
trajectory therefore depends only on the particle and the step, not on how the run is cut
into chunks: a resumed run, or one with another `chunk`, draws what an uninterrupted run
draws. A `VirtualBrownianTree` would be ~40× slower here: it is for adaptive steps and
gradients through the solve, neither of which we use.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .. import ir
from ..diagnostics import GaugeError, error
from ..kinds import NOISES, SOLVERS
from .manifolds import Retraction
from .noise import AbstractNoise
from .plan import Plan


def solver_for(
    model: ir.Model, plan: Plan, noise: AbstractNoise, constraint: Retraction, keeper=None
) -> diffrax.AbstractSolver:
    """The solver the run block names (its `kinds/solvers.py` entry), if it fits the noise; a
    diagnostic otherwise: with θ-dependent noise only an Itô solver that needs neither additive nor
    commutative noise (euler) integrates our Itô SDEs correctly."""
    kind = SOLVERS[plan.solver]
    assert model.run is not None and model.noise is not None  # an SDE: the checker requires both (E508)
    span = model.run.span_of("solver")
    if not noise.additive:
        why = NOISES[model.noise.kind].state_dependence or f"{model.noise.kind} noise depends on θ"
        if getattr(noise, "cone_chart", False):
            why = "on a cone of the gauge slice the quotient's mobility depends on the state (through |a|)"
        if getattr(noise, "gl_chart", False):
            why = (
                "on the quotient of a GL factorization the mobility depends on the state (through W's singular values)"
            )
        msg = kind.refuses_state_dependent_noise(why)
        if msg is not None:
            raise GaugeError([error("E810", span, msg, "use solver = euler (Itô Euler–Maruyama)")])
    if kind.second_state and not constraint.trivial:
        raise GaugeError(
            [
                error(
                    "E810",
                    span,
                    f"solver = {kind.name} keeps a second state that a constrained (Positive) parameter's reflection would break",
                    "use solver = euler or heun",
                )
            ]
        )
    if plan.increments == "rademacher" and kind.levy_area:
        raise GaugeError(
            [
                error(
                    "E810",
                    model.run.span_of("increments"),
                    f"solver = {kind.name} needs the increments' space-time Lévy area, which Rademacher increments "
                    "do not have",
                    "use solver = euler or heun with increments = rademacher, or increments = gaussian",
                )
            ]
        )
    if plan.increments == "rademacher" and kind.name == "lm":
        raise GaugeError(
            [
                error(
                    "E810",
                    model.run.span_of("increments"),
                    "solver = lm's second-order stationary averages are derived and measured for Gaussian increments",
                    "use increments = gaussian with solver = lm, or solver = euler with increments = rademacher",
                )
            ]
        )
    inner = kind.build()
    wrapper = _ConstrainedIto if isinstance(inner, diffrax.AbstractItoSolver) else _ConstrainedStratonovich
    levy = diffrax.SpaceTimeLevyArea if kind.levy_area else diffrax.BrownianIncrement
    return wrapper(inner, constraint, keeper, levy)


class Constrained(diffrax.AbstractSolver):
    """Wraps a solver: after each step, maps the state back onto the manifolds (and keeps
    its dtype: some solvers promote a float32 state under 64-bit JAX), and under projected
    noise moves it along its orbit to the charges' deterministic value (`gauge.py`)."""

    solver: diffrax.AbstractSolver
    constraint: Retraction
    keeper: Callable | None = None  # (θ, θ', numbers) ↦ θ' moved along its orbit (gauge.py)
    levy_area: type = eqx.field(static=True, default=diffrax.BrownianIncrement)  # what its increments carry
    interpolation_cls: ClassVar[Callable] = diffrax.LocalLinearInterpolation

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y1, _, _, solver_state, result = self.solver.step(terms, t0, t1, y0, args, solver_state, made_jump)
        y1 = self.constraint.retract(y1).astype(y0.dtype)
        if self.keeper is not None:
            y1 = self.keeper(y0, y1, args)
        return y1, None, dict(y0=y0, y1=y1), solver_state, result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


class StepBrownianPath(diffrax.AbstractBrownianPath):
    """Brownian increments over the integer step grid, one `fold_in` of the particle's key
    per step: the increment over [s, s + h] of a chunk starting at step `offset` is
    `sqrt(h) · N(0, I)` drawn with `fold_in(key, offset + s)`; with
    `levy_area=diffrax.SpaceTimeLevyArea` that key is split into the increment's and the
    space-time Lévy area's (`sqrt(h/12) · N(0, I)`, as `diffrax.UnsafeBrownianPath` draws
    it). The same contract as `UnsafeBrownianPath` (no consistency between overlapping
    queries, no gradients) at half its hashing cost; the solve only ever asks for whole
    steps."""

    shape: jax.ShapeDtypeStruct = eqx.field(static=True)
    key: jax.Array
    offset: jax.Array
    levy_area: type = eqx.field(static=True, default=diffrax.BrownianIncrement)
    rademacher: bool = eqx.field(static=True, default=False)  # ±sqrt(h) per coordinate instead of N(0, h)

    @property
    def t0(self):
        return -jnp.inf

    @property
    def t1(self):
        return jnp.inf

    def evaluate(self, t0, t1=None, left=True, use_levy=False):
        del left
        if t1 is None:
            t0, t1 = jnp.zeros_like(t0), t0
        key = jax.random.fold_in(self.key, self.offset + jnp.round(t0).astype(jnp.int32))
        h = jnp.asarray(t1 - t0, self.shape.dtype)
        shape, dtype = self.shape.shape, self.shape.dtype
        if self.levy_area is diffrax.SpaceTimeLevyArea:
            key_w, key_h = jax.random.split(key)
            w = jax.random.normal(key_w, shape, dtype) * jnp.sqrt(h)
            if not use_levy:
                return w
            return diffrax.SpaceTimeLevyArea(dt=h, W=w, H=jax.random.normal(key_h, shape, dtype) * jnp.sqrt(h / 12))
        draw = jax.random.rademacher if self.rademacher else jax.random.normal
        w = draw(key, shape, dtype) * jnp.sqrt(h)
        return diffrax.BrownianIncrement(dt=h, W=w) if use_levy else w


class _ConstrainedIto(Constrained, diffrax.AbstractItoSolver):
    pass


class _ConstrainedStratonovich(Constrained, diffrax.AbstractStratonovichSolver):
    pass


class SDEChunk(eqx.Module):
    """One particle, one chunk: `(θ, key, start, n, numbers) ↦ (θ', records, 0)`.

    Integrates from step `start` to `start + n` (n ≤ `length`, the compiled chunk length),
    saving every record group at the chunk start and every `every` steps. (When a particle
    diverged is read off its records afterwards: a per-step finiteness probe cost 6%.)"""

    drift: Callable  # a Diffrax vector field (t, θ, numbers) ↦ ... (drift.py, quotient.py, cone.py)
    noise: AbstractNoise
    solver: diffrax.AbstractSolver
    groups: tuple[tuple[int, Callable], ...] = eqx.field(static=True)
    length: int = eqx.field(static=True)
    rademacher: bool = eqx.field(static=True, default=False)

    def __call__(self, theta, key, start, n, args):
        # Chunk-relative time in the state's dtype (Diffrax would promote a float32 state to a
        # float64 time); the increments depend only on (particle, step of the run).
        shape = jax.ShapeDtypeStruct(self.noise.shape, theta.dtype)
        levy = levy_area(self.solver)
        bm = StepBrownianPath(
            shape=shape, key=key, offset=jnp.asarray(start, jnp.int32), levy_area=levy, rademacher=self.rademacher
        )
        terms = diffrax.MultiTerm(diffrax.ODETerm(self.drift), diffrax.ControlTerm(self.noise, bm))
        subs = [diffrax.SubSaveAt(t0=True, steps=every, fn=_at(fn)) for every, fn in self.groups]
        subs.append(diffrax.SubSaveAt(t1=True))
        sol = diffrax.diffeqsolve(
            terms,
            self.solver,
            jnp.zeros((), theta.dtype),
            jnp.asarray(n, theta.dtype),
            jnp.ones((), theta.dtype),
            theta,
            args,
            saveat=diffrax.SaveAt(subs=subs),
            stepsize_controller=diffrax.ConstantStepSize(),
            adjoint=diffrax.ForwardMode(),
            max_steps=self.length,
            throw=False,
        )
        assert sol.ys is not None  # the SaveAt asks for values
        *records, last = sol.ys
        return last[0], tuple(records), jnp.zeros((), jnp.int32)


def _at(fn):
    return lambda t, y, args: fn(y)


def levy_area(solver) -> type:
    """What the Brownian increments of `solver_for`'s solver must carry (Diffrax's Lévy-area class)."""
    return solver.levy_area if isinstance(solver, Constrained) else diffrax.BrownianIncrement
