"""The rows comparing a simulated predictor with its sampled law (gaugedsl/report/law_rows.py).

Sizes and tolerances are stated per test. The verdicts are the rows' own: a mean agrees when the
max |z| over coordinates stays under the Bonferroni threshold for a family false-alarm rate of 0.27%
(as one 3σ row); a distance agrees when it is under its permutation floor + 3 sd. The seeds are fixed,
so each test is deterministic; a correct pipeline fails a given row with probability ≲ 0.3%.
"""

import dataclasses
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from gaugedsl.check import check_file, check_text
from gaugedsl.dynamics import Simulation
from gaugedsl.report import verdict
from gaugedsl.report.compare import compare
from gaugedsl.report.law_rows import bonferroni_z, by_max_z

pytest.importorskip("blackjax")
jax.config.update("jax_enable_x64", True)
ROOT = Path(__file__).resolve().parent.parent

# Depth 3 over four coordinates, six data rows (n ≥ d: normalisable on every branch), T = 0.1, started on
# the slice (off it the charges relax at rate 2T/G_aa, ~0.07 at |u| ~ 1: slower than the run). Euler's
# stationary bias is O(dt·curvature): dt = 2e-3 keeps it under the Monte Carlo error of 128 particles.
DEEP3 = """model deep3_small
import std.deep
data {
  X      : R[6, 4] = normal(0, 1, seed = 0)
  w_star : R[4]    = sparse(k = 2, low = 0.5, high = 1, seed = 1)
  y      : R[6]    = X @ w_star
}
param u1 : R[4] = normal(0, 0.5)
param u2 : R[4] = normal(0, 0.5)
param u3 : R[4] = normal(0, 0.5)
predictor w = u1 * u2 * u3
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry layers = deep3(u1, u2, u3)
noise projected(T = 0.1)
run {
  dynamics  = sde
  particles = 128
  dt        = 2e-3
  steps     = 10000
  seed      = 0
  start     = slice
  record every 200: w, charge(layers)
}
"""


def rows_by_name(comparison):
    return {r.quantity: r for r in comparison.rows}


def law_row_names(label):
    return [f"max_i |z| of E[{label}_i] (second half vs law)", f"max_i KS({label}_i, law) (end)",
            f"energy distance({label}, law) (end)"]  # fmt: skip


def law_verdicts(comparison, label="w"):
    rows = rows_by_name(comparison)
    return {n: (rows[n].verdict, rows[n].why) for n in law_row_names(label)}


def test_bonferroni_threshold():
    assert bonferroni_z(1) == pytest.approx(verdict.Z_THRESHOLD, abs=1e-9)
    # m coordinates: each two-sided tail is the single row's 0.27% over m
    for m in (2, 20, 64):
        tail = math.erfc(bonferroni_z(m) / math.sqrt(2))
        assert tail == pytest.approx(math.erfc(verdict.Z_THRESHOLD / math.sqrt(2)) / m, rel=1e-6)
    assert by_max_z(np.array([0.5, -3.1]), "")[0] == verdict.AGREES  # over one 3σ row, under the m = 2 threshold 3.2
    assert by_max_z(np.array([0.5, -3.3]), "")[0] == verdict.DISAGREES


@pytest.fixture(scope="module")
def deep3_run():
    # 64 particles (the full 128 are test_deep3_simulation_agrees_with_the_sampler's): against the
    # law at 4T the distances stand far beyond their floors either way
    sim = Simulation(check_text(DEEP3, "<deep3>"), particles=64)
    return sim, sim.run()


@pytest.mark.slow
def test_deep3_simulation_agrees_with_the_sampler():
    # 128 particles to t = 80, records every 0.4; the law rows must agree. At t = 20 (the CI fixture
    # above) the mean rows disagreed for 3 of 4 seeds, keeper on or off: an odd-depth product crosses
    # the flat origin slowly (docs/theory.md §9.2), so t = 20 is not yet stationary. At t = 80:
    # max |z| = 0.49, stationarity |z| = 0.86 (seed 0).
    sim = Simulation(check_text(DEEP3.replace("steps     = 10000", "steps     = 40000"), "<deep3>"))
    result = sim.run()
    comparison = compare(sim, result)
    got = law_verdicts(comparison)
    assert all(v == verdict.AGREES for v, _ in got.values()), got
    rows = rows_by_name(comparison)
    assert rows["stationarity of w: max_i |z|"].verdict == verdict.AGREES
    assert all(f"E[w[{i}]] (second half)" in rows for i in range(4))  # m ≤ 4: a row per coordinate


@pytest.mark.slow  # CI: test_verdicts.py's wrong prediction that disagrees and exits 1 (suite time)
def test_a_wrong_law_disagrees(deep3_run):
    # The same simulation against the law at 4T: the spread along the data directions doubles, which
    # KS and the energy distance see far beyond their floors (the test can fail).
    sim, result = deep3_run
    wrong = dataclasses.replace(result, numbers={**result.numbers, "T": 4 * result.numbers["T"]})
    got = law_verdicts(compare(sim, wrong))
    assert got["max_i KS(w_i, law) (end)"][0] == verdict.DISAGREES, got
    assert got["energy distance(w, law) (end)"][0] == verdict.DISAGREES, got


@pytest.mark.slow  # CI: kept under --runslow (suite time)
def test_too_few_records_say_so():
    sim = Simulation(check_text(DEEP3, "<deep3>"), particles=8, steps=400)
    rows = rows_by_name(compare(sim, sim.run()))
    assert rows["law of w"].verdict == verdict.NO_PREDICTION and "at least 8" in rows["law of w"].why


def test_isotropic_noise_has_no_law_and_says_why():
    text = DEEP3.replace("noise projected(T = 0.1)", "noise isotropic(T = 0.1)")
    sim = Simulation(check_text(text, "<iso>"), particles=8, steps=400)
    rows = rows_by_name(compare(sim, sim.run()))
    assert rows["law of w"].verdict == verdict.NO_PREDICTION and "P3" in rows["law of w"].why


def test_charges_that_drift_have_no_law_and_say_why():
    # u1 → g u1, u2 → u2 / g², u3 unmoved by the second generator: not traceless, the charges drift.
    text = DEEP3.replace("import std.deep\n", "").replace(
        "symmetry layers = deep3(u1, u2, u3)", "symmetry layers : Scale[4] { u1 -> g * u1  u2 -> u2 / (g * g) }"
    )
    sim = Simulation(check_text(text, "<drift>"), particles=8, steps=2000)
    rows = rows_by_name(compare(sim, sim.run()))
    assert rows["law of w"].verdict == verdict.NO_PREDICTION and "charges drift" in rows["law of w"].why


def test_quick_start_rows_agree_and_the_figure_is_written(tmp_path, capsys):
    # examples/diagonal_net.gauge reduced to 32 particles (its own dt and t = 60): the law rows agree
    # and --plot writes law_w.png. (The full 256 particles are test_quick_start_full, slow.)
    from gaugedsl.cli import main

    assert main(["run", str(ROOT / "examples" / "diagonal_net.gauge"), "--particles", "32", "-o", str(tmp_path),
                 "--no-progress", "--plot"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "max_i |z| of E[w_i]" in out and "energy distance(w, law)" in out
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = {r["quantity"]: r for r in summary["comparison"]}
    for name in law_row_names("w"):
        assert rows[name]["verdict"] == verdict.AGREES, rows[name]
    assert (tmp_path / "law_w.png").stat().st_size > 10_000


@pytest.mark.slow
def test_quick_start_full():
    sim = Simulation(check_file(ROOT / "examples" / "diagonal_net.gauge"))
    got = law_verdicts(compare(sim, sim.run()))
    assert all(v == verdict.AGREES for v, _ in got.values()), got


def test_attention_as_written_has_no_law_rows_by_the_bounded_loss():
    # The softmax keeps the loss bounded in (W_Q, W_K) while the cone |q_j| = |k_j| has infinite measure
    # (docs/theory.md §10): no stationary law, decided from the program's structure before any sampling.
    # At full size the sampler's drift detector missed this and the table printed law rows that
    # "disagreed"; the sampler on the cone chart is tested with a penalty that makes the law exist
    # (tests/test_quotient_cone.py).
    text = (ROOT / "examples" / "attention_diagonal.gauge").read_text()
    text = text.replace("record every 100: charge(columns)", "record every 20: out, charge(columns)")
    sim = Simulation(check_text(text, "<attention>"), particles=8, steps=200)
    rows = rows_by_name(compare(sim, sim.run()))
    law = [r for n, r in rows.items() if "out" in n and ("law" in n or n.startswith("mean of out"))]
    assert law and all(r.verdict == verdict.NO_PREDICTION and "only through softmax" in r.why for r in law), law


@pytest.mark.slow  # CI: kept under --runslow (suite time)
def test_without_blackjax_the_row_says_what_to_install(monkeypatch):
    # gaugedsl runs without the `law` extra; the table says how to get the sampled law.
    import builtins

    real_import = builtins.__import__

    def no_blackjax(name, *args, **kwargs):
        if name == "blackjax" or name.startswith("blackjax."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    sim = Simulation(check_text(DEEP3, "<deep3>"), particles=8, steps=2000)
    result = sim.run()
    monkeypatch.setattr(builtins, "__import__", no_blackjax)
    rows = rows_by_name(compare(sim, result))
    assert rows["law of w"].verdict == verdict.NO_PREDICTION and "pip install blackjax" in rows["law of w"].why
