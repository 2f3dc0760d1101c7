"""Inverse design (docs/theory.md §4): from a target bias stated in a `design` block to a new
`.gauge` model whose redundant parameterization induces it, verified by the geometry engine.

`design(path, out)` reads and checks the source, resolves the target (`family.realize`),
writes the designed text (`emit.emit`), checks it, and compares its induced bias with the
target (`verify.verify`). `Ensemble` runs gradient-descent models over several seeds in one
vmapped program, for the paper's inverse-design experiments (`compare`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .. import ir
from ..atomic import write_text as write_atomic  # noqa: F401 — public: gd.write_atomic
from ..check import Loader
from ..diagnostics import Diagnostic, GaugeError, error, warning
from .bias_check import Verification as Verification
from .bias_check import verify as verify
from .family import FAMILY as FAMILY
from .family import Realization as Realization
from .family import realize as realize
from .source import Source as Source
from .writer import emit

RANDOM_DATA = ("normal", "uniform", "bernoulli", "sparse", "orthonormal")


@dataclasses.dataclass(frozen=True)
class Designed:
    """**Fields:** `source` and `out` (paths), `text` (the designed model), `model` (its
    IR), `realization`, `verification`, `warnings`. `str()` is the report the CLI prints."""

    source: str
    out: str
    text: str
    model: ir.Model
    realization: Realization
    verification: Verification
    warnings: tuple[Diagnostic, ...]

    def __str__(self) -> str:
        from .report import render

        return render(self)

    def to_dict(self) -> dict:
        r, v = self.realization, self.verification
        return {
            "source": self.source,
            "out": self.out,
            "target": r.target,
            "predictor": r.predictor,
            "kind": r.kind,
            "depth": r.depth,
            "rank": r.rank,
            "operator": None if r.operator is None else r.operator.name,
            "formula": r.formula(),
            "realization": r.realized_as(),
            "symmetry": r.symmetry,
            "factors": list(r.factors),
            "T": v.T,
            "induced": v.induced.tolist(),
            "target_bias": v.target.tolist(),
            "constant": v.constant,
            "expected_constant": v.expected,
            "max_deviation": v.deviation,
            "max_charge": v.max_charge,
            "warnings": [w.message for w in self.warnings],
            "text": self.text,
        }


def design(
    source: str | Path | ir.Model, out: str | Path | None = None, points: int = 6, loader: Loader | None = None
) -> Designed:
    """Design the model at `source` (a path, or a checked model read from a file) into text
    meant for `out` (default: `NAME_designed.gauge` beside it; nothing is written). Raises
    `GaugeError` for a program that does not check or a target out of the family."""
    if isinstance(source, ir.Model):
        if source.path.startswith("<") or not Path(source.path).is_file():
            raise GaugeError(
                [
                    error(
                        "E606",
                        None,
                        f"model '{source.name}' was not read from a file; design rewrites the source text",
                        "save the program as a .gauge file and design that",
                    )
                ]
            )
        source = source.path
    path = Path(source)
    out = Path(out) if out is not None else path.with_name(f"{path.stem}_designed.gauge")
    src = Source.read(path, loader)
    _same_folder(src, out)
    r = realize(src)
    text = emit(src, r, str(out))
    try:
        model = (loader or Loader()).check_text(text, str(out))
    except GaugeError as exc:
        if not any(d.code in ("E105", "E202") for d in exc.diagnostics):
            raise AssertionError(f"the designed model does not check:\n{exc}\n---\n{text}") from None  # a bug here
        # The source has a template of the stdlib's name: write the symmetry out instead.
        text = emit(src, r, str(out), inline=True)
        try:
            model = (loader or Loader()).check_text(text, str(out))
        except GaugeError as again:
            raise AssertionError(f"the designed model does not check:\n{again}\n---\n{text}") from None
    if not isinstance(model, ir.Model):
        raise AssertionError(f"the designed text is not a model:\n{text}")  # a bug here
    check = verify(model, r, points=points)
    if not check.ok():
        raise GaugeError(
            [
                error(
                    "E609",
                    src.design_block.span,
                    f"the designed model's induced bias does not match the target (deviation {check.deviation:.3g}, constant {check.constant:.6g} vs {check.expected:.6g})",
                    "this is a bug in gaugedsl design; please report it with the file",
                )
            ]
        )
    return Designed(str(path), str(out), text, model, r, check, tuple(_unseeded(src)))


def _same_folder(src: Source, out: Path) -> None:
    """Local imports and `load("file")` are read relative to the program's folder: a designed
    model written elsewhere would not find them."""
    if Path(out).resolve().parent == Path(src.path).resolve().parent:
        return
    from ..syntax import ast

    local = [i for i in src.items(ast.Import) if i.path[0] != "std"]
    loads = [c for d in src.model.data for c in _calls(d.value) if c.func == "load"]
    loads += [c for p in src.model.params for c in _calls(p.init) if c.func == "load"]
    if local or loads:
        span = local[0].span if local else loads[0].span
        raise GaugeError(
            [
                error(
                    "E606",
                    span,
                    "the source reads files beside it (local imports or load(...)); a designed model in another folder would not find them",
                    f"write the designed model into {os.path.dirname(src.path) or '.'}",
                )
            ]
        )


def _unseeded(src: Source):
    """Data drawn without a seed: their key folds in the file's path, so the designed model
    (another file) would see other numbers than the source."""
    for d in src.model.data:
        for c in _calls(d.value):
            if c.func in RANDOM_DATA and c.option("seed") is None:
                yield warning(
                    "W601",
                    c.span,
                    f"'{d.name}' is drawn without a seed: the designed model, another file, draws different numbers",
                    "give it a seed (seed = 0) so that both models see the same data",
                )


def _calls(e):
    return (x for x in ir.walk(e) if isinstance(x, ir.Call))
