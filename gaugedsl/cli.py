"""The `gaugedsl` command.

Exit codes: 0 ok, 1 errors in the program, 2 usage error, 3 internal error (a bug: the
traceback is shown only under `--debug`).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from . import __version__
from .diagnostics import GaugeError, SourceCache

EXIT_OK, EXIT_PROGRAM, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """A command-line mistake (a missing file, a bad option)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaugedsl",
        description="A language for the geometry of learning dynamics: symmetries, Noether "
        "charges, the gauge-correction bias (T/2) log det G, and simulations that test it.",
    )
    parser.add_argument("--version", action="version", version=f"gaugedsl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="parse and check .gauge files")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument("--emit", choices=("ast", "ir"), help="print the syntax tree or the checked IR")
    check.set_defaults(handler=_check)
    return parser


def _check(args, sources: SourceCache) -> int:
    from .check import Loader
    from .syntax import parse
    from . import show

    status = EXIT_OK
    for path in args.files:
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        loader = Loader()
        try:
            if args.emit == "ast":
                text = loader.read(path)
                print(show.tree(parse(text, str(path))))
            model = loader.check_file(path)
        except GaugeError as exc:
            _report(exc, loader.sources)
            status = EXIT_PROGRAM
            continue
        if args.emit == "ir":
            print(show.model(model))
        elif args.emit is None:
            kind = "library" if not hasattr(model, "params") else "model"
            print(f"{path}: ok ({kind})")
    return status


def _report(exc: GaugeError, sources: SourceCache) -> None:
    for d in exc.diagnostics:
        print(d.render(sources), file=sys.stderr)
    errors = sum(d.severity == "error" for d in exc.diagnostics)
    if errors > 1:
        print(f"{errors} errors", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    sources = SourceCache()
    try:
        return args.handler(args, sources)
    except UsageError as exc:
        print(f"gaugedsl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GaugeError as exc:
        _report(exc, sources)
        return EXIT_PROGRAM
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
