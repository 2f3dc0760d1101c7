"""PNG figures of a run (matplotlib, Agg backend): the histogram of a scalar predictor
against its predicted stationary density; for any predictor sampled on the slice, marginals of a
few coordinates and the statistic its bias is about (simulated, predicted, and the Gibbs law
exp(−L/T) dw without the gauge correction); charge trajectories, and every recorded quantity
over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import ir
from ..atomic import replacing
from ..dynamics.ensemble import Result
from .compare import Comparison


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(folder: Path, model: ir.Model, result: Result, comparison: Comparison) -> list[Path]:
    """Writes the figures into `folder`; returns their paths."""
    plt = _pyplot()
    written = []
    ok = result.healthy
    unit = "t" if result.plan.dynamics in ("sde", "quotient") else "t = step·lr"
    if comparison.law is not None:
        law, label, samples = comparison.law, comparison.law_label, comparison.law_samples
        assert label is not None and samples is not None  # set with the law
        fig, ax = plt.subplots(figsize=(6, 4))
        hi = np.quantile(samples, 0.999)
        heights, _, _ = ax.hist(
            samples,
            bins=60,
            range=(min(samples.min(), law.w[0]), hi),
            density=True,
            alpha=0.5,
            label=f"simulated ({samples.size} particles, end)",
        )
        keep = law.w <= hi
        ax.plot(law.w[keep], law.density[keep], "k", lw=1.5, label="predicted: exp(−L/T) det G^(−1/2)")
        ax.axvline(law.mean, color="k", ls="--", lw=1, label=f"predicted mean {law.mean:.4f}")
        ax.axvline(law.gibbs_mean, color="tab:red", ls=":", lw=1, label=f"exp(−L/T) alone: mean {law.gibbs_mean:.4f}")
        ax.axvline(samples.mean(), color="tab:blue", ls="--", lw=1, label=f"simulated mean {samples.mean():.4f}")
        ax.set_ylim(0, 1.4 * max(np.max(heights), 1e-12))  # the law may have an integrable spike (|w|^(-1/2))
        ax.set_xlabel(label)
        ax.set_ylabel("density")
        ax.set_title(f"{model.name}: stationary law of {label}")
        ax.legend(fontsize=7)
        written.append(_save(fig, folder / f"law_{label}.png", plt))
    for draws in getattr(comparison, "law_draws", {}).values():
        written.append(_law_figure(folder, model, draws, plt))
    charges = [
        i for r in result.plan.records for i in r.items if isinstance(i.value, ir.Call) and i.value.func == "charge"
    ]
    if charges:
        fig, axes = plt.subplots(len(charges), 1, figsize=(7, 3 * len(charges)), squeeze=False)
        for ax, item in zip(axes[:, 0], charges):
            t = result.times(item.label)
            v = result.records[item.label][:, ok].reshape(len(t), int(ok.sum()), -1)
            for a in range(min(v.shape[2], 6)):
                m, s = v[:, :, a].mean(1), v[:, :, a].std(1)
                (line,) = ax.plot(t, m, lw=1.5, label=f"a = {a}")
                ax.fill_between(t, m - s, m + s, color=line.get_color(), alpha=0.15)
                for p in range(min(3, v.shape[1])):
                    ax.plot(t, v[:, p, a], color=line.get_color(), lw=0.4, alpha=0.5)
            ax.axhline(0, color="k", lw=0.5)
            ax.set_title(
                f"{item.label}: ensemble mean ± sd, and three particles"
                + (f" (first 6 of {v.shape[2]})" if v.shape[2] > 6 else "")
            )
            ax.set_xlabel(unit)
            ax.legend(fontsize=7, ncol=3)
        written.append(_save(fig, folder / "charges.png", plt))
    labels = list(result.records)
    if labels:
        fig, axes = plt.subplots(len(labels), 1, figsize=(7, 2.6 * len(labels)), squeeze=False)
        for ax, label in zip(axes[:, 0], labels):
            t = result.times(label)
            v = result.records[label][:, ok]
            if v.ndim == 2:
                ax.plot(t, v.mean(1), lw=1.5, label="mean")
                lo, hi = np.quantile(v, [0.1, 0.9], axis=1)
                ax.fill_between(t, lo, hi, alpha=0.2, label="10–90%")
                ax.legend(fontsize=7)
            else:
                flat = v.reshape(len(t), v.shape[1], -1).mean(1)
                ax.plot(t, flat[:, :20], lw=1)
                ax.set_title(
                    f"{label}: ensemble mean of each entry" + (" (first 20)" if flat.shape[1] > 20 else ""), fontsize=9
                )
            ax.set_ylabel(label)
            ax.set_xlabel(unit)
        written.append(_save(fig, folder / "records.png", plt))
    return written


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return path


SIM, PRED, GIBBS = ("tab:blue", "black", "tab:red")


def _law_figure(folder: Path, model: ir.Model, draws, plt) -> Path:
    """Marginals of up to four coordinates and the bias statistic: |w_i| on and off the support for a
    vector, the singular values for a matrix."""
    sim, pred = draws.simulated, draws.predicted
    gibbs = draws.gibbs()
    if draws.support is not None:
        target, on = draws.support
        shown = list(np.flatnonzero(on)[:2]) + list(np.flatnonzero(~on)[:2])
    else:
        target, on = None, None
        shown = list(range(min(4, sim.shape[1])))
    matrix = len(draws.shape) == 2 and min(draws.shape) > 1
    fig, axes = plt.subplots(2, max(len(shown), 2), figsize=(3.2 * max(len(shown), 2), 6.4), squeeze=False)
    for ax, i in zip(axes[0], shown):
        pooled = np.concatenate([sim[:, i], pred[:, i]])
        lo, hi = np.quantile(pooled, [0.005, 0.995])
        bins = np.linspace(lo, hi, 41)
        ax.hist(
            sim[:, i], bins, density=True, alpha=0.45, color=SIM, label=f"simulated ({sim.shape[0]} particles, end)"
        )
        ax.hist(pred[:, i], bins, density=True, histtype="step", lw=1.5, color=PRED, label="predicted (sampler)")
        if gibbs is not None:
            ax.hist(
                gibbs[:, i],
                bins,
                density=True,
                histtype="step",
                lw=1.2,
                ls="--",
                color=GIBBS,
                label="exp(−L/T) dw (no correction)",
            )
        name = f"{draws.label}[{','.join(map(str, np.unravel_index(i, draws.shape)))}]" if draws.shape else draws.label
        where = "" if on is None else f" ({'on' if on[i] else 'off'} the support of {target})"
        ax.set_title(name + where, fontsize=9)
        ax.set_xlabel(name)
        ax.set_ylabel("density")
    axes[0][0].legend(fontsize=7, loc="upper right")
    for ax in axes[0][len(shown) :]:
        ax.axis("off")
    bottom = axes[1]
    if matrix:

        def svals(x):
            return np.linalg.svd(x.reshape(-1, *draws.shape), compute_uv=False)

        sets = [("simulated", svals(sim), SIM), ("predicted", svals(pred), PRED)]
        if gibbs is not None:
            sets.append(("exp(−L/T) dw", svals(gibbs), GIBBS))
        ax = bottom[0]
        for name, sv, color in sets:
            ax.boxplot(
                sv,
                positions=np.arange(sv.shape[1]) + {"simulated": -0.25, "predicted": 0.0}.get(name, 0.25),
                widths=0.2,
                patch_artist=True,
                boxprops={"facecolor": color, "alpha": 0.4},
                showfliers=False,
            )
            ax.plot([], [], color=color, lw=6, alpha=0.4, label=name)
        ax.set_xticks(range(sets[0][1].shape[1]))
        ax.set_xlabel("singular value index")
        ax.set_ylabel("σ_k")
        ax.set_title(f"singular values of {draws.label}", fontsize=9)
        ax.legend(fontsize=7)
        for ax in bottom[1:]:
            ax.axis("off")
    else:
        groups = [("on", on), ("off", ~on)] if on is not None else [("all", np.ones(sim.shape[1], bool))]
        for ax, (where, mask) in zip(bottom, groups):
            parts = [("simulated", sim, SIM, "stepfilled"), ("predicted", pred, PRED, "step")]
            if gibbs is not None:
                parts.append(("exp(−L/T) dw, no correction", gibbs, GIBBS, "step"))
            top = np.quantile(np.abs(np.concatenate([sim[:, mask].ravel(), pred[:, mask].ravel()])), 0.99)
            bins = np.linspace(0, top, 41)
            for name, x, color, kind in parts:
                a = np.abs(x[:, mask]).ravel()
                ax.hist(
                    a,
                    bins,
                    density=True,
                    histtype=kind,
                    alpha=0.45 if kind == "stepfilled" else 1.0,
                    color=color,
                    lw=1.5,
                    label=f"{name}: mean {a.mean():.3g}",
                )
            ax.set_xlabel(f"|{draws.label}_i|")
            ax.set_ylabel("density")
            title = f"{where} the support of {target}" if where != "all" else "all coordinates"
            ax.set_title(f"|{draws.label}_i| {title} ({int(mask.sum())} coordinates)", fontsize=9)
            ax.legend(fontsize=7, loc="upper right")
        for ax in bottom[len(groups) :]:
            ax.axis("off")
    fig.suptitle(
        f"{model.name}: stationary law of {draws.label} — simulated, predicted exp(−L/T)·det G^(−1/2) "
        "on the slice, and exp(−L/T) dw without the gauge correction",
        fontsize=10,
    )
    return _save(fig, folder / f"law_{draws.label}.png", plt)
