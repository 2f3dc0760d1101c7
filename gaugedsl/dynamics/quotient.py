"""`dynamics = quotient`: the projected-noise SDE with its charges at rest, integrated on the
gauge slice in slice coordinates (docs/theory.md §9.1).

With the charges at rest the projected-noise SDE stays on the slice Σ, where it is Riemannian
Langevin for the induced metric g = DφᵀDφ of a chart θ = φ(s):

    ds = (−g⁻¹ ∇_s L(φ(s)) + T ∇·g⁻¹) dt + sqrt(2T g⁻¹) dB        (Itô),

whose stationary law is `exp(−L/T) sqrt(det g) ds`, Gibbs times the slice's own volume (true for
the torus slices charted here, where H = TΣ; not for GL(r ≥ 2), whose O(r) fibres lie inside the
slice: docs/theory.md §9.1(d)). On a
slice made of lines (`geometry.chart.SliceChart`: θ_j = σ_j s_c on a product chain of L_c
coordinates) g is constant and diagonal, g_cc = L_c, so the Itô term vanishes and the noise is
additive:

    ds_c = −(1/L_c) ∂L/∂s_c dt + sqrt(2T/L_c) dB_c.

A depth-L product passes through the origin along its line (nothing happens at s = 0 in these
coordinates), so each particle keeps the sign pattern σ of its start (docs/theory.md §9.2). A
`Positive` coordinate is |s|: reflected at 0, as `manifolds.py` does for θ, while the rest of its
line goes on through the origin.

Slices with cones (balanced pairs of blocks: attention columns, equal fan-in/fan-out units) have
a non-constant metric; `line_chart` hands them to `cone.py`, which integrates them next to
their lines. One GL(r) factorization goes to `gl_quotient.py` (Langevin on the quotient, whose
steps keep θ and run in `solve.SDEChunk`).

The runner's state stays θ = φ(s) (N, D) — checkpoints, records, results and sharding are
those of the other dynamics; each chunk reads (s, σ) off θ and hands back φ(s).
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from .. import ir
from ..diagnostics import GaugeError, error
from ..geometry.chart import ChartUnavailable, SliceChart, TorusForm
from ..geometry.engine import Geometry
from ..geometry.gl_chart import GLChart, gl_chart_applies
from ..kinds.manifolds import coordinates_where
from .cone import ConeChart
from .gl_quotient import GLQuotientChart
from .noise import AbstractNoise
from .plan import Numbers
from .solve import StepBrownianPath, levy_area


class LineChart:
    """θ ↔ (s, σ) on a slice made of lines and free coordinates, jit- and vmap-able.

    - `index[j]`: the entry of s that coordinate j follows;
    - `lead[c]`: the coordinate whose sign s_c carries (a `Positive` one if any, as
      `SliceChart.signs` chooses), so σ_lead = +1;
    - `metric[c]` = L_c (g = DφᵀDφ, constant), `positive[c]`: s_c > 0 (never, for lines: a
      `Positive` coordinate j is |s_index[j]|, `absolute[j]`, and s itself is free).
    """

    def __init__(self, chart: SliceChart):
        self.chart = chart
        d = chart.geo.dimension
        self.dimension = chart.dimension
        self.index = np.zeros(d, np.int32)
        self.lead = np.zeros(chart.dimension, np.int32)
        positive = coordinates_where(chart.geo.model, chart.geo.layout, "absolute")
        for start, c in zip(chart.starts, chart.components):
            self.index[c.coords] = start
            self.lead[start] = c.coords[np.argmax(positive[c.coords])] if c.positive else c.coords[0]
        self.metric = np.asarray(chart.metric)
        self.positive = np.asarray(chart.positive)
        self.absolute = positive
        if not positive.any():
            self.absolute = None
        # The common layout — L blocks of the same m lines, one per factor (u then v; U[L, n]) —
        # needs no gather or scatter: θ = σ ⊙ tile(s, L), Dφᵀv = Σ over the L blocks.
        m = self.dimension
        tiled = m and d % m == 0 and np.array_equal(self.index, np.tile(np.arange(m), d // m))
        self.blocks = d // m if tiled and self.absolute is None else None

    def split(self, theta):
        """(s, σ) of a point on the slice: s_c the signed root mean square of its line (exact
        on the slice; the symmetric choice of `SliceChart.coordinates` off it by rounding)."""
        lead_sign = jnp.where(theta[self.lead] < 0, -1.0, 1.0).astype(theta.dtype)
        sigma = jnp.where(theta < 0, -1.0, 1.0).astype(theta.dtype) * lead_sign[self.index]
        square = jax.ops.segment_sum(theta * theta, self.index, num_segments=self.dimension)
        return lead_sign * jnp.sqrt(square / self.metric.astype(theta.dtype)), sigma

    def embed(self, s, sigma):
        """θ = φ(s): θ_j = σ_j s_index[j], or |s_index[j]| for a `Positive` coordinate."""
        if self.blocks is not None:
            return sigma * jnp.tile(s, self.blocks)
        if self.absolute is not None:
            return jnp.where(self.absolute, jnp.abs(s[self.index]), sigma * s[self.index])
        return sigma * s[self.index]

    def pull_back(self, v, sigma, s=None):
        """Dφᵀ v: a θ-gradient as the s-gradient, Σ_{j on line c} σ_j v_j (sign(s_c) v_j for a
        `Positive` coordinate, which is |s_c|)."""
        if self.blocks is not None:
            return jnp.sum((sigma * v).reshape(self.blocks, self.dimension), axis=0)
        if self.absolute is not None:
            assert s is not None, "pull_back needs the state s where a coordinate is Positive"
            sigma = jnp.where(self.absolute, jnp.where(s[self.index] < 0, -1.0, 1.0).astype(v.dtype), sigma)
        return jax.ops.segment_sum(sigma * v, self.index, num_segments=self.dimension)


def line_chart(model: ir.Model, geo: Geometry) -> "LineChart | ConeChart | GLQuotientChart":
    """The chart `dynamics = quotient` integrates on — lines (`LineChart`), lines and cones
    (`cone.ConeChart`), or the quotient of one GL(r) factorization (`gl_quotient`) — or E812
    with the reason there is none."""
    assert model.run is not None  # dynamics = quotient is a run block's setting
    span = model.run.span_of("dynamics")
    if gl_chart_applies(geo):
        return _gl_chart(model, geo, span)

    def refuse(why: str, hint: str):
        raise GaugeError(
            [error("E812", span, f"dynamics = quotient needs a chart of the gauge slice (lines or cones): {why}", hint)]
        )

    sde = "use dynamics = sde, which integrates the projected-noise SDE in θ"
    form = TorusForm.detect(geo)
    if form is not None and form.exponents.size and set(np.unique(form.exponents)) <= {-1.0, 0.0, 1.0}:
        # Exponents ±1: the charges follow dχ_a/dt = T(tr A_a − 2χ_a/G_aa) (docs/dynamics.md, the
        # charge keeper), at rest on the slice only when tr A_a = 0. (Other exponents rest
        # elsewhere or not at all; the chart below has no lines for them either.)
        traces = form.exponents.sum(axis=1)
        if np.any(traces != 0):
            a = int(np.argmax(np.abs(traces)))
            refuse(
                f"generator {a} of the symmetries scales {int((form.exponents[a] > 0).sum())} coordinates up and "
                f"{int((form.exponents[a] < 0).sum())} down (not traceless), so projected noise moves its charge "
                "even on the slice, dχ/dt = T·tr A ≠ 0 at χ = 0: there is no rest point on the slice",
                sde + " (its charges drift to tr A·G/2, as docs/dynamics.md explains)",
            )
    try:
        chart = SliceChart(geo)
    except ChartUnavailable as exc:
        refuse(str(exc), sde)
    if not chart.all_lines:  # balanced pairs of blocks: cones (cone.py)
        return ConeChart(chart)
    return LineChart(chart)


def _gl_chart(model: ir.Model, geo: Geometry, span) -> GLQuotientChart:
    """The quotient chart of a GL(r) factorization (gl_quotient.py), or E812 with the reason."""

    def refuse(why: str):
        hint = "use dynamics = sde, which integrates the projected-noise SDE in θ"
        raise GaugeError(
            [
                error(
                    "E812",
                    span,
                    f"dynamics = quotient needs a chart of the quotient of the GL factorization: {why}",
                    hint,
                )
            ]
        )

    try:
        chart = GLChart(geo)
    except ChartUnavailable as exc:
        if "square factors" in str(exc):  # the sampler's reason is NUTS'; the dynamics' is the chart's
            refuse("square factors (m = n = r): W's rank drops on the hypersurface det W = 0, which the paths cross "
                   "and where the balanced factors and every chart of the quotient are singular (the law's density "
                   "∝ |det W|^(−1/2))")  # fmt: skip
        refuse(str(exc))
    for p in model.params:
        if p.manifold.kind != "R":  # free parameters get g = I: no reflection or retraction here
            refuse(
                f"parameter '{p.name}' lives on {p.manifold.kind}; the GL quotient dynamics is built for R parameters only"
            )
    return GLQuotientChart(chart)


class Reflection(eqx.Module):
    """The slice coordinates' own constraint: `Positive` lines reflect at 0, s → |s|
    (what `manifolds.Constraint` does for θ), the others are free."""

    positive: tuple[bool, ...] = eqx.field(static=True)

    @property
    def trivial(self) -> bool:
        return not any(self.positive)

    @property
    def projects(self) -> bool:
        return False

    def tangent(self, s, v):
        return v

    def retract(self, s):
        if self.trivial:
            return s
        return jnp.where(jnp.asarray(self.positive), jnp.abs(s), s)


class QuotientDrift(eqx.Module):
    """`−dt · g⁻¹ ∇_s L(φ(s))` (one step's worth; time in steps, as in `drift.py`);
    `args = (numbers, σ)`."""

    grad: Callable = eqx.field(static=True)  # θ ↦ ∇_θ L
    chart: LineChart = eqx.field(static=True)

    def gradient(self, s, sigma):
        """g⁻¹ ∇_s L(φ(s))."""
        g = self.chart.pull_back(self.grad(self.chart.embed(s, sigma)), sigma, s)
        return g / jnp.asarray(self.chart.metric, s.dtype)

    def __call__(self, t, s, args):
        numbers, sigma = args
        return (-numbers.dt * self.gradient(s, sigma)).astype(s.dtype)


class QuotientNoise(AbstractNoise):
    """`sqrt(2T dt g⁻¹)`, diagonal and independent of s: additive noise, so every solver of
    `solve.py` integrates it (Itô and Stratonovich agree)."""

    constraint: Reflection
    metric: tuple[float, ...] = eqx.field(static=True)

    @property
    def shape(self):
        return (len(self.metric),)

    @property
    def additive(self) -> bool:
        return True

    def operator(self, s, args):
        numbers = args[0] if isinstance(args, tuple) else args
        scale = jnp.sqrt(2 * numbers["T"] * numbers.dt / jnp.asarray(self.metric, s.dtype)).astype(s.dtype)
        return lx.DiagonalLinearOperator(scale)


class QuotientChunk(eqx.Module):
    """One particle, one chunk, on the slice: `(θ, key, start, n, numbers) ↦ (θ', records, 0)`,
    with the contract of `solve.SDEChunk` (records evaluated on θ = φ(s))."""

    drift: Callable  # QuotientDrift or cone.ConeDrift: a Diffrax vector field
    noise: AbstractNoise  # QuotientNoise or cone.ConeNoise
    solver: diffrax.AbstractSolver
    chart: LineChart | ConeChart = eqx.field(static=True)
    groups: tuple = eqx.field(static=True)
    length: int = eqx.field(static=True)
    rademacher: bool = eqx.field(static=True, default=False)

    def __call__(self, theta, key, start, n, numbers: Numbers):
        s, sigma = self.chart.split(theta)
        shape = jax.ShapeDtypeStruct(self.noise.shape, theta.dtype)
        levy = levy_area(self.solver)
        bm = StepBrownianPath(
            shape=shape, key=key, offset=jnp.asarray(start, jnp.int32), levy_area=levy, rademacher=self.rademacher
        )
        terms = diffrax.MultiTerm(diffrax.ODETerm(self.drift), diffrax.ControlTerm(self.noise, bm))
        embed = self.chart.embed
        subs = [diffrax.SubSaveAt(t0=True, steps=every, fn=_on_slice(fn, embed)) for every, fn in self.groups]
        subs.append(diffrax.SubSaveAt(t1=True))
        sol = diffrax.diffeqsolve(
            terms,
            self.solver,
            jnp.zeros((), theta.dtype),
            jnp.asarray(n, theta.dtype),
            jnp.ones((), theta.dtype),
            s,
            (numbers, sigma),
            saveat=diffrax.SaveAt(subs=subs),
            stepsize_controller=diffrax.ConstantStepSize(),
            adjoint=diffrax.ForwardMode(),
            max_steps=self.length,
            throw=False,
        )
        assert sol.ys is not None  # the SaveAt asks for values
        *records, last = sol.ys
        return embed(last[0], sigma).astype(theta.dtype), tuple(records), jnp.zeros((), jnp.int32)


def _on_slice(fn, embed):
    """A record group evaluated on θ = φ(s) (σ travels in the solver's args)."""
    return lambda t, s, args: fn(embed(s, args[1]))
