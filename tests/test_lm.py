"""`solver = lm` (dynamics/lm.py): the Leimkuhler–Matthews step, Euler–Maruyama with each step's
noise the mean of its own and the previous step's increment. For additive noise its stationary
averages are second order in dt (Euler's are first order); on a quadratic loss its stationary
variance is exact at every stable dt."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gaugedsl

QUADRATIC = """model ou
param w : R[2] = normal(0, 1)
loss = 0.5 * sum(w^2)
noise isotropic(T = 0.5)
run {
  particles = 500
  steps = 2000
  dt = DT
  solver = SOLVER
  record every 10: w
}
"""

QUARTIC = """model quartic
param w : R[2] = normal(0, 0.5)
loss = 0.25 * sum(w^4)
noise isotropic(T = 0.1)
run {
  particles = 1000
  steps = 4000
  dt = 1e-2
  solver = SOLVER
  record every 10: w
}
"""


def second_moment(program: str) -> tuple[float, float]:
    """E[w_i²] over the second half of the run and its standard error (the spread over the
    particles of each particle's time average, over √N: particles are independent)."""
    w = gaugedsl.load(program).run().result.records["w"].astype(np.float64)
    per_particle = (w[w.shape[0] // 2 :] ** 2).mean(axis=(0, 2))
    return float(per_particle.mean()), float(per_particle.std(ddof=1) / math.sqrt(per_particle.size))


def test_lm_has_the_exact_stationary_variance_on_a_quadratic_loss_where_euler_is_biased():
    # L = ½|w|², T = 0.5, dt = 0.5 (k·dt = ½): the exact law has E[w_i²] = T = 0.5; Euler's chain
    # has T/(1 − dt/2) = 0.667, LM's has T exactly. Standard errors ≈ 0.003 (500 particles ×
    # 2 coordinates, t = 1000, second half): |z| ≤ 4 for each against its own value (measured
    # with 1000 particles: LM 0.4973 ± 0.0015, Euler 0.6633 ± 0.0020), and Euler is > 20 errors
    # from T (about 55).
    lm, lm_se = second_moment(QUADRATIC.replace("DT", "0.5").replace("SOLVER", "lm"))
    euler, euler_se = second_moment(QUADRATIC.replace("DT", "0.5").replace("SOLVER", "euler"))
    assert abs(lm - 0.5) <= 4 * lm_se, (lm, lm_se)
    assert abs(euler - 0.5 / 0.75) <= 4 * euler_se, (euler, euler_se)
    assert abs(euler - 0.5) > 20 * euler_se


def test_lm_and_euler_agree_on_a_quartic_loss_at_a_small_step():
    # L = ¼ Σ w_i⁴, T = 0.1: E[w_i²] = sqrt(4T) Γ(3/4)/Γ(1/4) = 0.2138 exactly. At dt = 1e-2 both
    # steps' biases are below the Monte Carlo error (≈ 0.0013, 1000 particles × 2 coordinates to
    # t = 40, second half): each against the exact value and against each other, |z| ≤ 4
    # (measured with 2000 particles: LM 0.2131, Euler 0.2132, ± 0.0009).
    exact = math.sqrt(0.4) * math.gamma(0.75) / math.gamma(0.25)
    lm, lm_se = second_moment(QUARTIC.replace("SOLVER", "lm"))
    euler, euler_se = second_moment(QUARTIC.replace("SOLVER", "euler"))
    assert abs(lm - exact) <= 4 * lm_se, (lm, lm_se, exact)
    assert abs(euler - exact) <= 4 * euler_se, (euler, euler_se, exact)
    assert abs(lm - euler) <= 4 * math.hypot(lm_se, euler_se)


def test_a_run_draws_the_same_whatever_its_chunks():
    # The previous increment is read off the Brownian path at each chunk's start, not carried.
    program = QUADRATIC.replace("DT", "0.1").replace("SOLVER", "lm").replace("particles = 500", "particles = 8")
    model = gaugedsl.load(program)
    whole = model.run(steps=200, chunk=200).result.theta
    pieces = model.run(steps=200, chunk=50).result.theta
    np.testing.assert_array_equal(whole, pieces)


PROJECTED = """model uv
param u : R = 1.0
param v : R = 1.0
loss = 0.5 * (u * v - 1)^2
symmetry balance : Scale {
  u -> g * u
  v -> v / g
}
noise projected(T = 0.1)
run {
  solver = lm
  record every 5: u
}
"""


@pytest.mark.parametrize(
    "program, message",
    [
        (PROJECTED, "is for additive noise"),
        (QUADRATIC.replace("param w : R[2]", "param w : Positive[2]"), "reflection"),
        (QUADRATIC.replace("solver = SOLVER", "solver = lm\n  increments = rademacher"), "Gaussian increments"),
    ],
)
def test_what_lm_cannot_integrate_is_refused(program, message):
    program = program.replace("DT", "0.1").replace("SOLVER", "lm")
    with pytest.raises(gaugedsl.GaugeError, match="E810") as info:
        gaugedsl.load(program).run(particles=4, steps=10)
    assert message in str(info.value)
