"""What every command shares: usage errors and the rendering of diagnostics."""

from __future__ import annotations

import sys
from pathlib import Path

from ..diagnostics import GaugeError, SourceCache

EXIT_OK, EXIT_PROGRAM, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # the reader of a pipe left: 128 + SIGPIPE, as the shell reports a killed process


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


def gauge_files(names: list[str]) -> list[str]:
    """The files the command line names, a folder standing for every .gauge file below it
    (sorted); `-` (standard input) passes through."""
    files: list[str] = []
    for name in names:
        path = Path(name)
        if name == "-" or path.is_file():
            files.append(name)
        elif path.is_dir():
            found = sorted(str(p) for p in path.rglob("*.gauge") if p.is_file())
            if not found:
                raise UsageError(f"no .gauge files in the folder {name}")
            files.extend(found)
        else:
            raise UsageError(f"no such file or folder: {name}")
    return files


def xla_cache() -> None:
    """Keep compiled programs between runs (in the user's cache folder, like the parser's
    tables): a repeated experiment skips compilation. GAUGEDSL_XLA_CACHE=0 turns it off."""
    import os

    import jax

    if os.environ.get("GAUGEDSL_XLA_CACHE", "1") == "0":
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "gaugedsl", "xla")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return
    if os.access(folder, os.W_OK):
        jax.config.update("jax_compilation_cache_dir", folder)
        # Every program, however quick to compile: building a simulation compiles dozens of
        # small ones op by op (data and stream draws, initial points: 2–3 s in all for E1–E3),
        # each read back from the cache in milliseconds.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def memory_size(text: str) -> int:
    """argparse type of --max-memory: '4GB', '512MB', a number of bytes."""
    import argparse

    from ..budget import parse_size

    try:
        value = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be more than 0 bytes")
    return value


def add_max_memory(p) -> None:
    p.add_argument(
        "--max-memory",
        type=memory_size,
        metavar="SIZE",
        help="refuse, before allocating, what would need more memory than SIZE (4GB, 512MB; default: 80%% of the machine's)",
    )
