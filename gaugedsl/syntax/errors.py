"""Lark's parse errors, retold in the `.gauge` author's words.

Never show a terminal name: every terminal has a human description here, and the most
common mistakes (a missing `=`, an unclosed brace, `->` where `=` belongs, a misspelt
keyword) get messages of their own.
"""

from __future__ import annotations

import difflib

import lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..diagnostics import Diagnostic, Span, error
from . import tokens

KEYWORDS = {
    "MODEL": "model",
    "IMPORT": "import",
    "DATA": "data",
    "STREAM": "stream",
    "PARAM": "param",
    "PREDICTOR": "predictor",
    "LET": "let",
    "LOSS": "loss",
    "PER": "per",
    "IN": "in",
    "SYMMETRY": "symmetry",
    "NOISE": "noise",
    "RUN": "run",
    "RECORD": "record",
    "EVERY": "every",
    "DESIGN": "design",
    "SWEEP": "sweep",
    "ZIP": "zip",
}
STATEMENT_KEYWORDS = (
    "model", "import", "data", "param", "predictor", "let", "loss", "symmetry", "noise", "run",
    "design",
)  # fmt: skip
PUNCTUATION = {
    "ARROW": "->",
    "DOTDOT": "..",
    "TRANSPOSE": ".T",
    "DOT": ".",
    "LBRACE": "{",
    "RBRACE": "}",
    "LBRACK": "[",
    "RBRACK": "]",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "COLON": ":",
    "EQUAL": "=",
    "TILDE": "~",
    "PLUS": "+",
    "MINUS": "-",
    "STAR": "*",
    "SLASH": "/",
    "AT": "@",
    "CARET": "^",
}
CLASSES = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string", "$END": "the end of the file"}
_OPEN = {"{": "}", "[": "]", "(": ")"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_EXPRESSION_START = {"NAME", "NUMBER", "STRING", "LPAR", "LBRACK", "MINUS"}
_STATEMENT_KINDS = {k for k, v in KEYWORDS.items() if v in STATEMENT_KEYWORDS}


def describe_terminal(kind: str) -> str:
    if kind in KEYWORDS:
        return f"'{KEYWORDS[kind]}'"
    if kind in PUNCTUATION:
        return f"'{PUNCTUATION[kind]}'"
    return CLASSES.get(kind, kind.lower())


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:20] + "…" + text[-10:]


def describe_token(tok: lark.Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type in ("NAME", "NUMBER", "STRING"):
        word = {"NAME": "name", "NUMBER": "number", "STRING": "string"}[tok.type]
        text = _shorten(str(tok))
        return f"{word} '{text}'" if tok.type == "NAME" else f"{word} {text}"
    if tok.type in KEYWORDS:
        return f"keyword '{tok}'"
    return f"'{tok}'"


_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "AT", "CARET", "TRANSPOSE"}


def _expected_list(expected: set[str]) -> str:
    kinds = {k for k in expected if not k.startswith("__")}
    words = []
    if len(kinds & _STATEMENT_KINDS) >= 3:
        kinds -= _STATEMENT_KINDS
        words.append("a new statement")
    if _EXPRESSION_START <= kinds:
        kinds -= _EXPRESSION_START
        words.append("an expression")
    if len(kinds & _OPERATORS) >= 4:
        kinds -= _OPERATORS | {"LBRACK"}
        words.append("an operator")
    words += sorted(describe_terminal(k) for k in kinds)
    if len(words) > 8:
        words = words[:8] + ["..."]
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _span_at(path: str, line: int, column: int, width: int = 1) -> Span:
    return Span(path, line, column, line, column + max(width, 1))


def _token_span(path: str, tok: lark.Token, text: str) -> Span:
    if tok.type == "$END" or tok.line is None:
        line, column = end_of_code(text)
        return _span_at(path, line, column)
    return Span(path, *tokens.position(tok))


def end_of_code(text: str) -> tuple[int, int]:
    """The (line, column) just after the last character of `text` that is not blank or in a comment."""
    last = (1, 1)
    line, col = 1, 1
    in_comment = in_string = False
    for c in text:
        if c == "\n":
            line, col = line + 1, 1
            in_comment = in_string = False
            continue
        if c == '"' and not in_comment:
            in_string = not in_string
        elif c == "#" and not in_string:
            in_comment = True
        if not in_comment and not c.isspace():
            last = (line, col + 1)
        col += 1
    return last


def unclosed_bracket(text: str) -> tuple[str, int, int] | None:
    """The innermost bracket left open at the end of `text`, as (char, line, column)."""
    stack: list[tuple[str, int, int]] = []
    line, col = 1, 1
    i = 0
    while i < len(text):
        c = text[i]
        if c == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        if c == '"':
            j = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            if j == -1 or (nl != -1 and nl < j):
                j = i
            col += j - i
            i = j
        elif c in _OPEN:
            stack.append((c, line, col))
        elif c in _CLOSE and stack and stack[-1][0] == _CLOSE[c]:
            stack.pop()
        if c == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    return stack[-1] if stack else None


def syntax_error(exc: UnexpectedInput, text: str, path: str, parser: lark.Lark) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text, path)
    assert isinstance(exc, UnexpectedToken), exc
    return _unexpected_token(exc, text, path)


_LOOKALIKES = {
    "−": ("-", "minus"),
    "–": ("-", "minus"),
    "×": ("*", "product"),
    "⊙": ("*", "elementwise product"),
    "·": ("*", "product"),
    "²": ("^2", "square"),
    "≤": (None, "comparison"),
    "≥": (None, "comparison"),
    "“": ('"', "quote"),
    "”": ('"', "quote"),
}


def _bad_character(exc: UnexpectedCharacters, text: str, path: str) -> Diagnostic:
    char = exc.char
    span = _span_at(path, exc.line, exc.column)
    if char == '"':
        return error(
            "E009",
            span,
            "this string is never closed",
            'close it with a `"` on the same line; strings cannot span lines',
        )
    if char == "'":
        return error("E002", span, 'unexpected character "\'"', 'strings use double quotes: "file.npz"')
    if char in "!<>=&|" or _LOOKALIKES.get(char, ("", ""))[1] == "comparison":
        return error("E002", span, f"unexpected character '{char}'", "gauge has no comparisons or logic; remove it")
    if char == ";":
        return error("E002", span, "unexpected character ';'", "remove it; statements need no separator")
    if char in _LOOKALIKES:
        ascii_, what = _LOOKALIKES[char]
        return error("E002", span, f"unexpected character '{char}'", f"write the {what} in ASCII: '{ascii_}'")
    shown = char if char.isprintable() and not char.isspace() else repr(char)
    return error(
        "E002",
        span,
        f"unexpected character '{shown}'" if shown == char else f"unexpected character {shown}",
        "remove it; gauge expressions use names, numbers, strings and + - * / @ ^ ( ) [ ] , : .T",
    )


_CLOSERS = {"RPAR": ")", "RBRACK": "]", "RBRACE": "}"}


def _unexpected_token(exc: UnexpectedToken, text: str, path: str) -> Diagnostic:
    tok = exc.token
    expected = set(exc.expected)
    span = _token_span(path, tok, text)
    kind = tok.type
    pos = _offset(text, tok)

    # A closing bracket that closes nothing, or the wrong thing.
    if kind in _CLOSERS:
        opened = unclosed_bracket(text[:pos])
        if opened is None:
            return error(
                "E004",
                span,
                f"this '{tok}' has no matching '{_CLOSE[str(tok)]}'",
                "remove it, or add the opening bracket it belongs to",
            )
        char, line, col = opened
        if _OPEN[char] != str(tok):
            return error(
                "E004",
                span,
                f"this '{tok}' does not match the '{char}' opened at line {line}, column {col}",
                f"close the '{char}' with '{_OPEN[char]}' first",
            )

    # The file ends, or a statement starts, while a bracket is open.
    if kind == "$END" or (kind in _STATEMENT_KINDS and expected & set(_CLOSERS)):
        opened = unclosed_bracket(text[:pos])
        if opened is not None:
            char, line, col = opened
            follows = _next_code(text, pos + len(tok))
            if (
                kind != "$END"
                and "NAME" in expected
                and follows in ("->", "=", ":")
                and not (kind == "LOSS" and follows == "=")
            ):
                return _keyword_as_name(tok, span)
            if kind != "$END" and unclosed_bracket(text) is None:
                # Every bracket is closed later: the statement really is inside a block.
                return error(
                    "E004",
                    span,
                    f"'{tok}' starts a statement, but the '{char}' opened at line {line} is still open here",
                    f"close it with '{_OPEN[char]}' before this line, or move this statement out of the block",
                )
            where = "at the end of the file" if kind == "$END" else f"before {describe_token(tok)}"
            return error(
                "E004",
                _span_at(path, line, col),
                f"this '{char}' is never closed",
                f"add the matching '{_OPEN[char]}' {where} (line {span.line})",
            )
        if kind == "$END":
            return error(
                "E007",
                span,
                f"the file ends in the middle of a statement; expected {_expected_list(expected)}",
                "finish the statement or remove it",
            )

    if kind == "EQUAL" and "ARROW" in expected:
        return error(
            "E005",
            span,
            "a symmetry's action rule maps a parameter with '->', not '='",
            "write it as `u -> g * u`",
        )
    if kind == "ARROW" and "EQUAL" in expected:
        return error(
            "E005",
            span,
            "'->' is only for the action rules inside a symmetry block",
            "use '=' to define or set a value",
        )
    if kind == "STAR" and _previous_char(text, tok) == "*":
        return error(
            "E010",
            _span_at(path, span.line, span.column - 1, 2),
            "'**' is not an operator",
            "write powers with '^', as in x^2",
        )
    if kind in ("NAME", "NUMBER") and _previous_char(text, tok) == '"':
        return error(
            "E009",
            span,
            f"{describe_token(tok)} follows a string directly; is a closing quote missing?",
            'every string needs its own pair of quotes: load("data.npz", "X")',
        )
    if "EQUAL" in expected and kind in _EXPRESSION_START:
        return error(
            "E003",
            span,
            f"expected '=' before {describe_token(tok)}",
            "a definition or setting reads `name = value`",
        )
    if kind in ("NAME",) + tuple(KEYWORDS) and "PARAM" in expected and "MODEL" in expected:
        word = _shorten(str(tok))
        guess = difflib.get_close_matches(word, STATEMENT_KEYWORDS, n=1, cutoff=0.6)
        if guess:
            return error("E006", span, f"unknown statement '{word}'", f"did you mean '{guess[0]}'?")
        if _on_same_line(text, pos):
            statement = _statement_before(text, pos)
            if statement in ("model", "import", "noise"):
                hint = f"a {statement} statement reads {_FORMS[statement]}"
            else:
                hint = "is an operator missing? write u * v, not u v; or start the next statement on a new line"
            return error("E001", span, f"unexpected {describe_token(tok)} after a complete statement", hint)
        return error(
            "E006",
            span,
            f"unknown statement '{word}'",
            "a statement starts with one of: " + ", ".join(STATEMENT_KEYWORDS),
        )
    if kind in KEYWORDS and "NAME" in expected:
        return _keyword_as_name(tok, span)
    if kind == "COMMA" and "RBRACE" in expected:
        return error("E001", span, "unexpected ','", "entries of a block need no separator: remove the ','")
    statement = _statement_before(text, pos)
    hint = (
        f"a {statement} statement reads {_FORMS[statement]}"
        if statement in _FORMS
        else "check the statement against the language reference (docs/language.md)"
    )
    return error("E001", span, f"unexpected {describe_token(tok)}; expected {_expected_list(expected)}", hint)


_FORMS = {
    "model": "`model my_model`",
    "import": "`import std.rescaling` (or `import lib.file` for lib/file.gauge beside this file)",
    "data": "`data { X : R[10, 3] = normal(0, 1, seed = 0)  stream x : R[3] ~ normal(0, 1) }`",
    "param": "`param w : R[3] = normal(0, 0.1)` (the initializer is optional)",
    "predictor": "`predictor w = u * v`",
    "let": "`let r = X @ w - y`",
    "loss": "`loss = 0.5 * sum(r^2)` or `loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2`",
    "symmetry": "`symmetry s : Scale[3] { u -> g * u  v -> v / g }` or `symmetry s = rescaling(u, v)`",
    "noise": "`noise projected(T = 1e-3)`, with the settings in parentheses",
    "run": "`run { steps = 1000  dt = 1e-2  record every 10: loss }`",
    "design": "`design { target = sparsity  predictor = w }`",
}


def _statement_before(text: str, pos: int) -> str | None:
    """The keyword of the statement that `pos` is in: the last statement keyword before it
    that is outside brackets, strings and comments."""
    found = None
    depth = 0
    i = 0
    while i < pos:
        c = text[i]
        if c == "#":
            nl = text.find("\n", i)
            i = pos if nl == -1 else nl
            continue
        if c == '"':
            end = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            i = (i + 1) if end == -1 or (nl != -1 and nl < end) else end + 1
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth = max(depth - 1, 0)
        elif (c.isalpha() or c == "_") and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            if depth == 0 and word in STATEMENT_KEYWORDS:
                found = word
            i = j
            continue
        i += 1
    return found


def _keyword_as_name(tok: lark.Token, span: Span) -> Diagnostic:
    return error(
        "E011",
        span,
        f"'{tok}' is a keyword and cannot be used as a name",
        f"choose another name, such as '{tok}_'",
    )


def _next_code(text: str, pos: int) -> str:
    """The two characters of code after `pos`, skipping blanks and comments."""
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
        elif text[pos] == "#":
            while pos < len(text) and text[pos] != "\n":
                pos += 1
        else:
            return "->" if text.startswith("->", pos) else text[pos]
    return ""


def _on_same_line(text: str, pos: int) -> bool:
    """Whether code (not only blanks) precedes `pos` on its line."""
    start = text.rfind("\n", 0, pos) + 1
    return text[start:pos].strip() != ""


def _offset(text: str, tok: lark.Token) -> int:
    if tok.start_pos is not None:
        return tok.start_pos
    return len(text)


def _previous_char(text: str, tok: lark.Token) -> str:
    pos = _offset(text, tok)
    return text[pos - 1] if pos > 0 else ""
