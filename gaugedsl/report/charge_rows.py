"""The rows of a recorded `charge(S)`: per-particle tests of what docs/theory.md P2–P4 say about
the charges, where the action's structure (`action.ActionFacts`) and the dynamics make the
proposition apply; a row without prediction, and why, everywhere else.

Each test is on per-particle quantities: an ensemble mean of the charges can be 0 at every time
by the symmetry of the initial law alone (u, v i.i.d.), whatever the dynamics.

- P2 (discrete (S)GD map, or the Euler step of gradient flow, on u ⊙ v pairs): c' = c(1 − lr² g²)
  per step, so |χ_a| never grows: exact, to rounding.
- P4 (projected noise, rescalings θ_j ↦ θ_j e^{±a} integrated by the charge keeper): the charge
  ODE dχ_a/dt = T(tr A_a − 2χ_a/G_aa) is integrated exactly, so per particle |χ_a| never grows
  and keeps its sign where tr A_a = 0, and χ_a only moves in the direction of tr A_a elsewhere
  (|2χ_a/G_aa| ≤ 1 ≤ |tr A_a|): exact, to rounding.
- P3 (isotropic noise, linear generators whose charges' gradients are generators): χ_a − T tr(A_a) t
  is a martingale, so the per-particle increments have mean T tr(A_a) t: a z-test per generator, family-wise.

Rounding tolerance of the exact tests: each step rounds every coordinate (relative error ≤ eps,
a few operations each), moving χ_a = ½Σ m_j θ_j² by at most a few eps·G_aa; over the n steps
between two records that is at most `_ROUNDING_STEPS_FACTOR · n · eps · G_aa`, with G_aa bounded by
its larger value at the two ends of the run (times `_ROUNDING_GRAM_MARGIN` for excursions between).
Under noise, G_aa is at least its value with every coordinate at `_ROUNDING_NOISE_SIGMAS` noise
increments, 6 sqrt(2T dt): a particle that is near a degenerate orbit at both ends of the run (G_aa
~ 1e-7 there) is still moved that far by each step, and its charge rounds at that scale (measured:
the diagonal net, float32, 64 particles to t = 120, at 5 of 15 (T, seed) points one or two of the
614,400 intervals grew, by up to ~2,000 eps·G_aa of the records, with χ ~ 1e-10 and G_aa ~ 1e-6
there; at T = 0.1, dt = 2.5e-3 the floor is G_aa = 0.036, a few percent of a unit coordinate's).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..geometry import Geometry
from ..kinds import NOISES
from . import verdict
from .action import ActionFacts, balanced_rates

_ROUNDING_STEPS_FACTOR = 4.0
_ROUNDING_GRAM_MARGIN = 4.0
_ROUNDING_NOISE_SIGMAS = 6.0


@dataclasses.dataclass
class ChargeContext:
    """What the charge rows need from the run."""

    dynamics: str
    noise: str | None  # the noise that acts on θ: None for a discrete map without a kick
    solver: str
    dtype: str
    T: float
    dt: float
    keeper: bool  # the projected-noise SDE integrates the charge ODE (gauge.ChargeKeeper)
    theta0: np.ndarray  # (N, D), healthy particles
    theta: np.ndarray
    geo: Geometry


def charge_rows(label: str, values: np.ndarray, steps: np.ndarray, facts: ActionFacts, ctx: ChargeContext):
    """The rows of one recorded `charge(S)`: values (R, N, ...) at record steps (R,)."""
    from .compare import Row

    chi = np.asarray(values, np.float64).reshape(values.shape[0], values.shape[1], -1)
    sizes = np.abs(chi).mean(axis=(1, 2))
    reference = (
        f"mean per-particle |{label}_a|: {sizes[0]:.3g} at step {steps[0]} → {sizes[-1]:.3g} at step {steps[-1]}"
    )

    def none(why: str) -> list:
        return [Row(f"mean |{label}_a| per particle", float(sizes[-1]), note=reference, why=f"no prediction: {why}")]

    if facts.linear is None:
        return none("the action is too large to analyse its generators")
    if not facts.linear:
        return none("the action is not linear (ξ_a ≠ A_a θ): P1–P4 assume linear generators")
    if facts.vanishing:
        return none("the generators are antisymmetric (rotations): χ_a = ½⟨θ, A_a θ⟩ vanishes identically")
    if facts.curved:
        return none(
            "the symmetry moves constrained parameters (Sphere, Stiefel; Positive under a non-diagonal action) "
            "whose retraction or reflection moves χ_a outside P2–P4"
        )
    if not facts.closed:
        return none(
            "∇χ_a = sym(A_a) θ is not a combination of the generators, so the gradient and the noise move χ_a "
            "(P1–P4 do not apply)"
        )
    discrete = ctx.dynamics in ("sgd", "gd") or (ctx.dynamics == "sde" and ctx.noise is None and ctx.solver == "euler")
    if discrete and ctx.noise is None:
        if facts.pairs:
            return [_p2(label, chi, steps, facts, ctx, reference)]
        return none(
            "P2's general form c' = c + lr²(‖∂_W ℓ‖² − ‖∂_V ℓ‖²) has no sign here: a generator moves more than "
            "one coordinate up against one down"
        )
    if ctx.dynamics == "quotient":
        return none(
            "dynamics = quotient integrates on the gauge slice itself: the charges stay at their slice values by "
            "construction, so a row on them could not fail"
        )
    if ctx.dynamics != "sde":
        return none(
            "a discrete map with a noise kick: each step moves χ_a by ½⟨Δθ, A_a Δθ⟩, of either sign "
            "(P2 with the kick included)"
        )
    kind = NOISES.get(ctx.noise) if ctx.noise is not None else None
    if kind is None:
        return none(
            f"gradient flow integrated with solver = {ctx.solver}: χ_a changes by its discretization error, "
            "which has no stated bound"
        )
    if kind.martingale_charges:
        return [_p3(label, chi, steps, facts, ctx, reference)]
    if kind.horizontal:
        if facts.diagonal_unit and ctx.keeper:
            return _p4_keeper(label, chi, steps, facts, ctx, reference)
        return none(_p4_elsewhere(facts, ctx))
    return none(kind.charge_note or f"{kind.name} noise: no law of the charges is stated for it")


def _rounding(chi: np.ndarray, steps: np.ndarray, facts: ActionFacts, ctx: ChargeContext) -> np.ndarray:
    """Tolerance (R − 1, N, k) of the exact tests (module docstring)."""
    eps = float(np.finfo(np.dtype(ctx.dtype)).eps)
    if facts.owner is not None:
        gram = np.maximum(facts.gram_diag(ctx.theta0), facts.gram_diag(ctx.theta))
        if ctx.T > 0:  # a particle near a degenerate orbit at both ends still moves ~sqrt(2T dt) per step
            reach = _ROUNDING_NOISE_SIGMAS * np.sqrt(2 * ctx.T * ctx.dt)
            gram = np.maximum(gram, facts.gram_diag(np.full((1, ctx.theta.shape[1]), reach)))
    else:
        gram = np.full(chi.shape[1:], 2 * float(np.abs(chi).max()))
    n = np.diff(steps).astype(np.float64)[:, None, None]
    return _ROUNDING_STEPS_FACTOR * eps * (n + 1) * _ROUNDING_GRAM_MARGIN * gram[None]


def _exact_row(quantity: str, ok: np.ndarray, source: str, note: str):
    from .compare import Row

    total, bad = ok.size, int(ok.size - ok.sum())
    frac = float(ok.mean()) if total else 1.0
    v, why = verdict.exact(bad == 0, f"exact to rounding: {bad} of {total} per-particle record intervals break it")
    return Row(quantity, frac, predicted=1.0, source=source, note=note, verdict=v, why=why)


def _p2(label, chi, steps, facts, ctx, reference):
    tol = _rounding(chi, steps, facts, ctx)
    ok = np.abs(chi[1:]) <= np.abs(chi[:-1]) + tol
    note = f"(S)GD on u ⊙ v pairs: c' = c(1 − lr² g²) per step; {reference}"
    return _exact_row(f"fraction of |{label}_a| not grown (per particle)", ok, "P2", note)


def _p4_keeper(label, chi, steps, facts, ctx, reference):
    tol = _rounding(chi, steps, facts, ctx)
    before, after = chi[:-1], chi[1:]
    traces = np.round(facts.traces).astype(int)
    rows = []
    rest = traces == 0
    if rest.any():
        grown = np.abs(after) > np.abs(before) + tol
        flipped = (np.sign(after) != np.sign(before)) & (np.abs(before) > tol) & (np.abs(after) > tol)
        ok = ~(grown | flipped)[..., rest]
        note = f"projected noise, tr A_a = 0: dχ_a/dt = −2T χ_a/G_aa, integrated exactly; {reference}"
        rows.append(_exact_row(f"fraction of |{label}_a| not grown, sign kept (per particle)", ok, "P4", note))
    if (~rest).any():
        direction = np.sign(traces)[None, None, :]
        ok = (direction * (after - before) >= -tol)[..., ~rest]
        shown = sorted(set(traces[~rest].tolist()))
        note = (
            f"projected noise, tr A_a = {', '.join(map(str, shown))} ≠ 0 (unequal sides): "
            f"dχ_a/dt = T(tr A_a − 2χ_a/G_aa) has the sign of tr A_a, no rest point at 0; {reference}"
        )
        rows.append(_exact_row(f"fraction of {label}_a moving with tr A_a (per particle)", ok, "P4", note))
    return rows


def _p4_elsewhere(facts: ActionFacts, ctx: ChargeContext) -> str:
    """Why a projected-noise charge row has no prediction, from the drift T tr(A_a P_H) at
    balanced points of the final states (zero there: χ = 0 is a rest point)."""
    keeper = ctx.keeper and facts.diagonal_unit
    integrator = "the charge keeper" if keeper else "Euler–Maruyama, whose charge steps fluctuate by O(dt)"
    try:
        rates = balanced_rates(ctx.geo, facts, ctx.theta, ctx.T)
    except Exception as exc:  # an analysis that fails must not cost the run its table
        rates, failure = None, f"{type(exc).__name__}"
    else:
        failure = "no final state could be balanced"
    if rates is None:
        return f"dχ_a = T tr(A_a P_H) dt (P4) could not be evaluated on the slice ({failure})"
    size = float(np.abs(rates).max())
    scale = ctx.T * max(1.0, float(np.abs(facts.traces).max()) if facts.traces is not None else 1.0)
    if size > 1e-3 * scale:
        return (
            f"no rest point at χ = 0: dχ_a/dt = T tr(A_a P_H) reaches {size:.3g} on the balanced slice of the final "
            f"states (P4); the charges drift"
        )
    if facts.diagonal_unit:
        return (
            "χ = 0 is a rest point (dχ_a/dt = −2T χ_a/G_aa, P4), but the run integrates it by Euler–Maruyama "
            "(no charge keeper for this model's joint action), whose charge steps fluctuate by O(dt) without a "
            "stated bound"
        )
    return (
        f"χ = 0 is a rest point (T tr(A_a P_H) vanishes on the balanced slice, P4), but P4 gives no per-charge decay "
        f"law where generators share coordinates, and the run integrates χ by {integrator}"
    )


def _p3(label, chi, steps, facts, ctx, reference):
    from .compare import Row

    n = chi.shape[1]
    t = float(steps[-1] - steps[0]) * ctx.dt
    increments = chi[-1] - chi[0]  # (N, k), per particle
    predicted = ctx.T * np.asarray(facts.traces, np.float64) * t
    mean = increments.mean(axis=0)
    se = increments.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full_like(mean, np.nan)
    z = np.where(se > 0, (mean - predicted) / np.where(se > 0, se, 1.0), np.where(mean == predicted, 0.0, np.inf))
    worst = int(np.argmax(np.abs(z)))
    v, why = verdict.by_max_z(z)
    k = z.size
    quantity = f"E[Δ{label}_a] per particle, start → end" + (f" (worst of {k})" if k > 1 else "")
    note = f"isotropic noise: χ_a − T tr(A_a) t is a martingale, predicted T tr(A_a)·t; {reference}"
    simulated, error, expected = float(mean[worst]), float(se[worst]), float(predicted[worst])
    return Row(quantity, simulated, error, expected, source="P3", note=note, verdict=v, why=why)
