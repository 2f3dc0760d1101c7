"""Closed forms of the gauge-correction bias `R_T = (T/2) log det G` on the slice.

For the recognised action shapes (`structure.Pattern`) the per-orbit Gram determinant is
derived with SymPy from the generators of one coordinate block (one unit of the rescaling,
or the spectral form of GL/O), then summed. `numeric` evaluates the same formula on a
point of the slice, so tests compare it with the generic Cholesky route.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import sympy as sp

from .. import ir
from .structure import Pattern


@dataclasses.dataclass(frozen=True)
class ClosedForm:
    block_logdet: sp.Expr  # log det of one block's Gram on the slice, in predictor terms
    bias: sp.Expr  # (T/2) Σ_blocks block_logdet, with its summation index
    condition: str  # the gauge condition χ = 0, in words of the parameters
    numeric: Callable[[dict], float]  # log det G at a slice point, from the same formula
    note: str = ""

    def text(self) -> str:
        """`(T/2) Σ_{i=1..n} (log|w_i| + log(2))`-style text of the bias."""
        coeff, sums = self.bias.as_independent(sp.Sum, as_Add=False)
        if not isinstance(sums, sp.Sum):
            return sp.sstr(self.bias)
        limits = ", ".join(f"{v}={_show(lo)}..{_show(hi)}" for v, lo, hi in sums.limits)
        return f"({_show(coeff)}) Σ_{{{limits}}} ({_show(sums.function)})"


_T = sp.Symbol("T", positive=True)


def _balanced_block(pattern_kind: str, depth: int = 2) -> tuple[sp.Expr, sp.Symbol]:
    """Derive det G of one block on the balanced slice as a function of the predictor.

    One block: factors x_1..x_L > 0 (the magnitudes of u_i, v_i; or of a layer's row and
    column norms). The rescalings x_l → x_l·g_l/g_{l−1} have generators ξ_l = x_l e_l −
    x_{l+1} e_{l+1}; the slice is x_1² = … = x_L² (the charges ½(x_l² − x_{l+1}²) vanish).
    """
    xs = sp.symbols(f"x1:{depth + 1}", positive=True)
    w = sp.Symbol("w", positive=True)
    gens = []
    for l in range(depth - 1):
        xi = [0] * depth
        xi[l], xi[l + 1] = xs[l], -xs[l + 1]
        gens.append(sp.Matrix(xi))
    gram = sp.Matrix(depth - 1, depth - 1, lambda a, b: (gens[a].T * gens[b])[0])
    s = sp.Symbol("s", positive=True)
    on_slice = {x: s for x in xs}  # x_1 = … = x_L = s on the positive orthant
    det = sp.simplify(gram.det().subs(on_slice))
    s_of_w = sp.solve(sp.Eq(s**depth, w), s)[0]  # the predictor of the block is Π x_l
    return sp.simplify(sp.powsimp(det.subs(s, s_of_w), force=True)), w


def closed_form(sym: ir.Symmetry, pattern: Pattern | None, model: ir.Model) -> ClosedForm | None:
    if pattern is None:
        return None
    i = sp.Idx("i")
    if pattern.kind in ("hadamard", "telescope"):
        depth = 2 if pattern.kind == "hadamard" else sym.group.dims[0] + 1
        block, w = _balanced_block(pattern.kind, depth)
        wi = sp.IndexedBase("w")[i]
        block_w = block.subs(w, sp.Abs(wi))
        n = int(np.prod(sym.group.element_shape[1:] if pattern.kind == "telescope" else sym.group.element_shape)) or 1
        bias = _T / 2 * sp.Sum(sp.expand_log(sp.log(block_w), force=True), (i, 1, n))
        fn = sp.lambdify(w, block, "numpy")
        names = pattern.params
        if pattern.kind == "hadamard":
            cond = f"{names[0]}_i² = {names[1]}_i²"

            def numeric(params):
                return float(np.sum(np.log(fn(np.abs(np.asarray(params[names[0]]) * np.asarray(params[names[1]]))))))
        else:
            cond = f"{names[0]}[0, i]² = … = {names[0]}[{depth - 1}, i]²"

            def numeric(params):
                return float(np.sum(np.log(fn(np.abs(np.prod(np.asarray(params[names[0]]), axis=0))))))

        return ClosedForm(block, bias, cond, numeric, f"w = {'⊙'.join(names) if pattern.kind == 'hadamard' else 'prod(' + names[0] + ', axis = 0)'}")
    if pattern.kind in ("neuron", "columns"):
        block, w = _balanced_block("hadamard", 2)
        a, b = sp.IndexedBase("a")[i], sp.IndexedBase("b")[i]
        h = sym.group.element_shape[0]
        bias = _T / 2 * sp.Sum(sp.expand_log(sp.log(block.subs(w, a * b)), force=True), (i, 1, h))
        fn = sp.lambdify(w, block, "numpy")
        p, q = pattern.params
        if pattern.kind == "neuron":
            note = f"a_i = ‖{p}[i, :]‖, b_i = ‖{q}[:, i]‖"

            def norms(params):
                return np.linalg.norm(np.asarray(params[p]), axis=1), np.linalg.norm(np.asarray(params[q]), axis=0)
        else:
            note = f"a_i = ‖{p}[:, i]‖, b_i = ‖{q}[:, i]‖"

            def norms(params):
                return np.linalg.norm(np.asarray(params[p]), axis=0), np.linalg.norm(np.asarray(params[q]), axis=0)

        def numeric(params):
            na, nb = norms(params)
            return float(np.sum(np.log(fn(na * nb))))

        return ClosedForm(block, bias, "a_i² = b_i²", numeric, note)
    if pattern.kind in ("gl", "orthogonal"):
        (r,) = sym.group.dims
        j = sp.Idx("j")
        sigma = sp.IndexedBase("sigma")
        p, q = pattern.params
        if pattern.kind == "gl":
            block = sp.log(sigma[i] + sigma[j])
            bias = _T / 2 * sp.Sum(block, (i, 1, r), (j, 1, r))
            cond = f"{p}ᵀ{p} = {q}{q}ᵀ" if pattern.transposed else f"{p}ᵀ{p} = {q}ᵀ{q}"

            def numeric(params):
                s = _svals(params, p, q, pattern.transposed)[:r]
                return float(np.sum(np.log(s[:, None] + s[None, :])))
        else:
            block = sp.log(sigma[i] + sigma[j])
            bias = _T / 2 * sp.Sum(block, (j, 1, r), (i, 1, j - 1))
            cond = "none: the charges of an orthogonal group vanish identically (every point is on the slice)"

            def numeric(params):
                s = _svals(params, p, q, pattern.transposed)[:r]
                ii, jj = np.triu_indices(r, 1)
                return float(np.sum(np.log(s[ii] + s[jj])))

        w = f"{p} @ {q}" if pattern.transposed else f"{p} @ {q}.T"
        return ClosedForm(block, bias, cond, numeric, f"σ = singular values of {w} (on the balanced slice)")
    return None


def _svals(params, p, q, transposed):
    w = np.asarray(params[p]) @ (np.asarray(params[q]) if transposed else np.asarray(params[q]).T)
    return np.linalg.svd(w, compute_uv=False)


def _show(e) -> str:
    import re

    text = sp.sstr(e)
    text = re.sub(r"Abs\(([^()]*)\)", r"|\1|", text)
    text = re.sub(r"(\w+)\[(\w+)\]", lambda m: f"{'σ' if m.group(1) == 'sigma' else m.group(1)}_{m.group(2)}", text)
    return text.replace("T/2", "T/2").replace("**", "^").replace("*", "·")
