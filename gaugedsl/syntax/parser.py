"""Source text → AST, with syntax errors turned into diagnostics in the author's words."""

from __future__ import annotations

import functools

import lark
from lark import Token, Transformer, v_args

from .._resources import grammar_path
from ..diagnostics import GaugeError, Span
from . import ast
from .errors import syntax_error


@functools.cache
def _parser() -> lark.Lark:
    return lark.Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        lexer_callbacks={"COMMENT": _collect_comment},
    )


# Lark calls lexer callbacks for ignored terminals too; that is how comments survive.
_comment_sink: list[list[Token]] = []


def _collect_comment(tok: Token) -> Token:
    if _comment_sink:
        _comment_sink[-1].append(tok)
    return tok


def grammar() -> lark.Lark:
    """The compiled Lark parser (LALR, contextual lexer)."""
    return _parser()


def parse(text: str, path: str = "<string>") -> ast.Program:
    """Parse `.gauge` source into an `ast.Program`.

    **Raises:** `GaugeError` with one syntax diagnostic (LALR stops at the first error).
    """
    comments: list[Token] = []
    parser = _parser()
    try:
        tree = _parse_collecting(parser, text, comments)
    except lark.exceptions.UnexpectedInput as exc:
        raise GaugeError([syntax_error(exc, text, path, parser)]) from None
    builder = _Builder(path, comments)
    items = tuple(builder.transform(tree).children)
    comment_nodes = tuple(ast.Comment(str(c), _token_span(path, c)) for c in comments)
    return ast.Program(path, items, comment_nodes, _file_doc(comments, items))


def _parse_collecting(parser: lark.Lark, text: str, comments: list[Token]) -> lark.Tree:
    _comment_sink.append(comments)
    try:
        return parser.parse(text)
    finally:
        _comment_sink.pop()


def _token_span(path: str, tok: Token) -> Span:
    return Span(path, tok.line, tok.column, tok.end_line, tok.end_column)


def _meta_span(path: str, meta) -> Span:
    return Span(path, meta.line, meta.column, meta.end_line, meta.end_column)


def _doc_above(comments: list[Token], line: int) -> str:
    """The `##` lines directly above `line`, joined; blank-free adjacency is required."""
    by_line = {c.line: str(c) for c in comments}
    docs = []
    current = line - 1
    while current in by_line and by_line[current].startswith("##"):
        docs.append(by_line[current][2:].strip())
        current -= 1
    return "\n".join(reversed(docs))


def _file_doc(comments: list[Token], items: tuple) -> str:
    first_item_line = items[0].span.line if items else 10**9
    docs = []
    expected = 1
    for c in comments:
        if c.line >= first_item_line or not str(c).startswith("##"):
            break
        if docs and c.line != expected:
            break
        docs.append(str(c)[2:].strip())
        expected = c.line + 1
    return "\n".join(docs)


def _tokens(children, kind: str) -> list[Token]:
    return [c for c in children if isinstance(c, Token) and c.type == kind]


def _nodes(children) -> list:
    return [c for c in children if not isinstance(c, Token)]


@v_args(meta=True)
class _Builder(Transformer):
    def __init__(self, path: str, comments: list[Token]):
        super().__init__()
        self.path = path
        self.comments = comments

    def _span(self, meta) -> Span:
        return _meta_span(self.path, meta)

    def _tspan(self, tok: Token) -> Span:
        return _token_span(self.path, tok)

    # ---- expressions ----

    def number(self, meta, ch):
        (tok,) = ch
        text = str(tok)
        value = float(text)
        return ast.Number(value, text, self._tspan(tok))

    def string(self, meta, ch):
        (tok,) = ch
        return ast.String(str(tok)[1:-1], self._tspan(tok))

    def name(self, meta, ch):
        (tok,) = ch
        return ast.Name(str(tok), self._tspan(tok))

    def atom(self, meta, ch):  # parenthesised expression
        (inner,) = _nodes(ch)
        return inner

    def _binary(op):
        def build(self, meta, ch):
            left, right = _nodes(ch)
            return ast.Binary(op, left, right, self._span(meta))

        return build

    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    matmul = _binary("@")
    pow = _binary("^")
    del _binary

    def neg(self, meta, ch):
        (operand,) = _nodes(ch)
        return ast.Unary("-", operand, self._span(meta))

    def transpose(self, meta, ch):
        (value,) = _nodes(ch)
        return ast.Transpose(value, self._span(meta))

    def index(self, meta, ch):
        value, items = _nodes(ch)
        return ast.Index(value, items, self._span(meta))

    def index_list(self, meta, ch):
        return tuple(_nodes(ch))

    def slice(self, meta, ch):
        start = stop = None
        seen_colon = False
        for c in ch:
            if isinstance(c, Token):
                seen_colon = seen_colon or c.type == "COLON"
            elif seen_colon:
                stop = c
            else:
                start = c
        return ast.Slice(start, stop, self._span(meta))

    def list_lit(self, meta, ch):
        return ast.ListLit(tuple(_nodes(ch)), self._span(meta))

    def call(self, meta, ch):
        func = ch[0]
        args, kwargs = next(c for c in ch if isinstance(c, tuple))
        return ast.Call(str(func), self._tspan(func), args, kwargs, self._span(meta))

    def arg_list(self, meta, ch):
        nodes = _nodes(ch)
        args = tuple(n for n in nodes if not isinstance(n, ast.Keyword))
        kwargs = tuple(n for n in nodes if isinstance(n, ast.Keyword))
        return (args, kwargs)

    def kwarg(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.Keyword(str(name), value, self._span(meta))

    # ---- declarations ----

    def start(self, meta, ch):
        return lark.Tree("start", list(ch))

    def model_decl(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        return ast.ModelDecl(str(name), self._span(meta))

    def import_decl(self, meta, ch):
        (path,) = _nodes(ch)
        return ast.Import(path, self._span(meta))

    def dotted_name(self, meta, ch):
        return tuple(str(t) for t in _tokens(ch, "NAME"))

    def type_expr(self, meta, ch):
        name = _tokens(ch, "NAME")[0]
        dims = next((c for c in ch if isinstance(c, tuple)), None)
        if dims is None and _tokens(ch, "LBRACK"):
            dims = ()
        return ast.TypeExpr(str(name), self._tspan(name), dims, self._span(meta))

    def dim_list(self, meta, ch):
        return tuple(_nodes(ch))

    def data_block(self, meta, ch):
        return ast.DataBlock(tuple(_nodes(ch)), self._span(meta))

    def data_def(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        type_, value = _nodes(ch)
        return ast.DataDef(str(name), self._tspan(name), type_, value, self._span(meta))

    def stream_def(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        type_, dist = _nodes(ch)
        return ast.StreamDef(str(name), self._tspan(name), type_, dist, self._span(meta))

    def param_decl(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        nodes = _nodes(ch)
        init = nodes[1] if len(nodes) > 1 else None
        doc = _doc_above(self.comments, meta.line)
        return ast.ParamDecl(str(name), self._tspan(name), nodes[0], init, doc, self._span(meta))

    def predictor_decl(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.PredictorDecl(str(name), self._tspan(name), value, self._span(meta))

    def let_decl(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.LetDecl(str(name), self._tspan(name), value, self._span(meta))

    def loss_total(self, meta, ch):
        (value,) = _nodes(ch)
        return ast.LossDecl(None, None, value, self._span(meta))

    def loss_per_sample(self, meta, ch):
        binders, sources, value = _nodes(ch)
        return ast.LossDecl(binders, sources, value, self._span(meta))

    def binder(self, meta, ch):
        return tuple(ast.Name(str(t), self._tspan(t)) for t in _tokens(ch, "NAME"))

    def symmetry_decl(self, meta, ch):
        name = _tokens(ch, "NAME")[0]
        nodes = _nodes(ch)
        params = None
        if nodes and isinstance(nodes[0], list):
            params = tuple(nodes.pop(0))
        group = nodes[0]
        actions = tuple(nodes[1:])
        doc = _doc_above(self.comments, meta.line)
        return ast.SymmetryDecl(
            str(name), self._tspan(name), params, group, actions, doc, self._span(meta)
        )

    def sym_params(self, meta, ch):
        return list(_nodes(ch))

    def sym_param(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        (type_,) = _nodes(ch)
        return ast.SymParam(str(name), type_, self._span(meta))

    def action(self, meta, ch):
        (target,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.Action(str(target), self._tspan(target), value, self._span(meta))

    def symmetry_inst(self, meta, ch):
        names = _tokens(ch, "NAME")
        name, template, args = names[0], names[1], names[2:]
        return ast.SymmetryInst(
            str(name),
            self._tspan(name),
            str(template),
            self._tspan(template),
            tuple(ast.Name(str(a), self._tspan(a)) for a in args),
            _doc_above(self.comments, meta.line),
            self._span(meta),
        )

    def noise_decl(self, meta, ch):
        (kind,) = _tokens(ch, "NAME")
        args, kwargs = next((c for c in ch if isinstance(c, tuple)), ((), ()))
        return ast.NoiseDecl(str(kind), self._tspan(kind), args, kwargs, self._span(meta))

    def run_block(self, meta, ch):
        nodes = _nodes(ch)
        settings = tuple(n for n in nodes if isinstance(n, ast.Setting))
        records = tuple(n for n in nodes if isinstance(n, ast.Record))
        return ast.RunBlock(settings, records, self._span(meta))

    def setting(self, meta, ch):
        (name,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.Setting(str(name), self._tspan(name), value, self._span(meta))

    def record(self, meta, ch):
        every, *items = _nodes(ch)
        return ast.Record(every, tuple(items), self._span(meta))

    def record_item(self, meta, ch):
        (value,) = _nodes(ch)
        return ast.RecordItem(None, value, self._span(meta))

    def named_record_item(self, meta, ch):
        (label,) = _tokens(ch, "NAME")
        (value,) = _nodes(ch)
        return ast.RecordItem(str(label), value, self._span(meta))

    def predictor_setting(self, meta, ch):
        (keyword,) = _tokens(ch, "PREDICTOR")
        (value,) = _nodes(ch)
        return ast.Setting(str(keyword), self._tspan(keyword), value, self._span(meta))

    def design_block(self, meta, ch):
        return ast.DesignBlock(tuple(_nodes(ch)), self._span(meta))
