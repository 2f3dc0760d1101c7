"""The figure of a sweep: each predicted statistic against the swept setting, the simulation's
mean with its standard error beside it (points that differ only in the seed pooled).

- For a predictor sampled on the slice (law_rows.py) with a sparse target: E|w_i| on and off the
  target's support, the statistic the sparsity bias is about; else E|w_i| over all coordinates.
  Simulated: each particle's time average of the mean |w_i| over the second half of the records,
  averaged over the particles (standard error over the particles); predicted: the sampler's draws.
- For every table row with a predicted value and a standard error (e.g. a scalar predictor's
  stationary mean): the simulated value ± its error and the prediction.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .. import ir
from .plots import GIBBS, PRED, SIM, _pyplot, _save


def plot_sweep(folder: Path, model: ir.Model, sweep, results, comparisons) -> list[Path]:
    """Writes `sweep.png` into `folder` (nothing when no statistic has a prediction); returns the paths."""
    numeric = [name for name in sweep.names if name != "seed"]
    axis = numeric[0] if numeric else sweep.names[0]
    xs = np.asarray([p[axis] for p in sweep.points()], np.float64)
    panels = _law_panels(results, comparisons, xs) + _row_panels(comparisons)
    if not panels:
        return []
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.5 * rows), squeeze=False, layout="constrained")
    for ax, (title, sim, err, pred, gibbs) in zip(axes.ravel(), panels):
        x, s, e, p = _pool(xs, sim, err, pred)
        ax.plot(x, p, "-", color=PRED, lw=1.5, label="predicted (with the gauge correction)")
        if gibbs is not None and np.isfinite(gibbs).any():
            _, _, _, g = _pool(xs, gibbs, np.zeros_like(gibbs), gibbs)
            ax.plot(x, g, "--", color=GIBBS, lw=1.3, label="exp(−L/T) dw alone (no correction)")
        ax.errorbar(x, s, yerr=e, fmt="o", ms=4, capsize=3, color=SIM, label="simulated (± s.e.)")
        if numeric and np.all(x > 0) and x.max() / x.min() > 20:
            ax.set_xscale("log")
        ax.set_xlabel(axis)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    others = [name for name in sweep.names if name != axis]
    pooled = f"; points differing in {', '.join(others)} pooled" if others else ""
    why = next((w for c in comparisons for d in getattr(c, "law_draws", {}).values() if (w := d.gibbs_why)), None)
    note = "\n" + textwrap.fill(why, 110) if why else ""
    fig.suptitle(f"{model.name}: predicted and simulated against {axis}{pooled}{note}", fontsize=10)
    return [_save(fig, folder / "sweep.png", plt)]


def _pool(xs, sim, err, pred):
    """Points with the same x pooled: the mean of their values, the error of that mean."""
    x = np.unique(xs)
    s, e, p = [], [], []
    for value in x:
        at = xs == value
        n = at.sum()
        s.append(np.mean(sim[at]))
        e.append(np.sqrt(np.sum(err[at] ** 2)) / n)
        p.append(np.mean(pred[at]))
    return x, np.asarray(s), np.asarray(e), np.asarray(p)


def _law_panels(results, comparisons, xs) -> list:
    """E|w_i| (on and off a sparse target's support) of each sampled predictor, at every point,
    and under the Gibbs law without the correction (drawn once per value of the swept setting)."""
    labels = [set(getattr(c, "law_draws", {})) for c in comparisons]
    common = sorted(set.intersection(*labels)) if labels else []
    panels = []
    for label in common:
        draws = [c.law_draws[label] for c in comparisons]
        support = draws[0].support
        groups = [("all coordinates", None)] if support is None else [
            (f"on the support of {support[0]}", support[1]), (f"off the support of {support[0]}", ~support[1])
        ]  # fmt: skip
        plain = {}  # x → the Gibbs draws of the first point there (64 chains; the figure's only)
        for x, d in zip(xs, draws):
            if x not in plain:
                plain[x] = d.gibbs()
        for where, mask in groups:
            sim, err, pred, gibbs = [], [], [], []
            for x, r, d in zip(xs, results, draws):
                values = r.records[label][:, r.healthy]
                flat = np.abs(values.reshape(values.shape[0], values.shape[1], -1))
                chosen = flat if mask is None else flat[..., mask]
                per_particle = chosen[chosen.shape[0] // 2 :].mean(axis=(0, 2))
                sim.append(per_particle.mean())
                err.append(per_particle.std(ddof=1) / np.sqrt(per_particle.size))
                law = np.abs(d.predicted if mask is None else d.predicted[:, mask])
                pred.append(law.mean())
                g = plain[x]
                gibbs.append(np.nan if g is None else np.abs(g if mask is None else g[:, mask]).mean())
            panels.append(
                (f"E|{label}_i|, {where}", np.asarray(sim), np.asarray(err), np.asarray(pred), np.asarray(gibbs))
            )
    return panels


def _row_panels(comparisons) -> list:
    """Table rows with a prediction and an error at every point (the same quantity throughout)."""
    first = comparisons[0].rows
    panels = []
    for i, row in enumerate(first):
        if row.predicted is None or row.error is None or row.simulated is None:
            continue
        same = [c.rows[i] for c in comparisons if i < len(c.rows) and c.rows[i].quantity == row.quantity]
        values = [(r.simulated, r.error, r.predicted) for r in same]
        if len(same) < len(comparisons) or any(v is None for triple in values for v in triple):
            continue
        sim, err, pred = (np.asarray(column, np.float64) for column in zip(*values))
        panels.append((row.quantity, sim, err, pred, None))
    return panels[:6]
