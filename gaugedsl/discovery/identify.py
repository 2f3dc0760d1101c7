"""Naming a discovered algebra in the language's groups.

We enumerate the actions the language can declare on the model's parameters — `GL[r]`, `O[r]` and
`Scale[r]` coupling a side of one matrix to a side of another, `Scale[shape]` between two arrays of
one shape, the telescoping chain of a stacked deep product, a scalar rescaling or translation of
one parameter — each with its generators in the candidates' coefficients, and keep, largest first,
every one whose generators lie in the discovered algebra and add a direction not yet named.
What is left (the algebra's dimension minus the named ones') is reported as unnamed directions.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from .algebra import Algebra
from .candidates import Candidates


@dataclasses.dataclass(frozen=True)
class NamedAction:
    name: str
    group: str  # as declared: "GL[4]", "Scale[20]", ...
    rules: tuple[str, ...]  # "U -> U @ g", ...
    coefficients: np.ndarray = dataclasses.field(compare=False, repr=False)

    @property
    def dimension(self) -> int:
        return int(self.coefficients.shape[1])

    def declaration(self) -> str:
        return f"symmetry {self.name} : {self.group} {{ " + "  ".join(self.rules) + " }"


def _unit(c: Candidates, entries) -> np.ndarray:
    """A coefficient vector from (family, flat index, value) entries."""
    v = np.zeros(c.size)
    for fam, index, value in entries:
        v[fam.offset + index] += value
    return v


def _matrix_basis(r: int, kind: str):
    """Basis matrices X of gl(r), o(r) or the diagonal."""
    if kind == "GL":
        for a, b in itertools.product(range(r), repeat=2):
            x = np.zeros((r, r))
            x[a, b] = 1.0
            yield x
    elif kind == "O":
        for a, b in itertools.combinations(range(r), 2):
            x = np.zeros((r, r))
            x[a, b], x[b, a] = 1.0, -1.0
            yield x
    else:
        for a in range(r):
            x = np.zeros((r, r))
            x[a, a] = 1.0
            yield x


def _side_coefficients(c: Candidates, param: str, side: str, x: np.ndarray) -> np.ndarray | None:
    fam = c.family(param, side)
    if fam is None:
        return None
    v = np.zeros(c.size)
    v[fam.offset : fam.offset + fam.size] = x.ravel()
    return v


# How the partner compensates, per (side of P, side of Q): its field as a function of X, and the rules.
_PAIRINGS = {
    ("right", "right"): (lambda x: -x.T, "{P} -> {P} @ g", "{Q} -> {Q} @ inv(g).T"),
    ("right", "left"): (lambda x: -x, "{P} -> {P} @ g", "{Q} -> inv(g) @ {Q}"),
    ("left", "left"): (lambda x: -x.T, "{P} -> g @ {P}", "{Q} -> inv(g).T @ {Q}"),
    ("left", "right"): (lambda x: -x, "{P} -> g @ {P}", "{Q} -> {Q} @ inv(g)"),
}
_SCALE_RULES = {
    "right": ("{P} -> {P} * g", "{P} -> {P} / g"),
    "left": ("{P} -> diag(g) @ {P}", "{P} -> diag(1 / g) @ {P}"),
}


def catalogue(c: Candidates) -> list[NamedAction]:
    """Every action the identification tries, largest algebra first."""
    layout = c.layout
    shapes = dict(zip(layout.names, layout.shapes))
    out: list[NamedAction] = []
    matrices = [n for n in layout.names if len(shapes[n]) == 2]
    sizes = {"right": 1, "left": 0}
    for p, q in itertools.combinations(matrices, 2):
        for (sp, sq), (partner, rule_p, rule_q) in _PAIRINGS.items():
            r = shapes[p][sizes[sp]]
            if r != shapes[q][sizes[sq]] or c.family(p, sp) is None or c.family(q, sq) is None:
                continue
            for kind in ("GL", "O", "Scale"):
                cols = []
                for x in _matrix_basis(r, kind):
                    a, b = _side_coefficients(c, p, sp, x), _side_coefficients(c, q, sq, partner(x))
                    assert a is not None and b is not None
                    cols.append(a + b)
                if not cols:
                    continue
                if kind == "Scale":
                    rules = (_SCALE_RULES[sp][0].format(P=p), _SCALE_RULES[sq][1].format(P=q))
                else:
                    rules = (rule_p.format(P=p, Q=q), rule_q.format(P=p, Q=q))
                group = f"{kind}[{r}]"
                out.append(NamedAction(f"{kind.lower()}_{p}_{q}", group, rules, np.stack(cols, axis=1)))
    for p, q in itertools.combinations(layout.names, 2):
        if shapes[p] != shapes[q]:
            continue
        fp, fq = c.family(p, "scale"), c.family(q, "scale")
        assert fp is not None and fq is not None
        cols = [_unit(c, [(fp, i, 1.0), (fq, i, -1.0)]) for i in range(fp.size)]
        group = "Scale" + (f"[{', '.join(map(str, shapes[p]))}]" if shapes[p] else "")
        out.append(NamedAction(f"scale_{p}_{q}", group, (f"{p} -> g * {p}", f"{q} -> {q} / g"), np.stack(cols, 1)))
    for p in layout.names:
        shape, fam = shapes[p], c.family(p, "scale")
        assert fam is not None
        if len(shape) == 2 and shape[0] >= 2:
            rows, n = shape
            cols = [
                _unit(c, [(fam, layer * n + i, 1.0), (fam, (layer + 1) * n + i, -1.0)])
                for layer in range(rows - 1)
                for i in range(n)
            ]
            out.append(
                NamedAction(f"chain_{p}", f"Scale[{rows - 1}, {n}]", (f"{p} -> telescope(g) * {p}",), np.stack(cols, 1))
            )
        for side, kind in itertools.product(("right", "left"), ("O",)):
            fam_side = c.family(p, side)
            if fam_side is None:
                continue
            r = fam_side.shape[0]
            cols = []
            for x in _matrix_basis(r, kind):
                v = np.zeros(c.size)
                v[fam_side.offset : fam_side.offset + fam_side.size] = x.ravel()
                cols.append(v)
            if cols:
                rule = f"{p} -> {p} @ g" if side == "right" else f"{p} -> g @ {p}"
                out.append(NamedAction(f"o_{p}_{side}", f"O[{r}]", (rule,), np.stack(cols, 1)))
        out.append(
            NamedAction(
                f"scale_{p}", "Scale", (f"{p} -> g * {p}",), _unit(c, [(fam, i, 1.0) for i in range(fam.size)])[:, None]
            )
        )
        shift = c.family(p, "translate")
        assert shift is not None
        out.append(
            NamedAction(
                f"shift_{p}",
                "Translate",
                (f"{p} -> {p} + g",),
                _unit(c, [(shift, i, 1.0) for i in range(shift.size)])[:, None],
            )
        )
        if len(shape) == 2:  # the same shift for every row: P + g, g of the last axis's size
            k, d = shape
            cols = [_unit(c, [(shift, i * d + j, 1.0) for i in range(k)]) for j in range(d)]
            out.append(NamedAction(f"shift_{p}_rows", f"Translate[{d}]", (f"{p} -> {p} + g",), np.stack(cols, 1)))
    return sorted(out, key=lambda a: -a.dimension)


def identify(algebra: Algebra, tolerance: float = 1e-6) -> tuple[list[NamedAction], int]:
    """The named actions that span the algebra (greedily, largest first), and how many of its
    directions are left unnamed."""
    chosen: list[NamedAction] = []
    named = np.zeros((algebra.thetas.shape[0], algebra.fields.shape[1], 0))
    rank = 0
    for action in catalogue(algebra.candidates):
        if rank >= algebra.dimension:
            break
        fields = algebra.candidate_fields(action.coefficients)
        if algebra.outside(fields) > tolerance:
            continue
        together = np.concatenate([named, fields], axis=2)
        new_rank = span_rank(together)
        if new_rank > rank:
            chosen.append(action)
            named, rank = together, new_rank
    return chosen, algebra.dimension - rank


def span_rank(fields: np.ndarray) -> int:
    """The dimension of the span of linear fields (points, D, j): one coefficient vector at every
    point."""
    m = fields.reshape(fields.shape[0] * fields.shape[1], fields.shape[2])
    if m.shape[1] == 0:
        return 0
    sv = np.linalg.svd(m, compute_uv=False)
    return int(np.sum(sv > 1e-7 * sv[0])) if sv[0] > 0 else 0
