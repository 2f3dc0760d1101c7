"""Keeping parameters on their manifolds: the constraints of a model's parameters as blocks of
the flat vector θ. What each manifold does (its tangent projection, retraction and distance) is
its kind's, in `gaugedsl/kinds/manifolds.py`; this module only cuts θ into blocks.
"""

from __future__ import annotations

from typing import Protocol

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import ir
from ..kinds import MANIFOLDS, ManifoldKind
from ..lowering import ParamLayout


class Block(eqx.Module):
    kind: str = eqx.field(static=True)
    offset: int = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)

    @property
    def manifold(self) -> ManifoldKind:
        return MANIFOLDS[self.kind]

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
            kind = MANIFOLDS[p.manifold.kind]
            if kind.constrained:
                i = layout.names.index(p.name)
                blocks.append(
                    Block(p.manifold.kind, layout.offsets[i], kind.block_shape(tuple(p.shape), layout.sizes[i]))
                )
        self.blocks = tuple(blocks)

    @property
    def trivial(self) -> bool:
        """No parameter is constrained."""
        return not self.blocks

    @property
    def projects(self) -> bool:
        """Some tangent space is a proper subspace (Sphere, Stiefel): the projected noise
        then depends on θ."""
        return any(b.manifold.projects for b in self.blocks)

    def tangent(self, theta: Float[Array, " D"], v: Float[Array, " D"]) -> Float[Array, " D"]:
        """The orthogonal projection of v onto the tangent space at θ."""
        for b in self.blocks:
            if b.manifold.projects:
                v = b.set(v, b.manifold.tangent(b.get(theta), b.get(v)))
        return v

    def retract(self, theta: Float[Array, " D"]) -> Float[Array, " D"]:
        """Back onto the manifold: closest point (Sphere, Stiefel), reflection (Positive)."""
        for b in self.blocks:
            theta = b.set(theta, b.manifold.retract(b.get(theta)))
        return theta

    def block_of(self, offset: int) -> Block | None:
        return next((b for b in self.blocks if b.offset == offset), None)

    @staticmethod
    def block_violation(b: Block, theta: Float[Array, " D"]) -> Float[Array, ""]:
        """How far one block is from its manifold (0 on it)."""
        return b.manifold.violation(b.get(theta))

    def violation(self, theta: Float[Array, " D"]) -> Float[Array, ""]:
        """The largest `block_violation` (0 when every parameter is on its manifold)."""
        out = jnp.zeros((), theta.dtype)
        for b in self.blocks:
            out = jnp.maximum(out, self.block_violation(b, theta))
        return out
