"""Noise models as diffusion operators.

Time is measured in steps inside the solver (see `solve.py`), so every operator here is the
diffusion of one step, `g(θ)·sqrt(dt)`: applied to a standard normal vector it gives the
noise of one step. Each is a Lineax operator, which Diffrax's `ControlTerm` multiplies with
the Brownian increment without materializing a matrix where none is needed.

- `Isotropic(T)`: `sqrt(2T) dW`, W of dimension D (additive when no parameter is on a curved
  manifold: the fast path for every solver).
- `Projected(T)`: `sqrt(2T) P_H(θ) dW`, the noise restricted to the horizontal space of the
  declared symmetries (orthogonal to the orbits) — gradient-aligned, like SGD's.
- `Minibatch(lr, batch)`: the diffusion limit of minibatch SGD in time t = k·lr,
  `sqrt(lr/B · (n−B)/(n−1)) Σ(θ)^{1/2} dW`, with `Σ^{1/2}` realized as the D×n factor of
  centered per-sample gradients `(g_i − ḡ)/sqrt(n)` driven by an n-dimensional W (the factor
  (n−B)/(n−1) is sampling without replacement; 1 for streams).
- `LabelNoise(sigma, lr, batch)`: SGD whose labels are perturbed by `sigma·N(0,1)` each step.
  The perturbation moves each per-sample gradient by `sigma ε_i J_i`, `J_i = ∂_t ∇_θ ℓ_i` (the
  label is the last binder of the per-sample loss; exact for squared losses), giving the
  factor `sqrt(lr/B)·sigma·J_i/sqrt(n)`, next to the minibatch factor when B < n.

All are projected onto the tangent space of constrained parameters.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float

from .manifolds import Constraint
from .plan import Numbers


class AbstractNoise(eqx.Module):
    """`operator(θ, numbers)`: the diffusion of one step, a linear map from `shape` to R^D.
    `additive`: whether it is independent of θ (what additive-noise solvers need)."""

    constraint: eqx.AbstractVar[Constraint]

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def additive(self) -> bool:
        return False

    def operator(self, theta: Float[Array, " D"], args: Numbers) -> lx.AbstractLinearOperator:
        raise NotImplementedError

    def __call__(self, t, theta, args: Numbers) -> lx.AbstractLinearOperator:
        """As a Diffrax vector field."""
        return self.operator(theta, args)

    def _function(self, theta, fn, m: int) -> lx.AbstractLinearOperator:
        return lx.FunctionLinearOperator(fn, jax.ShapeDtypeStruct((m,), theta.dtype))


class Isotropic(AbstractNoise):
    constraint: Constraint
    dimension: int = eqx.field(static=True)

    @property
    def shape(self):
        return (self.dimension,)

    @property
    def additive(self) -> bool:
        return not self.constraint.projects

    def operator(self, theta, args):
        scale = jnp.sqrt(2 * args["T"] * args.dt).astype(theta.dtype)
        if self.additive:
            return lx.DiagonalLinearOperator(jnp.full(self.dimension, scale, theta.dtype))
        return self._function(theta, lambda w: scale * self.constraint.tangent(theta, w), self.dimension)


class Projected(AbstractNoise):
    constraint: Constraint
    project: Callable = eqx.field(static=True)
    dimension: int = eqx.field(static=True)

    @property
    def shape(self):
        return (self.dimension,)

    def operator(self, theta, args):
        scale = jnp.sqrt(2 * args["T"] * args.dt).astype(theta.dtype)
        return self._function(
            theta, lambda w: scale * self.project(theta, self.constraint.tangent(theta, w)), self.dimension
        )


class Minibatch(AbstractNoise):
    """**Arguments:** `gradients(θ) -> (n, D)` per-sample gradients; `n`; `finite` (a
    dataset, sampled without replacement) or a stream (an estimate from n fixed draws)."""

    constraint: Constraint
    gradients: Callable = eqx.field(static=True)
    n: int = eqx.field(static=True)
    finite: bool = eqx.field(static=True)

    @property
    def shape(self):
        return (self.n,)

    def factor(self, theta, args):
        g = self.gradients(theta)
        centered = (g - jnp.mean(g, axis=0)) / jnp.sqrt(self.n)
        fpc = (self.n - args["batch"]) / (self.n - 1) if self.finite and self.n > 1 else 1.0
        scale = jnp.sqrt(jnp.maximum(args["lr"] * fpc / args["batch"], 0.0) * args.dt)
        return scale.astype(theta.dtype) * centered.T  # (D, n)

    def operator(self, theta, args):
        f = jax.vmap(lambda col: self.constraint.tangent(theta, col), in_axes=1, out_axes=1)(self.factor(theta, args))
        return lx.MatrixLinearOperator(f)


class LabelNoise(AbstractNoise):
    """**Arguments:** as `Minibatch`, plus `label_jacobians(θ) -> (n, D, m)`, the derivatives
    `∂_t ∇_θ ℓ_i` of each per-sample gradient with respect to its m label entries."""

    constraint: Constraint
    minibatch: Minibatch
    label_jacobians: Callable = eqx.field(static=True)
    m: int = eqx.field(static=True)

    @property
    def shape(self):
        return (self.minibatch.n * (1 + self.m),)

    def operator(self, theta, args):
        n = self.minibatch.n
        j = self.label_jacobians(theta)  # (n, D, m)
        scale = (args["sigma"] * jnp.sqrt(args["lr"] / args["batch"] * args.dt / n)).astype(theta.dtype)
        labels = scale * jnp.transpose(j, (1, 0, 2)).reshape(theta.shape[0], n * self.m)
        f = jnp.concatenate([self.minibatch.factor(theta, args), labels], axis=1)
        f = jax.vmap(lambda col: self.constraint.tangent(theta, col), in_axes=1, out_axes=1)(f)
        return lx.MatrixLinearOperator(f)
