"""An independent sampler of the predicted stationary law on the gauge slice (docs/theory.md §2,
P4–P6, §9.1–9.2), to set beside the simulation.

Under projected noise with the charges at rest, the stationary law is `exp(−L/T)` times the
slice's surface measure for torus actions, and `exp(−L/T)` times the quotient volume for a GL(r)
factorization (`gl_chart.GLChart`, docs/theory.md §9.1(d); its `log_volume` carries it). In the coordinates s of a `SliceChart` its log-density is

    log p(s) = −L(φ(s; σ))/T + log_volume(s)            (lines: log_volume is constant)

on the line (sign pattern σ) a particle keeps. The ensemble's law is the mixture over the
particles' patterns, so we run one chain per particle (a random subset of at most `chains`
particles, weights equal), each with its particle's σ, started from the particle's own slice point.

The sampler is BlackJAX's NUTS with window adaptation (step size and a diagonal mass matrix), one
adaptation per chain, vmapped over chains. NUTS rather than MALA: the slice laws here are
anisotropic (stiff along the data, loose along the zero-loss set, |w|^(−1/2)-like near the origin
in w but smooth in s) and NUTS' trajectory length adapts to that without hand tuning; MALA would
need many more steps per independent draw in the loose directions.

Parameters on `Positive` are sampled in r = log s (with the Jacobian r added to the log-density).
Everything is a pure function of the seed: same seed, same draws.

Errors: the chains are independent and each carries its particle's pattern, so the chain means
are independent draws of a mixture mean; the standard error of the mixture mean is the spread of
the chain means over √chains (batch means with one batch per chain). It accounts for the
autocorrelation within chains and for the sampling of the patterns alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, cast

import jax
import jax.numpy as jnp
import numpy as np

from .chart import ChartUnavailable, SliceChart, TorusForm
from .engine import Geometry
from .gl_chart import GLChart, gl_chart_applies
from .law import LawUnavailable

INSTALL_HINT = "the predicted law of a vector predictor needs BlackJAX: pip install blackjax (in a clone of gaugedsl: pip install -e '.[law]')"


@dataclasses.dataclass(frozen=True)
class SliceSample:
    """Draws of the predicted law: `theta` (chains, draws, D) on the slice, the particle each chain
    follows (`particles`, indices into the ensemble) and its pattern `sigma` (chains, D)."""

    theta: np.ndarray
    particles: np.ndarray
    sigma: np.ndarray
    T: float
    potential: str  # "corrected" (the predicted law) or "gibbs" (exp(−L/T) dw, without the correction)
    acceptance: float  # mean NUTS acceptance over the draws
    step_size: np.ndarray  # adapted per chain
    start: np.ndarray  # (chains, chart dimension): the chains' starting slice coordinates
    end: np.ndarray | None = (
        None  # (chains, chart dimension): the chains' last states, in the sampler's own coordinates
    )

    @property
    def chains(self) -> int:
        return self.theta.shape[0]


def charges_at_rest(geo: Geometry) -> str | None:
    """None when projected noise brings every charge to rest at 0 (every generator traceless:
    Σ_j M_aj = 0); otherwise why not (the charges drift: no stationary law on the slice)."""
    form = TorusForm.detect(geo)
    if form is None:
        return "the symmetries do not act by rescaling coordinates"
    traces = form.exponents.sum(axis=1)
    bad = np.flatnonzero(np.abs(traces) > 1e-6)
    if bad.size:
        return (f"generator {int(bad[0])} is not traceless (Σ_j M_aj = {traces[bad[0]]:.3g}): projected noise moves "
                "its charge at a constant rate, so there is no stationary law on the slice")  # fmt: skip
    return None


def chart_for(geo: Geometry) -> SliceChart | GLChart:
    """The slice chart (the quotient chart for a GL(r) factorization), or `LawUnavailable` saying
    why there is no law to sample."""
    if gl_chart_applies(geo):
        try:
            return GLChart(geo)
        except ChartUnavailable as exc:
            raise LawUnavailable(f"no chart of the quotient: {exc}") from None
    why = charges_at_rest(geo)
    if why is not None and TorusForm.detect(geo) is not None:  # the more basic reason: no rest point at all
        raise LawUnavailable(f"the charges drift: {why}")
    try:
        return SliceChart(geo)
    except ChartUnavailable as exc:
        raise LawUnavailable(f"no chart of the gauge slice: {exc}") from None


def sample_slice_law(
    geo: Geometry,
    loss: Callable,
    T: float,
    theta0,
    *,
    chart: SliceChart | GLChart | None = None,
    chains: int = 256,
    warmup: int = 250,
    draws: int = 25,
    thin: int = 4,
    seed: int = 0,
    dtype=None,
    potential: str = "corrected",
    predictor: Callable | None = None,
    max_doublings: int = 6,
    resume: SliceSample | None = None,
) -> SliceSample:
    """Samples the predicted law for the particles started at `theta0` (N, D).

    `loss(θ)` is the training loss of the flat θ. `potential="gibbs"` samples instead the plain
    Gibbs law `exp(−L(w)/T) dw` of the predictor, `predictor(θ)` (flat), which must have as many
    entries as the chart has coordinates (the chart density times |det ∂w/∂s|): the law the gauge
    correction is measured against. `resume` continues the chains of an earlier sample (same
    particles, patterns and potential) from their last states, with a fresh adaptation: a second
    look for chains that were still on their way. Raises `LawUnavailable` when no law applies,
    `ImportError` (with how to install it) without BlackJAX.
    """
    try:
        import blackjax
        from blackjax.adaptation.base import get_filter_adapt_info_fn
        from blackjax.mcmc.hmc import HMCState
        from blackjax.mcmc.nuts import NUTSInfo
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    chart = chart if chart is not None else chart_for(geo)
    dtype = dtype or jnp.zeros(()).dtype
    positive = chart.positive
    if resume is not None and resume.end is not None:
        picked, sigma, s0, q0 = resume.particles, resume.sigma, resume.start, resume.end
    else:
        theta0 = np.asarray(theta0, np.float64).reshape(-1, geo.dimension)
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(theta0.shape[0], size=min(chains, theta0.shape[0]), replace=False))
        on_slice = np.asarray(jax.vmap(geo._project_to_slice)(jnp.asarray(theta0[picked], dtype)), np.float64)
        sigma = chart.signs(on_slice)
        s0 = chart.coordinates(on_slice)
        if np.any(s0[:, positive] <= 0):
            raise LawUnavailable("a particle's slice point has a non-positive coordinate on `Positive`")
        q0 = np.where(positive, np.log(np.where(positive, s0, 1.0)), s0)
    if potential == "gibbs" and isinstance(chart, GLChart):
        pass  # exp(−L/T) times the volume the rank-r matrices inherit from R^{m×n}
    elif potential == "gibbs":
        if predictor is None or not chart.all_lines:
            raise LawUnavailable("the uncorrected Gibbs law is sampled for line charts with a predictor given")
        size = int(np.size(jax.eval_shape(predictor, jnp.zeros(geo.dimension, dtype))))
        if size != chart.dimension:
            raise LawUnavailable(f"the predictor has {size} entries, the slice {chart.dimension} coordinates: "
                                 "exp(−L/T) dw has no density on the slice")  # fmt: skip
    pos = jnp.asarray(positive)

    def coordinates(q):
        return jnp.where(pos, jnp.exp(q), q)

    def logdensity(q, sig):
        s = coordinates(q)
        theta = chart.loss_point(s, sig)
        lp = -loss(theta) / T + jnp.sum(jnp.where(pos, q, 0.0))
        if potential == "gibbs" and isinstance(chart, GLChart):
            return lp + chart.gibbs_log_volume(s)
        if potential == "gibbs":
            pred = predictor
            assert pred is not None  # checked above
            jac = jax.jacfwd(lambda x: jnp.ravel(pred(chart.embed(x, sig))))(s)
            return lp + jnp.linalg.slogdet(jac)[1]
        return lp + chart.log_volume(s)

    total = draws * thin

    def one_chain(key, q, sig):
        def ld(x):
            return logdensity(x, sig)

        k_warm, k_draw = jax.random.split(key)
        adapt = blackjax.window_adaptation(blackjax.nuts, ld, adaptation_info_fn=get_filter_adapt_info_fn(),
                                           max_num_doublings=max_doublings)  # fmt: skip
        # BlackJAX's RunFn protocol declares (rng_key, position) only; window_adaptation's run takes num_steps
        run_adaptation: Callable[..., Any] = adapt.run
        params: dict[str, Any]  # the tuned step size and mass matrix, NUTS' keyword arguments
        (state, params), _ = run_adaptation(k_warm, q, num_steps=warmup)
        kernel = blackjax.nuts(ld, **params)  # params carry max_num_doublings from the adaptation

        def step(st, k):
            st, info = kernel.step(k, st)
            # NUTS' state and info (BlackJAX's step is typed with their base classes)
            st, info = cast(HMCState, st), cast(NUTSInfo, info)
            return st, (st.position, info.acceptance_rate)

        last, (qs, acc) = jax.lax.scan(step, state, jax.random.split(k_draw, total))
        qs = cast(jax.Array, qs)  # BlackJAX types a position as any pytree; ours is one array
        return qs[thin - 1 :: thin], jnp.mean(acc), params["step_size"], cast(HMCState, last).position

    # the chains in the run's precision: BlackJAX's adapted step sizes follow JAX's default float
    with jax.enable_x64(np.dtype(dtype) == np.float64):
        key = jax.random.PRNGKey(seed)
        keys = jax.random.split(key if resume is None else jax.random.fold_in(key, 1), len(picked))
        run = jax.jit(jax.vmap(one_chain))
        qs, acc, step, end = run(keys, jnp.asarray(q0, dtype), jnp.asarray(sigma, dtype))
        embed = jax.jit(jax.vmap(jax.vmap(lambda q, sig: chart.embed(coordinates(q), sig), (0, None))))
        theta = np.asarray(embed(qs, jnp.asarray(sigma, dtype)))
    return SliceSample(theta, picked, sigma, float(T), potential, float(np.mean(acc)), np.asarray(step), s0,
                       np.asarray(end))  # fmt: skip


def not_normalisable(sample: SliceSample, chart: SliceChart | GLChart) -> str | None:
    """Why the chains look like they drift off to infinity (the law is not normalisable), or None.

    Chains that ran off by orders of magnitude (median |s| over 10⁴ times its start, at least 1) are
    flagged at once. Otherwise each chain's mean |s| over the first and second half of its draws: for a stationary law
    the second half exceeds the first in about half the chains (binomial, sd ½/√chains); chains
    drifting off exceed it in nearly all, and by a growing factor. Flagged when the fraction is
    over ½ + 4 sd and the median growth is over 10%."""
    s = chart.coordinates(sample.theta.reshape(-1, sample.theta.shape[-1]))
    norm = np.linalg.norm(s[:, _radial(chart)], axis=-1).reshape(sample.theta.shape[:2])
    half = norm.shape[1] // 2
    first, second = norm[:, :half].mean(1), norm[:, half:].mean(1)
    if not np.all(np.isfinite(norm)):
        return "chains reached non-finite points"
    scale = max(float(np.median(np.linalg.norm(sample.start[:, _radial(chart)], axis=-1))), 1.0)
    if np.median(norm) > 1e4 * scale:
        return (f"the chains ran off to |s| ~ {np.median(norm):.2g}, from |s| ~ {scale:.2g} at the start: "
                "exp(−L/T) on the slice does not decay along the zero-loss set")  # fmt: skip
    frac = float(np.mean(second > first))
    growth = float(np.median(second / np.maximum(first, 1e-300)))
    limit = 0.5 + 4 * 0.5 / np.sqrt(norm.shape[0])
    if frac > limit and growth > 1.1:
        return (f"|s| keeps growing along the chains ({frac:.0%} of {norm.shape[0]} chains grow from the first to the "
                f"second half of their draws, median ×{growth:.2f}): exp(−L/T) on the slice does not decay along "
                "the zero-loss set")  # fmt: skip
    return None


def _radial(chart: SliceChart | GLChart) -> np.ndarray:
    """The chart coordinates that measure distance from the origin (not a pair's auxiliary z)."""
    keep = np.ones(chart.dimension, bool)
    if isinstance(chart, GLChart):  # its coordinates have no pair components
        return keep
    for i, c in enumerate(chart.components):
        if c.kind == "pair":
            up, down = c.blocks()
            keep[chart.starts[i] + up.size : chart.starts[i] + up.size + down.size] = False
    return keep
