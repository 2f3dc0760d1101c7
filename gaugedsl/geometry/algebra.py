"""Lie algebras of the built-in groups: an orthonormal basis and the exponential map.

Coordinates `a ∈ R^k` name the algebra element `Σ_a a_a X_a`. The bases are orthonormal for
the Frobenius inner product, so Gram determinants do not depend on a basis convention:

- `Scale[dims]`, `Translate[dims]`, `Diag[r]`: the unit vectors, in row-major order;
  `g = exp(a)` (elementwise), `g = a`, `g = diag(exp(a))`.
- `GL[r]`: the matrix units `E_ij`, row-major; `g = expm(A)`.
- `O[r]`, `SO[r]`: `(E_ij − E_ji)/√2` for `i < j`, row-major; `g = expm(A)`.
"""

from __future__ import annotations

import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from .. import ir


def exp_map(group: ir.Group, a):
    """The group element `exp(Σ a_a X_a)`, shaped as `g` in the action."""
    kind = group.kind
    if kind == "Scale":
        return jnp.exp(a).reshape(group.element_shape)
    if kind == "Translate":
        return a.reshape(group.element_shape)
    if kind == "Diag":
        return jnp.diag(jnp.exp(a))
    return jsl.expm(algebra_matrix(group, a))


def exp_map_first_order(group: ir.Group, a):
    """`I + A` for the matrix groups: the same derivative at the identity as `expm(A)`, so
    the generators come out identical while tracing is much cheaper than through `expm`."""
    if group.kind in ("GL", "O", "SO"):
        (r,) = group.dims
        return jnp.eye(r, dtype=a.dtype) + algebra_matrix(group, a)
    return exp_map(group, a)


def algebra_matrix(group: ir.Group, a):
    """The r×r matrix of an element of gl(r) or o(r) with coordinates `a`."""
    (r,) = group.dims
    if group.kind == "GL":
        return a.reshape(r, r)
    rows, cols = np.triu_indices(r, 1)
    upper = jnp.zeros((r, r), dtype=a.dtype).at[rows, cols].set(a * (2.0**-0.5))
    return upper - upper.T


def basis_names(group: ir.Group) -> list[str]:
    """Human names of the basis elements, in coordinate order."""
    if group.kind in ("Scale", "Translate"):
        if not group.dims:
            return ["1"]
        return ["[" + ",".join(map(str, idx)) + "]" for idx in np.ndindex(*group.dims)]
    (r,) = group.dims
    if group.kind == "Diag":
        return [f"E{i}{i}" for i in range(r)]
    if group.kind == "GL":
        return [f"E{i}{j}" for i in range(r) for j in range(r)]
    return [f"(E{i}{j}-E{j}{i})/√2" for i, j in zip(*np.triu_indices(r, 1))]
