"""The memory budget (issue 20 item 1): what cannot fit is refused from the IR and the plan,
before anything is lowered or allocated, with a diagnostic on the declaration or setting that
makes it large and the size that fits; a run predicted to take days is warned about."""

import pytest

from gaugedsl import budget
from gaugedsl.check import check_text
from gaugedsl.cli import main
from gaugedsl.dynamics.plan import resolve

SMALL = """model small
data {
  X : R[DATA] = normal(0, 1, seed = 0)
}
param u : R[3] = normal(0, 1)
param v : R[3] = normal(0, 1)
predictor w = u * v
loss = 0.5 * sum((w - X[0, 0:3])^2)
symmetry s : Scale[3] {
  u -> g * u
  v -> v / g
}
noise projected(T = 0.01)
run {
  particles = 64
  steps = 200
  dt = 1e-3
  record every 10: w
}
"""


@pytest.fixture
def nothing_is_lowered(monkeypatch):
    """Fails the test if the program is lowered (its data evaluated, its arrays allocated)."""
    from gaugedsl import lowering

    def refuse(*args, **kwargs):
        raise AssertionError("the program was lowered before the budget refused it")

    monkeypatch.setattr(lowering.Lowered, "__init__", refuse)


def _write(tmp_path, text, name="m.gauge"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", ["run", "bias", "symmetries"])
def test_data_larger_than_the_machine_is_refused_on_its_declaration(command, tmp_path, capsys, nothing_is_lowered):
    path = _write(tmp_path, SMALL.replace("DATA", "100000, 100000"))
    argv = [command, str(path)] + (["-o", str(tmp_path / "out")] if command == "run" else [])
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "m.gauge:3:3: error[E707]" in err and "data 'X': " in err and "GiB" in err, err


def test_a_huge_parameter_and_a_huge_group_are_refused_by_bias(tmp_path, capsys, nothing_is_lowered):
    huge = SMALL.replace("DATA", "4, 3").replace("R[3] = normal(0, 1)", "R[2147483647, 2147483647] = normal(0, 1)")
    huge = huge.replace("0.5 * sum((w - X[0, 0:3])^2)", "0.5 * sum(w^2)").replace(
        "Scale[3]", "Scale[2147483647, 2147483647]"
    )
    assert main(["bias", str(_write(tmp_path, huge))]) == 1
    err = capsys.readouterr().err
    assert (
        "m.gauge:9:1: error[E707]" in err and "the generators of 's' (4611686014132420609 × 9223372028264841218)" in err
    )
    factor = """model factor
param A : R[4, 100000] = normal(0, 1)
param B : R[100000, 4] = normal(0, 1)
predictor W = A @ B
loss = 0.5 * sum(W^2)
symmetry gl : GL[100000] {
  A -> A @ g
  B -> inv(g) @ B
}
"""
    assert main(["bias", str(_write(tmp_path, factor, "factor.gauge"))]) == 1
    err = capsys.readouterr().err
    assert "error[E707]" in err and "the Gram matrix of 'gl' (10000000000 × 10000000000)" in err, err


def test_a_run_that_outgrows_the_budget_says_how_many_particles_fit(tmp_path, capsys, nothing_is_lowered):
    path = _write(tmp_path, SMALL.replace("DATA", "4, 3"))
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--max-memory", "200KB", "--steps", "20000"]) == 1
    err = capsys.readouterr().err
    assert "error[E814]: this run would need at least" in err and "the budget is 200 KiB" in err, err
    fits = int(err.split("at most ")[1].split(" particles fit")[0].replace(",", ""))
    assert 1 <= fits < 64
    # the number the hint names does fit, and one particle more would not
    model = check_text(SMALL.replace("DATA", "4, 3"), "<m>")
    for n, ok in ((fits, True), (fits + 1, False)):
        try:
            budget.run_budget(model, {"particles": n, "steps": 20000}, 200 * 1024)
            fitted = True
        except Exception:  # noqa: BLE001 — GaugeError E814
            fitted = False
        assert fitted == ok, (n, ok)


def test_steps_beyond_the_device_counter_are_refused(tmp_path, capsys):
    path = _write(tmp_path, SMALL.replace("DATA", "4, 3").replace("steps = 200", "steps = 1000000000000000"))
    assert main(["check", str(path)]) == 1
    assert "error[E505]: 'steps' must be below 2147483648" in capsys.readouterr().err
    path = _write(tmp_path, SMALL.replace("DATA", "4, 3"), "ok.gauge")
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--steps", str(2**31)]) == 1
    assert "error[E803]: steps = 2147483648" in capsys.readouterr().err


def test_a_run_of_days_is_warned_about_and_an_ordinary_one_is_not():
    model = check_text(SMALL.replace("DATA", "4, 3"), "<m>")
    days = budget.long_run(model, resolve(model, particles=100_000, steps=2_000_000_000))
    assert days is not None and days.code == "W803" and "23.1 days" in days.message
    assert budget.long_run(model, resolve(model)) is None


def test_the_default_budget_is_most_of_the_machine():
    assert 0.5 * budget.machine_memory() < budget.default_budget() < budget.machine_memory()


@pytest.mark.parametrize(
    "text, size",
    [("4GB", 4 * 2**30), ("512MB", 512 * 2**20), ("1.5GiB", int(1.5 * 2**30)), ("1000", 1000), ("200 KB", 200 * 1024)],
)
def test_sizes_read_as_people_write_them(text, size):
    assert budget.parse_size(text) == size


def test_a_bad_size_is_a_usage_error(tmp_path, capsys):
    path = _write(tmp_path, SMALL.replace("DATA", "4, 3"))
    with pytest.raises(SystemExit) as exc:
        main(["run", str(path), "--max-memory", "lots"])
    assert exc.value.code == 2 and "not a size" in capsys.readouterr().err
