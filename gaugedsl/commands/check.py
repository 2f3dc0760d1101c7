"""`gaugedsl check FILE_OR_FOLDER... [--emit ast|ir]`: parse and check, report every diagnostic
(a folder: every .gauge file below it, as `fmt` takes it)."""

from __future__ import annotations

from pathlib import Path

from ..diagnostics import GaugeError
from ._common import EXIT_OK, EXIT_PROGRAM, existing_file, gauge_files, report


def register(sub) -> None:
    p = sub.add_parser("check", help="parse and check .gauge files")
    p.add_argument("files", nargs="+", metavar="FILE", help="a .gauge file, or a folder: every .gauge file below it")
    p.add_argument("--emit", choices=("ast", "ir"), help="print the syntax tree or the checked IR")
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    from .. import show
    from ..check import Loader
    from ..syntax import parse

    status = EXIT_OK
    for name in gauge_files(args.files):
        path = existing_file(Path(name))  # `-` (standard input) is fmt's, not check's
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
