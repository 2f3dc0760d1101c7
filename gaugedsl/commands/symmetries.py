"""`gaugedsl symmetries FILE [--json] [--write OUT.gauge]`: the model's linear symmetries, found
numerically and named in the language, beside the declared ones; the conservation laws of
gradient flow (docs/discovery.md)."""

from __future__ import annotations

import json
from pathlib import Path

from ._common import EXIT_OK, UsageError, add_max_memory, existing_file, xla_cache


def register(sub) -> None:
    p = sub.add_parser("symmetries", help="discover the model's symmetries and conservation laws")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--write", type=Path, metavar="OUT.gauge", help="write the model with the discovered symmetry declarations"
    )
    p.add_argument("--no-laws", action="store_true", help="skip the conservation laws (the slowest part)")
    add_max_memory(p)
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    from .. import atomic
    from ..discovery import discover, rewrite

    xla_cache()
    model = checked_model(args.file, sources, "symmetries", args.max_memory)
    found = discover(model, laws=not args.no_laws)
    if args.write is not None:
        text = rewrite(args.file.read_text(encoding="utf-8"), found, str(args.file))
        atomic.write_text(args.write, text)
    print(json.dumps(found.to_dict(), indent=2) if args.json else str(found))
    if args.write is not None and not args.json:
        print(f"wrote {args.write}")
    return EXIT_OK


def checked_model(path: Path, sources, command: str, max_memory: int | None = None):
    from .. import ir
    from ..check import Loader

    existing_file(path)
    loader = Loader()
    loader.sources = sources  # diagnostics quote the files read
    model = loader.check_file(path)
    if not isinstance(model, ir.Model):
        raise UsageError(f"{path} is a library (parametric symmetries only); `{command}` needs a model")
    within_budget(model, command, max_memory)
    return model


def within_budget(model, command: str, max_memory: int | None) -> None:
    """E707 before anything is evaluated: the program and one point's geometry fit the budget."""
    from .. import budget

    limit = budget.default_budget() if max_memory is None else max_memory
    budget.check(budget.program_needs(model) + budget.geometry_needs(model), limit, "E707", f"`{command}`")
