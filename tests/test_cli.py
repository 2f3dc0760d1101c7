"""The `gaugedsl check` command: exit codes, where output goes, `--emit`, `python -m gaugedsl`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gaugedsl import cli

ROOT = Path(__file__).parent.parent
GOOD = ROOT / "tests" / "programs" / "good"
BAD = ROOT / "tests" / "programs" / "bad"

VALID = """\
## A scalar product, for the CLI tests.
model tiny

param u : R[2] = full(1)
param v : R[2] = full(2)
predictor w = u * v
loss = sum((w - 1)^2)

symmetry balance : Scale[2] {
  u -> g * u
  v -> v / g
}
"""


@pytest.fixture
def program(tmp_path) -> Path:
    path = tmp_path / "tiny.gauge"
    path.write_text(VALID, encoding="utf-8")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_program_exits_0_and_says_ok_on_stdout(capsys, program):
    code, out, err = run(capsys, "check", str(program))
    assert code == 0
    assert out == f"{program}: ok (model)\n"
    assert err == ""


def test_library_is_reported_as_a_library(capsys):
    code, out, _ = run(capsys, "check", str(GOOD / "library.gauge"))
    assert code == 0
    assert out.endswith("ok (library)\n")


def test_program_errors_exit_1_and_go_to_stderr(capsys, tmp_path):
    path = tmp_path / "bad.gauge"
    path.write_text(
        "model bad\nparam w : R[3]\nparam v : R[4]\nloss = sum(w^2) + nope + sum(w * v)\n", encoding="utf-8"
    )
    code, out, err = run(capsys, "check", str(path))
    assert code == 1
    assert out == ""
    assert f"{path}:4:19: error[E201]: unknown name 'nope'" in err
    assert f"{path}:4:30: error[E301]" in err
    assert err.rstrip().endswith("2 errors")


def test_one_bad_file_among_good_ones_exits_1_but_checks_them_all(capsys, program):
    code, out, err = run(capsys, "check", str(BAD / "E201_unknown_name.gauge"), str(program))
    assert code == 1
    assert f"{program}: ok (model)" in out
    assert "error[E201]" in err


def test_missing_file_is_a_usage_error_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "check", str(tmp_path / "nowhere.gauge"))
    assert code == 2
    assert out == ""
    assert "no such file" in err and "nowhere.gauge" in err


def test_a_folder_without_programs_is_a_usage_error_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "check", str(tmp_path))
    assert code == 2
    assert "no .gauge files in the folder" in err


def test_check_takes_a_folder_like_fmt(capsys, tmp_path):
    # every .gauge file below the folder, sorted, each checked on its own
    good = (ROOT / "examples" / "scalar_projected.gauge").read_text(encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.gauge").write_text(good, encoding="utf-8")
    (tmp_path / "a.gauge").write_text("model broken\nparam w : R = \n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a program", encoding="utf-8")
    code, out, err = run(capsys, "check", str(tmp_path))
    assert code == 1  # a.gauge has an error
    assert f"{tmp_path / 'sub' / 'b.gauge'}: ok (model)" in out
    assert "a.gauge:" in err and "notes.txt" not in out + err


def test_bad_option_exits_2(capsys, program):
    with pytest.raises(SystemExit) as exc:
        cli.main(["check", str(program), "--emit", "xml"])
    assert exc.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_unknown_command_and_no_command_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    capsys.readouterr()
    code, out, _ = run(capsys)
    assert code == 2
    assert "usage: gaugedsl" in out


def _explode(*args, **kwargs):
    raise RuntimeError("boom from the test")


def test_internal_error_exits_3_without_traceback(capsys, monkeypatch, program):
    monkeypatch.setattr("gaugedsl.check.loader.FileChecker.check", _explode)
    code, out, err = run(capsys, "check", str(program))
    assert code == 3
    assert "internal error" in err and "please report" in err
    assert "--debug" in err
    assert "Traceback" not in err and "boom from the test" not in err


def test_internal_error_shows_traceback_under_debug(capsys, monkeypatch, program):
    monkeypatch.setattr("gaugedsl.check.loader.FileChecker.check", _explode)
    code, _, err = run(capsys, "--debug", "check", str(program))
    assert code == 3
    assert "Traceback" in err and "RuntimeError: boom from the test" in err


def test_emit_ast_prints_the_syntax_tree_with_positions(capsys, program):
    code, out, err = run(capsys, "check", str(program), "--emit", "ast")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Program"
    assert "  doc: 'A scalar product, for the CLI tests.'" in lines
    assert any(line.strip() == "ParamDecl  @4:1" for line in lines)
    assert any(line.strip() == "SymmetryDecl  @9:1" for line in lines)
    assert any(line.strip() == "Action  @10:3" for line in lines)
    assert "name: 'balance'" in out and "op: '*'" in out


def test_emit_ast_of_a_file_with_a_syntax_error_exits_1(capsys, tmp_path):
    path = tmp_path / "broken.gauge"
    path.write_text("model m\nparam w : R[3\n", encoding="utf-8")
    code, out, err = run(capsys, "check", str(path), "--emit", "ast")
    assert code == 1
    assert out == ""
    assert "error[E004]" in err


def test_emit_ir_prints_the_checked_model(capsys, program):
    code, out, err = run(capsys, "check", str(program), "--emit", "ir")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"model tiny    # {program}, sha256 ")
    assert "  u : R[2] = full(1)" in lines
    assert "  w : [2] = u * v" in lines
    assert "  balance : Scale[2]    # 2 generators, g : [2]" in lines
    assert "    v -> v / g" in lines


def test_emit_ir_is_not_printed_for_a_wrong_program(capsys):
    code, out, _ = run(capsys, "check", str(BAD / "E301_broadcast_mismatch.gauge"), "--emit", "ir")
    assert code == 1
    assert out == ""


def _subprocess(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "gaugedsl", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_python_dash_m_gaugedsl_checks_and_sets_the_exit_code(program):
    ok = _subprocess("check", str(program))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"{program}: ok (model)"
    bad = _subprocess("check", "E201_unknown_name.gauge", cwd=BAD)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr == (BAD / "E201_unknown_name.expected").read_text(encoding="utf-8")


def test_python_dash_m_gaugedsl_usage_errors_exit_2(tmp_path):
    missing = _subprocess("check", str(tmp_path / "nowhere.gauge"))
    assert missing.returncode == 2
    bad_option = _subprocess("check", "--no-such-option", str(tmp_path))
    assert bad_option.returncode == 2
    assert "unrecognized arguments" in bad_option.stderr or "error:" in bad_option.stderr


def test_version():
    result = _subprocess("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("gaugedsl ")


def test_bias_warnings_carry_their_place_code_and_hint(capsys, tmp_path):
    """W903 is a warning, not an error: `gaugedsl bias` goes on, and the warning names the
    symmetry's line, the code to look up in docs/errors.md and what to change."""
    path = tmp_path / "w903.gauge"
    path.write_text("model m\nparam u : R[3] = normal(0, 1)\nparam v : R[3] = normal(0, 1)\npredictor w = u\n"
                    "loss = sum((u * v - 1)^2)\nsymmetry balance : Scale[3] {\n  u -> g * u\n  v -> v / g\n}\n")  # fmt: skip
    assert cli.main(["bias", str(path), "--no-law"]) == 0
    out = capsys.readouterr().out
    assert f"{path}:6:1: warning[W903]" in out and "= hint: " in out


def test_check_stays_light_it_does_not_import_jax():
    """`gaugedsl check` (and the language server) must start fast: asking XLA for one CPU
    device per core happens in a module that imports no JAX."""
    code = "import sys; from gaugedsl import cli; cli.main(['check', 'examples/diagonal_net.gauge']); print('jax' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
