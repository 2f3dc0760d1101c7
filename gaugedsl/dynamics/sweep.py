"""Sweeps: many settings and seeds of one run block as one compiled program.

A sweep point is a set of numeric settings (`T`, `dt`, `lr`, ...: the traced `Numbers`) and a
seed. Every point has the run block's particles; the compiled program runs the points side by
side as one ensemble of points × particles, each particle with its own point's numbers and
streams, so no point recompiles and a point's particles are those of a lone run with its seed
and settings. `split` cuts the ensemble's result back into one result per point.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping, Sequence

import numpy as np

from ..ir import sweep_axis_problem, sweep_zip_problem
from .ensemble import Result


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The points of a sweep: `axes` (name, values) in order, combined as a `grid` (every
    combination, the last axis fastest) or `zip`ped (the i-th value of every axis together).
    `seed` is an axis like the numeric settings."""

    axes: tuple[tuple[str, tuple[float, ...]], ...]
    zipped: bool = False

    @staticmethod
    def of(axes: Mapping[str, Sequence[float]], zipped: bool = False) -> "Sweep":
        """A sweep from `{name: values}`; raises `ValueError` saying what is wrong."""
        if not axes:
            raise ValueError("a sweep needs at least one setting")
        clean = []
        for name, values in axes.items():
            values = tuple(values)
            if problem := sweep_axis_problem(name, values):
                raise ValueError(problem[0])
            clean.append((name, tuple(int(v) for v in values) if name == "seed" else tuple(float(v) for v in values)))
        if zipped and (problem := sweep_zip_problem(tuple(clean))):
            raise ValueError(problem[0])
        return Sweep(tuple(clean), zipped)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """The points as an array: one axis per setting for a grid, one axis for a zip."""
        if self.zipped:
            return (len(self.axes[0][1]),)
        return tuple(len(v) for _, v in self.axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def points(self) -> list[dict[str, float]]:
        """Each point's settings, in the order of the ensemble (a grid: the last axis fastest)."""
        values = [v for _, v in self.axes]
        combos = zip(*values) if self.zipped else itertools.product(*values)
        return [dict(zip(self.names, combo)) for combo in combos]

    def coordinates(self) -> dict[str, list[float]]:
        """Each setting's value at every point, in the ensemble's order (the sweep axis's coordinates)."""
        points = self.points()
        return {name: [p[name] for p in points] for name in self.names}

    def as_dict(self) -> dict:
        return {"axes": {name: list(values) for name, values in self.axes}, "zipped": self.zipped}


def preflight(model, sweep: "Sweep | None", overrides: dict, max_memory: int | None = None) -> tuple[list, list]:
    """What is checked before a run or a sweep allocates anything: the memory and time budget of
    the whole ensemble (every point's particles together) and what `bias` refuses at each seed's
    initial points (`run_checks`). Raises `GaugeError` for what cannot run; returns the budget's
    warnings (W803, to print at once) and the checks' (W903, for the table's notes)."""
    from ..budget import run_budget
    from ..geometry.preflight import run_checks
    from .plan import resolve

    per_point = resolve(model, **overrides).particles
    whole = {**overrides, "particles": per_point * (sweep.size if sweep else 1)}
    budget = run_budget(model, whole, max_memory)
    base = overrides.get("seed")
    if base is None:
        base = int(model.run.get("seed", 0))  # resolve() refused a model without a run block
    seeds = sorted({int(p.get("seed", base)) for p in sweep.points()}) if sweep else [base]
    checks = [w for seed in seeds for w in run_checks(model, **{**overrides, "particles": per_point, "seed": seed})]
    return budget, checks


def clashes(sweep: "Sweep", numbers: Sequence[str], seed_set: bool) -> str | None:
    """The swept settings that are also set (`--set`, `--seed`, a keyword), or None."""
    clash = set(sweep.names) & (set(numbers) | ({"seed"} if seed_set else set()))
    return ", ".join(sorted(clash)) if clash else None


def split(result: Result, sim, numbers) -> list[Result]:
    """The result of the sweep ensemble of `sim` (a `Simulation` with a sweep) cut into one result
    per point (`sim.per_point` particles each), each with its point's numbers and seed in its plan
    and W811 counting its own diverged particles."""
    out = []
    particles, point_numbers = sim.per_point, sim.point_numbers(numbers)
    for i, point in enumerate(sim.sweep.points()):
        part = slice(i * particles, (i + 1) * particles)
        plan = dataclasses.replace(result.plan, particles=particles, seed=int(point.get("seed", result.plan.seed)))
        diverged = result.diverged_at[part]
        diagnostics = [_for_point(d) for d in result.diagnostics if d.code != "W811"]
        if np.any(diverged >= 0):
            diagnostics.append(sim.divergence(diverged, point_numbers[i]["dt"]))
        out.append(
            Result(
                plan,
                dict(point_numbers[i]),
                {label: values[:, part] for label, values in result.records.items()},
                result.record_steps,
                result.theta[part],
                None if result.theta0 is None else result.theta0[part],
                result.healthy[part],
                diverged,
                result.wall_time,
                diagnostics,
            )
        )
    return out


def _for_point(d):
    """A warning of the whole sweep (W802) as one point's: it says it counts the whole sweep."""
    if d.code.startswith("W") and "particles" in d.message:
        return dataclasses.replace(d, message=f"over the whole sweep: {d.message}")
    return d
