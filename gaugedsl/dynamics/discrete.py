"""`dynamics = sgd` and `dynamics = gd`: the discrete maps themselves, in `lax.scan`.

- `sgd`: θ ← θ − lr ∇ℓ_batch(θ), with a batch of `batch` distinct samples drawn uniformly
  (without replacement) at every step, or `batch` fresh draws of a stream.
- `gd`: the full-batch map θ ← θ − lr ∇L(θ).

A declared noise model is added in its discrete form: `isotropic`/`projected` add
`sqrt(2T·lr)·ξ` (projected onto the horizontal space), i.e. Langevin/SGLD steps; `label`
perturbs the labels of the batch by `sigma·N(0, 1)` at every step; `sgd` noise is the
minibatch itself. Step k of a particle uses the key `fold_in(particle key, k)`, so a run
resumed from a checkpoint draws exactly what an uninterrupted run draws.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from .manifolds import Constraint
from .noise import AbstractNoise
from .objective import Objective


class DiscreteChunk(eqx.Module):
    """One particle, one chunk: `(θ, key, start, n, numbers) ↦ (θ', records, bad)`, with
    `bad` the first step whose result was not finite (−1 if none)."""

    objective: Objective = eqx.field(static=True)
    constraint: Constraint
    noise: AbstractNoise | None
    label_noise: bool = eqx.field(static=True)
    batch: int | None = eqx.field(static=True)  # None: full batch (gd)
    groups: tuple[tuple[int, Callable], ...] = eqx.field(static=True)
    length: int = eqx.field(static=True)
    unit: int = eqx.field(static=True)

    def step(self, theta, key, k, args):
        key = jax.random.fold_in(key, k)
        k_batch, k_label, k_noise = jax.random.split(key, 3)
        obj = self.objective
        if self.batch is None:
            batch = obj.samples
        else:
            batch = obj.draw_batch(k_batch, self.batch)
        if self.label_noise:
            t = batch[obj.label]
            batch = {**batch, obj.label: t + args.sigma.astype(t.dtype) * jax.random.normal(k_label, t.shape, t.dtype)}
        if batch is None:
            g = obj.grad(theta)
        else:
            g = obj.batch_grad(theta, batch)
        delta = -args.dt * g
        if self.noise is not None:
            xi = jax.random.normal(k_noise, self.noise.shape, theta.dtype)
            delta = delta + self.noise.operator(theta, args).mv(xi)
        return self.constraint.retract(theta + self.constraint.tangent(theta, delta.astype(theta.dtype)))

    def __call__(self, theta, key, start, n, args):
        unit = self.unit

        def block(carry, b):
            theta, bad = carry

            def one(carry, i):
                theta, bad = carry
                k = start + b * unit + i
                new = self.step(theta, key, k, args)
                active = b * unit + i < n
                bad = jnp.where((bad < 0) & active & ~jnp.all(jnp.isfinite(new)), (k + 1).astype(bad.dtype), bad)
                return (jnp.where(active, new, theta), bad), None

            def steps(theta, bad):
                return jax.lax.scan(one, (theta, bad), jnp.arange(unit, dtype=jnp.int32))[0]

            # A chunk shorter than `length` (the run's last) skips its blocks past n.
            theta, bad = jax.lax.cond(b * unit < n, steps, lambda theta, bad: (theta, bad), theta, bad)
            done = (b + 1) * unit
            outs = []
            for every, fn in self.groups:
                shape = jax.eval_shape(fn, theta)
                outs.append(
                    jax.lax.cond(
                        (done % every == 0) & (done <= n),
                        lambda: fn(theta),
                        lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape),
                    )
                )
            return (theta, bad), tuple(outs)

        first = tuple(fn(theta) for _, fn in self.groups)
        (theta, bad), blocks = jax.lax.scan(block, (theta, jnp.asarray(-1, jnp.int32)), jnp.arange(self.length // unit, dtype=jnp.int32))
        # Same layout as the SDE path: index 0 at the chunk start, then one per `every` steps.
        records = tuple(
            jax.tree.map(lambda f, rows: jnp.concatenate([f[None], rows[every // unit - 1 :: every // unit]]), f, rows)
            for (every, _), f, rows in zip(self.groups, first, blocks)
        )
        return theta, records, bad
