"""Closed forms of the bias found from the generators, not from the spelling of the action.

A depth-L product chain gets `T(1 − 1/L) Σ log|w_i| + const` whether it is written as the
stacked `telescope`, as std.deep's `deep3`/`deep4` over separate vectors, over scalar
parameters, or in another basis of its algebra (then the constant carries log det(B)²). Each
closed form is compared with the generic route (Cholesky of the Gram matrix, no structure) at
points of the gauge slice: both are exact linear algebra in float64, so they agree to rounding;
1e-9 in log det G leaves room for the slice projection's own residual (charges ~1e-13).

The O(r) closed form in singular values holds only on the balanced set UᵀU = VᵀV, which O(r)
alone cannot reach: it is shown only next to a GL symmetry of the same factors.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from gaugedsl.check import check_file, check_text
from gaugedsl.geometry.closed_form import closed_form_of
from gaugedsl.geometry.engine import Geometry
from gaugedsl.geometry.summary import bias_summary, render
from gaugedsl.lowering import Lowered

jax.config.update("jax_enable_x64", True)

ROOT = Path(__file__).resolve().parents[1]

SCALAR_CHAIN = """model scalar_chain
param u1 : R = 0.9
param u2 : R = -1.3
param u3 : R = 0.4
predictor w = u1 * u2 * u3
loss = 0.5 * (w - 0.5)^2
symmetry layers : Scale[2] {{
{rules}
}}
noise projected(T = 0.1)
"""
# deep3's rules over scalars; and the same algebra in another basis: rows (2, −2, 0) and
# (1, 0, −1) of the exponent matrix are B = [[2, 0], [1, 1]] times the chain rows, det(B)² = 4.
CHAIN_RULES = "  u1 -> g[0] * u1\n  u2 -> g[1] / g[0] * u2\n  u3 -> u3 / g[1]"
OTHER_BASIS = "  u1 -> g[0]^2 * g[1] * u1\n  u2 -> u2 / g[0]^2\n  u3 -> u3 / g[1]"


def _geometry(source) -> Geometry:
    model = check_file(ROOT / source) if source.endswith(".gauge") else check_text(source, "<chain>")
    return Geometry(Lowered(model))


def _slice_points(geo: Geometry, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        theta = jax.numpy.asarray(rng.normal(size=geo.dimension) * rng.uniform(0.3, 2.0))
        yield geo.project_to_slice(theta)


CHAINS = {
    "deep_diagonal_L3 (deep3, vectors)": ("examples/deep_diagonal_L3.gauge", 3, 20, 0.0),
    "deep_diagonal_L4_vectors (deep4)": ("examples/deep_diagonal_L4_vectors.gauge", 4, 20, 0.0),
    "scalar depth-3 chain": (SCALAR_CHAIN.format(rules=CHAIN_RULES), 3, 1, 0.0),
    "scalar depth-3 chain, another basis": (SCALAR_CHAIN.format(rules=OTHER_BASIS), 3, 1, np.log(4.0)),
}


@pytest.mark.parametrize("case", CHAINS)
def test_chain_closed_form_matches_the_generic_log_det_on_the_slice(case):
    source, depth, n, log_det_b2 = CHAINS[case]
    geo = _geometry(source)
    name = next(iter(geo.symmetries))
    cf, why = closed_form_of(geo, name)
    assert cf is not None and why is None, "a product chain, whatever its spelling, has a closed form"
    assert cf.structure == "product chains"
    generic = jax.jit(lambda t: geo.logdet_gram(name, t, structured=False))
    charges = jax.jit(lambda t: geo.charges(name, t))
    for theta in _slice_points(geo, 4, seed=1):
        assert float(np.max(np.abs(charges(theta)))) < 1e-10
        params = {k: np.asarray(v) for k, v in geo.layout.unflatten(theta).items()}
        assert abs(cf.numeric(params) - float(generic(theta))) < 1e-9
        # The formula itself, constant included: Σ_i [log L + log det(B)² + 2(1 − 1/L) log|w_i|].
        w = np.prod([np.ravel(v) for v in params.values()], axis=0)
        expected = n * (np.log(depth) + log_det_b2) + 2 * (1 - 1 / depth) * np.sum(np.log(np.abs(w)))
        assert abs(float(generic(theta)) - expected) < 1e-9


def test_chain_closed_form_text_names_depth_and_constant():
    cf, _ = closed_form_of(_geometry("examples/deep_diagonal_L3.gauge"), "layers")
    assert cf.text() == "(T/2) Σ_{i=1..20} (4·log(|w_i|)/3 + log(3))"
    assert cf.note.startswith("w = u1⊙u2⊙u3") and cf.condition == "u1_i² = u2_i² = u3_i²"
    other, _ = closed_form_of(_geometry(SCALAR_CHAIN.format(rules=OTHER_BASIS)), "layers")
    assert other.text() == "(T/2) Σ_{i=1..1} (4·log(|w_i|)/3 + log(12))"  # log(3 · det(B)²), det(B)² = 4
    assert "det(B)" in other.note and other.condition == "u1² = u2² = u3²"


def test_recognised_patterns_keep_their_closed_forms():
    # The stacked chain and u ⊙ v are still recognised from the IR (the engine's fast paths).
    for source, structure, text in (
        ("examples/deep_diagonal_L4.gauge", "telescope", "(T/2) Σ_{i=1..20} (3·log(|w_i|)/2 + 2·log(2))"),
        ("examples/diagonal_net.gauge", "hadamard", "(T/2) Σ_{i=1..20} (log(|w_i|) + log(2))"),
    ):
        geo = _geometry(source)
        name = next(iter(geo.symmetries))
        cf, _ = closed_form_of(geo, name)
        assert geo.patterns[name].kind == structure and cf.text() == text and cf.structure is None


def test_a_rescaling_that_is_not_a_chain_gets_no_closed_form_and_a_reason():
    geo = _geometry("""model radial
param s : R[3] = normal(0, 1)
loss = -(s[0] / norm(s))
symmetry radial : Scale {
  s -> g * s
}
""")
    cf, why = closed_form_of(geo, "radial")
    assert cf is None and "not of product chains" in why


FACTORIZATION = """model factorization
data {{
  M : R[6, 5] = normal(0, 1, seed = 0)
}}
param U : R[6, 3] = normal(0, 1)
param V : R[5, 3] = normal(0, 1)
predictor W = U @ V.T
loss = 0.5 * sum((W - M)^2)
{symmetries}
noise projected(T = 1e-3)
"""
ROTATIONS = "symmetry rotations : O[3] {\n  U -> U @ g\n  V -> V @ inv(g).T\n}"
GL = "symmetry general : GL[3] {\n  U -> U @ g\n  V -> V @ inv(g).T\n}"


def test_orthogonal_alone_gets_no_singular_value_closed_form():
    geo = _geometry(FACTORIZATION.format(symmetries=ROTATIONS))
    cf, why = closed_form_of(geo, "rotations")
    assert cf is None and "UᵀU = VᵀV" in why and "vanish identically" in why
    summary = bias_summary(geo.lowered, at="slice", law=False)
    entry = summary["symmetries"][0]
    assert entry["closed_form_bias"] is None and "closed_form_logdet" not in entry
    assert "— (not shown; numeric below)" in render(summary) and "UᵀU = VᵀV" in render(summary)


def test_orthogonal_with_a_diagonal_rescaling_gets_none_either():
    # examples/matrix_factorization_o.gauge: the column rescaling balances diag(UᵀU) = diag(VᵀV)
    # only; the off-diagonal part of UᵀU − VᵀV has no charge that is driven to 0.
    geo = _geometry("examples/matrix_factorization_o.gauge")
    cf, why = closed_form_of(geo, "rotations")
    assert cf is None and "diagonal rescaling balances only the column norms" in why
    assert closed_form_of(geo, "columns")[0] is not None


def test_orthogonal_next_to_gl_of_the_same_factors_gets_it_and_it_holds_on_the_slice():
    geo = _geometry(FACTORIZATION.format(symmetries=GL + "\n" + ROTATIONS))
    cf, why = closed_form_of(geo, "rotations")
    assert why is None and "reached through 'general'" in cf.note
    generic = jax.jit(lambda t: geo.logdet_gram("rotations", t, structured=False))
    for theta in _slice_points(geo, 3, seed=2):
        params = {k: np.asarray(v) for k, v in geo.layout.unflatten(theta).items()}
        u, v = params["U"], params["V"]
        assert np.max(np.abs(u.T @ u - v.T @ v)) < 1e-9  # GL's charges vanish: balanced
        assert abs(cf.numeric(params) - float(generic(theta))) < 1e-9


def test_chains_of_different_depths_in_one_symmetry():
    # a·b (depth 2) and c·d·e (depth 3) under one Scale[3]: one sum per depth, and the sum of
    # both matches the generic log det on the slice.
    geo = _geometry("""model two_chains
param a : R = 0.7
param b : R = 1.2
param c : R = 0.5
param d : R = -0.8
param e : R = 1.5
loss = 0.5 * (a * b - 1)^2 + 0.5 * (c * d * e - 0.3)^2
symmetry s : Scale[3] {
  a -> g[0] * a
  b -> b / g[0]
  c -> g[1] * c
  d -> g[2] / g[1] * d
  e -> e / g[2]
}
""")
    cf, _ = closed_form_of(geo, "s")
    assert cf.text().count("Σ") == 2 and "log(3)" in cf.text() and "log(2)" in cf.text(), cf.text()
    generic = jax.jit(lambda t: geo.logdet_gram("s", t, structured=False))
    for theta in _slice_points(geo, 3, seed=3):
        params = {k: np.asarray(v) for k, v in geo.layout.unflatten(theta).items()}
        assert abs(cf.numeric(params) - float(generic(theta))) < 1e-9
