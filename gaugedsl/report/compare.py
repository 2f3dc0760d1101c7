"""Simulation against theory: each recorded statistic beside its prediction, where the theory
(docs/theory.md §6) and the geometry engine give one, with a verdict from a stated test
(`verdict.py`) on every row.

- a scalar predictor under projected noise: its stationary law (P5/P6) — the mean of the
  per-particle time averages over the second half of the run, with its Monte Carlo error
  (z-test); the L1 distance between the final histogram and the predicted law and the KS
  distance, each against its Monte Carlo floor (the distance that samples of the same size
  drawn from the prediction itself have: mean ± sd over 20 draws);
- Noether charges: per-particle tests of P2–P4 where the action's generators and the dynamics
  make them apply (`charge_rows.py`); `no prediction`, and why, elsewhere;
- every other record: its final ensemble mean, without a prediction.

A record taken only at step 0 (fewer steps than its interval) gives no row: a note says why.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import ir
from ..dynamics import _geometry
from ..dynamics.ensemble import Result, Simulation
from ..kinds import NOISES
from ..lowering import Lowered
from . import verdict
from .action import action_facts
from .charge_rows import ChargeContext, charge_rows


@dataclasses.dataclass
class Row:
    """One line of the table. `predicted` is what the theory says the simulated value
    should be; for a distance it is the Monte Carlo floor (with `floor_sd`)."""

    quantity: str
    simulated: float | None
    error: float | None = None
    predicted: float | None = None
    floor_sd: float | None = None
    source: str = ""  # the proposition of docs/theory.md it tests ("P5", ...)
    note: str = ""
    verdict: str = "no prediction"  # "agrees" | "disagrees" | "no prediction" (report/verdict.py)
    why: str = ""  # the test and its number, or why the theory predicts nothing here
    ess: float | None = None  # the effective sample size of its time averages (law rows, arviz-stats)
    flagged: str = ""  # why the verdict may not be trusted (an ESS too small for it), or ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Comparison:
    rows: list[Row]
    law: Any = None  # the PredictedLaw, for plots
    law_label: str | None = None
    law_samples: np.ndarray | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many rows agree, disagree and have no prediction."""
        return verdict.counts(r.verdict for r in self.rows)

    def summary_line(self) -> str:
        flagged = sum(1 for r in self.rows if r.flagged)
        more = (
            f"; {flagged} flagged: effective sample size too small for a reliable verdict (more particles or a longer run)"
            if flagged
            else ""
        )
        return verdict.summary_line(self.counts()) + more

    @property
    def disagrees(self) -> bool:
        return any(r.verdict == verdict.DISAGREES for r in self.rows)


def compare(sim: Simulation, result: Result, geometry_dtype_lowered: Lowered | None = None) -> Comparison:
    from . import law_rows  # the law of any predictor (it imports Row from here)

    model, plan = sim.model, result.plan
    ok = result.healthy
    rows: list[Row] = []
    out = Comparison(rows)
    noise = plan.noise
    kind = NOISES.get(noise) if noise is not None else None
    kick = plan.dynamics == "sde" or (kind is not None and kind.discrete == "kick")
    context = None
    only_start: list[tuple[str, int]] = []
    for rec in plan.records:
        for item in rec.items:
            label = item.label
            values = result.records[label][:, ok]
            steps = np.asarray(result.record_steps[label])
            if values.shape[0] == 0 or values.shape[1] == 0:
                continue
            if steps[-1] == steps[0]:
                only_start.append((label, rec.every))
                continue
            when = "end" if steps[-1] == plan.steps else f"step {int(steps[-1])}"
            if isinstance(item.value, ir.Call) and item.value.func == "charge":
                context = context or _charge_context(sim, result, noise if kick else None)
                facts = action_facts(sim.geo, dict(item.value.static)["s"])
                rows.extend(charge_rows(label, values, steps, facts, context))
            elif law_rows.applies(sim, item, noise) and isinstance(
                item.value, ir.Ref
            ):  # (applies: a Ref)  # the sampled law of any predictor (or why there is none)
                rows.extend(law_rows.law_rows(sim, result, label, values, out, item.value.name))
            elif _is_scalar_predictor(model, item) and kind is not None and kind.horizontal:
                rows.extend(_law(sim, result, label, values, geometry_dtype_lowered, out, when))
            else:
                rows.append(_plain(label, values, when))
    if only_start:
        labels = ", ".join(label for label, _ in only_start)
        every = ", ".join(sorted({str(e) for _, e in only_start}))
        out.notes.append(
            f"no rows for {labels}: recorded only at step 0, since steps = {plan.steps} is below the record interval "
            f"(every {every}); run at least that many steps"
        )
    return out


def _charge_context(sim: Simulation, result: Result, noise: str | None) -> ChargeContext:
    plan, ok = result.plan, result.healthy
    theta0 = result.theta0 if result.theta0 is not None else result.theta
    horizontal = noise is not None and NOISES[noise].horizontal
    keeper = plan.dynamics == "sde" and horizontal and _geometry.charge_keeper(sim.geo) is not None
    T = float(result.numbers.get("T", 0.0))
    return ChargeContext(
        plan.dynamics, noise, plan.solver, plan.dtype, T, float(result.numbers["dt"]), keeper,
        np.asarray(theta0)[ok], np.asarray(result.theta)[ok], sim.geo,
    )  # fmt: skip


def _is_scalar_predictor(model: ir.Model, item: ir.RecordItem) -> bool:
    v = item.value
    return isinstance(v, ir.Ref) and v.kind == "predictor" and v.shape == () and len(model.predictors) == 1


_NO_VALUE = "no prediction: the theory gives no value for this record"


def _plain(label: str, values: np.ndarray, when: str = "end") -> Row:
    final = values[-1]
    if final.ndim == 1:
        return Row(f"E[{label}] ({when})", float(final.mean()), float(final.std() / np.sqrt(final.size)), why=_NO_VALUE)
    mean = final.mean(axis=0).ravel()
    shown = ", ".join(f"{x:.3g}" for x in mean[:4]) + (", …" if mean.size > 4 else "")
    return Row(f"E[{label}] ({when}, {mean.size} entries)", None, note=f"[{shown}]", why=_NO_VALUE)


def _law(
    sim: Simulation, result: Result, label: str, values: np.ndarray, lowered: Lowered | None, out: Comparison,
    when: str = "end",
) -> list[Row]:  # fmt: skip
    T = result.numbers["T"]
    geo = _geometry.geometry(lowered if lowered is not None else Lowered(sim.model))
    theta0 = (result.theta0 if result.theta0 is not None else result.theta)[np.argmax(result.healthy)]
    law, why = _geometry.stationary_law(geo, T, np.asarray(theta0, np.float64))
    rows = []
    half = values[values.shape[0] // 2 :]
    per_particle = half.mean(axis=0)
    mean, se = float(per_particle.mean()), float(per_particle.std() / np.sqrt(per_particle.size))
    if law is None:
        out.notes.append(f"no predicted law for {label}: {why}")
        return [Row(f"E[{label}] (second half)", mean, se, why=f"no prediction: {why}")]
    out.law, out.law_label, out.law_samples = law, label, values[-1]
    v, why = verdict.by_z(mean, se, law.mean)
    note = f"stationary law exp(−L/T)·det G^(−1/2); exp(−L/T) alone: {law.gibbs_mean:.4g}"
    row = Row(f"E[{label}] (second half)", mean, se, law.mean, source="P5", note=note, verdict=v, why=f"z-test: {why}")
    rows.append(row)
    final = values[-1]
    l1, ks = distances(final, law)
    rng = np.random.default_rng(0)
    floor = np.array([distances(_draw(law, final.size, rng), law) for _ in range(20)])
    floor_note = "predicted = Monte Carlo floor for this many samples (mean ± sd of 20 draws from the law)"
    for name, column in ((f"L1(histogram of {label}, law) ({when})", 0), (f"KS({label}, law) ({when})", 1)):
        distance, fmean, fsd = (l1, ks)[column], float(floor[:, column].mean()), float(floor[:, column].std())
        v, why = verdict.by_floor(distance, fmean, fsd)
        rows.append(Row(name, distance, None, fmean, fsd, "P5", floor_note, verdict=v, why=f"floor test: {why}"))
    return rows


def _draw(law, n: int, rng) -> np.ndarray:
    grid = np.linspace(law.w[0], law.w[-1], 20001)
    cdf = law.cdf(grid)
    return np.interp(rng.uniform(size=n), cdf, grid)


def distances(samples: np.ndarray, law, bins: int = 40) -> tuple[float, float]:
    """(L1 between the histogram and the law's bin masses, Kolmogorov–Smirnov distance)."""
    samples = np.sort(np.asarray(samples, np.float64))
    lo, hi = min(samples[0], law.w[0]), np.quantile(samples, 0.999)
    edges = np.linspace(lo, hi, bins + 1)
    hist, _ = np.histogram(samples, edges)
    l1 = float(
        np.sum(np.abs(hist / samples.size - np.diff(law.cdf(edges))))
        + abs(1 - law.cdf(np.array([hi]))[0] - np.mean(samples > hi))
    )
    cdf = law.cdf(samples)
    n = samples.size
    ks = float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))
    return l1, ks


_HEADER = ("quantity", "simulated", "predicted", "verdict", "source", "test / note")


def _cells(rows: list[Row]) -> list[tuple[str, ...]]:
    """Each row's six cells as text: quantity, simulated ± error, predicted ± floor sd, verdict,
    source, and its test (or why there is no prediction) with its note."""

    def num(x):
        return "—" if x is None else f"{x:.4g}"

    out = []
    for r in rows:
        sim = num(r.simulated) + (f" ± {r.error:.2g}" if r.error is not None else "")
        pred = num(r.predicted) + (f" ± {r.floor_sd:.2g}" if r.floor_sd is not None else "")
        why = r.why.removeprefix("no prediction: ") if r.verdict == verdict.NO_PREDICTION else r.why
        flag = f"FLAGGED: {r.flagged}" if r.flagged else ""
        out.append((r.quantity, sim, pred, r.verdict, r.source, "; ".join(x for x in (flag, why, r.note) if x)))
    return out


def render(rows: list[Row]) -> str:
    """The table as aligned text: the verdict beside each row, its test (or why there is no
    prediction) and note after it."""
    lines = [_HEADER, *_cells(rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    text = []
    for j, line in enumerate(lines):
        text.append("  ".join(line[i].ljust(widths[i]) for i in range(5)) + "  " + line[5])
        if j == 0:
            text.append("  ".join("-" * w for w in widths) + "  " + "-" * 11)
    return "\n".join(t.rstrip() for t in text)


_VERDICT_COLOUR = {verdict.AGREES: "#1a7f37", verdict.DISAGREES: "#cf222e", verdict.NO_PREDICTION: "#6e7781"}


def render_html(rows: list[Row]) -> str:
    """The table as HTML (Jupyter): the same cells as `render`, the verdict coloured."""
    from html import escape

    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in _HEADER)
    body = []
    for cells in _cells(rows):
        tds = [f"<td style='text-align:left'>{escape(c)}</td>" for c in cells]
        colour = _VERDICT_COLOUR.get(cells[3], "inherit")
        tds[3] = f"<td style='text-align:left;color:{colour};font-weight:bold'>{escape(cells[3])}</td>"
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
