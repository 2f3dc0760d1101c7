"""The geometry of a model's symmetries, as pure JAX functions of the flat parameter θ.

- generators `ξ_a(θ) = d/dt|₀ exp(t X_a)·θ`, by forward-mode differentiation of the declared
  action through the group's exponential map (users never write them);
- the Gram matrix `G_ab = ⟨ξ_a, ξ_b⟩` and `log det G` (Cholesky in the working precision;
  structured routes for diagonal Grams and for GL/O on a factorization);
- Noether charges `χ_a = ½⟨θ, ξ_a(θ)⟩`; the gauge slice `χ = 0` and the projection onto it
  (the minimal-norm point of the orbit; closed forms for rescalings and GL);
- the horizontal projector `P_H = I − Ξᵀ G⁺ Ξ` and the quotient metric `J P_H Jᵀ`.

Every function is jit- and vmap-able in θ.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ..lowering import Lowered
from .algebra import exp_map, exp_map_first_order
from .structure import Pattern, recognise

R = TypeVar("R")


def per_geometry(f: Callable[..., R]) -> Callable[..., R]:
    """Memoize `f(geo, *args)` on the geometry itself: the result lives exactly as long as the
    geometry. (An `lru_cache` keyed by geometries kept every one of them, with its model and
    data, alive for the whole session; a `WeakKeyDictionary` would too, since the cached
    actions close over the geometry.)"""

    @functools.wraps(f)
    def cached(geo, *args):
        memo = geo.__dict__.setdefault("_memo", {})
        key = (f, *args)
        if key not in memo:
            memo[key] = f(geo, *args)
        return memo[key]

    return cached


class Geometry:
    """**Arguments:** `lowered`, a `gaugedsl.lowering.Lowered` model."""

    def __init__(self, lowered: Lowered):
        self.lowered = lowered
        self.model = lowered.model
        self.layout = lowered.layout
        self.symmetries = {s.name: s for s in self.model.symmetries}
        self.patterns: dict[str, Pattern | None] = {s.name: recognise(s) for s in self.model.symmetries}
        self.dimension = self.layout.dimension
        self.algebra_dim = sum(s.group.algebra_dim for s in self.model.symmetries)
        self._project = None

    # ---- actions and generators ----

    def act(self, name: str, theta, a):
        """`exp(Σ a_a X_a) · θ` for symmetry `name`, on flat vectors."""
        sym = self.symmetries[name]
        params = self.layout.unflatten(theta)
        return self.layout.flatten(self.lowered.act(sym, params, exp_map(sym.group, a)))

    def generators_of(self, name: str, theta):
        """Rows ξ_a(θ) of symmetry `name`: shape (k, D)."""
        sym = self.symmetries[name]
        params = self.layout.unflatten(theta)

        def moved(a):
            g = exp_map_first_order(sym.group, a)
            return self.layout.flatten(self.lowered.act(sym, params, g))

        zero = jnp.zeros(sym.group.algebra_dim, dtype=theta.dtype)
        return jax.jacfwd(moved)(zero).T

    def generators(self, theta):
        """Rows ξ_a(θ) of every declared symmetry, stacked: shape (k, D)."""
        if not self.symmetries:
            return jnp.zeros((0, theta.shape[0]), dtype=theta.dtype)
        return jnp.concatenate([self.generators_of(n, theta) for n in self.symmetries])

    # ---- Gram matrix ----

    def gram(self, name: str, theta):
        xi = self.generators_of(name, theta)
        return xi @ xi.T

    def logdet_gram(self, name: str, theta, structured: bool = True):
        """`log det G(θ)` of symmetry `name`; `-inf`/NaN-free only where G is non-degenerate
        (see `degeneracy`)."""
        pattern = self.patterns[name] if structured else None
        if pattern is not None and pattern.kind in ("gl", "orthogonal"):
            return _factorization_logdet(pattern, self.layout.unflatten(theta))
        if pattern is not None and pattern.kind == "telescope":
            # Per coordinate i the Gram is tridiagonal with det e_{L−1}(u_1², …, u_L²)
            # = Π_l u_l² · Σ_l 1/u_l² (docs/theory.md, P8).
            sq = self.layout.unflatten(theta)[pattern.params[0]] ** 2
            return jnp.sum(jnp.sum(jnp.log(sq), axis=0) + jnp.log(jnp.sum(1.0 / sq, axis=0)))
        if pattern is not None:  # one generator per block, disjoint supports: diagonal Gram
            xi = self.generators_of(name, theta)
            return jnp.sum(jnp.log(jnp.sum(xi * xi, axis=1)))
        return _cholesky_logdet(self.gram(name, theta))

    def degeneracy(self, name: str, theta) -> tuple[float, int]:
        """(smallest/largest eigenvalue of G, rank of Ξ): the orbit's dimension drops where
        the ratio is ~0."""
        g = np.asarray(self.gram(name, theta))
        eig = np.linalg.eigvalsh(g)
        top = max(abs(eig[-1]), 1e-300)
        rank = int(np.sum(eig > top * 1e-12))
        return float(eig[0] / top), rank

    # ---- charges and the slice ----

    def charges(self, name: str, theta):
        """Noether charges χ_a(θ) = ½⟨θ, ξ_a(θ)⟩ (conserved by gradient flow)."""
        return 0.5 * self.generators_of(name, theta) @ theta

    def all_charges(self, theta):
        return jnp.concatenate([self.charges(n, theta) for n in self.symmetries]) if self.symmetries else jnp.zeros(0)

    def project_to_slice(self, theta):
        """The representative of θ's orbit with the least norm (all symmetries jointly),
        where every charge vanishes. Leaves the predictor unchanged. Compiled once per model."""
        if self._project is None:
            self._project = jax.jit(self._project_to_slice)
        return self._project(theta)

    def _project_to_slice(self, theta, max_steps: int = 512):
        for pattern in self.patterns.values():
            if pattern is not None and pattern.kind in _CLOSED_FORM_BALANCE:
                theta = _balance(pattern, self.layout, theta)
        remaining = [
            n for n, p in self.patterns.items() if p is None or p.kind not in _CLOSED_FORM_BALANCE + ("orthogonal",)
        ]
        if not remaining:
            return theta
        return self._minimise_norm(theta, remaining, max_steps)

    def _joint_act(self, names, theta, a):
        offset = 0
        for n in names:
            k = self.symmetries[n].group.algebra_dim
            theta = self.act(n, theta, a[offset : offset + k])
            offset += k
        return theta

    def _minimise_norm(self, theta, names, max_steps):
        k = sum(self.symmetries[n].group.algebra_dim for n in names)

        def norm2(a, _):
            moved = self._joint_act(names, theta, a)
            return 0.5 * jnp.sum(moved * moved)

        solver = optx.BFGS(rtol=1e-13, atol=1e-13)
        sol = optx.minimise(norm2, solver, jnp.zeros(k, dtype=theta.dtype), max_steps=max_steps, throw=False)
        moved = self._joint_act(names, theta, sol.value)

        # Polish with Newton on the charges: at the minimum ∂_a ½|g·θ|² = 2χ_a(g·θ) = 0.
        def residual(a, _):
            point = self._joint_act(names, moved, a)
            return jnp.concatenate([self.charges(n, point) for n in names])

        polish = optx.root_find(
            residual, optx.Newton(rtol=1e-14, atol=1e-14), jnp.zeros(k, dtype=theta.dtype), max_steps=32, throw=False
        )
        return self._joint_act(names, moved, polish.value)

    # ---- horizontal space and the quotient metric ----

    def project_horizontal(self, theta, v):
        """`v − Ξᵀ G⁺ Ξ v`: the part of v orthogonal to the orbit through θ."""
        xi = self.generators(theta)
        if xi.shape[0] == 0:
            return v
        coeffs = _psd_solve(xi @ xi.T, xi @ v)
        return v - xi.T @ coeffs

    def horizontal_projector(self, theta):
        return jax.vmap(lambda e: self.project_horizontal(theta, e))(jnp.eye(theta.shape[0], dtype=theta.dtype)).T

    def predictor_jacobian(self, theta, name: str | None = None):
        """J = ∂w/∂θ of a predictor (flattened), shape (P, D)."""
        pred = name or self.model.predictors[0].name

        def w(t):
            return jnp.ravel(self.lowered.predictors(self.layout.unflatten(t))[pred])

        return jax.jacfwd(w)(theta)

    def quotient_metric_inverse(self, theta, name: str | None = None):
        """`J P_H Jᵀ` at θ: the inverse of the metric the quotient carries onto predictor
        space (e.g. diag(2|w|) for w = u ⊙ v at a balanced point)."""
        j = self.predictor_jacobian(theta, name)
        return j @ self.horizontal_projector(theta) @ j.T

    # ---- hooks for recording ----

    def hooks(self) -> dict[str, Callable]:
        """Implementations of `charge(s)` and `logdet_gram(s)` for the Evaluator."""

        def theta_of(env):
            return self.layout.flatten({n: env[n] for n in self.layout.names})

        return {
            "charge": lambda s, env: self.charges(s, theta_of(env)),
            "logdet_gram": lambda s, env: self.logdet_gram(s, theta_of(env)),
        }


# ---- helpers ----


def _cholesky_logdet(g):
    chol = jnp.linalg.cholesky(g)
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))


def _psd_solve(g, b):
    """G⁺ b by eigendecomposition: overlapping symmetries make G singular but consistent."""
    eig, vec = jnp.linalg.eigh(g)
    cutoff = jnp.max(jnp.abs(eig)) * g.shape[0] * jnp.finfo(g.dtype).eps * 10
    inv = jnp.where(eig > cutoff, 1.0 / jnp.where(eig > cutoff, eig, 1.0), 0.0)
    return vec @ (inv * (vec.T @ b))


def _factor_pair(pattern: Pattern, params):
    """(U, V) with W = U Vᵀ, whichever way the model writes the factorization."""
    u, v = (params[p] for p in pattern.params)
    return (u, v.T) if pattern.transposed else (u, v)


def _factorization_logdet(pattern: Pattern, params):
    u, v = _factor_pair(pattern, params)
    lu = jnp.linalg.eigvalsh(u.T @ u)
    lv = jnp.linalg.eigvalsh(v.T @ v)
    if pattern.kind == "gl":
        # The Gram operator A ↦ (UᵀU)A + A(VᵀV) on gl(r), eigenvalues λ_i + μ_j.
        return jnp.sum(jnp.log(lu[:, None] + lv[None, :]))
    # On o(r), |ξ_A|² = tr(Aᵀ M A) with M = UᵀU + VᵀV; in the orthonormal basis
    # (E_ij − E_ji)/√2 and M's eigenbasis the Gram is diagonal with entries (m_i + m_j)/2.
    m = jnp.linalg.eigvalsh(u.T @ u + v.T @ v)
    i, j = np.triu_indices(m.shape[0], 1)
    return jnp.sum(jnp.log(0.5 * (m[i] + m[j])))


_CLOSED_FORM_BALANCE = ("hadamard", "columns", "neuron", "gl", "telescope")


def _balance(pattern: Pattern, layout, theta):
    """Closed-form minimal-norm representatives (the balanced point of the orbit)."""
    params = layout.unflatten(theta)
    if pattern.kind == "telescope":
        # Every layer of coordinate i gets magnitude |w_i|^{1/L}; positive rescalings keep signs.
        u = params[pattern.params[0]]
        root = jnp.exp(jnp.mean(jnp.log(jnp.abs(u)), axis=0))
        params[pattern.params[0]] = jnp.sign(u) * root
        return layout.flatten(params)
    a, b = (params[p] for p in pattern.params)
    if pattern.kind == "hadamard":
        scale = jnp.sqrt(jnp.abs(b) / jnp.abs(a))  # g with |g a| = |b / g|
        params[pattern.params[0]], params[pattern.params[1]] = a * scale, b / scale
    elif pattern.kind == "columns":
        scale = jnp.sqrt(jnp.linalg.norm(b, axis=0) / jnp.linalg.norm(a, axis=0))
        params[pattern.params[0]], params[pattern.params[1]] = a * scale, b / scale
    elif pattern.kind == "neuron":
        scale = jnp.sqrt(jnp.linalg.norm(b, axis=0) / jnp.linalg.norm(a, axis=1))
        params[pattern.params[0]], params[pattern.params[1]] = scale[:, None] * a, b / scale
    elif pattern.kind == "gl":
        # W = U Vᵀ = P S Qᵀ (thin SVD); the balanced point is (P S^½, Q S^½), in the orbit
        # when U and V have full column rank.
        u, v = _factor_pair(pattern, params)
        r = u.shape[1]
        p, s, qt = jnp.linalg.svd(u @ v.T, full_matrices=False)
        root = jnp.sqrt(s[:r])
        params[pattern.params[0]] = p[:, :r] * root
        balanced_v = qt[:r].T * root
        params[pattern.params[1]] = balanced_v.T if pattern.transposed else balanced_v
    return layout.flatten(params)
