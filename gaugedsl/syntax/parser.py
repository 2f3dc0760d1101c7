"""Source text → AST, with syntax errors turned into diagnostics in the author's words.

The AST is built while parsing (Lark's LALR parser calls `_Builder` for each reduction), and
every node's span is computed from its children, which is about twice as fast as building
Lark's parse tree with positions and transforming it afterwards.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

import lark
from lark import Token, Transformer

from .._resources import grammar_path
from ..diagnostics import Diagnostic, GaugeError, Span, error
from . import ast, tokens
from .errors import syntax_error


class _Context:
    """What one call of `parse` collects: the path for spans, and the comments."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.comments: list[Token] = []
        self.by_line: dict[int, str] = {}  # comments alone on their line, for doc comments


# The parser and its builder are made once; each `parse` pushes its context on a stack of its
# thread (so that threads can parse at the same time). Lark calls lexer callbacks for ignored
# terminals too: that is how comments survive.
class _Stack(threading.local):
    def __init__(self) -> None:
        self.items: list[_Context] = []


_stack = _Stack()


def _collect_comment(tok: Token) -> Token:
    if _stack.items:
        ctx = _stack.items[-1]
        ctx.comments.append(tok)
        line_start = ctx.text.rfind("\n", 0, tok.start_pos) + 1
        if not ctx.text[line_start : tok.start_pos].strip():
            ctx.by_line[tokens.line(tok)] = str(tok)
    return tok


@functools.cache
def _parser() -> lark.Lark:
    text = grammar_path().read_text(encoding="utf-8")
    runtime = {"lexer_callbacks": {"COMMENT": _collect_comment}, "transformer": _Builder()}
    cache = _cache_file()
    # Lark's own cache: it keys the file's content on the grammar, the options and Lark's version,
    # and rebuilds (silently) on a stale or broken file.
    options = {"cache": str(cache)} if cache is not None else {}
    return lark.Lark(text, parser="lalr", lexer="contextual", maybe_placeholders=False, **options, **runtime)


def _cache_file() -> Path | None:
    """Where the analysed grammar is cached (building the LALR tables takes most of a second;
    loading them, a few milliseconds): a file in the user's cache folder, or None when caching is
    off (`GAUGEDSL_PARSER_CACHE=0`) or the folder cannot be written."""
    if os.environ.get("GAUGEDSL_PARSER_CACHE", "1") == "0":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "gaugedsl"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return folder / f"parser-py{sys.version_info[0]}{sys.version_info[1]}.lark-cache"


def grammar() -> lark.Lark:
    """The compiled Lark parser (LALR, contextual lexer)."""
    return _parser()


# Limits that keep every later pass (checker, lowering, geometry, tracing) within Python's
# recursion limit and the whole front end within seconds: programs hold models, not data.
MAX_PROGRAM_CHARS = 500_000
MAX_PROGRAM_BYTES = 4 * MAX_PROGRAM_CHARS  # on disk, before decoding: UTF-8 takes at most 4 bytes a character
MAX_NESTING = 200


def parse(text: str, path: str = "<string>") -> ast.Program:
    """Parse `.gauge` source into an `ast.Program`.

    **Raises:** `GaugeError` with one syntax diagnostic (LALR stops at the first error), E012
    for a program over `MAX_PROGRAM_CHARS` characters, E013 for nesting over `MAX_NESTING`.
    """
    if len(text) > MAX_PROGRAM_CHARS:
        raise GaugeError([too_long(path, len(text))])
    parser = _parser()
    ctx = _Context(path, text)
    _stack.items.append(ctx)
    try:
        # With a transformer, Lark's LALR parser returns what `_Builder.start` returns (a list of
        # items), not the `ParseTree` its signature declares.
        items = tuple(cast("list[ast.Item]", parser.parse(text)))
    except lark.exceptions.UnexpectedInput as exc:
        raise GaugeError([syntax_error(exc, text, path, parser)]) from None
    finally:
        _stack.items.pop()
    deep = _deeper_than(items, MAX_NESTING)
    if deep is not None:
        raise GaugeError(
            [
                error(
                    "E013",
                    deep.span,
                    f"this is nested more than {MAX_NESTING} levels deep (operators, calls, brackets)",
                    "split the expression into named predictors, or write a long sum as sum(...) over a vector",
                )
            ]
        )
    comment_nodes = tuple(ast.Comment(str(c), _token_span(path, c)) for c in ctx.comments)
    return ast.Program(path, items, comment_nodes, _file_doc(ctx.comments, items))


def expected_terminals(prefix: str) -> frozenset[str] | None:
    """The terminals the grammar accepts after `prefix` (Lark's names: `NAME`, `NUMBER`, `PARAM`
    for the keyword `param`, `RBRACE`, ...), or None where the prefix itself does not parse: what
    an editor may offer at the end of `prefix`."""
    if len(prefix) > MAX_PROGRAM_CHARS:
        return None
    _stack.items.append(_Context("<completion>", prefix))
    try:
        interactive = _parser().parse_interactive(prefix)
        interactive.exhaust_lexer()
        return frozenset(interactive.accepts())
    except (lark.exceptions.LarkError, RecursionError):
        return None
    finally:
        _stack.items.pop()


def too_long(path: str, size: int, unit: str = "characters") -> Diagnostic:
    limit = MAX_PROGRAM_CHARS if unit == "characters" else MAX_PROGRAM_BYTES
    return error(
        "E012",
        Span(path, 1, 1, 1, 2),
        f"the program is {size:,} {unit} long; gaugedsl reads programs of up to {limit:,}",
        "keep numbers out of the program: put them in a .npy, .npz or .csv file beside it and load(...) it",
    )


def _deeper_than(items: tuple, limit: int):
    """The first AST node nested more than `limit` levels deep, or None; iterative, so that the
    check itself has no recursion limit."""
    stack = [(item, 1) for item in items]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return node
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            children = value if isinstance(value, tuple) else (value,)
            for child in children:
                if dataclasses.is_dataclass(child) and not isinstance(child, Span):
                    stack.append((child, depth + 1))
    return None


def _token_span(path: str, tok: Token) -> Span:
    return Span(path, *tokens.position(tok))


def _doc_above(by_line: dict[int, str], line: int) -> str:
    """The `##` lines directly above `line`, joined; blank-free adjacency is required."""
    docs = []
    current = line - 1
    while current in by_line and by_line[current].startswith("##"):
        docs.append(by_line[current][2:].strip())
        current -= 1
    return "\n".join(reversed(docs))


def _file_doc(comments: list[Token], items: tuple[ast.Item, ...]) -> str:
    first_item_line = items[0].span.line if items else 10**9
    docs = []
    expected = 1
    for c in comments:
        line = tokens.line(c)
        if line >= first_item_line or not str(c).startswith("##"):
            break
        if docs and line != expected:
            break
        docs.append(str(c)[2:].strip())
        expected = line + 1
    return "\n".join(docs)


def _start(x) -> tuple[int, int] | None:
    """Where the first token of a child (a token, an AST node, or a tuple of them) starts."""
    if isinstance(x, Token):
        return tokens.start(x)
    if isinstance(x, _Parens):
        return tokens.start(x.lpar)
    if isinstance(x, (tuple, list)):
        for y in x:
            found = _start(y)
            if found is not None:
                return found
        return None
    return (x.span.line, x.span.column)


def _end(x) -> tuple[int, int] | None:
    if isinstance(x, Token):
        return tokens.end(x)
    if isinstance(x, _Parens):
        return tokens.end(x.rpar)
    if isinstance(x, (tuple, list)):
        for y in reversed(x):
            found = _end(y)
            if found is not None:
                return found
        return None
    return (x.span.end_line, x.span.end_column)


def _tokens(children, kind: str) -> list[Token]:
    return [c for c in children if isinstance(c, Token) and c.type == kind]


def _nodes(children) -> list:
    return [_unwrap(c) for c in children if not isinstance(c, Token)]


class _Parens:
    """An expression in parentheses, while its parent is built: the parent's span covers the
    parentheses, the expression's own span does not."""

    __slots__ = ("inner", "lpar", "rpar")

    def __init__(self, inner, lpar: Token, rpar: Token):
        self.inner, self.lpar, self.rpar = inner, lpar, rpar


def _unwrap(x):
    while isinstance(x, _Parens):
        x = x.inner
    return x


def _binary(op: str) -> Callable[[_Builder, list], ast.Binary]:
    """The builder's method for a binary operator's rule."""

    def build(self: _Builder, ch: list) -> ast.Binary:
        left, right = _nodes(ch)
        return ast.Binary(op, left, right, self._span(ch))

    return build


class _Builder(Transformer):
    """Makes AST nodes during the parse: one method per grammar rule (or alias)."""

    @property
    def path(self) -> str:
        return _stack.items[-1].path

    def _span(self, children) -> Span:
        start, end = _start(children), _end(children)
        assert start is not None and end is not None, "every rule that has a span reduces at least one token"
        return Span(self.path, *start, *end)

    def _tspan(self, tok: Token) -> Span:
        return _token_span(self.path, tok)

    def _doc(self, children) -> str:
        start = _start(children)
        assert start is not None, "a documented declaration starts with a keyword token"
        return _doc_above(_stack.items[-1].by_line, start[0])

    # ---- expressions ----

    def number(self, ch):
        (tok,) = ch
        text = str(tok)
        value = float(text)
        return ast.Number(value, text, self._tspan(tok))

    def string(self, ch):
        (tok,) = ch
        return ast.String(str(tok)[1:-1], self._tspan(tok))

    def name(self, ch):
        (tok,) = ch
        return ast.Name(str(tok), self._tspan(tok))

    def atom(self, ch):  # a parenthesised expression: the node inside, but spans around it include '(' and ')'
        (inner,) = _nodes(ch)
        return _Parens(inner, ch[0], ch[-1])

    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    matmul = _binary("@")
    pow = _binary("^")

    def neg(self, ch):
        (operand,) = _nodes(ch)
        return ast.Unary("-", operand, self._span(ch))

    def transpose(self, ch):
        (value,) = _nodes(ch)
        return ast.Transpose(value, self._span(ch))

    def index(self, ch):
        value, items = _nodes(ch)
        return ast.Index(value, items, self._span(ch))

    def index_list(self, ch):
        return tuple(_nodes(ch))

    def slice(self, ch):
        start = stop = None
        seen_colon = False
        for c in ch:
            if isinstance(c, Token):
                seen_colon = seen_colon or c.type == "COLON"
            elif seen_colon:
                stop = _unwrap(c)
            else:
                start = _unwrap(c)
        return ast.Slice(start, stop, self._span(ch))

    def list_lit(self, ch):
        return ast.ListLit(tuple(_nodes(ch)), self._span(ch))

    def call(self, ch):
        func = ch[0]
        args, kwargs = next(c for c in ch if isinstance(c, tuple))
        return ast.Call(str(func), self._tspan(func), args, kwargs, self._span(ch))

    def arg_list(self, ch):
        nodes = _nodes(ch)
        args = tuple(n for n in nodes if not isinstance(n, ast.Keyword))
        kwargs = tuple(n for n in nodes if isinstance(n, ast.Keyword))
        return (args, kwargs)

    def kwarg(self, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.Keyword(str(name), value, self._span(ch))

    # ---- declarations ----

    def start(self, ch):
        return list(ch)

    def model_decl(self, ch):
        (name,) = _tokens(ch, "NAME")
        return ast.ModelDecl(str(name), self._span(ch))

    def import_decl(self, ch):
        (path,) = _nodes(ch)
        return ast.Import(tuple(str(p) for p in path), self._span(ch))

    def dotted_name(self, ch):
        return tuple(_tokens(ch, "NAME"))  # tokens (a str subclass), so the import's span covers them

    def type_expr(self, ch):
        name = _tokens(ch, "NAME")[0]
        dims = next((c for c in ch if isinstance(c, tuple)), None)
        if dims is None and _tokens(ch, "LBRACK"):
            dims = ()
        return ast.TypeExpr(str(name), self._tspan(name), dims, self._span(ch))

    def dim_list(self, ch):
        return tuple(_nodes(ch))

    def data_block(self, ch):
        return ast.DataBlock(tuple(_nodes(ch)), self._span(ch))

    def data_def(self, ch):
        (name,) = _tokens(ch, "NAME")
        type_, value = _nodes(ch)
        return ast.DataDef(str(name), self._tspan(name), type_, value, self._span(ch))

    def stream_def(self, ch):
        (name,) = _tokens(ch, "NAME")
        type_, dist = _nodes(ch)
        return ast.StreamDef(str(name), self._tspan(name), type_, dist, self._span(ch))

    def param_decl(self, ch):
        (name,) = _tokens(ch, "NAME")
        nodes = _nodes(ch)
        init = nodes[1] if len(nodes) > 1 else None
        doc = self._doc(ch)
        return ast.ParamDecl(str(name), self._tspan(name), nodes[0], init, doc, self._span(ch))

    def predictor_decl(self, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.PredictorDecl(str(name), self._tspan(name), value, self._span(ch))

    def let_decl(self, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.LetDecl(str(name), self._tspan(name), value, self._span(ch))

    def loss_total(self, ch):
        (value,) = _nodes(ch)
        return ast.LossDecl(None, None, value, self._span(ch))

    def loss_per_sample(self, ch):
        binders, sources, value = _nodes(ch)
        return ast.LossDecl(binders, sources, value, self._span(ch))

    def binder(self, ch):
        return tuple(ast.Name(str(t), self._tspan(t)) for t in _tokens(ch, "NAME"))

    def symmetry_decl(self, ch):
        name = _tokens(ch, "NAME")[0]
        nodes = _nodes(ch)
        params = None
        if nodes and isinstance(nodes[0], list):
            params, nodes = tuple(nodes[0]), nodes[1:]
        group = nodes[0]
        actions = tuple(nodes[1:])
        doc = self._doc(ch)
        return ast.SymmetryDecl(str(name), self._tspan(name), params, group, actions, doc, self._span(ch))

    def sym_params(self, ch):
        return list(_nodes(ch))

    def sym_param(self, ch):
        (name,) = _tokens(ch, "NAME")
        (type_,) = _nodes(ch)
        return ast.SymParam(str(name), type_, self._span(ch))

    def action(self, ch):
        (target,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.Action(str(target), self._tspan(target), value, self._span(ch))

    def symmetry_inst(self, ch):
        names = _tokens(ch, "NAME")
        name, template, args = names[0], names[1], names[2:]
        return ast.SymmetryInst(
            str(name),
            self._tspan(name),
            str(template),
            self._tspan(template),
            tuple(ast.Name(str(a), self._tspan(a)) for a in args),
            self._doc(ch),
            self._span(ch),
        )

    def noise_decl(self, ch):
        (kind,) = _tokens(ch, "NAME")
        args, kwargs = next((c for c in ch if isinstance(c, tuple)), ((), ()))
        return ast.NoiseDecl(str(kind), self._tspan(kind), args, kwargs, self._span(ch))

    def run_block(self, ch):
        nodes = _nodes(ch)
        settings = tuple(n for n in nodes if isinstance(n, ast.Setting))
        records = tuple(n for n in nodes if isinstance(n, ast.Record))
        sweeps = tuple(n for n in nodes if isinstance(n, ast.SweepBlock))
        return ast.RunBlock(settings, records, self._span(ch), sweeps)

    def sweep(self, ch):
        axes = tuple(n for n in _nodes(ch) if isinstance(n, ast.SweepAxis))
        return ast.SweepBlock(bool(_tokens(ch, "ZIP")), axes, self._span(ch))

    def sweep_axis(self, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.SweepAxis(str(name), self._tspan(name), value, None, self._span(ch))

    def sweep_range(self, ch):
        (name,) = _tokens(ch, "NAME")
        lo, hi = _tokens(ch, "NUMBER")
        whole = [float(str(t)) for t in (lo, hi)]
        bounds = (int(whole[0]), int(whole[1])) if all(v == int(v) for v in whole) else None
        # a range of fractions is kept as (lo, hi) = None: the checker says what is wrong, where
        return ast.SweepAxis(str(name), self._tspan(name), None, bounds, self._span(ch))

    def setting(self, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.Setting(str(name), self._tspan(name), value, self._span(ch))

    def record(self, ch):
        every, *items = _nodes(ch)
        return ast.Record(every, tuple(items), self._span(ch))

    def record_item(self, ch):
        (value,) = _nodes(ch)
        return ast.RecordItem(None, value, self._span(ch))

    def named_record_item(self, ch):
        (label,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.RecordItem(str(label), value, self._span(ch))

    def predictor_setting(self, ch):
        (keyword,) = _tokens(ch, "PREDICTOR")
        (value,) = _nodes(ch)
        return ast.Setting(str(keyword), self._tspan(keyword), value, self._span(ch))

    def design_block(self, ch):
        return ast.DesignBlock(tuple(_nodes(ch)), self._span(ch))
