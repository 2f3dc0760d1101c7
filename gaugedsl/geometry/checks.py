"""Numerical checks of declared symmetries, reported as diagnostics.

A declared symmetry must leave the loss invariant (E901) and keep every parameter on its
declared manifold (E904); both are measured at random points and random group elements, and
a violation is an error that quotes the measured size. A Gram matrix that is degenerate at the
point of interest (an orbit of lower dimension, e.g. at u = v = 0) is reported (E902) instead
of turning into NaN. `gaugedsl bias` and `gaugedsl run` make the same checks (`run`'s are in
`preflight.py`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import Diagnostic, error, warning
from .engine import Geometry


def initial_not_finite(param) -> Diagnostic:
    """E806 on a parameter whose initializer gives NaN or infinity."""
    return error(
        "E806",
        param.span,
        f"the initial value of '{param.name}' is not finite (NaN or infinite)",
        "check its initializer: a log or division of zero, or a draw that overflows",
    )


def symmetry_violations(geo: Geometry, points: int = 8, seed: int = 0, spread: float = 0.5) -> list[Diagnostic]:
    """E901 (the loss changes), E904 (a parameter leaves its manifold) and W903 (a predictor
    changes) under random group elements `exp(a)`, `a ~ N(0, spread²)`, at `points` random
    parameter draws: the initializers' draws perturbed to be generic (initializers may be
    tiny), with the parameters on Sphere, Stiefel and Positive replaced by random points of
    their manifolds. One compiled program measures every symmetry at every point."""
    from ..dynamics.manifolds import Constraint  # here: gaugedsl.dynamics imports this package

    lowered, out = geo.lowered, []
    eps = float(jnp.finfo(jnp.zeros(()).dtype).eps)
    tol = max(1e-8, 1e4 * eps)
    key = jax.random.PRNGKey(seed)
    constraint = Constraint(geo.model, lowered.layout)
    thetas = generic_points(geo, constraint, key, points)
    values = np.asarray(thetas)
    bad = [p for p in geo.model.params if not np.all(np.isfinite(values[:, lowered.layout.slice_of(p.name)]))]
    if bad:  # the initializers' own values: a NaN loss there says nothing about the symmetries
        return [initial_not_finite(p) for p in bad]
    dims = {n: s.group.algebra_dim for n, s in geo.symmetries.items()}
    draws = {n: spread * _normal_draws(key, 1000, points, k, thetas.dtype) for n, k in dims.items()}
    l0, p0, moved = jax.tree.map(np.asarray, _measure(geo, constraint)(thetas, draws))
    for name, sym in geo.symmetries.items():
        l1, p1, off = moved[name]
        worst_loss = float(np.max(np.abs(l1 - l0) / np.maximum(np.abs(l0), 1e-12)))
        worst_pred = 0.0
        for n in p0:
            change = np.abs(p1[n] - p0[n]).reshape(points, -1).max(axis=1)
            scale = np.abs(p0[n]).reshape(points, -1).max(axis=1) + 1e-12
            worst_pred = max(worst_pred, float(np.max(change / scale)))
        if not np.isfinite(worst_loss) or worst_loss > tol:
            out.append(
                error(
                    "E901",
                    sym.span,
                    f"symmetry '{name}' does not leave the loss invariant: relative change up to {worst_loss:.3g} at random points",
                    "check the action rules: the loss must be unchanged under every g (tolerance "
                    f"{tol:.0e}); a bias is only defined for true symmetries",
                )
            )
        for block, worst in zip(constraint.blocks, off.max(axis=0) if constraint.blocks else ()):
            if not np.isfinite(worst) or worst > tol:
                out.append(_off_manifold(geo, name, block, float(worst)))
        if not any(d.code in ("E901", "E904") and d.span == sym.span for d in out) and (
            not np.isfinite(worst_pred) or worst_pred > tol and geo.model.predictors
        ):
            out.append(
                warning(
                    "W903",
                    sym.span,
                    f"symmetry '{name}' leaves the loss invariant but changes a predictor (relative change up to {worst_pred:.3g})",
                    "a predictor should be a function of the orbit; declare an invariant quantity as the predictor",
                )
            )
    return out


# The E901/W903 check under its historical name (geometry/__init__ exports it).
invariance_violations = symmetry_violations


def degeneracy(geo: Geometry, theta, where: str) -> list[Diagnostic]:
    """E902 for every symmetry whose generators are dependent at the point θ."""
    return degeneracy_at(geo, jnp.asarray(theta)[None], where)


def degeneracy_at(geo: Geometry, thetas, where: str, names: list[str] | None = None) -> list[Diagnostic]:
    """E902 for every symmetry whose generators are dependent at one of the points `thetas`
    (n, D); with `names`, the message names the first such point (`names[i]` for row i)
    unless all of them are."""
    out = []
    for name, sym in geo.symmetries.items():
        grams = np.asarray(jax.jit(jax.vmap(lambda t, name=name: geo.gram(name, t)))(thetas))
        eig = np.linalg.eigvalsh(grams)  # ascending, per point
        top = np.maximum(np.abs(eig[:, -1]), 1e-300)
        ranks = np.sum(eig > top[:, None] * 1e-12, axis=1)
        k = sym.group.algebra_dim
        bad = np.flatnonzero((ranks < k) | (eig[:, 0] / top < 1e-12) | ~np.isfinite(eig).all(axis=1))
        if bad.size == 0:
            continue
        first = int(bad[0])
        place = where
        if names is not None and bad.size < len(names):
            place = f"{where} of {names[first]} ({bad.size} of the {len(names)} checked)"
        out.append(
            error(
                "E902",
                sym.span,
                f"the Gram matrix of '{name}' is degenerate {place}: {int(ranks[first])} of {k} generators are independent "
                "(the orbit has lower dimension there)",
                "log det G is −∞ at such points; start away from them (e.g. nonzero initial weights) or use --at slice "
                "from a generic point",
            )
        )
    return out


# ---- helpers ----


def generic_points(geo: Geometry, constraint, key, points: int):
    """(points, D): draw i from the key `fold_in(key, i)`, in one compiled program."""
    lowered, rng = geo.lowered, np.random.default_rng(0)

    def one(i):
        k1, k2 = jax.random.split(jax.random.fold_in(key, i))
        theta = lowered.layout.flatten(lowered.init_params(k1))
        # Initializers may be tiny (small-init regimes); perturb to a generic point.
        return theta + jax.random.normal(k2, theta.shape, theta.dtype) * (0.5 + jnp.std(theta))

    thetas = jax.jit(jax.vmap(one))(jnp.arange(points))
    for b in constraint.blocks:  # drawn with NumPy: the same points in every precision
        on = jnp.asarray(np.stack([b.manifold.random_point(b.shape, rng).ravel() for _ in range(points)]), thetas.dtype)
        thetas = thetas.at[:, b.offset : b.offset + b.size].set(on)
    return thetas


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _normal_draws(key, first: int, points: int, k: int, dtype):
    """Row i: N(0, 1)^k from the key `fold_in(key, first + i)`."""
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, first + i), (k,), dtype))(jnp.arange(points))


def _measure(geo: Geometry, constraint):
    """(θ, {symmetry: a}) batches ↦ (L(θ), the predictors at θ, {symmetry: (L(exp(a)·θ), the
    predictors there, each block's distance from its manifold there)}), compiled."""
    lowered = geo.lowered

    def one(theta, draws):
        moved = {}
        for name, a in draws.items():
            point = geo.act(name, theta, a)
            params = lowered.layout.unflatten(point)
            distances = [constraint.block_violation(b, point) for b in constraint.blocks]
            off = jnp.stack(distances) if distances else jnp.zeros(0, theta.dtype)
            moved[name] = (lowered.loss(params), lowered.predictors(params), off)
        params = lowered.layout.unflatten(theta)
        return lowered.loss(params), lowered.predictors(params), moved

    return jax.jit(jax.vmap(one))


def _off_manifold(geo: Geometry, name: str, block, worst: float) -> Diagnostic:
    param = next(p for p in geo.model.params if geo.layout.slice_of(p.name).start == block.offset)
    dims = f"[{', '.join(map(str, param.manifold.shape))}]" if param.manifold.shape else ""
    return error(
        "E904",
        geo.symmetries[name].span,
        f"symmetry '{name}' moves '{param.name}' off its manifold {param.manifold.kind}{dims}: "
        f"{block.manifold.describe_violation(worst)} after random group elements",
        f"{block.manifold.preserved_by}; change the group or the action, or declare '{param.name}' on R",
    )
