"""`gaugedsl lsp`: the language server, speaking LSP over stdin/stdout (see `gaugedsl.lsp`)."""

from __future__ import annotations

from ._common import EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "lsp",
        help="run the language server (LSP over stdio) for editors",
        description="Run the gaugedsl language server over stdin/stdout: diagnostics, hover, "
        "completion and formatting for .gauge files. Editors start it; it is not for typing.",
    )
    p.add_argument("--stdio", action="store_true", help="use stdin/stdout (the default and only transport)")
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    from ..lsp import main

    main()
    return EXIT_OK
