"""Sweeps (gaugedsl/dynamics/sweep.py): settings and seeds run side by side in one compiled
program, each point the same as a lone run of its settings, with results that carry the sweep's
axes."""

import json
from pathlib import Path

import numpy as np
import pytest

import gaugedsl
from gaugedsl.check import check_file
from gaugedsl.cli import main
from gaugedsl.dynamics import Simulation
from gaugedsl.dynamics.sweep import Sweep, split

ROOT = Path(__file__).resolve().parents[1]
QUICK_START = ROOT / "examples" / "diagonal_net.gauge"


def test_three_temperatures_by_five_seeds_are_one_compile():
    # The done-when of the scale issue: 15 points, one trace of the chunk function (a retrace
    # would raise), also when the sweep runs again.
    model = check_file(QUICK_START)
    sweep = Sweep.of({"T": [0.01, 0.03, 0.05], "seed": range(5)})
    sim = Simulation(model, particles=4, steps=60, chunk=30, max_traces=1, sweep=sweep)
    result = sim.run()
    assert result.records["w"].shape[1] == 15 * 4
    sim.run()  # the same compiled program again
    points = split(result, sim, sim.numbers())
    assert [r.numbers["T"] for r in points] == pytest.approx([0.01] * 5 + [0.03] * 5 + [0.05] * 5)
    assert [r.plan.seed for r in points] == [0, 1, 2, 3, 4] * 3
    assert all(r.plan.particles == 4 for r in points)


def test_a_point_is_a_lone_run_of_its_settings():
    # Every particle gets its point's numbers and its point's seed's streams, so its trajectory is
    # the lone run's bit for bit. A record that reduces over coordinates (the Gram log-determinant)
    # may differ in its last bit: XLA's vectorized reduction rounds by where the particle sits in
    # the batch (measured: 1.5e-5 on −88.7, relative 2e-7, one float32 ulp), so records are held to
    # four ulps.
    model = check_file(QUICK_START)
    sweep = Sweep.of({"T": [0.01, 0.05], "seed": [0, 7]})
    sim = Simulation(model, particles=6, steps=200, chunk=100, sweep=sweep)
    points = split(sim.run(), sim, sim.numbers())
    lone = Simulation(model, particles=6, steps=200, chunk=100)
    for point, swept in zip(sweep.points(), points):
        alone = lone.run(lone.numbers(T=point["T"]), seed=point["seed"])
        np.testing.assert_array_equal(swept.theta, alone.theta)
        np.testing.assert_array_equal(swept.records["w"], alone.records["w"])
        for label in alone.records:
            np.testing.assert_allclose(
                swept.records[label], alone.records[label], rtol=5e-7, err_msg=f"{point} {label}"
            )


def test_zipped_points_and_bad_sweeps():
    zipped = Sweep.of({"T": [0.01, 0.02], "dt": [1e-3, 2e-3]}, zipped=True)
    assert zipped.points() == [{"T": 0.01, "dt": 1e-3}, {"T": 0.02, "dt": 2e-3}]
    assert Sweep.of({"T": [1, 2], "seed": [0, 1, 2]}).shape == (2, 3)
    with pytest.raises(ValueError, match="same number of values"):
        Sweep.of({"T": [0.01, 0.02], "dt": [1e-3]}, zipped=True)
    with pytest.raises(ValueError, match="whole numbers"):
        Sweep.of({"seed": [0.5]})
    with pytest.raises(ValueError, match="no values"):
        Sweep.of({"T": []})


def test_the_api_returns_one_result_per_point():
    model = gaugedsl.load(QUICK_START)
    swept = model.run(particles=4, steps=200, chunk=100, sweep={"T": [0.02, 0.05], "seed": [1, 2]})
    assert len(swept) == 4 and swept.points[3] == {"T": 0.05, "seed": 2}
    assert swept.stacked("w").shape == (2, 2, 3, 4, 20)  # (T, seed, records, particles, coordinates)
    assert swept[3].result.numbers["T"] == pytest.approx(0.05) and swept[3].result.plan.seed == 2
    assert len(str(swept).splitlines()) == 4
    assert [p["settings"] for p in swept.to_dict()["points"]] == swept.points


def test_a_sweep_of_a_setting_the_model_does_not_use_is_refused():
    model = gaugedsl.load(QUICK_START)
    with pytest.raises(gaugedsl.GaugeError, match="E813"):
        model.run(particles=4, steps=40, sweep={"lr": [0.1, 0.2]})


def test_cli_sweep_writes_leading_axes_a_table_per_point_and_the_figure(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run", str(QUICK_START), "-o", str(out), "--particles", "4", "--steps", "200", "--chunk", "100"]
    assert main([*args, "--sweep", "T=0.02,0.05", "--sweep", "seed=0..2", "--plot"]) == 0
    printed = capsys.readouterr().out
    assert "sweep of 2 T × 3 seed (6 points × 4 particles)" in printed
    assert printed.count("── T = ") == 6 and "all 6 points: verdicts:" in printed
    with np.load(out / "results.npz") as z:
        assert z["w"].shape == (2, 3, 3, 4, 20)
        assert z["theta_final"].shape[:3] == (2, 3, 4)
        np.testing.assert_allclose(z["sweep.T"], [[0.02] * 3, [0.05] * 3])
        np.testing.assert_array_equal(z["sweep.seed"], [[0, 1, 2], [0, 1, 2]])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sweep"]["axes"] == {"T": [0.02, 0.05], "seed": [0, 1, 2]}
    assert [p["seed"] for p in summary["points"]] == [0, 1, 2] * 2
    assert all(p["comparison"] for p in summary["points"])


SCALAR = """model scalar_sweep
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
  particles = 200
  steps = 400
  dt = 1e-2
  record every 25: w
}
"""


def test_cli_sweep_figure_sets_the_prediction_beside_the_simulation(tmp_path, capsys):
    # The scalar law is exact (quadrature), so every point has a predicted stationary mean with an
    # error: the figure has it against T.
    program = tmp_path / "scalar.gauge"
    program.write_text(SCALAR)
    out = tmp_path / "out"
    assert main(["run", str(program), "-o", str(out), "--sweep", "T=0.05,0.1,0.2", "--plot"]) == 0
    assert "no sweep figure" not in capsys.readouterr().err
    assert (out / "sweep.png").stat().st_size > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sweep", "T=0.01,abc"], "expected NAME=V1,V2"),
        (["--sweep", "seed=3..1"], "expected NAME=V1,V2"),
        (["--sweep", "T=0.01", "--sweep", "T=0.02"], "names a setting twice"),
        (["--sweep", "T=0.01,0.02", "--set", "T=0.03"], "both swept and set"),
        (["--sweep", "T=0.01,0.02", "--sweep", "seed=0..2", "--zip"], "same number of values"),
        (["--zip"], "--zip goes with --sweep"),
    ],
)
def test_cli_sweep_usage_errors(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) if "expected" in message else _no_raise():
        code = main(["run", str(QUICK_START), "-o", str(tmp_path / "o"), "--steps", "10", *extra])
        assert code == 2
    assert message in capsys.readouterr().err


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_resumed_sweep_equals_an_uninterrupted_one_and_another_sweep_is_refused(tmp_path, capsys):
    program = tmp_path / "scalar.gauge"
    program.write_text(SCALAR.replace("  dt = 1e-2\n", "  dt = 1e-2\n  chunk = 100\n"))
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    sweep = ["--sweep", "T=0.05,0.2", "--sweep", "seed=0..1", "--particles", "20"]
    assert main(["run", str(program), "-o", str(whole), *sweep]) == 0
    assert main(["run", str(program), "-o", str(parts), *sweep, "--stop-after-chunks", "2"]) == 0
    # the checkpoint carries the sweep: another sweep of the same size is not this run
    other = ["--sweep", "T=0.05,0.3", "--sweep", "seed=0..1", "--particles", "20"]
    assert main(["run", str(program), "-o", str(parts), *other, "--resume"]) == 2
    assert main(["run", str(program), "-o", str(parts), *sweep, "--resume"]) == 0
    capsys.readouterr()
    with np.load(whole / "results.npz") as a, np.load(parts / "results.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])


SWEPT = SCALAR.replace(
    "  record every 25: w\n", "  sweep {\n    T    = [0.05, 0.2]\n    seed = 0..1\n  }\n  record every 25: w\n"
)


def test_the_run_blocks_sweep_runs_and_the_command_line_replaces_it(tmp_path, capsys):
    from gaugedsl.format import format_text

    formatted = format_text(SWEPT)  # a block in the block, one level in, `=` aligned
    assert "  sweep {\n    T    = [0.05, 0.2]\n    seed = 0..1\n  }\n" in formatted
    assert format_text(formatted) == formatted
    model = gaugedsl.load(SWEPT)
    assert model.ir.run.sweep == (("T", (0.05, 0.2)), ("seed", (0.0, 1.0)))
    program = tmp_path / "swept.gauge"
    program.write_text(SWEPT)
    out = tmp_path / "out"
    assert main(["run", str(program), "-o", str(out), "--particles", "10", "--steps", "50"]) == 0
    with np.load(out / "results.npz") as z:
        assert z["w"].shape == (2, 2, 3, 10)
    assert (
        main(["run", str(program), "-o", str(out), "--particles", "10", "--steps", "50", "--sweep", "T=0.1,0.2,0.3"])
        == 0
    )
    with np.load(out / "results.npz") as z:
        assert z["w"].shape == (3, 3, 10) and "sweep.seed" not in z.files
    assert main(["run", str(program), "-o", str(out), "--steps", "50", "--seed", "3"]) == 2
    assert "swept by the run block and set" in capsys.readouterr().err


@pytest.mark.parametrize(
    "sweep, message",
    [
        ("sweep {\n    seed = 2..1\n  }", "a range lo..hi runs over whole numbers"),
        ("sweep {\n    seed = [0, 1.5]\n  }", "seeds are whole numbers"),
        ("sweep {\n    T = [0.1, 0.1]\n    T = [0.2]\n  }", "'T' is swept twice"),
        ("sweep {\n  }", "the sweep is empty"),
        ("sweep zip {\n    T = [0.1, 0.2]\n    seed = 0..2\n  }", "the same number of values (T: 2, seed: 3)"),
        ('sweep {\n    T = [0.1, "a"]\n  }', "E"),
        ("sweep {\n    T = [0.1]\n  }\n  sweep {\n    dt = [0.1]\n  }", "a run block has one sweep"),
    ],
)
def test_sweeps_that_cannot_run_are_e514(sweep, message):
    text = SCALAR.replace("  record every 25: w\n", f"  {sweep}\n  record every 25: w\n")
    with pytest.raises(gaugedsl.GaugeError) as info:
        gaugedsl.load(text)
    rendered = str(info.value)
    assert message in rendered and "^" in rendered


def test_a_run_block_sweep_of_a_setting_the_run_does_not_read_points_at_the_sweep(tmp_path, capsys):
    program = tmp_path / "lr.gauge"
    program.write_text(
        SCALAR.replace("  record every 25: w\n", "  sweep {\n    lr = [0.05, 0.1]\n  }\n  record every 25: w\n")
    )
    assert main(["run", str(program), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "lr.gauge:15:3: error[E813]" in err and "sweep {" in err and "uses: dt, T" in err


def test_a_point_whose_particles_all_diverge_says_so_and_fails_strict(tmp_path, capsys):
    # A lone run at dt = 50 stops with E811; in a sweep the other points keep their statistics,
    # the point says it has none, its W811 counts its own particles, and --strict fails.
    program = tmp_path / "m.gauge"
    program.write_text(SCALAR)
    out = tmp_path / "o"
    args = ["run", str(program), "-o", str(out), "--particles", "10", "--steps", "200", "--sweep", "dt=1e-2,50"]
    assert main([*args, "--strict"]) == 1
    printed = capsys.readouterr().out
    assert "all 10 particles of this point diverged: no statistics" in printed and "1 diverged entirely" in printed
    points = json.loads((out / "summary.json").read_text())["points"]
    assert points[0]["diagnostics"] == [] and points[0]["healthy_particles"] == 10
    assert points[1]["healthy_particles"] == 0 and "10 of 10 particles diverged" in points[1]["diagnostics"][0]
    swept = gaugedsl.load(program).run(particles=10, steps=200, sweep={"dt": [1e-2, 50]})
    assert not swept.agrees and "all 10 particles diverged" in str(swept)
