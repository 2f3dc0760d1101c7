"""Symmetry discovery (gaugedsl/discovery/): the algebra, its names, the fiber, the conservation
laws, and the comparison with what is declared — each on a model small enough to run in seconds.

The rank decisions are exact up to rounding (the conditions are polynomial identities in θ): every
test below also asserts that the singular-value gap is wide (≥ 10⁶), so a dimension that passes
is not a lucky threshold.
"""

import json

import pytest

import gaugedsl
from gaugedsl.check import check_text
from gaugedsl.discovery import discover, rewrite

DATA = """data {
  X : R[7, 3] = normal(0, 1, seed = 0)
  y : R[7]    = normal(0, 1, seed = 1)
}
"""


def found(body: str, laws: bool = False, name: str = "m"):
    text = f"model {name}\n{body}"
    d = discover(check_text(text, "<test>"), laws=laws)
    assert d.algebra.gap >= 1e6, d.algebra.gap
    return d, text


def groups(d):
    return sorted(a.group for a in d.named)


def assert_declarations_check(d, text):
    """The discovered declarations, written into the model, check and span the same dimension."""
    rewritten = check_text(rewrite(text, d), "<rewritten>")
    again = discover(rewritten, laws=False)
    assert again.declared_rank == d.dimension and all(x.is_symmetry for x in again.declared)
    return rewritten


def test_hadamard_product_is_a_scale_group():
    d, text = found(
        "param u : R[4] = normal(0, 1)\nparam v : R[4] = normal(0, 1)\npredictor w = u * v\nloss = sum(w^2)\n"
    )
    assert d.dimension == 4 and groups(d) == ["Scale[4]"] and d.unnamed == 0
    assert d.algebra.fiber_dimension == 4 and d.nonlinear == 0
    assert_declarations_check(d, text)


def test_parameters_on_manifolds_keep_only_the_tangent_symmetries():
    """On `Positive` (open: every rescaling is tangent) u ⊙ v keeps its `Scale[3]`; a rescaling
    between a scalar and a point of `Sphere[3]` leaves the sphere, so the same product with x on the
    sphere has no linear symmetry, while with x on R[3] it has one."""
    d, text = found(
        "param u : Positive[3] = 1 + uniform(0, 1)\nparam v : R[3] = normal(0, 1)\npredictor w = u * v\n"
        "loss = sum(w^2)\n"
    )
    assert d.dimension == 3 and groups(d) == ["Scale[3]"]
    assert_declarations_check(d, text)
    on_sphere, _ = found("param a : R = 1.5\nparam x : Sphere[3]\npredictor y = a * x\nloss = sum(y^2)\n")
    assert on_sphere.dimension == 0 and on_sphere.algebra.tangent_dimension == 3
    flat, _ = found("param a : R = 1.5\nparam x : R[3] = normal(0, 1)\npredictor y = a * x\nloss = sum(y^2)\n")
    assert flat.dimension == 1


@pytest.mark.parametrize("depth", [3, 4])
def test_deep_diagonal_products_have_the_chain(depth):
    d, text = found(
        "".join(f"param u{i} : R[3] = normal(0, 1)\n" for i in range(depth))
        + "predictor w = "
        + " * ".join(f"u{i}" for i in range(depth))
        + "\nloss = sum(w^2)\n"
    )
    assert d.dimension == (depth - 1) * 3 and d.unnamed == 0
    assert_declarations_check(d, text)


def test_a_stacked_deep_product_is_one_telescoping_chain():
    d, text = found("param U : R[3, 4] = normal(0, 1)\npredictor w = prod(U, axis = 0)\nloss = sum(w^2)\n")
    assert d.dimension == 8 and groups(d) == ["Scale[2, 4]"]
    assert_declarations_check(d, text)


def test_a_factorization_is_gl_and_its_laws_are_the_published_count():
    r = 3
    d, text = found(
        f"param U : R[5, {r}] = normal(0, 1)\nparam V : R[4, {r}] = normal(0, 1)\npredictor W = U @ V.T\nloss = sum(W^2)\n",
        laws=True,
    )
    assert d.dimension == r * r and groups(d) == [f"GL[{r}]"]
    assert d.algebra.fiber_dimension == r * r  # nothing beyond the linear symmetries
    # Marcotte, Gribonval & Peyré (2023): r(r+1)/2 laws for U Vᵀ, the entries of UᵀU − VᵀV
    assert d.laws is not None and d.laws.count == r * (r + 1) // 2 and d.laws.charges_are_all
    assert_declarations_check(d, text)


def test_a_three_factor_linear_network_is_a_product_of_two_gl():
    d, text = found(
        "param A : R[4, 2] = normal(0, 1)\nparam B : R[2, 3] = normal(0, 1)\nparam C : R[3, 5] = normal(0, 1)\n"
        "predictor W = A @ B @ C\nloss = sum(W^2)\n"
    )
    assert d.dimension == 4 + 9 and groups(d) == ["GL[2]", "GL[3]"]
    assert_declarations_check(d, text)


def test_a_relu_layer_has_one_rescaling_per_hidden_unit_and_one_law_each():
    # 40 samples: each unit is active on enough of them to span the inputs (with fewer, a unit
    # active on samples spanning a plane keeps its weight's normal component: an extra law)
    d, text = found(
        DATA.replace("R[7, 3]", "R[40, 3]").replace("R[7]", "R[40]")
        + "param W : R[5, 3] = normal(0, 1)\nparam V : R[1, 5] = normal(0, 1)\n"
        "predictor out = V @ relu(W @ X.T)\nloss = mean((out[0] - y)^2)\n",
        laws=True,
    )
    assert d.dimension == 5 and groups(d) == ["Scale[5]"]
    assert d.laws is not None and d.laws.count == 5 and d.laws.charges_are_all  # ‖w_j‖² − v_j²
    assert_declarations_check(d, text)


def test_attention_scores_are_gl_on_queries_and_keys_and_nothing_on_values():
    d, text = found(
        "data {\n  X : R[6, 4] = normal(0, 1, seed = 0)\n}\n"
        "param Wq : R[4, 2] = normal(0, 1)\nparam Wk : R[4, 2] = normal(0, 1)\nparam Wv : R[4, 3] = normal(0, 1)\n"
        "predictor out = softmax((X @ Wq) @ (X @ Wk).T, axis = 1) @ (X @ Wv)\nloss = sum(out^2)\n"
    )
    assert d.dimension == 4 and groups(d) == ["GL[2]"]
    assert {r.split(" ->")[0] for a in d.named for r in a.rules} == {"Wq", "Wk"}
    assert_declarations_check(d, text)


def test_softmax_logits_translate():
    d, text = found("param b : R[4] = normal(0, 1)\npredictor p = softmax(b)\nloss = sum(p^2)\n")
    assert d.dimension == 1 and groups(d) == ["Translate"]
    assert_declarations_check(d, text)


def test_a_normalized_layer_is_scale_invariant():
    d, text = found("param w : R[4] = normal(0, 1)\npredictor p = w / norm(w)\nloss = sum((p - 0.5)^2)\n")
    assert d.dimension == 1 and groups(d) == ["Scale"]
    assert_declarations_check(d, text)


def test_a_declared_subalgebra_names_the_missing_directions():
    d, _ = found(
        "import std.factorization\nparam U : R[5, 3] = normal(0, 1)\nparam V : R[4, 3] = normal(0, 1)\n"
        "predictor W = U @ V.T\nloss = sum(W^2)\nsymmetry cols = diagonal_factorization(U, V)\n"
    )
    assert d.declared_rank == 3 and d.dimension == 9
    assert [a.group for a in d.missing] == ["GL[3]"] and "6 missing" in d.verdict()


def test_a_declared_non_symmetry_is_named():
    # u ⊙ v + u² has no linear symmetry (u ⊙ (v + 1) would: u -> g u, v -> (v + 1)/g − 1, an affine
    # action the search finds); its fibers are curved, and reported as such
    d, _ = found(
        "param u : R[3] = normal(0, 1)\nparam v : R[3] = normal(0, 1)\npredictor w = u * v + u^2\nloss = sum(w^2)\n"
        "symmetry s : Scale[3] { u -> g * u  v -> v / g }\n"
    )
    assert d.dimension == 0 and not d.declared[0].is_symmetry and "not a symmetry" in d.verdict()
    assert d.algebra.fiber_dimension == 3 and d.nonlinear == 3


def test_a_nonlinear_fiber_is_reported_not_missed():
    # w = u² + v² (scalars): the circles are the fibers; a rotation of (u, v) mixes two parameters,
    # which no declared action of the language does: one fiber direction, no linear symmetry.
    d, _ = found("param u : R = normal(0, 1)\nparam v : R = normal(0, 1)\npredictor w = u^2 + v^2\nloss = w^2\n")
    assert d.dimension == 0 and d.algebra.fiber_dimension == 1 and d.nonlinear == 1
    assert "1 direction(s) beyond any linear symmetry" in str(d)


def test_the_command_prints_json_writes_a_model_and_bias_can_discover(tmp_path, capsys):
    from gaugedsl.cli import main

    program = tmp_path / "m.gauge"
    program.write_text(
        "model m\nparam u : R[3] = normal(0, 1)\nparam v : R[3] = normal(0, 1)\npredictor w = u * v\n"
        "loss = sum((w - 1)^2)\n"
    )
    assert main(["symmetries", str(program), "--json", "--write", str(tmp_path / "out.gauge")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dimension"] == 3 and out["fiber_dimension"] == 3 and out["conservation_laws"] == 3
    assert out["groups"][0]["group"] == "Scale[3]"
    written = gaugedsl.load(tmp_path / "out.gauge")
    assert [s.name for s in written.ir.symmetries] == ["scale_u_v"]
    assert main(["bias", str(program), "--discover"]) == 0
    shown = capsys.readouterr().out
    assert "symmetry scale_u_v : Scale[3]" in shown and "log det G" in shown
    # the API gives the same
    assert gaugedsl.load(program).symmetries(laws=False).dimension == 3


def test_a_scalar_loss_is_read_through_its_derivatives_too():
    # A model read through its loss alone: one condition per point would need 1.5·64 + 4 points for
    # the 64 unknowns; the derivatives of the conditions give D more per point. The loss ignores
    # three entries of W (the mask): each can be rescaled and shifted freely, and nothing else can.
    d, _ = found(
        "data {\n  mask : R[16] = 1 - spikes(at = [1, 6, 11], values = [1, 1, 1], shape = [16])\n}\n"
        "param W : R[4, 4] = normal(0, 1)\nloss = sum(reshape(mask, [4, 4]) * (W - 1)^2)\n"
    )
    assert d.algebra.derivatives and d.algebra.determined and d.dimension == 6 and d.unnamed == 6


def test_a_declared_symmetry_the_search_cannot_express_is_not_called_wrong():
    # A rotation mixing two scalar parameters is a symmetry of u² + v² that no candidate family
    # contains: it is reported as outside the searched forms, not as a non-symmetry.
    d, _ = found(
        "param u : R = normal(0, 1)\nparam v : R = normal(0, 1)\npredictor w = u^2 + v^2\nloss = w^2\n"
        "symmetry r : SO[2] { u -> g[0, 0] * u + g[0, 1] * v  v -> g[1, 0] * u + g[1, 1] * v }\n"
    )
    (r,) = d.declared
    assert r.is_symmetry and not r.searched and "outside the forms the search covers" in d.verdict()
    # while a declared action that moves w is still called what it is
    bad, _ = found(
        "param u : R = normal(0, 1)\nparam v : R = normal(0, 1)\npredictor w = u^2 + 2 * v^2\nloss = w^2\n"
        "symmetry r : SO[2] { u -> g[0, 0] * u + g[0, 1] * v  v -> g[1, 0] * u + g[1, 1] * v }\n"
    )
    assert not bad.declared[0].is_symmetry and "not a symmetry" in bad.verdict()


def _candidates(extra_param: str = "", extra_loss: str = ""):
    """The candidates of a model with a vector, two non-square matrices and optionally more."""
    from gaugedsl.discovery.candidates import Candidates
    from gaugedsl.lowering import Lowered

    model = check_text(
        f"model m\n{extra_param}param v : R[3] = normal(0, 1)\nparam P : R[2, 4] = normal(0, 1)\n"
        f"param Q : R[4, 3] = normal(0, 1)\nloss = {extra_loss}sum(v^2) + sum((P @ Q)^2)\n",
        "<test>",
    )
    return Candidates(Lowered(model).layout)


def test_the_sparse_fields_are_the_candidates_own_fields():
    """`Candidates.sparse_fields` (built from the families' structure, what the discovery uses) is
    the Jacobian of `Candidates.field` in c, for scalars, vectors and non-square matrices."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    with jax.enable_x64(True):
        cands = _candidates("param a : R = 0.5\n", "a^2 + ")
        theta = np.random.default_rng(0).normal(size=cands.layout.dimension)
        dense = np.asarray(cands.fields(jnp.asarray(theta)))
    assert dense.shape == (1 + 3 + 8 + 12, cands.size)
    np.testing.assert_array_equal(cands.sparse_fields(theta).toarray(), dense)  # the same products, exactly


def test_the_small_singular_values_are_the_svds():
    """`_small_singular` (inertia count, shift-invert subspace iteration, Rayleigh–Ritz) finds the
    null space of a tall matrix and the gap above it as the full SVD does: a 40-dimensional null
    space hidden in 300 columns, the rest of the spectrum from 10⁻³ to 1."""
    import numpy as np

    from gaugedsl.discovery.algebra import _small_singular

    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(700, 300)))
    v, _ = np.linalg.qr(rng.normal(size=(300, 300)))
    spectrum = np.r_[np.zeros(40), np.geomspace(1e-3, 1.0, 260)]
    m = (u * spectrum) @ v.T
    tol = float(np.sqrt(np.finfo(float).eps))
    values, vectors = _small_singular(m, tol)
    null = values <= tol
    assert null.sum() == 40
    assert np.linalg.norm(m @ vectors[:, null], axis=0).max() <= 1e-12  # null to rounding (‖m‖ = 1)
    exact = np.sort(np.linalg.svd(m, compute_uv=False))
    above = np.sort(values[~null])[:8]
    # Ritz values are upper bounds; the first above the null space (the gap's numerator) is
    # needed to the two significant digits the gap is printed with (5·10⁻³ relative: half a unit
    # of the second digit); the rest of a clustered spectrum converges more slowly and is not used
    assert np.all(above >= exact[40:48] * (1 - 1e-12))
    assert above[0] == pytest.approx(exact[40], rel=5e-3)


def test_the_pairing_gradient_is_the_derivative_of_the_fields():
    """`Candidates.pairing_gradient(g)` (the derivative conditions of a model read through its
    loss, formed sparse) is the Jacobian in θ of ⟨g, ξ_c(θ)⟩ by autodiff, for every candidate."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    with jax.enable_x64(True):
        cands = _candidates()
        rng = np.random.default_rng(1)
        theta, g = rng.normal(size=(2, cands.layout.dimension))
        by_autodiff = np.asarray(jax.jacfwd(lambda t: jnp.asarray(g) @ cands.fields(t))(jnp.asarray(theta)))
    np.testing.assert_allclose(cands.pairing_gradient(g).toarray(), by_autodiff.T, rtol=0, atol=1e-13)
