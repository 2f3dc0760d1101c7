"""The machinery around the dynamics: manifolds, ensembles, resuming, diagnostics."""

import math

import numpy as np
import pytest

from gaugedsl.check import check_text
from gaugedsl.diagnostics import GaugeError
from gaugedsl.dynamics import Simulation

MANIFOLDS = """model manifolds
data {{
  C : R[4, 4] = eye(4) + 0.1 * ones()
}}
param s : Sphere[3]
param Q : Stiefel[4, 2]
param p : Positive[3] = abs(normal(1, 0.1))
loss = -s[0] - trace(Q.T @ C @ Q) + sum((p - 0.2)^2)
noise isotropic(T = 0.5)
run {{
  particles = 200
  steps = {steps}
  dt = 1e-2
  dtype = {dtype}
  record every 500: s, qtq = Q.T @ Q, p
}}
"""


@pytest.fixture(scope="module")
def manifold_run():
    return Simulation(check_text(MANIFOLDS.format(steps=10_000, dtype="float32"), "<m>")).run()


def test_parameters_stay_on_their_manifolds_after_10k_noisy_steps(manifold_run):
    # float32, T = 0.5, 10⁴ Euler steps: tangent projection + closest-point retraction keep
    # |s| = 1 and QᵀQ = I to float32 rounding (~1e-7); reflection keeps p > 0.
    r = manifold_run
    assert r.healthy.all()
    s, qtq, p = r.records["s"], r.records["qtq"], r.records["p"]
    assert np.max(np.abs(np.linalg.norm(s.astype(np.float64), axis=-1) - 1)) < 1e-6
    assert np.max(np.abs(qtq - np.eye(2))) < 1e-6
    assert np.all(p > 0)


def test_sphere_and_positive_sample_their_gibbs_laws(manifold_run):
    """The retraction gives Brownian motion on the sphere its Itô drift, so s samples the von
    Mises–Fisher law ∝ exp(s₀/T) on S²: E[s₀] = coth(1/T) − T = 0.5373 at T = 0.5; and
    reflection keeps p's law exp(−(p − 0.2)²/T) on p > 0: a normal (0.2, 0.5²) truncated at
    0, mean 0.2 + 0.5 φ(0.4)/Φ(0.4) = 0.4810.

    Tolerance 0.03: MC error of the time-averaged means (200 particles × 16 records over
    t ∈ [20, 100], correlation time ~1) is ≈ 0.01, the Euler/reflection bias at dt = 1e-2 is
    O(dt) for the sphere and O(sqrt(dt)·σ) ≲ 0.02 near p's boundary."""
    r = manifold_run
    late = r.times("s") >= 20
    s0 = r.records["s"][late][..., 0]
    assert abs(s0.mean() - (1 / math.tanh(2.0) - 0.5)) < 0.03
    phi = math.exp(-0.5 * 0.4**2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(0.4 / math.sqrt(2)))
    assert abs(r.records["p"][late].mean() - (0.2 + 0.5 * phi / cdf)) < 0.03


def test_an_initializer_off_the_manifold_is_a_diagnostic():
    text = MANIFOLDS.format(steps=10, dtype="float64").replace(
        "param p : Positive[3] = abs(normal(1, 0.1))", "param p : Positive[3] = normal(0, 1)"
    )
    with pytest.raises(GaugeError) as e:
        Simulation(check_text(text, "<m>")).initial_state()
    d = e.value.diagnostics[0]
    assert d.code == "E807" and "'p'" in d.message and d.span.line == 7


# ---- ensembles: reproducibility and resuming ---------------------------------------------

SMALL = """model small
data {
  X : R[8, 3] = normal(0, 1, seed = 2)
  y : R[8] = X @ [1, 0, -0.5]
}
param a : R[3] = normal(0, 0.3)
param b : R[3] = normal(0, 0.3)
predictor w = a * b
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry balance : Scale[3] {
  a -> g * a
  b -> b / g
}
noise NOISE
run {
  dynamics = DYNAMICS
  particles = 32
  steps = 230
  chunk = 50
  lr = 0.05
  dt = 0.05
  batch = 3
  record every 10: w, charge(balance), loss
}
"""


@pytest.mark.parametrize("noise, dynamics", [("projected(T = 0.01)", "sde"), ("sgd(lr = 0.05, batch = 3)", "sgd")])
def test_a_resumed_run_equals_an_uninterrupted_one(noise, dynamics):
    sim = Simulation(check_text(SMALL.replace("NOISE", noise).replace("DYNAMICS", dynamics), "<s>"), max_traces=1)
    whole = sim.run()
    state = sim.initial_state()
    sim.run(state=state, stop_after=2)
    assert state.step == 100
    resumed = sim.run(state=state)
    for label in whole.records:
        np.testing.assert_array_equal(whole.records[label], resumed.records[label])
    np.testing.assert_array_equal(whole.theta, resumed.theta)
    assert whole.records["w"].shape == (24, 32, 3)  # steps 0, 10, …, 230


@pytest.mark.parametrize(
    "noise, dynamics",
    [
        ("projected(T = 0.01)", "sde"),
        pytest.param("isotropic(T = 0.01)", "sde", marks=pytest.mark.slow),  # CI: projected and sra1 cover it
        ("isotropic(T = 0.01)", "sde  solver = sra1"),
        ("projected(T = 0.01)", "quotient"),
        ("sgd(lr = 0.05, batch = 3)", "sgd"),
    ],
)
def test_a_trajectory_does_not_depend_on_the_chunk_length(noise, dynamics):
    """Step s of particle i draws from fold_in(key_i, s) whatever the chunking, so changing
    `chunk` (how often a run checkpoints and reports progress) draws the same noise, and the
    step is the same compiled program whatever the chunk (an SDE chunk runs as calls of the
    plan's `segment`; a discrete map's chunk compiles to the same arithmetic): the results are
    the same to the bit. (Before the segment, the SDE compiled one program per chunk length,
    whose float32 rounding differed by an ulp per step: 7e-5 after 230 steps.)"""
    # ("sde  solver = sra1": an SRK solver, which also draws each step's space-time Lévy area.)
    m = check_text(SMALL.replace("NOISE", noise).replace("DYNAMICS", dynamics.replace("  ", "\n  ")), "<s>")
    # chunks of 50 (the last one 30 steps) against the whole run in one chunk (SDE) or chunks
    # of 10 (the discrete map): different chunk lengths and a short last chunk
    a = Simulation(m, chunk=50).run()
    b = Simulation(m, chunk=230 if dynamics != "sgd" else 10).run()
    assert np.array_equal(a.theta, b.theta)
    assert np.array_equal(a.records["w"], b.records["w"])


def test_particles_are_independent_and_do_not_depend_on_the_ensemble_size():
    # Particle i's keys are fold_in(key, i): the same whatever N (up to float32 rounding of
    # differently batched arithmetic).
    m = check_text(SMALL.replace("NOISE", "sgd(lr = 0.05, batch = 3)").replace("DYNAMICS", "sgd"), "<s>")
    big = Simulation(m, steps=50).run()
    small = Simulation(m, particles=4, steps=50).run()
    np.testing.assert_allclose(small.records["w"], big.records["w"][:, :4], rtol=1e-5, atol=1e-6)
    assert len(np.unique(big.records["w"][-1, :, 0])) == 32


STREAM = """model stream_teacher
data {
  w_star   : R[4] = linspace(-1, 1, n = 4)
  stream x : R[4] ~ normal(0, 1)
  t        : R[4] = w_star * x
}
param a : R[4] = normal(0, 0.3)
param b : R[4] = normal(0, 0.3)
loss per (xi, ti) in (x, t) = 0.5 * sum((a * b * xi - ti)^2)
noise sgd(lr = 0.05, batch = 4)
run {
  dynamics = sgd
  particles = 8
  steps = 200
  lr = 0.05
  batch = 4
  record every 20: a, b
}
"""


@pytest.mark.parametrize(
    "program, ahead, tol",
    [(SMALL.replace("NOISE", "sgd(lr = 0.05, batch = 3)").replace("DYNAMICS", "sgd"), 10, 0.0), (STREAM, 20, 1e-5)],
)
def test_minibatches_drawn_ahead_are_each_steps_own(monkeypatch, program, ahead, tol):
    """The sgd map draws a stretch of steps' minibatches at once, before those steps; step k
    must still train on the minibatch of fold_in(key, k). A dataset's minibatch is a gather:
    the same bits either way. A stream's data may round differently when XLA fuses its
    arithmetic into the step (seen: 1e-7 after 200 steps); 1e-5 is still far below what a
    minibatch of another step moves a record by (≥ 1e-3, checked against another seed)."""
    from gaugedsl.dynamics import discrete

    m = check_text(program, "<s>")
    monkeypatch.setattr(discrete, "_AHEAD_FLOPS", 0)  # these draws are too cheap to be drawn ahead otherwise
    drawn_ahead = Simulation(m)
    monkeypatch.setattr(discrete, "_AHEAD_LIMIT", 0)  # no stretch fits: one draw per step
    step_by_step = Simulation(m)
    assert (drawn_ahead.particle_chunk.ahead, step_by_step.particle_chunk.ahead) == (ahead, 1)
    a, b = drawn_ahead.run(), step_by_step.run()
    for label in a.records:
        np.testing.assert_allclose(a.records[label], b.records[label], rtol=0, atol=tol)
    np.testing.assert_allclose(a.theta, b.theta, rtol=0, atol=tol)
    other_draws = step_by_step.run(state=step_by_step.state_at(b.theta0, seed=1))  # same start, other keys
    label = next(iter(b.records))  # w or a: (records, particles, entries)
    assert np.abs(other_draws.records[label] - b.records[label]).max(axis=(0, 2)).min() > 1e-3  # every particle's path


def test_the_stretch_drawn_ahead_divides_the_record_interval_and_fits_the_limit(monkeypatch):
    from gaugedsl.dynamics import discrete

    monkeypatch.setattr(discrete, "_AHEAD_FLOPS", 0)
    sim = Simulation(check_text(STREAM, "<s>"))
    obj, unit = sim.objective, sim.plan.unit
    # One step, all particles: 8 particles × 4 samples × (x, t and their binders xi, ti: R[4]) × 4 bytes.
    per_step = 8 * 4 * 4 * 4 * 4
    # The stretch is the largest divisor of the record interval (20) that fits.
    for limit, expected in [
        (10**9, 20),
        (per_step * 20, 20),
        (per_step * 19, 10),
        (per_step * 9, 5),
        (per_step, 1),
        (per_step - 1, 1),
    ]:
        monkeypatch.setattr(discrete, "_AHEAD_LIMIT", limit)
        assert discrete.steps_ahead(obj, 4, unit, 8) == expected
    assert discrete.steps_ahead(obj, None, unit, 8) == 1  # gd: nothing to draw


@pytest.mark.parametrize("example, ahead", [("e2_attention", 100), ("e1_relu", 1), ("e3_matrix_completion", 1)])
def test_only_draws_that_do_arithmetic_are_drawn_ahead(example, ahead):
    """E2's teacher forward pass per step is worth drawing 100 steps at once (1.6× per step);
    E1's and E3's draws are too cheap to gain anything and would only compile longer."""
    from pathlib import Path

    from gaugedsl.check import check_file

    sim = Simulation(check_file(Path(__file__).parents[1] / "examples" / f"{example}.gauge"))
    assert sim.particle_chunk.ahead == ahead


# ---- diagnostics ------------------------------------------------------------------------


def test_a_solver_that_does_not_fit_the_noise_is_a_diagnostic(tmp_path):
    path = tmp_path / "m.gauge"
    path.write_text(
        SMALL.replace("NOISE", "projected(T = 0.01)")
        .replace("DYNAMICS", "sde")
        .replace("  chunk = 50\n", "  chunk = 50\n  solver = heun\n")
    )
    from gaugedsl.check import check_file

    with pytest.raises(GaugeError) as e:
        Simulation(check_file(path))
    d = e.value.diagnostics[0]
    assert d.code == "E810" and "Stratonovich" in d.message and "euler" in d.hint
    assert (d.span.line, d.span.column) == (20, 3)  # `solver = heun`


def test_a_chunk_that_splits_a_record_interval_is_a_diagnostic():
    with pytest.raises(GaugeError) as e:
        Simulation(
            check_text(
                SMALL.replace("NOISE", "isotropic(T = 0.01)")
                .replace("DYNAMICS", "sde")
                .replace("chunk = 50", "chunk = 55"),
                "<s>",
            )
        )
    assert e.value.diagnostics[0].code == "E804" and "chunk = 60" in e.value.diagnostics[0].hint


QUARTIC = """model quartic
param x : R = normal(0, 1.5)
loss = 0.25 * x^4
run {
  dynamics = gd
  lr = 0.5
  particles = 400
  steps = 200
  record every 10: x
}
"""


def test_some_particles_diverging_is_a_warning_and_the_healthy_ones_are_kept():
    # x' = x − 0.5 x³ blows up from |x| > 2: about 18% of normal(0, 1.5) starts.
    r = Simulation(check_text(QUARTIC, "<q>")).run()
    n_bad = int((~r.healthy).sum())
    assert 0.1 * 400 < n_bad < 0.3 * 400
    (d,) = r.diagnostics
    assert d.code == "W811" and f"{n_bad} of 400 particles diverged" in d.message
    assert "reduce lr (now 0.5)" in d.hint and "lr below 2/λ_max" in d.hint  # a gd map: no drift
    assert np.all(np.isfinite(r.records["x"][:, r.healthy]))
    assert np.all(r.diverged_at[~r.healthy] > 0) and np.all(r.diverged_at[r.healthy] == -1)


def test_every_particle_diverging_is_an_error_at_the_step_size(tmp_path):
    path = tmp_path / "q.gauge"
    path.write_text(
        QUARTIC.replace("0.25 * x^4", "5 * x^2")
        .replace("dynamics = gd\n  lr = 0.5", "dynamics = sde\n  dt = 1")
        .replace("run {", "noise isotropic(T = 0.01)\nrun {")
    )
    from gaugedsl.check import check_file

    with pytest.raises(GaugeError) as e:
        Simulation(check_file(path)).run()
    d = e.value.diagnostics[0]
    assert d.code == "E811" and "all 400 particles diverged" in d.message
    assert "dt" in d.hint and "0.2" in d.hint  # 2/λ_max with λ_max = 10
    assert path.read_text().splitlines()[d.span.line - 1][d.span.column - 1 :].startswith("dt = 1")


UNEQUAL_SIDES = """model unequal_sides
import std.relu
data {
  X : R[8, 3] = normal(0, 1, seed = 0)
  y : R[8]    = normal(0, 1, seed = 1)
}
param W : R[2, 3] = normal(0, 0.5)
param V : R[1, 2] = normal(0, 0.5)
loss per (x, t) in (X, y) = 0.5 * (V[0] @ relu(W @ x) - t)^2
symmetry neurons = neuron_rescaling(W, V)
noise projected(T = 0.05)
run {
  particles = 50
  steps = 400
  dt = 1e-2
  record every 100: charge(neurons)
}
"""


def test_the_table_predicts_balanced_charges_only_where_the_sides_are_equal():
    """Projected noise rests the charges at 0 only when each rescaling scales as many
    coordinates up as down (u ⊙ v). A ReLU unit with 3 inputs and 1 output has
    dχ/dt = T(3 − 1 − 2χ/G) > 0: the table must not claim a rest point at 0 but test that every
    particle's charges move up (P4, exact under the charge keeper)."""
    from gaugedsl.report.compare import compare

    sim = Simulation(check_text(UNEQUAL_SIDES, "<unequal>"))
    result = sim.run()
    rows = [r for r in compare(sim, result).rows if r.source == "P4"]
    assert len(rows) == 1 and "moving with tr A_a" in rows[0].quantity and rows[0].verdict == "agrees"
    assert "no rest point at 0" in rows[0].note
    c = result.records["charge_neurons"]
    assert np.all(c[-1].mean(0) > c[0].mean(0))  # every charge grew, as dχ/dt > 0 says

    # 3 inputs and 3 outputs per unit: tr A_j = 0, the charges rest at 0 and each |χ_j| decays.
    balanced = UNEQUAL_SIDES.replace("param V : R[1, 2]", "param V : R[3, 2]").replace(
        "V[0] @ relu(W @ x) - t", "sum(V @ relu(W @ x)) - t"
    )
    sim = Simulation(check_text(balanced, "<balanced>"))
    rows = [r for r in compare(sim, sim.run()).rows if r.source == "P4"]
    assert len(rows) == 1 and "not grown, sign kept" in rows[0].quantity and rows[0].verdict == "agrees"


def test_a_run_that_diverges_everywhere_leaves_no_checkpoint_to_resume(tmp_path, capsys):
    """`gaugedsl run` on E811: the diagnostic, and no checkpoint of NaNs for --resume."""
    from gaugedsl.cli import main

    path = tmp_path / "q.gauge"
    path.write_text(
        QUARTIC.replace("0.25 * x^4", "5 * x^2")
        .replace("dynamics = gd\n  lr = 0.5", "dynamics = sde\n  dt = 1")
        .replace("steps = 200", "steps = 200\n  chunk = 50")
        .replace("run {", "noise isotropic(T = 0.01)\nrun {")
    )
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out), "--no-progress"]) == 1
    assert "error[E811]" in capsys.readouterr().err
    assert not (out / "checkpoint.npz").exists()


def test_bad_counts_name_the_setting(tmp_path):
    with pytest.raises(GaugeError) as e:
        Simulation(check_text(QUARTIC, "<q>"), particles=0)
    d = e.value.diagnostics[0]
    assert d.code == "E803" and "particles = 0" in d.message and d.hint


def test_a_non_finite_start_names_the_parameter():
    text = "model m\nparam v : R[2] = normal(0, 1)\nparam w : R[3] = log(zeros())\nloss = sum(w^2) + sum(v^2)\nnoise isotropic(T = 0.1)\nrun {\n  steps = 20\n}\n"
    with pytest.raises(GaugeError) as e:
        Simulation(check_text(text, "<m>")).initial_state()
    (d,) = e.value.diagnostics
    assert d.code == "E806" and "'w'" in d.message and d.span.line == 3


DISCRETE_PROJECTED = """model discrete_projected
data {
  X : R[6, 4] = normal(0, 1, seed = 0)
  y : R[6]    = normal(0, 1, seed = 1)
}
param u : R[4] = normal(0, 0.5)
param v : R[4] = normal(0, 0.5)
predictor w = u * v
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry balance : Scale[4] {
  u -> g * u
  v -> v / g
}
noise projected(T = 0.01)
run {
  dynamics = sgd
  lr = 0.05
  batch = 2
  particles = 8
  steps = 30
  dtype = float64
  record every 1: u, v
}
"""


def test_the_discrete_map_with_projected_noise_is_run_as_written():
    """dynamics = sgd with a projected kick: θ' = θ − lr ĝ + sqrt(2T·lr) P_H ξ. Every part of
    the step is orthogonal to the orbit, so each charge c = ½(u² − v²) changes by exactly
    ½(Δu² − Δv²) (P2 with the kick included) — nothing resets it to the SDE's charge ODE.
    Tolerance: float64 rounding of O(1) numbers over one step."""
    r = Simulation(check_text(DISCRETE_PROJECTED, "<dp>")).run()
    u, v = r.records["u"], r.records["v"]
    c = 0.5 * (u**2 - v**2)
    du, dv = np.diff(u, axis=0), np.diff(v, axis=0)
    np.testing.assert_allclose(np.diff(c, axis=0), 0.5 * (du**2 - dv**2), rtol=0, atol=1e-12)
    assert np.abs(du).max() > 1e-3  # the steps did move
