"""Models side by side over the seeds of an `Ensemble`: the final value of every scalar
record, per seed, with the mean and the spread, and the wall times. `gaugedsl design
--compare` prints it; the paper's inverse-design experiments E4 and E5 are run this way."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .. import ir
from .ensemble import Ensemble, EnsembleResult


@dataclasses.dataclass
class Comparison:
    """The runs (one per model, in the order given), the seeds, and the total wall time."""

    runs: list[EnsembleResult]
    seeds: int
    wall: float

    def final(self, model: str, label: str) -> np.ndarray:
        """The final value of record `label` of `model`, one per seed."""
        run = next(r for r in self.runs if r.model.name == model)
        return run.final(label)

    def to_dict(self) -> dict:
        """Final scalar records per model (one value per seed) and the wall times."""
        return {
            "seeds": self.seeds,
            "wall": self.wall,
            "models": {
                r.model.name: {
                    "path": r.model.path,
                    "steps": r.total_steps,
                    "simulation_s": r.wall,
                    "setup_s": r.setup,
                    "finite": r.finite.tolist(),
                    "final": {k: v[-1].tolist() for k, v in r.records.items() if v.ndim == 2},
                }
                for r in self.runs
            },
        }

    def scalars(self) -> list[str]:
        """Labels of the scalar records, in order of first appearance."""
        seen: list[str] = []
        for run in self.runs:
            for label, values in run.records.items():
                if values.ndim == 2 and label not in seen:
                    seen.append(label)
        return seen


def compare(models: list[ir.Model], seeds: int = 5, steps: int | None = None, progress=None) -> Comparison:
    """Run every model (`dynamics = gd`) over `seeds` ensemble members, one model after the
    other; `steps` overrides each run's length. (Running two compiled programs from two threads
    can deadlock XLA's CPU runtime on a 2-core machine: seen with jaxlib 0.10, so not done.)"""
    start = time.perf_counter()
    runs = []
    for m in models:
        ens = Ensemble(m, seeds=seeds, steps=steps)
        ens.compile()
        result = ens.run(progress=progress)
        result.setup = ens.setup
        runs.append(result)
    return Comparison(runs, seeds, time.perf_counter() - start)


def _fmt(x: float | np.floating) -> str:
    if not np.isfinite(x):
        return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
    a = abs(x)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return f"{x:.3e}"
    return f"{x:.4f}" if a < 10 else f"{x:.2f}"


def render(c: Comparison) -> str:
    seeds = range(c.seeds)
    name_w = max(len(r.model.name) for r in c.runs)
    lab_w = max([len(s) for s in c.scalars()] + [6])
    steps = ", ".join(sorted({f"{r.total_steps:,}" for r in c.runs}))
    head = (
        f"{'record':<{lab_w}}  {'model':<{name_w}}  "
        + "  ".join(f"{f'seed {s}':>10}" for s in seeds)
        + f"  {'mean':>10}  {'min':>10}  {'max':>10}"
    )
    lines = [
        f"final records after {steps} steps; seed s = data and initialization of ensemble member s",
        "(member 0 = the files' own data seeds and `gaugedsl run`'s particle 0; one vmapped program per model)",
        "",
        head,
        "-" * len(head),
    ]
    for label in c.scalars():
        first = True
        for run in c.runs:
            if label not in run.records:
                continue
            v = run.final(label).astype(np.float64)
            cells = "  ".join(f"{_fmt(x):>10}" for x in v)
            lines.append(
                f"{label if first else '':<{lab_w}}  {run.model.name:<{name_w}}  {cells}  {_fmt(np.mean(v)):>10}  {_fmt(np.min(v)):>10}  {_fmt(np.max(v)):>10}"
            )
            first = False
    lines += ["", "wall time (setup = data and compilation):"]
    for run in c.runs:
        bad = "" if run.finite.all() else f"  ({int((~run.finite).sum())} of {c.seeds} members diverged)"
        lines.append(
            f"  {run.model.name:<{name_w}}  {run.total_steps:,} steps × {c.seeds} seeds: simulation {run.wall:.2f} s, setup {run.setup:.2f} s{bad}"
        )
    lines.append(f"  total {c.wall:.2f} s for all models, from checked files to final records")
    return "\n".join(lines)
