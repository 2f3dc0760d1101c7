"""The designer's own check: the bias the produced model induces, computed by the geometry
engine, against the target formula.

At random points projected onto the gauge slice (the engine's `project_to_slice`), the
induced bias (T/2) log det G is computed from the generators by the generic route (G = Ξ Ξᵀ,
Cholesky; no structured shortcut) in float64, and the target from the predictor's value
(THEORY.md §3–4). They must agree up to one additive constant: the printed deviation is the
largest difference of (induced − target) between two points.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .. import ir
from ..geometry import Geometry
from ..lowering import Lowered
from .family import Realization


@dataclasses.dataclass(frozen=True)
class Verification:
    """**Fields:** `T` (the temperature used; 1 when the model sets none), `induced`,
    `target` (one value per point), `constant` (mean of induced − target), `expected`
    (the constant the closed form predicts), `deviation` (max − min of induced − target),
    `max_charge` (largest |Noether charge| at the slice points: how well they are on it)."""

    T: float
    induced: np.ndarray
    target: np.ndarray
    constant: float
    expected: float
    deviation: float
    max_charge: float

    @property
    def scale(self) -> float:
        return float(np.max(np.abs(self.induced)))

    def ok(self, tol: float = 1e-8) -> bool:
        """Agreement to `tol` relative to the size of the bias (at least absolute `tol`)."""
        return self.deviation <= tol * max(1.0, self.scale) and abs(self.constant - self.expected) <= tol * max(1.0, self.scale)


def verify(model: ir.Model, r: Realization, points: int = 6, seed: int = 0) -> Verification:
    """Compare induced and target bias at `points` random slice points (float64)."""
    with jax.enable_x64(True):
        lowered = Lowered(model)
        geo = Geometry(lowered)
        T = 1.0 if r.T is None else r.T
        keys = jax.random.split(jax.random.PRNGKey(seed), points)
        induced, target, charges = [], [], []
        logdet = jax.jit(lambda th: geo.logdet_gram(r.symmetry, th, structured=False))
        for k in keys:
            theta = _random_point(lowered, r, k)
            theta = geo.project_to_slice(theta)
            charges.append(float(jnp.max(jnp.abs(geo.charges(r.symmetry, theta)))))
            w = np.asarray(lowered.predictors(lowered.layout.unflatten(theta))[r.predictor])
            induced.append(0.5 * T * float(logdet(theta)))
            target.append(r.target_bias(w, T))
    induced, target = np.array(induced), np.array(target)
    diff = induced - target
    return Verification(T, induced, target, float(np.mean(diff)), r.expected_constant(T), float(np.max(diff) - np.min(diff)), max(charges))


def _random_point(lowered: Lowered, r: Realization, key) -> jnp.ndarray:
    """Every factor drawn from N(0, 1) (other parameters at their initial values): generic
    points where no coordinate of z, and no singular value, vanishes."""
    k_init, k_draw = jax.random.split(key)
    params = lowered.init_params(k_init)
    for i, name in enumerate(r.factors):
        shape = params[name].shape
        params[name] = jax.random.normal(jax.random.fold_in(k_draw, i), shape, jnp.float64)
    return lowered.layout.flatten({n: jnp.asarray(v, jnp.float64) for n, v in params.items()})
