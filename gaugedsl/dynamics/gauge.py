"""Keeping the charges on their deterministic course under projected noise.

Under projected noise neither the drift (∇L ⟂ orbits) nor the noise (P_H dW) moves θ along
its orbit to first order, so each Noether charge χ_a = ½⟨θ, ξ_a⟩ has no martingale part:

    dχ_a = T tr(A_a P_H(θ)) dt,         A_a = ∂ξ_a/∂θ  (THEORY.md P4: dc = −2T c/ρ² dt).

An Euler–Maruyama step reproduces this only on average: its charge increment ½δᵀA_aδ
fluctuates by O(dt) per step (zero mean, vanishing in the limit), and where an orbit
degenerates (ξ_a → 0, e.g. u = v = 0 for w = u v) a step can be much longer than the
distance to the degenerate point. There the increment multiplies the relative imbalance by
|1 − b|/|1 + b| for a step of relative size b, so rounding errors of 1e-16 compound over
repeated passes until particles leave the balanced slice for another branch (u v < 0) — a
discretization artefact (~10% of particles by t = 30 in the P5 model at dt = 1e-2, and more
for smaller dt).

`ChargeKeeper` removes it: after each step it moves θ along its orbit — which changes neither
the loss nor any predictor — so that the charges take the value the charge ODE gives over the
step. The motion across orbits is still Euler–Maruyama; the motion along them is integrated as
the ODE it is, and the scheme converges to the same SDE. For rescaling generators
(A_a diagonal with entries ±1, so ⟨ξ_a, A_a ξ_a⟩ = 2χ_a) the ODE is linear,
dχ_a/dt = T tr(A_a) − 2T χ_a / G_aa, and stiff near degenerate orbits (G_aa → 0): it is
integrated exactly over the step with G frozen (an exponential integrator, stable for any
dt); otherwise by an Euler step.

It is built when the joint Gram matrix is diagonal by structure (generators with disjoint
supports: elementwise rescalings, the common case), where every piece is matrix-free:
`Ξv` is one reverse pass through the action, `Ξᵀc` one forward pass, and Newton on the
charges is elementwise (`∂χ_a/∂a_b = G_ab` for the symmetric generators of rescalings).
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .plan import Numbers


class ChargeKeeper(eqx.Module):
    """**Arguments:** `act(θ, a)`, the joint action of all symmetries at exp(a); `k`, the
    algebra dimension; `dimension` D. Call as `keeper(θ_before, θ_after, numbers)`."""

    act: Callable = eqx.field(static=True)
    k: int = eqx.field(static=True)
    trace_a: jax.Array  # tr(A_a): constant for linear actions
    linear: bool = eqx.field(static=True)
    newton: int = eqx.field(static=True, default=4)

    def __init__(self, act: Callable, k: int, dimension: int, newton: int = 4):
        self.act = act
        self.k = k
        self.newton = newton
        theta = jnp.asarray(np.random.default_rng(1).normal(size=dimension) + 0.5)
        ones = jnp.ones(k, theta.dtype)
        # tr(A_a) = Σ_{j ∈ supp ξ_a} ∂_j (Ξᵀ1)_j, supports being disjoint.
        diag = jnp.diagonal(jax.jacfwd(lambda t: self._along(t, ones))(theta))
        support = jax.vmap(lambda e: self._along(theta, e))(jnp.eye(k, dtype=theta.dtype)) != 0
        self.trace_a = np.asarray(support @ diag)
        quad, _, chi = self._parts(theta)
        self.linear = bool(np.allclose(np.asarray(quad), 2 * np.asarray(chi), rtol=1e-6, atol=1e-9))

    def _along(self, theta, c):
        """Ξ(θ)ᵀ c = Σ_a c_a ξ_a(θ)."""
        zero = jnp.zeros(self.k, theta.dtype)
        return jax.jvp(lambda a: self.act(theta, a), (zero,), (c.astype(theta.dtype),))[1]

    def _against(self, theta, v):
        """Ξ(θ) v = (⟨ξ_a(θ), v⟩)_a."""
        zero = jnp.zeros(self.k, theta.dtype)
        _, vjp = jax.vjp(lambda a: self.act(theta, a), zero)
        return vjp(v)[0]

    def charges(self, theta):
        return 0.5 * self._against(theta, theta)

    def _parts(self, theta):
        """(⟨ξ_a, A_a ξ_a⟩, |ξ_a|², χ_a), supports being disjoint."""
        ones = jnp.ones(self.k, theta.dtype)
        s = self._along(theta, ones)  # Σ ξ_b
        a_s = jax.jvp(lambda t: self._along(t, ones), (theta,), (s,))[1]  # Σ_b A_b ξ_b
        return self._against(theta, a_s), self._against(theta, s), self.charges(theta)

    def rate(self, theta):
        """tr(A_a P_H) = tr(A_a) − ⟨ξ_a, A_a ξ_a⟩ / |ξ_a|² (diagonal Gram)."""
        quad, gdiag, _ = self._parts(theta)
        ok = gdiag > 0
        return jnp.asarray(self.trace_a, theta.dtype) - jnp.where(ok, quad / jnp.where(ok, gdiag, 1.0), 0.0)

    def target(self, theta, args: Numbers):
        """The charges after one step of the charge ODE from θ."""
        tdt = (args.T * args.dt).astype(theta.dtype)
        if not self.linear:
            return self.charges(theta) + tdt * self.rate(theta)
        _, gdiag, chi = self._parts(theta)
        ok = gdiag > 0
        g = jnp.where(ok, gdiag, 1.0)
        rest = 0.5 * jnp.asarray(self.trace_a, theta.dtype) * g  # the fixed point
        return jnp.where(ok, rest + (chi - rest) * jnp.exp(-2.0 * tdt / g), chi)

    def __call__(self, before, after, args: Numbers):
        target = self.target(before, args)
        ones = jnp.ones(self.k, after.dtype)
        for _ in range(self.newton):
            gdiag = self._against(after, self._along(after, ones))
            ok = gdiag > 0
            a = jnp.where(ok, (target - self.charges(after)) / jnp.where(ok, gdiag, 1.0), 0.0)
            after = self.act(after, jnp.clip(a, -1.0, 1.0))  # damped far from the target
        return after
