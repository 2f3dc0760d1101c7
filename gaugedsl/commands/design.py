"""`gaugedsl design FILE -o OUT`: inverse design from the file's `design` block, with the
induced bias verified against the target; `gaugedsl design --compare FILE...`: run
gradient-descent models over several seeds and print their final records side by side."""

from __future__ import annotations

import sys
from pathlib import Path

from ._common import EXIT_OK, UsageError, existing_file, xla_cache


def register(sub) -> None:
    p = sub.add_parser(
        "design", help="inverse design: a model whose symmetry induces the bias the design block asks for"
    )
    p.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="the model with a design block (with --compare: the models to run)",
    )
    p.add_argument(
        "-o", "--output", type=Path, metavar="OUT", help="where to write the designed model (default: print it)"
    )
    p.add_argument("--points", type=int, default=6, help="random slice points of the bias check (default: 6)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="run the given gd models over --seeds seeds and print their final records side by side",
    )
    p.add_argument(
        "--seeds", type=int, default=5, help="with --compare: ensemble members (data and init seeds 0 … N−1; default 5)"
    )
    p.add_argument("--steps", type=int, help="with --compare: override the run length (e.g. a quick check)")
    p.add_argument(
        "--json", type=Path, metavar="FILE", help="with --compare: also write the final records and wall times as JSON"
    )
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    if args.compare:
        return _compare(args, sources)
    import jax

    jax.config.update("jax_enable_x64", True)  # the bias check runs in float64
    from ..check import Loader
    from ..design import design, write_atomic

    if len(args.files) != 1:
        raise UsageError("design takes one model file (or several with --compare)")
    if args.points < 2:
        raise UsageError("--points must be at least 2 (the bias is compared up to a constant)")
    path = existing_file(args.files[0])
    if args.output is not None and args.output.resolve() == path.resolve():
        raise UsageError("the designed model would overwrite its source; choose another -o")
    loader = Loader()
    loader.sources = sources
    result = design(path, args.output, points=args.points, loader=loader)
    for w in result.warnings:
        print(w.render(sources), file=sys.stderr)
    if args.output is None:
        sys.stdout.write(result.text)  # the report goes to stderr, so stdout is the program
        print(result, file=sys.stderr)
    else:
        write_atomic(args.output, result.text)
        print(result)
    return EXIT_OK


def _compare(args, sources) -> int:
    from .. import ir
    from ..check import Loader
    from ..design.compare import compare, render

    if args.output is not None:
        raise UsageError("--compare prints a table; it writes no model (-o); use --json FILE for the numbers")
    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    xla_cache()
    loader = Loader()
    loader.sources = sources
    models = []
    for p in args.files:
        model = loader.check_file(existing_file(p))
        if not isinstance(model, ir.Model):
            raise UsageError(f"{p} is a library (parametric symmetries only); --compare needs models")
        models.append(model)
    if any(m.run is not None and m.run.get("dtype") == "float64" for m in models):
        import jax

        jax.config.update("jax_enable_x64", True)  # as `gaugedsl run`: the program asks for float64
    table = compare(models, seeds=args.seeds, steps=args.steps, progress=sys.stderr)
    print(render(table))
    if args.json is not None:
        import json

        from ..design import write_atomic

        write_atomic(args.json, json.dumps(table.to_dict(), indent=2) + "\n")
    return EXIT_OK
