"""The model a design starts from: its text, syntax tree and checked IR, read once, and the
places in the text (spans) that diagnostics point at."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import ir
from ..check import Loader
from ..diagnostics import GaugeError, Span, error
from ..syntax import ast, parse


@dataclasses.dataclass
class Source:
    path: str
    text: str
    program: ast.Program
    model: ir.Model
    loader: Loader

    @classmethod
    def read(cls, path: str | Path, loader: Loader | None = None) -> "Source":
        """Parse and check `path`; raises `GaugeError` (the checker's diagnostics) if it does
        not check, and E606 if it is a library or has no design block."""
        loader = loader or Loader()
        path = str(path)
        model = loader.check_file(path)
        text = loader.read(Path(path))
        program = parse(text, path)
        if not isinstance(model, ir.Model):
            raise GaugeError(
                [
                    error(
                        "E606",
                        Span(path, 1, 1, 1, 2),
                        f"{path} is a library; design needs a model with a design block",
                        "design a model file",
                    )
                ]
            )
        if model.design is None:
            raise GaugeError(
                [
                    error(
                        "E606",
                        next(i.span for i in program.items if isinstance(i, ast.ModelDecl)),
                        f"model '{model.name}' has no design block",
                        "add `design { target = sparsity }` (docs/design.md lists the targets)",
                    )
                ]
            )
        return cls(path, text, program, model, loader)

    # ---- declarations ----

    def items(self, cls) -> list:
        return [i for i in self.program.items if isinstance(i, cls)]

    def decl(self, name: str) -> ast.ParamDecl | ast.PredictorDecl | ast.LetDecl | ast.SymmetryDecl | ast.SymmetryInst:
        """The statement that declares `name` (a param, predictor, let or symmetry); KeyError if none does."""
        for i in self.program.items:
            if (
                isinstance(i, (ast.ParamDecl, ast.PredictorDecl, ast.LetDecl, ast.SymmetryDecl, ast.SymmetryInst))
                and i.name == name
            ):
                return i
        raise KeyError(f"no declaration of '{name}' in {self.path}")

    @property
    def design(self) -> ir.Design:
        """The model's design block (`read` refuses a model without one)."""
        if self.model.design is None:
            raise ValueError(f"model '{self.model.name}' has no design block")
        return self.model.design

    @property
    def design_block(self) -> ast.DesignBlock:
        return self.items(ast.DesignBlock)[0]

    def names(self) -> set[str]:
        """Every name the file declares (fresh names must avoid them)."""
        found = set()
        for i in self.program.items:
            if isinstance(i, ast.DataBlock):
                found |= {e.name for e in i.entries}
            elif not isinstance(i, ast.ModelDecl) and (name := getattr(i, "name", None)) is not None:
                found.add(name)
            if isinstance(i, ast.LossDecl) and i.binders:
                found |= {b.id for b in i.binders}
        return found
