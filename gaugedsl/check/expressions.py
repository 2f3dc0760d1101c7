"""Checking expressions: name resolution in a context, shape inference, static arguments.

`ExprChecker.check` turns an AST expression into an IR expression with a shape, or returns
`None` after recording diagnostics. It never raises on bad input.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Callable

from .. import ir
from ..diagnostics import Diagnostic, Span, error
from ..syntax import ast
from . import functions as F
from .shapes import MAX_SIZE, Shape, ShapeError, broadcast, matmul, show


@dataclasses.dataclass(frozen=True)
class Binding:
    kind: str  # data stream param let predictor bound group loss symmetry size
    name: str
    shape: Shape
    span: Span | None
    value: Any = None  # symmetry: the ir.Symmetry's algebra info; size: the int


KIND_WORDS = {
    "data": "data",
    "stream": "stream",
    "param": "parameter",
    "let": "definition",
    "predictor": "predictor",
    "bound": "per-sample variable",
    "group": "group element",
    "loss": "loss",
    "symmetry": "symmetry",
    "size": "size",
    "template": "parametric symmetry",
}


@dataclasses.dataclass
class Context:
    """Where an expression sits: which kinds of names it may use and what it may call."""

    where: str  # a phrase: "in a data definition"
    allowed: frozenset[str]
    generators: bool = False  # generator calls allowed (data, init)
    random_streams: bool = False  # stream draws allowed
    records: bool = False  # charge(), logdet_gram() allowed
    target: Shape | None = None  # the declared shape, for generators without shape=
    hint: dict[str, str] = dataclasses.field(default_factory=dict)  # kind → why not


def _a(kind: str) -> str:
    word = KIND_WORDS.get(kind, kind)
    return word if word == "data" else f"a {word}"


class ExprChecker:
    def __init__(
        self,
        lookup: Callable[[str], Binding | None],
        names: Callable[[], list[str]],
        diagnostics: list[Diagnostic],
    ):
        self._lookup = lookup
        self._names = names
        self.diagnostics = diagnostics

    def _error(self, code: str, span: Span, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(error(code, span, message, hint))

    # ---- entry ----

    def check(self, e: ast.Expr, ctx: Context) -> ir.Expr | None:
        method = getattr(self, "_" + type(e).__name__)
        return method(e, ctx)

    # ---- leaves ----

    def _Number(self, e: ast.Number, ctx):
        try:
            return ir.Const(_number(e), (), e.span)
        except _NotConstant as exc:
            self._error(exc.code, exc.span, exc.message, exc.hint)
            return None

    def _String(self, e: ast.String, ctx):
        self._error("E315", e.span, "a string is not a value here", 'strings name files: load("data.npz", "X")')
        return None

    def _Name(self, e: ast.Name, ctx):
        if e.id in F.CONSTANTS and self._lookup(e.id) is None:
            return ir.Const(F.CONSTANTS[e.id], (), e.span)
        b = self._lookup(e.id)
        if b is None:
            self._unknown_name(e.id, e.span)
            return None
        if b.kind == "error":  # already reported (a cycle)
            return None
        if b.kind == "size":
            return ir.Const(b.value, (), e.span)
        if b.kind not in ctx.allowed:
            why = ctx.hint.get(b.kind, "")
            self._error(
                "E204",
                e.span,
                f"the {KIND_WORDS.get(b.kind, b.kind)} '{e.id}' cannot be used {ctx.where}",
                why
                or f"{ctx.where[0].upper() + ctx.where[1:]} you can use: "
                + ", ".join(sorted(KIND_WORDS[k] for k in ctx.allowed if k in KIND_WORDS)),
            )
            return None
        return ir.Ref(b.kind, b.name, b.shape, e.span)

    def _unknown_name(self, name: str, span: Span) -> None:
        if name in F.FUNCTIONS:
            f = F.FUNCTIONS[name]
            self._error("E201", span, f"'{name}' is a function, not a value", f"call it: {f.signature()}")
            return
        candidates = self._names() + list(F.CONSTANTS)
        guess = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = (
            f"did you mean '{guess[0]}'?" if guess else "declare it (param, data, let, predictor) or fix the spelling"
        )
        self._error("E201", span, f"unknown name '{name}'", hint)

    def _ListLit(self, e: ast.ListLit, ctx):
        checked = [self.check(i, ctx) for i in e.items]
        items = [i for i in checked if i is not None]
        if len(items) != len(checked):
            return None
        if not items:
            self._error("E316", e.span, "an empty list has no shape", "write at least one entry")
            return None
        first = items[0].shape
        for item, node in zip(items, e.items):
            if item.shape != first:
                self._error(
                    "E301",
                    node.span,
                    f"list entries must have the same shape: this one is {show(item.shape)}, the first is {show(first)}",
                    "make every entry the same shape",
                )
                return None
        shape = (len(items),) + first
        consts = [i for i in items if isinstance(i, ir.Const)]
        if len(consts) == len(items):
            return ir.Const([c.value for c in consts], shape, e.span)
        return ir.Stack(tuple(items), shape, e.span)

    # ---- operators ----

    _OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow", "@": "matmul"}

    def _Binary(self, e: ast.Binary, ctx):
        left = self.check(e.left, ctx)
        right = self.check(e.right, ctx)
        if left is None or right is None:
            return None
        try:
            if e.op == "@":
                shape = matmul(left.shape, right.shape)
            else:
                shape = broadcast(left.shape, right.shape)
        except ShapeError as exc:
            if e.op == "@":
                hint = "the last size on the left must equal the first size of a vector (or the second-to-last of a matrix) on the right; .T transposes"
            else:
                hint = "both sides need the same shape, or sizes of 1 where they differ; .T transposes, sum(x, axis = 0) reduces"
            self._error(
                "E302" if e.op == "@" else "E301",
                e.span,
                f"'{e.op}' of shapes {show(left.shape)} and {show(right.shape)}: " + exc.message.split(": ", 1)[-1],
                hint,
            )
            return None
        folded = _fold(e.op, left, right, e.span)
        if folded is not None:
            return folded
        if _no_finite_value(e.op, left, right):
            assert isinstance(left, ir.Const) and isinstance(right, ir.Const)  # _no_finite_value says so
            self._error(
                "E319",
                e.span,
                f"{_show_number(left.value)} {e.op} {_show_number(right.value)} has no finite value",
                "every step would compute inf or NaN from it; change the numbers",
            )
            return None
        return ir.Op(self._OPS[e.op], (left, right), shape, e.span)

    def _Unary(self, e: ast.Unary, ctx):
        operand = self.check(e.operand, ctx)
        if operand is None:
            return None
        if isinstance(operand, ir.Const) and operand.shape == ():
            return ir.Const(-operand.value, (), e.span)
        return ir.Op("neg", (operand,), operand.shape, e.span)

    def _Transpose(self, e: ast.Transpose, ctx):
        value = self.check(e.value, ctx)
        if value is None:
            return None
        return ir.Op("transpose", (value,), tuple(reversed(value.shape)), e.span)

    def _Index(self, e: ast.Index, ctx):
        value = self.check(e.value, ctx)
        if value is None:
            return None
        if len(e.items) > len(value.shape):
            self._error(
                "E304",
                e.span,
                f"{len(e.items)} indices for an array of shape {show(value.shape)}",
                "use one index (or slice) per axis",
            )
            return None
        items: list = []
        shape: list[int] = []
        for axis, item in enumerate(e.items):
            n = value.shape[axis]
            if isinstance(item, ast.Slice):
                start = self._static_int(item.start, ctx) if item.start is not None else None
                stop = self._static_int(item.stop, ctx) if item.stop is not None else None
                if (item.start is not None and start is None) or (item.stop is not None and stop is None):
                    return None
                length = len(range(n)[slice(start, stop)])
                if length == 0:
                    self._error(
                        "E304",
                        item.span,
                        f"this slice of an axis of size {n} is empty",
                        "slices run start:stop with start < stop",
                    )
                    return None
                items.append(ir.SliceSpec(start, stop))
                shape.append(length)
            else:
                i = self._static_int(item, ctx)
                if i is None:
                    return None
                if not -n <= i < n:
                    self._error(
                        "E304",
                        item.span,
                        f"index {i} is out of range for an axis of size {n}",
                        f"indices run from 0 to {n - 1} (or -{n} to -1)",
                    )
                    return None
                items.append(i)
        shape.extend(value.shape[len(e.items) :])
        return ir.Index(value, tuple(items), tuple(shape), e.span)

    def _static_int(self, e: ast.Expr, ctx) -> int | None:
        value = self.constant(e, ctx)
        if value is _BAD:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self._error(
                "E308", e.span, "this must be a whole number known in advance", "write an integer such as 0 or -1"
            )
            return None
        return value

    # ---- calls ----

    def _Call(self, e: ast.Call, ctx):
        f = F.FUNCTIONS.get(e.func)
        if f is None:
            b = self._lookup(e.func)
            if b is not None:
                self._error(
                    "E306",
                    e.func_span,
                    f"'{e.func}' is a {KIND_WORDS.get(b.kind, b.kind)}, not a function",
                    f"only built-in functions can be called; index an array with square brackets: {e.func}[0]",
                )
            else:
                guess = difflib.get_close_matches(e.func, list(F.FUNCTIONS), n=1, cutoff=0.6)
                hint = f"did you mean '{guess[0]}'?" if guess else "docs/language.md lists the built-in functions"
                self._error("E306", e.func_span, f"unknown function '{e.func}'", hint)
            return None
        if f.where == F.GENERATOR and not ctx.generators:
            self._error(
                "E313",
                e.span,
                f"{e.func}(...) makes data; it cannot be used {ctx.where}",
                "use it in a data definition or a parameter's initializer",
            )
            return None
        if f.where == F.STREAM and not (ctx.generators or ctx.random_streams):
            self._error(
                "E313",
                e.span,
                f"{e.func}(...) draws random numbers; it cannot be used {ctx.where}",
                "draw random data in a data block (`stream x : R[3] ~ normal(0, 1)` for fresh draws each step) or in an initializer",
            )
            return None
        if f.where == F.RECORD and not ctx.records:
            self._error(
                "E313",
                e.span,
                f"{e.func}(...) can only be recorded, in a run block's `record` line",
                "move it to `record every k: ...`",
            )
            return None

        bound = self._bind_args(f, e)
        if bound is None:
            return None
        exprs, static, arg_nodes = bound
        checked = []
        for _name, node in exprs:
            c = self.check(node, ctx)
            if c is None:
                return None
            checked.append(c)
        try:
            shape = f.rule([c.shape for c in checked], static, ctx.target)
        except ShapeError as exc:
            span = e.span
            if exc.arg is not None and exc.arg < len(exprs):
                span = exprs[exc.arg][1].span
            self._error("E305", span, f"{e.func}: {exc.message}", f"usage: {f.signature()}")
            return None
        if any(d > MAX_SIZE for d in shape):
            self._error(
                "E305",
                e.span,
                f"{e.func}(...) would have shape {show(shape)}, larger than any array can be",
                f"sizes are at most {MAX_SIZE}",
            )
            return None
        static_items = tuple((k, v.name if isinstance(v, ir.Symmetry) else v) for k, v in static.items())
        return ir.Call(e.func, tuple(checked), static_items, shape, e.span)

    def _bind_args(self, f: F.Function, e: ast.Call):
        """Match positional and keyword arguments to the signature (like Python)."""
        exprs: list[tuple[str, ast.Expr]] = []
        static: dict[str, Any] = {}
        given: dict[str, ast.Expr] = {}
        if f.variadic:
            if not e.args:
                self._error("E305", e.span, f"{e.func} needs at least one argument", f"usage: {f.signature()}")
                return None
            exprs = [(f"a{i}", a) for i, a in enumerate(e.args)]
        else:
            if len(e.args) > len(f.args):
                self._error(
                    "E305",
                    e.args[len(f.args)].span,
                    f"{e.func} takes at most {len(f.args)} argument{'s' if len(f.args) != 1 else ''}, got {len(e.args)}",
                    f"usage: {f.signature()}",
                )
                return None
            for spec, a in zip(f.args, e.args):
                given[spec.name] = a
        names = {a.name for a in f.args}
        for kw in e.kwargs:
            if kw.name not in names:
                guess = difflib.get_close_matches(kw.name, list(names), n=1, cutoff=0.5)
                hint = f"did you mean '{guess[0]}'?" if guess else f"usage: {f.signature()}"
                self._error("E307", kw.span, f"{e.func} has no argument '{kw.name}'", hint)
                return None
            if kw.name in given:
                self._error(
                    "E307", kw.span, f"{e.func}: argument '{kw.name}' is given twice", f"usage: {f.signature()}"
                )
                return None
            given[kw.name] = kw.value
        for spec in f.args:
            node = given.get(spec.name)
            if node is None:
                if spec.default is F.REQUIRED:
                    self._error("E305", e.span, f"{e.func} needs the argument '{spec.name}'", f"usage: {f.signature()}")
                    return None
                if spec.kind == F.EXPR:
                    exprs.append((spec.name, ast.Number(float(spec.default), str(spec.default), e.span)))
                elif spec.default is not None:
                    static[spec.name] = spec.default
                continue
            if spec.kind == F.EXPR:
                exprs.append((spec.name, node))
                continue
            value = self._static_value(spec, node, e)
            if value is _BAD:
                return None
            static[spec.name] = value
        return exprs, static, given

    def _static_value(self, spec: F.Arg, node: ast.Expr, call: ast.Call):
        if spec.kind == F.SYMMETRY:
            if isinstance(node, ast.Name):
                b = self._lookup(node.id)
                if b is not None and b.kind == "symmetry":
                    return b.value
                if b is not None and b.kind == "error":
                    return _BAD  # a symmetry with errors of its own, reported where it is declared
            # Records are checked last, when every name is resolved: looking them up is safe.
            kinds = {n: s.kind for n in self._names() if (s := self._lookup(n)) is not None}
            symmetries = [n for n, k in kinds.items() if k == "symmetry"]
            hint = (f"the symmetries of this model are: {', '.join(symmetries)}" if symmetries
                    else f"{call.func} takes the name of a symmetry declared in this file, e.g. {call.func}(balance)")  # fmt: skip
            if isinstance(node, ast.Name):
                # A misspelt symmetry, possibly one with errors of its own.
                candidates = [n for n, k in kinds.items() if k in ("symmetry", "error") and n != node.id]
                guess = difflib.get_close_matches(node.id, candidates, n=1, cutoff=0.6)
                what = "not declared" if b is None else _a(b.kind)
                self._error(
                    "E211",
                    node.span,
                    f"{call.func} needs a symmetry of this model, but '{node.id}' is {what}",
                    f"did you mean '{guess[0]}'?" if guess else hint,
                )
                return _BAD
            self._error("E211", node.span, f"{call.func} needs the name of a symmetry of this model", hint)
            return _BAD
        if spec.kind == F.STRING:
            if isinstance(node, ast.String):
                return node.value
            self._error(
                "E308",
                node.span,
                f"{call.func}: '{spec.name}' must be a string",
                'write it in double quotes: "data.npz"',
            )
            return _BAD
        value = self.constant(node, None)
        if value is _BAD:
            return _BAD
        if spec.kind == F.INT:
            if spec.below is not None and isinstance(value, int) and not 0 <= value < spec.below:
                self._error(
                    "E318",
                    node.span,
                    f"{call.func}: {spec.name} = {_shorten(str(value))} is out of range",
                    f"{spec.name} is a whole number from 0 to {spec.below - 1}",
                )
                return _BAD
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            self._error(
                "E308",
                node.span,
                f"{call.func}: '{spec.name}' must be a whole number",
                f"usage: {F.FUNCTIONS[call.func].signature()}",
            )
            return _BAD
        if spec.kind == F.FLOAT:
            if isinstance(value, (int, float)):
                return float(value)
            self._error(
                "E308",
                node.span,
                f"{call.func}: '{spec.name}' must be a number",
                f"usage: {F.FUNCTIONS[call.func].signature()}",
            )
            return _BAD
        if spec.kind in (F.INTS, F.FLOATS):
            if isinstance(value, (int, float)) and spec.kind == F.FLOATS:
                value = [value]
            if not isinstance(value, list) or any(isinstance(v, list) for v in value):
                self._error(
                    "E308", node.span, f"{call.func}: '{spec.name}' must be a list of numbers", "write it as [1, 2, 3]"
                )
                return _BAD
            if spec.kind == F.INTS:
                if any(not isinstance(v, int) for v in value):
                    self._error(
                        "E308",
                        node.span,
                        f"{call.func}: '{spec.name}' must be a list of whole numbers",
                        "write it as [1, 2, 3]",
                    )
                    return _BAD
                if spec.name == "shape" and any(v < 1 for v in value):
                    self._error("E309", node.span, "sizes must be positive", "every entry of shape must be ≥ 1")
                    return _BAD
                return list(value)
            return [float(v) for v in value]
        raise AssertionError(spec.kind)

    # ---- constants ----

    def constant(self, e: ast.Expr, ctx) -> Any:
        """Evaluate a constant expression (numbers, lists, + - * / ^, pi, size variables and
        the elementwise math functions); records a diagnostic and returns `_BAD` otherwise."""
        try:
            return _const(e, self._lookup)
        except _NotConstant as exc:
            self._error(exc.code, exc.span, exc.message, exc.hint)
            return _BAD


_BAD = object()


class _NotConstant(Exception):
    def __init__(self, span: Span, message: str, code: str = "E308", hint: str | None = None):
        self.span = span
        self.message = message
        self.code = code
        self.hint = hint or "use numbers here (arithmetic and sqrt, exp, log of numbers are fine)"


_LARGEST = 1.7976931348623157e308


def _number(e: ast.Number) -> int | float:
    """The value of a number literal: an int if written without '.' or exponent, else a float."""
    if e.is_integer and len(e.text.lstrip("0")) > 309:
        raise _NotConstant(
            e.span, f"the number {_shorten(e.text)} is too large", "E318", "numbers must be below 1.8e308 in size"
        )
    # leading zeros stripped: Python refuses to read an int of over 4,300 digits, zeros included
    value = int(e.text.lstrip("0") or "0") if e.is_integer else e.value
    if not abs(value) <= _LARGEST:
        raise _NotConstant(
            e.span, f"the number {_shorten(e.text)} is too large", "E318", "numbers must be below 1.8e308 in size"
        )
    if value == 0 and not e.is_integer and any(c in "123456789" for c in e.text.split("e")[0].split("E")[0]):
        raise _NotConstant(
            e.span,
            f"the number {_shorten(e.text)} is too small to tell from 0",
            "E318",
            "write 0, or a number of at least 1e-300 in size",
        )
    return value


def _shorten(text: str) -> str:
    return text if len(text) <= 20 else text[:8] + "…" + text[-8:]


_CONST_FUNCS = {"sqrt": math.sqrt, "exp": math.exp, "log": math.log, "abs": abs, "cos": math.cos, "sin": math.sin}


def _const(e: ast.Expr, lookup) -> Any:
    if isinstance(e, ast.Number):
        return _number(e)
    if isinstance(e, ast.Name):
        b = lookup(e.id)
        if b is not None and b.kind == "size":
            return b.value
        if b is None and e.id in F.CONSTANTS:
            return F.CONSTANTS[e.id]
        raise _NotConstant(e.span, f"'{e.id}' is not a number known in advance")
    if isinstance(e, ast.Unary):
        v = _const(e.operand, lookup)
        if isinstance(v, list):
            raise _NotConstant(e.span, "cannot negate a list here")
        return -v
    if isinstance(e, ast.ListLit):
        return [_const(i, lookup) for i in e.items]
    if isinstance(e, ast.Binary) and e.op in "+-*/^":
        a, b = _const(e.left, lookup), _const(e.right, lookup)
        if isinstance(a, list) or isinstance(b, list):
            raise _NotConstant(e.span, "arithmetic on lists is not allowed here")
        try:
            value = _arith(e.op, a, b)
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            value = None
        if value is None or isinstance(value, complex) or not abs(value) <= _LARGEST:
            raise _NotConstant(e.span, "this arithmetic has no finite real value")
        return value
    if isinstance(e, ast.Call) and e.func in _CONST_FUNCS and len(e.args) == 1 and not e.kwargs:
        v = _const(e.args[0], lookup)
        try:
            return _CONST_FUNCS[e.func](v)
        except (ValueError, TypeError, OverflowError):
            raise _NotConstant(e.span, f"{e.func} of {v} has no real value") from None
    raise _NotConstant(e.span, "this must be a number known in advance")


def _arith(op: str, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if isinstance(a, int) and isinstance(b, int) and b != 0 and a % b == 0:
            return a // b
        return a / b
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 and b * math.log2(abs(a)) > 1100:
        return None  # beyond any float; do not compute a huge integer
    return a**b


def _no_finite_value(op: str, left: ir.Expr, right: ir.Expr) -> bool:
    """Whether arithmetic `_fold` declined on two scalar constants is infinite, NaN or complex
    (`1/0`, `0^-1`, `(-8)^0.5`, `2.0^2000`): every evaluation of it would be."""
    if not (isinstance(left, ir.Const) and isinstance(right, ir.Const) and left.shape == right.shape == ()):
        return False
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left.value, right.value))
    return numbers and op in ("+", "-", "*", "/", "^")


def _show_number(value) -> str:
    return _shorten(repr(value)) if value >= 0 else f"({_shorten(repr(value))})"


def _fold(op: str, left: ir.Expr, right: ir.Expr, span: Span) -> ir.Const | None:
    """Fold arithmetic of two scalar constants, so `1/sqrt(60)`-style settings stay numbers."""
    if not (isinstance(left, ir.Const) and isinstance(right, ir.Const)):
        return None
    if left.shape != () or right.shape != ():
        return None
    a, b = left.value, right.value
    try:
        value = {"+": a + b, "-": a - b, "*": a * b}.get(op)
        if op == "/":
            value = a / b
        elif op == "^":
            value = float(a) ** b
        elif op == "@":
            return None
    except (ZeroDivisionError, OverflowError, TypeError):
        return None
    if value is None or isinstance(value, complex) or not abs(value) <= _LARGEST:
        return None
    return ir.Const(value, (), span)
