"""The predicted stationary law of a scalar predictor (THEORY.md §2.2, P5/P6).

Under gradient-aligned (projected) noise the dynamics settles on the gauge slice, where the
predictor w has the density `p(w) ∝ exp(−L(w)/T) · det G(θ*(w))^{-1/2}`. When the slice is a
curve (parameter dimension minus symmetry dimension is 1), we follow it by integrating the
unit horizontal field from a balanced point in both directions (horizontal curves through
the orthogonality slice stay on it, since ∇χ_a = ξ_a), and do the quadrature in its arclength
s — the good coordinate: the density in s is smooth even where p(w) has an integrable
singularity (|w|^{-(L−1)/L} for depth L).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .engine import Geometry


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

    def moment(self, f) -> float:
        return float(np.trapezoid(f(self.w_of_s) * self.weights_s, self.s))

    @property
    def w_of_s(self):
        return self._w_of_s

    def cdf(self, x: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(0.5 * (self.density[1:] + self.density[:-1]) * np.diff(self.w))])
        return np.interp(x, self.w, c / c[-1])


def predicted_law(geo: Geometry, T: float, theta0=None, step: float | None = None, max_steps: int = 200_000, cutoff: float = 40.0) -> PredictedLaw:
    model = geo.model
    scalar = [p for p in model.predictors if p.shape == ()]
    if len(scalar) != 1 or len(model.predictors) != 1:
        raise LawUnavailable("the predicted law is computed for models with one scalar predictor")
    if geo.dimension - geo.algebra_dim != 1:
        raise LawUnavailable(f"the gauge slice has dimension {geo.dimension - geo.algebra_dim}; the quadrature handles a curve (dimension 1)")
    name = scalar[0].name
    lowered, layout = geo.lowered, geo.layout
    if theta0 is None:
        theta0 = layout.flatten(lowered.init_params(jax.random.PRNGKey(0)))
    theta0 = geo.project_to_slice(jnp.asarray(theta0))

    def loss(t):
        return lowered.loss(layout.unflatten(t))

    def pred(t):
        return lowered.predictors(layout.unflatten(t))[name]

    def logdet(t):
        return sum(geo.logdet_gram(n, t) for n in geo.symmetries)

    def direction(t, previous):
        xi = geo.generators(t)
        _, _, vt = jnp.linalg.svd(xi, full_matrices=True)
        h = vt[-1]
        return jnp.where(jnp.dot(h, previous) < 0, -h, h)

    scale = float(jnp.linalg.norm(theta0))
    ds = step or max(scale, 1e-3) * 2e-4

    @jax.jit
    def walk(t, prev, sign):
        def rk4(carry, _):
            t, prev = carry
            k1 = direction(t, prev)
            k2 = direction(t + 0.5 * ds * sign * k1, k1)
            k3 = direction(t + 0.5 * ds * sign * k2, k2)
            k4 = direction(t + ds * sign * k3, k3)
            step_dir = (k1 + 2 * k2 + 2 * k3 + k4) / 6
            t_new = t + ds * sign * step_dir
            # Where the orbit degenerates the horizontal direction jumps: that is the edge.
            turn = jnp.min(jnp.array([jnp.dot(k1, prev), jnp.dot(k4, k1)]))
            return (t_new, k4), (t_new, loss(t_new), pred(t_new), logdet(t_new), turn)

        return jax.lax.scan(rk4, (t, prev), None, length=2000)

    start_dir = direction(theta0, jnp.ones_like(theta0))
    l0 = float(loss(theta0))
    branches = []
    for sign in (1.0, -1.0):
        t, prev = theta0, start_dir
        pts, ls, ws, lds = [], [], [], []
        for _ in range(max_steps // 2000):
            (t, prev), (tt, ll, ww, ld, turn) = walk(t, prev, sign)
            ll, ww, ld = np.asarray(ll), np.asarray(ww), np.asarray(ld)
            stop = ~np.isfinite(ld) | ~np.isfinite(ll) | (np.asarray(turn) < 0.9)
            if stop.any():  # the orbit degenerates (the edge of the orthant): stop before it
                n = max(int(np.argmax(stop)) - 2, 0)  # the last points sit on the degenerate edge
                ls.append(ll[:n]); ws.append(ww[:n]); lds.append(ld[:n])
                break
            ls.append(ll); ws.append(ww); lds.append(ld)
            l0 = min(l0, float(ll.min()))
            if (ll.min() - l0) / T > cutoff and ll[-1] >= ll[0]:
                break
        branches.append((np.concatenate(ls), np.concatenate(ws), np.concatenate(lds)))
    (l_f, w_f, ld_f), (l_b, w_b, ld_b) = branches
    l_all = np.concatenate([l_b[::-1], [float(loss(theta0))], l_f])
    w_all = np.concatenate([w_b[::-1], [float(pred(theta0))], w_f])
    ld_all = np.concatenate([ld_b[::-1], [float(logdet(theta0))], ld_f])
    s = ds * np.arange(len(l_all), dtype=float)

    dw = np.abs(np.gradient(w_all, s))
    log_q = -(l_all - l_all.min()) / T - 0.5 * ld_all + np.log(np.maximum(dw, 1e-300))
    q = np.exp(log_q - log_q.max())
    q /= np.trapezoid(q, s)
    gibbs = np.exp(-(l_all - l_all.min()) / T) * dw  # exp(−L/T) dw, without the correction
    gibbs /= np.trapezoid(gibbs, s)

    mean = float(np.trapezoid(w_all * q, s))
    std = float(np.sqrt(max(np.trapezoid((w_all - mean) ** 2 * q, s), 0.0)))
    order = np.argsort(w_all)
    w_sorted = w_all[order]
    density = (q / np.maximum(dw, 1e-300))[order]
    law = PredictedLaw(name, T, w_sorted, density, s, q, mean, std, float(np.trapezoid(w_all * gibbs, s)))
    object.__setattr__(law, "_w_of_s", w_all)
    return law
