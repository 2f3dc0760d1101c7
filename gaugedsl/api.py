"""The Python API, for notebooks: the same results as the CLI, as objects.

```python
import gaugedsl
model = gaugedsl.load("examples/diagonal_net.gauge")   # or the text of a program
model.bias()              # BiasResult: per-symmetry geometry, the predicted law
model.run(steps=2000)     # RunResult: records, the theory-vs-simulation table, plots
model.design()            # DesignResult: the designed .gauge text and its verification
```

Every result has `to_dict()` (the JSON the CLI writes), a text form (`str`) and an HTML form
for Jupyter. Errors in the program raise `gaugedsl.GaugeError`, whose text quotes the source
lines with carets, as the CLI does.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from . import ir
from .diagnostics import GaugeError


def load(source: str | Path) -> "Model":
    """Check a `.gauge` program given as a path or as its text.

    **Raises:** `GaugeError` with every diagnostic of the program.
    """
    from .check import Loader

    loader = Loader()
    is_path = isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith(".gauge"))
    try:
        if is_path:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
            checked = loader.check_file(path)
        else:
            checked = loader.check_text(str(source), "<text>")
    except GaugeError as exc:
        exc.sources = loader.sources
        raise
    if not isinstance(checked, ir.Model):
        raise ValueError(f"{source} is a library (parametric symmetries only), not a model")
    return Model(checked, loader)


class Model:
    """A checked program. `ir` is the `gaugedsl.ir.Model`."""

    def __init__(self, model: ir.Model, loader):
        self.ir = model
        self._loader = loader
        self._simulations: dict[tuple, Any] = {}  # compiled once per (particles, steps, chunk, dtype)
        self._checked_seeds: dict[tuple, set] = {}  # seeds whose initial points `run_checks` has seen

    @property
    def name(self) -> str:
        return self.ir.name

    def _reraise(self, exc: GaugeError):
        exc.sources = self._loader.sources
        raise exc

    def bias(self, at: str = "init", law: bool = True) -> "BiasResult":
        """The geometry of every symmetry (`gaugedsl bias`). Uses float64 if JAX's 64-bit
        mode is on (recommended for geometry: `jax.config.update("jax_enable_x64", True)`)."""
        from . import budget
        from .geometry.summary import bias_summary
        from .lowering import Lowered

        try:
            budget.check(
                budget.program_needs(self.ir) + budget.geometry_needs(self.ir),
                budget.default_budget(),
                "E707",
                "`bias`",
            )
            return BiasResult(bias_summary(Lowered(self.ir), at=at, law=law))
        except GaugeError as exc:
            self._reraise(exc)

    def run(
        self,
        *,
        particles: int | None = None,
        steps: int | None = None,
        seed: int | None = None,
        chunk: int | None = None,
        sweep: dict[str, Any] | None = None,
        zipped: bool = False,
        progress: bool | None = None,
        **numbers: float,
    ) -> "RunResult | SweepResult":
        """Simulate the run block (`gaugedsl run`), with optional overrides; `numbers` are
        numeric settings such as `T=0.05` or `lr=1e-3` that, like `seed`, change without
        recompiling: the simulation of each (particles, steps, chunk) is kept and reused.

        `sweep={"T": [1e-3, 1e-2], "seed": range(5)}` runs every combination (every i-th value
        together with `zipped=True`) as one compiled program, `particles` per point, and returns a
        `SweepResult`: one `RunResult` per point, each the same as a lone run of its settings. A
        run block's `sweep { }` is used when `sweep` is not given.

        `progress`: a progress bar (tqdm: a widget in Jupyter, a bar in a terminal) for runs
        longer than two seconds; by default where there is a notebook or a terminal to show it."""
        if sweep is None and self.ir.run is not None and self.ir.run.sweep:  # the run block's own sweep { }
            sweep, zipped = dict(self.ir.run.sweep), self.ir.run.sweep_zipped
        if sweep is not None:
            return self._sweep(
                sweep,
                zipped,
                particles=particles,
                steps=steps,
                seed=seed,
                chunk=chunk,
                numbers=numbers,
                progress=progress,
            )

        from ._jax_config import x64_enabled
        from .dynamics import Simulation
        from .dynamics.sweep import preflight
        from .lowering import Lowered
        from .report import compare

        try:
            key = (particles, steps, chunk, x64_enabled())
            sim = self._simulations.get(key)
            checked = self._checked_seeds.setdefault(key, set())
            if sim is None or seed not in checked:  # what `bias` refuses, at this seed's initial points
                budget, checks = preflight(
                    self.ir, None, dict(particles=particles, steps=steps, seed=seed, chunk=chunk)
                )
                warnings = budget + checks
                checked.add(seed)
            if sim is None:
                sim = self._simulations[key] = Simulation(self.ir, particles=particles, steps=steps, chunk=chunk)
                sim.notes.extend(warnings)
            result = _with_progress(
                sim, progress, lambda on_chunk: sim.run(sim.numbers(**numbers), seed=seed, on_chunk=on_chunk)
            )
            comparison = compare(sim, result, Lowered(self.ir))
        except GaugeError as exc:
            self._reraise(exc)
        return RunResult(self.ir, result, comparison)

    def _sweep(self, axes, zipped, *, particles, steps, seed, chunk, numbers, progress) -> "SweepResult":
        from .dynamics import Simulation
        from .dynamics.sweep import Sweep, preflight, split
        from .lowering import Lowered
        from .report import compare

        plan = Sweep.of(axes, zipped)
        try:
            overrides = dict(particles=particles, steps=steps, seed=seed, chunk=chunk)
            budget, checks = preflight(self.ir, plan, overrides)
            warnings = budget + checks
            sim = Simulation(self.ir, particles=particles, steps=steps, seed=seed, chunk=chunk, sweep=plan)
            sim.notes.extend(warnings)
            values = sim.numbers(**numbers)
            result = _with_progress(sim, progress, lambda on_chunk: sim.run(values, on_chunk=on_chunk))
            lowered = Lowered(self.ir)
            points = split(result, sim, values)
            results = [RunResult(self.ir, r, compare(sim, r, lowered)) for r in points]
        except GaugeError as exc:
            self._reraise(exc)
        return SweepResult(self.ir, plan, results)

    def symmetries(self, laws: bool = True):
        """The model's linear symmetries, discovered numerically and named in the language, beside
        the declared ones, with the conservation laws of gradient flow (`gaugedsl symmetries`): a
        `gaugedsl.discovery.Discovery` (`str()` for the report, `.to_dict()` for the JSON,
        `.declarations()` for the `.gauge` lines)."""
        from .discovery import discover

        try:
            return discover(self.ir, laws=laws)
        except GaugeError as exc:
            self._reraise(exc)

    def design(self) -> "DesignResult":
        """The parameterization that induces the design block's target bias
        (`gaugedsl design`)."""
        from . import design

        try:
            return DesignResult(design.design(self.ir))
        except GaugeError as exc:
            self._reraise(exc)

    def __repr__(self) -> str:
        return f"<gaugedsl.Model {self.name}: {len(self.ir.params)} parameters (D = {self.ir.dimension}), {len(self.ir.symmetries)} symmetries>"

    def __str__(self) -> str:
        from .show import model

        return model(self.ir)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def _with_progress(sim, enabled: bool | None, run):
    """`run(on_chunk)` with a progress bar over `sim`'s steps."""
    from .report.progress import Progress

    bar = Progress(sim.plan.steps, sim.plan.particles, enabled)
    try:
        return run(lambda state: bar.update(state.step))
    finally:
        bar.close()


class _Result:
    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


class BiasResult(_Result):
    def __init__(self, summary: dict):
        self.summary = summary

    def to_dict(self) -> dict[str, Any]:
        return self.summary

    def __str__(self) -> str:
        from .geometry.summary import render

        return render(self.summary)

    def _repr_html_(self) -> str:
        rows = []
        for s in self.summary["symmetries"]:
            cells = [
                s["name"],
                s["group"],
                s["structure"],
                s["gauge_condition"],
                s["closed_form_bias"] or "—",
                f"{s['logdet_gram']:.6g}",
            ]
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        head = "".join(
            f"<th>{h}</th>" for h in ("symmetry", "group", "structure", "gauge condition", "bias R_T", "log det G")
        )
        law = self.summary.get("predicted_law") or {}
        extra = (
            f"<p>E[{law['predictor']}] = {law['mean']:.6g} (Gibbs: {law['gibbs_mean']:.6g})</p>"
            if "mean" in law
            else ""
        )
        return f"<table><tr>{head}</tr>{''.join(rows)}</table>{extra}"


class RunResult(_Result):
    """`records[label]` has shape (records, particles, *shape); `steps[label]` the steps at
    which they were taken; `table` the theory-vs-simulation rows, each with its `verdict`
    ("agrees", "disagrees" or "no prediction") and `why` (the test and its number, or why the
    theory predicts nothing there); `verdicts` how many rows have each."""

    def __init__(self, model: ir.Model, result, comparison):
        self.model = model
        self.result = result
        self.comparison = comparison
        self.records: dict[str, np.ndarray] = result.records
        self.steps: dict[str, np.ndarray] = result.record_steps

    @property
    def table(self):
        return self.comparison.rows

    @property
    def verdicts(self) -> dict[str, int]:
        """{"agrees": n, "disagrees": n, "no prediction": n} over the table's rows."""
        return self.comparison.counts()

    @property
    def agrees(self) -> bool:
        """No row disagrees with its prediction (what `gaugedsl run --strict` checks)."""
        return not self.comparison.disagrees

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "plan": self.result.plan.as_dict(),
            "numbers": {k: float(v) for k, v in self.result.numbers.items()},
            "wall_time": self.result.wall_time,
            "healthy_particles": int(np.sum(self.result.healthy)),
            "comparison": [r.as_dict() for r in self.comparison.rows],
            "verdicts": self.comparison.counts(),
            "notes": list(self.comparison.notes),
            "diagnostics": [d.render() for d in self.result.diagnostics],
        }

    def __str__(self) -> str:
        from .report import render

        notes = [f"note: {n}" for n in self.comparison.notes]
        return "\n".join([render(self.comparison.rows), self.comparison.summary_line(), *notes])

    def to_xarray(self):
        """The records as an `xarray.Dataset`: each recorded value with dims (`record`,
        `particle`, its own axes), coords `step` and `time`; `theta_final`, `theta_initial`,
        `healthy`, `diverged_at` per particle; the plan, numbers, versions and program hash as
        attrs (JSON text where nested). What `gaugedsl run --format netcdf` writes. Needs the
        `[xarray]` extra."""
        from .report.labelled import dataset

        return dataset(self.model, self.result)

    def to_dataframe(self):
        """The theory table as a `pandas.DataFrame`: one row per line, with its `verdict` and `why`."""
        from .report.labelled import table_frame

        return table_frame(self.comparison.rows)

    def _repr_html_(self) -> str:
        from .report.compare import render_html

        notes = "".join(f"<p>note: {html.escape(n)}</p>" for n in self.comparison.notes)
        return render_html(self.comparison.rows) + f"<p>{html.escape(self.comparison.summary_line())}</p>" + notes

    def plot(self, label: str, ax=None):
        """Mean ± one standard deviation of a recorded scalar (or every entry of a vector)
        over the particles, against steps. Returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        if label not in self.records:
            raise KeyError(f"'{label}' was not recorded; recorded: {', '.join(self.records)}")
        ax = ax or plt.figure().gca()
        values = self.records[label][:, self.result.healthy]
        flat = values.reshape(values.shape[0], values.shape[1], -1)
        mean, std = flat.mean(axis=1), flat.std(axis=1)
        for k in range(flat.shape[2]):
            ax.plot(self.steps[label], mean[:, k])
            ax.fill_between(self.steps[label], mean[:, k] - std[:, k], mean[:, k] + std[:, k], alpha=0.2)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        return ax


class SweepResult(_Result):
    """The points of a sweep (`Model.run(sweep=...)`): `points[i]` the settings of point i,
    `results[i]` its `RunResult`; `stacked(label)` the records of every point, shape
    (*sweep.shape, records, particles, *value shape)."""

    def __init__(self, model: ir.Model, sweep, results: list[RunResult]):
        self.model = model
        self.sweep = sweep
        self.points = sweep.points()
        self.results = results

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> RunResult:
        return self.results[i]

    def __iter__(self):
        return iter(self.results)

    def stacked(self, label: str) -> np.ndarray:
        values = np.stack([r.records[label] for r in self.results])
        return values.reshape(*self.sweep.shape, *values.shape[1:])

    def to_xarray(self):
        """Every point's records in one `xarray.Dataset`: the dims of `RunResult.to_xarray()`
        with the sweep's axes in front (one per setting of a grid, `point` for a zip), the
        settings as their coordinates. What `gaugedsl run --sweep ... --format netcdf` writes."""
        from .report.labelled import require

        xr = require("to_xarray")
        each = [r.to_xarray() for r in self.results]
        dims = ("point",) if self.sweep.zipped else self.sweep.names
        for name in ("seed", "numbers"):  # per point: coordinates, not attrs
            for ds in each:
                ds.attrs.pop(name, None)
        stacked = xr.concat(each, dim="point", coords="different", compat="equals", combine_attrs="drop_conflicts")
        stacked = stacked.assign_coords(
            {name: ("point", np.asarray(v)) for name, v in self.sweep.coordinates().items()}
        )
        if not self.sweep.zipped and len(dims) == 1:
            stacked = stacked.swap_dims(point=dims[0])
        elif not self.sweep.zipped:
            stacked = stacked.set_index(point=list(dims)).unstack("point")
        stacked.attrs["sweep"] = json.dumps(self.sweep.as_dict())
        return stacked.transpose(*dims, ...)

    @property
    def agrees(self) -> bool:
        """No row of any point disagrees, and no point lost every particle (a lone run's E811)."""
        return all(r.agrees and r.result.healthy.any() for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "sweep": self.sweep.as_dict(),
            "points": [{"settings": p, **r.to_dict()} for p, r in zip(self.points, self.results)],
        }

    def __str__(self) -> str:
        lines = []
        for p, r in zip(self.points, self.results):
            where = ", ".join(f"{k} = {v:g}" for k, v in p.items())
            if not r.result.healthy.any():
                lines.append(f"{where}: all {r.result.healthy.size} particles diverged, no statistics")
                continue
            lines.append(f"{where}: {r.comparison.summary_line()}")
        return "\n".join(lines)


class DesignResult(_Result):
    def __init__(self, designed):
        self.designed = designed

    def to_dict(self) -> dict[str, Any]:
        to_dict = getattr(self.designed, "to_dict", None)
        return to_dict() if to_dict else dict(vars(self.designed))

    @property
    def text(self) -> str:
        return self.designed.text

    def __str__(self) -> str:
        return str(self.designed)
