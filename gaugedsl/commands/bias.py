"""`gaugedsl bias FILE [--at init|slice] [--json] [--discover]`: the geometry of every symmetry, the
gauge-correction bias in closed form and numerically, and the predicted stationary law."""

from __future__ import annotations

import json
from pathlib import Path

from ._common import EXIT_OK, UsageError, add_max_memory, xla_cache


def register(sub) -> None:
    p = sub.add_parser("bias", help="the symmetries' geometry and the implicit bias (T/2) log det G")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument(
        "--at",
        choices=("init", "slice"),
        default="init",
        help="evaluate at the initial point or at its projection onto the gauge slice (default: init)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-law", action="store_true", help="skip the predicted stationary law")
    p.add_argument("--x32", action="store_true", help="use float32 (geometry defaults to float64)")
    p.add_argument(
        "--discover",
        action="store_true",
        help="use the symmetries `gaugedsl symmetries` discovers instead of the declared ones",
    )
    add_max_memory(p)
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    import jax

    from .._threefry import straight_line_threefry
    from ..geometry.summary import bias_summary, render
    from ..lowering import Lowered
    from .symmetries import checked_model

    jax.config.update("jax_enable_x64", not args.x32)
    xla_cache()  # the geometry compiles dozens of small programs: asked again, it reads them back

    model = checked_model(args.file, sources, "bias", args.max_memory)
    discovered = None
    if args.discover:
        model, discovered = _with_discovered(args.file, model, sources)
    with straight_line_threefry():  # its one-off draws compile several times faster; same numbers
        summary = bias_summary(Lowered(model), at=args.at, law=not args.no_law)
    if discovered is not None:
        summary["discovered"] = discovered
    text = render(summary)
    if discovered is not None:
        text = (
            "symmetries discovered (gaugedsl symmetries):\n" + "\n".join(f"  {d}" for d in discovered) + "\n\n" + text
        )
    print(json.dumps(summary, indent=2) if args.json else text)
    return EXIT_OK


def _with_discovered(path, model, sources):
    """The model with its symmetry statements replaced by the discovered declarations."""
    from .. import ir
    from ..check import Loader
    from ..discovery import discover, rewrite

    found = discover(model, laws=False)
    if not found.named:
        raise UsageError(f"no linear symmetry of {model.name} was found: there is no gauge correction to compute")
    loader = Loader()
    loader.sources = sources
    rewritten = loader.check_text(rewrite(path.read_text(encoding="utf-8"), found, str(path)), str(path))
    assert isinstance(rewritten, ir.Model)  # the same model, with checked declarations
    return rewritten, found.declarations()
