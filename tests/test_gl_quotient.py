"""`dynamics = quotient` for a GL(r) factorization (gaugedsl/dynamics/gl_quotient.py,
docs/theory.md §9.1(d)): m = n = 3, r = 2, ℓ = ½‖W − diag(1, 0.3, 0)‖², T = 0.1, started balanced
(tests/test_gl_law.py's model with `dynamics = quotient`).

- The chart centred at a balanced point is orthonormal there and its Itô term vanishes there
  (∂g⁻¹(0) = 0); off the centre it does not (the term is not vacuous).
- The stationary E[σ] agrees with the sampler on the quotient chart (law (A)) and, full size,
  with the full projected-noise `sde`.
- A check that can fail: the same Euler step taken in W to first order, W + δU Vᵀ + U δVᵀ with a
  truncated-SVD retraction — the W-space Euler–Maruyama step −M∇ℓ dt + sqrt(2T) J P_H ξ without
  the Itô drift of W (E[δU δVᵀ]/dt, which the factor step carries) — must disagree.

Statistics as in test_gl_law.py: each particle's time average over the second half, the standard
error the spread of those over sqrt(N). SAMPLER is the NUTS value on the quotient chart recorded in
docs/theory.md §9.1(d) (the sampler test_gl_law.py checks against the full SDE), with its
standard error; a z-test uses the combined error. Two agreement checks (σ1, σ2) at |z| ≤ 3: a
0.54% false alarm for both together (Bonferroni), and the seeds are fixed, so each test is
deterministic. This is enough because the effect the test must catch is large: dropping the Itô
drift moves E[σ2] by −0.09 (12 standard errors at 64 particles × 6000 steps, measured), and an
error in the metric (law (B) or Gibbs on dvol_W, E[σ] ≈ (1.21, 0.52)) by more.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_gl_law import rect_model

from gaugedsl.check import check_text
from gaugedsl.diagnostics import GaugeError
from gaugedsl.dynamics import Simulation

jax.config.update("jax_enable_x64", True)
T, DT, EVERY = 0.1, 5e-3, 100
SAMPLER = np.array([0.996, 0.299]), np.array([0.005, 0.003])


def quotient_model(particles: int, steps: int, dtype: str = "float64") -> str:
    return rect_model(particles, steps, dtype).replace("dynamics  = sde", "dynamics  = quotient")


def stationary(sigma) -> tuple[np.ndarray, np.ndarray]:
    """(R, N, 2) records → mean and standard error of the particles' second-half averages."""
    per_particle = np.asarray(sigma)[sigma.shape[0] // 2 :].mean(axis=0)
    return per_particle.mean(0), per_particle.std(0, ddof=1) / np.sqrt(per_particle.shape[0])


def z_against(mean, se, ref=SAMPLER):
    return (mean - ref[0]) / np.sqrt(se**2 + ref[1] ** 2)


def first_order_w_run(sim: Simulation, steps: int, seed: int = 3) -> np.ndarray:
    """The check that can fail: per step δθ = −dt P_H∇L + sqrt(2T dt) P_H ξ (the quotient step's own
    increment), but W' = W + δU Vᵀ + U δVᵀ (δU δVᵀ, the Itô drift of W, dropped), retracted to
    rank r by truncated SVD (balanced factors P Σ^½, Q Σ^½). Returns σ records, (R, N, 2)."""
    c, grad, r = sim.quotient, sim.objective.grad, sim.quotient.r

    def one(theta, key):
        def step(theta, k):
            basis = c.horizontal(theta)
            x = -DT * (basis.T @ c.flat(grad(theta))) + np.sqrt(2 * T * DT) * jax.random.normal(k, (c.p,), theta.dtype)
            u, v = c.factors(theta)
            du, dv = c.factors(c.scatter(basis @ x, None, theta))
            p, s, qt = jnp.linalg.svd(u @ v.T + du @ v.T + u @ dv.T)
            y = jnp.concatenate([jnp.ravel(p[:, :r] * jnp.sqrt(s[:r])), jnp.ravel(qt[:r].T * jnp.sqrt(s[:r]))])
            return c.scatter(y, None, theta), s[:r]

        def block(theta, k):
            theta, s = jax.lax.scan(step, theta, jax.random.split(k, EVERY))
            return theta, s[-1]

        return jax.lax.scan(block, theta, jax.random.split(key, steps // EVERY))[1]

    theta0 = jnp.asarray(sim.initial_state().theta)
    keys = jax.random.split(jax.random.PRNGKey(seed), theta0.shape[0])
    return np.moveaxis(np.asarray(jax.jit(jax.vmap(one))(theta0, keys)), 1, 0)


@pytest.fixture(scope="module")
def small():
    """32 particles to t = 20 (standard errors ≈ 0.015 on E[σ1], 0.011 on E[σ2])."""
    return Simulation(check_text(quotient_model(32, 4000), "<glq>"))


def test_the_centred_chart_is_orthonormal_with_no_ito_term_at_its_centre(small):
    c = small.quotient
    assert (c.p, c.noise_dimension) == (8, 8)

    @jax.jit
    def probe(theta, x):
        basis, y0 = c.horizontal(theta), c.flat(theta)

        def fn(x):
            return c.inverse_metric(y0, basis, x)

        zero = jnp.zeros(c.p, theta.dtype)
        return fn(zero), jax.jacfwd(fn)(zero), c.ito(y0, basis, T), c.ito(y0, basis, T, x), c.balance(theta)

    rng = np.random.default_rng(0)
    for theta in np.asarray(small.initial_state().theta)[:4]:
        ginv, jac, ito0, ito_x, balanced = probe(jnp.asarray(theta), 0.05 * jnp.asarray(rng.normal(size=c.p)))
        np.testing.assert_allclose(ginv, np.eye(c.p), atol=1e-12)  # g(0) = BᵀP_H B = I
        assert float(jnp.abs(jac).max()) < 1e-12 and float(jnp.abs(ito0).max()) < 1e-12  # ∂g⁻¹(0) = 0
        assert float(jnp.abs(ito_x).max()) > 1e-3  # not 0 off the centre
        np.testing.assert_allclose(balanced, theta, atol=1e-12)  # the start is balanced


def test_quotient_dynamics_samples_the_quotient_law(small):
    res = small.run()
    sim = small
    u, v = sim.quotient.factors(jnp.asarray(res.theta[0]))
    np.testing.assert_allclose(u.T @ u, v.T @ v, atol=1e-10)  # the state stays balanced
    mean, se = stationary(res.records["sigma"])
    z = z_against(mean, se)
    assert np.all(np.abs(z) <= 3.0), (mean, se, z)
    print("quotient", mean, se, z)


def test_dropping_the_ito_drift_of_w_is_detected(small):
    # Measured at 64 × 6000: E[σ] = (0.921 ± 0.012, 0.206 ± 0.007), z = (−5.6, −12.3); here
    # 32 × 4000: E[σ2] must be > 5 combined errors off.
    mean, se = stationary(first_order_w_run(small, 4000))
    z = z_against(mean, se)
    assert z[1] < -5.0, (mean, se, z)
    print("first-order W", mean, se, z)


def test_square_factors_and_stratonovich_solvers_are_refused(small):
    square = (
        quotient_model(2, 2)
        .replace("R[3, 2]", "R[2, 2]")
        .replace("[[1.0, 0.0, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 0.0]]", "[[1.0, 0.0], [0.0, 0.3]]")
        .replace("R[3, 3]", "R[2, 2]")
        .replace("svdvals(W)[:2]", "svdvals(W)")
    )
    with pytest.raises(GaugeError) as err:
        Simulation(check_text(square, "<glq>"))
    (d,) = err.value.diagnostics
    assert d.code == "E812" and "square factors" in d.message and "det W = 0" in d.message
    from gaugedsl.dynamics.plan import resolve
    from gaugedsl.dynamics.solve import solver_for

    heun = check_text(quotient_model(2, 2).replace("  seed      = 0", "  seed      = 0\n  solver    = heun"), "<glq>")
    with pytest.raises(GaugeError) as err:  # the solver check of Simulation, on this noise
        solver_for(heun, resolve(heun), small.noise, small.noise.constraint)
    (d,) = err.value.diagnostics
    assert d.code == "E810" and "GL factorization" in d.message


@pytest.mark.slow
def test_quotient_dynamics_full_size():
    # 128 particles to t = 50 against the full `sde` (same size, same starts) and the sampler;
    # the first-order W step must disagree with both. Measured (~40 s on 2 shared cores):
    # quotient (1.0034 ± 0.0059, 0.3046 ± 0.0044), sde (0.9947 ± 0.0070, 0.2965 ± 0.0039) [z = 0.95,
    # 1.38 between them; 0.96, 1.05 against the sampler]; first-order W (0.9273 ± 0.0078,
    # 0.2156 ± 0.0038) [z on σ2 = −17 against the sampler, −15 against the sde].
    quot = Simulation(check_text(quotient_model(128, 10000), "<glq>"))
    q_mean, q_se = stationary(quot.run().records["sigma"])
    full = Simulation(check_text(rect_model(128, 10000, "float64"), "<gl>"))
    s_mean, s_se = stationary(full.run().records["sigma"])
    n_mean, n_se = stationary(first_order_w_run(quot, 10000))
    print("quotient", q_mean, q_se, "sde", s_mean, s_se, "first-order W", n_mean, n_se)
    assert np.all(np.abs(z_against(q_mean, q_se)) <= 3.0), (q_mean, q_se)
    assert np.all(np.abs(z_against(q_mean, q_se, (s_mean, s_se))) <= 3.0), (q_mean, q_se, s_mean, s_se)
    assert z_against(n_mean, n_se)[1] < -5.0, (n_mean, n_se)
    assert z_against(n_mean, n_se, (s_mean, s_se))[1] < -5.0, (n_mean, n_se, s_mean, s_se)


PRODUCT = """model gl_product_bias
import std.factorization
data {
  W_star : R[3, 4] = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
}
param P : R[3, 2] = normal(0, 0.7)
param Q : R[2, 4] = normal(0, 0.7)
param b : R = 0.5
predictor W = P @ Q + b
let sigma = svdvals(P @ Q)[:2]
loss = 0.5 * sum((W - W_star)^2) + 0.5 * b^2
symmetry gl = gl_product(P, Q)
noise projected(T = 0.1)
run {
  dynamics  = DYNAMICS
  particles = 64
  dt        = 5e-3
  steps     = 6000
  seed      = 0
  start     = slice
  dtype     = float32
  record every 100: sigma, b
}
"""


@pytest.mark.slow
def test_transposed_factors_with_a_free_parameter_in_float32():
    # W = P Q (V = Qᵀ stored transposed), a bias b no symmetry moves, float32; against the full
    # `sde` at the same size. Measured: quotient E[σ] = (1.036 ± 0.013, 0.383 ± 0.008), E[b] =
    # 0.080 ± 0.009; sde (1.039 ± 0.014, 0.369 ± 0.007), 0.062 ± 0.007 [z = −0.2, 1.3, 1.6]. The
    # quotient's factors stay balanced to 3e-7; the sde's PᵀP − QQᵀ had wandered to 0.79 by t = 30.
    out = {}
    for dynamics in ("quotient", "sde"):
        sim = Simulation(check_text(PRODUCT.replace("DYNAMICS", dynamics), "<glq>"))
        res = sim.run()
        sigma = np.asarray(res.records["sigma"], np.float64)
        b = np.asarray(res.records["b"], np.float64).reshape(sigma.shape[:2] + (1,))
        out[dynamics] = stationary(np.concatenate([sigma, b], axis=-1))
        if dynamics == "quotient":
            u, v = sim.quotient.factors(jnp.asarray(res.theta[0], jnp.float64))
            assert float(jnp.abs(u.T @ u - v.T @ v).max()) < 1e-5
    (qm, qs), (sm, ss) = out["quotient"], out["sde"]
    z = (qm - sm) / np.sqrt(qs**2 + ss**2)
    assert np.all(np.abs(z) <= 3.0), (qm, qs, sm, ss)
