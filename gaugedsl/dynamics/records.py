"""What a run keeps: the run block's `record every k: ...` items, evaluated on one particle's
θ through the one lowering. Only these values leave the compiled program, so memory is
bounded by what is recorded, not by the number of steps."""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from .. import ir
from ..lowering import Lowered


def _uses_loss(e: ir.Expr) -> bool:
    return any(isinstance(x, ir.Ref) and x.kind == "loss" for x in ir.walk(e))


class Recorder:
    """**Arguments:** `lowered`, `records` (the run block's), `loss` (θ ↦ training loss),
    `hooks` (the geometry engine's `charge`/`logdet_gram`), `dtype`."""

    def __init__(self, lowered: Lowered, records: tuple[ir.Record, ...], loss: Callable, hooks: dict, dtype):
        self.lowered = lowered
        self.records = records
        self.loss = loss
        self.hooks = hooks
        self.dtype = dtype

    @property
    def labels(self) -> list[str]:
        return [i.label for r in self.records for i in r.items]

    def every(self, label: str) -> int:
        return next(r.every for r in self.records for i in r.items if i.label == label)

    def item(self, label: str) -> ir.RecordItem:
        return next(i for r in self.records for i in r.items if i.label == label)

    def group(self, index: int) -> Callable:
        """θ ↦ {label: value} for the items of record block `index`."""
        items = self.records[index].items
        needs_loss = any(_uses_loss(i.value) for i in items)

        def fn(theta):
            params = self.lowered.layout.unflatten(theta)
            extra = {"loss": self.loss(theta)} if needs_loss else None
            return {
                i.label: jnp.broadcast_to(
                    jnp.asarray(self.lowered.evaluate(i.value, params, extra, self.hooks)), i.value.shape
                ).astype(self.dtype)
                for i in items
            }

        return fn
