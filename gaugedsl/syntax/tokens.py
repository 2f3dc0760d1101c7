"""Positions of lexed tokens, typed.

Lark declares a `Token`'s `line`, `column`, `end_line` and `end_column` as `Optional[int]`: a
Token made by hand need have none. Every token Lark's lexer makes has all four (the parser's
spans, the formatter's layout and the syntax diagnostics rely on it), so these helpers only say
so to the type checker; they check nothing at run time.
"""

from __future__ import annotations

from typing import cast

from lark import Token


def start(tok: Token) -> tuple[int, int]:
    """(line, column) where a lexed token starts (1-based)."""
    return cast("tuple[int, int]", (tok.line, tok.column))


def end(tok: Token) -> tuple[int, int]:
    """(end_line, end_column) where a lexed token ends (the column is exclusive)."""
    return cast("tuple[int, int]", (tok.end_line, tok.end_column))


def position(tok: Token) -> tuple[int, int, int, int]:
    """(line, column, end_line, end_column) of a lexed token."""
    return cast("tuple[int, int, int, int]", (tok.line, tok.column, tok.end_line, tok.end_column))


def line(tok: Token) -> int:
    """The line a lexed token starts on."""
    return cast(int, tok.line)
