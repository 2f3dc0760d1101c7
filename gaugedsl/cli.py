"""The `gaugedsl` command.

Exit codes: 0 ok, 1 errors in the program, 2 usage error, 3 internal error (a bug: the
traceback is shown only under `--debug`).
"""

from __future__ import annotations

import argparse
import sys
import traceback

from . import __version__
from .commands import COMMANDS
from .commands._common import EXIT_BROKEN_PIPE, EXIT_INTERNAL, EXIT_PROGRAM, EXIT_USAGE, UsageError, report
from .diagnostics import GaugeError, SourceCache


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaugedsl",
        description="A language for the geometry of learning dynamics: symmetries, Noether "
        "charges, the gauge-correction bias (T/2) log det G, and simulations that test it.",
    )
    parser.add_argument("--version", action="version", version=f"gaugedsl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ._host import request_cacheable_programs, request_host_devices

    request_host_devices()  # before JAX starts: one CPU device per core for the ensembles
    request_cacheable_programs()  # before Equinox is imported
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    sources = SourceCache()
    try:
        return _dispatch(args, sources)
    except BrokenPipeError:
        # The reader left (`gaugedsl check bad.gauge 2>&1 | head -1`): what was not written is lost,
        # so the status says so, as a process killed by SIGPIPE would (128 + 13); the streams go
        # to /dev/null so that flushing them at exit does not fail again.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):
                pass
        return EXIT_BROKEN_PIPE


def _dispatch(args, sources: SourceCache) -> int:
    try:
        return args.handler(args, sources)
    except UsageError as exc:
        print(f"gaugedsl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GaugeError as exc:
        report(exc, sources)
        return EXIT_PROGRAM
    except BrokenPipeError:
        raise
    except KeyboardInterrupt:
        print("gaugedsl: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 — the last line of defence: never a bare traceback
        print("gaugedsl: internal error — this is a bug in gaugedsl, please report it with the "
              "command and the .gauge file.", file=sys.stderr)  # fmt: skip
        if args.debug:
            traceback.print_exc()
        else:
            print("Run again with --debug to see the Python traceback.", file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())
