"""The drift: gradient descent on the training loss, per step (time measured in steps)."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
from jaxtyping import Array, Float

from .manifolds import Constraint
from .plan import Numbers


class Drift(eqx.Module):
    """`−dt · P_T(θ) ∇L(θ)`: one step's worth of the drift `−∇L dt`, tangent to the
    parameters' manifolds. A Diffrax vector field `(t, θ, numbers) ↦ ...`."""

    grad: Callable = eqx.field(static=True)
    constraint: Constraint

    def __call__(self, t, theta: Float[Array, " D"], args: Numbers) -> Float[Array, " D"]:
        return (-args.dt * self.constraint.tangent(theta, self.grad(theta))).astype(theta.dtype)
