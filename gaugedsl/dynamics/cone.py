"""`dynamics = quotient` on slices with cones: balanced pairs of blocks (attention columns,
neurons) next to lines and free coordinates (docs/theory.md §9.1 (c), "pairs of blocks").

A pair's slice |θ_P| = |θ_N| (|P| = |N| = n, the generator traceless) is charted by
θ_P = a ∈ R^n and θ_N = |a| ω, ω ∈ S^{n−1}. Its induced metric is `(I + â âᵀ)` on a and
`|a|²` times the round metric on ω, `sqrt(det g) ∝ √2 |a|^(n−1)`, so Riemannian Langevin for
`exp(−L̃/T) × the cone measure` (L̃(a, ω) = L(φ(a, ω))) is, in Itô form,

    da = −(I − ½ â âᵀ) ∇_a L̃ dt + T (|N| − |P|)/(2|a|) â dt + sqrt(2T) (I − (1 − 1/√2) â âᵀ) dB_a
    dω = −(1/|a|²) grad_ω L̃ dt + (Brownian motion on S^{n−1} at rate T/|a|²),

with ∇_a L̃ = ∇_P L + â (ω·∇_N L) and grad_ω L̃ = |a| (I − ωωᵀ) ∇_N L (the Itô term on a
vanishes when |P| = |N|, the only case whose charges rest on the slice). ω is stepped in the
ambient R^n: tangent drift and noise, then ω/|ω| — the retraction `manifolds.py` uses for
`Sphere`, which supplies the sphere's own Itô drift −(n−1)(T/|a|²) ω dt. The noise depends
on the state, so only Itô Euler–Maruyama integrates it (`solve.solver_for`).

The state s is `SliceChart`'s layout (one entry per line or free component, then a and ω for
each pair; ω is its auxiliary z, kept of unit length); the runner's state stays θ = φ(s).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from ..geometry.chart import SliceChart
from ..kinds.manifolds import coordinates_where
from .noise import AbstractNoise

_SHRINK = float(
    1.0 - 1.0 / np.sqrt(2.0)
)  # a Python float, weakly typed (keeps float32 runs float32); (I − ½ââᵀ)^{1/2} = I − (1 − 1/√2) ââᵀ


class ConeChart:
    """θ ↔ (s, σ) on a slice with at least one pair; lines and free coordinates as
    `quotient.LineChart` (σ is +1 on pair coordinates)."""

    def __init__(self, chart: SliceChart):
        self.chart = chart
        self.dimension = chart.dimension
        positive = coordinates_where(chart.geo.model, chart.geo.layout, "absolute")
        coords, index, leads = [], [], []
        pairs = []
        for start, c in zip(chart.starts, chart.components):
            if c.kind == "pair":
                up, down = c.blocks()
                p, n = up.size, down.size
                pairs.append((np.asarray(up), np.asarray(down), start, start + p, p, n))
            else:
                coords.append(c.coords)
                index.append(np.full(c.coords.size, start))
                lead = c.coords[np.argmax(positive[c.coords])] if c.positive else c.coords[0]
                leads.append((start, lead))
        self.line_coord = np.concatenate(coords) if coords else np.zeros(0, np.int32)
        self.line_index = np.concatenate(index) if index else np.zeros(0, np.int32)
        self.line_entries = np.array([s for s, _ in leads], np.int32)
        self.line_lead = np.array([j for _, j in leads], np.int32)
        self.line_abs = positive[self.line_coord]  # `Positive` coordinates of lines are |s|
        self.pairs = tuple(pairs)
        self.metric = np.asarray(chart.metric)  # L_c on line entries, 1 (unused) on pair entries
        self.positive = np.asarray(chart.positive)
        self.sphere = np.zeros(self.dimension, bool)  # the ω entries
        for _, _, _, w, _, n in pairs:
            self.sphere[w : w + n] = True

    def split(self, theta):
        """(s, σ) of a point on the slice (ω = θ_N/|θ_N|)."""
        s = jnp.zeros(self.dimension, theta.dtype)
        sigma = jnp.ones_like(theta)
        if self.line_coord.size:
            lead_sign = jnp.ones(self.dimension, theta.dtype)
            lead_sign = lead_sign.at[self.line_entries].set(jnp.where(theta[self.line_lead] < 0, -1.0, 1.0))
            x = theta[self.line_coord]
            sigma = sigma.at[self.line_coord].set(jnp.where(x < 0, -1.0, 1.0) * lead_sign[self.line_index])
            square = jax.ops.segment_sum(x * x, self.line_index, num_segments=self.dimension)
            rms = jnp.sqrt(square / jnp.asarray(self.metric, theta.dtype))
            s = s.at[self.line_entries].set((lead_sign * rms)[self.line_entries])
        for up, down, a, w, p, n in self.pairs:
            z = theta[down]
            s = s.at[a : a + p].set(theta[up]).at[w : w + n].set(z / jnp.linalg.norm(z))
        return s, sigma.astype(theta.dtype)

    def embed(self, s, sigma):
        """θ = φ(s): θ_j = σ_j s_c on lines, θ_P = a and θ_N = |a| ω on pairs."""
        theta = jnp.zeros(sigma.shape, s.dtype)
        if self.line_coord.size:
            theta = theta.at[self.line_coord].set(self._line_signs(s, sigma) * s[self.line_index])
        for up, down, a, w, p, n in self.pairs:
            theta = theta.at[up].set(s[a : a + p]).at[down].set(jnp.linalg.norm(s[a : a + p]) * s[w : w + n])
        return theta

    def _line_signs(self, s, sigma):
        """dθ_j/ds_c on lines: σ_j, or sign(s_c) where θ_j = |s_c| is `Positive`."""
        on_line = s[self.line_index]
        signs = jnp.asarray(sigma, s.dtype)[self.line_coord]
        if self.line_abs.any():
            signs = jnp.where(self.line_abs, jnp.where(on_line < 0, -1.0, 1.0).astype(s.dtype), signs)
        return signs

    def gradient(self, s, v, sigma):
        """The chart's deterministic velocity −ds/dt at T = 0: g⁻¹ Dφᵀ v for a θ-gradient v
        (lines: Dφᵀv/L; a: (I − ½ââᵀ) ∇_a L̃; ω: (I − ωωᵀ) v_N / |a|)."""
        out = jnp.zeros(self.dimension, s.dtype)
        if self.line_coord.size:
            signed = self._line_signs(s, sigma) * v[self.line_coord]
            pulled = jax.ops.segment_sum(signed, self.line_index, num_segments=self.dimension)
            out = out + pulled / jnp.asarray(self.metric, s.dtype)
        for up, down, a, w, p, n in self.pairs:
            av, om = s[a : a + p], s[w : w + n]
            r = jnp.linalg.norm(av)
            hat = av / r
            ga = v[up] + hat * jnp.dot(om, v[down])  # ∇_a L̃
            out = out.at[a : a + p].set(ga - 0.5 * hat * jnp.dot(hat, ga))
            vn = v[down]
            out = out.at[w : w + n].set((vn - om * jnp.dot(om, vn)) / r)
        return out

    def ito(self, s, T):
        """The Itô drift T ∇·g⁻¹ − g⁻¹∇(T/2 log det g) on a: T(|N| − |P|)/(2|a|) â (0 when balanced)."""
        out = jnp.zeros(self.dimension, s.dtype)
        for _, _, a, _, p, n in self.pairs:
            if n != p:
                av = s[a : a + p]
                out = out.at[a : a + p].set(T * (n - p) / 2 * av / jnp.dot(av, av))
        return out


class ConeRetraction(eqx.Module):
    """After each step: ω → ω/|ω| on the pairs' spheres, `Positive` lines reflect at 0."""

    positive: tuple[bool, ...] = eqx.field(static=True)
    spheres: tuple[tuple[int, int], ...] = eqx.field(static=True)  # (start, size) of each ω

    @property
    def trivial(self) -> bool:
        return False

    @property
    def projects(self) -> bool:
        return True

    def tangent(self, s, v):
        for w, n in self.spheres:
            om, x = s[w : w + n], v[w : w + n]
            v = v.at[w : w + n].set(x - om * jnp.dot(om, x))
        return v

    def retract(self, s):
        if any(self.positive):
            s = jnp.where(jnp.asarray(self.positive), jnp.abs(s), s)
        for w, n in self.spheres:
            s = s.at[w : w + n].set(s[w : w + n] / jnp.linalg.norm(s[w : w + n]))
        return s


class ConeDrift(eqx.Module):
    """`dt · (−g⁻¹ Dφᵀ ∇_θ L(φ(s)) + Itô term)`; `args = (numbers, σ)`."""

    grad: Callable = eqx.field(static=True)  # θ ↦ ∇_θ L
    chart: ConeChart = eqx.field(static=True)

    def gradient(self, s, sigma):
        return self.chart.gradient(s, self.grad(self.chart.embed(s, sigma)), sigma)

    def __call__(self, t, s, args):
        numbers, sigma = args
        T = jnp.asarray(numbers["T"], s.dtype)
        return (numbers.dt * (self.chart.ito(s, T) - self.gradient(s, sigma))).astype(s.dtype)


class ConeNoise(AbstractNoise):
    """`sqrt(2T dt g⁻¹)` in the chart: diagonal sqrt(1/L) on lines, I − (1 − 1/√2) ââᵀ on a,
    (I − ωωᵀ)/|a| on ω. It depends on s: Itô Euler–Maruyama only."""

    constraint: ConeRetraction
    chart: ConeChart = eqx.field(static=True)

    cone_chart = True  # for E810's wording

    @property
    def shape(self):
        return (self.chart.dimension,)

    def operator(self, s, args):
        numbers = args[0] if isinstance(args, tuple) else args
        chart = self.chart
        scale = jnp.sqrt(2 * numbers["T"] * numbers.dt).astype(s.dtype)
        line = jnp.where(jnp.asarray(chart.sphere), 1.0, 1.0 / jnp.sqrt(jnp.asarray(chart.metric, s.dtype)))

        def mv(xi):
            out = line.astype(s.dtype) * xi
            for _, _, a, w, p, n in chart.pairs:
                av, om = s[a : a + p], s[w : w + n]
                r = jnp.linalg.norm(av)
                hat = av / r
                xa, xw = xi[a : a + p], xi[w : w + n]
                out = out.at[a : a + p].set(xa - _SHRINK * hat * jnp.dot(hat, xa))
                out = out.at[w : w + n].set((xw - om * jnp.dot(om, xw)) / r)
            return scale * out

        return lx.FunctionLinearOperator(mv, jax.ShapeDtypeStruct(self.shape, s.dtype))
