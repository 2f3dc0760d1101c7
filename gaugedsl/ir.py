"""The Model IR: what a checked `.gauge` program means, for the later stages.

Frozen dataclasses. Every name is resolved (a `Ref` says what kind of thing it names), every
expression has a concrete shape, static arguments are Python values, and parametric
symmetries are instantiated. Geometry, dynamics and design read only this.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any, Union

from .diagnostics import Span

Shape = tuple[int, ...]


# ---- expressions ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Const:
    """A number (or nested list of numbers, from a list literal of constants)."""

    value: Any
    shape: Shape
    span: Span


@dataclasses.dataclass(frozen=True)
class Ref:
    """A name. `kind` is one of: `data`, `stream`, `param`, `let`, `predictor`, `bound`
    (a per-sample variable of the loss), `group` (the group element `g` in an action),
    `loss` (the training loss, in records)."""

    kind: str
    name: str
    shape: Shape
    span: Span


@dataclasses.dataclass(frozen=True)
class Op:
    """An operator: `add sub mul div pow matmul neg transpose`."""

    op: str
    args: tuple["Expr", ...]
    shape: Shape
    span: Span


@dataclasses.dataclass(frozen=True)
class Call:
    """A built-in function (`gaugedsl.check.functions` lists them). `static` holds the
    arguments that must be known when checking (axis, seed, shape, ...). A random call's
    `site` is its stable identity, `NAME#k`: the k-th random call (in source order) of the
    declaration `NAME`. An unseeded draw's stream is keyed by it, so the numbers depend on
    names, not on where the text sits (file, line, column)."""

    func: str
    args: tuple["Expr", ...]
    static: tuple[tuple[str, Any], ...]
    shape: Shape
    span: Span
    site: str | None = None

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.static).get(name, default)


@dataclasses.dataclass(frozen=True)
class Stack:
    """A list literal with non-constant items: stacked along a new leading axis."""

    items: tuple["Expr", ...]
    shape: Shape
    span: Span


@dataclasses.dataclass(frozen=True)
class SliceSpec:
    start: int | None
    stop: int | None


@dataclasses.dataclass(frozen=True)
class Index:
    """Indexing with static integers and slices: `x[0]`, `x[:, 1:3]`."""

    value: "Expr"
    items: tuple[Union[int, SliceSpec], ...]
    shape: Shape
    span: Span


Expr = Union[Const, Ref, Op, Call, Stack, Index]


# ---- walking expressions: the one place that knows where subexpressions live ------------


def children(e: Expr) -> tuple[Expr, ...]:
    """The expressions directly inside `e`, left to right."""
    if isinstance(e, (Op, Call)):
        return e.args
    if isinstance(e, Stack):
        return e.items
    if isinstance(e, Index):
        return (e.value,)
    return ()


def walk(e: Expr) -> Iterator[Expr]:
    """`e` and every expression inside it, each before those inside it, left to right."""
    yield e
    for c in children(e):
        yield from walk(c)


def map_children(e: Expr, f: Callable[[Expr], Expr]) -> Expr:
    """`e` with `f` applied to each expression directly inside it, left to right."""
    if isinstance(e, (Op, Call)):
        return dataclasses.replace(e, args=tuple(f(a) for a in e.args))
    if isinstance(e, Stack):
        return dataclasses.replace(e, items=tuple(f(a) for a in e.items))
    if isinstance(e, Index):
        return dataclasses.replace(e, value=f(e.value))
    return e


def transform(e: Expr, f: Callable[[Expr], Expr]) -> Expr:
    """`e` rebuilt from the inside out: `f` sees each node with what is inside it already
    transformed (inner nodes first, left to right)."""
    return f(map_children(e, lambda c: transform(c, f)))


# ---- declarations ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DataDef:
    name: str
    shape: Shape
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class StreamDef:
    """One sample of a data stream, drawn fresh at every step. `value` draws it (a random
    call) or computes it from other streams and data."""

    name: str
    shape: Shape
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class Manifold:
    """`R`, `Positive`, `Sphere` (unit vectors in R^n) or `Stiefel` (n×k, orthonormal columns)."""

    kind: str
    shape: Shape


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    manifold: Manifold
    init: Expr
    doc: str
    span: Span

    @property
    def shape(self) -> Shape:
        return self.manifold.shape


@dataclasses.dataclass(frozen=True)
class Let:
    name: str
    value: Expr
    span: Span

    @property
    def shape(self) -> Shape:
        return self.value.shape


@dataclasses.dataclass(frozen=True)
class Predictor:
    name: str
    value: Expr
    span: Span

    @property
    def shape(self) -> Shape:
        return self.value.shape


@dataclasses.dataclass(frozen=True)
class PerSample:
    """`loss per (x, t) in (X, y)`: binders with their per-sample shapes, the datasets or
    streams they range over, and the dataset size (`None` for streams)."""

    binders: tuple[tuple[str, Shape], ...]
    sources: tuple[str, ...]
    size: int | None


@dataclasses.dataclass(frozen=True)
class Loss:
    """The training loss. With `per_sample`, `value` is the loss of one sample and the
    training loss is its mean over the dataset (or its expectation over the stream)."""

    value: Expr
    per_sample: PerSample | None
    span: Span


@dataclasses.dataclass(frozen=True)
class Group:
    """A built-in Lie group kind with its dimensions: `Scale[20]`, `GL[3]`, ..."""

    kind: str
    dims: tuple[int, ...]
    element_shape: Shape
    algebra_dim: int


@dataclasses.dataclass(frozen=True)
class Action:
    param: str
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class Symmetry:
    name: str
    group: Group
    actions: tuple[Action, ...]
    template: str | None  # the stdlib symmetry it instantiates, if any
    doc: str
    span: Span


class _Settings:
    """A block of `name = value` settings with the spans the checker saw: `span_of(name)` is
    where the setting is written (for diagnostics), or the whole block when it is not."""

    settings: tuple[tuple[str, Any], ...]
    span: Span
    spans: tuple[tuple[str, Span], ...]

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.settings).get(name, default)

    def span_of(self, name: str) -> Span:
        return dict(self.spans).get(name, self.span)


@dataclasses.dataclass(frozen=True)
class Noise(_Settings):
    kind: str
    settings: tuple[tuple[str, float], ...]
    span: Span
    spans: tuple[tuple[str, Span], ...] = ()


@dataclasses.dataclass(frozen=True)
class RecordItem:
    label: str
    value: Expr
    span: Span


@dataclasses.dataclass(frozen=True)
class Record:
    every: int
    items: tuple[RecordItem, ...]
    span: Span


@dataclasses.dataclass(frozen=True)
class Run(_Settings):
    settings: tuple[tuple[str, Any], ...]
    records: tuple[Record, ...]
    span: Span
    spans: tuple[tuple[str, Span], ...] = ()
    # `sweep { name = values ... }`: (name, values) per axis; `seed` values are whole numbers
    sweep: tuple[tuple[str, tuple[float, ...]], ...] = ()
    sweep_zipped: bool = False
    sweep_span: Span | None = None


def sweep_axis_problem(name: str, values: tuple) -> tuple[str, str] | None:
    """Why `values` cannot be the sweep axis `name` (what is wrong, what to do), or None. The one
    rule for the run block's `sweep { }` (the checker, E514), `--sweep` and `Model.run(sweep=...)`."""
    if not values:
        return f"the sweep over {name} has no values", "give at least one"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return f"{name}: sweep values are finite numbers", "e.g. T = [1e-3, 3e-3, 1e-2]"
    if name == "seed" and not all(v == int(v) and v >= 0 for v in values):
        return f"seeds are whole numbers ≥ 0, not {list(values)}", "e.g. seed = 0..4"
    return None


def sweep_zip_problem(axes: tuple[tuple[str, tuple], ...]) -> tuple[str, str] | None:
    """Why these axes cannot be zipped (different lengths), or None."""
    if len({len(v) for _, v in axes}) > 1:
        sizes = ", ".join(f"{n}: {len(v)}" for n, v in axes)
        return (f"zipped sweep axes need the same number of values ({sizes})",
                "give every axis as many values, or drop `zip` for every combination")  # fmt: skip
    return None


@dataclasses.dataclass(frozen=True)
class Design(_Settings):
    settings: tuple[tuple[str, Any], ...]
    span: Span
    spans: tuple[tuple[str, Span], ...] = ()


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    path: str
    doc: str
    source_hash: str
    data: tuple[DataDef, ...]
    streams: tuple[StreamDef, ...]
    params: tuple[Param, ...]
    lets: tuple[Let, ...]
    predictors: tuple[Predictor, ...]
    loss: Loss | None
    symmetries: tuple[Symmetry, ...]
    noise: Noise | None
    run: Run | None
    design: Design | None
    name_span: Span | None = None  # the NAME of `model NAME`

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def symmetry(self, name: str) -> Symmetry:
        return next(s for s in self.symmetries if s.name == name)

    @property
    def dimension(self) -> int:
        """The number of real coordinates of all parameters together."""
        total = 0
        for p in self.params:
            size = 1
            for d in p.shape:
                size *= d
            total += size
        return total


@dataclasses.dataclass(frozen=True)
class Library:
    """A checked file without a model (a stdlib module): its parametric symmetries."""

    path: str
    doc: str
    templates: tuple[str, ...]
