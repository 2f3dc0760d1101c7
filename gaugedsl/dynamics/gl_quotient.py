"""`dynamics = quotient` for a GL(r) factorization W = U Vᵀ: Riemannian Langevin on the
rank-r matrices with the quotient metric, in the chart of `geometry/gl_chart.py`
(docs/theory.md §9.1(d)).

Chart s = (U₀, Ṽ, free), W Πᵀ = U₀ Ṽ₀ᵀ, Ṽ₀ = [I; Ṽ] (Π a per-particle column order). With
Dψ = ∂W/∂s (p = r(m+n−r) columns) and the mobility M = J Jᵀ (Jᵀ Z = (Z V, Zᵀ U) at the balanced
factors), the chart metric is g = Dψᵀ M⁺ Dψ and, since M maps into T_W = range Dψ,

    g⁻¹ = A Aᵀ,   A = (DψᵀDψ)⁻¹ Dψᵀ J      (p × (m+n)r).

The SDE (Itô)

    ds = [−g⁻¹ ∇_s ℓ + T (∂_j g^{ij} + g^{ij} ∂_j log √det g)] dt + sqrt(2T) A dB,   dB ∈ R^{(m+n)r}

has generator T e^{ℓ/T} det g^{−½} ∂_i(det g^{½} e^{−ℓ/T} g^{ij} ∂_j ·) = T Δ_g − ⟨∇ℓ, ∇·⟩_g, so
its stationary law is exp(−ℓ/T) √det g ds — law (A) — and the process does not depend on the
chart (each chunk may re-pick Π). A is a non-square root of g⁻¹: Euler–Maruyama increments have
the right covariance without a matrix square root. The divergence and ∇ log √det g
(= −½ ∇ log det g⁻¹) come from one forward-mode Jacobian of g⁻¹(s) (p³ numbers: fine for the
small factors this is built for). ∇_s ℓ is taken at the unbalanced factors (U₀, Ṽ₀): the loss is
GL-invariant, so it equals ℓ at the balanced ones without differentiating the balancing.
Free coordinates (parameters no symmetry moves) have g = I: plain Langevin.

The runner's state stays θ = balanced (U, V); each chunk picks the pivoted column order of its
W (greedy pivoting, in JAX), reads s off θ and hands back the balanced factors.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from ..geometry.gl_chart import GLChart
from .noise import AbstractNoise


class GLQuotientChart:
    """θ ↔ (s, Π) for the quotient SDE, jit- and vmap-able; g⁻¹ and its root A of a chart point."""

    def __init__(self, chart: GLChart):
        self.gl = chart
        self.m, self.n, self.r, self.p = chart.m, chart.n, chart.r, chart.p
        self.dimension = chart.dimension
        self.free = chart.dimension - chart.p
        self.noise_dimension = (self.m + self.n) * self.r + self.free
        self.positive = chart.positive
        self.metric = None

    # ---- θ ↔ s ----

    def _order(self, w):
        """Greedy column pivoting of W (as pivoted QR): r well-conditioned columns first, then the
        rest in their own order. Returns the permutation π (int32)."""
        n, r = self.n, self.r
        res = w
        key = jnp.arange(n, dtype=w.dtype)
        taken = jnp.zeros(n, bool)
        for k in range(r):
            norms = jnp.where(taken, -1.0, jnp.sum(res * res, axis=0))
            j = jnp.argmax(norms)
            q = res[:, j] / jnp.linalg.norm(res[:, j])
            res = res - jnp.outer(q, q @ res)
            taken = taken.at[j].set(True)
            key = key.at[j].set(k - n)
        return jnp.argsort(key).astype(jnp.int32)

    def split(self, theta):
        """(s, π) of balanced (or any full-rank) factors θ."""
        u, v = self.gl._factors(theta)
        order = self._order(u @ v.T)
        vp = v[order]
        head = vp[: self.r]
        u0 = u @ head.T
        tail = jnp.linalg.solve(head.T, vp[self.r :].T).T  # V_rest head⁻¹
        parts = [jnp.ravel(u0), jnp.ravel(tail)]
        if self.free:
            parts.append(theta[self.gl._free])
        return jnp.concatenate(parts), order

    def embed(self, s, order):
        """θ at the balanced factors of s (the state the runner keeps)."""
        return self.gl.embed(s, order)

    def unbalanced(self, s, order):
        """θ at the factors (U₀, Ṽ₀) of s: the same W, so the same (GL-invariant) loss."""
        gl = self.gl
        u0, v0 = gl._split(s)
        v = jnp.zeros_like(v0).at[order].set(v0)
        theta = jnp.zeros(gl.geo.dimension, s.dtype)
        theta = theta.at[gl._u].set(jnp.ravel(u0))
        theta = theta.at[gl._v].set(jnp.ravel(v.T if gl.pattern.transposed else v))
        if self.free:
            theta = theta.at[gl._free].set(s[self.p :])
        return theta

    # ---- the metric of the quotient block ----

    def root(self, q):
        """A = (DψᵀDψ)⁻¹ Dψᵀ J at the chart point q = s[:p] (g⁻¹ = A Aᵀ on the quotient block)."""
        gl = self.gl
        pad = jnp.zeros(self.free, q.dtype)
        d = jax.jacfwd(lambda x: jnp.ravel(gl.predictor(jnp.concatenate([x, pad]))))(q)  # (m n, p)
        u, v = gl._balanced(jnp.concatenate([q, pad]))

        def jt(col):  # Jᵀ Z = (Z V, Zᵀ U), in the column order π (M commutes with it)
            z = col.reshape(self.m, self.n)
            return jnp.concatenate([jnp.ravel(z @ v), jnp.ravel(z.T @ u)])

        x = jax.vmap(jt, in_axes=1)(d)  # (p, (m+n) r) = Dψᵀ J
        return jnp.linalg.solve(d.T @ d, x)

    def inverse_metric(self, q):
        a = self.root(q)
        return a @ a.T

    def ito(self, q, T):
        """T (1/√det g) ∂_j(√det g g^{ij}) = T (∂_j g^{ij} + g^{ij} ∂_j log √det g), on q = s[:p]."""
        ginv = self.inverse_metric(q)
        jac = jax.jacfwd(self.inverse_metric)(q)  # [i, j, k] = ∂_k g^{ij}
        div = jnp.einsum("ijj->i", jac)
        # ∂_k log √det g = −½ tr(g ∂_k g⁻¹)
        dlogvol = -0.5 * jnp.einsum("ij,jik->k", jnp.linalg.inv(ginv), jac)
        return T * (div + ginv @ dlogvol)


class GLQuotientDrift(eqx.Module):
    """`dt · (−g⁻¹ ∇_s ℓ + Itô term)`; `args = (numbers, π)`."""

    grad: object = eqx.field(static=True)  # θ ↦ ∇_θ L
    chart: GLQuotientChart = eqx.field(static=True)

    def gradient(self, s, order):
        """g⁻¹ ∇_s ℓ (the deterministic velocity −ds/dt at T = 0)."""
        c = self.chart
        lift = lambda x: c.unbalanced(x, order)  # noqa: E731
        theta, pull = jax.vjp(lift, s)
        (gs,) = pull(self.grad(theta).astype(s.dtype))
        a = c.root(s[: c.p])
        out = a @ (a.T @ gs[: c.p])
        if c.free:
            out = jnp.concatenate([out, gs[c.p :]])
        return out

    def __call__(self, t, s, args):
        numbers, order = args
        c = self.chart
        T = jnp.asarray(numbers.T, s.dtype)
        ito = c.ito(s[: c.p], T)
        if c.free:
            ito = jnp.concatenate([ito, jnp.zeros(c.free, s.dtype)])
        return (numbers.dt * (ito - self.gradient(s, order))).astype(s.dtype)


class GLQuotientNoise(AbstractNoise):
    """`sqrt(2T dt) A` on the quotient block (a (m+n)r-dimensional Brownian increment), identity
    on free coordinates. It depends on s: Itô Euler–Maruyama only."""

    constraint: object
    chart: GLQuotientChart = eqx.field(static=True)

    gl_chart = True  # for E810's wording

    @property
    def shape(self):
        return (self.chart.noise_dimension,)

    def operator(self, s, args):
        numbers = args[0] if isinstance(args, tuple) else args
        c = self.chart
        scale = jnp.sqrt(2 * numbers.T * numbers.dt).astype(s.dtype)
        a = c.root(s[: c.p])
        k = a.shape[1]

        def mv(xi):
            out = a @ xi[:k]
            if c.free:
                out = jnp.concatenate([out, xi[k:]])
            return scale * out

        return lx.FunctionLinearOperator(mv, jax.ShapeDtypeStruct(self.shape, s.dtype))
