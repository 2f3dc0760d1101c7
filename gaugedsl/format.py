"""The canonical layout of `.gauge` source (`gaugedsl fmt`).

The formatter changes whitespace and nothing else: the tokens of the formatted text are the
tokens of the original, in the same order, and so are the comments. `format_text` checks
this on every call and refuses (with `FormatError`) rather than return text that means
something else.

The layout:

- one statement per line at the top level, one entry per line inside `{ ... }` blocks,
  indented by two spaces; `}` on a line of its own;
- one space around binary operators, `=`, `->`, `~` and the `:` of a type annotation, none
  around `^`, after a unary minus, inside brackets, before `,` and around the `:` of a slice;
  `f(x)`, `x[i]`, `x.T` and `R[3]` are written without spaces;
- inside a block, consecutive entries (a paragraph, up to a blank line) align their `:` and
  `=` (data), `=` (run and design settings) or `->` (symmetry actions);
- comments stay where they are: a comment on a line of its own stays on a line of its own
  (at the indentation of the code that follows it), a trailing comment stays at the end of
  the line of the token it follows, two spaces after the code, aligned with the trailing
  comments of the lines around it. A comment in the middle of a statement keeps the
  statement broken there; the continuation is indented by four more spaces;
- blank lines between statements, entries and comments are kept, at most one in a row;
  none at the start or end of a file, after `{` or before `}`.

**Public API:** `format_text(text, path) -> str`, `tokens(text, path) -> list[Tok]`,
`FormatError`.
"""

from __future__ import annotations

import dataclasses
import functools

import lark

from .diagnostics import GaugeError
from .syntax import ast, parse
from .syntax.parser import grammar
from .syntax.tokens import position as token_position

__all__ = ["FormatError", "Tok", "format_text", "tokens"]

INDENT = "  "
CONTINUATION = "    "

# Tokens after which an expression may go on with `[` (indexing), `.T` or a binary operator.
_OPERAND_END = {"NAME", "NUMBER", "STRING", "RPAR", "RBRACK", "TRANSPOSE"}


class FormatError(Exception):
    """The formatter would have changed the meaning of a program (a bug in gaugedsl)."""


@dataclasses.dataclass(frozen=True)
class Tok:
    """A token of the source with its position (1-based lines and columns, end exclusive).
    `type` is the grammar's terminal name: `PARAM`, `NAME`, `NUMBER`, `COMMENT`, ..."""

    type: str
    text: str
    line: int
    column: int
    end_line: int
    end_column: int

    @property
    def start(self) -> tuple[int, int]:
        return (self.line, self.column)

    @property
    def end(self) -> tuple[int, int]:
        return (self.end_line, self.end_column)


@functools.cache
def _lexing_parser() -> lark.Lark:
    """The grammar again, with a callback on every terminal: the parse then also yields the
    complete token stream, comments included, typed exactly as the parser saw them (the
    contextual lexer decides, e.g., whether `.T` is a transpose or `.` then `T`). A plain
    parse with callbacks is about twice as fast as stepping Lark's interactive parser."""
    names = [t.name for t in grammar().terminals]
    return lark.Lark(
        grammar().source_grammar,
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=False,
        lexer_callbacks={name: _collect for name in names},
    )


_sink: list[list[lark.Token]] = []


def _collect(tok: lark.Token) -> lark.Token:
    if _sink:
        _sink[-1].append(tok)
    return tok


def tokens(text: str, path: str = "<string>") -> list[Tok]:
    """Every token of `text` except whitespace, comments included, in source order.

    **Raises:** `GaugeError` with the syntax diagnostic if `text` does not parse.
    """
    collected: list[lark.Token] = []
    _sink.append(collected)
    try:
        _lexing_parser().parse(text)
    except lark.exceptions.LarkError:
        parse(text, path)  # raises the syntax diagnostic, in the author's words
        raise
    finally:
        _sink.pop()
    return [Tok(t.type, str(t), *token_position(t)) for t in collected if t.type != "WS"]


# ---- spacing ----------------------------------------------------------------------------


def _spaces(toks: list[Tok]) -> tuple[list[str], set[int]]:
    """The whitespace before each code token when it is not the first on its line, and the
    positions of the `:` of records (`record every 100: ...`)."""
    spaces = []
    brackets: list[str] = []  # "index", "list" or "paren"
    in_record = False
    unary: set[int] = set()
    slice_colons: set[int] = set()
    record_colon: set[int] = set()
    for i, t in enumerate(toks):
        prev = toks[i - 1] if i else None
        if t.type == "MINUS" and (prev is None or prev.type not in _OPERAND_END):
            unary.add(i)
        elif t.type == "RECORD":
            in_record = True
        elif t.type == "COLON":
            if brackets and brackets[-1] == "index":
                slice_colons.add(i)
            elif not brackets and in_record:
                record_colon.add(i)
                in_record = False
        if t.type == "LBRACK":
            brackets.append("index" if prev is not None and prev.type in _OPERAND_END else "list")
        elif t.type == "LPAR":
            brackets.append("paren")
        elif t.type in ("RBRACK", "RPAR") and brackets:
            brackets.pop()

    for i in range(len(toks)):
        spaces.append(_space(toks, i, unary, slice_colons, record_colon))
    return spaces, record_colon


def _space(toks, i, unary, slice_colons, record_colon) -> str:
    if i == 0:
        return ""
    p, c = toks[i - 1].type, toks[i].type
    if p in ("LPAR", "LBRACK"):
        return ""
    if c in ("RPAR", "RBRACK", "COMMA"):
        return ""
    if c == "TRANSPOSE":
        return " " if p == "NUMBER" else ""  # `3.T` would read as `3.` then `T`
    if c == "DOT" or p == "DOT":
        return ""
    if c == "DOTDOT":  # `0..4`; but `1. ..4` would read as `1`, `..`, `.4` without its space
        return " " if toks[i - 1].text.endswith(".") else ""
    if p == "DOTDOT":
        return ""
    if p == "COMMA":
        return " "
    if i in slice_colons or i - 1 in slice_colons or i in record_colon:
        return ""
    if c == "LPAR" and p == "NAME":
        return ""
    if c == "LBRACK" and p in _OPERAND_END:
        return ""
    if c == "CARET" or p == "CARET":
        return ""
    if i - 1 in unary:
        return ""
    return " "


# ---- layout -----------------------------------------------------------------------------


@dataclasses.dataclass
class _Line:
    indent: str
    code: str
    comment: str = ""  # a trailing comment, or ""
    blank: bool = False  # a blank line (code and comment unused)


@dataclasses.dataclass
class _Entry:
    """One logical line: code tokens `[lo, hi)`, and the positions whose space is padded to
    align it with its neighbours."""

    lo: int
    hi: int
    align: tuple[int, ...] = ()


class _Layout:
    def __init__(self, toks: list[Tok]):
        self.code = [t for t in toks if t.type != "COMMENT"]
        self.space, self.record_colons = _spaces(self.code)
        self.pad: dict[int, str] = {}
        # Comments attached to code tokens: `before[i]` stand on their own lines before code
        # token i (i == len(code): the end of the file); `after[i]` trails code token i.
        self.before: dict[int, list[Tok]] = {}
        self.after: dict[int, Tok] = {}
        i = 0
        for t in toks:
            if t.type != "COMMENT":
                i += 1
                continue
            text = dataclasses.replace(t, text=t.text.rstrip())
            if i > 0 and self.code[i - 1].end_line == t.line:
                self.after[i - 1] = text
            else:
                self.before.setdefault(i, []).append(text)
        self.lines: list[_Line] = []
        self.last_line = None  # source line where the last thing written ended
        self.no_blank = True  # no blank line may come next (start of file, after `{`)

    # -- writing --

    def _unit_start(self, src_line: int) -> None:
        """A statement, entry or own-line comment starts at `src_line` of the source."""
        if not self.no_blank and self.last_line is not None and src_line - self.last_line >= 2:
            self.lines.append(_Line("", "", blank=True))
        self.no_blank = False

    def _own_line_comments(self, i: int, indent: str) -> None:
        for c in self.before.get(i, ()):
            self._unit_start(c.line)
            self.lines.append(_Line(indent, "", c.text))
            self.last_line = c.end_line

    def entry(self, e: _Entry, indent: str, closing: bool = False) -> None:
        """Write code tokens `[lo, hi)` as one statement starting on a new line. `closing`:
        the `}` of a block (the comments before it belong inside the block; no blank line).

        The statement goes on one line, except where a comment stands in it and where the
        author broke the line after a comma; a continuation line starts at the column after
        the innermost open bracket (or after the `:` of a record), else four spaces in."""
        self._own_line_comments(e.lo, indent + INDENT if closing else indent)
        if closing:
            self.no_blank = True
        self._unit_start(self.code[e.lo].line)
        current, line_indent = "", indent
        columns: list[int] = []  # continuation columns: open brackets, a record's items

        def continuation() -> str:
            return " " * columns[-1] if columns else indent + CONTINUATION

        for i in range(e.lo, e.hi):
            tok = self.code[i]
            if i > e.lo and i in self.before:  # own-line comments inside a statement
                if current:
                    self.lines.append(_Line(line_indent, current))
                for c in self.before[i]:
                    self.lines.append(_Line(continuation(), "", c.text))
                current, line_indent = "", continuation()
            elif (
                current and self.code[i - 1].type == "COMMA" and tok.line > self.code[i - 1].end_line
            ):  # the author's line break after a comma
                self.lines.append(_Line(line_indent, current))
                current, line_indent = "", continuation()
            if current:
                current += self.pad.get(i, self.space[i])
            current += tok.text
            self.last_line = tok.end_line
            if tok.type in ("LPAR", "LBRACK"):
                columns.append(len(line_indent) + len(current))
            elif tok.type in ("RPAR", "RBRACK") and columns:
                columns.pop()
            elif i in self.record_colons:
                columns.append(len(line_indent) + len(current) + 1)
            if i in self.after:
                self.lines.append(_Line(line_indent, current, self.after[i].text))
                current, line_indent = "", continuation()
        if current:
            self.lines.append(_Line(line_indent, current))

    def end_of_file(self) -> None:
        self._own_line_comments(len(self.code), "")

    # -- alignment --

    def align(self, entries: list[_Entry]) -> None:
        """Pad the alignment points of consecutive entries (a paragraph: no blank line
        between them) to common columns."""
        paragraph: list[_Entry] = []
        last_end = None
        for e in entries:
            if last_end is not None and self._first_line(e) - last_end >= 2:
                self._align_paragraph(paragraph)
                paragraph = []
            paragraph.append(e)
            last_end = self.code[e.hi - 1].end_line
        self._align_paragraph(paragraph)

    def _first_line(self, e: _Entry) -> int:
        own = self.before.get(e.lo)
        return own[0].line if own else self.code[e.lo].line

    def _one_line_prefix(self, e: _Entry, upto: int) -> bool:
        return all(i not in self.after for i in range(e.lo, upto)) and all(
            i not in self.before for i in range(e.lo + 1, upto + 1)
        )

    def _align_paragraph(self, paragraph: list[_Entry]) -> None:
        points = max((len(e.align) for e in paragraph), default=0)
        for k in range(points):
            eligible = [e for e in paragraph if len(e.align) > k and self._one_line_prefix(e, e.align[k])]
            if len(eligible) < 2:
                continue
            widths = {id(e): self._prefix_width(e, e.align[k]) for e in eligible}
            column = max(widths.values()) + 1
            for e in eligible:
                self.pad[e.align[k]] = " " * (column - widths[id(e)])

    def _prefix_width(self, e: _Entry, upto: int) -> int:
        """The width of code tokens `[e.lo, upto)` on one line, with the padding so far."""
        width = 0
        for i in range(e.lo, upto):
            if i > e.lo:
                width += len(self.pad.get(i, self.space[i]))
            width += len(self.code[i].text)
        return width

    # -- output --

    def text(self) -> str:
        lines = self.lines
        while lines and lines[-1].blank:
            lines.pop()
        # Trailing comments of consecutive lines share a column.
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.blank:
                out.append("")
                i += 1
                continue
            if not (line.code and line.comment):
                out.append((line.indent + line.code if line.code else line.indent + line.comment).rstrip())
                i += 1
                continue
            j = i
            while j < len(lines) and not lines[j].blank and lines[j].code and lines[j].comment:
                j += 1
            column = max(len(lines[k].indent + lines[k].code) for k in range(i, j)) + 2
            for k in range(i, j):
                code = lines[k].indent + lines[k].code
                out.append(code + " " * (column - len(code)) + lines[k].comment)
            i = j
        return "\n".join(out) + "\n" if out else ""


def _span_range(code: list[Tok], span) -> tuple[int, int]:
    start, end = (span.line, span.column), (span.end_line, span.end_column)
    lo = next(i for i, t in enumerate(code) if t.start >= start)
    hi = lo
    while hi < len(code) and code[hi].start < end:
        hi += 1
    return lo, hi


def _find_depth0(code: list[Tok], lo: int, hi: int, kinds: tuple[str, ...]) -> int | None:
    depth = 0
    for i in range(lo, hi):
        t = code[i].type
        if t in ("LPAR", "LBRACK"):
            depth += 1
        elif t in ("RPAR", "RBRACK"):
            depth -= 1
        elif depth == 0 and t in kinds:
            return i
    return None


def _entry(code: list[Tok], node) -> _Entry:
    lo, hi = _span_range(code, node.span)
    points: list[int] = []
    if isinstance(node, (ast.DataDef, ast.StreamDef)):
        colon = _find_depth0(code, lo, hi, ("COLON",))
        if colon is not None:
            points.append(colon)
            eq = _find_depth0(code, colon, hi, ("EQUAL", "TILDE"))
            if eq is not None:
                points.append(eq)
    elif isinstance(node, (ast.Setting, ast.SweepAxis)):
        eq = _find_depth0(code, lo, hi, ("EQUAL",))
        if eq is not None:
            points.append(eq)
    elif isinstance(node, ast.Action):
        arrow = _find_depth0(code, lo, hi, ("ARROW",))
        if arrow is not None:
            points.append(arrow)
    return _Entry(lo, hi, tuple(points))


def _block_entries(item) -> list | None:
    """The entries of a block statement in source order; `None` for other statements."""
    if isinstance(item, ast.DataBlock):
        return list(item.entries)
    if isinstance(item, ast.RunBlock):
        return sorted(item.settings + item.records + item.sweeps, key=lambda e: (e.span.line, e.span.column))
    if isinstance(item, ast.DesignBlock):
        return list(item.settings)
    if isinstance(item, ast.SymmetryDecl):
        return list(item.actions)
    return None


def format_text(text: str, path: str = "<string>") -> str:
    """`text` in the canonical layout.

    **Raises:** `GaugeError` if `text` does not parse; `FormatError` if the result would not
    have the same tokens and comments as `text` (a bug).
    """
    program = parse(text, path)
    toks = tokens(text, path)
    layout = _Layout(toks)
    code = layout.code
    covered = 0
    for item in program.items:
        lo, hi = _span_range(code, item.span)
        if lo != covered:
            raise FormatError(f"{path}: tokens {covered}..{lo} belong to no statement")
        entries = _block_entries(item)
        if entries is None:
            layout.entry(_Entry(lo, hi), "")
        else:
            brace = next(i for i in range(lo, hi) if code[i].type == "LBRACE")
            if code[hi - 1].type != "RBRACE":
                raise FormatError(f"{path}:{item.span.line}: a block that does not end in '}}'")
            layout.entry(_Entry(lo, brace + 1), "")
            layout.no_blank = True
            inner = [_entry(code, e) for e in entries]
            layout.align(inner)
            at = brace + 1
            for node, e in zip(entries, inner):
                if e.lo != at:
                    raise FormatError(f"{path}: tokens {at}..{e.lo} belong to no entry")
                if isinstance(node, ast.SweepBlock):  # a block inside the run block
                    _nested_block(layout, code, node, e, INDENT, path)
                else:
                    layout.entry(e, INDENT)
                at = e.hi
            if at != hi - 1:
                raise FormatError(f"{path}: tokens {at}..{hi - 1} belong to no entry")
            layout.entry(_Entry(hi - 1, hi), "", closing=True)
        covered = hi
    if covered != len(code):
        raise FormatError(f"{path}: tokens after the last statement")
    layout.end_of_file()
    result = layout.text()
    _verify(toks, result, path)
    return result


def _nested_block(layout: _Layout, code: list[Tok], node: ast.SweepBlock, e: _Entry, indent: str, path: str) -> None:
    """`sweep {` at `indent`, its axes one level in (their `=` aligned), `}` back at `indent`."""
    brace = next(i for i in range(e.lo, e.hi) if code[i].type == "LBRACE")
    layout.entry(_Entry(e.lo, brace + 1), indent)
    layout.no_blank = True
    axes = [_entry(code, a) for a in node.axes]
    layout.align(axes)
    at = brace + 1
    for a in axes:
        if a.lo != at:
            raise FormatError(f"{path}: tokens {at}..{a.lo} belong to no entry")
        layout.entry(a, indent + INDENT)
        at = a.hi
    if at != e.hi - 1:
        raise FormatError(f"{path}: tokens {at}..{e.hi - 1} belong to no entry")
    layout.entry(_Entry(e.hi - 1, e.hi), indent, closing=True)


def _verify(original: list[Tok], formatted_text: str, path: str) -> None:
    try:
        formatted = tokens(formatted_text, path)
    except GaugeError as exc:
        raise FormatError(f"{path}: the formatted text does not parse:\n{exc}") from None

    def key(toks):
        return [(t.type, t.text.rstrip() if t.type == "COMMENT" else t.text) for t in toks]

    if key(original) != key(formatted):
        raise FormatError(f"{path}: formatting would change the tokens of the program")
