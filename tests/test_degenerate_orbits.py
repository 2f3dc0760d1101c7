"""Degenerate orbits (docs/theory.md §9, item 2; P6): the predicted law walks through them
whatever the precision, the charge keeper works for every torus action, and a particle that
leaves its sign branch anyway is reported (W802).

The law's tolerances are quadrature errors (the arclength grid, ds ≈ 3e-4, and rounding over
~10⁴ RK4 steps in float32); the simulation's are Monte Carlo standard errors computed from
the sample (3 of them) plus the O(dt) bias of the scheme, stated where it matters.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gaugedsl.check import check_file, check_text
from gaugedsl.dynamics import Simulation, _geometry, branches, torus
from gaugedsl.dynamics.gauge import ChargeKeeper
from gaugedsl.dynamics.plan import Numbers
from gaugedsl.geometry import Geometry, predicted_law
from gaugedsl.lowering import Lowered

jax.config.update("jax_enable_x64", True)

T = 0.1


def product(depth: int, manifold: str = "R", extra: str = "") -> str:
    """The scalar depth-L product w = a·b·…, L = (w − 0.5)²/2, with its rescaling chain."""
    names = "abcdefg"[:depth]
    params = "".join(f"param {n} : {manifold} = 1.0\n" for n in names)
    moves = []
    for i, n in enumerate(names):
        up = f"g[{i}]" if i < depth - 1 else "1"
        down = f" / g[{i - 1}]" if i else ""
        moves.append(f"{n} -> {up}{down} * {n}")
    return (
        f"model product{depth}\n{params}predictor w = {' * '.join(names)}\nloss = 0.5 * (w - 0.5)^2\n"
        f"symmetry chain : Scale[{depth - 1}] {{ {'  '.join(moves)} }}\nnoise projected(T = {T})\n{extra}"
    )


def law_of(text: str, dtype, theta0=None):
    geo = Geometry(Lowered(check_text(text, "<test>")))
    start = np.ones(geo.dimension) if theta0 is None else np.asarray(theta0)
    return predicted_law(geo, T, theta0=start.astype(dtype))


def quadrature(depth: int, both_signs: bool):
    """E[w] and P(w < 0) for p uniform in the balanced line's arclength times exp(−L/T) (P6)."""

    def weight(s):
        return np.exp(-0.5 * (s**depth - 0.5) ** 2 / T)

    s, left = np.linspace(0, 3, 600_001), np.linspace(-3 if both_signs else 0, 0, 600_001)
    z_right, z_left = np.trapezoid(weight(s), s), np.trapezoid(weight(left), left)
    mean = (np.trapezoid(s**depth * weight(s), s) + np.trapezoid(left**depth * weight(left), left)) / (z_right + z_left)
    return mean, z_left / (z_right + z_left)


# ---- bug 1: the law ------------------------------------------------------------------------


def test_odd_depth_law_crosses_the_origin_in_either_precision():
    """Depth 3 on R: the walk used to stop at w = 0 in float64 (P(w<0) = 0, E[w] = 0.349)
    and cross in float32 (0.2686). Now both cover both signs and match the quadrature.
    Tolerances: float64 1e-6 on E[w] (grid error ~ds² ≈ 1e-7) and 1e-5 on P(w < 0) (the CDF is
    interpolated linearly in w across the cusp ∝ |w|^{1/3} at 0); float32 2e-4 (rounding over
    2·10⁴ steps; observed ~1e-5)."""
    mean, negative = quadrature(3, both_signs=True)
    assert 0.2 < negative < 0.21  # the case the bug was about: a fifth of the mass is at w < 0
    for dtype, tol in ((np.float64, 1e-6), (np.float32, 2e-4)):
        law = law_of(product(3), dtype)
        assert abs(law.mean - mean) < tol, dtype
        assert abs(float(law.cdf(np.array([0.0]))[0]) - negative) < max(tol, 1e-5), dtype
        assert law.w[0] < -1.0  # it went on past the origin, well into w < 0


@pytest.mark.slow  # CI: kept under --runslow (suite time)
def test_odd_depth_law_does_not_depend_on_where_the_walk_starts():
    """From the negative branch, or off the slice: the same line, the same law (as above)."""
    mean, negative = quadrature(3, both_signs=True)
    for start in ([1.0, 1.0, -1.0], [0.3, -2.0, 0.5]):
        law = law_of(product(3), np.float64, start)
        assert abs(law.mean - mean) < 1e-5
        assert abs(float(law.cdf(np.array([0.0]))[0]) - negative) < 1e-5


@pytest.mark.parametrize("depth, manifold", [(2, "R"), pytest.param(4, "R", marks=pytest.mark.slow), (3, "Positive")])
def test_the_law_stays_on_its_side_where_crossing_adds_nothing(depth, manifold):
    """Even depth: w(−s) = w(s), the far side repeats the law (the float32 walk used to cross
    and double the grid, a non-monotone w). Positive parameters: the orthant ends at the
    origin. Either way P(w < 0) = 0 and E[w] is the one-sided quadrature (P5: 0.41545 for
    depth 2), in both precisions; tolerances as above."""
    mean, _ = quadrature(depth, both_signs=False)
    for dtype, tol in ((np.float64, 1e-6), (np.float32, 2e-4)):
        law = law_of(product(depth, manifold), dtype)
        assert law.w[0] >= 0 and float(law.cdf(np.array([0.0]))[0]) == 0.0
        assert abs(law.mean - mean) < tol, dtype
        assert np.all(np.diff(law.w) >= 0)


# ---- bug 2: the keeper for torus actions ------------------------------------------------------

DEEP3 = """model deep3_run
import std.deep
param u1 : R[4] = normal(0, 1)
param u2 : R[4] = normal(0, 1)
param u3 : R[4] = normal(0, 1)
predictor w = u1 * u2 * u3
loss = 0.5 * sum((w - 0.5)^2)
symmetry layers = deep3(u1, u2, u3)
noise projected(T = 0.1)
run {
  particles = 128
  steps = 2500
  dt = 2e-3
  start = slice
  dtype = float64
  record every 500: w
}
"""


def deep3_geometry():
    return _geometry.geometry(Lowered(check_text(DEEP3, "<deep3>")))


def test_deep3_is_a_torus_action_in_blocks_of_one_coordinate():
    geo = deep3_geometry()
    action = _geometry.torus_action(geo)
    assert isinstance(action, torus.TorusAction)
    (family,) = action.families
    assert np.asarray(family.coords).shape == (4, 3) and np.asarray(family.gens).shape == (4, 2)
    theta = jax.random.normal(jax.random.PRNGKey(0), (geo.dimension,))
    np.testing.assert_allclose(action.charges(theta), geo.all_charges(theta), atol=1e-14)


def test_the_charge_drift_is_T_tr_A_P_H():
    """dχ_a/dt = T tr(A_a P_H) with A_a = diag(M_a); the block formula against the geometry
    engine's dense projector at random points (1e-10: an eigendecomposition of G)."""
    geo = deep3_geometry()
    action = _geometry.torus_action(geo)
    m_dense = action.exponents()
    for seed in range(3):
        theta = jax.random.normal(jax.random.PRNGKey(seed), (geo.dimension,))
        projector = np.asarray(geo.horizontal_projector(theta))
        expected = np.einsum("aj,jj->a", m_dense, projector)
        ours = np.zeros(action.k)
        for fam in action.families:
            coords, gens, m = torus._arrays(fam, theta.dtype)
            ours[np.asarray(gens)] = np.asarray(jax.vmap(torus.drive)(m, theta[coords] ** 2)[0])
        np.testing.assert_allclose(ours, expected, atol=1e-10)


@eqx.filter_jit
def _keeper_only(action, theta, dt, steps):
    """The keeper alone (θ not moved across orbits): an integrator of the charge ODE."""
    keep = ChargeKeeper(action)
    numbers = Numbers(jnp.asarray(dt, theta.dtype), {"T": jnp.asarray(T, theta.dtype)})
    return jax.lax.fori_loop(0, steps, lambda _, t: keep(t, t, numbers), theta)


def _reference_charges(action, theta, t_end):
    """The ODE along the orbit, da/dt = G⁻¹ T drive, with Diffrax (Tsit5, rtol = atol = 1e-12)."""
    m_dense = jnp.asarray(action.exponents())
    x0 = theta**2

    def field(t, a, args):
        x = x0 * jnp.exp(2 * (m_dense.T @ a))
        out = jnp.zeros(action.k)
        for fam in action.families:
            coords, gens, m = torus._arrays(fam, x.dtype)
            b, gram = jax.vmap(torus.drive)(m, x[coords])
            out = out.at[gens].set(jnp.linalg.solve(gram, T * b[..., None])[..., 0])
        return out

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5(), 0.0, t_end, 1e-3, jnp.zeros(action.k),
        stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12), max_steps=100_000,
    )  # fmt: skip
    a = sol.ys[-1]
    return 0.5 * m_dense @ (x0 * jnp.exp(2 * (m_dense.T @ a)))


@pytest.mark.slow  # CI: kept under --runslow (suite time)
def test_the_keeper_charges_follow_their_ode_for_deep3():
    """From an unbalanced point, the keeper's charges after t = 2 against a fine Diffrax solve
    of the same ODE. The scheme is first order: the error at dt = 4e-3 is below 2e-3 of the
    change of the charges and halves (within 25%) with dt."""
    geo = deep3_geometry()
    action = _geometry.torus_action(geo)
    theta = jnp.asarray(np.random.default_rng(3).uniform(0.3, 1.5, geo.dimension))
    chi0 = np.asarray(action.charges(theta))
    reference = np.asarray(_reference_charges(action, theta, 2.0))
    change = np.max(np.abs(reference - chi0))
    assert change > 0.05  # the charges move
    errors = []
    for dt in (4e-3, 2e-3):
        kept = _keeper_only(action, theta, dt, int(round(2.0 / dt)))
        errors.append(np.max(np.abs(np.asarray(action.charges(kept)) - reference)))
    assert errors[0] < 2e-3 * change
    assert 1.5 < errors[0] / errors[1] < 2.5


@pytest.mark.slow  # CI: kept under --runslow (suite time)
def test_the_keeper_is_stable_at_a_near_degenerate_orbit():
    """θ² ~ 1e-6 with T dt = 1e-3: the flow's rate T/θ² ~ 10⁵ is 100× faster than a step, and
    the exact charges relax to ~1e-18 within it (Diffrax). A linearized (Rosenbrock) step
    overshot here and the charges grew 100-fold over a few steps; the keeper's step shrinks
    them by more than 100× in the first step and they never grow again; w is unchanged (an
    orbit move, to 1e-12)."""
    geo = deep3_geometry()
    action = _geometry.torus_action(geo)
    theta = jnp.asarray(np.repeat([1e-3, 2e-3, 0.5e-3], 4))  # u1, u2, u3
    w0 = np.prod(np.asarray(theta).reshape(3, 4), axis=0)
    first = np.max(np.abs(np.asarray(action.charges(theta))))
    sizes = []
    for _ in range(5):
        theta = _keeper_only(action, theta, 1e-2, 1)
        sizes.append(np.max(np.abs(np.asarray(action.charges(theta)))))
    assert np.all(np.isfinite(sizes)) and sizes[0] < 1e-2 * first
    assert np.all(np.diff(sizes) <= 1e-3 * sizes[0])
    np.testing.assert_allclose(np.prod(np.asarray(theta).reshape(3, 4), axis=0), w0, rtol=1e-12)


# ---- bug 2: the simulation keeps its branch; W802 when it does not ------------------------------


def _left(result, sim):
    return branches.left_branch(sim.chains, result.theta0, result.theta, 1e-8)


def test_a_deep3_run_keeps_its_sign_branches():
    """std.deep's deep3 on R, projected noise, started balanced, t = 5 at dt = 2e-3. Before
    the torus keeper (no keeper for this action) 53 of these 128 particles (41%; 12% of the
    coordinates) left their branch, more at smaller dt (at t = 20: 61% at dt = 1e-2, 84% at
    dt = 1e-3). With it none do, the chains stay balanced, and nothing is reported."""
    sim = Simulation(check_text(DEEP3, "<deep3>"))
    r = sim.run()
    assert not _left(r, sim).any()
    x = r.theta.reshape(-1, 3, 4) ** 2
    assert np.max(np.abs(x[:, 0] - x[:, 1]) / (x[:, 0] + x[:, 1])) < 1e-6
    assert [d.code for d in r.diagnostics] == []


def test_a_run_without_the_keeper_is_reported(monkeypatch, tmp_path):
    """The same run to t = 2 with plain Euler steps (the keeper switched off): particles jump
    between lines near the origin (10 of 128 here), and W802 says how many, at the dt setting."""
    monkeypatch.setattr(_geometry, "charge_keeper", lambda geo: None)
    path = tmp_path / "deep3.gauge"
    path.write_text(DEEP3)
    sim = Simulation(check_file(str(path)), steps=1000)
    r = sim.run()
    left = int(_left(r, sim).sum())
    assert left >= 5
    (d,) = r.diagnostics
    assert d.code == "W802" and d.severity == "warning"
    assert d.message.startswith(f"{left} of 128 particles left their sign branch through a degenerate orbit")
    assert d.span.line == 13  # dt = 2e-3


def test_the_detector_judges_balanced_chains_only():
    """A flipped relative sign counts where the chain started balanced; started off balance a
    coordinate may pass 0 legitimately (its charge not yet decayed), and it is not judged."""
    action = _geometry.torus_action(deep3_geometry())
    chains = branches.chains(action)
    balanced = np.tile([1.0, 0.7, 1.3, 0.9], 3)[None]  # u1 = u2 = u3 per coordinate
    unbalanced = balanced * np.array([1.0] * 4 + [0.5] * 4 + [1.0] * 4)
    start = np.concatenate([balanced, unbalanced])
    end = start.copy()
    end[:, 4] *= -1  # u2_0 changes sign alone
    assert branches.left_branch(chains, start, end, 1e-8).tolist() == [True, False]
    assert branches.left_branch(chains, start, -start, 1e-8).tolist() == [False, False]  # along the line


# ---- the simulation against the law ------------------------------------------------------------------


def _law_samples(law, n, rng):
    return np.interp(rng.uniform(size=n), law.cdf_values, law.w)


def _stationarity(particles: int, steps: int, dt: float):
    """Particles drawn from the predicted law (balanced, w = s³), run for steps·dt: the end
    sample against the law."""
    settings = f"particles = {particles}\n  steps = {steps}\n  dt = {dt}\n  dtype = float64\n  record every {steps}: w"
    extra = f"run {{\n  {settings}\n}}\n"
    text = product(3, extra=extra)
    law = law_of(text, np.float64)
    sim = Simulation(check_text(text, "<product3>"))
    w0 = _law_samples(law, particles, np.random.default_rng(0))
    r = sim.run(state=sim.state_at(np.repeat(np.cbrt(w0)[:, None], 3, axis=1)))
    w = r.records["w"][-1]
    assert r.healthy.all() and not _left(r, sim).any()
    return w, law


def _assert_agrees(w, law):
    se_mean = w.std() / np.sqrt(w.size)
    p = float(law.cdf(np.array([0.0]))[0])
    se_p = np.sqrt(p * (1 - p) / w.size)
    assert abs(w.mean() - law.mean) < 3 * se_mean, (w.mean(), law.mean, se_mean)
    assert abs(np.mean(w < 0) - p) < 3 * se_p, (np.mean(w < 0), p, se_p)


@pytest.mark.slow  # CI: test_odd_depth_law_crosses_the_origin_in_either_precision (the law against quadrature) and test_quotient.py's odd depth (suite time)
def test_the_depth3_simulation_keeps_the_predicted_law():
    """Depth 3, float64, 2000 particles started from the law, t = 4 at dt = 2e-3: E[w] and
    P(w < 0) within 3 standard errors (≈ 0.007 and 0.009) of the law (0.2687, 0.2019). The old
    float64 law (0.349, 0) is 11 and 22 standard errors away. The scheme's bias at this dt
    is below 2e-3 (half the step)."""
    w, law = _stationarity(2000, 2000, 2e-3)
    _assert_agrees(w, law)


@pytest.mark.slow
def test_the_depth3_simulation_keeps_the_predicted_law_full():
    """As above with 10000 particles and t = 10 (standard errors ≈ 0.003, 0.004)."""
    w, law = _stationarity(10000, 5000, 2e-3)
    _assert_agrees(w, law)
