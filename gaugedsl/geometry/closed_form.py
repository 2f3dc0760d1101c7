"""Closed forms of the gauge-correction bias `R_T = (T/2) log det G` on the slice.

For the recognised action shapes (`structure.Pattern`) the per-orbit Gram determinant is
derived with SymPy from the generators of one coordinate block (one unit of the rescaling,
or the spectral form of GL/O), then summed. `numeric` evaluates the same formula on a
point of the slice, so tests compare it with the generic Cholesky route.

Product chains are found from the generators, not from the spelling (`chain_closed_form`):
any torus action whose components are depth-L chains, however its algebra basis is written.
`closed_form_of` picks the form for a symmetry of a model, or says why there is none.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from typing import Callable, cast

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .. import ir
from .structure import Pattern, TorusComponent, torus_components


@dataclasses.dataclass(frozen=True)
class ClosedForm:
    block_logdet: sp.Expr  # log det of one block's Gram on the slice, in predictor terms
    bias: sp.Expr  # (T/2) Σ_blocks block_logdet, with its summation index
    condition: str  # the gauge condition χ = 0, in words of the parameters
    numeric: Callable[[dict], float]  # log det G at a slice point, from the same formula
    note: str = ""
    shown: str | None = None  # the text, where `bias` is several sums
    structure: str | None = None  # what was recognised numerically (no `Pattern`)

    def text(self) -> str:
        """`(T/2) Σ_{i=1..n} (log|w_i| + log(2))`-style text of the bias."""
        if self.shown is not None:
            return self.shown
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
    for layer in range(depth - 1):
        xi = [0] * depth
        xi[layer], xi[layer + 1] = xs[layer], -xs[layer + 1]
        gens.append(sp.Matrix(xi))
    gram = sp.Matrix(depth - 1, depth - 1, lambda a, b: (gens[a].T * gens[b])[0])
    s = sp.Symbol("s", positive=True)
    on_slice = {x: s for x in xs}  # x_1 = … = x_L = s on the positive orthant
    det = sp.simplify(cast(sp.Expr, gram.det()).subs(on_slice))
    s_of_w = sp.solve(sp.Eq(s**depth, w), s)[0]  # the predictor of the block is Π x_l
    return sp.simplify(sp.powsimp(det.subs(s, s_of_w), force=True)), w


# sympy's stubs type the constructors of Idx and IndexedBase as returning Basic.


def _idx(name: str) -> sp.Idx:
    return cast(sp.Idx, sp.Idx(name))


def _indexed(name: str) -> sp.IndexedBase:
    return cast(sp.IndexedBase, sp.IndexedBase(name))


def closed_form(sym: ir.Symmetry, pattern: Pattern | None, model: ir.Model) -> ClosedForm | None:
    if pattern is None:
        return None
    i = _idx("i")
    if pattern.kind in ("hadamard", "telescope"):
        depth = 2 if pattern.kind == "hadamard" else sym.group.dims[0] + 1
        block, w = _balanced_block(pattern.kind, depth)
        wi = _indexed("w")[i]
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

        return ClosedForm(
            block,
            bias,
            cond,
            numeric,
            f"w = {'⊙'.join(names) if pattern.kind == 'hadamard' else 'prod(' + names[0] + ', axis = 0)'}",
        )
    if pattern.kind in ("neuron", "columns"):
        block, w = _balanced_block("hadamard", 2)
        a, b = _indexed("a")[i], _indexed("b")[i]
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
        j = _idx("j")
        sigma = _indexed("sigma")
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


# ---- product chains, from the generators ----


def chain_closed_form(geo, name: str) -> tuple[ClosedForm | None, str | None]:
    """The closed form of a torus action whose every component is a depth-L product chain:
    L coordinates θ_1..θ_L and L − 1 generators whose exponent vectors span all traceless
    vectors of R^L (std.deep's deep3/deep4, the stacked telescope, the same over scalars, in
    any basis of the algebra). With M = B C (C the chain basis e_l − e_{l+1}),
    det G = det(B)² e_{L−1}(θ_1², …, θ_L²) (docs/theory.md, P8), and on the slice (all θ_l²
    equal: M θ² = 0) that is det(B)² L |w|^{2(L−1)/L} with w = Π_l θ_l: the bias is
    T(1 − 1/L) log|w| + (T/2)(log L + 2 log|det B|) per component. Returns (None, why) else."""
    sym = geo.symmetries[name]
    k = sym.group.algebra_dim
    components = torus_components(lambda t: geo.generators_of(name, t), geo.dimension, k, jnp.zeros(()).dtype)
    if components is None:
        return None, None  # not a torus action: nothing to say beyond "no closed form"
    found = [_chain(c) for c in components]
    chains = [c for c in found if c is not None]
    if len(chains) != len(found):
        return None, (
            "a rescaling, but not of product chains (a component's generators do not span all traceless "
            "exponent vectors)"
        )
    labels = [[_coordinate(geo.layout, j) for j in c.coords] for c in components]
    aligned = _aligned(labels)
    groups: dict[tuple[int, float], list[int]] = {}
    for i, (depth, log_det_b) in enumerate(chains):
        groups.setdefault((depth, round(log_det_b, 9)), []).append(i)
    texts, biases, blocks = [], [], []
    idx = _idx("i")
    for (depth, _), members in groups.items():
        block, w = _balanced_block("telescope", depth)
        block = _nice(np.exp(2 * chains[members[0]][1])) * block  # det(B)² L |w|^{2(L−1)/L}
        wi = _indexed("w")[idx]
        term = sp.expand_log(sp.log(block.subs(w, sp.Abs(wi))), force=True)
        bias = _T / 2 * sp.Sum(term, (idx, 1, len(members)))
        biases.append(bias)
        blocks.append(block)
        texts.append(ClosedForm(block, bias, "", lambda p: 0.0).text())
    coords = [np.asarray(c.coords) for c in components]
    consts = np.asarray([np.log(d) + 2 * lb for d, lb in chains])
    expo = np.asarray([2 * (1 - 1 / d) for d, _ in chains])
    names = geo.layout.names

    def numeric(params):
        theta = np.concatenate([np.ravel(np.asarray(params[n], np.float64)) for n in names])
        return float(sum(c + e * np.sum(np.log(np.abs(theta[j]))) for c, e, j in zip(consts, expo, coords)))

    depths = sorted({d for d, _ in chains})
    if aligned is not None:
        params, scalar = aligned
        w = "·".join(params) if scalar else "⊙".join(params)
        cond = " = ".join(f"{p}²" if scalar else f"{p}_i²" for p in params)
        chains_found = f"{len(components)} depth-{depths[0]} chain{'s' * (len(components) > 1)}"
        note = f"w = {w} (components found from the generators: {chains_found})"
    else:
        cond = "θ_1² = … = θ_L² within each component"
        depth_list = ", ".join(map(str, depths))
        note = f"w_i = the product of the coordinates of component i ({len(components)} chains of depth {depth_list})"
    if any(round(lb, 9) != 0 for _, lb in chains):
        note += "; the algebra basis is B times the chain basis e_l − e_{l+1}: the constant includes log det(B)²"
    shown = " + ".join(texts) if len(texts) > 1 else None
    return ClosedForm(
        blocks[0], functools.reduce(operator.add, biases), cond, numeric, note, shown, "product chains"
    ), None


def _chain(c: TorusComponent) -> tuple[int, float] | None:
    """(L, log|det B|) if the component is a depth-L chain, else None."""
    m = c.matrix
    depth = m.shape[1]
    if depth < 2 or m.shape[0] != depth - 1:
        return None
    scale = max(np.max(np.abs(m)), 1.0)
    if np.max(np.abs(m.sum(axis=1))) > 1e-9 * scale or np.linalg.matrix_rank(m, tol=1e-9 * scale) != depth - 1:
        return None
    chain = np.eye(depth)[:-1] - np.eye(depth, k=1)[:-1]  # rows e_l − e_{l+1}
    b = m @ np.linalg.pinv(chain)  # M = B C: M's rows lie in C's row space (traceless vectors)
    return depth, float(np.log(abs(np.linalg.det(b))))


def _coordinate(layout, j: int) -> tuple[str, tuple[int, ...]]:
    for name, shape, offset, size in zip(layout.names, layout.shapes, layout.offsets, layout.sizes):
        if offset <= j < offset + size:
            return name, tuple(int(i) for i in np.unravel_index(j - offset, shape)) if shape else ()
    raise IndexError(j)


def _aligned(labels) -> tuple[tuple[str, ...], bool] | None:
    """(params, scalar) if component i is {p[i] for p in params} for every i, with the same
    params in every component (u1 ⊙ u2 ⊙ u3), else None."""
    params = tuple(p for p, _ in labels[0])
    if len(set(params)) != len(params):
        return None
    for coords in labels:
        if tuple(p for p, _ in coords) != params or len({i for _, i in coords}) != 1:
            return None
    return params, labels[0][0][1] == () and len(labels) == 1


def _nice(x: float):
    """det(B)² as an exact rational where it is one (exponents are small rationals)."""
    r = cast(sp.Rational, sp.Rational(x)).limit_denominator(10**4)  # x is finite (sympy types NaN, zoo too)
    return r if abs(float(r) - x) <= 1e-9 * max(abs(x), 1.0) else sp.Float(x)


# ---- which closed form a symmetry of a model gets ----


def closed_form_of(geo, name: str) -> tuple[ClosedForm | None, str | None]:
    """The closed form of symmetry `name` of `geo`'s model, or (None, why not)."""
    sym, pattern = geo.symmetries[name], geo.patterns[name]
    if pattern is not None and pattern.kind == "orthogonal":
        balancing = _balancing_gl(geo, pattern)
        if balancing is None:
            p, q = pattern.params
            return None, (
                f"the closed form Π_{{i<j}}(σ_i + σ_j) holds only where {p}ᵀ{p} = {q}ᵀ{q}; the charges of an "
                f"orthogonal group vanish identically, so nothing drives the model there (a GL symmetry of "
                f"{p} and {q} would; a diagonal rescaling balances only the column norms)"
            )
        cf = closed_form(sym, pattern, geo.model)
        assert cf is not None  # closed_form covers every pattern kind
        note = cf.note + f", reached through '{balancing}' (GL[r] of the same factors)"
        return dataclasses.replace(cf, note=note), None
    if pattern is not None:
        return closed_form(sym, pattern, geo.model), None
    return chain_closed_form(geo, name)


def _balancing_gl(geo, pattern: Pattern) -> str | None:
    """A GL symmetry of the same two factors (whose charges UᵀU − VᵀV drive the balance)."""
    for other, p in geo.patterns.items():
        if p is None:
            continue
        same_factors = set(p.params) == set(pattern.params) and p.transposed == pattern.transposed
        if same_factors and p.kind == "gl":
            return other
    return None
