"""Verdicts: whether a simulated statistic agrees with its prediction, by a stated test.

Every row of the comparison table carries one of three verdicts:

- `agrees` / `disagrees`: the row's statistic passed / failed its test;
- `no prediction`: the theory says nothing this model's assumptions allow (the row says why).

The tests (docs/theory.md, "Verdicts"):

- a mean against a predicted value: `z = (simulated − predicted) / sqrt(se² + se_pred²)`, with `se`
  the Monte Carlo standard error of the simulated mean (and of the prediction, where it is itself
  estimated by sampling); agrees when `|z| ≤ Z_THRESHOLD`;
- a distance between samples and a law: agrees when it is at most the Monte Carlo floor (the same
  distance for samples of the same size drawn from the law itself) plus `Z_THRESHOLD` standard
  deviations of that floor;
- an exact identity (a fraction that must be 1): agrees when it holds to rounding.

A threshold of 3 standard errors keeps the false-alarm rate of one row at 0.3% for a Gaussian
statistic. It measures Monte Carlo error only: a disagreement can also mean a discretization bias
(reduce dt) or a run too short to reach the stationary law (more steps).
"""

from __future__ import annotations

import math

Z_THRESHOLD = 3.0

AGREES = "agrees"
DISAGREES = "disagrees"
NO_PREDICTION = "no prediction"


def by_z(simulated: float, error: float | None, predicted: float, predicted_error: float = 0.0) -> tuple[str, str]:
    """The z-test of a mean against its prediction: (verdict, why)."""
    scale = math.sqrt((error or 0.0) ** 2 + predicted_error**2)
    if not (math.isfinite(simulated) and math.isfinite(predicted)):
        return DISAGREES, "not finite"
    if scale == 0.0:
        same = abs(simulated - predicted) <= 1e-9 * max(abs(predicted), 1.0)
        return (AGREES if same else DISAGREES), "no Monte Carlo error: compared to rounding"
    z = (simulated - predicted) / scale
    verdict = AGREES if abs(z) <= Z_THRESHOLD else DISAGREES
    return verdict, f"|z| = {abs(z):.2g} {'≤' if verdict == AGREES else '>'} {Z_THRESHOLD:g}"


def by_floor(distance: float, floor_mean: float, floor_sd: float) -> tuple[str, str]:
    """A distance against its Monte Carlo floor: (verdict, why)."""
    limit = floor_mean + Z_THRESHOLD * floor_sd
    if not math.isfinite(distance):
        return DISAGREES, "not finite"
    verdict = AGREES if distance <= limit else DISAGREES
    return verdict, f"{distance:.3g} {'≤' if verdict == AGREES else '>'} floor + {Z_THRESHOLD:g} sd = {limit:.3g}"


def by_permutation(distance: float, floor) -> tuple[str, str]:
    """A distance against its permutation floor (the distances of the relabelled samples, an
    exact null distribution): agrees unless the permutation p-value, (1 + #floor ≥ distance) /
    (1 + #floor), is at most the single row's false-alarm rate (0.27%, as |z| > 3)."""
    if not math.isfinite(distance):
        return DISAGREES, "not finite"
    n = len(floor)
    p = (1 + sum(1 for f in floor if f >= distance)) / (1 + n)
    alpha = math.erfc(Z_THRESHOLD / math.sqrt(2.0))
    verdict = AGREES if p > alpha else DISAGREES
    return verdict, f"permutation p = {p:.3g} {'>' if verdict == AGREES else '≤'} {alpha:.2g} ({n} permutations)"


def exact(holds: bool, detail: str) -> tuple[str, str]:
    """An identity that must hold to rounding: (verdict, why)."""
    return (AGREES if holds else DISAGREES), detail


def _tail_z(p_two_sided: float) -> float:
    """The z with P(|N(0, 1)| > z) = p (bisection on erfc: no scipy at run time)."""
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.erfc(mid / math.sqrt(2.0)) > p_two_sided else (lo, mid)
    return 0.5 * (lo + hi)


def family_threshold(tests: int) -> float:
    """The |z| threshold for the largest of `tests` independent z-scores that keeps the row's
    false-alarm rate at that of one z-test at Z_THRESHOLD (Bonferroni): 3 for one test, 3.8 for 20."""
    return _tail_z(math.erfc(Z_THRESHOLD / math.sqrt(2.0)) / max(tests, 1))


def by_max_z(z_scores) -> tuple[str, str]:
    """Several z-scores in one row (one per generator): the largest |z| against the family-wise
    threshold (`family_threshold`)."""
    zs = [abs(float(z)) for z in z_scores]
    if not zs:
        return NO_PREDICTION, "nothing to test"
    if not all(math.isfinite(z) for z in zs):
        return DISAGREES, "not finite"
    limit = family_threshold(len(zs))
    worst = max(zs)
    verdict = AGREES if worst <= limit else DISAGREES
    family = f" (family of {len(zs)}, Bonferroni)" if len(zs) > 1 else ""
    return verdict, f"max |z| = {worst:.2g} {'≤' if verdict == AGREES else '>'} {limit:.2g}{family}"


def counts(verdicts) -> dict[str, int]:
    """How many rows agree, disagree, and have no prediction."""
    verdicts = list(verdicts)
    return {key: sum(v == key for v in verdicts) for key in (AGREES, DISAGREES, NO_PREDICTION)}


def summary_line(tally: dict[str, int]) -> str:
    """E.g. `verdicts: 3 agree, 1 disagrees, 2 without prediction`."""
    agree, disagree = tally.get(AGREES, 0), tally.get(DISAGREES, 0)
    return (
        f"verdicts: {agree} {'agrees' if agree == 1 else 'agree'}, "
        f"{disagree} {'disagrees' if disagree == 1 else 'disagree'}, "
        f"{tally.get(NO_PREDICTION, 0)} without prediction"
    )
