"""Caches keyed by a geometry do not keep it alive: in a notebook, every model checked and
dropped would otherwise keep its geometry, its lowered program and its data."""

from __future__ import annotations

import gc
import weakref

from gaugedsl.check import check_text
from gaugedsl.dynamics import _geometry
from gaugedsl.geometry import Geometry
from gaugedsl.lowering import Lowered
from gaugedsl.report.action import action_facts

MODEL = """\
model hadamard
data {
  X : R[20, 3] = normal(0, 1, seed = 0)
  y : R[20]    = X @ [1, 0, -1]
}
param u : R[3] = normal(0, 0.1)
param v : R[3] = normal(0, 0.1)
predictor w = u * v
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry balance : Scale[3] {
  u -> g * u
  v -> v / g
}
noise projected(T = 1e-3)
"""


def _geometry_used_by_every_cache() -> tuple[weakref.ref, weakref.ref]:
    geo = Geometry(Lowered(check_text(MODEL, "<hadamard>")))
    action = _geometry.torus_action(geo)
    assert action is not None and _geometry.torus_action(geo) is action  # still cached
    assert _geometry.diagonal_action(geo) is action
    facts = action_facts(geo, "balance")
    assert action_facts(geo, "balance") is facts
    assert _geometry.charge_keeper(geo) is not None
    return weakref.ref(geo), weakref.ref(geo.model)


def test_a_geometry_is_freed_after_its_last_reference_goes():
    geo, model = _geometry_used_by_every_cache()
    gc.collect()
    assert geo() is None and model() is None
