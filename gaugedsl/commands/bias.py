"""`gaugedsl bias FILE [--at init|slice] [--json]`: the geometry of every symmetry, the
gauge-correction bias in closed form and numerically, and the predicted stationary law."""

from __future__ import annotations

import json
from pathlib import Path

from ._common import EXIT_OK, UsageError, existing_file, xla_cache


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
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    import jax

    from .. import ir
    from .._threefry import straight_line_threefry
    from ..check import Loader
    from ..geometry.summary import bias_summary, render
    from ..lowering import Lowered

    jax.config.update("jax_enable_x64", not args.x32)
    xla_cache()  # the geometry compiles dozens of small programs: asked again, it reads them back

    existing_file(args.file)
    loader = Loader()
    loader.sources = sources  # diagnostics quote the files read
    model = loader.check_file(args.file)
    if not isinstance(model, ir.Model):
        raise UsageError(f"{args.file} is a library (parametric symmetries only); `bias` needs a model")
    with straight_line_threefry():  # its one-off draws compile several times faster; same numbers
        summary = bias_summary(Lowered(model), at=args.at, law=not args.no_law)
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return EXIT_OK
