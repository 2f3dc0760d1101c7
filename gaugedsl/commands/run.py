"""`gaugedsl run FILE [-o DIR]`: simulate a model's run block, write the results, and set the
recorded statistics beside the theory's predictions."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..diagnostics import GaugeError
from ._common import EXIT_OK, EXIT_PROGRAM, UsageError, add_max_memory, existing_file, report, xla_cache


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _number_setting(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, as in --set T=0.01, not {text!r}") from None


def _sweep_axis(text: str) -> tuple[str, list[float]]:
    """NAME=V1,V2,... or NAME=A..B (whole numbers A to B, both included)."""
    name, sep, values = text.partition("=")
    name = name.strip()
    try:
        if not sep or not name or not values.strip():
            raise ValueError
        if ".." in values:
            lo, hi = (int(v) for v in values.split(".."))
            if hi < lo:
                raise ValueError
            return name, list(range(lo, hi + 1))
        return name, [float(v) for v in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=V1,V2,... or NAME=A..B, as in --sweep T=1e-3,1e-2 or --sweep seed=0..4, not {text!r}"
        ) from None


def register(sub) -> None:
    p = sub.add_parser("run", help="simulate a model's run block and compare it with the theory")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="where to write results.npz (or .nc), summary.json and plots (default: runs/MODEL)",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from DIR/checkpoint.npz")
    p.add_argument("--x64", action="store_true", help="switch JAX to 64-bit and simulate in float64")
    p.add_argument("--log-compiles", action="store_true", help="log every XLA compilation (one is expected per run)")
    p.add_argument("--particles", type=_count(1), help="override the run block's particles")
    p.add_argument("--steps", type=_count(1), help="override the run block's steps")
    p.add_argument("--seed", type=_count(0), help="override the run block's seed")
    p.add_argument("--chunk", type=_count(1), help="steps per compiled call, checkpoint and progress update")
    p.add_argument(
        "--set", dest="numbers", action="append", type=_number_setting, default=[], metavar="NAME=VALUE",
        help="override a numeric setting the run uses (dt, T, lr, batch, sigma: as Model.run(NAME=VALUE)); "
        "one the model does not use is refused (E813)",
    )  # fmt: skip
    p.add_argument(
        "--sweep", action="append", type=_sweep_axis, default=[], metavar="NAME=VALUES",
        help="run every combination of these settings (T, dt, lr, ... or seed; V1,V2,... or A..B) as one compiled "
        "program, the run block's particles at each point; results gain leading sweep axes. Replaces the run "
        "block's sweep { }",
    )  # fmt: skip
    p.add_argument(
        "--zip", action="store_true", help="with --sweep: the i-th values of every axis together, not every combination"
    )
    p.add_argument("--plot", action="store_true", help="write PNG figures into DIR")
    p.add_argument(
        "--format", choices=("npz", "netcdf", "both"), default="npz",
        help="the records as results.npz (default), as labelled arrays in results.nc (netCDF, read with "
        "xarray.open_dataset; needs the [xarray] extra) or both",
    )  # fmt: skip
    p.add_argument(
        "--strict", action="store_true",
        help="exit with status 1 when any row of the theory table disagrees with its prediction "
        "(docs/dynamics.md, Verdicts)",
    )  # fmt: skip
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    add_max_memory(p)
    many = p.add_argument_group("many processes (docs/scaling.md)")
    many.add_argument(
        "--distributed", action="store_true",
        help="join the run's other processes, found by JAX in the environment (SLURM, ...)",
    )  # fmt: skip
    many.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, given by hand")
    many.add_argument("--num-processes", type=_count(1), help="how many processes run this command")
    many.add_argument("--process-id", type=_count(0), help="this process's index, 0 to N − 1 (0 writes the results)")
    p.add_argument("--stop-after-chunks", type=_count(1), help=argparse.SUPPRESS)  # simulates an interruption (tests)
    p.set_defaults(handler=run)


def run(args, sources) -> int:
    import jax

    from .. import ir
    from ..check import Loader

    existing_file(args.file)
    _join_processes(args)  # before anything computes
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(
                "--plot needs matplotlib, which is not installed: pip install matplotlib (in a clone of gaugedsl: pip install -e '.[plot]')"
            ) from None
    if args.format != "npz":
        from ..report.labelled import require_netcdf

        try:
            require_netcdf()
        except ImportError as exc:
            raise UsageError(f"--format {args.format}: {exc}") from None
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    if args.log_compiles:
        jax.config.update("jax_log_compiles", True)
    xla_cache()  # a repeated run of the same shapes skips compilation
    loader = Loader()
    try:
        model = loader.check_file(args.file)
        if not isinstance(model, ir.Model):
            raise UsageError(f"{args.file} is a library (symmetry templates only); there is nothing to run")
        return _simulate(args, model, loader)
    except GaugeError as exc:
        report(exc, loader.sources)
        return EXIT_PROGRAM


def _simulate(args, model, loader) -> int:
    import jax

    from .._jax_config import x64_enabled
    from ..dynamics import Simulation, distributed
    from ..dynamics.sweep import preflight
    from ..lowering import Lowered
    from ..report import compare, remove_interrupted_writes, remove_results, render, write_results
    from ..report.checkpoint import CheckpointError, identity, load_checkpoint, save_checkpoint
    from ..report.progress import Progress

    if model.run is not None and model.run.get("dtype") == "float64" and not x64_enabled():
        jax.config.update("jax_enable_x64", True)  # the program asks for float64
    dtype = "float64" if args.x64 else None
    overrides: dict[str, Any] = dict(
        particles=args.particles, steps=args.steps, seed=args.seed, chunk=args.chunk, dtype=dtype
    )
    sweep = _sweep_of(args, model)
    budget, warnings = preflight(model, sweep, overrides, args.max_memory)  # before anything is allocated
    for slow in budget:
        print(slow.render(loader.sources), file=sys.stderr)  # now, not after the days it warns of
    out = args.output or Path("runs") / model.name
    lead = distributed.lead()  # of several processes, process 0 alone writes and prints
    if lead:
        writable_folder(out)  # before the run, not after it
    sim = Simulation(model, **overrides, sweep=sweep)
    sim.notes.extend(warnings)
    plan = sim.plan
    numbers = sim.numbers(**dict(args.numbers))
    ident = identity(sim, numbers, model.source_hash)
    if lead:
        remove_interrupted_writes(out)
    state = None
    if args.resume:
        try:
            state = load_checkpoint(out, sim, ident)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from None
        if state is None:
            raise UsageError(f"nothing to resume: {out / 'checkpoint.npz'} does not exist")
        if lead:
            print(f"resuming {model.name} at step {state.step} of {plan.steps}", file=sys.stderr)
    elif lead and (out / "checkpoint.npz").exists():
        print(
            f"note: {out / 'checkpoint.npz'} is from an unfinished run; starting afresh (use --resume to continue it)",
            file=sys.stderr,
        )
    # The old results go before the first checkpoint: a folder never holds a checkpoint beside
    # a results.npz it did not produce.
    if lead:
        remove_results(out)
    progress = Progress(plan.steps, plan.particles, args.progress if lead else False)
    last = {}

    def on_chunk(s):
        if lead:
            save_checkpoint(out, s, ident)
        progress.update(s.step)
        last["step"] = s.step

    try:
        result = sim.run(numbers, state=state, on_chunk=on_chunk, stop_after=args.stop_after_chunks)
    except GaugeError:
        # Every particle diverged (E811): a checkpoint of NaNs is nothing to resume from.
        progress.close()
        if lead:
            (out / "checkpoint.npz").unlink(missing_ok=True)
        raise
    progress.close()
    if not lead:
        return EXIT_OK  # the results were gathered to process 0, which compares and writes them
    if last.get("step", plan.steps) < plan.steps:
        print(f"stopped at step {last['step']} of {plan.steps}; continue with --resume", file=sys.stderr)
        return EXIT_OK
    for d in result.diagnostics:
        print(d.render(loader.sources), file=sys.stderr)
    if sweep is not None:
        return _sweep_report(args, model, sim, result, numbers, out)
    comparison = compare(sim, result, Lowered(model))
    table = render(comparison.rows)
    summary = {
        "comparison": [r.as_dict() for r in comparison.rows],
        "verdicts": comparison.counts(),
        "notes": comparison.notes,
        "diagnostics": [d.render() for d in result.diagnostics],
        "devices": sim.sharding.describe(),
    }

    def figures():
        if not args.plot:
            return []
        from ..report.plots import plot

        return plot(out, model, result, comparison, sim)

    files = write_results(out, model, result, summary, figures, formats=_formats(args))
    (out / "checkpoint.npz").unlink(missing_ok=True)
    noise = f", {model.noise.kind} noise" if model.noise is not None else ""
    rate = plan.particles * plan.steps / max(result.wall_time, 1e-9)
    print(
        f"{model.name}: {plan.dynamics}{noise}, {plan.particles} particles × {plan.steps} steps, seed {plan.seed}, {plan.dtype}, on {sim.sharding.describe()}: {result.wall_time:.1f} s ({rate:.3g} particle-steps/s, compilation included)"
    )
    print()
    print(table)
    print(comparison.summary_line())
    for note in comparison.notes:
        print(f"note: {note}")
    print()
    print("wrote " + ", ".join(str(f) for f in files))
    if args.strict and comparison.disagrees:
        print("--strict: a row disagrees with its prediction", file=sys.stderr)
        return EXIT_PROGRAM
    return EXIT_OK


def _join_processes(args) -> None:
    from ..dynamics import distributed

    by_hand = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(v is None for v in by_hand):
        return
    if not args.distributed and any(v is None for v in by_hand):
        raise UsageError("--coordinator, --num-processes and --process-id go together (or --distributed alone)")
    if args.process_id is not None and args.num_processes is not None and args.process_id >= args.num_processes:
        raise UsageError(f"--process-id {args.process_id} is not below --num-processes {args.num_processes}")
    try:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot join the other processes: {exc}") from None


def _sweep_of(args, model):
    """The sweep the command line asks for, or None; a setting the model does not use is E813
    (Simulation.numbers says so, as for --set)."""
    from ..dynamics.sweep import Sweep, clashes

    set_numbers, seed_set = [name for name, _ in args.numbers], args.seed is not None
    if not args.sweep:
        if args.zip:
            raise UsageError("--zip goes with --sweep")
        if model.run is not None and model.run.sweep:  # the run block's own sweep { }
            sweep = Sweep.of(dict(model.run.sweep), zipped=model.run.sweep_zipped)
            if clash := clashes(sweep, set_numbers, seed_set):
                raise UsageError(f"{clash} is swept by the run block and set: drop one")
            return sweep
        return None
    names = [name for name, _ in args.sweep]
    if len(set(names)) < len(names):
        raise UsageError(f"--sweep names a setting twice ({', '.join(names)}): give each setting one --sweep")
    try:
        sweep = Sweep.of(dict(args.sweep), zipped=args.zip)
    except ValueError as exc:
        raise UsageError(f"--sweep: {exc}") from None
    if clash := clashes(sweep, set_numbers, seed_set):
        raise UsageError(f"{clash} is both swept and set: drop one")
    return sweep


def _sweep_report(args, model, sim, result, numbers, out) -> int:
    """Splits a sweep's ensemble into its points, compares each with the theory, writes one
    results.npz (leading sweep axes) and one summary.json (a table per point)."""
    from ..dynamics.sweep import split
    from ..lowering import Lowered
    from ..report import compare, render, write_results
    from ..report.verdict import summary_line

    sweep, plan = sim.sweep, sim.plan
    lowered = Lowered(model)
    points = split(result, sim, numbers)
    comparisons = [compare(sim, r, lowered) for r in points]
    totals: dict[str, int] = {}
    for c in comparisons:
        for k, v in c.counts().items():
            totals[k] = totals.get(k, 0) + v
    summary = {
        "points": [
            {
                "settings": p,
                "seed": r.plan.seed,
                "numbers": r.numbers,
                "healthy_particles": int(r.healthy.sum()),
                "diagnostics": [d.render() for d in r.diagnostics],
                "comparison": [row.as_dict() for row in c.rows],
                "verdicts": c.counts(),
                "notes": c.notes,
            }
            for p, r, c in zip(sweep.points(), points, comparisons)
        ],
        "verdicts": totals,
        "diagnostics": [d.render() for d in result.diagnostics],
        "devices": sim.sharding.describe(),
    }

    def figures():
        if not args.plot:
            return []
        from ..report.sweep_plots import plot_sweep

        drawn = plot_sweep(out, model, sweep, points, comparisons)
        if not drawn:
            print("note: no sweep figure: no statistic has a prediction at every point", file=sys.stderr)
        return drawn

    point_dt = [r.numbers["dt"] for r in points]
    files = write_results(out, model, result, summary, figures, sweep=sweep, formats=_formats(args), point_dt=point_dt)
    (out / "checkpoint.npz").unlink(missing_ok=True)
    noise = f", {model.noise.kind} noise" if model.noise is not None else ""
    rate = plan.particles * plan.steps / max(result.wall_time, 1e-9)
    axes = (
        " × ".join(f"{len(v)} {name}" for name, v in sweep.axes) if not sweep.zipped else f"{sweep.size} zipped points"
    )
    print(
        f"{model.name}: {plan.dynamics}{noise}, sweep of {axes} ({sweep.size} points × {sim.per_point} particles) × "
        f"{plan.steps} steps, {plan.dtype}, one compiled program on {sim.sharding.describe()}: {result.wall_time:.1f} s "
        f"({rate:.3g} particle-steps/s, compilation included)"
    )
    lost = 0
    for p, r, c in zip(sweep.points(), points, comparisons):
        where = ", ".join(f"{k} = {v:g}" for k, v in p.items())
        print()
        print(f"── {where}")
        if not r.healthy.any():  # a lone run of these settings stops with E811
            lost += 1
            print(f"all {r.healthy.size} particles of this point diverged: no statistics (reduce dt or lr here)")
            continue
        for d in r.diagnostics:
            if d.code == "W811":  # this point's own count (sweep.split)
                print(f"warning[W811]: {d.message}")
        print(render(c.rows))
        print(c.summary_line())
        for note in c.notes:
            print(f"note: {note}")
    print()
    print(f"all {sweep.size} points: {summary_line(totals)}" + (f"; {lost} diverged entirely" if lost else ""))
    print("wrote " + ", ".join(str(f) for f in files))
    if args.strict and (lost or any(c.disagrees for c in comparisons)):
        print("--strict: a point diverged or a row disagrees with its prediction", file=sys.stderr)
        return EXIT_PROGRAM
    return EXIT_OK


def _formats(args) -> tuple[str, ...]:
    return ("npz", "netcdf") if args.format == "both" else (args.format,)


def writable_folder(out: Path) -> None:
    """Makes the output folder `out` or says, as a usage error, why it cannot hold the results."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: that is a file, not a folder; give a folder for results.npz and summary.json")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot make the folder ({(exc.strerror or str(exc)).lower()})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"-o {out}: the folder is not writable; give another with -o")
