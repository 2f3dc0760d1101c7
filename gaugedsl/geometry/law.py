"""The predicted stationary law of a scalar predictor (docs/theory.md §2.2, P5/P6).

Under gradient-aligned (projected) noise the dynamics settles on the gauge slice, where the
predictor w has the density `p(w) ∝ exp(−L(w)/T) · det G(θ*(w))^{-1/2}`. When the slice is a
curve (parameter dimension minus symmetry dimension is 1), we follow it by integrating the
unit horizontal field from a balanced point in both directions (horizontal curves through
the orthogonality slice stay on it, since ∇χ_a = ξ_a), and do the quadrature in its arclength
s — the good coordinate: the density in s is smooth even where p(w) has an integrable
singularity (|w|^{-(L−1)/L} for depth L).

**Degenerate orbits** (docs/theory.md §9, item 2). Where the orbit degenerates (G singular,
e.g. the origin of a depth-L product) the horizontal field is undefined, but the slice goes
on: for a torus action it is a union of lines through the origin, and the exact SDE passes
through the origin along its line. The walk therefore crosses such a point on a straight
continuation of its tangent, exactly where the slice is a line, and resumes on the other
side. It ends instead where the far side adds nothing or is not reachable:
- w turns back (dw/ds changes sign): for an even-depth product w(−s) = w(s), so the far side
  repeats the near side's law of w;
- a `Positive` coordinate would leave its orthant, for an action that does not simply rescale
  coordinates. For a torus action the walk goes on instead, in the unfolded coordinates where a
  `Positive` coordinate t_j is read as |t_j| — the dynamics reflects that coordinate while the
  others of its line go on (docs/theory.md §9.2) — so w = u·v with u on `Positive` covers both
  signs, and a chain whose other factors are even in number turns back (w retraces its values);
- the loss there is already `cutoff` temperatures above its minimum (negligible mass).
An odd-depth product thus covers both signs of w (P6), whatever the precision: a crossing
no longer depends on whether a step happens to land within rounding of the origin.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..kinds.manifolds import coordinates_where
from .chart import TorusForm
from .engine import Geometry

_CHUNK = 2000  # RK4 steps per compiled walk
_CROSS = 64  # straight steps tried across a degenerate point
_MAX_CROSSINGS = 16
_REFINE = _CROSS  # the edge of a branch is located to ds/_REFINE
_ALIGNED = 0.999  # |cos| between the horizontal line and the straight continuation: on the slice


class LawUnavailable(Exception):
    """Why no prediction applies (stated to the user as a note)."""


@dataclasses.dataclass(frozen=True)
class PredictedLaw:
    predictor: str
    T: float
    w: np.ndarray  # predictor values along the slice, increasing
    density: np.ndarray  # p(w) on that grid (normalised in w)
    s: np.ndarray  # arclength grid
    weights_s: np.ndarray  # density in s (normalised)
    mean: float
    std: float
    gibbs_mean: float  # E[w] under exp(−L/T) alone on the same curve, for contrast
    cdf_values: np.ndarray | None = None  # P(W ≤ w) on the grid `w`, integrated in s
    # w at each point of the grid `s` (before sorting by w); not compared or shown, as before it was a field
    w_along_s: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def moment(self, f) -> float:
        return float(np.trapezoid(f(self.w_of_s) * self.weights_s, self.s))

    @property
    def w_of_s(self) -> np.ndarray:
        if self.w_along_s is None:
            raise AttributeError("this law was built without w along s")
        return self.w_along_s

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if self.cdf_values is not None:
            return np.interp(x, self.w, self.cdf_values)
        c = np.concatenate([[0.0], np.cumsum(0.5 * (self.density[1:] + self.density[:-1]) * np.diff(self.w))])
        return np.interp(x, self.w, c / c[-1])


def predicted_law(
    geo: Geometry, T: float, theta0=None, step: float | None = None, max_steps: int = 200_000, cutoff: float = 40.0
) -> PredictedLaw:
    model = geo.model
    scalar = [p for p in model.predictors if p.shape == ()]
    if len(scalar) != 1 or len(model.predictors) != 1:
        raise LawUnavailable("the predicted law is computed for models with one scalar predictor")
    if geo.dimension - geo.algebra_dim != 1:
        raise LawUnavailable(
            f"the gauge slice has dimension {geo.dimension - geo.algebra_dim}; the quadrature handles a curve (dimension 1)"
        )
    name = scalar[0].name
    lowered, layout = geo.lowered, geo.layout
    if theta0 is None:
        theta0 = layout.flatten(lowered.init_params(jax.random.PRNGKey(0)))
    theta0 = geo.project_to_slice(jnp.asarray(theta0))
    positive = coordinates_where(model, layout, "absolute")

    # A rescaling commutes with the reflection t_j → |t_j| (generators at the unfolded point are those at the
    # folded one, mirrored), so the walk may run unfolded through a `Positive` coordinate's 0.
    unfold = bool(positive.any()) and TorusForm.detect(geo) is not None
    folded = jnp.asarray(positive) if unfold else None

    def fold(t):
        return t if folded is None else jnp.where(folded, jnp.abs(t), t)

    def loss(t):
        return lowered.loss(layout.unflatten(fold(t)))

    def pred(t):
        return lowered.predictors(layout.unflatten(fold(t)))[name]

    def logdet(t):
        return sum(geo.logdet_gram(n, fold(t)) for n in geo.symmetries)

    def probe(t, h):
        """What the quadrature needs where the curve passes t with unit tangent h: the loss, w,
        log det G and dw/ds (exact, where a finite difference would not resolve the
        vanishing slope at a degenerate point)."""
        return loss(t), pred(t), logdet(t), jax.jvp(pred, (t,), (h,))[1]

    def direction(t, previous):
        xi = geo.generators(t)
        _, _, vt = jnp.linalg.svd(xi, full_matrices=True)
        h = vt[-1]
        return jnp.where(jnp.dot(h, previous) < 0, -h, h)

    scale = float(jnp.linalg.norm(theta0))
    ds = step or max(scale, 1e-3) * 2e-4

    @jax.jit
    def walk(t, k1, prev, sign):
        def rk4(carry, _):
            t, k1, prev = carry
            k2 = direction(t + 0.5 * ds * sign * k1, k1)
            k3 = direction(t + 0.5 * ds * sign * k2, k2)
            k4 = direction(t + ds * sign * k3, k3)
            t_new = t + ds * sign * (k1 + 2 * k2 + 2 * k3 + k4) / 6
            k1_new = direction(t_new, k4)
            # Where the orbit degenerates the horizontal direction jumps.
            turn = jnp.min(jnp.array([jnp.dot(k1, prev), jnp.dot(k4, k1)]))
            return (t_new, k1_new, k4), (t_new, k1_new, turn) + probe(t_new, k1_new)

        return jax.lax.scan(rk4, (t, k1, prev), None, length=_CHUNK)

    @jax.jit
    def straight(p, d, sign, h):
        """The straight continuation p + j·h·d (j = 1…_CROSS) and how well the horizontal
        line at each point agrees with it (1 on the slice's line, anything at a degenerate point)."""
        pts = p + (jnp.arange(1, _CROSS + 1, dtype=p.dtype) * h * sign)[:, None] * d

        def one(x):
            return (jnp.abs(jnp.dot(direction(x, d), d)),) + probe(x, d)

        return pts, jax.vmap(one)(pts)

    start_dir = direction(theta0, jnp.ones_like(theta0))
    start = tuple(float(x) for x in probe(theta0, start_dir))
    rising = np.sign(start[3])  # w is monotone along the curve: the sign of dw/ds stays

    def ends(ll, ww, tt):
        """Where the branch ends whatever comes next: no finite loss or w, or a `Positive`
        coordinate out of its orthant."""
        out = ~np.isfinite(ll) | ~np.isfinite(ww)
        if positive.any() and not unfold:
            out |= np.any(np.asarray(tt)[:, positive] <= 0, axis=1)
        return out

    def turns_back(sl):
        """w turns back (the sign of dw/ds changes): beyond, w retraces its values."""
        return np.sign(sl) * rising < 0

    l_min = start[0]

    def beyond(p, d, sign, past: int, l_min: float) -> tuple[str, Any]:  # the part's form depends on the kind
        """What lies ahead of p past a degenerate point, on the straight continuation of the
        tangent d: `("cross", part)` to resume the walk on the far side (from `past` steps on),
        or `("end", part)` up to the edge (located to ds/_REFINE), where the branch ends."""
        nothing = ("end", ())
        if (float(loss(p)) - l_min) / T > cutoff:
            return nothing  # the far side has weight below exp(−cutoff)
        pts, (align, ll, ww, ld, sl) = jax.tree.map(np.asarray, straight(p, d, sign, ds))
        good = (align > _ALIGNED) & np.isfinite(ld)
        # dw/ds along d is exact on the line; off it, within rounding of the degenerate point,
        # its sign means nothing: judge it where the horizontal line is the straight one.
        event = ends(ll, ww, pts) | (turns_back(sl) & good)
        e = int(np.argmax(event)) if event.any() else _CROSS
        for j in range(past, e - 2):
            if good[j : j + 3].all():  # back on a well-defined stretch of the line
                k = j + 1
                return "cross", (pts[j], (ll[:k], ww[:k], ld[:k], sl[:k], np.full(k, ds)))
        if e == _CROSS:
            return nothing
        # The edge lies between point e − 1 and point e: locate it on a finer grid, so that the
        # quadrature reaches it (a branch cut ds short of w = 0 would bias E[w] by ~1e-4).
        base = jnp.asarray(pts[e - 1]) if e else p
        fine, (f_align, f_ll, f_ww, f_ld, f_sl) = jax.tree.map(np.asarray, straight(base, d, sign, ds / _REFINE))
        f_good = (f_align > _ALIGNED) & np.isfinite(f_ld)
        f_event = ends(f_ll, f_ww, fine) | (turns_back(f_sl) & f_good)
        f = int(np.argmax(f_event)) if f_event.any() else _CROSS
        last = [f - 1] if f else []
        inc = np.concatenate([np.full(e, ds), np.full(len(last), f * ds / _REFINE)])
        coarse, finer = (ll, ww, ld, sl), (f_ll, f_ww, f_ld, f_sl)
        return "end", tuple(np.concatenate([x[:e], fx[last]]) for x, fx in zip(coarse, finer)) + (inc,)

    branches = []
    for sign in (1.0, -1.0):
        t, k1, prev = theta0, start_dir, start_dir
        parts: list[tuple] = []
        steps, crossings = 0, 0
        while steps < max_steps:
            here = (t, k1)
            (t, k1, prev), (tt, kk, turn, ll, ww, ld, sl) = walk(t, k1, prev, sign)
            tt, kk, turn, ll, ww, ld, sl = (np.asarray(x) for x in (tt, kk, turn, ll, ww, ld, sl))
            steps += _CHUNK
            done = ends(ll, ww, tt)
            # A degenerate point, or w turning back (at a degenerate point, or for good):
            # `beyond` tells which.
            event = done | ~np.isfinite(ld) | (turn < 0.9) | turns_back(sl)
            if not event.any():
                parts.append((ll, ww, ld, sl, np.full(_CHUNK, ds)))
                l_min = min(l_min, float(ll.min()))
                if (ll.min() - l_min) / T > cutoff and ll[-1] >= ll[0]:
                    break
                continue
            first = int(np.argmax(event))
            n = max(first - 2, 0)  # the last points sit on the degenerate point
            parts.append((ll[:n], ww[:n], ld[:n], sl[:n], np.full(n, ds)))
            if crossings >= _MAX_CROSSINGS or not np.isfinite(ll[first] + ww[first]):
                break
            p, d = (jnp.asarray(tt[n - 1]), jnp.asarray(kk[n - 1])) if n else here
            kind, part = beyond(p, d, sign, first - n + 3, l_min)
            if kind == "end":
                if part:
                    parts.append(part)
                break
            resume, part = part
            parts.append(part)
            crossings += 1
            t, prev = jnp.asarray(resume), d
            k1 = direction(t, d)
        branches.append(tuple(np.concatenate(x) for x in zip(*parts)) if parts else (np.zeros(0),) * 5)
    forward, backward = branches
    joined = (np.concatenate([b[::-1], [x], f]) for b, x, f in zip(backward[:4], start, forward[:4]))
    l_all, w_all, ld_all, slope = joined
    s = np.concatenate([-np.cumsum(backward[4])[::-1], [0.0], np.cumsum(forward[4])])
    s -= s[0]

    dw = np.abs(slope)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = -(l_all - l_all.min()) / T - 0.5 * ld_all + np.log(dw)
    # At a degenerate point itself det G = 0 and dw/ds = 0 (0/0); the density in s is smooth
    # through it (uniform times exp(−L/T) for a product), so take it from the neighbours.
    bad = ~np.isfinite(log_q)
    if bad.all():
        raise LawUnavailable("the orbits are degenerate all along the slice")
    log_q[bad] = np.interp(s[bad], s[~bad], log_q[~bad])
    q = np.exp(log_q - log_q.max())
    q /= np.trapezoid(q, s)
    gibbs = np.exp(-(l_all - l_all.min()) / T) * dw  # exp(−L/T) dw, without the correction
    gibbs /= np.trapezoid(gibbs, s)

    mean = float(np.trapezoid(w_all * q, s))
    std = float(np.sqrt(max(np.trapezoid((w_all - mean) ** 2 * q, s), 0.0)))
    # w is monotone along s (the walk ends where it turns back), so its CDF is the mass in s
    # up to each point: exact through the integrable singularity of p(w) at a degenerate point.
    mass = np.concatenate([[0.0], np.cumsum(0.5 * (q[1:] + q[:-1]) * np.diff(s))])
    mass /= mass[-1]
    increasing = w_all[-1] >= w_all[0]
    order = np.arange(len(w_all)) if increasing else np.arange(len(w_all))[::-1]
    cdf_values = mass if increasing else 1.0 - mass[::-1]
    density = (q / np.maximum(dw, 1e-300))[order]
    gibbs_mean = float(np.trapezoid(w_all * gibbs, s))
    return PredictedLaw(name, T, w_all[order], density, s, q, mean, std, gibbs_mean, cdf_values, w_all)
