"""`dynamics = quotient` for a GL(r) factorization W = U Vᵀ: Riemannian Langevin on the
rank-r matrices with the quotient metric (docs/theory.md §9.1(d)), stepped in a chart centred
at the current point.

The quotient metric has inverse M Z = Z V Vᵀ + U Uᵀ Z = J Jᵀ Z at the balanced factors
(Jᵀ Z = (Z V, Zᵀ U)). Its Riemannian Langevin SDE in any chart x (Itô),

    dx = [−g⁻¹ ∇_x ℓ + T (1/√det g) ∂_j(√det g g^{ij})] dt + sqrt(2T) g^{−½} dB,

has generator T Δ_g − ⟨∇ℓ, ∇·⟩_g, which is intrinsic and symmetric in L²(e^{−ℓ/T} vol_g), so
its law is exp(−ℓ/T) dvol_quotient (law (A)) whatever chart a step is taken in. Each step takes
the chart centred at the balanced θ = (U, V):

    ψ(x) = W(θ + B x),   B an orthonormal basis of H (the orthogonal complement of the r²
                          generators ξ_X = (U X, −V Xᵀ); p = (m+n)r − r² = dim of the rank-r matrices),

a horizontal plane through θ. With Dψ = J(θ + Bx) B and M at the balanced factors of ψ(x),
g⁻¹(x) = L M Lᵀ, L = (DψᵀDψ)⁻¹Dψᵀ (a left inverse of Dψ on T_W, which contains the range
of M). g(x) = I + O(|x|²): at x = 0, Dψ = J B and g(0) = Bᵀ Jᵀ (J Jᵀ)⁺ J B = Bᵀ P_H B = I; the
symmetric charges UᵀU − VᵀV change along Bx only at second order (Bx ⊥ the symmetric
generators), so the balanced lift of ψ(x) is θ + Bx + O(|x|²) and g(x) = Bᵀ P_H(θ+Bx) B + O(|x|²),
whose first-order term vanishes (a projector's derivative maps H into its complement). So the
Itô term T (∂_j g^{ij} + ∂_i log √det g) is 0 at the centre (`GLQuotientChart.ito` computes it;
tests/test_gl_quotient.py checks it is 0 there and not elsewhere), and the Euler step from the
centre is x₁ = −dt Bᵀ∇_θ L + sqrt(2T dt) ζ, ζ ~ N(0, I_p): in θ, the projected-noise step
θ − dt P_H∇L + sqrt(2T dt) B ζ, after which θ is re-balanced (same W, `GLBalance`) and the next
step's chart is centred there. The metric's variation is carried by the chart map: W moves by
δU Vᵀ + U δVᵀ + δU δVᵀ, and E[δU δVᵀ]/dt is W's Itô drift (dropping it biases E[σ₂] by −0.09,
12 standard errors: the test's check that can fail). (`dynamics = sde` takes the same step
without re-balancing: there is no charge keeper for GL, so it keeps the symmetric charges only
to O(dt) per step.) The charts are well conditioned (Dψ's singular values are sqrt(σ_i + σ_j), σ_k = 0 beyond r);
a fixed U₀[I; Ṽ]ᵀ chart per chunk (condition ∝ σ₁/σ₂, and an Itô term ∝ 1/σ₂) blew up as σ₂ → 0.05
(measured), and so did the horizontal chart kept for 10–20 steps (NaN in some particles).

M needs only P = A⁻¹ # B (A = UᵀU, B = VᵀV; the balanced factors U P^½, V P^{−½} have
U_b U_bᵀ = U P Uᵀ and V_b V_bᵀ = V P⁻¹ Vᵀ), and
P's derivative at P = I (every balanced point) is taken through `_spd_sqrt`'s own Sylvester
rule — eigh's derivative is undefined at repeated eigenvalues. Free coordinates (parameters no
symmetry moves) have g = I: plain Langevin. The runner's state is θ, balanced after every step.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from ..geometry.gl_chart import GLChart
from .noise import AbstractNoise
from .plan import Numbers


@jax.custom_jvp
def _spd_sqrt(a):
    lam, vec = jnp.linalg.eigh(0.5 * (a + a.T))
    return (vec * jnp.sqrt(lam)) @ vec.T


@_spd_sqrt.defjvp
def _spd_sqrt_jvp(primals, tangents):
    # S X + X S = E in S's eigenbasis: X_ij = E_ij / (s_i + s_j), defined at repeated eigenvalues
    (a,), (e,) = primals, tangents
    lam, vec = jnp.linalg.eigh(0.5 * (a + a.T))
    s = jnp.sqrt(lam)
    ee = vec.T @ (0.5 * (e + e.T)) @ vec
    return (vec * s) @ vec.T, vec @ (ee / (s[:, None] + s[None, :])) @ vec.T


def mean_matrix(a, b):
    """P = A⁻¹ # B (P A P = B) and P⁻¹, through SPD square roots only."""
    ah = _spd_sqrt(a)
    ah_inv = jnp.linalg.inv(ah)
    c = _spd_sqrt(ah @ b @ ah)
    p = ah_inv @ c @ ah_inv
    p_inv = ah @ jnp.linalg.inv(c) @ ah
    return p, p_inv


class GLQuotientChart:
    """Factor bookkeeping and the centred chart's metric for one GL(r) factorization (module
    docstring); jit- and vmap-able."""

    def __init__(self, chart: GLChart):
        self.gl = chart
        self.m, self.n, self.r, self.p = chart.m, chart.n, chart.r, chart.p
        self.free = chart.dimension - chart.p
        self.noise_dimension = self.p + self.free
        self.positive = chart.positive
        self._u, self._v, self._free = chart._u, chart._v, chart._free
        self.transposed = chart.pattern.transposed

    # ---- θ ↔ (U, V) ----

    def factors(self, theta):
        u = theta[self._u].reshape(self.m, self.r)
        v = theta[self._v]
        v = v.reshape(self.r, self.n).T if self.transposed else v.reshape(self.n, self.r)
        return u, v

    def flat(self, theta):
        """The factor block y = (vec U, vec V) of a θ-shaped vector."""
        u, v = self.factors(theta)
        return jnp.concatenate([jnp.ravel(u), jnp.ravel(v)])

    def _unflat(self, y):
        mr = self.m * self.r
        return y[:mr].reshape(self.m, self.r), y[mr:].reshape(self.n, self.r)

    def scatter(self, y, free, like):
        """A θ-shaped vector from a factor block y and the free coordinates."""
        u, v = self._unflat(y)
        out = jnp.zeros(like.shape, y.dtype)
        out = out.at[self._u].set(jnp.ravel(u))
        out = out.at[self._v].set(jnp.ravel(v.T if self.transposed else v))
        if self.free:
            out = out.at[self._free].set(free)
        return out

    def split(self, theta):
        """(θ, None): the state is θ itself (`Simulation.stability_limit` reads the drift there)."""
        return theta, None

    # ---- the horizontal plane and the metric ----

    def horizontal(self, theta):
        """B: an orthonormal basis of H at θ, (k, p)."""
        u, v = self.factors(theta)
        eye = jnp.eye(self.r, dtype=theta.dtype)
        x = jnp.stack([jnp.outer(eye[a], eye[b]) for a in range(self.r) for b in range(self.r)])
        gens = jax.vmap(lambda e: jnp.concatenate([jnp.ravel(u @ e), jnp.ravel(-v @ e.T)]))(x).T  # (k, r²)
        q, _ = jnp.linalg.qr(gens, mode="complete")
        return q[:, self.r * self.r :]

    def inverse_metric(self, y0, basis, x):
        """g⁻¹(x) of the chart x ↦ W(y0 + B x)."""
        u, v = self._unflat(y0 + basis @ x)

        def dw(col):  # J δθ = δU Vᵀ + U δVᵀ
            du, dv = self._unflat(col)
            return jnp.ravel(du @ v.T + u @ dv.T)

        d = jax.vmap(dw, in_axes=1, out_axes=1)(basis)  # Dψ, (m n, p)
        p, p_inv = mean_matrix(u.T @ u, v.T @ v)
        left, right = u @ p @ u.T, v @ p_inv @ v.T  # U Uᵀ and V Vᵀ at the balanced factors

        def mob(col):
            z = col.reshape(self.m, self.n)
            return jnp.ravel(z @ right + left @ z)

        md = jax.vmap(mob, in_axes=1, out_axes=1)(d)
        gram = d.T @ d
        return jnp.linalg.solve(gram, jnp.linalg.solve(gram, d.T @ md).T)

    def ito(self, y0, basis, T, x=None):
        """T (∂_j g^{ij} + g^{ij} ∂_j log √det g) at x (default 0, where it vanishes: g = I + O(|x|²))
        in the chart x ↦ W(y0 + B x)."""

        def fn(x):
            return self.inverse_metric(y0, basis, x)

        x = jnp.zeros(self.p, y0.dtype) if x is None else x
        ginv = fn(x)
        jac = jax.jacfwd(fn)(x)  # [i, j, l] = ∂_l g^{ij}
        div = jnp.einsum("ijj->i", jac)
        dlogvol = -0.5 * jnp.einsum("ij,jil->l", jnp.linalg.inv(ginv), jac)  # ∂ log √det g = −½ ∂ log det g⁻¹
        return T * (div + ginv @ dlogvol)

    def balance(self, theta):
        """The balanced factors (UᵀU = VᵀV) of θ's W: U g, V g⁻¹ with g = P^½."""
        u, v = self.factors(theta)
        p, _ = mean_matrix(u.T @ u, v.T @ v)
        g = _spd_sqrt(p)
        y = jnp.concatenate([jnp.ravel(u @ g), jnp.ravel(v @ jnp.linalg.inv(g))])
        return self.scatter(y, theta[self._free] if self.free else None, theta)


class GLBalance(eqx.Module):
    """After each step: back to the balanced factors of the same W (moves along the GL orbit)."""

    chart: GLQuotientChart = eqx.field(static=True)

    @property
    def trivial(self) -> bool:
        return False

    @property
    def projects(self) -> bool:
        return True

    def tangent(self, theta, v):
        return v

    def retract(self, theta):
        return self.chart.balance(theta)


class GLQuotientDrift(eqx.Module):
    """`−dt · B Bᵀ ∇_θ L` on the factors, `−dt ∇L` on free coordinates: the centred chart's drift,
    whose Itô term vanishes at the centre (module docstring; `GLQuotientChart.ito` computes it,
    tests/test_gl_quotient.py checks it is 0 and that it matters off the centre)."""

    grad: Callable = eqx.field(static=True)  # θ ↦ ∇_θ L
    chart: GLQuotientChart = eqx.field(static=True)

    def gradient(self, theta, _=None):
        """P_H ∇_θ L (∇L itself on free coordinates): −dθ/dt at T = 0."""
        c = self.chart
        g = self.grad(theta).astype(theta.dtype)
        basis = c.horizontal(theta)
        return c.scatter(basis @ (basis.T @ c.flat(g)), g[c._free] if c.free else None, theta)

    def __call__(self, t, theta, args):
        numbers = args[0] if isinstance(args, tuple) else args
        c = self.chart
        basis = c.horizontal(theta)
        g = self.grad(theta).astype(theta.dtype)
        step = -(basis @ (basis.T @ c.flat(g)))
        out = c.scatter(step, -g[c._free] if c.free else None, theta)
        return (numbers.dt * out).astype(theta.dtype)


class GLQuotientNoise(AbstractNoise):
    """`sqrt(2T dt)` B ζ on the factors (ζ ∈ R^p), identity on free coordinates. It depends on θ:
    Itô Euler–Maruyama only."""

    constraint: GLBalance
    chart: GLQuotientChart = eqx.field(static=True)

    gl_chart = True  # for E810's wording

    @property
    def shape(self):
        return (self.chart.noise_dimension,)

    def operator(self, theta, args: Numbers | tuple):
        numbers = args[0] if isinstance(args, tuple) else args
        c = self.chart
        scale = jnp.sqrt(2 * numbers["T"] * numbers.dt).astype(theta.dtype)
        basis = c.horizontal(theta)

        def mv(zeta):
            return scale * c.scatter(basis @ zeta[: c.p], zeta[c.p :] if c.free else None, theta)

        return lx.FunctionLinearOperator(mv, jax.ShapeDtypeStruct(self.shape, theta.dtype))
