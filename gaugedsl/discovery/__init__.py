"""Symmetry discovery: the linear symmetries of a model, named in the language, set beside the
declared ones, and the conservation laws of gradient flow (docs/discovery.md).

`discover(model)` returns a `Discovery`; `gaugedsl symmetries FILE` prints it, `--json` writes
`Discovery.to_dict()`, `--write OUT.gauge` writes the model with the discovered declarations.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import ir
from .algebra import Algebra, discover_algebra, orthonormal_basis, outputs_function, residual
from .identify import NamedAction, identify, span_rank
from .laws import Laws, conservation_laws

__all__ = ["Discovery", "discover", "rewrite"]


@dataclasses.dataclass
class Declared:
    name: str
    dimension: int
    is_symmetry: bool  # it leaves the outputs unchanged (at the sample points)
    residual: float  # what its generators keep outside the discovered algebra, relative
    searched: bool = True  # its generators lie in the candidate families (False: a symmetry the search cannot see)


@dataclasses.dataclass
class Discovery:
    model: str
    algebra: Algebra
    named: list[NamedAction]
    unnamed: int  # directions of the algebra no named action covers
    declared: list[Declared]
    declared_rank: int  # dimension of the span of the declared symmetries that are symmetries
    missing: list[NamedAction]  # named actions outside the declared span
    laws: Laws | None

    @property
    def dimension(self) -> int:
        return self.algebra.dimension

    @property
    def nonlinear(self) -> int:
        """Directions of the fiber that no discovered linear symmetry moves along."""
        return max(0, self.algebra.fiber_dimension - self.algebra.orbit_dimension)

    def declarations(self) -> list[str]:
        return [a.declaration() for a in self.named]

    def verdict(self) -> str:
        """One line: how the declared algebra compares with the discovered one."""
        bad = [d.name for d in self.declared if not d.is_symmetry]
        if bad:
            return f"declared {', '.join(bad)}: not a symmetry of {self.algebra.outputs}"
        unseen = [d.name for d in self.declared if not d.searched]
        if unseen:
            return (
                f"declared {', '.join(unseen)}: a symmetry outside the forms the search covers (docs/discovery.md); "
                "the comparison covers the others"
            )
        if not self.declared:
            return f"no symmetry declared; discovered dimension {self.dimension}"
        if self.declared_rank == self.dimension:
            return f"the declared symmetries span the discovered algebra (dimension {self.dimension})"
        missing = self.dimension - self.declared_rank
        names = ", ".join(a.group for a in self.missing)
        return (
            f"the declared symmetries span {self.declared_rank} of the {self.dimension} discovered directions: "
            f"{missing} missing" + (f" ({names})" if names else "") + "; the bias is incomplete"
        )

    def to_dict(self) -> dict[str, Any]:
        a = self.algebra
        return {
            "model": self.model,
            "outputs": a.outputs,
            "dimension": self.dimension,
            "groups": [
                {"name": n.name, "group": n.group, "rules": list(n.rules), "dimension": n.dimension} for n in self.named
            ],
            "unnamed_directions": self.unnamed,
            "declarations": self.declarations(),
            "rank_tolerance": a.tolerance,
            "rank_gap": a.gap if np.isfinite(a.gap) else None,
            "determined": a.determined,
            "fiber_dimension": a.fiber_dimension,
            "orbit_dimension": a.orbit_dimension,
            "nonlinear_directions": self.nonlinear,
            "conservation_laws": self.laws.count if self.laws else None,
            "noether_charges": self.laws.charges if self.laws else None,
            "declared": [dataclasses.asdict(d) for d in self.declared],
            "declared_rank": self.declared_rank,
            "missing": [n.declaration() for n in self.missing],
            "verdict": self.verdict(),
            "skipped": a.candidates.skipped,
        }

    def __str__(self) -> str:
        a = self.algebra
        lines = [f"model {self.model}: linear symmetries of {a.outputs}"]
        gap = f"gap {a.gap:.2g}" if np.isfinite(a.gap) else "no nonzero singular value"
        lines.append(f"  discovered algebra: dimension {self.dimension} (rank tolerance {a.tolerance:.1e}, {gap})")
        if a.gap < 1e3:
            lines.append("  warning: the rank gap is small; the dimension is a fragile decision")
        if not a.determined:
            lines.append(
                "  warning: fewer conditions than unknowns (the point budget ran out): the dimension is an upper bound"
            )
        for n in self.named:
            lines.append(f"    {n.declaration()}    # dimension {n.dimension}")
        if self.unnamed:
            lines.append(f"    {self.unnamed} direction(s) not named as the language's groups")
        lines.append(
            f"  fiber: dimension {a.fiber_dimension} (of {a.tangent_dimension}) at generic points; "
            f"the discovered symmetries move along {a.orbit_dimension}"
            + (f": {self.nonlinear} direction(s) beyond any linear symmetry" if self.nonlinear else "")
        )
        if self.laws is not None:
            law = self.laws
            lines.append(
                f"  conservation laws of gradient flow (any loss of these outputs): {law.count}"
                + (
                    f", the Noether charges ½⟨θ, A θ⟩ of the discovered symmetries ({law.charges})"
                    if law.charges_are_all
                    else f"; the discovered symmetries' Noether charges account for {law.charges}"
                )
            )
        lines.append(f"  {self.verdict()}")
        if a.candidates.skipped:
            lines.append("  not searched (too large): " + ", ".join(a.candidates.skipped))
        return "\n".join(lines)


def discover(model: ir.Model, seed: int = 0, laws: bool = True) -> Discovery:
    """The linear symmetries of a checked model, compared with its declared ones. Computes in
    64-bit precision."""
    import jax

    from .._threefry import straight_line_threefry
    from ..geometry.engine import Geometry
    from ..lowering import Lowered

    # 64 bits for the rank decisions; the one-off initializer draws compile faster straight-line
    with jax.enable_x64(True), straight_line_threefry():
        lowered = Lowered(model)
        outputs, what = outputs_function(lowered)
        algebra = discover_algebra(lowered, seed=seed, outputs=(outputs, what))
        named, unnamed = identify(algebra)
        geo = Geometry(lowered)
        declared, spans = [], []
        thetas = jax.numpy.asarray(algebra.thetas)
        for name in geo.symmetries:
            at = jax.jit(jax.vmap(lambda t, name=name: jax.numpy.transpose(geo.generators_of(name, t))))
            gens = np.asarray(at(thetas), np.float64)  # (points, D, k)
            res = algebra.outside(gens)
            if res <= 1e-6:
                declared.append(Declared(name, gens.shape[2], True, res))
                spans.append(gens)
            else:  # outside the algebra: not a symmetry, or one the candidate families cannot express
                moved = _moved(outputs, thetas, gens)
                declared.append(Declared(name, gens.shape[2], moved <= 1e-6, res, searched=False))
        span = np.concatenate(spans, axis=2) if spans else np.zeros((len(thetas), lowered.layout.dimension, 0))
        declared_rank = span_rank(span)
        flat = span.reshape(span.shape[0] * span.shape[1], span.shape[2])
        q = orthonormal_basis(flat)
        missing = [a for a in named if residual(span, algebra.candidate_fields(a.coefficients), q) > 1e-6]
        found_laws = None
        if laws:
            found_laws = conservation_laws(lowered, outputs, algebra, seed)
    return Discovery(model.name, algebra, named, unnamed, declared, declared_rank, missing, found_laws)


def _moved(outputs, thetas, gens: np.ndarray) -> float:
    """max over the points of |Jφ(θ) ξ| / (|Jφ(θ)| |ξ|): how much the fields `gens` move the outputs."""
    import jax

    worst = 0.0
    jacobian = jax.jit(jax.jacfwd(outputs))
    for theta, g in zip(thetas, gens):
        jac = np.asarray(jacobian(theta), np.float64)
        scale = np.linalg.norm(jac, 2) * max(np.linalg.norm(g), 1e-300)
        worst = max(worst, float(np.linalg.norm(jac @ g) / scale) if scale > 0 else 0.0)
    return worst


def rewrite(text: str, discovery: Discovery, path: str = "<string>") -> str:
    """The program `text` completed by the discovery: the declared symmetries that are symmetries
    stay (records and the run block refer to them by name), the ones that are not are removed, and
    the discovered actions outside the declared span are added after the last symmetry statement
    (or after the loss), each under a name not yet taken. For a model without declarations that is
    every discovered action."""
    from ..syntax import ast, parse

    program = parse(text, path)
    lines = text.splitlines(keepends=True)
    not_symmetries = {d.name for d in discovery.declared if not d.is_symmetry}
    drop: set[int] = set()
    at = len(lines)
    seen_symmetry = False
    taken: set[str] = set()
    for item in program.items:
        name = getattr(item, "name", None)
        if isinstance(name, str):
            taken.add(name)
        if isinstance(item, ast.SymmetryInst) or isinstance(item, ast.SymmetryDecl) and item.params is None:
            if item.name in not_symmetries:
                drop.update(range(item.span.line - 1, item.span.end_line))
            at = item.span.end_line if not seen_symmetry or item.span.end_line > at else at
            seen_symmetry = True
        elif isinstance(item, ast.LossDecl) and not seen_symmetry:
            at = item.span.end_line
    added = []
    for action in discovery.missing:
        name, k = action.name, 2
        while name in taken:
            name, k = f"{action.name}_{k}", k + 1
        taken.add(name)
        added.append(dataclasses.replace(action, name=name).declaration() + "\n")
    if not added and not drop:
        return text
    block = ["# symmetries discovered by `gaugedsl symmetries`\n", *added] if added else []
    kept = [line for i, line in enumerate(lines) if i not in drop]
    index = at - sum(1 for i in drop if i < at)
    if kept and index > 0 and not kept[index - 1].endswith("\n"):
        kept[index - 1] += "\n"
    return "".join(kept[:index] + block + kept[index:])
