"""The dynamics' one door to the geometry engine (`gaugedsl.geometry`).

Everything the dynamics needs from the symmetries goes through here: the engine itself, the
horizontal projection for `projected` noise, and the predicted stationary law.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..geometry import Geometry, LawUnavailable, PredictedLaw, predicted_law
from ..lowering import Lowered


def geometry(lowered: Lowered) -> Geometry:
    return Geometry(lowered)


def joint_action(geo: Geometry) -> tuple[Callable, int]:
    """`(θ, a) ↦ exp(a)·θ` for all symmetries together (a concatenated), and dim a."""
    names = list(geo.symmetries)
    sizes = [geo.symmetries[n].group.algebra_dim for n in names]

    def act(theta, a):
        offset = 0
        for n, k in zip(names, sizes):
            theta = geo.act(n, theta, a[offset : offset + k])
            offset += k
        return theta

    return act, sum(sizes)


def charge_keeper(geo: Geometry):
    """The `ChargeKeeper` of projected noise, where the Gram matrix is diagonal by
    structure; `None` otherwise (there the plain Euler step is used)."""
    from .gauge import ChargeKeeper

    if not geo.symmetries or not _diagonal_gram(geo):
        return None
    act, k = joint_action(geo)
    return ChargeKeeper(act, k, geo.dimension)


def horizontal_projection(geo: Geometry) -> Callable:
    """`(θ, v) ↦ v − Ξᵀ G⁺ Ξ v`, the noise direction orthogonal to the orbits.

    `Geometry.project_horizontal` builds Ξ by forward differentiation and solves with an
    eigendecomposition of G (right for any symmetry, ~10 µs per particle-step for 20
    generators). When the Gram matrix is diagonal by structure — generators with disjoint
    supports, as for elementwise rescalings, the commonest case — G⁺ is `1/diag(G)` and the
    projection is matrix-free: `Ξv` is one reverse pass through the action, `Ξᵀc` one
    forward pass, and `diag(G) = Ξ Ξᵀ 1`. That is about 50× cheaper, and it is what makes
    projected noise cost about as much as isotropic noise.
    """
    names = list(geo.symmetries)
    if not names:
        return lambda theta, v: v
    if not _diagonal_gram(geo):
        return geo.project_horizontal
    act, k_total = joint_action(geo)

    def project(theta, v):
        zero = jnp.zeros(k_total, dtype=theta.dtype)
        along = lambda c: jax.jvp(lambda a: act(theta, a), (zero,), (c,))[1]  # Ξᵀ c
        _, against = jax.vjp(lambda a: act(theta, a), zero)  # w ↦ Ξ w
        gdiag = against(along(jnp.ones_like(zero)))[0]
        xv = against(v)[0]
        safe = gdiag > 0
        coeffs = jnp.where(safe, xv / jnp.where(safe, gdiag, 1.0), 0.0)
        return v - along(coeffs)

    return project


@functools.lru_cache(maxsize=None)
def _diagonal_gram(geo: Geometry) -> bool:
    """Whether the joint Gram matrix is diagonal by structure: checked at a random point,
    where disjoint supports give exact zeros and anything else gives none."""
    theta = np.random.default_rng(0).normal(size=geo.dimension) + 0.5
    with jax.ensure_compile_time_eval():
        xi = np.asarray(jax.jit(geo.generators)(jnp.asarray(theta, dtype=jnp.zeros(()).dtype)))
    pattern = np.abs(xi) > 0
    overlap = pattern.astype(int) @ pattern.T.astype(int)
    np.fill_diagonal(overlap, 0)
    return not overlap.any()


def stationary_law(geo: Geometry, T: float, theta0) -> tuple[PredictedLaw | None, str | None]:
    """The predicted stationary law of the scalar predictor, or why there is none."""
    try:
        return predicted_law(geo, T, theta0=theta0), None
    except LawUnavailable as exc:
        return None, str(exc)
