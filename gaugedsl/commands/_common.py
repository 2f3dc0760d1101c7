"""What every command shares: usage errors and the rendering of diagnostics."""

from __future__ import annotations

import sys
from pathlib import Path

from ..diagnostics import GaugeError, SourceCache

EXIT_OK, EXIT_PROGRAM, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """A command-line mistake (a missing file, a bad option): exit code 2."""


def report(exc: GaugeError, sources: SourceCache) -> None:
    for d in exc.diagnostics:
        print(d.render(sources), file=sys.stderr)
    errors = sum(d.severity == "error" for d in exc.diagnostics)
    if errors > 1:
        print(f"{errors} errors", file=sys.stderr)


def existing_file(path: Path) -> Path:
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    return path
