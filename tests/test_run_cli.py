"""`gaugedsl run`: results on disk, the theory table, resuming, diagnostics instead of
tracebacks."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gaugedsl.check import check_file
from gaugedsl.cli import main

ROOT = Path(__file__).resolve().parents[1]

SCALAR = """model scalar_cli
param u : R = sqrt(0.5)
param v : R = sqrt(0.5)
predictor w = u * v
loss = 0.5 * (w - 0.5)^2
symmetry balance : Scale {
  u -> g * u
  v -> v / g
}
noise projected(T = 0.1)
run {
  particles = 300
  steps = 600
  dt = 1e-2
  chunk = 100
  seed = 3
  record every 50: w, charge(balance), loss
}
"""


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "scalar.gauge"
    path.write_text(SCALAR)
    return path


def test_run_writes_results_prints_the_theory_table_and_plots(program, tmp_path, capsys, caplog):
    import jax

    out = tmp_path / "out"
    try:
        assert main(["run", str(program), "-o", str(out), "--plot", "--progress", "--log-compiles"]) == 0
    finally:
        jax.config.update("jax_log_compiles", False)
    captured = capsys.readouterr()
    compiles = [r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()]
    # The table: E[w] beside the predicted 0.4154 (P5), distances beside their MC floor.
    assert re.search(r"E\[w\] \(second half\)\s+0\.\d+ ± [\d.e-]+\s+0\.415", captured.out)
    assert "L1(histogram of w, law)" in captured.out and "KS(w, law)" in captured.out
    assert "P4" in captured.out  # the charges, predicted to stay on the balanced slice
    assert "disagrees" not in captured.out and "verdicts: " in captured.out
    # One compilation of the chunk function for the whole run (6 chunks).
    assert sum("jit(chunk)" in m for m in compiles) == 1
    assert "step 600/600" in captured.err  # the progress bar (forced: stderr is not a TTY)
    with np.load(out / "results.npz") as z:
        assert z["w"].shape == (13, 300) and list(z["w.steps"]) == list(range(0, 601, 50))
        assert z["charge_balance"].shape == (13, 300, 1) and z["healthy"].all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["program_hash"] == check_file(program).source_hash
    assert summary["seed"] == 3 and summary["plan"]["particles"] == 300
    assert (
        summary["numbers"]["dt"] == 0.01 and summary["numbers"]["T"] == 0.1
    )  # as written, not float32's 0.00999999977
    assert {"jax", "diffrax", "equinox", "gaugedsl"} <= set(summary["versions"])
    assert summary["wall_time_s"] > 0
    assert any(r["source"] == "P5" and r["predicted"] == pytest.approx(0.4154, abs=1e-3) for r in summary["comparison"])
    assert all(r["verdict"] in ("agrees", "disagrees", "no prediction") and r["why"] for r in summary["comparison"])
    assert sum(summary["verdicts"].values()) == len(summary["comparison"])
    for png in ("law_w.png", "charges.png", "records.png"):
        assert (out / png).stat().st_size > 10_000
    assert not (out / "checkpoint.npz").exists()


@pytest.mark.slow  # CI: test_checkpoints.py (the same resume, bit for bit, and every refusal)
def test_resume_gives_the_numbers_of_an_uninterrupted_run(program, tmp_path, capsys):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["run", str(program), "-o", str(whole), "--steps", "400", "--particles", "50"]) == 0
    assert (
        main(["run", str(program), "-o", str(parts), "--steps", "400", "--particles", "50", "--stop-after-chunks", "2"])
        == 0
    )
    assert (parts / "checkpoint.npz").exists() and not (parts / "results.npz").exists()
    assert "continue with --resume" in capsys.readouterr().err
    # a different setting is refused rather than silently mixed
    assert (
        main(["run", str(program), "-o", str(parts), "--steps", "400", "--particles", "50", "--seed", "9", "--resume"])
        == 2
    )
    assert main(["run", str(program), "-o", str(parts), "--steps", "400", "--particles", "50", "--resume"]) == 0
    assert "resuming scalar_cli at step 200 of 400" in capsys.readouterr().err
    with np.load(whole / "results.npz") as a, np.load(parts / "results.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])


def test_resume_without_a_checkpoint_is_a_usage_error(program, tmp_path, capsys):
    assert main(["run", str(program), "-o", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_errors_are_diagnostics_not_tracebacks(tmp_path, capsys):
    path = tmp_path / "bad.gauge"
    path.write_text(SCALAR.replace("  chunk = 100\n", "  chunk = 100\n  solver = sra1\n"))
    assert main(["run", str(path), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "bad.gauge:16:3: error[E810]: solver = sra1 is for additive noise" in err
    assert "^^^" in err and "hint: use solver = euler" in err and "Traceback" not in err


def test_diagonal_net_example_runs_and_compares(tmp_path, capsys):
    # The DESIGN.md example, shortened (the full run is benchmarks' and the README's).
    example = ROOT / "examples" / "diagonal_net.gauge"
    assert main(["run", str(example), "-o", str(tmp_path / "d"), "--particles", "50", "--steps", "500"]) == 0
    out = capsys.readouterr().out
    assert "fraction of |charge_balance_a| not grown, sign kept (per particle)" in out and "E[loss] (end)" in out
    assert re.search(r"^verdicts: 1 agrees, 0 disagree, \d+ without prediction$", out, re.M)


def test_plot_without_matplotlib_is_a_usage_error_before_the_run(program, tmp_path, capsys, monkeypatch):
    """`pip install .` (the README's first command) brings no matplotlib: --plot must say
    what to install, before spending the simulation, not fail after it."""
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = tmp_path / "out"
    assert main(["run", str(program), "-o", str(out), "--plot"]) == 2
    assert "pip install matplotlib" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_output_that_cannot_be_a_folder_is_a_usage_error_before_the_run(program, tmp_path, capsys, where):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    out = blocker if where == "a file" else blocker / "sub"
    assert main(["run", str(program), "-o", str(out), "--steps", "10"]) == 2
    err = capsys.readouterr().err
    assert f"-o {out}" in err and "internal error" not in err
    assert blocker.read_text() == "not a folder"
