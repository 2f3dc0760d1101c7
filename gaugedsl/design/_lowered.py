"""The one lowering (`gaugedsl.lowering.Lowered`) without its data, for programs that bring
their own (the ensemble's members)."""

from __future__ import annotations

import jax

from .. import ir
from ..lowering import Lowered


def structure(model: ir.Model) -> Lowered:
    """`model` lowered without its data: built under `eval_shape`, so `data` holds
    placeholders, to be replaced before use."""
    made: list[Lowered] = []
    jax.eval_shape(lambda: made.append(Lowered(model)) or made[0].data)
    return made[0]
