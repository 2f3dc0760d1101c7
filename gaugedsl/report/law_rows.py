"""The predicted law of any predictor beside the simulation (docs/theory.md §2, P5/P6, §9.2).

Under projected noise with the charges at rest, the sampler (`geometry/sampler.py`) draws the
predicted stationary law on the slice, one chain per particle (its sign pattern, its start), and
the predictor is pushed through it. The rows, each with its verdict:

- the per-coordinate means: simulation = each particle's time average over the second half of the
  records, sampler = the mean of the chain that follows that particle's pattern; the z-test is on
  their paired difference (independent across particles; the noise of the patterns themselves —
  which signs each particle's w keeps — cancels). One row gives max |z| over the m coordinates against the
  Bonferroni threshold for m tests (family-wise false alarm 0.27%, as one 3σ row); for m ≤ 4, one
  row each;
- KS: for each coordinate the two-sample Kolmogorov–Smirnov distance between the final values of
  the particles the chains follow and the chains' draws; the row is the maximum over coordinates;
- the energy distance between the same two samples of the whole (standardised) predictor;
- both distances beside their Monte Carlo floor, found by permutation *within* each particle's
  pattern (its final value swapped with one of its chain's draws; exchangeable under the null that
  the simulation has reached the law), so the floor has the sizes and the pattern noise of the test;
- stationarity: each particle's average over the third and the fourth quarter of the records, of
  every coordinate and of the predictor's norm (max |z| of their difference, Bonferroni as above),
  so a run too short to settle says so; the norm sees an ensemble that is still growing as a whole.

The means and stationarity rows also carry ArviZ's effective sample size of the time averages
(arviz-stats, `ess(method="mean")`, the particles as chains and the second half's records as
draws; the least over the coordinates), and a row whose ESS is below 400 — the least Vehtari et
al. (2021) recommend for a reliable mean, which ArviZ follows — is flagged: a weak verdict (more
particles or a longer run). Under projected noise particles keep their sign branches, so the ESS
stays near the number of particles however long the run (docs/theory.md §11); whether the run
is long enough is the stationarity row's question. Without arviz-stats (the `[law]` extra) the
rows carry no ESS.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Callable

import numpy as np

from .. import ir
from ..geometry.chart import ChartUnavailable, SliceChart
from ..geometry.gl_chart import GLChart, gl_chart_applies
from ..geometry.law import LawUnavailable
from ..geometry.normalisable import gibbs_flat
from ..kinds import NOISES
from . import verdict
from .compare import Row

FAMILY_ALPHA = 2 * (1 - statistics.NormalDist().cdf(verdict.Z_THRESHOLD))  # a single 3σ row's false alarm
SWAPS = 999  # the swap floors' permutations: resolution 0.001 for a p-value tested at 0.0027
MIN_RECORDS = 8


def bonferroni_z(m: int, alpha: float = FAMILY_ALPHA) -> float:
    """The |z| a maximum over m independent two-sided z-tests must stay under for a family-wise
    false-alarm rate `alpha` (m = 1: `Z_THRESHOLD`)."""
    return statistics.NormalDist().inv_cdf(1 - alpha / (2 * max(m, 1)))


def by_max_z(z: np.ndarray, what: str) -> tuple[str, str]:
    """The verdict of max |z| over a family of coordinates, Bonferroni-corrected."""
    z = np.abs(np.asarray(z, np.float64)).ravel()
    if not np.all(np.isfinite(z)):
        return verdict.DISAGREES, "not finite"
    limit = bonferroni_z(z.size)
    ok = z.max() <= limit
    sign = "≤" if ok else ">"
    why = f"{what}max |z| = {z.max():.2g} {sign} {limit:.2f} (Bonferroni, {z.size} coordinates)"
    return (verdict.AGREES if ok else verdict.DISAGREES), why


@dataclasses.dataclass
class LawDraws:
    """What the plots need: the simulated and predicted samples of one predictor (flattened)."""

    label: str
    shape: tuple
    simulated: np.ndarray  # (N, m) final values of all healthy particles
    predicted: np.ndarray  # (C·K, m) sampler draws
    gibbs: Callable  # () → (C·K, m) draws of exp(−L/T) dw without the correction, or None (sampled on demand)
    support: tuple[str, np.ndarray] | None = None  # a sparse target of the predictor's shape: (its name, nonzero mask)
    gibbs_why: str | None = None  # why there is no uncorrected law to draw (geometry/normalisable.gibbs_flat)


def chart_of(sim) -> SliceChart | GLChart | None:
    """The slice chart of the model (the quotient chart of a GL(r) factorization), or None."""
    try:
        return GLChart(sim.geo) if gl_chart_applies(sim.geo) else SliceChart(sim.geo)
    except ChartUnavailable:
        return None


def _horizontal(noise: str | None) -> bool:
    """The noise balances (its registry entry's `horizontal`): the law on the slice is its law."""
    return noise is not None and NOISES[noise].horizontal


def applies(sim, item, noise: str | None) -> bool:
    """Whether these rows speak for the recorded `item`: a predictor of a model with symmetries, except
    a scalar one whose slice is a curve or has no chart (the exact quadrature of geometry/law.py
    handles those, under projected noise)."""
    if not (isinstance(item.value, ir.Ref) and item.value.kind == "predictor") or not sim.model.symmetries:
        return False
    if item.value.shape == () and len(sim.model.predictors) == 1 and _horizontal(noise):
        return sim.geo.dimension - sim.geo.algebra_dim > 1 and chart_of(sim) is not None
    return True


def law_rows(sim, result, label: str, values: np.ndarray, out, predictor: str | None = None,
             seed: int = 0) -> list[Row]:  # fmt: skip
    """The rows comparing the recorded predictor `label` (records `values`, (R, N, ...) of healthy
    particles; `predictor` its name in the model, default `label`) with its predicted law; caches
    the draws on `out` (`out.law_draws`, for the plots)."""
    from .compare import _plain  # the ensemble's end mean, as for any record without a law

    noise = result.plan.noise
    if not _horizontal(noise):
        why = NOISES[noise].why_no_law if noise is not None else None
        why = why or f"the stationary law on the slice is predicted for projected noise (here: {noise or 'none'})"
        return [_plain(label, values), Row(f"law of {label}", None, verdict=verdict.NO_PREDICTION, why=why)]
    if values.shape[0] < MIN_RECORDS:
        why = (f"only {values.shape[0]} records of {label}: the time averages and the stationarity check need at least "
               f"{MIN_RECORDS} (record more often, or run longer)")  # fmt: skip
        return [_plain(label, values), Row(f"law of {label}", None, verdict=verdict.NO_PREDICTION, why=why)]
    try:
        draws = _predicted(sim, result, out, seed)
    except (LawUnavailable, ImportError) as exc:
        out.notes.append(f"no predicted law for {label}: {exc}")
        return [_plain(label, values), Row(f"law of {label}", None, verdict=verdict.NO_PREDICTION, why=str(exc))]
    sample, push, gibbs, branches = draws
    pred = push(sample.theta, predictor or label)  # (C, K, m)
    c, k, m = pred.shape
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    shape = values.shape[2:]
    half = flat[flat.shape[0] // 2 :]
    # paired by particle: chain j follows particle j's pattern, so the pattern noise cancels
    per_particle = half.mean(axis=0)[sample.particles]  # (C, m)
    chain_means = pred.mean(axis=1)
    diff = per_particle - chain_means
    diff_se = diff.std(0, ddof=1) / np.sqrt(c)
    sim_mean, law_mean = per_particle.mean(0), chain_means.mean(0)
    z = diff.mean(0) / np.maximum(diff_se, 1e-300)
    source = "P5/P6"
    law_note = f"paired by particle; sampler: {c} chains × {k} draws (NUTS), acceptance {sample.acceptance:.2f}"
    ess, flag = _effective_sample_size(half[:, sample.particles])
    if ess is not None:
        law_note += f"; ESS {ess:.3g} (ArviZ, least over the coordinates)"
    rows = []
    v, why = by_max_z(z, "")
    rows.append(Row(f"max_i |z| of E[{label}_i] (second half vs law)", float(np.abs(z).max()), None, bonferroni_z(m),
                    source=source, note=law_note, verdict=v, why=why, ess=ess, flagged=flag))  # fmt: skip
    if m <= 4:
        for i in range(m):
            name = label if m == 1 and not shape else f"{label}[{','.join(map(str, np.unravel_index(i, shape)))}]"
            v, why = verdict.by_z(float(sim_mean[i]), float(diff_se[i]), float(law_mean[i]))
            rows.append(Row(f"E[{name}] (second half)", float(sim_mean[i]), float(diff_se[i]), float(law_mean[i]), None,
                            source, "± the standard error of the paired difference", v, why))  # fmt: skip
    # distances: the final values of the particles the chains follow, against their chains' draws
    final = flat[-1][sample.particles]
    last = pred[:, -1]  # each chain's last draw: with its particle, an exchangeable pair (`_swapped`)
    ks, ks_floor = _swapped(final, last, _max_ks, np.random.default_rng(seed))
    v, why = verdict.by_permutation(ks, ks_floor)
    rows.append(
        Row(
            f"max_i KS({label}_i, law) (end)",
            ks,
            None,
            float(ks_floor.mean()),
            float(ks_floor.std()),
            source,
            f"predicted = floor: each particle swapped or not with its chain's last draw, {c} particles vs {c} draws",
            v,
            why,
        )
    )
    scale = np.maximum(pred.reshape(-1, m).std(0), 1e-300)
    en, en_floor = _swapped_energy(final / scale, last / scale, np.random.default_rng(seed + 1))
    v, why = verdict.by_permutation(en, en_floor)
    if v == verdict.DISAGREES:  # measured: depth-3/4 nets at t = 60 disagreed here only, and agreed at t = 240
        why += "; the chains move away from the particles jointly: a run that has not mixed (run longer) or a wrong law"
    note = f"standardised coordinates; floor as for KS, {c} particles vs {c} draws"
    rows.append(Row(f"energy distance({label}, law) (end)", en, None, float(en_floor.mean()), float(en_floor.std()),
                    source, note, v, why))  # fmt: skip
    rows.append(dataclasses.replace(_stationarity(label, flat), ess=ess, flagged=flag))
    chart = chart_of(sim)
    if isinstance(chart, GLChart) and tuple(shape) == (chart.m, chart.n):  # the product W = U Vᵀ's shape
        rows += _spectrum_rows(label, values, pred.reshape(c, k, *shape), sample, chart.r, seed)
    if not getattr(out, "_branch_row_given", False) and branches is not None:  # once per run
        rows.append(branches)
        out._branch_row_given = True
    out.law_draws = getattr(out, "law_draws", {})
    name = predictor or label
    out.law_draws[label] = LawDraws(
        label,
        shape,
        flat[-1],
        pred.reshape(-1, m),
        lambda: _gibbs_draws(gibbs, push, name, m),
        _sparse_target(sim, shape),
        gibbs_flat(sim),
    )
    return rows


def _spectrum_rows(label, values, pred, sample, r: int, seed: int) -> list[Row]:
    """For a GL(r) factorization's matrix predictor: the same paired means and KS on its r largest
    singular values (the statistic the low-rank bias is about, docs/theory.md §9.1(d))."""
    sv_sim = np.linalg.svd(values, compute_uv=False)[..., :r]  # (R, N, r)
    sv_law = np.linalg.svd(pred, compute_uv=False)[..., :r]  # (C, K, r)
    name = f"svdvals({label})"
    per_particle = sv_sim[sv_sim.shape[0] // 2 :].mean(axis=0)[sample.particles]
    chain_means = sv_law.mean(axis=1)
    diff = per_particle - chain_means
    se = diff.std(0, ddof=1) / np.sqrt(diff.shape[0])
    z = diff.mean(0) / np.maximum(se, 1e-300)
    v, why = by_max_z(z, "")
    rows = [Row(f"max_i |z| of E[{name}_i] (second half vs law)", float(np.abs(z).max()), None, bonferroni_z(r),
                source="§9.1(d)", note="paired by particle", verdict=v, why=why)]  # fmt: skip
    for i in range(min(r, 4)):
        v, why = verdict.by_z(float(per_particle[:, i].mean()), float(se[i]), float(chain_means[:, i].mean()))
        rows.append(Row(f"E[{name}[{i}]] (second half)", float(per_particle[:, i].mean()), float(se[i]),
                        float(chain_means[:, i].mean()), None, "§9.1(d)",
                        "± the standard error of the paired difference", v, why))  # fmt: skip
    ks, floor = _swapped(sv_sim[-1][sample.particles], sv_law[:, -1], _max_ks, np.random.default_rng(seed + 2))
    v, why = verdict.by_permutation(ks, floor)
    rows.append(Row(f"max_i KS({name}_i, law) (end)", ks, None, float(floor.mean()), float(floor.std()), "§9.1(d)",
                    "predicted = floor: permutations within particles", v, why))  # fmt: skip
    return rows


def _sparse_target(sim, shape) -> tuple[str, np.ndarray] | None:
    """A data array of the predictor's shape with at least half its entries exactly 0 (a sparse
    target such as `w_star`): its name and support, for the bias figure. None if there is none."""
    for name, value in sim.lowered.data.items():
        value = np.asarray(value)
        if value.shape == tuple(shape) and value.size > 1 and 0.5 <= np.mean(value == 0) < 1:
            return name, (value != 0).ravel()
    return None


MIN_ESS = 400  # Vehtari, Gelman, Simpson, Carpenter, Bürkner (2021), rank-normalized R-hat and ESS


def _effective_sample_size(half: np.ndarray) -> tuple[float | None, str]:
    """ArviZ's ESS of the mean of `half` (records, particles, coordinates; the particles as
    chains), the least over the coordinates, and why it is too small for a verdict ("" if it is
    not); (None, "") without arviz-stats."""
    try:
        from arviz_stats.base.array import array_stats
    except ImportError:
        return None, ""
    draws = np.transpose(np.asarray(half, dtype=np.float64), (2, 1, 0))  # (coordinates, chains, draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        each = np.asarray(array_stats.ess(draws, chain_axis=-2, draw_axis=-1, method="mean"))
    if not np.isfinite(each).any():  # constant coordinates: nothing to estimate
        return None, ""
    ess = float(np.nanmin(np.where(np.isfinite(each), each, np.nan)))
    if ess < MIN_ESS:
        return ess, (
            f"ESS {ess:.3g} < {MIN_ESS}: too few effective draws for a reliable mean (Vehtari et al. 2021), "
            "a weak verdict; more particles or a longer run"
        )
    return ess, ""


def _stationarity(label: str, flat: np.ndarray) -> Row:
    r = flat.shape[0]
    q3, q4 = flat[r // 2 : 3 * r // 4], flat[3 * r // 4 :]
    if len(q3) == 0 or len(q4) == 0:
        return Row(f"stationarity of {label}", None, verdict=verdict.NO_PREDICTION, why="too few records to split")

    # the coordinates and the norm: an ensemble still growing (or shrinking) as a whole moves each
    # coordinate by less than its noise, but its norm coherently (a GL(4) factorization at t = 20:
    # the singular values still climbing, every coordinate within 3.3 errors)
    def with_norm(q):
        return np.concatenate([q, np.linalg.norm(q, axis=-1, keepdims=True)], axis=-1)

    diff = with_norm(q4).mean(0) - with_norm(q3).mean(0)  # (N, m + 1)
    se = diff.std(0, ddof=1) / np.sqrt(diff.shape[0])
    z = diff.mean(0) / np.maximum(se, 1e-300)
    v, why = by_max_z(z, "")
    if abs(z[-1]) == np.abs(z).max() and v == verdict.DISAGREES:
        why += f"; the norm of {label} drifts (z = {z[-1]:.2g})"
    note = "3rd vs 4th quarter of the records (per-particle averages of each coordinate and of the norm): a drift means the run is too short"
    return Row(f"stationarity of {label}: max_i |z|", float(np.abs(z).max()), None, bonferroni_z(z.size), None,
               "", note, v, why)  # fmt: skip


def _predicted(sim, result, out, seed):
    """(sample, push-forward, gibbs sample or None), computed once per run and cached on `out`."""
    cache = getattr(out, "_law_sample", None)
    if cache is not None:
        if isinstance(cache, Exception):
            raise cache
        return cache
    try:
        cache = _sample(sim, result, seed)
    except (LawUnavailable, ImportError) as exc:
        out._law_sample = exc
        raise
    out._law_sample = cache
    return cache


def _sample(sim, result, seed):
    import jax
    import jax.numpy as jnp

    from ..geometry.normalisable import bounded_loss, power_counting
    from ..geometry.sampler import chart_for, not_normalisable, sample_slice_law

    plan = result.plan
    if not _horizontal(plan.noise):
        raise LawUnavailable("the stationary law on the slice is predicted for projected noise")
    chart = chart_for(sim.geo)
    T = float(result.numbers["T"])  # a horizontal noise model has a temperature
    theta0 = np.asarray(result.theta)[result.healthy]
    # structural, before the sampler: a slow divergence escapes its detector
    why = bounded_loss(sim) or power_counting(sim, theta0)
    if why is not None:
        raise LawUnavailable(f"no stationary law ({why})")
    # Each chain follows its particle's branch as it is at the end of the run: a particle started off
    # the slice may change its sign pattern while its charges relax (docs/theory.md §9.2), and the
    # ensemble's law is the mixture over the branches reached, not over the initial ones.
    lowered, layout = sim.lowered, sim.layout

    def predictors(theta):
        values = lowered.predictors(layout.unflatten(theta))
        return jnp.concatenate([jnp.ravel(values[p.name]) for p in sim.model.predictors])

    sample = sample_slice_law(sim.geo, sim.objective.loss, T, theta0, chart=chart, seed=seed, dtype=sim.dtype)
    why = not_normalisable(sample, chart)
    if why is not None and sample.end is not None:
        # Chains started inside the law's radius grow until they reach it, which the detector cannot tell
        # from a divergence in one look: look again from where they got to, adapted afresh, four times longer.
        sample = sample_slice_law(sim.geo, sim.objective.loss, T, theta0, chart=chart, seed=seed, dtype=sim.dtype,
                                  resume=sample, warmup=1000, draws=100)  # fmt: skip
        why = not_normalisable(sample, chart)
    if why is not None:
        raise LawUnavailable(f"no stationary law found (the sampler's chains kept drifting over two looks, the second "
                             f"four times longer: {why})")  # fmt: skip

    def gibbs():
        """The plain Gibbs law exp(−L/T) dw of the (single) predictor, or None where it has no density
        or cannot be normalised (a flat direction of the loss in w: the sampler would only drift)."""
        if len(sim.model.predictors) != 1 or gibbs_flat(sim) is not None:
            return None
        try:
            # for the figure only: 64 chains
            return sample_slice_law(sim.geo, sim.objective.loss, T, theta0, chart=chart, seed=seed, dtype=sim.dtype,
                                    potential="gibbs", predictor=predictors, chains=64)  # fmt: skip
        except LawUnavailable:
            return None

    offsets, start = {}, 0
    for p in sim.model.predictors:
        size = int(np.prod(p.shape, dtype=int))
        offsets[p.name] = slice(start, start + size)
        start += size
    batched = jax.jit(jax.vmap(jax.vmap(predictors)))
    pushed = {}

    def push(theta, name):
        """The draws (C, K, D) pushed through predictor `name`, flattened: (C, K, m)."""
        if id(theta) not in pushed:
            pushed[id(theta)] = np.asarray(batched(jnp.asarray(theta, sim.dtype)), np.float64)
        return pushed[id(theta)][..., offsets[name]]

    return sample, push, gibbs, _branches(sim, chart, result, sample)


def _branches(sim, chart, result, sample) -> Row | None:
    """How many of the chained particles left their initial sign pattern (docs/theory.md §9.2);
    None for a GL quotient chart (its label is a column order, not a branch)."""
    if not getattr(chart, "branches", True):
        return None
    import jax
    import jax.numpy as jnp

    start = np.asarray(result.theta0 if result.theta0 is not None else result.theta)[result.healthy][sample.particles]
    start = jnp.asarray(start, sim.dtype)
    initial = chart.signs(np.asarray(jax.vmap(sim.geo._project_to_slice)(start)))
    changed = np.any(initial != sample.sigma, axis=1) & np.any(initial != -sample.sigma, axis=1)  # up to a global sign
    charges = np.abs(np.asarray(jax.vmap(sim.geo.all_charges)(start)))
    scale = np.asarray(jnp.sum(start * start, axis=1))[:, None]
    on_slice = bool(np.all(charges <= 1e-6 * np.maximum(scale, 1e-30)))
    name = "fraction of particles that changed sign pattern (start → end)"
    frac = float(changed.mean())
    if on_slice:
        v, why = verdict.exact(frac == 0.0, "started on the slice: the exact dynamics keeps every particle's line")
        note = "a change is a discretization failure"
        return Row(name, frac, None, 0.0, source="§9.2", note=note, verdict=v, why=why)
    return Row(name, frac, note="started off the slice: patterns may change while the charges relax (§9.2); the "
               "chains follow the patterns at the end", why="no prediction: the start is off the slice")  # fmt: skip


def _gibbs_draws(gibbs, push, name, m):
    sample = gibbs()
    return None if sample is None else push(sample.theta, name).reshape(-1, m)


def _swapped(sim_final: np.ndarray, last: np.ndarray, stat, rng) -> tuple[float, np.ndarray]:
    """The statistic of (sim_final (C, m), last (C, m)) and its floor: each particle's value swapped
    with its chain's last draw, or not, with probability ½ each.

    Why a valid floor: chain j starts at particle j's slice point and NUTS is reversible, so if the
    particle is a draw of its branch's law (the hypothesis tested), (particle, last draw) is an
    exchangeable pair (up to the warmup's adaptation of the kernel), and each swap leaves the
    statistic's law unchanged whatever the chain's mixing; a chain that has not moved far only
    makes the test conservative. Pooling all of a chain's draws is not valid: they are
    correlated with each other, and a floor that swaps a particle with one of them understates
    the distance a correct law gives where chains mix slowly (tests/test_floors.py)."""
    observed = stat(sim_final, last)
    floor = []
    for _ in range(SWAPS):
        swap = rng.random(sim_final.shape[0]) < 0.5
        floor.append(stat(np.where(swap[:, None], last, sim_final), np.where(swap[:, None], sim_final, last)))
    return float(observed), np.asarray(floor)


def _swapped_energy(sim_final: np.ndarray, last: np.ndarray, rng) -> tuple[float, np.ndarray]:
    """`_swapped` for the energy distance, from one matrix of the 2C points' distances."""
    c = sim_final.shape[0]
    pooled = np.concatenate([sim_final, last])
    sq = (pooled * pooled).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0.0))
    rows = np.arange(c)

    def energy(a, b):
        return 2 * dist[np.ix_(a, b)].mean() - dist[np.ix_(a, a)].mean() - dist[np.ix_(b, b)].mean()

    observed = energy(rows, rows + c)
    floor = []
    for _ in range(SWAPS):
        swap = rng.random(c) < 0.5
        floor.append(energy(np.where(swap, rows + c, rows), np.where(swap, rows, rows + c)))
    return float(observed), np.asarray(floor)


def _max_ks(a: np.ndarray, b: np.ndarray) -> float:
    """max over coordinates of the two-sample KS distance."""
    out = 0.0
    for i in range(a.shape[1]):
        x, y = np.sort(a[:, i]), np.sort(b[:, i])
        grid = np.concatenate([x, y])
        fa = np.searchsorted(x, grid, side="right") / x.size
        fb = np.searchsorted(y, grid, side="right") / y.size
        out = max(out, float(np.abs(fa - fb).max()))
    return out
