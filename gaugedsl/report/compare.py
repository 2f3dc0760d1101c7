"""Simulation against theory: each recorded statistic beside its prediction, where the theory
(THEORY.md §6) and the geometry engine give one.

- a scalar predictor under projected noise: its stationary law (P5/P6) — the mean of the
  per-particle time averages over the second half of the run, with its Monte Carlo error;
  the L1 distance between the final histogram and the predicted law and the KS distance,
  each beside its Monte Carlo floor (the distance that samples of the same size drawn from
  the prediction itself have: mean ± sd over 20 draws);
- Noether charges: projected, minibatch and label noise move them to the balanced slice
  (P4: 0); under isotropic noise they are martingales (P3: mean unchanged); the SGD map never
  increases |χ| (P2); gradient descent conserves them up to O(lr²) (P1);
- every other record: its final ensemble mean, without a prediction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import ir
from ..dynamics import _geometry
from ..dynamics.ensemble import Result, Simulation
from ..lowering import Lowered


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

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Comparison:
    rows: list[Row]
    law: Any = None  # the PredictedLaw, for plots
    law_label: str | None = None
    law_samples: np.ndarray | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def compare(sim: Simulation, result: Result, geometry_dtype_lowered: Lowered | None = None) -> Comparison:
    from . import law_rows  # the law of any predictor (it imports Row from here)

    model, plan = sim.model, result.plan
    ok = result.healthy
    rows: list[Row] = []
    out = Comparison(rows)
    noise = plan.noise
    kick = plan.dynamics == "sde" or noise in ("isotropic", "projected")
    for rec in plan.records:
        for item in rec.items:
            label = item.label
            values = result.records[label][:, ok]
            if values.shape[0] == 0 or values.shape[1] == 0:
                continue
            if isinstance(item.value, ir.Call) and item.value.func == "charge":
                rows.extend(_charges(label, values, plan.dynamics, noise if kick else None, _balances(sim)))
            elif law_rows.applies(sim, item, noise):  # the sampled law of any predictor (or why there is none)
                rows.extend(law_rows.law_rows(sim, result, label, values, out, item.value.name))
            elif _is_scalar_predictor(model, item) and noise == "projected" and model.noise is not None:
                rows.extend(_law(sim, result, label, values, geometry_dtype_lowered, out))
            else:
                rows.append(_plain(label, values))
    return out


def _is_scalar_predictor(model: ir.Model, item: ir.RecordItem) -> bool:
    v = item.value
    return isinstance(v, ir.Ref) and v.kind == "predictor" and v.shape == () and len(model.predictors) == 1


def _plain(label: str, values: np.ndarray) -> Row:
    final = values[-1]
    if final.ndim == 1:
        return Row(f"E[{label}] (end)", float(final.mean()), float(final.std() / np.sqrt(final.size)))
    mean = final.mean(axis=0).ravel()
    shown = ", ".join(f"{x:.3g}" for x in mean[:4]) + (", …" if mean.size > 4 else "")
    return Row(f"E[{label}] (end, {mean.size} entries)", None, note=f"[{shown}]")


def _balances(sim: Simulation) -> bool:
    """Whether projected noise drives every charge to 0: the charge ODE
    dχ_a/dt = T(tr A_a − 2χ_a/G_aa) of a rescaling has its rest point at 0 only when
    tr A_a = Σ_j m_j = 0 (as many coordinates scaled up as down, like u ⊙ v). Known for
    diagonal actions; otherwise no prediction is made."""
    action = _geometry.diagonal_action(sim.geo)
    if action is None or not action.unit:
        return False
    moved = action.owner < action.k
    traces = np.bincount(action.owner[moved], weights=action.expo[moved], minlength=action.k)
    return bool(np.all(np.abs(traces) < 1e-9))


def _charges(label: str, values: np.ndarray, dynamics: str, noise: str | None, balances: bool = False) -> list[Row]:
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    first, last = flat[0], flat[-1]
    n = first.shape[0]
    rows = [Row(f"max_a |E[{label}_a]| (start)", float(np.abs(first.mean(0)).max()))]
    if dynamics == "sgd" and noise in (None, "sgd", "label"):
        frac = float(np.mean(np.abs(last) <= np.abs(first) * (1 + 1e-6) + 1e-12))
        rows.append(Row(f"fraction of |{label}| not increased", frac, predicted=1.0, source="P2", note="c' = c(1 − lr² g²) per SGD step"))
    elif noise == "projected" and balances:
        i = int(np.abs(last.mean(0)).argmax())
        se = float(last[:, i].std() / np.sqrt(n))
        rows.append(Row(f"max_a |E[{label}_a]| (end)", float(np.abs(last.mean(0)).max()), se, 0.0, source="P4", note="horizontal noise drives the charges to the balanced slice"))
    elif noise in ("projected", "sgd", "label"):
        i = int(np.abs(last.mean(0)).argmax())
        se = float(last[:, i].std() / np.sqrt(n))
        why = (
            "projected noise: dχ_a/dt = T(tr A_a − 2χ_a/G_aa) with tr A_a ≠ 0 here (unequal sides), no rest point at 0"
            if noise == "projected"
            else "gradient noise moves the charges by the imbalance of the gradient variances (P2); no closed-form rest point"
        )
        rows.append(Row(f"max_a |E[{label}_a]| (end)", float(np.abs(last.mean(0)).max()), se, None, note=why))
    elif noise == "isotropic":
        drift = np.abs(last.mean(0) - first.mean(0))
        i = int(drift.argmax())
        se = float(last[:, i].std() / np.sqrt(n))
        rows.append(Row(f"max_a |ΔE[{label}_a]| (start → end)", float(drift.max()), se, 0.0, source="P3", note="isotropic noise: charges are martingales (their variance grows)"))
    else:
        rows.append(Row(f"max |Δ{label}| (start → end)", float(np.abs(last - first).max()), None, 0.0, source="P1", note="gradient descent conserves charges up to O(lr²)"))
    return rows


def _law(sim: Simulation, result: Result, label: str, values: np.ndarray, lowered: Lowered | None, out: Comparison) -> list[Row]:
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
        return [Row(f"E[{label}] (second half)", mean, se)]
    out.law, out.law_label, out.law_samples = law, label, values[-1]
    rows.append(Row(f"E[{label}] (second half)", mean, se, law.mean, source="P5", note=f"stationary law exp(−L/T)·det G^(−1/2); exp(−L/T) alone: {law.gibbs_mean:.4g}"))
    final = values[-1]
    l1, ks = distances(final, law)
    rng = np.random.default_rng(0)
    floor = np.array([distances(_draw(law, final.size, rng), law) for _ in range(20)])
    rows.append(Row(f"L1(histogram of {label}, law) (end)", l1, None, float(floor[:, 0].mean()), float(floor[:, 0].std()), "P5", "predicted = Monte Carlo floor for this many samples"))
    rows.append(Row(f"KS({label}, law) (end)", ks, None, float(floor[:, 1].mean()), float(floor[:, 1].std()), "P5", "predicted = Monte Carlo floor for this many samples"))
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
    l1 = float(np.sum(np.abs(hist / samples.size - np.diff(law.cdf(edges)))) + abs(1 - law.cdf(np.array([hi]))[0] - np.mean(samples > hi)))
    cdf = law.cdf(samples)
    n = samples.size
    ks = float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))
    return l1, ks


def render(rows: list[Row]) -> str:
    """The table as aligned text."""

    def num(x):
        return "—" if x is None else f"{x:.4g}"

    lines = [("quantity", "simulated", "predicted", "source", "note")]
    for r in rows:
        sim = num(r.simulated) + (f" ± {r.error:.2g}" if r.error is not None else "")
        pred = num(r.predicted) + (f" ± {r.floor_sd:.2g}" if r.floor_sd is not None else "")
        lines.append((r.quantity, sim, pred, r.source, r.note))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    text = []
    for j, line in enumerate(lines):
        text.append("  ".join(line[i].ljust(widths[i]) for i in range(4)) + "  " + line[4])
        if j == 0:
            text.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(t.rstrip() for t in text)
