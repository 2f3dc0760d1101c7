"""Numerical checks of declared symmetries, reported as diagnostics.

A declared symmetry must leave the loss invariant; this is measured at random points and
random group elements, and a violation is an error that quotes the measured size. A Gram
matrix that is degenerate at the point of interest (an orbit of lower dimension, e.g. at
u = v = 0) is reported instead of turning into NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import Diagnostic, error, warning
from .engine import Geometry


def invariance_violations(geo: Geometry, points: int = 8, seed: int = 0, spread: float = 0.5) -> list[Diagnostic]:
    """Relative change of the loss (and of the predictors) under random group elements
    `exp(a)`, `a ~ N(0, spread²)`, at `points` random parameter draws from the initializers
    (scaled up, so that they are generic)."""
    lowered, out = geo.lowered, []
    eps = float(jnp.finfo(jnp.zeros(()).dtype).eps)
    tol = max(1e-8, 1e4 * eps)
    key = jax.random.PRNGKey(seed)
    loss = jax.jit(lambda t: lowered.loss(lowered.layout.unflatten(t)))
    preds = jax.jit(lambda t: lowered.predictors(lowered.layout.unflatten(t)))
    thetas = []
    for i in range(points):
        k1, k2 = jax.random.split(jax.random.fold_in(key, i))
        theta = lowered.layout.flatten(lowered.init_params(k1))
        # Initializers may be tiny (small-init regimes); perturb to a generic point.
        theta = theta + jax.random.normal(k2, theta.shape, theta.dtype) * (0.5 + jnp.std(theta))
        thetas.append(theta)
    for name, sym in geo.symmetries.items():
        worst_loss = worst_pred = 0.0
        for i, theta in enumerate(thetas):
            a = spread * jax.random.normal(jax.random.fold_in(key, 1000 + i), (sym.group.algebra_dim,), theta.dtype)
            moved = geo.act(name, theta, a)
            l0, l1 = float(loss(theta)), float(loss(moved))
            worst_loss = max(worst_loss, abs(l1 - l0) / max(abs(l0), 1e-12))
            p0, p1 = preds(theta), preds(moved)
            for n in p0:
                scale = float(jnp.max(jnp.abs(p0[n]))) + 1e-12
                worst_pred = max(worst_pred, float(jnp.max(jnp.abs(p1[n] - p0[n]))) / scale)
        if not np.isfinite(worst_loss) or worst_loss > tol:
            out.append(error(
                "E901", sym.span,
                f"symmetry '{name}' does not leave the loss invariant: relative change up to {worst_loss:.3g} at random points",
                "check the action rules: the loss must be unchanged under every g (tolerance "
                f"{tol:.0e}); a bias is only defined for true symmetries",
            ))
        elif not np.isfinite(worst_pred) or worst_pred > tol and geo.model.predictors:
            out.append(warning(
                "W903", sym.span,
                f"symmetry '{name}' leaves the loss invariant but changes a predictor (relative change up to {worst_pred:.3g})",
                "a predictor should be a function of the orbit; declare an invariant quantity as the predictor",
            ))
    return out


def degeneracy(geo: Geometry, theta, where: str) -> list[Diagnostic]:
    out = []
    for name, sym in geo.symmetries.items():
        ratio, rank = geo.degeneracy(name, theta)
        k = sym.group.algebra_dim
        if rank < k or ratio < 1e-12:
            out.append(error(
                "E902", sym.span,
                f"the Gram matrix of '{name}' is degenerate {where}: {rank} of {k} generators are independent (the orbit has lower dimension there)",
                "log det G is −∞ at such points; start away from them (e.g. nonzero initial weights) or use --at slice from a generic point",
            ))
    return out
