"""The built-in type kinds: manifolds for parameters, Lie groups for symmetries."""

from __future__ import annotations

import dataclasses

from .shapes import Shape, size


@dataclasses.dataclass(frozen=True)
class ManifoldKind:
    name: str
    min_dims: int
    max_dims: int | None
    doc: str

    def validate(self, dims: Shape) -> str | None:
        if self.name == "Sphere":
            if dims[0] < 2:
                return "Sphere[n] needs n ≥ 2 (unit vectors in R^n)"
        if self.name == "Stiefel":
            n, k = dims
            if not 1 <= k <= n:
                return f"Stiefel[n, k] needs 1 ≤ k ≤ n, got n = {n}, k = {k}"
        return None


MANIFOLDS = {
    "R": ManifoldKind("R", 0, None, "real arrays; `R` alone is a scalar"),
    "Positive": ManifoldKind("Positive", 0, None, "arrays with positive entries"),
    "Sphere": ManifoldKind("Sphere", 1, 1, "unit vectors in R^n"),
    "Stiefel": ManifoldKind("Stiefel", 2, 2, "n×k matrices with orthonormal columns"),
}


@dataclasses.dataclass(frozen=True)
class GroupKind:
    """A built-in Lie group family. `g` in an action has `element_shape(dims)`."""

    name: str
    min_dims: int
    max_dims: int | None
    doc: str

    def element_shape(self, dims: Shape) -> Shape:
        if self.name in ("Scale", "Translate"):
            return dims
        (r,) = dims
        return (r, r)

    def algebra_dim(self, dims: Shape) -> int:
        if self.name in ("Scale", "Translate"):
            return size(dims)
        (r,) = dims
        return {"GL": r * r, "O": r * (r - 1) // 2, "SO": r * (r - 1) // 2, "Diag": r}[self.name]


GROUPS = {
    "Scale": GroupKind("Scale", 0, None, "positive rescalings g = exp(a), elementwise; `Scale` alone is one scalar"),
    "Translate": GroupKind("Translate", 0, None, "translations g = a"),
    "GL": GroupKind("GL", 1, 1, "invertible r×r matrices g = expm(A)"),
    "O": GroupKind("O", 1, 1, "orthogonal r×r matrices (the identity component), g = expm(A), A antisymmetric"),
    "SO": GroupKind("SO", 1, 1, "rotations: r×r orthogonal matrices of determinant 1"),
    "Diag": GroupKind("Diag", 1, 1, "positive diagonal r×r matrices g = diag(exp(a))"),
}
