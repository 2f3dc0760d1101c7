"""`gaugedsl check FILE... [--emit ast|ir]`: parse and check, report every diagnostic."""

from __future__ import annotations

from pathlib import Path

from ..diagnostics import GaugeError
from ._common import EXIT_OK, EXIT_PROGRAM, existing_file, report


def register(sub) -> None:
    p = sub.add_parser("check", help="parse and check .gauge files")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--emit", choices=("ast", "ir"), help="print the syntax tree or the checked IR")
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    from .. import show
    from ..check import Loader
    from ..syntax import parse

    status = EXIT_OK
    for path in args.files:
        existing_file(path)
        loader = Loader()
        try:
            if args.emit == "ast":
                print(show.tree(parse(loader.read(path), str(path))))
            model = loader.check_file(path)
        except GaugeError as exc:
            report(exc, loader.sources)
            status = EXIT_PROGRAM
            continue
        if args.emit == "ir":
            print(show.model(model))
        elif args.emit is None:
            kind = "library" if not hasattr(model, "params") else "model"
            print(f"{path}: ok ({kind})")
    return status
