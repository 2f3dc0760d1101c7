"""The abstract syntax tree of a `.gauge` file: frozen dataclasses, a `Span` on every node.

The AST says what was written, nothing more: names are unresolved and nothing has a shape.
The checker (`gaugedsl.check`) turns it into the IR.
"""

from __future__ import annotations

import dataclasses
from typing import Union

from ..diagnostics import Span

node = dataclasses.dataclass(frozen=True)


# ---- expressions ----------------------------------------------------------------------


@node
class Number:
    value: float
    text: str
    span: Span

    @property
    def is_integer(self) -> bool:
        return not any(c in self.text for c in ".eE")


@node
class String:
    value: str
    span: Span


@node
class Name:
    id: str
    span: Span


@node
class Keyword:
    name: str
    value: "Expr"
    span: Span


@node
class Call:
    func: str
    func_span: Span
    args: tuple["Expr", ...]
    kwargs: tuple[Keyword, ...]
    span: Span


@node
class ListLit:
    items: tuple["Expr", ...]
    span: Span


@node
class Unary:
    op: str  # "-"
    operand: "Expr"
    span: Span


@node
class Binary:
    op: str  # one of + - * / @ ^
    left: "Expr"
    right: "Expr"
    span: Span


@node
class Slice:
    start: "Expr | None"
    stop: "Expr | None"
    span: Span


@node
class Index:
    value: "Expr"
    items: tuple["Expr | Slice", ...]
    span: Span


@node
class Transpose:
    value: "Expr"
    span: Span


Expr = Union[Number, String, Name, Call, ListLit, Unary, Binary, Index, Transpose]


# ---- declarations ---------------------------------------------------------------------


@node
class TypeExpr:
    """`R[10, 20]`, `Sphere[3]`, `Scale[n]`, `GL[r]`, or a bare `R`."""

    name: str
    name_span: Span
    dims: tuple[Expr, ...] | None
    span: Span


@node
class ModelDecl:
    name: str
    span: Span


@node
class Import:
    path: tuple[str, ...]
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@node
class DataDef:
    name: str
    name_span: Span
    type: TypeExpr
    value: Expr
    span: Span


@node
class StreamDef:
    name: str
    name_span: Span
    type: TypeExpr
    dist: Expr
    span: Span


@node
class DataBlock:
    entries: tuple[DataDef | StreamDef, ...]
    span: Span


@node
class ParamDecl:
    name: str
    name_span: Span
    type: TypeExpr
    init: Expr | None
    doc: str
    span: Span


@node
class PredictorDecl:
    name: str
    name_span: Span
    value: Expr
    span: Span


@node
class LetDecl:
    name: str
    name_span: Span
    value: Expr
    span: Span


@node
class LossDecl:
    """`loss = e` (binders is None) or `loss per (x, t) in (X, y) = e`."""

    binders: tuple[Name, ...] | None
    sources: tuple[Name, ...] | None
    value: Expr
    span: Span


@node
class SymParam:
    name: str
    type: TypeExpr
    span: Span


@node
class Action:
    target: str
    target_span: Span
    value: Expr
    span: Span


@node
class SymmetryDecl:
    name: str
    name_span: Span
    params: tuple[SymParam, ...] | None  # None: acts on the model's own parameters
    group: TypeExpr
    actions: tuple[Action, ...]
    doc: str
    span: Span


@node
class SymmetryInst:
    name: str
    name_span: Span
    template: str
    template_span: Span
    args: tuple[Name, ...]
    doc: str
    span: Span


@node
class NoiseDecl:
    kind: str
    kind_span: Span
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span


@node
class Setting:
    name: str
    name_span: Span
    value: Expr
    span: Span


@node
class RecordItem:
    label: str | None
    value: Expr
    span: Span


@node
class Record:
    every: Expr
    items: tuple[RecordItem, ...]
    span: Span


@node
class RunBlock:
    settings: tuple[Setting, ...]
    records: tuple[Record, ...]
    span: Span


@node
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


@node
class Comment:
    text: str
    span: Span


@node
class Program:
    path: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...]
    doc: str  # the leading `##` block of the file
