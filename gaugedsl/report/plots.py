"""PNG figures of a run (matplotlib, Agg backend): the histogram of a scalar predictor
against its predicted stationary density; for any predictor sampled on the slice, marginals of a
few coordinates and the statistic its bias is about (simulated, predicted, and the Gibbs law
exp(−L/T) dw without the gauge correction); charge trajectories, and every recorded quantity
over time."""

from __future__ import annotations

import textwrap
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


def plot(folder: Path, model: ir.Model, result: Result, comparison: Comparison, sim=None) -> list[Path]:
    """Writes the figures into `folder`; returns their paths. With the `sim` (dynamics.Simulation)
    the records figure also draws each record's value on the balanced slice."""
    plt = _pyplot()
    written = []
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
    balanced = _balanced_values(sim, result) if sim is not None else {}
    if charges:
        written.append(_charges_figure(folder, model, result, [c.label for c in charges], unit, plt))
    if result.records:
        data = dict(sim.lowered.data) if sim is not None else {}
        refs = _references(result, comparison, balanced, data)
        written.append(_records_figure(folder, model, result, refs, unit, plt))
    return written


# A handful of highlighted lines per panel, in colours that stay apart in print and for colour-blind
# readers (Okabe–Ito); the rest of the ensemble is drawn as quantile bands in greys.
LINES = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
BANDS = ((0.05, 0.95, "0.87"), (0.25, 0.75, "0.72"))


def _entry_name(label: str, shape: tuple, i: int) -> str:
    return f"{label}[{','.join(map(str, np.unravel_index(i, shape)))}]" if shape else label


def _bands(ax, t, pooled, what: str) -> np.ndarray:
    """5–95% and 25–75% bands and the median of `pooled` (R, n) over its second axis; returns the median."""
    for lo, hi, grey in BANDS:
        ql, qh = np.quantile(pooled, [lo, hi], axis=1)
        ax.fill_between(t, ql, qh, color=grey, lw=0, label=f"{int(100 * lo)}–{int(100 * hi)}% over {what}")
    median = np.median(pooled, axis=1)
    ax.plot(t, median, color="0.35", lw=1, label="median")
    return median


def _highlighted(final_means: np.ndarray, support: np.ndarray | None, k: int = 4) -> list[int]:
    """Which entries get a line: two on and two off a sparse target's support, else the lowest,
    the highest and the middle ones at the end (where an outlier shows)."""
    n = final_means.size
    if n <= k:
        return list(range(n))
    if support is not None and support.size == n:
        on, off = np.flatnonzero(support), np.flatnonzero(~support)
        return list(on[:2]) + list(off[: k - min(2, on.size)])
    order = np.argsort(final_means)
    return sorted({int(order[0]), int(order[n // 2]), int(order[-1])})


def _records_figure(folder: Path, model: ir.Model, result: Result, refs: dict, unit: str, plt) -> Path:
    """One panel per record: quantile bands over particles (and entries), the ensemble mean of up
    to four entries with their reference lines (the data's target, the predicted law's mean, the
    value on the balanced slice), and a title that says where it went."""
    ok = result.healthy
    labels = list(result.records)
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, 2.9 * len(labels)), squeeze=False, layout="constrained")
    for ax, label in zip(axes[:, 0], labels):
        t = result.times(label)
        values = result.records[label][:, ok]
        shape = values.shape[2:]
        flat = values.reshape(len(t), values.shape[1], -1)
        k = flat.shape[2]
        what = "particles" + (" and entries" if k > 1 else "") if flat.shape[1] > 1 else "entries"
        median = _bands(ax, t, flat.reshape(len(t), -1), what) if flat.size > len(t) else flat[:, 0, 0]
        ref = refs.get(label, {})
        means = flat.mean(axis=1)  # (R, k)
        shown = _highlighted(means[-1], ref.get("support"))
        for colour, i in zip(LINES, shown):
            name = _entry_name(label, shape, i) if k > 1 else f"{label}: ensemble mean"
            ax.plot(t, means[:, i], color=colour, lw=1.6, label=name)
            for key, style in (("target", ":"), ("predicted", "--"), ("balanced", "-.")):
                if key in ref:
                    ax.axhline(ref[key][i], color=colour, ls=style, lw=1.1)
        for key, style, text in (
            ("target", ":", f"target ({ref.get('target_name', '')})"),
            ("predicted", "--", "predicted stationary mean (law)"),
            ("balanced", "-.", "value on the balanced slice (charges 0)"),
        ):
            if key in ref:
                ax.plot([], [], color="0.2", ls=style, lw=1.1, label=text)
        for value, text in ref.get("rows", []):
            ax.axhline(value, color="k", ls="--", lw=1.3, label=text)
        title = f"{label}: median {median[0]:.3g} at the start → {median[-1]:.3g} at the end"
        if "predicted" in ref:  # where the means went, against the law and the data's target
            late = means[len(t) // 2 :].mean(axis=0)
            title = f"{label}: means within {np.abs(late - ref['predicted']).max():.2g} of the law's (dashed)"
            if "target" in ref:
                gap = np.abs(ref["predicted"] - ref["target"]).max()
                title += f", which are up to {gap:.2g} from {ref['target_name']} (dotted): the bias"
        if "balanced" in ref:  # one value for every entry: say it
            at, tiny = ref["balanced"], 1e-6 * max(float(np.abs(means).max()), 1e-30)
            if np.ptp(at) <= 1e-3 * float(np.abs(at).max()) + tiny:
                title += f"; {0 if abs(at[0]) <= tiny else float(f'{at[0]:.3g}'):g} on the balanced slice"
        for _, text in ref.get("rows", [])[:1]:
            title += f"; {text}"
        if k > len(shown):
            title += f"; {len(shown)} of {k} entries drawn"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(label)
        ax.set_xlabel(unit)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"{model.name}: the records over {unit}", fontsize=10)
    return _save(fig, folder / "records.png", plt)


def _charges_figure(folder: Path, model: ir.Model, result: Result, labels: list[str], unit: str, plt) -> Path:
    """One panel per symmetry group: its charges over particles and components as bands, the
    three components that moved most as lines, 0 (the balanced slice) as a reference, and a title
    with mean |charge| at the start and the end."""
    ok = result.healthy
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, 2.9 * len(labels)), squeeze=False, layout="constrained")
    for ax, label in zip(axes[:, 0], labels):
        t = result.times(label)
        v = result.records[label][:, ok]
        flat = v.reshape(len(t), v.shape[1], -1)  # (R, N, components)
        pooled = flat.reshape(len(t), -1)
        if pooled.shape[1] > 1:
            _bands(ax, t, pooled, "particles and components" if flat.shape[1] > 1 else "components")
        means = flat.mean(axis=1)
        moved = np.argsort(-np.abs(means[-1] - means[0]))[:3]
        for colour, a in zip(LINES, moved):
            ax.plot(
                t, means[:, a], color=colour, lw=1.6, label=f"component {a}" + (" (mean)" if flat.shape[1] > 1 else "")
            )
        ax.axhline(0, color="k", lw=0.8, ls="--", label="0: the balanced slice")
        size = np.abs(flat).mean(axis=(1, 2))
        ax.set_title(
            f"{label}: mean |charge| {size[0]:.3g} → {size[-1]:.3g} ({flat.shape[2]} components; "
            f"the 3 that moved most drawn)",
            fontsize=9,
        )
        ax.set_xlabel(unit)
        ax.set_ylabel(label)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"{model.name}: Noether charges over {unit}, one panel per symmetry", fontsize=10)
    return _save(fig, folder / "charges.png", plt)


def _references(result: Result, comparison: Comparison, balanced: dict, data: dict) -> dict:
    """For each record label, what to draw beside it: `target` (a data array of the record's shape,
    e.g. the truth w_star) with `target_name`, `support` (its non-zero entries if sparse),
    `predicted` (the sampled law's mean of each entry), `balanced` (the value at the balanced point
    of the final θ, where the balancing changes it), and `rows` (the table's predicted values for
    this record: (value, text))."""
    out: dict[str, dict] = {}
    draws = getattr(comparison, "law_draws", {})
    data = {name: np.asarray(value) for name, value in data.items()}
    predictors = set(draws) | {
        i.label
        for r in result.plan.records
        for i in r.items
        if isinstance(i.value, ir.Ref) and i.value.kind == "predictor"
    }
    for label, values in result.records.items():
        shape = values.shape[2:]
        ref: dict = {}
        for name, value in data.items():  # the data's truth, for a predictor of its shape
            if label in predictors and value.shape == tuple(shape) and value.size > 1:
                ref["target"], ref["target_name"] = value.ravel(), name
                if 0.5 <= np.mean(value == 0) < 1:
                    ref["support"] = (value != 0).ravel()
                break
        if label in draws:
            ref["predicted"] = draws[label].predicted.mean(axis=0)
        if label in balanced:
            ref["balanced"] = balanced[label]
        word = f" {label} "
        for row in comparison.rows:
            if row.predicted is None or row.floor_sd is not None:  # distances: the floor is not a value of the record
                continue
            if f"[{label}]" in row.quantity or word in f" {row.quantity.replace('(', ' ').replace(')', ' ')} ":
                if "|z|" in row.quantity or "fraction" in row.quantity or "stationarity" in row.quantity:
                    continue
                ref.setdefault("rows", []).append(
                    (row.predicted, f"predicted {row.predicted:.4g} ({row.source or 'theory'})")
                )
        out[label] = ref
    return out


def _balanced_values(sim, result: Result, most: int = 64) -> dict[str, np.ndarray]:
    """Each record's value at the balanced point of the final θ (the least-norm point of its orbit,
    where every charge vanishes), averaged over up to `most` healthy particles, per entry; only for
    the records the balancing changes (a predictor or the loss is the same there: no line)."""
    import jax
    import jax.numpy as jnp

    if not sim.model.symmetries or result.plan.dynamics == "quotient" or getattr(sim, "recorder", None) is None:
        return {}
    theta = np.asarray(result.theta)[result.healthy][:most]
    if theta.size == 0:
        return {}
    at = jnp.asarray(theta, sim.dtype)
    star = jax.vmap(sim.geo.project_to_slice)(at)
    # the projection is an optimisation (closed forms for rescalings, BFGS for the rest, e.g. GL(20)):
    # draw nothing where it did not reach the slice, rather than a wrong line
    residual = np.asarray(jax.vmap(sim.geo.all_charges)(star), np.float64)
    size = np.sum(np.asarray(star, np.float64) ** 2, axis=1)
    if not np.all(np.isfinite(residual)) or np.any(np.abs(residual).max(axis=1) > 1e-4 * np.maximum(size, 1e-30)):
        return {}
    out = {}
    for index in range(len(result.plan.records)):
        fn = jax.vmap(sim.recorder.group(index))
        now, there = fn(at), fn(star)
        for label in now:
            a, b = np.asarray(now[label], np.float64), np.asarray(there[label], np.float64)
            if not np.all(np.isfinite(b)):
                continue
            scale = max(float(np.abs(a).max()), 1e-30)
            if float(np.abs(a - b).max()) > 1e-3 * scale:
                out[label] = b.reshape(b.shape[0], -1).mean(axis=0)
    return out


def _save(fig, path: Path, plt) -> Path:
    if fig.get_layout_engine() is None:
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
    plain = "and exp(−L/T) dw without the gauge correction"
    if gibbs is None:  # say why it is missing: where the plain law does not exist, that is the point
        plain = "\n" + textwrap.fill(draws.gibbs_why, 150) if draws.gibbs_why else "(exp(−L/T) dw: not available here)"
    fig.suptitle(
        f"{model.name}: stationary law of {draws.label} — simulated, predicted exp(−L/T)·det G^(−1/2) on the slice {plain}",
        fontsize=10,
    )
    return _save(fig, folder / f"law_{draws.label}.png", plt)
