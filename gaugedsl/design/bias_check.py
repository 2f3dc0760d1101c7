"""The designer's own check: the bias the produced model induces, computed by the geometry
engine, against the target formula.

Random points of the gauge slice are built from random predictor values: every factor of a
Hadamard product gets |z_i|^{1/L} (with random signs whose product is the sign of z_i), a
factorization W = P Σ Qᵀ gets U = P Σ^½, V = Q Σ^½. The engine's Noether charges certify
that the points are on the slice (they vanish there). At each point the induced bias
(T/2) log det G is computed from the engine's generators by the generic route (G = Ξ Ξᵀ,
Cholesky; no structured shortcut) in float64, and the target from the predictor's value
(docs/theory.md §3–4). They must agree up to one additive constant: the printed deviation is the
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
    `max_charge` (largest |Noether charge| at the points: how well they are on the slice)."""

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
        size = max(1.0, self.scale)
        return (
            self.deviation <= tol * size
            and abs(self.constant - self.expected) <= tol * size
            and self.max_charge <= tol * size
        )


def verify(model: ir.Model, r: Realization, points: int = 6, seed: int = 0) -> Verification:
    """Compare induced and target bias at `points` random slice points (float64)."""
    with jax.enable_x64(True):
        low = Lowered(model)
        geo = Geometry(low)
        T = 1.0 if r.T is None else r.T
        rng = np.random.default_rng(seed)
        others = [p for p in model.params if p.name not in r.factors]
        base = low.init_params(jax.random.PRNGKey(seed)) if others else {}
        thetas = jnp.stack([low.layout.flatten({**base, **_slice_point(r, rng)}) for _ in range(points)])

        def at(theta):
            w = low.predictors(low.layout.unflatten(theta))[r.predictor]
            charges = geo.charges(r.symmetry, theta)
            return geo.logdet_gram(r.symmetry, theta, structured=False), jnp.max(jnp.abs(charges)), w

        logdet, charge, w = (np.asarray(x) for x in jax.jit(jax.vmap(at))(thetas))
    induced = 0.5 * T * logdet
    target = np.array([r.target_bias(wk, T) for wk in w])
    diff = induced - target
    return Verification(
        T,
        induced,
        target,
        float(np.mean(diff)),
        r.expected_constant(T),
        float(np.max(diff) - np.min(diff)),
        float(np.max(charge)),
    )


def _slice_point(r: Realization, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Balanced factors of a random predictor: z (or W) with standard normal entries, where
    no coordinate and no singular value vanishes."""
    if r.kind == "factorization":
        m, n = r.shape
        p, s, qt = np.linalg.svd(rng.standard_normal((m, n)), full_matrices=False)
        root = np.sqrt(s[: r.rank])
        return {r.factors[0]: p[:, : r.rank] * root, r.factors[1]: qt[: r.rank].T * root}
    z = rng.standard_normal(r.shape)
    signs = rng.choice([-1.0, 1.0], size=(r.depth - 1, *r.shape))
    signs = np.concatenate([signs, np.sign(z)[None] * np.prod(signs, axis=0)[None]])
    layers = signs * np.abs(z)[None] ** (1.0 / r.depth)
    if len(r.factors) == 1:  # stacked: one parameter R[L, ...]
        return {r.factors[0]: layers}
    return {name: layers[i] for i, name in enumerate(r.factors)}
