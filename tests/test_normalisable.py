"""The structural normalisability check (gaugedsl/geometry/normalisable.py, docs/theory.md §10).

Exact statements, no Monte Carlo: the counting p ≥ nL either applies or not, and the orthant
test is a linear feasibility problem. Each case is built so that one assumption decides it.
"""

import re

import jax
import numpy as np
import pytest

from gaugedsl.check import check_text
from gaugedsl.dynamics import Simulation
from gaugedsl.geometry.normalisable import bounded_loss, power_counting
from gaugedsl.report import verdict
from gaugedsl.report.compare import compare

jax.config.update("jax_enable_x64", True)

PAIR = """model pair
data {{
  X : R[{n}, {d}] = normal(0, 1, seed = 0)
  y : R[{n}]      = X @ normal(0, 1, [{d}], seed = 1)
}}
param u : R[{d}] = normal(0, 1)
param v : R[{d}] = normal(0, 1)
predictor w = u * v
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2{penalty}
symmetry rescale : Scale[{d}] {{ u -> g * u  v -> v / g }}
noise projected(T = 0.1)
run {{
  dynamics = sde
  particles = 8
  dt = 1e-2
  steps = 100
  record every 10: w
}}
"""

TRIPLE = """model triple
import std.deep
data {{
  X : R[{n}, {d}] = normal(0, 1, seed = 0)
  y : R[{n}]      = X @ normal(0, 1, [{d}], seed = 1)
}}
param u1 : R[{d}] = normal(0, 1)
param u2 : R[{d}] = normal(0, 1)
param u3 : R[{d}] = normal(0, 1)
predictor w = u1 * u2 * u3
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry layers = deep3(u1, u2, u3)
noise projected(T = 0.1)
run {{
  dynamics = sde
  particles = 8
  dt = 1e-2
  steps = 100
  record every 10: w
}}
"""


def pair(n, d, penalty=""):
    return Simulation(check_text(PAIR.format(n=n, d=d, penalty=penalty), "<pair>"))


def kernel_direction(sim):
    x = np.asarray(sim.lowered.data["X"], np.float64)
    return np.linalg.svd(x)[2][-1]


def test_marginal_pair_diverges_on_the_orthants_that_hold_flat_directions():
    # d = 2, n = 1, L = 2: p = 2 = nL, logarithmic divergence along ker X = span{k}
    sim = pair(1, 2)
    k = kernel_direction(sim)
    onto = np.concatenate([np.ones(2), np.sign(k)])  # w = u ⊙ v has the signs of k: ker X meets its orthant
    why = power_counting(sim, onto[None])
    assert why is not None and "p = 2 ≥ nL = 2" in why and "logarithmically" in why and "100%" in why
    # the orthant with one sign flipped holds no multiple of k: that branch is normalisable
    off = np.concatenate([np.ones(2), np.sign(k) * np.array([1.0, -1.0])])
    assert power_counting(sim, off[None]) is None
    assert "50%" in power_counting(sim, np.stack([onto, off]))


def test_enough_constraints_claim_nothing():
    # d = 3, n = 2, L = 2: p = 3 < nL = 4, finite
    assert power_counting(pair(2, 3), np.ones((1, 6))) is None


def test_a_loss_that_reads_the_parameters_claims_nothing():
    # a penalty on u alone is not a function of w: the counting's assumptions fail
    sim = pair(1, 2, penalty=" + 0.1 * sum(u^2)")
    k = kernel_direction(sim)
    assert power_counting(sim, np.concatenate([np.ones(2), np.sign(k)])[None]) is None


def test_odd_depth_counts_with_its_degree():
    # depth 3: p = 3 ≥ nL = 3 for n = 1 (diverges), p = 2 < 3 for d = 2 (finite)
    sim = Simulation(check_text(TRIPLE.format(n=1, d=3), "<triple>"))
    k = np.sign(kernel_direction(sim))
    why = power_counting(sim, np.concatenate([np.ones(3), np.ones(3), k])[None])  # the orthant of ker X
    assert why is not None and "L = 3" in why and "p = 3 ≥ nL = 3" in why
    finite = Simulation(check_text(TRIPLE.format(n=1, d=2), "<triple>"))
    assert power_counting(finite, np.ones((1, 6))) is None


def test_the_marginal_example_has_no_law_row():
    # examples/deep_diagonal_L2.gauge (d = 20, n = 10, L = 2) is the marginal case of §10
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "examples" / "deep_diagonal_L2.gauge").read_text()
    text = re.sub(r"record every \d+", "record every 20", text)
    pytest.importorskip("blackjax")
    sim = Simulation(check_text(text, "<L2>"), particles=64, steps=400)
    rows = {r.quantity: r for r in compare(sim, sim.run()).rows}
    law = rows["law of w"]
    assert law.verdict == verdict.NO_PREDICTION and "power counting" in law.why and "p = 20 ≥ nL = 20" in law.why


GATE = """model gate
data {{
  X : R[6, 3] = normal(0, 1, seed = 0)
  y : R[6]    = normal(0, 1, seed = 1)
}}
param a : R[3] = normal(0, 1)
param b : R[3] = normal(0, 1)
param c : {manifold} = {init}
predictor f = {predictor}
loss = 0.5 * mean((f - y)^2){penalty}
symmetry rescale : Scale[3] {{ a -> g * a  b -> b / g{more} }}
noise projected(T = 0.1)
run {{
  dynamics = sde
  dt = 1e-2
}}
"""


def gate(predictor="c * tanh(X @ (a * b))", penalty="", more="", manifold="R", init="normal(0, 1)"):
    text = GATE.format(predictor=predictor, penalty=penalty, more=more, manifold=manifold, init=init)
    return Simulation(check_text(text, "<gate>"), particles=4, steps=10)


def test_a_loss_bounded_along_a_cone_has_no_law():
    # a, b reach the loss only through tanh: bounded on the 3-dimensional cone |a_i| = |b_i|
    why = bounded_loss(gate())
    assert why is not None and "a, b only through tanh" in why and "3-dimensional cone" in why
    # c multiplies the bounded part: unbounded in c, but that does not stop the claim about a, b
    assert "c" not in why.split(" only")[0].split("sees ")[1].split(", ")


@pytest.mark.parametrize(
    "edit",
    [
        dict(penalty=" + 0.1 * sum((a * b)^2)"),  # a confining penalty on the products
        dict(predictor="c * log(sigmoid(X @ (a * b)))"),  # log of a bounded value is not bounded
        dict(predictor="c * tanh(X @ (a * b)) / sum(a^2)"),  # division by the block
        dict(predictor="tanh(X @ (a * b)) * c^-1"),  # a negative power: conservative, claims nothing about c
        dict(predictor="c * tanh(X @ (a * b)) + X @ a * 0.0"),  # a read outside the bounded function
    ],
)
def test_what_breaks_the_bounded_loss_argument_claims_nothing(edit):
    why = bounded_loss(gate(**edit))
    if "c^-1" in edit.get("predictor", ""):
        assert why is not None and "sees a, b only" in why  # c is not in the block; a, b still are
    else:
        assert why is None


def test_a_symmetry_that_reaches_outside_the_block_claims_nothing():
    # the rescaling also moves c (a parameter the loss sees unboundedly): the slice no longer splits
    assert bounded_loss(gate(predictor="c[0] * tanh(X @ (a * b))", more="  c -> c", manifold="R[3]")) is None


def test_a_compact_manifold_is_not_a_cone():
    # a bounded loss in a parameter on a sphere has finite mass; only R and Positive are cones
    sim = gate(predictor="tanh(X @ c)", manifold="Sphere[3]", init="normalize(normal(0, 1, [3]))")
    why = bounded_loss(sim)
    assert why is not None and "c" not in why.split(" only")[0]


def test_the_attention_example_has_no_law_and_its_penalised_version_claims_nothing():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "examples" / "attention_diagonal.gauge").read_text()
    why = bounded_loss(Simulation(check_text(text, "<attention>"), particles=4, steps=10))
    assert why is not None and "Wq, Wk only through softmax" in why and "44-dimensional cone" in why
    penalised = text.replace(
        "loss = mean((out - Y)^2)", "loss = mean((out - Y)^2) + 0.05 * sum(sum(Wq^2, axis = 0) * sum(Wk^2, axis = 0))"
    )
    assert bounded_loss(Simulation(check_text(penalised, "<attention>"), particles=4, steps=10)) is None
