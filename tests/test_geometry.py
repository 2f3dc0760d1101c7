"""The geometry engine against docs/theory.md §3 (the Gram determinants), P1, P2, P5 and P8.

Everything runs in float64. Tolerances: 1e-10 on log det G is ~10⁴ ulps of the O(10–100)
values involved, enough for a Cholesky of a well-conditioned Gram; charge conservation
along an adaptive ODE solve with rtol = atol = 1e-12 is limited by the solver, hence 1e-8.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gaugedsl.check import check_text
from gaugedsl.diagnostics import GaugeError
from gaugedsl.geometry import Geometry, predicted_law
from gaugedsl.geometry.closed_form import closed_form
from gaugedsl.geometry.summary import bias_summary
from gaugedsl.lowering import Lowered

jax.config.update("jax_enable_x64", True)
POINTS = 50


def geometry(text: str) -> Geometry:
    return Geometry(Lowered(check_text("model m\n" + text, "<test>")))


def random_points(geo, n=POINTS, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (n, geo.dimension))


def e_sym(values, k):
    """Elementary symmetric polynomial e_k of the entries of `values`."""
    poly = np.poly1d([1.0])
    for x in values:
        poly = poly * np.poly1d([1.0, x])
    return poly.coeffs[k]


def _gl_formula(u, v):
    lu, lv = np.linalg.eigvalsh(u.T @ u), np.linalg.eigvalsh(v.T @ v)
    return np.sum(np.log(lu[:, None] + lv[None, :]))


def _orth_formula(u, v):
    m = np.linalg.eigvalsh(u.T @ u + v.T @ v)
    i, j = np.triu_indices(len(m), 1)
    return np.sum(np.log((m[i] + m[j]) / 2))


# (model text, symmetry name, the log det G formula of docs/theory.md §3 at any point)
TABLE = {
    "diagonal net": (
        "import std.rescaling\nparam u : R[7]\nparam v : R[7]\npredictor w = u * v\nloss = sum(w^2)\nsymmetry s = rescaling(u, v)",
        lambda p: np.sum(np.log(p["u"] ** 2 + p["v"] ** 2)),
    ),
    **{
        f"deep diagonal L={L}": (
            f"import std.deep\nparam U : R[{L}, 5]\npredictor w = prod(U, axis = 0)\nloss = sum(w^2)\nsymmetry s = deep_rescaling(U)",
            lambda p, L=L: sum(np.log(e_sym(p["U"][:, i] ** 2, L - 1)) for i in range(5)),
        )
        for L in (2, 3, 4)
    },
    "deep diagonal L=3, separate vectors": (
        "import std.deep\nparam u1 : R[4]\nparam u2 : R[4]\nparam u3 : R[4]\npredictor w = u1 * u2 * u3\nloss = sum(w^2)\nsymmetry s = deep3(u1, u2, u3)",
        lambda p: sum(np.log(e_sym(np.array([p["u1"][i], p["u2"][i], p["u3"][i]]) ** 2, 2)) for i in range(4)),
    ),
    **{
        f"GL({r}) factorization {m}x{n}": (
            f"import std.factorization\nparam U : R[{m}, {r}]\nparam V : R[{n}, {r}]\npredictor W = U @ V.T\nloss = sum(W^2)\nsymmetry s = gl_factorization(U, V)",
            lambda p: _gl_formula(p["U"], p["V"]),
        )
        for m, n, r in ((4, 3, 2), (6, 5, 3), (5, 7, 4))
    },
    "GL(3) product P Q": (
        "import std.factorization\nparam P : R[5, 3]\nparam Q : R[3, 4]\npredictor W = P @ Q\nloss = sum(W^2)\nsymmetry s = gl_product(P, Q)",
        lambda p: _gl_formula(p["P"], p["Q"].T),
    ),
    **{
        f"O({r}) factorization {m}x{n}": (
            f"import std.factorization\nparam U : R[{m}, {r}]\nparam V : R[{n}, {r}]\npredictor W = U @ V.T\nloss = sum(W^2)\nsymmetry s = orthogonal_factorization(U, V)",
            lambda p: _orth_formula(p["U"], p["V"]),
        )
        for m, n, r in ((4, 3, 2), (6, 5, 3), (5, 7, 4))
    },
    "ReLU neuron rescaling": (
        "import std.relu\ndata { X : R[6, 3] = normal(0, 1, seed = 0) }\nparam W : R[5, 3]\nparam V : R[2, 5]\n"
        "loss = sum((relu(X @ W.T) @ V.T)^2)\nsymmetry s = neuron_rescaling(W, V)",
        lambda p: np.sum(np.log(np.sum(p["W"] ** 2, axis=1) + np.sum(p["V"] ** 2, axis=0))),
    ),
    "attention Q/K columns": (
        "import std.attention\nparam Q : R[6, 4]\nparam K : R[6, 4]\npredictor S = Q @ K.T\nloss = sum(S^2)\nsymmetry s = qk_columns(Q, K)",
        lambda p: np.sum(np.log(np.sum(p["Q"] ** 2, axis=0) + np.sum(p["K"] ** 2, axis=0))),
    ),
    "attention Q/K full GL": (
        "import std.attention\nparam Q : R[6, 3]\nparam K : R[6, 3]\npredictor S = Q @ K.T\nloss = sum(S^2)\nsymmetry s = qk_gl(Q, K)",
        lambda p: _gl_formula(p["Q"], p["K"]),
    ),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_log_det_gram_reproduces_theory_table(case):
    text, formula = TABLE[case]
    geo = geometry(text)
    thetas = random_points(geo)
    generic = jax.jit(jax.vmap(lambda t: geo.logdet_gram("s", t, structured=False)))(thetas)
    structured = jax.jit(jax.vmap(lambda t: geo.logdet_gram("s", t)))(thetas)
    expected = np.array([formula({k: np.asarray(v) for k, v in geo.layout.unflatten(t).items()}) for t in thetas])
    np.testing.assert_allclose(generic, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(structured, expected, rtol=0, atol=1e-10)


SLICE_CASES = [c for c in TABLE if not c.startswith("O(")]


@pytest.mark.parametrize("case", SLICE_CASES)
def test_projection_onto_the_slice_zeroes_charges_and_keeps_the_predictor(case):
    geo = geometry(TABLE[case][0])
    lowered = geo.lowered
    charges = jax.jit(lambda t: geo.charges("s", t))
    for theta in random_points(geo, n=5, seed=1):
        projected = geo.project_to_slice(theta)
        assert float(jnp.max(jnp.abs(charges(projected)))) < 1e-10
        before = lowered.predictors(geo.layout.unflatten(theta))
        after = lowered.predictors(geo.layout.unflatten(projected))
        for name in before:
            scale = max(1.0, float(jnp.max(jnp.abs(before[name]))))
            assert float(jnp.max(jnp.abs(after[name] - before[name]))) < 1e-12 * scale
        loss_before = lowered.loss(geo.layout.unflatten(theta))
        loss_after = lowered.loss(geo.layout.unflatten(projected))
        assert abs(float(loss_after - loss_before)) <= 1e-10 * max(1.0, abs(float(loss_before)))


@pytest.mark.parametrize("case", [c for c in SLICE_CASES if "separate" not in c])
def test_closed_form_matches_generic_route_on_the_slice(case):
    geo = geometry(TABLE[case][0])
    sym = geo.symmetries["s"]
    cf = closed_form(sym, geo.patterns["s"], geo.model)
    assert cf is not None, "every stdlib action of this table has a closed form"
    logdet = jax.jit(lambda t: geo.logdet_gram("s", t, structured=False))
    for theta in random_points(geo, n=10, seed=2):
        projected = geo.project_to_slice(theta)
        params = {k: np.asarray(v) for k, v in geo.layout.unflatten(projected).items()}
        assert abs(cf.numeric(params) - float(logdet(projected))) < 1e-10


def test_orthogonal_closed_form_on_the_balanced_slice():
    # docs/theory.md, P8: on U = PΣ^½, V = QΣ^½ the O(r) Gram determinant is Π_{i<j}(σ_i + σ_j).
    geo = geometry(TABLE["O(3) factorization 6x5"][0])
    logdet = jax.jit(lambda t: geo.logdet_gram("s", t, structured=False))
    rng = np.random.default_rng(3)
    for _ in range(10):
        p, _ = np.linalg.qr(rng.normal(size=(6, 3)))
        q, _ = np.linalg.qr(rng.normal(size=(5, 3)))
        sigma = rng.uniform(0.5, 3.0, size=3)
        theta = geo.layout.flatten({"U": jnp.asarray(p * np.sqrt(sigma)), "V": jnp.asarray(q * np.sqrt(sigma))})
        i, j = np.triu_indices(3, 1)
        assert abs(float(logdet(theta)) - np.sum(np.log(sigma[i] + sigma[j]))) < 1e-10


def test_closed_form_depth_exponent():
    # T(1 − 1/L) Σ log|w_i|: the SymPy-derived block determinant is L |w|^{2(L−1)/L}.
    for L in (2, 3, 4):
        geo = geometry(TABLE[f"deep diagonal L={L}"][0])
        cf = closed_form(geo.symmetries["s"], geo.patterns["s"], geo.model)
        w = cf.block_logdet.free_symbols.pop()
        for value in (0.3, 1.7):
            assert abs(float(cf.block_logdet.subs(w, value)) - L * value ** (2 * (L - 1) / L)) < 1e-12


# ---- P1, P2 ----------------------------------------------------------------------------

DIAGONAL = """import std.rescaling
data {
  X : R[10, 20] = normal(0, 1, seed = 0)
  w_star : R[20] = sparse(k = 3, seed = 1)
  y : R[10] = X @ w_star
}
param u : R[20] = normal(0, 0.5)
param v : R[20] = normal(0, 0.5)
predictor w = u * v
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry s = rescaling(u, v)
"""

FACTORIZATION = """import std.factorization
data { M : R[6, 5] = normal(0, 1, seed = 2) }
param U : R[6, 3] = normal(0, 0.5)
param V : R[5, 3] = normal(0, 0.5)
loss = 0.5 * sum((U @ V.T - M)^2)
symmetry s = gl_factorization(U, V)
"""


@pytest.mark.parametrize("text", [DIAGONAL, FACTORIZATION], ids=["diagonal", "GL"])
def test_p1_gradient_flow_conserves_the_charges(text):
    geo = geometry(text)
    lowered = geo.lowered
    theta0 = lowered.layout.flatten(lowered.init_params(jax.random.PRNGKey(0)))
    grad = jax.grad(lambda t: lowered.loss(lowered.layout.unflatten(t)))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: -grad(y)),
        diffrax.Tsit5(),
        0.0,
        5.0,
        0.01,
        theta0,
        saveat=diffrax.SaveAt(ts=jnp.linspace(0, 5, 6)),
        stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12),
        max_steps=200_000,
    )
    c0 = geo.charges("s", theta0)
    moved = float(jnp.linalg.norm(sol.ys[-1] - theta0))
    assert moved > 0.1, "the flow must actually move for the test to mean anything"
    for y in sol.ys:
        rel = float(jnp.max(jnp.abs(geo.charges("s", y) - c0)) / jnp.max(jnp.abs(c0)))
        assert rel < 1e-8


def test_p2_discrete_balancing_identity():
    # c' = c (1 − η² g²) for every (S)GD step u' = u − η g⊙v, v' = v − η g⊙u, c = u² − v².
    geo = geometry(DIAGONAL)
    lowered = geo.lowered
    params = lowered.init_params(jax.random.PRNGKey(0))
    eta = 0.05
    rng = np.random.default_rng(0)
    grad = jax.jit(jax.grad(lowered.batch_loss))
    for _ in range(200):
        batch = lowered.samples(jnp.asarray(rng.choice(10, 2, replace=False)))
        grads = grad(params, batch)
        g = grads["u"] / params["v"]  # ∂L/∂u = g ⊙ v
        c = params["u"] ** 2 - params["v"] ** 2
        params = {"u": params["u"] - eta * grads["u"], "v": params["v"] - eta * grads["v"]}
        c_new = params["u"] ** 2 - params["v"] ** 2
        np.testing.assert_allclose(c_new, c * (1 - eta**2 * g**2), rtol=1e-12, atol=1e-15)


# ---- the quotient metric, the predicted law ---------------------------------------------


def test_quotient_metric_of_the_hadamard_product_is_2w():
    geo = geometry(DIAGONAL)
    theta = geo.project_to_slice(random_points(geo, n=1)[0])
    w = geo.lowered.predictors(geo.layout.unflatten(theta))["w"]
    np.testing.assert_allclose(geo.quotient_metric_inverse(theta), jnp.diag(2 * jnp.abs(w)), atol=1e-12)


SCALAR = """param u : R = 1.0
param v : R = 1.0
predictor w = u * v
loss = 0.5 * (w - 0.5)^2
symmetry b : Scale { u -> g * u  v -> v / g }
noise projected(T = 0.1)
"""


def test_p5_predicted_mean_of_the_scalar_model():
    law = predicted_law(geometry(SCALAR), 0.1)
    # The quadrature of ∫ w·w^{-1/2} e^{-L/T} / ∫ w^{-1/2} e^{-L/T} is 0.41545; 1e-3 is the
    # acceptance band (the grid error is ~1e-4).
    assert abs(law.mean - 0.4154) < 1e-3
    assert abs(law.gibbs_mean - 0.538) < 1e-3


def test_p6_depth_three_law_is_uniform_in_slice_arclength():
    # Depth-L product on the balanced line: p(w) ∝ e^{-L/T}|w|^{-(L-1)/L}, i.e. E[w] equals the
    # mean of s³ under e^{-L(s³)/T} ds; for odd L the line runs through the origin to w < 0.
    text = "param a : R = 1.0\nparam b : R = 1.0\nparam c : R = 1.0\npredictor w = a * b * c\nloss = 0.5 * (w - 0.5)^2\n" \
           "symmetry d : Scale[2] { a -> g[0] * a  b -> g[1] / g[0] * b  c -> c / g[1] }\nnoise projected(T = 0.1)\n"  # fmt: skip
    law = predicted_law(geometry(text), 0.1)
    s = np.linspace(-3, 3, 400_001)
    weight = np.exp(-0.5 * (s**3 - 0.5) ** 2 / 0.1)
    expected = np.trapezoid(s**3 * weight, s) / np.trapezoid(weight, s)
    assert abs(law.mean - expected) < 2e-3


# ---- bad input ---------------------------------------------------------------------------


def test_a_symmetry_that_breaks_the_loss_is_reported_with_its_violation():
    text = "param u : R[3]\nparam v : R[3]\nloss = sum((u * v - 1)^2) + sum(u)\nsymmetry s : Scale[3] { u -> g * u  v -> v / g }\n"
    with pytest.raises(GaugeError) as exc:
        bias_summary(Lowered(check_text("model m\n" + text, "<test>")), law=False)
    (d,) = exc.value.diagnostics
    assert d.code == "E901" and "relative change up to" in d.message
    assert d.span.line == 5


def test_a_degenerate_gram_is_reported_not_nan():
    text = "param u : R[3] = zeros()\nparam v : R[3] = zeros()\nloss = sum((u * v - 1)^2)\nsymmetry s : Scale[3] { u -> g * u  v -> v / g }\n"
    with pytest.raises(GaugeError) as exc:
        bias_summary(Lowered(check_text("model m\n" + text, "<test>")), law=False)
    codes = [d.code for d in exc.value.diagnostics]
    assert codes == ["E902"]
    assert "0 of 3 generators are independent" in exc.value.diagnostics[0].message
