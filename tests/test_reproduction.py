"""The paper's SGD experiments E1–E3 (docs/theory.md §5, acceptance bands §6 P9) reproduced with the
example programs through the public API (`gaugedsl.load(path).run(...)`, what `gaugedsl run`
does); docs/reproduction.md reports the numbers and the commands.

CI runs shortened versions that assert the direction of each effect: the ratios contract
towards 1 from the paper's deliberately unbalanced start, and (E1) the charges stay put while
they do, so the contraction is the units' growth and not a noise effect. The full versions —
the paper's step counts, 5 seeds as one vmapped ensemble, the bands of docs/reproduction.md —
are marked slow (`pytest --runslow`).

Every run is made in 32-bit mode, exactly as the documented commands (the dtype changes the
draws; the path and the folder do not, docs/language.md §12.3).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import gaugedsl

ROOT = Path(__file__).resolve().parent.parent


def simulate(name: str, **overrides):
    """`gaugedsl run examples/NAME.gauge [--particles N] [--steps N]` from the repository root."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        with jax.enable_x64(False):  # the suite runs in 64-bit mode; the documented runs do not
            result = gaugedsl.load(f"examples/{name}.gauge").run(**overrides)
    assert result.result.healthy.all(), f"{name}: a particle diverged"
    return result


@pytest.fixture
def run():
    return simulate


# One shortened run per experiment, shared by its CI tests (each run costs ~10 s of building and
# compiling before its first step).


@pytest.fixture(scope="module")
def e1_short():
    return simulate("e1_relu", steps=6000)


@pytest.fixture(scope="module")
def e2_short():
    return simulate("e2_attention", particles=3, steps=10000)


@pytest.fixture(scope="module")
def e3_short():
    return simulate("e3_matrix_completion", particles=2, steps=100000)


def at(result, label: str, step: int) -> np.ndarray:
    """The record `label` at `step`: shape (particles, *shape)."""
    steps = result.steps[label]
    i = int(np.searchsorted(steps, step))
    assert i < len(steps) and steps[i] == step, f"{label} is not recorded at step {step}"
    return result.records[label][i]


def log_spread(ratios: np.ndarray) -> np.ndarray:
    """Per particle, the median over units of |log ratio| (0 = all balanced)."""
    return np.median(np.abs(np.log(ratios)), axis=-1)


# ---- E1: shallow ReLU, per-neuron balancing ---------------------------------------------


def test_e1_starts_as_unbalanced_as_the_paper(e1_short):
    # unbalance_vw(1.2) on N(0, 0.05²) weights: the paper's logged start (step 10) spans
    # [0.0018, 3.6], a factor 2000. Each seed must span at least a factor 100 (the least
    # unbalanced of our 5 seeds spans 380: the spread depends on the draw of W, V), and the
    # ensemble at least the paper's factor.
    r = at(e1_short, "ratio", 10)
    width = r.max(axis=1) / r.min(axis=1)
    assert np.all(width > 100), width
    assert r.max() / r.min() > 2000


def test_e1_ratios_contract_while_the_charges_stay_put(e1_short):
    # 6,000 of the paper's 40,000 steps: the units have started to grow (the loss falls from
    # ~65 to its first plateau between steps 3,000 and 6,000). Each seed's median |log ratio|
    # falls; how far by step 6,000 depends on the draw (units that have not grown yet keep their
    # ratio, docs/theory.md §9.4), so it is read over the 5 seeds: every seed at least 2-fold and
    # their median at least 4-fold. (Draws keyed by site name, issue 17: 1.27–1.71 → 0.028–0.50,
    # 3.4- to 53-fold, median 4.6; the earlier path-keyed draws: 1.0–1.9 → 0.046–0.21.) Every
    # charge c_j = ½(‖W_j‖² − V_j²) moves by less than 1% of the largest (measured: 0.15–0.6%):
    # SGD changes c_j by η²(‖∂_W ℓ‖² − ‖∂_V ℓ‖²) per step (P2), η² = 2.5e-9. So the ratios
    # reach 1 because ratio² = 1 − 2c_j/‖W_j‖² and ‖W_j‖ grows — not through noise.
    res = e1_short
    start, end = at(res, "ratio", 10), at(res, "ratio", 6000)
    factor = log_spread(start) / log_spread(end)
    assert np.all(factor > 2) and np.median(factor) > 4, (log_spread(start), log_spread(end))
    c0, c1 = at(res, "charge_neurons", 0), at(res, "charge_neurons", 6000)
    assert np.max(np.abs(c1 - c0)) < 0.01 * np.max(np.abs(c0))
    # Growth: every seed's median unit size |V_j|·‖W_j‖ (invariant under the symmetry) grew,
    # 4- to 50-fold by step 6,000 in the full runs; asserted: 3-fold.
    p0, p1 = at(res, "path", 0), at(res, "path", 6000)
    assert np.all(np.median(p1, axis=1) > 3 * np.median(p0, axis=1))


def test_e1_activity_records_see_every_unit_fire_on_about_half_the_inputs(e1_short):
    # A bias-free ReLU fed N(0, I) inputs fires on half of them whatever its weights: no unit
    # can die in the ReLU sense; starved units show up in grad_norm instead. 1024 probe inputs:
    # binomial sd 0.016, so [0.42, 0.58] is 5 sd.
    active = at(e1_short, "active_fraction", 6000)
    assert np.all((active > 0.42) & (active < 0.58)), active
    assert np.all(at(e1_short, "grad_norm", 6000) > 0)


# ---- E2: single-head attention, Q/K column balancing -------------------------------------


def test_e2_column_ratios_and_norm_ratios_contract(e2_short):
    # 10,000 of the paper's 50,000 steps, 3 seeds: the full runs (5 seeds) go from a median
    # |log ratio| of 1.2–1.6 to 0.21–0.34 and a Frobenius ratio of 0.31–0.63 to 0.70–0.90 by
    # then. Asserted: a 3-fold contraction of the columns and a 2-fold one of |log| of both
    # matrix ratios.
    res = e2_short
    start, end = at(res, "column_ratio", 0), at(res, "column_ratio", 10000)
    assert np.all(log_spread(end) < log_spread(start) / 3), (log_spread(start), log_spread(end))
    for label in ("frobenius_ratio", "nuclear_ratio"):
        a, b = np.abs(np.log(at(res, label, 0))), np.abs(np.log(at(res, label, 10000)))
        assert np.all(b < a / 2), (label, a, b)
    c0, c1 = at(res, "charge_columns", 0), at(res, "charge_columns", 10000)
    assert np.max(np.abs(c1 - c0)) < 0.02 * np.max(np.abs(c0))  # again growth, not noise


# ---- E3: low-rank matrix completion -------------------------------------------------------


def test_e3_mode_ratios_contract_and_the_top_modes_grow(e3_short):
    # 100,000 of the paper's 500,000 steps, 2 seeds: the top mode energy 2σ₁(PQ) goes from
    # ~1 to 3.4–4.4 and the per-mode ratios ‖P[:, i]‖/‖Q[i, :]‖ contract by 25–35% in median
    # |log| (full runs). Asserted: energy ×2, contraction ≥ 15%, and the widest mode tighter.
    res = e3_short
    start, end = at(res, "mode_ratio", 0), at(res, "mode_ratio", 100000)
    assert np.all(log_spread(end) < 0.85 * log_spread(start)), (log_spread(start), log_spread(end))
    assert np.all(np.abs(np.log(end)).max(axis=1) < np.abs(np.log(start)).max(axis=1))
    e0, e1 = at(res, "energy", 0), at(res, "energy", 100000)
    assert np.all(e1[:, 0] > 2 * e0[:, 0])


# ---- full runs (docs/reproduction.md) ------------------------------------------------------


@pytest.mark.slow
def test_e1_full(run):
    # The paper's 40,000 logged steps and its 500,000-step extension, 5 seeds.
    res = run("e1_relu", steps=500000)
    r40, r500 = at(res, "ratio", 40000), at(res, "ratio", 500000)
    # Band of docs/theory.md, P9: medians in [0.97, 1.03] at both times, for every seed.
    assert np.all(np.abs(np.median(r40, axis=1) - 1) < 0.03)
    assert np.all(np.abs(np.median(r500, axis=1) - 1) < 0.03)
    # At 500k every unit of every seed is in [0.9, 1.1] (none is starved for good).
    assert np.all(np.abs(r500 - 1) < 0.1), r500
    # At 40k, 8 of the 80 units are outside [0.9, 1.1] (listed in docs/reproduction.md with
    # their diagnostics). None is dead: each fires on about half the probe inputs. They are the
    # units that have not grown enough to swamp their conserved charge (ratio² = 1 − 2c_j/‖W_j‖²):
    # each is smaller than half its seed's median unit (|V_j|·‖W_j‖; the largest is at 0.30) and
    # less driven than the median unit (gradient norm; one, seed 2's unit 4, is starved at 0.2%).
    # Asserted as such, with every unit's charge within 7% of where it started (max: 6.3%).
    out = np.abs(r40 - 1) >= 0.1
    assert 0 < out.sum() <= 10
    active, path, grad = (at(res, label, 40000) for label in ("active_fraction", "path", "grad_norm"))
    median = lambda x: np.broadcast_to(np.median(x, axis=1, keepdims=True), x.shape)  # noqa: E731
    assert np.all((active[out] > 0.42) & (active[out] < 0.58))
    assert np.all(path[out] < 0.5 * median(path)[out])
    assert np.all(grad[out] < median(grad)[out])
    c0, c40 = at(res, "charge_neurons", 0), at(res, "charge_neurons", 40000)
    assert np.all(np.abs(c40 - c0).max(axis=1) < 0.07 * np.abs(c0).max(axis=1))


@pytest.mark.slow
def test_e2_full(run):
    # The paper's 50,000 logged steps and its 300,000-step extension, 5 seeds.
    res = run("e2_attention", steps=300000)
    cols = at(res, "column_ratio", 50000)
    for label in ("frobenius_ratio", "nuclear_ratio"):
        assert np.all(np.abs(at(res, label, 50000) - 0.985) < 0.035), label  # [0.95, 1.02]
    assert np.all(np.abs(np.median(cols, axis=1) - 1) < 0.03)
    # The paper band [0.9, 1.1] at 50k holds for all 8 columns in 3 of our 5 seeds; seeds 0 and
    # 2 have one column each just below (0.896, 0.899; the paper's saved run: 0.935, its CPU
    # rerun 0.948). By 300k every column of every seed is inside (0.959–1.018).
    assert np.sum(np.all(np.abs(cols - 1) < 0.1, axis=1)) >= 3
    assert np.all(np.abs(cols - 1) < 0.15)
    assert np.all(np.abs(at(res, "column_ratio", 300000) - 1) < 0.1)


@pytest.mark.slow
def test_e3_full(run):
    res = run("e3_matrix_completion")
    start, end = at(res, "mode_ratio", 0), at(res, "mode_ratio", 500000)
    # Per-mode ratios: the median |log| contracts 3- to 5-fold (to 0.21–0.32 of its start) and
    # the widest mode from 0.50–0.76 to 0.15–0.35. Asserted: 2-fold and narrower.
    assert np.all(log_spread(end) < 0.5 * log_spread(start))
    assert np.all(np.abs(np.log(end)).max(axis=1) < np.abs(np.log(start)).max(axis=1))
    # Mode energies 2σ_i(PQ) within 25% of the paper's reference (15, 5), every seed
    # (S₁ 14.7–16.8, S₂ 4.0–5.6).
    energy = at(res, "energy", 500000)
    assert np.all(np.abs(energy[:, :2] / np.array([15.0, 5.0]) - 1) < 0.25), energy[:, :2]
    # The caveat of docs/theory.md §5 E3 stays true: the unobserved entries are not recovered
    # (relative completion error 0.72–0.80).
    assert np.all(at(res, "completion_error", 500000) > 0.5)
    # Growth, not noise: the GL(20) charges ½(PᵀP − QQᵀ) move by 0.2–0.6% of the largest.
    c0, c1 = (at(res, "gl_charge", s).reshape(5, -1) for s in (0, 500000))
    assert np.all(np.abs(c1 - c0).max(axis=1) < 0.01 * np.abs(c0).max(axis=1))


# ---- the same models under the SDE noise models and without noise (slow) ------------------
# docs/reproduction.md, "Which noise balances". Each variant runs 5 seeds over the paper's time
# (E1 t = 2, E2 t = 50, E3 t = 500). Δc: the change of every charge over the run.


def charge_change(res, label):
    c = res.records[label]
    return c[0], c[-1] - c[0]


@pytest.mark.slow
def test_e1_noise_models(run):
    ratios = {}
    for variant in ("gd", "sde_sgd", "projected", "isotropic"):
        res = run(f"e1_relu_{variant}")
        c0, dc = charge_change(res, "charge_neurons")
        ratios[variant] = res.records["ratio"][-1]
        scale = np.abs(c0).max(axis=1, keepdims=True)
        if variant == "gd":
            # P1 up to P2's O(lr²): a GD step moves c_j by exactly lr²(‖∂_{W_j}L‖² − ‖∂_{V_j}L‖²),
            # so Σ_j |Δc_j| ≤ lr² Σ_k ‖∇L(θ_k)‖² ≤ lr (L_0 − L_K) / (1 − lr λ_max/2) by the
            # descent lemma; λ_max is 11 at the start and 30 at the end (power iteration), so
            # the correction is below 0.1% and 1.001 covers it. Measured: 8–24% of the bound.
            # (A fixed 1% of the largest charge, asserted before, was never met: seed 2's
            # largest |Δc_j| is 1.4% of its largest charge — well inside this bound.)
            loss = res.records["loss"]
            assert np.all(np.abs(dc).sum(axis=1) <= 1.001 * 5e-5 * (loss[0] - loss[-1]))
        elif variant == "sde_sgd":  # as SGD: O(lr) per unit time, a few percent over the run
            assert np.all(np.abs(dc) < 0.07 * scale)
        elif variant == "projected":
            # dc/dt = T(d − k − 2c/ρ²) with d − k = 2: every charge grows, by the integral of
            # the rate along the recorded trajectory (ρ² = 2·sqrt(c² + (|V_j|·‖W_j‖)²)). The
            # records are every t = 0.05; the ensemble mean agrees within 15%.
            c, path = res.records["charge_neurons"], res.records["path"]
            t = res.steps["charge_neurons"] * 5e-5
            rate = 1e-2 * (2 - c / np.sqrt(c**2 + path**2))
            predicted = np.trapezoid(rate, t, axis=0)
            assert np.all(dc > 0)  # the rate is at least T: 2c/ρ² ≤ 1
            assert abs(dc.mean() / predicted.mean() - 1) < 0.15, (dc.mean(), predicted.mean())
            projected_sd = dc.std()
        else:  # isotropic: martingales, spread far wider than under projected noise
            assert dc.std() > 20 * projected_sd
    # Without noise and with SGD's own noise the ratios reach 1 (growth); with projected noise
    # the units turn input-heavy (every seed's median ratio below 0.98).
    for variant in ("gd", "sde_sgd"):
        assert np.all(np.abs(np.median(ratios[variant], axis=1) - 1) < 0.03), variant
    assert np.all(np.median(ratios["projected"], axis=1) < 0.98)


@pytest.mark.slow
def test_e2_noise_models(run):
    spread = {}
    for variant in ("gd", "sde_sgd", "projected", "isotropic"):
        res = run(f"e2_attention_{variant}")
        c0, dc = charge_change(res, "charge_columns")
        spread[variant] = log_spread(res.records["column_ratio"][-1])
        scale = np.abs(c0).max(axis=1, keepdims=True)
        if variant in ("gd", "sde_sgd"):
            assert np.all(np.abs(dc) < 0.02 * scale), variant
        elif variant == "projected":  # d = k: held (no martingale part), slowly decaying
            assert np.all(np.abs(dc) < 0.1 * scale)
            assert np.median(np.abs(c0 + dc)) <= np.median(np.abs(c0))
            projected_sd = dc.std()
        else:  # isotropic: martingales that spread beyond their initial size
            assert dc.std() > 10 * projected_sd
            assert np.median(np.abs(c0 + dc)) > 2 * np.median(np.abs(c0))
    for variant in ("gd", "sde_sgd", "projected"):
        assert np.all(spread[variant] < 0.05), (variant, spread[variant])
    assert np.all(spread["isotropic"] > np.max(spread["projected"])), spread


@pytest.mark.slow
def test_e3_noise_models(run):
    spread = {}
    for variant in ("gd", "sde_sgd", "projected", "isotropic"):
        res = run(f"e3_matrix_completion_{variant}")
        spread[variant] = log_spread(res.records["mode_ratio"][-1])
        energy = res.records["energy"][-1]
        if variant in ("gd", "sde_sgd"):  # all 400 GL(20) charges held (0.02–0.05% measured)
            c = res.records["gl_charge"].reshape(res.records["gl_charge"].shape[:2] + (-1,))
            assert np.all(np.abs(c[-1] - c[0]).max(axis=1) < 0.005 * np.abs(c[0]).max(axis=1)), variant
        if variant in ("projected", "isotropic"):
            c0, dc = charge_change(res, "charge_modes")
            if variant == "projected":
                projected_sd = dc.std()
            else:
                assert dc.std() > 10 * projected_sd
                assert np.median(np.abs(c0 + dc)) > 1.5 * np.median(np.abs(c0))
        # T is low enough to keep the fit: the top energy stays within 25% of 15 and the
        # completion error where SGD leaves it (0.72–0.80; all variants: 0.71–0.84).
        assert np.all(np.abs(energy[:, 0] / 15 - 1) < 0.25), (variant, energy[:, :2])
        assert np.all(np.abs(res.records["completion_error"][-1] - 0.78) < 0.1), variant
    for variant in ("gd", "sde_sgd", "projected"):
        assert np.all(spread[variant] < 0.1), (variant, spread[variant])
