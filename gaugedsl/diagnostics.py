"""Diagnostics: the one way a `.gauge` author hears about a problem.

A diagnostic names the file, line and column, shows the source line with a caret under the
offending span, and gives one hint that says what to do. Every stage (syntax, checking,
geometry, dynamics) reports through `Diagnostic`; the CLI renders them and picks the exit code.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Literal

Severity = Literal["error", "warning", "note"]


@dataclasses.dataclass(frozen=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; `end_column` is exclusive."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column)


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    """One message about a program.

    **Arguments:**

    - `severity`: `"error"`, `"warning"` or `"note"`.
    - `code`: a stable code such as `"E301"`; `docs/errors.md` lists them all.
    - `span`: where in the source; `None` only for problems that have no place (a missing file).
    - `message`: what is wrong, in the author's words.
    - `hint`: what to do about it.
    """

    severity: Severity
    code: str
    span: Span | None
    message: str
    hint: str | None = None

    def render(self, sources: "SourceCache | None" = None) -> str:
        where = f"{self.span}: " if self.span is not None else ""
        lines = [f"{where}{self.severity}[{self.code}]: {self.message}"]
        if self.span is not None and sources is not None:
            text = sources.line(self.span.path, self.span.line)
            if text is not None:
                lines.append(_excerpt(text, self.span))
        if self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)


_WIDTH = 100  # longer source lines are shown as a window around the span


def _excerpt(text: str, span: Span) -> str:
    # One character per column: tabs become one space, other control characters a '�'.
    text = "".join(" " if c == "\t" else c if c.isprintable() else "\ufffd" for c in text.rstrip("\r\n"))
    gutter = f"{span.line:>4} | "
    start = max(span.column - 1, 0)
    if span.end_line == span.line:
        width = max(span.end_column - span.column, 1)
    else:
        width = max(len(text) - start, 1)
    width = max(min(width, max(len(text) - start, 1)), 1)
    if len(text) > _WIDTH:
        left = max(0, min(start - _WIDTH // 3, len(text) - _WIDTH))
        shown = text[left : left + _WIDTH]
        prefix = "…" if left > 0 else ""
        suffix = "…" if left + _WIDTH < len(text) else ""
        text = prefix + shown + suffix
        start = start - left + len(prefix)
        width = max(min(width, len(prefix) + len(shown) - start), 1)
    caret = " " * (len(gutter) - 2) + "| " + " " * start + "^" * width
    return f"{gutter}{text}\n{caret}"


class SourceCache:
    """The text of every file a run has read, so that diagnostics can quote it."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, path: str, text: str) -> None:
        # Only '\n' ends a line, as in the lexer (str.splitlines would also split at \f, \x1c, ...).
        self._lines[path] = text.split("\n")

    def line(self, path: str, line: int) -> str | None:
        lines = self._lines.get(path)
        if lines is None or not 1 <= line <= len(lines):
            return None
        return lines[line - 1]


class GaugeError(Exception):
    """Raised by a stage that cannot go on; carries every diagnostic collected so far."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: d.span.sort_key() if d.span else ("", 0, 0))
        super().__init__("\n".join(d.render() for d in self.diagnostics))
        self.sources: SourceCache | None = None

    def __str__(self) -> str:
        # With the sources attached (the Python API does), quote the lines with carets.
        return "\n".join(d.render(self.sources) for d in self.diagnostics)


def error(code: str, span: Span | None, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic("error", code, span, message, hint)


def warning(code: str, span: Span | None, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic("warning", code, span, message, hint)
