"""The front end has no recursion limit a program can reach: nesting deeper than the parser's
limit is E013, import chains longer than the loader's are E106, both with a position, and a
program at the limits goes through every command (so that the limits are low enough for the
recursive passes after the parser). Issue 20 item 3; the size limit (E012) is in
test_programs.py."""

import pytest

from gaugedsl.cli import main
from gaugedsl.syntax.parser import MAX_NESTING

MODEL = """model deep
param u : R = 1.0
param v : R = 1.0
predictor w = u * v
loss = LOSS
symmetry s : Scale {
  u -> g * u
  v -> v / g
}
noise projected(T = 0.01)
run {
  particles = 4
  steps = 20
  dt = 1e-3
  record every 10: w
}
"""

CHAINS = {
    "sum": lambda n: "0.5 * (w - 1)^2 + 1e-3 * (" + " + ".join(["w"] * n) + ")",
    "negation": lambda n: "0.5 * (" + "-" * n + "w - 1)^2",
    "calls": lambda n: "0.5 * (" + "tanh(" * n + "w" + ")" * n + " - 0.5)^2",
    "brackets": lambda n: "0.5 * (" + "(" * n + "w" + ")" * n + " - 1)^2",
    "powers": lambda n: "0.5 * (w" + "^1" * n + " - 1)^2",
}


def _write(tmp_path, kind: str, n: int):
    path = tmp_path / f"{kind}.gauge"
    path.write_text(MODEL.replace("LOSS", CHAINS[kind](n)))
    return path


@pytest.mark.parametrize("kind", sorted(CHAINS))
def test_thousands_of_levels_are_a_diagnostic_not_a_recursion_error(kind, tmp_path, capsys):
    path = _write(tmp_path, kind, 3000)
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    if kind == "brackets":  # brackets alone add no node: the loss is shallow
        assert code == 0, err
        return
    assert code == 1 and f"{path.name}:5:" in err and "error[E013]" in err and "internal error" not in err, err


@pytest.mark.parametrize("kind", ["calls", pytest.param("sum", marks=pytest.mark.slow)])  # CI: one chain
def test_a_program_at_the_nesting_limit_goes_through_every_command(kind, tmp_path, capsys):
    # the deepest chain the parser accepts (n + 3 levels: the loss, its product and difference)
    deepest = next(n for n in range(MAX_NESTING, 0, -1) if main(["check", str(_write(tmp_path, kind, n))]) == 0)
    capsys.readouterr()
    assert MAX_NESTING - 10 <= deepest < MAX_NESTING, deepest
    path = _write(tmp_path, kind, deepest)
    for argv in (["bias", str(path), "--no-law"], ["fmt", "--check", str(path)],
                 ["run", str(path), "-o", str(tmp_path / "out"), "--no-progress"]):  # fmt: skip
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 1) and "internal error" not in err, (argv[0], err)


def test_a_thousand_file_import_cycle_is_a_diagnostic(tmp_path, capsys):
    for i in range(1000):
        (tmp_path / f"c{i}.gauge").write_text(
            f"import c{(i + 1) % 1000}\n\nsymmetry s{i}(a : R[n]) : Scale[n] {{\n  a -> g * a\n}}\n"
        )
    (tmp_path / "m.gauge").write_text(
        "model m\n\nimport c0\n\nparam u : R[3]\nparam v : R[3]\nloss = sum((u * v - 1)^2)\n"
    )
    assert main(["check", str(tmp_path / "m.gauge")]) == 1
    err = capsys.readouterr().err
    assert "error[E106]: imports nest more than 8 files deep" in err and "internal error" not in err
