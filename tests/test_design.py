"""Inverse design (`gaugedsl design`, docs/design.md): every family the designer offers
induces the bias it is asked for, the designed text checks and is formatted, targets out of
the family are refused with a diagnostic at the design setting, and the examples are the
designer's own output.

The bias check compares, at random points on the gauge slice, the induced bias (T/2) log det G
(generic Gram route, float64) with the target formula. They must agree up to an additive
constant to 1e-8: both are sums of O(10) logarithms of O(1) numbers computed in float64
(rounding ~1e-14); 1e-8 leaves room for the slice projection (BFGS + Newton where no closed
form applies, charges below 1e-12) and still fails for any wrong exponent, operator or
constant (those change the difference by O(1))."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gaugedsl import cli
from gaugedsl.check import check_text
from gaugedsl.design import design, operators
from gaugedsl.diagnostics import GaugeError
from gaugedsl.format import format_text

ROOT = Path(__file__).parent.parent
TOL = 1e-8

BASE = """\
model fam

data {{
  X : R[12, {n}] = normal(0, 1, seed = 0)
  M : R[{n}, {n}] = eye({n}) + 0.3 * normal(0, 1, seed = 5)
  y : R[12] = X @ spikes(at = [1, 4], values = [1.5, -2], shape = [{n}])
}}

## the coefficients
param w : R[{n}] = normal(0, 1e-3)

loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
{extra}
run {{
  dynamics = gd
  lr = 0.01
  steps = 100
  record every 10: loss, w
}}

design {{
{design}
}}
"""


def _write(tmp_path: Path, design_lines: str, n: int = 7, extra: str = "", name: str = "src.gauge") -> Path:
    path = tmp_path / name
    path.write_text(BASE.format(n=n, extra=extra, design=textwrap.indent(design_lines, "  ")), encoding="utf-8")
    return path


def _assert_designed(d, tol: float = TOL) -> None:
    v = d.verification
    scale = max(1.0, float(np.max(np.abs(v.induced))))
    diff = v.induced - v.target
    assert np.max(diff) - np.min(diff) <= tol * scale, (v.induced, v.target)
    assert abs(v.constant - v.expected) <= tol * scale, (v.constant, v.expected)
    assert v.max_charge < 1e-9, "the check points are not on the gauge slice"
    assert check_text(d.text, d.out).name  # the designed model checks ...
    assert format_text(d.text, d.out) == d.text  # ... and is in canonical layout


# (design block, expected realization): every Hadamard family, each depth the templates cover
# (2 → rescaling, 3 → deep3, 4 → deep4, 5 → the stacked deep_rescaling), every operator.
HADAMARD = {
    "identity-L2": ("target = sparsity", "w = w1 ⊙ w2 (depth 2)"),
    "identity-L3": ("target = sparsity\ndepth = 3", "w = w1 ⊙ w2 ⊙ w3 (depth 3)"),
    "identity-L4": ("target = sparsity(depth = 4)", "w = w1 ⊙ w2 ⊙ w3 ⊙ w4 (depth 4)"),
    "identity-L5": ("target = sparsity\ndepth = 5", "w = Π_l w_factors[l] (depth 5)"),
    "exponent-3/4": ("target = sparsity\nexponent = 0.75", "(depth 4)"),
    "cosine-L2": ("target = sparsity\noperator = cosine", "C w = w1 ⊙ w2"),
    "cosine-L3": ("target = spectral_sparsity\ndepth = 3", "C w = w1 ⊙ w2 ⊙ w3"),
    "fourier-L2": ("target = sparsity\noperator = fourier", "F w = w1 ⊙ w2"),
    "difference-L2": ("target = total_variation", "D w = w1 ⊙ w2"),
    "difference-L3": ("target = total_variation\ndepth = 3", "D w = w1 ⊙ w2 ⊙ w3"),
    "matrix-L2": ("target = sparsity\noperator = M", "M w = w1 ⊙ w2"),
    "matrix-L4": ("target = sparsity\noperator = M\ndepth = 4", "M w = w1 ⊙ w2 ⊙ w3 ⊙ w4"),
    "strength": ("target = sparsity\nstrength = 0.05\ndepth = 3", "(depth 3)"),
}


@pytest.mark.parametrize("case", list(HADAMARD), ids=list(HADAMARD))
def test_hadamard_families_induce_their_target_bias(case, tmp_path):
    block, realized = HADAMARD[case]
    n = 8 if case == "fourier-L2" else 7  # even and odd sizes of the Fourier basis
    d = design(_write(tmp_path, block, n=n), tmp_path / "out.gauge")
    _assert_designed(d)
    r = d.realization
    assert realized in r.realized_as()
    # The constant is (T/2)·n·log L: det G = L |z_i|^{2(L−1)/L} per coordinate on the slice.
    T = d.verification.T
    assert d.verification.expected == pytest.approx(0.5 * T * n * math.log(r.depth), rel=1e-14)
    assert T == (0.05 if case == "strength" else 1.0)


def test_fourier_basis_of_odd_size(tmp_path):
    _assert_designed(design(_write(tmp_path, "target = sparsity\noperator = fourier", n=7), tmp_path / "out.gauge"))


def test_operator_matrices_are_what_they_claim():
    for n in (1, 2, 7, 8):
        for a in (operators.dct_matrix(n), operators.fourier_matrix(n)):
            np.testing.assert_allclose(a @ a.T, np.eye(n), atol=1e-12)  # orthonormal: A⁻¹ = Aᵀ
    d = operators.difference_matrix(5)
    np.testing.assert_allclose(np.cumsum(d @ np.arange(5.0) ** 2), np.arange(5.0) ** 2)  # D⁻¹ = cumsum


LOW_RANK = """\
model lowrank

data {
  U_star : R[6, 2] = orthonormal(seed = 1)
  V_star : R[5, 2] = orthonormal(seed = 2)
  mask   : R[6, 5] = bernoulli(0.6, seed = 3)
}

param W : R[6, 5] = normal(0, 1e-3)

loss = 0.5 * sum(mask * (W - U_star @ diag([3, 1]) @ V_star.T)^2)

design {
  target = %s
}
"""


@pytest.mark.parametrize("target", ["low_rank", "low_rank\n  rank = 3", "spectral_sparsity"])
def test_factorization_induces_the_spectral_bias(target, tmp_path):
    path = tmp_path / "lowrank.gauge"
    path.write_text(LOW_RANK % target, encoding="utf-8")
    d = design(path, tmp_path / "out.gauge")
    _assert_designed(d)
    r = d.realization
    assert r.kind == "factorization" and r.rank == (3 if "rank = 3" in target else 5)
    assert d.verification.expected == 0.0  # det G = Π_{i,j}(σ_i + σ_j) exactly
    assert "symmetry gl = gl_factorization(U, V)" in d.text and "predictor W = U @ V.T" in d.text


def test_elementwise_sparsity_of_a_matrix_writes_the_symmetry_out(tmp_path):
    path = tmp_path / "mat.gauge"
    path.write_text((LOW_RANK % "sparsity\n  depth = 3").replace("model lowrank", "model mat"), encoding="utf-8")
    d = design(path, tmp_path / "out.gauge")
    _assert_designed(d)
    assert "symmetry depth : Scale[2, 6, 5]" in d.text


def test_a_predictor_made_of_parameters_is_redesigned(tmp_path):
    """A model that is already a depth-3 product: its parameters and their symmetry are
    replaced, the records of the old symmetry's charges observe the new one."""
    path = tmp_path / "deep.gauge"
    path.write_text(
        (ROOT / "tests/programs/good/design_sparsity.gauge")
        .read_text(encoding="utf-8")
        .replace(
            "noise isotropic(T = 1e-3)",
            "noise isotropic(T = 1e-3)\n\nrun {\n  dynamics = sde\n  record every 10: w, charge(depth_rescaling)\n}",
        ),
        encoding="utf-8",
    )
    d = design(path, tmp_path / "out.gauge")
    _assert_designed(d)
    assert "layers" not in d.text.split("model ")[1] and "depth_rescaling" not in d.text
    assert "charge(depth)" in d.text and d.verification.T == 1e-3


def test_the_designed_model_keeps_the_source(tmp_path):
    src = _write(tmp_path, "target = total_variation\ninit = 0.3\nlr = 0.002")
    d = design(src, tmp_path / "tv.gauge")
    m = d.model
    assert m.name == "tv" and [p.name for p in m.params] == ["w1", "w2"]
    assert [x.name for x in m.data] == ["X", "M", "y"] and m.loss is not None
    assert m.run.get("lr") == 0.002 and m.run.get("steps") == 100 and m.design is None
    assert "param w1 : R[7] = normal(0, 0.3)" in d.text and "predictor w = cumsum(w1 * w2)" in d.text


def test_strength_without_noise_adds_projected_noise_and_keeps_gd(tmp_path):
    text = BASE.format(n=5, extra="", design="  target = sparsity\n  strength = 0.01").replace("  dynamics = gd\n", "")
    path = tmp_path / "s.gauge"
    path.write_text(text.replace("  lr = 0.01", "  dynamics = gd\n  lr = 0.01"), encoding="utf-8")
    d = design(path, tmp_path / "out.gauge")
    assert d.model.noise.kind == "projected" and d.model.noise.get("T") == 0.01 and d.model.run.get("dynamics") == "gd"


# ---- targets out of the family ----------------------------------------------------------


def _error(tmp_path, text: str) -> tuple[str, int, str]:
    path = tmp_path / "bad.gauge"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GaugeError) as info:
        design(path, tmp_path / "out.gauge")
    (diag,) = info.value.diagnostics
    line = diag.span.line if diag.span else 0
    return diag.code, line, diag.message + " / " + (diag.hint or "")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "design_lines, code, needle, words",
    [
        ("target = low_rank", "E603", "target = low_rank", "matrix predictor"),
        ("target = total_variation\noperator = cosine", "E603", "operator = cosine", "finite differences"),
        ("target = sparsity\nrank = 2", "E603", "rank = 2", "factorization"),
        ("target = sparsity(exponent = 0.7)", "E605", "exponent = 0.7", "0.6667 (depth 3) or 0.75 (depth 4)"),
        ("target = sparsity\nexponent = 0.75\ndepth = 3", "E605", "exponent = 0.75", "depth 4"),
        ("target = sparsity\noperator = N", "E604", "operator = N", "square"),
        ("target = sparsity\noperator = S", "E604", "operator = S", "not invertible"),
    ],
)
def test_targets_out_of_the_family_are_refused_where_they_are_asked(design_lines, code, needle, words, tmp_path):
    extra_data = (
        "\ndata {\n  N : R[7, 6] = normal(0, 1, seed = 1)\n  S : R[7, 7] = outer(ones(shape = [7]), arange(7))\n}\n"
    )
    text = BASE.format(n=7, extra=extra_data, design=textwrap.indent(design_lines, "  "))
    got_code, line, message = _error(tmp_path, text)
    assert (got_code, line) == (code, _line_of(text, needle)), message
    assert words in message


def test_deep_factorizations_and_oversized_ranks_are_refused(tmp_path):
    code, _, message = _error(tmp_path, LOW_RANK % "low_rank\n  depth = 3")
    assert code == "E605" and "W = U Vᵀ" in message
    code, _, message = _error(tmp_path, LOW_RANK % "low_rank\n  rank = 6")
    assert code == "E605" and "rank ≤ 5" in message


def test_what_cannot_be_reexpressed_is_refused(tmp_path):
    sphere = BASE.format(n=5, extra="", design="  target = sparsity").replace(
        "param w : R[5] = normal(0, 1e-3)", "param w : Sphere[5]"
    )
    assert _error(tmp_path, sphere)[0] == "E606"
    zero = BASE.format(n=5, extra="", design="  target = sparsity").replace("normal(0, 1e-3)", "zeros()")
    code, _, message = _error(tmp_path, zero)
    assert code == "E607" and "saddle" in message
    sgd = BASE.format(n=5, extra="\nnoise sgd(lr = 0.01, batch = 4)\n", design="  target = sparsity\n  strength = 0.1")
    assert _error(tmp_path, sgd)[0] == "E608"
    shared = (
        (ROOT / "tests/programs/good/design_sparsity.gauge")
        .read_text(encoding="utf-8")
        .replace("loss = 0.5 * mean((X @ w - y)^2)", "loss = 0.5 * mean((X @ w - y)^2) + sum(layers^2)")
    )
    code, line, message = _error(tmp_path, shared)
    assert code == "E606" and "layers" in message and line == _line_of(shared, "loss =")


def test_checker_takes_target_arguments_as_settings():
    text = BASE.format(n=5, extra="", design="  target = sparsity(depth = 3, operator = cosine)\n  predictor = w")
    d = check_text(text).design
    assert (d.get("target"), d.get("depth"), d.get("operator"), d.get("predictor")) == ("sparsity", 3, "cosine", "w")
    with pytest.raises(GaugeError) as info:
        check_text(BASE.format(n=5, extra="", design="  target = sparsity(depth = 7, bogus = 1)"))
    assert [x.code for x in info.value.diagnostics] == ["E504"] and "bogus" in info.value.diagnostics[0].message
    with pytest.raises(GaugeError) as info:
        check_text(BASE.format(n=5, extra="", design="  depth = 3\n  target = sparsity(depth = 3)"))
    assert [x.code for x in info.value.diagnostics] == ["E510"]


# ---- the command ------------------------------------------------------------------------


def test_command_writes_the_designed_model_and_prints_the_check(tmp_path, capsys):
    src = _write(tmp_path, "target = sparsity\ndepth = 3")
    out = tmp_path / "designed.gauge"
    assert cli.main(["design", str(src), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max deviation" in printed and "T·(1 − 1/3) Σ_i log|w_i|" in printed
    assert not list(tmp_path.glob(".designed.gauge.*"))  # no temporary file left behind
    assert cli.main(["check", str(out)]) == 0 and cli.main(["fmt", "--check", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["design", str(src)]) == 0  # no -o: the program on stdout, the report on stderr
    captured = capsys.readouterr()
    assert captured.out.startswith("## Designed by") and "max deviation" in captured.err


def test_command_errors(tmp_path, capsys):
    src = _write(tmp_path, "target = low_rank")
    assert cli.main(["design", str(src), "-o", str(tmp_path / "x.gauge")]) == 1
    err = capsys.readouterr().err
    assert f"{src}:" in err and "error[E603]" in err and "realizable:" in err
    assert not (tmp_path / "x.gauge").exists()
    assert cli.main(["design", str(src), "-o", str(src)]) == 2  # would overwrite its source


def test_compare_refuses_a_library(capsys):
    # A library among the files is a usage error (it was an internal error).
    lib, model = ROOT / "stdlib/rescaling.gauge", ROOT / "examples/attention_diagonal.gauge"
    assert cli.main(["design", "--compare", str(lib), str(model)]) == 2
    assert "is a library" in capsys.readouterr().err


# ---- the examples are the designer's output -----------------------------------------------


@pytest.mark.parametrize(
    "source, designed",
    [("e4_vanilla", "e4_spectral"), ("e5_vanilla", "e5_tv"), ("design_lowrank_vanilla", "design_lowrank")],
)
def test_designed_examples_are_regenerated_exactly(source, designed, monkeypatch):
    monkeypatch.chdir(ROOT / "examples")
    d = design(f"{source}.gauge", f"{designed}.gauge", points=3)
    assert d.text == (ROOT / "examples" / f"{designed}.gauge").read_text(encoding="utf-8"), (
        f"run: gaugedsl design examples/{source}.gauge -o examples/{designed}.gauge"
    )
    _assert_designed(d)


def test_unseeded_data_are_flagged(tmp_path):
    """Unseeded data are keyed by their position in their file: the designed file would see
    other numbers, so the designer warns (W601) and still designs."""
    src = (
        _write(tmp_path, "target = sparsity")
        .read_text(encoding="utf-8")
        .replace("normal(0, 1, seed = 0)", "normal(0, 1)")
    )
    path = tmp_path / "unseeded.gauge"
    path.write_text(src, encoding="utf-8")
    d = design(path, tmp_path / "out.gauge")
    assert [w.code for w in d.warnings] == ["W601"] and "'X'" in d.warnings[0].message


@pytest.mark.parametrize(
    "template, block",
    [
        ("rescaling", "target = sparsity"),
        ("deep3", "target = sparsity\ndepth = 3"),
        ("deep_rescaling", "target = total_variation\ndepth = 5"),
    ],
)
def test_a_template_name_taken_by_the_source_gets_the_symmetry_written_out(template, block, tmp_path):
    own = f"\n## The source's own template, named like the stdlib's.\nsymmetry {template}(a : R[n]) : Scale[n] {{\n  a -> g * a\n}}\n"
    d = design(_write(tmp_path, block, extra=own), tmp_path / "out.gauge")
    _assert_designed(d)
    assert "import std." not in d.text and f"symmetry {d.realization.symmetry} : Scale[" in d.text


def test_a_factorization_symmetry_is_written_out_when_its_name_is_taken(tmp_path):
    path = tmp_path / "lowrank.gauge"
    own = "symmetry gl_factorization(a : R[n]) : Scale[n] {\n  a -> g * a\n}\n\ndesign {"
    path.write_text((LOW_RANK % "low_rank").replace("design {", own), encoding="utf-8")
    d = design(path, tmp_path / "out.gauge")
    _assert_designed(d)
    assert "symmetry gl : GL[5] {" in d.text


def test_files_read_beside_the_source_keep_the_designed_model_beside_it(tmp_path):
    (tmp_path / "lib.gauge").write_text("symmetry mine(a : R[n]) : Scale[n] {\n  a -> g * a\n}\n", encoding="utf-8")
    src = (
        _write(tmp_path, "target = sparsity")
        .read_text(encoding="utf-8")
        .replace("model fam\n", "model fam\nimport lib\n")
    )
    path = tmp_path / "local.gauge"
    path.write_text(src, encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(GaugeError) as info:
        design(path, tmp_path / "elsewhere" / "out.gauge")
    assert info.value.diagnostics[0].code == "E606" and info.value.diagnostics[0].span.line == 2
    _assert_designed(design(path, tmp_path / "out.gauge"))
