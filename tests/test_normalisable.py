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
from gaugedsl.geometry.normalisable import power_counting
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
