"""Keeping parameters on their manifolds.

We integrate in the ambient coordinates θ ∈ R^D — the coordinates the loss, the symmetry
actions, the generators and the charges are written in — and constrain each step:

- `Sphere[n]` and `Stiefel[n, k]`: the drift and the noise are projected onto the tangent
  space (`v − (x·v) x`, resp. `Z − X sym(XᵀZ)`), and after each step the point is mapped back
  by the closest-point retraction (`x/|x|`, resp. the polar factor `X (XᵀX)^{-1/2}`). A
  projected Euler step followed by the closest-point projection reproduces the Itô drift of
  Brownian motion on the embedded manifold (for the sphere: `−(n−1)T x dt`, from
  `|x + Pξ| = 1 + |Pξ|²/2 + …`), so the stationary law is `exp(−L/T)` with respect to the
  surface measure — the same law the geometry engine reasons about. Intrinsic coordinates
  (angles) would need charts and their metric factors, and the symmetry actions are written
  in the ambient coordinates anyway.
- `Positive[n]`: the tangent space is all of R^n, so nothing is projected; a step that
  would leave the orthant is reflected, `p → |p|`. Reflection keeps the Euclidean Gibbs law
  `exp(−L/T) dp` on the orthant (log coordinates would change the reference measure to
  `dp/p` and so the stationary law).
- `R[...]`: unconstrained.
"""

from __future__ import annotations

from typing import Protocol

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import ir
from ..lowering import ParamLayout


class Block(eqx.Module):
    kind: str = eqx.field(static=True)
    offset: int = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def get(self, theta):
        return theta[self.offset : self.offset + self.size].reshape(self.shape)

    def set(self, theta, value):
        return theta.at[self.offset : self.offset + self.size].set(value.reshape(-1))


class Retraction(Protocol):
    """What a solver needs of the state's constraint: `Constraint` on θ, and the quotient
    charts' own (`quotient.Reflection`, `cone.ConeRetraction`, `gl_quotient.GLBalance`)."""

    @property
    def trivial(self) -> bool: ...

    def retract(self, theta: Array, /) -> Array: ...


class Constraint(eqx.Module):
    """The manifold constraints of a model's parameters, on the flat vector θ.

    **Arguments:** `model`, `layout` (the `ParamLayout` of θ).
    """

    blocks: tuple[Block, ...]

    def __init__(self, model: ir.Model, layout: ParamLayout):
        blocks = []
        for p in model.params:
            if p.manifold.kind != "R":
                o = layout.offsets[layout.names.index(p.name)]
                shape = p.shape if p.manifold.kind != "Sphere" else (layout.sizes[layout.names.index(p.name)],)
                blocks.append(Block(p.manifold.kind, o, tuple(shape)))
        self.blocks = tuple(blocks)

    @property
    def trivial(self) -> bool:
        """No parameter is constrained."""
        return not self.blocks

    @property
    def projects(self) -> bool:
        """Some tangent space is a proper subspace (Sphere, Stiefel): the projected noise
        then depends on θ."""
        return any(b.kind in ("Sphere", "Stiefel") for b in self.blocks)

    def tangent(self, theta: Float[Array, " D"], v: Float[Array, " D"]) -> Float[Array, " D"]:
        """The orthogonal projection of v onto the tangent space at θ."""
        for b in self.blocks:
            if b.kind == "Sphere":
                x, w = b.get(theta), b.get(v)
                v = b.set(v, w - jnp.dot(x, w) * x / jnp.dot(x, x))
            elif b.kind == "Stiefel":
                x, z = b.get(theta), b.get(v)
                s = x.T @ z
                v = b.set(v, z - x @ (0.5 * (s + s.T)))
        return v

    def retract(self, theta: Float[Array, " D"]) -> Float[Array, " D"]:
        """Back onto the manifold: closest point (Sphere, Stiefel), reflection (Positive)."""
        for b in self.blocks:
            x = b.get(theta)
            if b.kind == "Sphere":
                theta = b.set(theta, x / jnp.linalg.norm(x))
            elif b.kind == "Stiefel":
                # Polar factor X (XᵀX)^{-1/2}, by the eigendecomposition of the small k×k XᵀX.
                eig, vec = jnp.linalg.eigh(x.T @ x)
                x = x @ (vec * (1.0 / jnp.sqrt(eig))) @ vec.T
                # one Newton–Schulz polish, X(3I − XᵀX)/2: eigh leaves ~1e-6 in float32
                x = 0.5 * x @ (3.0 * jnp.eye(x.shape[1], dtype=x.dtype) - x.T @ x)
                theta = b.set(theta, x)
            elif b.kind == "Positive":
                theta = b.set(theta, jnp.abs(x))
        return theta

    def block_of(self, offset: int) -> Block | None:
        return next((b for b in self.blocks if b.offset == offset), None)

    @staticmethod
    def block_violation(b: Block, theta: Float[Array, " D"]) -> Float[Array, ""]:
        """How far one block is from its manifold (0 on it): |1 − |x||, ‖XᵀX − I‖_max, or
        how far below 0 a Positive coordinate is (1 − x for x ≤ 0)."""
        x = b.get(theta)
        if b.kind == "Sphere":
            return jnp.abs(1.0 - jnp.linalg.norm(x))
        if b.kind == "Stiefel":
            return jnp.max(jnp.abs(x.T @ x - jnp.eye(x.shape[1], dtype=x.dtype)))
        return jnp.max(jnp.where(x > 0, 0.0, 1.0 - x))

    def violation(self, theta: Float[Array, " D"]) -> Float[Array, ""]:
        """The largest `block_violation` (0 when every parameter is on its manifold)."""
        out = jnp.zeros((), theta.dtype)
        for b in self.blocks:
            out = jnp.maximum(out, self.block_violation(b, theta))
        return out
