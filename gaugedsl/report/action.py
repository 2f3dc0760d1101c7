"""What the charge rows need to know about one symmetry's action, read off its generators (never
from names or model families).

For a linear action ξ_a(θ) = A_a θ the charge χ_a = ½⟨θ, A_a θ⟩ obeys, by Itô's formula
(docs/theory.md §1.2 and P1–P4):

- when every ∇χ_a = sym(A_a) θ is a combination of the generators (sym(A_a) ∈ span{A_b}: A_a
  symmetric for rescalings, sym(E_ij) = ½(E_ij + E_ji) for GL), ∇χ_a is orthogonal to ∇L (P1) and
  to the horizontal noise: projected noise gives dχ_a = T tr(A_a P_H) dt with no martingale part
  (P4); isotropic noise gives dχ_a = T tr(A_a) dt + sqrt(2T) ⟨∇χ_a, dW⟩ (P3);
- when A_a is antisymmetric (rotations), χ_a vanishes identically: there is nothing to test;
- for a diagonal action θ_j ↦ θ_j e^{±a} (one generator per coordinate, exponents ±1),
  tr(A_a P_H) = tr A_a − 2χ_a/G_aa with G_aa = Σ θ_j² over the coordinates a moves;
- a generator that moves exactly two coordinates, one with exponent +1 and one with −1 (the u ⊙ v
  pair), has the discrete (S)GD identity c' = c(1 − lr² g²) (P2); larger blocks (a ReLU unit's
  input row against its output weight) have c' = c + lr²(‖∂_W ℓ‖² − ‖∂_V ℓ‖²), of either sign.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..dynamics.gauge import DiagonalAction
from ..geometry import Geometry, per_geometry
from ..kinds.manifolds import coordinates_where

# The dense route builds A (k, D, D); beyond this many numbers the action is not analysed.
_DENSE_LIMIT = 2**22


@dataclasses.dataclass(frozen=True)
class ActionFacts:
    """One symmetry's action. `linear` is None where the action was too large to analyse."""

    name: str
    k: int
    linear: bool | None
    closed: bool = False  # every ∇χ_a = sym(A_a) θ lies in the span of the generators
    vanishing: bool = False  # every A_a = −A_aᵀ: χ_a ≡ 0
    traces: np.ndarray | None = None  # tr A_a
    matrices: np.ndarray | None = None  # A, (k, D, D), where the action is linear and not diagonal
    owner: np.ndarray | None = None  # diagonal actions: the generator moving coordinate j (k: none)
    expo: np.ndarray | None = None  # ... and its exponent
    curved: bool = False  # moves a parameter on a Sphere or Stiefel manifold (retractions add drift)

    def diagonal(self) -> tuple[np.ndarray, np.ndarray]:
        """(owner, expo) of a diagonal action (both are set together)."""
        if self.owner is None or self.expo is None:
            raise ValueError("not a diagonal action: no owner and exponents")
        return self.owner, self.expo

    @property
    def diagonal_unit(self) -> bool:
        """θ_j ↦ θ_j e^{±a_{o(j)}}: one generator per coordinate, exponents ±1."""
        if self.owner is None:
            return False
        owner, expo = self.diagonal()
        moved = owner < self.k
        return bool(np.all(np.abs(np.abs(expo[moved]) - 1) < 1e-9))

    @property
    def pairs(self) -> bool:
        """Every generator moves exactly two coordinates, exponents +1 and −1 (u ⊙ v)."""
        if not self.diagonal_unit:
            return False
        owner, expo = self.diagonal()
        for a in range(self.k):
            mine = np.sort(expo[owner == a])
            if mine.size != 2 or not np.allclose(mine, [-1.0, 1.0]):
                return False
        return True

    def gram_diag(self, theta: np.ndarray) -> np.ndarray:
        """G_aa at each row of θ (N, D) -> (N, k), for diagonal actions."""
        owner, expo = self.diagonal()
        moved = owner < self.k
        squares = (np.asarray(theta, np.float64)[:, moved] * expo[moved]) ** 2
        onehot = np.eye(self.k)[owner[moved]]  # (moved, k)
        return squares @ onehot


@per_geometry
def action_facts(geo: Geometry, name: str) -> ActionFacts:
    """The facts of symmetry `name` of `geo`, from its generators (module docstring)."""
    sym = geo.symmetries[name]
    k, dim = sym.group.algebra_dim, geo.dimension
    # the reflection that keeps a `Positive` parameter in its orthant keeps every θ_j², hence every
    # charge of a diagonal action: for these only the manifolds that project count
    curved_coords = coordinates_where(geo.model, geo.layout, "projects")
    diagonal = DiagonalAction.detect(lambda t, a: geo.act(name, t, a), k, dim)
    if diagonal is not None:
        owner, expo = diagonal.owner, diagonal.expo
        moved = owner < k
        traces = np.bincount(owner[moved], weights=expo[moved], minlength=k)[:k]
        return ActionFacts(name, k, True, True, False, traces, None, owner, expo, bool(np.any(curved_coords & moved)))
    if k * dim * dim > _DENSE_LIMIT:
        return ActionFacts(name, k, None)
    dtype = jnp.zeros(()).dtype
    tol = 1e-9 if dtype == jnp.float64 else 1e-4
    rng = np.random.default_rng(0)
    points = jnp.asarray(rng.normal(size=(2, dim)), dtype)
    jac = jax.jit(jax.vmap(jax.jacfwd(lambda t: geo.generators_of(name, t))))
    xi = jax.jit(jax.vmap(lambda t: geo.generators_of(name, t)))
    a1, a2 = (np.asarray(x, np.float64) for x in jac(points))  # (k, D, D) each
    scale = max(float(np.abs(a1).max()), 1e-300)
    linear = np.allclose(a1, a2, atol=tol * scale) and np.allclose(
        np.asarray(xi(points), np.float64)[1], a1 @ np.asarray(points[1], np.float64), atol=tol * scale * np.sqrt(dim)
    )
    if not linear:
        return ActionFacts(name, k, False)
    transposed = np.swapaxes(a1, 1, 2)
    flat = a1.reshape(k, -1)
    sym = 0.5 * (a1 + transposed).reshape(k, -1)
    coeffs, *_ = np.linalg.lstsq(flat.T, sym.T, rcond=None)
    closed = bool(np.allclose(flat.T @ coeffs, sym.T, atol=tol * scale))
    vanishing = bool(np.allclose(a1, -transposed, atol=tol * scale))
    moved = np.any(np.abs(a1) > tol * scale, axis=(0, 1)) | np.any(np.abs(a1) > tol * scale, axis=(0, 2))
    traces = np.trace(a1, axis1=1, axis2=2)
    curved = coordinates_where(geo.model, geo.layout, "constrained")
    return ActionFacts(name, k, True, closed, vanishing, traces, a1, curved=bool(np.any(curved & moved)))


def balanced_rates(geo: Geometry, facts: ActionFacts, thetas: np.ndarray, T: float) -> np.ndarray | None:
    """T tr(A_a P_H) at the balanced points (geo.project_to_slice) of a few states θ (N, D): the
    projected-noise charge drift where the charges vanish, shape (n, k); None where no state
    could be balanced. Needs a linear action."""
    if facts.matrices is None and facts.owner is None:
        return None
    if facts.matrices is not None:
        a = facts.matrices
    else:
        a = np.zeros((facts.k, geo.dimension, geo.dimension))
        owner, expo = facts.diagonal()
        moved = np.flatnonzero(owner < facts.k)
        a[owner[moved], moved, moved] = expo[moved]
    dtype = jnp.zeros(()).dtype
    projector = jax.jit(geo.horizontal_projector)
    rates = []
    for theta in thetas[:4]:
        star = geo.project_to_slice(jnp.asarray(theta, dtype))
        chi = np.asarray(geo.all_charges(star), np.float64)
        size = float(np.sum(np.asarray(star, np.float64) ** 2))
        if not np.all(np.isfinite(chi)) or np.max(np.abs(chi), initial=0.0) > 1e-3 * max(size, 1e-300):
            continue  # not balanced: the slice was not reached from this state
        p_h = np.asarray(projector(star), np.float64)
        rates.append(T * np.einsum("aij,ji->a", a, p_h))
    return np.array(rates) if rates else None
