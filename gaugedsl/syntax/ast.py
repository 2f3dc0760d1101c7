"""The abstract syntax tree of a `.gauge` file: frozen dataclasses, a `Span` on every node.

The AST says what was written, nothing more: names are unresolved and nothing has a shape.
The checker (`gaugedsl.check`) turns it into the IR.
"""

from __future__ import annotations

import dataclasses
from typing import Union

from ..diagnostics import Span

# ---- expressions ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Number:
    value: float
    text: str
    span: Span

    @property
    def is_integer(self) -> bool:
        return not any(c in self.text for c in ".eE")


@dataclasses.dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclasses.dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclasses.dataclass(frozen=True)
class Keyword:
    name: str
    value: "Expr"
    span: Span


@dataclasses.dataclass(frozen=True)
class Call:
    func: str
    func_span: Span
    args: tuple["Expr", ...]
    kwargs: tuple[Keyword, ...]
    span: Span


@dataclasses.dataclass(frozen=True)
class ListLit:
    items: tuple["Expr", ...]
    span: Span


@dataclasses.dataclass(frozen=True)
class Unary:
    op: str  # "-"
    operand: "Expr"
    span: Span


@dataclasses.dataclass(frozen=True)
class Binary:
    op: str  # one of + - * / @ ^
    left: "Expr"
    right: "Expr"
    span: Span


@dataclasses.dataclass(frozen=True)
class Slice:
    start: "Expr | None"
    stop: "Expr | None"
    span: Span


@dataclasses.dataclass(frozen=True)
class Index:
    value: "Expr"
    items: tuple["Expr | Slice", ...]
    span: Span


@dataclasses.dataclass(frozen=True)
class Transpose:
    value: "Expr"
    span: Span


Expr = Union[Number, String, Name, Call, ListLit, Unary, Binary, Index, Transpose]


# ---- declarations ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TypeExpr:
    """`R[10, 20]`, `Sphere[3]`, `Scale[n]`, `GL[r]`, or a bare `R`."""

    name: str
    name_span: Span
    dims: tuple[Expr, ...] | None
    span: Span


@dataclasses.dataclass(frozen=True)
class ModelDecl:
    name: str
    span: Span


@dataclasses.dataclass(frozen=True)
class Import:
    path: tuple[str, ...]
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclasses.dataclass(frozen=True)
class DataDef:
    name: str
    name_span: Span
    type: TypeExpr
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class StreamDef:
    name: str
    name_span: Span
    type: TypeExpr
    dist: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class DataBlock:
    entries: tuple[DataDef | StreamDef, ...]
    span: Span


@dataclasses.dataclass(frozen=True)
class ParamDecl:
    name: str
    name_span: Span
    type: TypeExpr
    init: Expr | None
    doc: str
    span: Span


@dataclasses.dataclass(frozen=True)
class PredictorDecl:
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class LetDecl:
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class LossDecl:
    """`loss = e` (binders is None) or `loss per (x, t) in (X, y) = e`."""

    binders: tuple[Name, ...] | None
    sources: tuple[Name, ...] | None
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class SymParam:
    name: str
    type: TypeExpr
    span: Span


@dataclasses.dataclass(frozen=True)
class Action:
    target: str
    target_span: Span
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class SymmetryDecl:
    name: str
    name_span: Span
    params: tuple[SymParam, ...] | None  # None: acts on the model's own parameters
    group: TypeExpr
    actions: tuple[Action, ...]
    doc: str
    span: Span


@dataclasses.dataclass(frozen=True)
class SymmetryInst:
    name: str
    name_span: Span
    template: str
    template_span: Span
    args: tuple[Name, ...]
    doc: str
    span: Span


@dataclasses.dataclass(frozen=True)
class NoiseDecl:
    kind: str
    kind_span: Span
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class RecordItem:
    label: str | None
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class Record:
    every: Expr
    items: tuple[RecordItem, ...]
    span: Span


@dataclasses.dataclass(frozen=True)
class SweepAxis:
    """`name = [v1, v2, ...]` (`values`, an expression) or `name = lo..hi` (`range`, both included)."""

    name: str
    name_span: Span
    values: "Expr | None"
    range: tuple[int, int] | None
    span: Span


@dataclasses.dataclass(frozen=True)
class SweepBlock:
    zipped: bool
    axes: tuple[SweepAxis, ...]
    span: Span


@dataclasses.dataclass(frozen=True)
class RunBlock:
    settings: tuple[Setting, ...]
    records: tuple[Record, ...]
    span: Span
    sweeps: tuple[SweepBlock, ...] = ()


@dataclasses.dataclass(frozen=True)
class DesignBlock:
    settings: tuple[Setting, ...]
    span: Span


Item = Union[
    ModelDecl,
    Import,
    DataBlock,
    ParamDecl,
    PredictorDecl,
    LetDecl,
    LossDecl,
    SymmetryDecl,
    SymmetryInst,
    NoiseDecl,
    RunBlock,
    DesignBlock,
]


@dataclasses.dataclass(frozen=True)
class Comment:
    text: str
    span: Span


@dataclasses.dataclass(frozen=True)
class Program:
    path: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...]
    doc: str  # the leading `##` block of the file
