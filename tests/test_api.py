"""The Python API returns the same results as the CLI."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import gaugedsl
from gaugedsl.cli import main

jax.config.update("jax_enable_x64", True)

SCALAR = "examples/scalar_product.gauge"
ROOT = Path(__file__).resolve().parents[1]


def test_load_from_path_and_from_text_give_the_same_model():
    from_path = gaugedsl.load(SCALAR)
    with open(SCALAR) as f:
        from_text = gaugedsl.load(f.read())
    assert from_path.name == from_text.name
    assert str(from_path).splitlines()[1:] == str(from_text).splitlines()[1:]  # line 0 names the path


def test_errors_quote_the_source_with_a_caret():
    with pytest.raises(gaugedsl.GaugeError) as exc:
        gaugedsl.load("model m\nparam u : R[3]\nloss = sum(v)\n")
    text = str(exc.value)
    assert "<text>:3:12: error[E201]: unknown name 'v'" in text
    assert "loss = sum(v)" in text and "^" in text


def test_bias_equals_the_cli_json(capsys):
    result = gaugedsl.load(SCALAR).bias()
    assert main(["bias", SCALAR, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert result.to_dict() == cli
    assert "E[w]" in result._repr_html_() and "<table>" in result._repr_html_()


def test_run_equals_the_cli_summary(tmp_path, capsys):
    model = gaugedsl.load("examples/diagonal_net.gauge")
    result = model.run(particles=8, steps=300)
    assert (
        main(
            [
                "run",
                "examples/diagonal_net.gauge",
                "--particles",
                "8",
                "--steps",
                "300",
                "-o",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert json.loads(json.dumps(result.to_dict()["comparison"])) == summary["comparison"]
    assert result.verdicts == summary["verdicts"] and result.agrees  # each row's verdict, and their counts
    assert all(r.verdict in ("agrees", "disagrees", "no prediction") and r.why for r in result.table)
    assert result.records["w"].shape[1:] == (8, 20)
    ax = result.plot("loss")
    assert ax.get_ylabel() == "loss"
    assert "simulated" in str(result) and "verdicts: " in str(result) and "<table>" in result._repr_html_()


def test_design_equals_the_cli(tmp_path, capsys):
    result = gaugedsl.load("examples/e4_vanilla.gauge").design()
    out = tmp_path / "designed.gauge"
    assert main(["design", "examples/e4_vanilla.gauge", "-o", str(out)]) == 0
    capsys.readouterr()
    # Same parameterization: the texts differ only in the output name they mention.
    designed = out.read_text()
    assert len(result.text.splitlines()) == len(designed.splitlines())
    assert result.to_dict()["kind"] and result.to_dict()["max_deviation"] < 1e-8
    assert gaugedsl.load(str(out)).ir.symmetries, "the designed model declares its symmetry"


def test_run_reuses_its_compiled_simulation_for_new_numbers_and_seeds(caplog):
    """`numbers` and `seed` change without recompiling (the docstring's promise): a second
    run with another T and seed builds no new simulation and compiles no new chunk."""
    model = gaugedsl.load(ROOT / "examples" / "diagonal_net.gauge")
    first = model.run(particles=4, steps=200)
    (sim,) = model._simulations.values()
    caplog.clear()
    try:
        jax.config.update("jax_log_compiles", True)
        second = model.run(particles=4, steps=200, seed=7, T=2e-3)
    finally:
        jax.config.update("jax_log_compiles", False)
    compiles = [r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()]
    assert not any("jit(chunk)" in m for m in compiles)
    assert list(model._simulations.values()) == [sim]
    assert second.result.plan.seed == 7 and first.result.plan.seed == 0
    assert second.result.numbers["T"] == pytest.approx(2e-3)
    assert not np.array_equal(first.result.records["w"], second.result.records["w"])
