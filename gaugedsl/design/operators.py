"""Analysis operators A of inverse design (docs/theory.md §4.1 step 1): the bias is a sparsity
penalty on z = A w, and the designed model writes w = A⁻¹ z with z a Hadamard product.

Each operator has its matrix (numpy, float64: the verification's independent reference) and
the `.gauge` text of its synthesis w = A⁻¹ z (what the generated model computes). The two are
built separately on purpose, so that verifying the designed model also checks the text.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Operator:
    """**Fields:** `name` (`identity`, `cosine`, `fourier`, `difference` or a data matrix's
    name), `matrix` (A, n×n, or None for the identity), `symbol` (how formulas write A),
    `what` (a phrase for the report), `data` (the data definitions the synthesis needs:
    (name, size text, expression text)), `synthesis` (z text → w text)."""

    name: str
    matrix: np.ndarray | None
    symbol: str
    what: str
    data: tuple[tuple[str, str, str], ...]
    synthesis: Callable[[str], str]

    def apply(self, w: np.ndarray) -> np.ndarray:
        """z = A w."""
        return w if self.matrix is None else self.matrix @ w


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II: C[k, j] = s_k cos(π k (j + ½) / n), s_0 = √(1/n), s_k = √(2/n)."""
    k, j = np.arange(n)[:, None], np.arange(n)[None, :]
    scale = np.where(k == 0, np.sqrt(1.0 / n), np.sqrt(2.0 / n))
    return scale * np.cos(np.pi * k * (j + 0.5) / n)


def fourier_matrix(n: int) -> np.ndarray:
    """The real orthonormal Fourier basis: the constant row, √(2/n) cos(2π k j / n) and
    √(2/n) sin(2π k j / n) for k = 1 … ⌊(n − 1)/2⌋, and (−1)^j / √n when n is even."""
    m = (n - 1) // 2
    j = np.arange(n)[None, :]
    k = np.arange(1, m + 1)[:, None]
    rows = [
        np.full((1, n), 1.0 / np.sqrt(n)),
        np.sqrt(2.0 / n) * np.cos(2 * np.pi * k * j / n),
        np.sqrt(2.0 / n) * np.sin(2 * np.pi * k * j / n),
    ]
    if n % 2 == 0:
        rows.append(np.cos(np.pi * j) / np.sqrt(n))
    return np.concatenate(rows, axis=0)


def difference_matrix(n: int) -> np.ndarray:
    """Finite differences with z_0 = w_0: (D w)_0 = w_0, (D w)_i = w_i − w_{i−1}."""
    return np.eye(n) - np.eye(n, k=-1)


def _dct_text(n: int) -> str:
    # s_k = √((2 − δ_k0)/n) written with spikes(): the k = 0 row is scaled by √(1/n).
    return f"cos(pi * reshape(arange({n}), [{n}, 1]) * (arange({n}) + 0.5) / {n}) * reshape(sqrt((2 - spikes(at = [0], values = [1], shape = [{n}])) / {n}), [{n}, 1])"


def _fourier_text(n: int) -> str:
    m = (n - 1) // 2
    rows = [f"full(1 / sqrt({n}), shape = [1, {n}])"]
    if m:
        freq = f"2 * pi * reshape(arange(1, {m + 1}), [{m}, 1]) * arange({n}) / {n}"
        rows += [f"sqrt(2 / {n}) * cos({freq})", f"sqrt(2 / {n}) * sin({freq})"]
    if n % 2 == 0:
        rows.append(f"reshape(cos(pi * arange({n})), [1, {n}]) / sqrt({n})")
    return rows[0] if len(rows) == 1 else f"concat({', '.join(rows)}, axis = 0)"


def _parens(z: str) -> str:
    """`z` as an operand of `@`: a bare call or name stays, anything else is parenthesized."""
    return z if re.fullmatch(r"\w+(\([^()]*\))?", z) else f"({z})"


def make(name: str, n: int, fresh: Callable[[str], str], matrix: np.ndarray | None = None) -> Operator:
    """The operator `name` on vectors of size n. `fresh(base)` gives an unused name for a
    data definition; `matrix` is the value of a user's data matrix."""
    if name == "identity":
        return Operator(name, None, "I", "the coefficients themselves", (), lambda z: z)
    if name == "difference":
        return Operator(
            name,
            difference_matrix(n),
            "D",
            "the finite differences: (D w)_i = w_i − w_{i−1}, (D w)_0 = w_0",
            (),
            lambda z: f"cumsum({z})",
        )
    if name == "cosine":
        d = fresh("dct")
        return Operator(
            name,
            dct_matrix(n),
            "C",
            "the orthonormal cosine (DCT-II) basis",
            ((d, f"{n}, {n}", _dct_text(n)),),
            lambda z: f"{d}.T @ {_parens(z)}",
        )
    if name == "fourier":
        d = fresh("fourier_basis")
        return Operator(
            name,
            fourier_matrix(n),
            "F",
            "the real orthonormal Fourier basis",
            ((d, f"{n}, {n}", _fourier_text(n)),),
            lambda z: f"{d}.T @ {_parens(z)}",
        )
    inv = fresh(f"{name}_inv")
    return Operator(
        name,
        np.asarray(matrix, dtype=np.float64),
        name,
        f"the data matrix {name}",
        ((inv, f"{n}, {n}", f"inv({name})"),),
        lambda z: f"{inv} @ {_parens(z)}",
    )
