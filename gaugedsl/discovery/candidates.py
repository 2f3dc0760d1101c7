"""The linear vector fields a symmetry is looked for among, block by block.

An infinitesimal linear action moves each parameter P by a linear function of P itself (or by a
constant): the flow of `ξ(θ) = A θ + b` restricted to the forms a group action of the language can
take. Per parameter block the candidate families are

- `scale`: `c ⊙ P` (every entrywise rescaling: `Scale`, `Diag`, the chains of deep products),
- `translate`: `c`, a constant shift (`Translate`),
- `right`: `P X` for a 2-D `P` (n × m), X ∈ R^{m×m} (`P -> P @ g` of `GL`, `O`),
- `left`: `X P`, X ∈ R^{n×n} (`P -> g @ P`).

A field is the sum over blocks and families; its coefficient vector `c ∈ R^C` concatenates them
(`Candidates.columns` names each column). Families overlap (a diagonal X is an entrywise
rescaling of columns): the discovery removes combinations whose field vanishes identically. A
matrix side larger than `MAX_SIDE` is not searched (its GL would have more than 4096 generators);
`Candidates.skipped` says which.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
from scipy import sparse

MAX_SIDE = 64


@dataclasses.dataclass(frozen=True)
class Family:
    param: str
    kind: str  # "scale", "translate", "right", "left"
    shape: tuple[int, ...]  # the coefficient's shape (P's for scale/translate, (m, m) or (n, n))
    offset: int  # first column in the coefficient vector
    block: slice  # P's coordinates in θ

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Candidates:
    """The candidate families of a model's parameters (`layout`: its `ParamLayout`)."""

    def __init__(self, layout):
        self.layout = layout
        self.families: list[Family] = []
        self.skipped: list[str] = []
        self._cached: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        offset = 0
        for name, shape in zip(layout.names, layout.shapes):
            kinds = [("scale", shape), ("translate", shape)]
            if len(shape) == 2:
                n, m = shape
                for kind, side in (("right", m), ("left", n)):
                    if side > MAX_SIDE:
                        self.skipped.append(f"{name} @ g ({kind}, {side}×{side})")
                    else:
                        kinds.append((kind, (side, side)))
            for kind, cshape in kinds:
                fam = Family(name, kind, tuple(cshape), offset, layout.slice_of(name))
                self.families.append(fam)
                offset += fam.size
        self.size = offset

    def family(self, param: str, kind: str) -> Family | None:
        return next((f for f in self.families if f.param == param and f.kind == kind), None)

    def field(self, theta, c):
        """ξ(θ) for the coefficient vector c (linear in c)."""
        params = self.layout.unflatten(theta)
        moved = {n: jnp.zeros_like(p) for n, p in params.items()}
        for f in self.families:
            x = jnp.reshape(c[f.offset : f.offset + f.size], f.shape)
            p = params[f.param]
            if f.kind == "scale":
                d = x * p
            elif f.kind == "translate":
                d = x
            elif f.kind == "right":
                d = p @ x
            else:
                d = x @ p
            moved[f.param] = moved[f.param] + d
        return self.layout.flatten(moved)

    def fields(self, theta):
        """(D, C): the field of every coefficient unit vector at θ (dense, traceable)."""
        import jax

        return jax.jacfwd(lambda c: self.field(theta, c))(jnp.zeros(self.size, theta.dtype))

    def sparse_fields(self, theta: np.ndarray) -> sparse.csr_matrix:
        """`fields(θ)` as a sparse matrix, built from the families' structure: a column moves one
        entry (scale, translate) or one row or column of its parameter (left, right), so the
        D × C matrix has about D·(2 + n + m) nonzeros where the dense one has D·C numbers."""
        rows, cols, source = self._pattern()
        values = np.asarray(theta, np.float64)[source] if source.size else source.astype(np.float64)
        values[source < 0] = 1.0  # translations
        return sparse.csr_matrix((values, (rows, cols)), shape=(self.layout.dimension, self.size))

    def pairing_gradient(self, g: np.ndarray) -> sparse.csr_matrix:
        """(D, C): ∂_θ ⟨g, ξ_c(θ)⟩ at fixed g, for every candidate c. The fields are linear in θ,
        so this does not depend on θ: the entry of `sparse_fields` that is θ_k contributes g at
        its row to row k."""
        rows, cols, source = self._pattern()
        moving = source >= 0
        values = np.asarray(g, np.float64)[rows[moving]]
        return sparse.csr_matrix((values, (source[moving], cols[moving])), shape=(self.layout.dimension, self.size))

    def _pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sparsity pattern of `sparse_fields`, the same at every θ: (row, column, the θ
        coordinate whose value the entry is, or −1 for the constant 1 of a translation)."""
        if self._cached is not None:
            return self._cached
        rows, cols, source = [], [], []
        for f in self.families:
            start = f.block.start
            if f.kind in ("scale", "translate"):
                k = np.arange(f.size)
                rows.append(start + k)
                cols.append(f.offset + k)
                source.append(start + k if f.kind == "scale" else np.full(f.size, -1))
                continue
            n, m = self.layout.shapes[self.layout.names.index(f.param)]
            if f.kind == "right":  # ∂(P X)/∂X_ab = P[:, a] at column b: entries (i, b) ← P[i, a]
                i, a, b = np.meshgrid(np.arange(n), np.arange(m), np.arange(m), indexing="ij")
                rows.append(start + i * m + b)
                cols.append(f.offset + a * m + b)
                source.append(start + i * m + a)
            else:  # ∂(X P)/∂X_ab = P[b, :] at row a: entries (a, j) ← P[b, j]
                a, b, j = np.meshgrid(np.arange(n), np.arange(n), np.arange(m), indexing="ij")
                rows.append(start + a * m + j)
                cols.append(f.offset + a * n + b)
                source.append(start + b * m + j)
        flat = [np.concatenate([np.ravel(x) for x in xs]) if xs else np.zeros(0, int) for xs in (rows, cols, source)]
        self._cached = (flat[0], flat[1], flat[2])
        return self._cached

    def parameter_columns(self) -> list[tuple[slice, slice]]:
        """Per parameter, (its coordinates in θ, its candidates' columns): every candidate field
        of a parameter moves only that parameter, so the fields' Gram matrix is block diagonal."""
        spans: dict[str, list[int]] = {}
        for f in self.families:
            lo, hi = spans.get(f.param, [f.offset, f.offset])
            spans[f.param] = [min(lo, f.offset), max(hi, f.offset + f.size)]
        return [(self.layout.slice_of(name), slice(lo, hi)) for name, (lo, hi) in spans.items()]

    def describe(self, column: int) -> str:
        f = next(f for f in self.families if f.offset <= column < f.offset + f.size)
        return f"{f.param}:{f.kind}"
