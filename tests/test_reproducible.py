"""The numbers depend on the program, not on its layout or where it sits (docs/language.md,
"What the numbers depend on").

An unseeded random call draws from `fold_in(key, id of its site)`, the site being its
declaration's name and its index there (`ir.Call.site`, assigned by the checker). So
`gaugedsl fmt`, extra blank lines and comments, another file name in another folder, another
working directory, and the Python API instead of the CLI give bit-identical data, initial
parameters and `results.npz` arrays. Every comparison here is exact (`tobytes()` equality):
the claim is bit-for-bit identity, so there is no tolerance to state.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest

import gaugedsl
from gaugedsl import ir
from gaugedsl.check import Loader
from gaugedsl.cli import main
from gaugedsl.format import format_text
from gaugedsl.lowering import Lowered

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.gauge"))
# A covering subset for the (slower) numeric comparison in CI: unseeded data, unseeded inits
# of every manifold (R, Positive, Sphere, Stiefel), streams. All examples under --runslow.
NUMERIC = ("diagonal_net", "e1_relu", "e3_matrix_completion", "attention_gl", "deep_diagonal_L4_vectors")


def messy(text: str) -> str:
    """The same program moved down and right: a comment and blank lines before the `model`
    line (every declaration moves down), and wider spaces around `=` (columns move)."""
    text = text.replace("\nmodel ", "\n# an added comment\n\n\nmodel ", 1)
    return "\n".join(line if "#" in line else line.replace(" = ", "   =    ", 1) for line in text.split("\n"))


def variants(path: Path, tmp: Path) -> dict[str, Path]:
    """The example, its messy copy, the formatted messy copy, and a renamed copy elsewhere."""
    text = path.read_text()
    out = {"original": path}
    (tmp / "a").mkdir()
    (tmp / "b" / "deeper").mkdir(parents=True)
    out["messy"] = tmp / "a" / path.name
    out["messy"].write_text(messy(text))
    out["formatted"] = tmp / "b" / path.name
    out["formatted"].write_text(format_text(messy(text), str(out["messy"])))
    out["renamed"] = tmp / "b" / "deeper" / "renamed.gauge"
    out["renamed"].write_text(text)
    return out


def without_spans(node):
    """The IR without source positions and without the path / hash of the file."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__,) + tuple(
            (f.name, without_spans(getattr(node, f.name)))
            for f in dataclasses.fields(node)
            if f.name not in ("span", "spans", "name_span", "path", "source_hash")
        )
    if isinstance(node, (list, tuple)):
        return tuple(without_spans(x) for x in node)
    return node


def draws(path: Path) -> dict[str, bytes]:
    model = Loader().check_file(path)
    lowered = Lowered(model)
    params = lowered.init_params(jax.random.PRNGKey(3))
    out = {f"data {k}": np.asarray(v).tobytes() for k, v in lowered.data.items()}
    out.update({f"param {k}": np.asarray(v).tobytes() for k, v in params.items()})
    if lowered.has_streams:
        out.update(
            {f"stream {k}": np.asarray(v).tobytes() for k, v in lowered.draw_streams(jax.random.PRNGKey(5), 3).items()}
        )
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_layout_and_place_leave_the_ir_and_its_random_sites_alone(path, tmp_path):
    files = variants(path, tmp_path)
    assert files["formatted"].read_text() != files["messy"].read_text()  # fmt moved things
    irs = {name: Loader().check_file(p) for name, p in files.items()}
    base = without_spans(irs["original"])
    for name, model in irs.items():
        assert without_spans(model) == base, name


def _numeric_cases():
    for path in EXAMPLES:
        marks = () if path.stem in NUMERIC else (pytest.mark.slow,)
        yield pytest.param(path, marks=marks, id=path.stem)


@pytest.mark.parametrize("path", list(_numeric_cases()))
def test_layout_and_place_leave_data_and_initial_values_bit_identical(path, tmp_path):
    files = variants(path, tmp_path)
    base = draws(files["original"])
    for name, p in files.items():
        assert draws(p) == base, name


def sites(e) -> list[str]:
    if isinstance(e, ir.Call):
        return ([e.site] if e.site else []) + [s for a in e.args for s in sites(a)]
    return [s for a in getattr(e, "args", ()) + getattr(e, "items", ()) for s in sites(a)] + (
        sites(e.value) if isinstance(e, ir.Index) else []
    )


PROGRAM = """model m
data {
  X : R[4] = normal(0, 1) + normal(0, 1)
}
param a : R[4] = normal(0, 1)
param b : R[4] = normal(0, 1)
param s : Sphere[4]
loss = sum((a * b - X)^2) + sum(s)
"""


def test_sites_are_the_declaration_name_and_the_index_of_the_call():
    model = gaugedsl.load(PROGRAM).ir
    assert sites(model.data[0].value) == ["X#0", "X#1"]
    assert [sites(p.init) for p in model.params] == [["a#0"], ["b#0"], ["s#0"]]  # s: the default init


def test_names_not_order_key_the_draws():
    """Same-looking calls in different declarations draw different numbers; moving a
    declaration leaves its numbers alone; renaming it changes them."""

    def init(text):
        lowered = Lowered(gaugedsl.load(text).ir)
        return {k: np.asarray(v) for k, v in {**lowered.data, **lowered.init_params(jax.random.PRNGKey(0))}.items()}

    base = init(PROGRAM)
    assert not np.array_equal(base["a"], base["b"])
    swapped = init(
        PROGRAM.replace(
            "param a : R[4] = normal(0, 1)\nparam b : R[4] = normal(0, 1)\n",
            "param b : R[4] = normal(0, 1)\nparam a : R[4] = normal(0, 1)\n",
        )
    )
    assert all(swapped[k].tobytes() == base[k].tobytes() for k in base)
    renamed = init(PROGRAM.replace("param b :", "param c :").replace("a * b", "a * c"))
    assert renamed["a"].tobytes() == base["a"].tobytes()
    assert renamed["c"].tobytes() != base["b"].tobytes()


RUN = ["--particles", "3", "--steps", "200"]

# A small program with unseeded data, initializers and noise, for the CI variant: one CLI run
# by a relative path and one API run on the text (each run costs ~10 s, mostly compiling). The
# example from three places and the API runs under --runslow.
SMALL = """model small
data {
  X : R[5, 3] = normal(0, 1)
  y : R[5]    = X @ normal(0, 1, shape = [3])
}
param u : R[3] = normal(0, 0.5)
param v : R[3] = normal(0, 0.5)
loss = 0.5 * mean((X @ (u * v) - y)^2)
symmetry balance : Scale[3] {
  u -> g * u
  v -> v / g
}
noise isotropic(T = 0.05)
run {
  dynamics  = sde
  particles = 3
  dt        = 1e-2
  steps     = 50
  seed      = 0
  record every 10: u, v, loss
}
"""


def _arrays(npz: Path) -> dict[str, bytes]:
    with np.load(npz) as f:
        return {k: f[k].tobytes() for k in f.files}


def _same_everywhere(program: Path, relative: str, beside: str | None, tmp_path, monkeypatch, args=()):
    """`gaugedsl run` by a relative path from the repository root, then (unless `beside` is
    None) from the program's folder and by the absolute path from elsewhere; then the API on
    the program's text (no path at all)."""
    monkeypatch.chdir(ROOT)
    assert main(["run", relative, *args, "-o", str(tmp_path / "relative")]) == 0
    base = _arrays(tmp_path / "relative" / "results.npz")
    if beside is not None:
        _elsewhere(program, beside, base, tmp_path, monkeypatch, args)
    overrides = dict(zip(("particles", "steps"), map(int, args[1::2])))
    result = gaugedsl.load(program.read_text()).run(**overrides).result
    assert result.theta.tobytes() == base["theta_final"]
    assert result.theta0.tobytes() == base["theta_initial"]
    for label, values in result.records.items():
        assert np.asarray(values).tobytes() == base[label], label


def _elsewhere(program, beside, base, tmp_path, monkeypatch, args):
    monkeypatch.chdir(program.parent)
    assert main(["run", beside, *args, "-o", str(tmp_path / "beside")]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(program), *args, "-o", str(tmp_path / "absolute")]) == 0
    assert _arrays(tmp_path / "beside" / "results.npz") == base
    assert _arrays(tmp_path / "absolute" / "results.npz") == base


def test_a_small_program_gives_the_same_results_from_anywhere(tmp_path, monkeypatch):
    folder = ROOT / "build" / "reproducible-test"  # below the repository root, so a relative path reaches it
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "small.gauge"
    program.write_text(SMALL)
    with jax.enable_x64(False):  # as `gaugedsl run` without --x64 (the suite runs in 64-bit)
        _same_everywhere(program, "build/reproducible-test/small.gauge", None, tmp_path, monkeypatch)


@pytest.mark.slow
def test_an_example_gives_the_same_results_from_anywhere(tmp_path, monkeypatch):
    program = ROOT / "examples" / "diagonal_net.gauge"
    with jax.enable_x64(False):
        _same_everywhere(program, "examples/diagonal_net.gauge", "diagonal_net.gauge", tmp_path, monkeypatch, RUN)
