"""`dynamics = quotient` on cones (gaugedsl/dynamics/cone.py; docs/theory.md §9.1 (c), "pairs of
blocks"): its stationary statistics agree with the slice sampler's law (exp(−L/T) × the cone
measure, gaugedsl/geometry/sampler.py) and with the full projected-noise `sde`, in float32 and
float64, for

- a rank-one factorisation M = u vᵀ, u, v ∈ R^{3×1} (one pair, |P| = |N| = 3), and
- a small attention-diagonal head (X 8×3, head size 2: two pairs of 3 + 3 coordinates), with an
  invariant penalty λ Σ_j ‖q_j‖²‖k_j‖² on the column products. Without it the law is not
  normalisable: the softmax saturates, the loss stays bounded as the column norms grow, and the
  cone measure |a|² da dΩ grows (measured: the sampler's chains ran off to |a| ≈ 20 and both
  dynamics kept growing |a|), so no run of it can be stationary.

Statistics: per-particle time averages over the second half of the run (after the relaxation:
every run starts on the slice, charges at rest, and its mean loss settles within the first
quarter), of the loss, of |a| per pair and of every predictor coordinate. The particles are
independent, so the standard error of a mean is the spread of the per-particle averages over
√N; the sampler's is the spread of its chain means over √chains (sampler.py). Each comparison is
a z-test on the combined standard error with a Bonferroni threshold over the k coordinates
compared: |z| < Φ⁻¹(1 − 0.0027/(2k)) (3.0 for one coordinate, 3.7 for 11, 3.9 for 27), so a
correct implementation fails a test with probability ≈ 0.3% per pair of methods. The Euler bias
at these dt was not measurable (quotient vs sde vs sampler in float64 with 256 particles to
t = 20: max |z| 0.9 (a 2 × 2 rank one, 6 coordinates), 2.6 (attention, 27); every variant here
also passed under --runslow).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from gaugedsl.check import check_text
from gaugedsl.dynamics import Simulation

jax.config.update("jax_enable_x64", True)


def rank_one(dynamics: str, dtype: str, T: float = 0.1, dt: float = 1e-2) -> str:
    return f"""model rank_one
data {{
  B : R[3, 3] = normal(0, 0.5, seed = 0)
}}
param u : R[3, 1] = normal(0, 0.7)
param v : R[3, 1] = normal(0, 0.7)
predictor M = u @ v.T
loss = 0.5 * sum((M - B)^2)
symmetry scale : Scale {{ u -> g * u  v -> v / g }}
noise projected(T = {T})
run {{
  dynamics = {dynamics}
  dt = {dt}
  dtype = {dtype}
  start = slice
  record every 20: M, loss, charge(scale), radius = norm(u)
}}
"""


def attention(dynamics: str, dtype: str, T: float = 0.05, dt: float = 2e-2, lam: float = 0.05) -> str:
    return f"""model attention_small
import std.attention
data {{
  X   : R[8, 3] = normal(0, 1, seed = 0)
  Q_t : R[3, 2] = normal(0, 0.75, seed = 1)
  K_t : R[3, 2] = normal(0, 0.75, seed = 2)
  Y   : R[8, 3] = softmax((X @ Q_t) @ (X @ K_t).T / sqrt(2), axis = 1) @ X
}}
param Wq : R[3, 2] = normal(0, 0.5)
param Wk : R[3, 2] = normal(0, 0.5)
let scores = (X @ Wq) @ (X @ Wk).T / sqrt(2)
predictor out = softmax(scores, axis = 1) @ X
loss = mean((out - Y)^2) + {lam} * sum(sum(Wq^2, axis = 0) * sum(Wk^2, axis = 0))
symmetry columns = qk_columns(Wq, Wk)
noise projected(T = {T})
run {{
  dynamics = {dynamics}
  dt = {dt}
  dtype = {dtype}
  start = slice
  record every 50: out, loss, charge(columns), radius = norm(Wq, axis = 0)
}}
"""


# model → (program, predictor, the block whose column norms are |a|, charge record)
MODELS = {"rank_one": (rank_one, "M", "u", "charge_scale"), "attention": (attention, "out", "Wq", "charge_columns")}


def simulate(model: str, dynamics: str, dtype: str, particles: int, steps: int):
    """(means, standard errors) of (loss, |a| per pair, predictor) over the second half, and the
    simulation with its final ensemble."""
    program, predictor, _, charge = MODELS[model]
    sim = Simulation(check_text(program(dynamics, dtype), "<cone>"), particles=particles, steps=steps, seed=0)
    res = sim.run()
    r = res.records
    tol = 1e-5 if dtype == "float32" else 1e-12  # θ² rounding of the charges ½(|θ_P|² − |θ_N|²)
    assert np.abs(r[charge]).max() < tol  # on the slice throughout
    per = np.concatenate([r[k][r[k].shape[0] // 2 :].mean(0).reshape(particles, -1)
                          for k in ("loss", "radius", predictor)], axis=1)  # fmt: skip
    return per.mean(0), per.std(0, ddof=1) / np.sqrt(particles), sim, res


def sampled(model: str, sim, theta, chains: int, T: float):
    from gaugedsl.geometry.sampler import sample_slice_law

    _, predictor, block, _ = MODELS[model]
    geo = sim.geo
    sample = sample_slice_law(geo, sim.objective.loss, T, theta, chains=chains, seed=1)

    def stats(t):
        params = geo.layout.unflatten(t)
        radius = jnp.linalg.norm(params[block], axis=0).reshape(-1)
        return jnp.concatenate(
            [sim.objective.loss(t)[None], radius, geo.lowered.predictors(params)[predictor].reshape(-1)]
        )

    c, d, D = sample.theta.shape
    per_chain = np.asarray(jax.vmap(stats)(jnp.asarray(sample.theta.reshape(-1, D)))).reshape(c, d, -1).mean(1)
    return per_chain.mean(0), per_chain.std(0, ddof=1) / np.sqrt(c)


def assert_agree(a, b, what):
    (ma, sa), (mb, sb) = a, b
    z = (ma - mb) / np.sqrt(sa**2 + sb**2)
    limit = norm.ppf(1 - 0.0027 / (2 * z.size))
    assert np.all(np.abs(z) < limit), f"{what}: max |z| = {np.abs(z).max():.2f} ≥ {limit:.2f}, z = {np.round(z, 2)}"
    return z


def three_way(model: str, dtype: str, particles: int, steps: int, chains: int, T: float):
    pytest.importorskip("blackjax")
    mq, sq, sim, res = simulate(model, "quotient", dtype, particles, steps)
    ms, ss, _, _ = simulate(model, "sde", dtype, particles, steps)
    sampler = sampled(model, sim, res.theta, chains, T)
    assert_agree((mq, sq), sampler, "quotient vs sampler")
    assert_agree((mq, sq), (ms, ss), "quotient vs sde")
    assert_agree((ms, ss), sampler, "sde vs sampler")
    return (mq, sq), sim, res


@pytest.mark.slow  # CI: test_attention_cone_agrees_with_the_sampler_reduced (suite time)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rank_one_cone_agrees_with_the_sampler_and_the_full_sde(dtype):
    # 128 particles to t = 10 (relaxed by t ≈ 2), 64 chains; standard errors ≈ 0.005–0.015.
    (mq, sq), sim, res = three_way("rank_one", dtype, 128, 1000, 64, 0.1)
    # The check can fail: the law without the cone's volume factor |a|^(|N|−1) = |a|² (the sampler
    # on a chart whose log_volume keeps only the auxiliary z's density) puts E|a| many standard
    # errors from the quotient dynamics' (measured: z ≈ 3.3 with |N| = 2, hence |N| = 3 here).
    from gaugedsl.geometry.chart import SliceChart
    from gaugedsl.geometry.sampler import sample_slice_law

    class NoVolume(SliceChart):
        def log_volume(self, s):
            return -0.5 * jnp.sum(s[3:] ** 2)  # s = (a, z) of the one pair

    sample = sample_slice_law(sim.geo, sim.objective.loss, 0.1, res.theta, chart=NoVolume(sim.geo), chains=64, seed=1)
    radius = np.linalg.norm(sample.theta[..., :3], axis=-1).mean(1)  # u = θ[:3] = a
    z = (mq[1] - radius.mean()) / np.sqrt(sq[1] ** 2 + radius.var(ddof=1) / radius.size)
    assert abs(z) > 5, z


@pytest.mark.slow  # CI: the reduced variant below
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_attention_cone_agrees_with_the_sampler_and_the_full_sde(dtype):
    # Two pairs (columns of W_Q against W_K). 128 particles to t = 20 (the mean loss settles by
    # t ≈ 5–10), 64 chains; standard errors ≈ 0.004–0.02. (≈ 40 s on 2 loaded cores.)
    three_way("attention", dtype, 128, 1000, 64, 0.05)


def test_attention_cone_agrees_with_the_sampler_reduced():
    # CI variant: float32 quotient dynamics only (the full sde is the slow variant's), 64 particles
    # to t = 20 against 32 chains; standard errors ≈ 0.006–0.03, Bonferroni over 27 coordinates.
    pytest.importorskip("blackjax")
    mq, sq, sim, res = simulate("attention", "quotient", "float32", 64, 1000)
    assert_agree((mq, sq), sampled("attention", sim, res.theta, 32, 0.05), "quotient vs sampler")


@pytest.mark.slow
@pytest.mark.parametrize("model, T, steps", [("rank_one", 0.1, 2000), ("attention", 0.05, 2000)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cone_agreement_full(model, T, steps, dtype):
    # 512 particles to t = 20 (rank one) or t = 40 (attention), 256 chains: standard errors ≈ ½ the CI runs'.
    three_way(model, dtype, 512, steps, 256, T)


def test_cones_and_lines_in_one_model():
    # A pair (u, v ∈ R³) next to a depth-2 line (x1·x2) and a free coordinate c0: the chart has
    # 1 + 1 + 3 + 3 entries; the run stays on the slice and the records are φ(s).
    text = rank_one("quotient", "float64").replace(
        "param v : R[3, 1] = normal(0, 0.7)",
        "param v : R[3, 1] = normal(0, 0.7)\nparam x1 : R = 0.8\nparam x2 : R = 0.4\nparam c0 : R = 0.1",
    ).replace("loss = 0.5 * sum((M - B)^2)", "loss = 0.5 * sum((M - B)^2) + 0.5 * (x1 * x2 - 0.3)^2 + 0.5 * c0^2"
    ).replace("symmetry scale : Scale { u -> g * u  v -> v / g }",
              "symmetry scale : Scale { u -> g * u  v -> v / g }\nsymmetry chain : Scale { x1 -> g * x1  x2 -> x2 / g }"
    ).replace("charge(scale)", "charge(scale), charge(chain)")  # fmt: skip
    sim = Simulation(check_text(text, "<mixed>"), particles=8, steps=100, seed=0)
    assert sim.quotient.dimension == 8
    res = sim.run()
    assert np.abs(res.records["charge_scale"]).max() < 1e-12 and np.abs(res.records["charge_chain"]).max() < 1e-12
    theta = res.theta
    u, v = theta[:, 0:3], theta[:, 3:6]
    np.testing.assert_allclose(res.records["M"][-1], u[:, :, None] * v[:, None, :], rtol=1e-12)
    assert np.ptp(theta[:, 8]) > 0  # the free coordinate moves


@pytest.mark.parametrize("x1", [pytest.param("R", marks=pytest.mark.slow), "Positive"])
def test_lines_next_to_a_cone_pull_gradients_back_with_their_signs(x1):
    # The chart's velocity on a line of L coordinates is (1/L) ∂/∂s L(φ(s)), whatever the line's
    # sign pattern (x2 < 0: θ_j = σ_j s) and on a `Positive` coordinate (θ_j = |s|, at s < 0 too).
    # CI: the `Positive` case, whose line has both (its lead x1 is |s|, x2 has σ = −1).
    from gaugedsl.dynamics.cone import ConeChart

    text = rank_one("quotient", "float64").replace(
        "param v : R[3, 1] = normal(0, 0.7)",
        f"param v : R[3, 1] = normal(0, 0.7)\nparam x1 : {x1} = 0.8\nparam x2 : R = -0.4",
    ).replace("loss = 0.5 * sum((M - B)^2)", "loss = 0.5 * sum((M - B)^2) + 0.5 * (x1 * x2 - 0.3)^2 + 0.1 * x2^3"
    ).replace("symmetry scale : Scale { u -> g * u  v -> v / g }",
              "symmetry scale : Scale { u -> g * u  v -> v / g }\nsymmetry chain : Scale { x1 -> g * x1  x2 -> x2 / g }"
    )  # fmt: skip
    sim = Simulation(check_text(text, "<signs>"), particles=2, steps=20, seed=0)
    chart = sim.quotient
    assert isinstance(chart, ConeChart)
    s, sigma = chart.split(jnp.asarray(sim.initial_state().theta[0]))  # on the slice
    entry = int(chart.line_entries[0])
    for sign in (1.0, -1.0):  # both sides of the origin of the line
        point = s.at[entry].set(sign * jnp.abs(s[entry]))
        loss = sim.objective.loss
        exact = jax.grad(lambda q, loss=loss: loss(chart.embed(q, sigma)))(point)[entry] / chart.metric[entry]
        chart_velocity = chart.gradient(point, sim.objective.grad(chart.embed(point, sigma)), sigma)[entry]
        np.testing.assert_allclose(chart_velocity, exact, rtol=1e-10)
        if x1 == "Positive":
            assert chart.embed(point, sigma)[6] >= 0  # x1 = |s|
