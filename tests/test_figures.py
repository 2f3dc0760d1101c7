"""What the figures draw (report/plots.py): the handful of highlighted entries, and the reference
lines — the data's target for a predictor only, the value on the balanced slice only for records
the balancing changes."""

import numpy as np
import pytest

from gaugedsl.check import check_text
from gaugedsl.dynamics import Simulation
from gaugedsl.report import compare
from gaugedsl.report.plots import _balanced_values, _highlighted, _references

pytest.importorskip("matplotlib")

PROGRAM = """model scalar_figures
param u : R = 1.5
param v : R = 0.5
predictor w = u * v
loss = 0.5 * (w - 0.5)^2
symmetry balance : Scale {
  u -> g * u
  v -> v / g
}
noise isotropic(T = 0.01)
run {
  particles = 16
  steps = 100
  dt = 1e-2
  record every 20: w, ratio = abs(u) / abs(v), charge(balance)
}
"""


def test_balanced_values_only_for_records_the_balancing_changes():
    sim = Simulation(check_text(PROGRAM, "<figures>"))
    result = sim.run(sim.numbers())
    balanced = _balanced_values(sim, result)
    # at the balanced point |u| = |v|: the ratio is 1 and the charge 0, whatever the particle
    np.testing.assert_allclose(balanced["ratio"], [1.0], atol=1e-6)
    np.testing.assert_allclose(balanced["charge_balance"], [0.0], atol=1e-6)
    assert "w" not in balanced  # the predictor is the same there: no line
    refs = _references(result, compare(sim, result), balanced, {"w_star": np.zeros(3)})
    assert "target" not in refs["w"]  # a data array of another shape is no target
    assert "balanced" in refs["ratio"] and "balanced" not in refs["w"]


def test_a_target_is_drawn_for_a_predictor_of_its_shape_only():
    class Stub:  # the parts of a Result and a Comparison _references reads
        pass

    from gaugedsl import ir

    result, comparison = Stub(), Stub()
    w_item = Stub()
    w_item.label, w_item.value = "w", ir.Ref("predictor", "w", (4,), None)  # type: ignore[arg-type]
    c_item = Stub()
    c_item.label, c_item.value = "c", Stub()  # any other expression
    block = Stub()
    block.items = (w_item, c_item)
    result.plan = Stub()
    result.plan.records = (block,)
    result.records = {"w": np.zeros((3, 2, 4)), "c": np.zeros((3, 2, 4))}
    comparison.rows = []
    refs = _references(result, comparison, {}, {"w_star": np.array([1.0, 0.0, 0.0, -2.0])})
    np.testing.assert_array_equal(refs["w"]["target"], [1.0, 0.0, 0.0, -2.0])
    np.testing.assert_array_equal(refs["w"]["support"], [True, False, False, True])
    assert "target" not in refs["c"]  # a charge of the same shape is not compared with w_star


def test_highlighted_entries_are_few_and_show_the_support_or_the_extremes():
    support = np.array([True, False, True, False, False, False])
    assert _highlighted(np.arange(6.0), support) == [0, 2, 1, 3]  # two on, two off the support
    picked = _highlighted(np.array([5.0, -3.0, 0.1, 0.2, 9.0, 0.0]), None)
    assert 1 in picked and 4 in picked and len(picked) <= 4  # the lowest and the highest at the end
    assert _highlighted(np.arange(3.0), None) == [0, 1, 2]


def test_the_uncorrected_gibbs_law_is_drawn_only_where_it_exists():
    # The quick start fits 20 weights to 16 samples: exp(−L/T) dw is flat along the 4-dimensional
    # kernel of X, so it has no law — its "draws" were a drifting sampler's, and the figures drew
    # them. The corrected law exists (d < 2n, docs/theory.md §10): the figure says so instead.
    # With 40 samples for 5 weights (benchmarks/diagonal_net_law.gauge) the plain law exists.
    from pathlib import Path

    from gaugedsl.check import check_file
    from gaugedsl.geometry.normalisable import gibbs_flat

    root = Path(__file__).resolve().parents[1]
    why = gibbs_flat(Simulation(check_file(root / "examples" / "diagonal_net.gauge"), particles=2, steps=10))
    assert why is not None and "4 flat directions" in why and "rank 16 of 20" in why
    assert (
        gibbs_flat(Simulation(check_file(root / "benchmarks" / "diagonal_net_law.gauge"), particles=2, steps=10))
        is None
    )
