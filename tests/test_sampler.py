"""The slice sampler (gaugedsl/geometry/sampler.py) against laws known without it.

Every check is a mean within 3 combined standard errors: the sampler's error is the spread of its
chain means over √chains (independent chains, docs/theory.md P5/P6), the reference is a quadrature
with error ≪ that (1e-4 or better), so a correct sampler fails one check with probability 0.3%.
The seeds are fixed, so each test is deterministic.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gaugedsl.check import check_text
from gaugedsl.dynamics.objective import Objective, cast_data
from gaugedsl.geometry import Geometry, LawUnavailable, predicted_law
from gaugedsl.geometry.sampler import chart_for, not_normalisable, sample_slice_law
from gaugedsl.lowering import Lowered

pytest.importorskip("blackjax")
jax.config.update("jax_enable_x64", True)

SCALAR = """param u : R = 1.2
param v : R = 0.3
predictor w = u * v
loss = 0.5 * (w - 0.5)^2
symmetry balance : Scale { u -> g * u  v -> v / g }
noise projected(T = 0.1)
"""


def setup(text, dtype=jnp.float64):
    lowered = Lowered(check_text("model m\n" + text, "<test>"))
    cast_data(lowered, dtype)
    geo = Geometry(lowered)
    return geo, Objective(lowered, dtype)


def predictor_draws(geo, sample, name="w"):
    f = jax.vmap(jax.vmap(lambda t: geo.lowered.predictors(geo.layout.unflatten(t))[name]))
    return np.asarray(f(jnp.asarray(sample.theta)), np.float64)


def assert_mean_agrees(draws, expected):
    chain_means = draws.reshape(draws.shape[0], draws.shape[1], -1).mean(1)
    se = chain_means.std(0, ddof=1) / np.sqrt(chain_means.shape[0])
    z = (chain_means.mean(0) - expected) / se
    assert np.all(np.abs(z) <= 3.0), (chain_means.mean(0), expected, se)
    return chain_means.mean(0), se


@pytest.mark.parametrize("dtype", [jnp.float64, pytest.param(jnp.float32, marks=pytest.mark.slow)])
def test_scalar_model_matches_the_exact_one_dimensional_law(dtype):
    # examples/scalar_projected.gauge: E[w] = 0.41549 by quadrature (P5); exp(−L/T) alone gives 0.538,
    # 20 standard errors away at this size, so a sampler without the correction fails.
    geo, obj = setup(SCALAR, dtype)
    exact = predicted_law(Geometry(Lowered(check_text("model m\n" + SCALAR, "<test>"))), 0.1)
    starts = np.tile([1.2, 0.3], (64, 1))
    sample = sample_slice_law(geo, obj.loss, 0.1, starts, chains=64, seed=1, dtype=dtype)
    assert sample.theta.dtype == np.dtype(dtype)
    mean, se = assert_mean_agrees(predictor_draws(geo, sample), exact.mean)
    assert abs(exact.gibbs_mean - mean) > 5 * se


@pytest.mark.slow  # CI: kept under --runslow (suite time)
def test_sampler_is_deterministic_for_a_seed():
    geo, obj = setup(SCALAR)
    starts = np.tile([1.2, 0.3], (8, 1))
    a = sample_slice_law(geo, obj.loss, 0.1, starts, chains=8, warmup=50, draws=5, seed=3)
    b = sample_slice_law(geo, obj.loss, 0.1, starts, chains=8, warmup=50, draws=5, seed=3)
    np.testing.assert_array_equal(a.theta, b.theta)


DEPTHS = (2, 3, 4)


def depth_models(manifold: str) -> str:
    """Three independent scalar products of depths 2, 3, 4 (one sampler run: three line components)."""
    text, losses = "", []
    for depth in DEPTHS:
        names = [f"a{depth}_{i}" for i in range(depth)]
        text += "".join(f"param {n} : {manifold} = 0.9\n" for n in names)
        text += f"predictor w{depth} = {' * '.join(names)}\n"
        factors = ["g[0] * "] + [f"g[{i}] / g[{i - 1}] * " for i in range(1, depth - 1)] + [f"1 / g[{depth - 2}] * "]
        gens = "  ".join(f"{n} -> {f}{n}" for f, n in zip(factors, names))
        text += f"symmetry d{depth} : Scale[{depth - 1}] {{ {gens} }}\n"
        losses.append(f"0.5 * (w{depth} - 0.5)^2")
    return text + f"loss = {' + '.join(losses)}\nnoise projected(T = 0.1)\n"


@pytest.mark.parametrize("manifold", ["R", pytest.param("Positive", marks=pytest.mark.slow)])
def test_deep_scalar_products_match_quadrature_in_s(manifold):
    # P6: on the balanced line θ_l = s the law is uniform in s times exp(−L(s^depth)/T). On R with
    # odd depth s covers all of R (w < 0 reachable); with even depth the particle keeps w's sign
    # and s ∈ R is symmetric, so E[s^depth] over s ∈ R equals the s > 0 branch; on Positive, s > 0.
    geo, obj = setup(depth_models(manifold))
    starts = np.full((64, geo.dimension), 0.9)
    sample = sample_slice_law(geo, obj.loss, 0.1, starts, chains=64, seed=2)
    if manifold == "Positive":
        assert np.all(sample.theta > 0)
    for depth in DEPTHS:
        lo = -3.0 if manifold == "R" and depth % 2 else 1e-9
        s = np.linspace(lo, 3.0, 400_001)
        weight = np.exp(-0.5 * (s**depth - 0.5) ** 2 / 0.1)
        expected = np.trapezoid(s**depth * weight, s) / np.trapezoid(weight, s)
        w = predictor_draws(geo, sample, f"w{depth}")
        assert_mean_agrees(w, expected)
        if manifold == "R" and depth % 2:
            assert 0.01 < np.mean(w < 0) < 0.5  # P6: odd depth reaches w < 0


@pytest.mark.slow  # CI: kept under --runslow (suite time)
def test_gibbs_potential_samples_exp_minus_loss_dw():
    # potential="gibbs" is exp(−L(w)/T) dw on the particle's line: E[w] = 0.538 (test_geometry: P5).
    geo, obj = setup(SCALAR)
    exact = predicted_law(geo, 0.1)

    def pred(t):
        return geo.lowered.predictors(geo.layout.unflatten(t))["w"]

    sample = sample_slice_law(geo, obj.loss, 0.1, np.tile([1.2, 0.3], (64, 1)), chains=64, seed=4,
                              potential="gibbs", predictor=pred)  # fmt: skip
    assert_mean_agrees(predictor_draws(geo, sample), exact.gibbs_mean)


def test_charges_that_drift_have_no_law():
    # u → g²u, v → v/g: the generator has trace 1, projected noise moves the charge (no rest point).
    text = SCALAR.replace("u -> g * u", "u -> g * g * u")
    geo, _ = setup(text)
    with pytest.raises(LawUnavailable, match="not traceless"):
        chart_for(geo)


def test_a_law_that_is_not_normalisable_is_detected():
    # w = u·v with a loss that is flat for w > 0: exp(−L/T) on the line does not decay, chains run off.
    text = SCALAR.replace("loss = 0.5 * (w - 0.5)^2", "loss = 0.5 * (exp(-w) - 0)^2")
    geo, obj = setup(text)
    sample = sample_slice_law(geo, obj.loss, 0.1, np.tile([1.2, 0.3], (64, 1)), chains=64, seed=5)
    why = not_normalisable(sample, chart_for(geo))
    assert why is not None and ("keeps growing" in why or "ran off" in why)
    geo, obj = setup(SCALAR)
    sample = sample_slice_law(geo, obj.loss, 0.1, np.tile([1.2, 0.3], (64, 1)), chains=64, seed=5)
    assert not_normalisable(sample, chart_for(geo)) is None


@pytest.mark.slow  # CI: test_a_law_that_is_not_normalisable_is_detected (the detector the second look feeds)
def test_a_second_look_continues_the_chains_where_they_stopped():
    # `resume` continues each chain from its last state (same particles, patterns, starts): the chains of a
    # law that does not decay keep running off — further out than on the first look, and flagged again —
    # while those of a proper law stay unflagged and keep its mean (E[w] = 0.41549 by quadrature, P5).
    flat = SCALAR.replace("loss = 0.5 * (w - 0.5)^2", "loss = 0.5 * (exp(-w) - 0)^2")
    geo, obj = setup(flat)
    chart = chart_for(geo)
    first = sample_slice_law(geo, obj.loss, 0.1, np.tile([1.2, 0.3], (32, 1)), chains=32, seed=5)
    again = sample_slice_law(geo, obj.loss, 0.1, None, chains=32, seed=5, resume=first, warmup=1000, draws=100)
    assert np.array_equal(again.particles, first.particles) and np.array_equal(again.sigma, first.sigma)
    assert np.array_equal(again.start, first.start)
    reach = [np.median(np.abs(chart.coordinates(s.theta[:, -1]))) for s in (first, again)]
    assert reach[1] > reach[0], reach
    assert not_normalisable(again, chart) is not None
    geo, obj = setup(SCALAR)
    first = sample_slice_law(geo, obj.loss, 0.1, np.tile([1.2, 0.3], (64, 1)), chains=64, seed=6)
    again = sample_slice_law(geo, obj.loss, 0.1, None, chains=64, seed=6, resume=first)
    assert not_normalisable(again, chart_for(geo)) is None
    assert_mean_agrees(predictor_draws(geo, again), 0.41549)
