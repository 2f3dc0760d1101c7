"""Lie groups: one class per kind, each with its algebra, exponential map and basis.

Coordinates `a ∈ R^k` name the algebra element `Σ_a a_a X_a`. The bases are orthonormal for
the Frobenius inner product, so Gram determinants do not depend on a basis convention:

- `Scale[dims]`, `Translate[dims]`, `Diag[r]`: the unit vectors, in row-major order;
  `g = exp(a)` (elementwise), `g = a`, `g = diag(exp(a))`.
- `GL[r]`: the matrix units `E_ij`, row-major; `g = expm(A)`.
- `O[r]`, `SO[r]`: `(E_ij − E_ji)/√2` for `i < j`, row-major; `g = expm(A)`.
"""

from __future__ import annotations

# JAX is imported inside the methods that compute: the checker reads these registries, and
# `gaugedsl check` and the language server start without loading JAX.
import math

import numpy as np

Shape = tuple[int, ...]


class GroupKind:
    """A Lie group family. Subclasses set the class attributes and override what differs.

    - `name`, `doc`: as written in a program and shown in hovers and hints.
    - `min_dims`, `max_dims`: how many sizes `Name[...]` takes (None: any number).
    - `factorization`: the pattern a two-parameter action `U → U g, V → V g^{-T}` of this group
      is (`"gl"`, `"orthogonal"`), or None; the geometry's closed forms and charts key on it.
    - `rescaling`: elementwise positive rescalings (the products and chains of `structure.py`).
    """

    name: str = ""
    doc: str = ""
    min_dims: int = 0
    max_dims: int | None = None
    factorization: str | None = None
    rescaling: bool = False

    def element_shape(self, dims: Shape) -> Shape:
        """The shape of `g` in an action."""
        (r,) = dims
        return (r, r)

    def algebra_dim(self, dims: Shape) -> int:
        return math.prod(dims)

    def exp(self, dims: Shape, a):
        """The group element `exp(Σ a_a X_a)`, shaped as `g`."""
        raise NotImplementedError

    def exp_first_order(self, dims: Shape, a):
        """A map with the same derivative at a = 0 as `exp` (cheaper to trace for matrix groups)."""
        return self.exp(dims, a)

    def basis_names(self, dims: Shape) -> list[str]:
        """Human names of the basis elements, in coordinate order."""
        if not dims:
            return ["1"]
        return ["[" + ",".join(map(str, idx)) + "]" for idx in np.ndindex(*dims)]


class Scale(GroupKind):
    name, doc = "Scale", "positive rescalings g = exp(a), elementwise; `Scale` alone is one scalar"
    rescaling = True

    def element_shape(self, dims):
        return tuple(dims)

    def exp(self, dims, a):
        import jax.numpy as jnp

        return jnp.exp(a).reshape(tuple(dims))


class Translate(GroupKind):
    name, doc = "Translate", "translations g = a"

    def element_shape(self, dims):
        return tuple(dims)

    def exp(self, dims, a):
        return a.reshape(tuple(dims))


class Diag(GroupKind):
    name, doc = "Diag", "positive diagonal r×r matrices g = diag(exp(a))"
    min_dims = max_dims = 1

    def exp(self, dims, a):
        import jax.numpy as jnp

        return jnp.diag(jnp.exp(a))

    def basis_names(self, dims):
        return [f"E{i}{i}" for i in range(dims[0])]


class MatrixGroup(GroupKind):
    """A matrix Lie group `g = expm(A)` for A in a linear subspace of gl(r)."""

    min_dims = max_dims = 1

    def matrix(self, dims: Shape, a):
        """The r×r algebra element with coordinates `a`."""
        raise NotImplementedError

    def exp(self, dims, a):
        import jax.scipy.linalg as jsl

        return jsl.expm(self.matrix(dims, a))

    def exp_first_order(self, dims, a):
        import jax.numpy as jnp

        # I + A: the same generators as expm(A), much cheaper to trace
        return jnp.eye(dims[0], dtype=a.dtype) + self.matrix(dims, a)


class GL(MatrixGroup):
    name, doc = "GL", "invertible r×r matrices g = expm(A)"
    factorization = "gl"

    def algebra_dim(self, dims):
        return dims[0] ** 2

    def matrix(self, dims, a):
        return a.reshape(dims[0], dims[0])

    def basis_names(self, dims):
        r = dims[0]
        return [f"E{i}{j}" for i in range(r) for j in range(r)]


class Orthogonal(MatrixGroup):
    name, doc = "O", "orthogonal r×r matrices (the identity component), g = expm(A), A antisymmetric"
    factorization = "orthogonal"

    def algebra_dim(self, dims):
        return dims[0] * (dims[0] - 1) // 2

    def matrix(self, dims, a):
        import jax.numpy as jnp

        r = dims[0]
        rows, cols = np.triu_indices(r, 1)
        upper = jnp.zeros((r, r), dtype=a.dtype).at[rows, cols].set(a * (2.0**-0.5))
        return upper - upper.T

    def basis_names(self, dims):
        return [f"(E{i}{j}-E{j}{i})/√2" for i, j in zip(*np.triu_indices(dims[0], 1))]


class SO(Orthogonal):
    name, doc = "SO", "rotations: r×r orthogonal matrices of determinant 1"


GROUPS: dict[str, GroupKind] = {k.name: k for k in (Scale(), Translate(), GL(), Orthogonal(), SO(), Diag())}
