"""A chart of the quotient for a GL(r) factorization W = U Vᵀ (docs/theory.md §9.1(d)).

Projected noise removes all r² GL directions ξ_X = (U X, −V Xᵀ), the antisymmetric X (the O(r)
rotations U → UQ, V → VQ, which keep the balanced slice Σ = {UᵀU = VᵀV}) included; only the
r(r+1)/2 symmetric charges are conserved. So Σ carries O(r) fibres, and the stationary law is
*not* "Gibbs times the slice's own volume" (that holds for torus actions, chart.py): W performs
Langevin dynamics on the rank-r matrices with the quotient metric, whose inverse on T_W is
M Z = Z VVᵀ + UUᵀ Z (balanced U, V), and

    p(W) ∝ exp(−L(W)/T) dvol_quotient = exp(−L/T) det(M|_{T_W})^{−1/2} dvol_W.

The chart charts the quotient, not the slice: s = (U₀ ∈ R^{m×r}, Ṽ ∈ R^{(n−r)×r}, the other
parameters), W = U₀ [I_r; Ṽ]ᵀ with W's columns in a fixed order π (a particle's pivoted-QR
column order, kept as its label, so the chart is well conditioned near its start). With
Dψ = ∂W/∂s (p columns), A = U₀ᵀU₀, B = Ṽ₀ᵀṼ₀ (Ṽ₀ = [I; Ṽ]) and σ the r singular values of W
(σ² = eig(A B)), everything in closed form (docs/theory.md §9.1(d)):

    ½ log det(DψᵀDψ) = ((m−r)/2) log det B + ((n−r)/2) log det A,
    log det M|_{T_W} = Σ_{i,j} log(σ_i + σ_j) + (m+n−2r) Σ_i log σ_i,
    log p(s) = −L/T + ((m−n)/4)(log det B − log det A) − ½ Σ_{i,j} log(σ_i + σ_j).

The balanced factors of a chart point are
U = U₀ g, V = Ṽ₀ g⁻¹ with Ṽ₀ = [I; Ṽ] and g = P^½, P = A⁻¹ # B the matrix geometric mean
(P A P = B): then UᵀU = g A g = g⁻¹ B g⁻¹ = VᵀV. Only r×r eigh's.

The GL action is recognised from the symmetry's IR (structure.recognise, not its name); the
model must have that one symmetry. Square factors (m = n = r) are refused: there the rank drops on
the hypersurface det W = 0, where the density ∝ |det W|^(−1/2) is singular and NUTS is biased
(elsewhere the rank-(r−1) set has codimension ≥ 2 in the quotient and the singularity is
integrable against the volume). r = 1 needs nothing more: O(1) = {±1} is discrete, the
slice has no fibres and this chart is the line chart of u vᵀ.
"""

from __future__ import annotations

from typing import cast

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ..kinds import MANIFOLDS
from ..kinds.manifolds import coordinates_where
from .chart import ChartUnavailable
from .engine import Geometry


def _sym_fn(x, fn):
    """fn applied to a symmetric positive definite r×r matrix through its eigenvalues."""
    lam, vec = jnp.linalg.eigh(0.5 * (x + x.T))
    return (vec * fn(lam)) @ vec.T


def balancing(a, b):
    """g = P^½ with P = A⁻¹ # B (P A P = B), for the balanced factors U₀ g, Ṽ₀ g⁻¹."""
    a_half = _sym_fn(a, jnp.sqrt)
    a_mhalf = _sym_fn(a, lambda x: 1.0 / jnp.sqrt(x))
    p = a_mhalf @ _sym_fn(a_half @ b @ a_half, jnp.sqrt) @ a_mhalf
    return _sym_fn(p, jnp.sqrt), _sym_fn(p, lambda x: 1.0 / jnp.sqrt(x))


def _logdet_spd(x):
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(jnp.linalg.cholesky(0.5 * (x + x.T)))))


class GLChart:
    """The quotient chart of one GL(r) factorization (module docstring). Same interface as
    `SliceChart` where the sampler uses it: `dimension`, `positive`, `signs` (here the label of a
    particle is its column order π, stored in the first n entries), `coordinates`, `embed`,
    `log_volume(s)` (the quotient volume) and `gibbs_log_volume(s)` (the embedded volume, for
    the uncorrected Gibbs law exp(−L/T) dvol_W)."""

    all_lines = False
    components = ()
    branches = False  # one connected quotient: no sign patterns to keep

    def __init__(self, geo: Geometry):
        self.geo = geo
        layout = geo.layout
        gl = [(n, p) for n, p in geo.patterns.items() if p is not None and p.kind == "gl"]
        if len(gl) != 1 or len(geo.symmetries) != 1:
            raise ChartUnavailable("a quotient chart is built for one GL(r) factorization alone")
        self.name, pattern = gl[0]
        self.pattern = pattern
        shapes = dict(zip(layout.names, layout.shapes))
        u_name, v_name = pattern.params
        m, r = shapes[u_name]
        n = shapes[v_name][1] if pattern.transposed else shapes[v_name][0]
        if r > min(m, n):
            raise ChartUnavailable(f"the inner dimension r = {r} exceeds min(m, n) = {min(m, n)}: W = U Vᵀ is not "
                                   "of rank r and the GL orbits are not free")  # fmt: skip
        self.m, self.n, self.r = int(m), int(n), int(r)
        if self.m == self.n == self.r:
            # measured: on 2×2 NUTS gave E[σ₂] = 0.048 ± 0.009 against the quadrature's 0.161
            raise ChartUnavailable("square factors (m = n = r): the law's density ∝ |det W|^(−1/2) near det W = 0, a "
                                   "singular hypersurface that NUTS does not sample correctly")  # fmt: skip
        for p in geo.model.params:
            if p.manifold.kind != "R" and p.name in pattern.params:
                raise ChartUnavailable(f"parameter '{p.name}' lives on {p.manifold.kind}: the GL chart needs R")
            if not MANIFOLDS[p.manifold.kind].charted:
                raise ChartUnavailable(
                    f"parameter '{p.name}' lives on {p.manifold.kind}: no chart for curved manifolds"
                )
        self._u = np.arange(layout.dimension)[layout.slice_of(u_name)]
        self._v = np.arange(layout.dimension)[layout.slice_of(v_name)]
        moved = np.zeros(layout.dimension, bool)
        moved[self._u] = moved[self._v] = True
        self._free = np.flatnonzero(~moved)
        self.p = self.r * (self.m + self.n - self.r)
        self.dimension = self.p + self._free.size
        self.positive = np.zeros(self.dimension, bool)
        absolute = np.flatnonzero(coordinates_where(geo.model, layout, "absolute"))
        self.positive[self.p + np.searchsorted(self._free, absolute)] = True
        self.metric = None

    # ---- factors of a flat θ ----

    def _factors(self, theta):
        u = theta[..., self._u].reshape(theta.shape[:-1] + (self.m, self.r))
        v = theta[..., self._v]
        if self.pattern.transposed:
            v = np.swapaxes(v.reshape(theta.shape[:-1] + (self.r, self.n)), -1, -2)
        else:
            v = v.reshape(theta.shape[:-1] + (self.n, self.r))
        return u, v

    # ---- labels: a column order per particle ----

    def signs(self, theta) -> np.ndarray:
        """Each particle's label: the pivoted-QR column order π of its W = U Vᵀ (first n entries)."""
        theta = np.asarray(theta)
        flat = theta.reshape(-1, theta.shape[-1])
        out = np.zeros(flat.shape, theta.dtype)
        u, v = self._factors(flat.astype(np.float64))
        for i in range(flat.shape[0]):
            # (scipy's stubs return a union over mode and pivoting; this call gives q, r, piv)
            _, _, piv = cast(
                "tuple[np.ndarray, np.ndarray, np.ndarray]",
                scipy.linalg.qr(u[i] @ v[i].T, mode="economic", pivoting=True),
            )
            out[i, : self.n] = piv
        return out.reshape(theta.shape)

    def _order(self, sigma):
        return jnp.asarray(sigma[: self.n]).astype(jnp.int32)

    # ---- the chart ----

    def coordinates(self, theta) -> np.ndarray:
        """s of points with W of rank r (any point of the orbit), in each point's own column order."""
        theta = np.asarray(theta)
        flat = theta.reshape(-1, theta.shape[-1]).astype(np.float64)
        order = self.signs(flat)[:, : self.n].astype(int)
        u, v = self._factors(flat)
        s = np.zeros((flat.shape[0], self.dimension))
        r = self.r
        for i in range(flat.shape[0]):
            vp = v[i][order[i]]
            head = vp[:r]
            u0 = u[i] @ head.T
            tail = np.linalg.solve(head.T, vp[r:].T).T  # V_rest B⁻¹
            s[i, : self.p] = np.concatenate([u0.ravel(), tail.ravel()])
            s[i, self.p :] = flat[i, self._free]
        return s.reshape(theta.shape[:-1] + (self.dimension,)).astype(theta.dtype)

    def _split(self, s):
        u0 = s[: self.m * self.r].reshape(self.m, self.r)
        tail = s[self.m * self.r : self.p].reshape(self.n - self.r, self.r)
        v0 = jnp.concatenate([jnp.eye(self.r, dtype=s.dtype), tail])  # Ṽ₀ = [I; Ṽ], in the order π
        return u0, v0

    def _balanced(self, s):
        u0, v0 = self._split(s)
        g, g_inv = balancing(u0.T @ u0, v0.T @ v0)
        return u0 @ g, v0 @ g_inv

    def embed(self, s, sigma):
        """θ at the balanced factors of the chart point s, in the particle's column order π = sigma[:n]."""
        return self._theta(*self._balanced(s), s, sigma)

    def loss_point(self, s, sigma):
        """θ at the unbalanced factors (U₀, Ṽ₀) of the chart point: the same W, so the same loss
        (the loss is GL-invariant: E901 checks it), without the balancing's four eigh's, which made
        three quarters of the cost of a NUTS gradient."""
        return self._theta(*self._split(s), s, sigma)

    def _theta(self, u, vp, s, sigma):
        order = self._order(sigma)
        v = jnp.zeros_like(vp).at[order].set(vp)  # rows of V back from the order π
        theta = jnp.zeros(self.geo.dimension, s.dtype)
        theta = theta.at[self._u].set(jnp.ravel(u))
        theta = theta.at[self._v].set(jnp.ravel(v.T if self.pattern.transposed else v))
        if self._free.size:
            theta = theta.at[self._free].set(s[self.p :])
        return theta

    def predictor(self, s):
        """W in the column order π (W Πᵀ): the volumes do not depend on π (a column permutation is
        an isometry that M commutes with)."""
        u0, v0 = self._split(s)
        return u0 @ v0.T

    def _log_dets(self, s):
        """log det A, log det B and the r singular values of W, for A = U₀ᵀU₀, B = Ṽ₀ᵀṼ₀ (σ² = eig(A B))."""
        u0, v0 = self._split(s)
        a, b = u0.T @ u0, v0.T @ v0
        chol_a = jnp.linalg.cholesky(a)
        log_det_a = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_a)))
        log_det_b = _logdet_spd(b)
        sigma = jnp.sqrt(jnp.linalg.eigvalsh(chol_a.T @ b @ chol_a))
        return log_det_a, log_det_b, sigma

    def gibbs_log_volume(self, s):
        """½ log det(DψᵀDψ) = ((m−r)/2) log det B + ((n−r)/2) log det A: the volume the rank-r
        matrices inherit from R^{m×n} (docs/theory.md §9.1(d))."""
        log_det_a, log_det_b, _ = self._log_dets(s)
        return 0.5 * (self.m - self.r) * log_det_b + 0.5 * (self.n - self.r) * log_det_a

    def log_volume(self, s):
        """The quotient volume in these coordinates, ½ log det(DψᵀDψ) − ½ log det M|_{T_W} with
        det M|_{T_W} = Π_{i,j} (σ_i + σ_j) · Π_i σ_i^{m+n−2r}: in closed form
        ((m−n)/4)(log det B − log det A) − ½ Σ_{i,j} log(σ_i + σ_j) (docs/theory.md §9.1(d)).
        A Jacobian and two p×p log-dets per gradient made NUTS on GL(4) take hours."""
        log_det_a, log_det_b, sigma = self._log_dets(s)
        pairs = jnp.sum(jnp.log(sigma[:, None] + sigma[None, :]))
        return 0.25 * (self.m - self.n) * (log_det_b - log_det_a) - 0.5 * pairs


def gl_chart_applies(geo: Geometry) -> bool:
    """Whether the model's symmetries are one recognised GL(r) factorization."""
    return len(geo.symmetries) == 1 and any(p is not None and p.kind == "gl" for p in geo.patterns.values())
