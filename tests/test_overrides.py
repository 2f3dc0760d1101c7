"""Numeric overrides (`Model.run(T=...)`, `gaugedsl run --set T=...`) change the run or are
refused (E813, docs/errors.md): for each dynamics, an override of a setting it reads changes
the records, and one it does not read raises a diagnostic naming what it reads.

"Changes the records" is checked as "not bit-identical": the point is that the override reaches
the compiled program at all (before, `lr=` on gd/sgd was dropped silently), so no tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

import gaugedsl
from gaugedsl.check import Loader
from gaugedsl.cli import main
from gaugedsl.diagnostics import GaugeError
from gaugedsl.dynamics import Simulation

PROGRAM = """model small
data {{
  X : R[8, 3] = normal(0, 1, seed = 0)
  y : R[8]    = X @ normal(0, 1, shape = [3], seed = 1)
}}
param u : R[3] = normal(0, 0.5)
param v : R[3] = normal(0, 0.5)
predictor w = u * v
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry balance : Scale[3] {{
  u -> g * u
  v -> v / g
}}
{noise}
run {{
  {run}
  particles = 3
  steps     = 40
  record every 10: w, loss
}}
"""

CASES = {  # dynamics: (noise, run settings, overrides it reads, overrides it refuses)
    "sde": (
        "noise isotropic(T = 0.05)",
        "dynamics = sde\n  dt = 1e-2",
        {"T": 0.5, "dt": 2e-2},
        ("lr", "batch", "sigma"),
    ),
    "sde_sgd_noise": (
        "noise sgd(lr = 0.05, batch = 2)",
        "dynamics = sde\n  dt = 1e-2",
        {"lr": 0.5, "batch": 4, "dt": 2e-2},
        ("T", "sigma"),
    ),
    "quotient": (
        "noise projected(T = 0.05)",
        "dynamics = quotient\n  dt = 1e-2",
        {"T": 0.5, "dt": 2e-2},
        ("lr", "batch"),
    ),
    "gd": ("", "dynamics = gd\n  lr = 1e-2", {"lr": 5e-2}, ("T", "dt", "batch", "sigma")),
    "sgd": ("", "dynamics = sgd\n  lr = 1e-2\n  batch = 2", {"lr": 5e-2}, ("T", "dt", "batch")),
}


def program(case: str) -> str:
    noise, run, _, _ = CASES[case]
    return PROGRAM.format(noise=noise, run=run)


@pytest.fixture(scope="module", params=list(CASES))
def sim(request):
    model = Loader().check_text(program(request.param), "<overrides>")
    return request.param, Simulation(model)


def _records(result) -> bytes:
    return b"".join(np.asarray(result.records[k]).tobytes() for k in sorted(result.records))


def test_an_override_the_run_reads_changes_the_records(sim):
    case, sim = sim
    base = _records(sim.run(sim.numbers()))
    for name, value in CASES[case][2].items():
        changed = sim.run(sim.numbers(**{name: value}))
        assert _records(changed) != base, f"{case}: {name} = {value} changed nothing"
        assert changed.numbers[name] == pytest.approx(value, rel=1e-6)  # and is reported (float32 storage)


def test_an_override_the_run_does_not_read_is_refused(sim):
    case, sim = sim
    for name in CASES[case][3]:
        with pytest.raises(GaugeError) as info:
            sim.numbers(**{name: 0.3})
        d = info.value.diagnostics[0]
        assert d.code == "E813" and name in d.message, (case, name)
        assert all(used in d.hint for used in CASES[case][2]), d.hint  # names what the run reads
    with pytest.raises(GaugeError):
        sim.numbers(nonsense=1.0)


def test_batch_of_sgd_dynamics_is_refused_with_the_reason():
    sim = Simulation(Loader().check_text(program("sgd"), "<overrides>"))
    with pytest.raises(GaugeError) as info:
        sim.numbers(batch=4)
    assert "shape of the compiled step" in info.value.diagnostics[0].message


def test_the_api_sweep_over_lr_gives_different_runs_labelled_by_what_they_ran():
    model = gaugedsl.load(program("gd"))
    runs = {lr: model.run(lr=lr) for lr in (1e-2, 3e-2)}
    assert _records(runs[1e-2].result) != _records(runs[3e-2].result)
    for lr, r in runs.items():
        assert r.to_dict()["numbers"]["lr"] == pytest.approx(lr, rel=1e-6)
        assert r.to_dict()["numbers"]["dt"] == pytest.approx(lr, rel=1e-6)  # the step is the lr


def test_cli_set_reaches_the_run_and_refuses_what_it_does_not_read(tmp_path, capsys):
    path = tmp_path / "small.gauge"
    path.write_text(program("gd"))
    assert main(["run", str(path), "-o", str(tmp_path / "a")]) == 0
    assert main(["run", str(path), "--set", "lr=0.05", "-o", str(tmp_path / "b")]) == 0
    with np.load(tmp_path / "a" / "results.npz") as a, np.load(tmp_path / "b" / "results.npz") as b:
        assert a["theta_final"].tobytes() != b["theta_final"].tobytes()
    capsys.readouterr()
    assert main(["run", str(path), "--set", "T=0.1", "-o", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert "error[E813]" in err and "dynamics = gd uses: lr" in err
