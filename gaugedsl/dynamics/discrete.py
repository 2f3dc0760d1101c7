"""`dynamics = sgd` and `dynamics = gd`: the discrete maps themselves, in `lax.scan`.

- `sgd`: θ ← θ − lr ∇ℓ_batch(θ), with a batch of `batch` distinct samples drawn uniformly
  (without replacement) at every step, or `batch` fresh draws of a stream.
- `gd`: the full-batch map θ ← θ − lr ∇L(θ).

A declared noise model is added in its discrete form: `isotropic`/`projected` add
`sqrt(2T·lr)·ξ` (projected onto the horizontal space), i.e. Langevin/SGLD steps; `label`
perturbs the labels of the batch by `sigma·N(0, 1)` at every step; `sgd` noise is the
minibatch itself. Step k of a particle uses the key `fold_in(particle key, k)`, so a run
resumed from a checkpoint draws exactly what an uninterrupted run draws.

The minibatches of a stretch of `ahead` steps are drawn together, before those steps: they do
not depend on θ, and one vmapped draw of many steps' data (a teacher network's forward pass,
say) costs far less than as many small ones — 1.6× faster SGD steps in the paper's attention
experiment (E2). Where a step's draw is cheap (E1, E3) it gains nothing and costs compile
time, so it is done only for draws that do real arithmetic (`steps_ahead`).
The draws are the same numbers; data computed from a stream (a teacher's outputs) can differ in
its last bit, as XLA no longer fuses that arithmetic into the step.
"""

from __future__ import annotations

import math
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
    ahead: int = eqx.field(static=True, default=1)  # divides unit

    def keys(self, key, k):
        """Step k's keys: batch, label, noise."""
        return jax.random.split(jax.random.fold_in(key, k), 3)

    def step(self, theta, keys, args, batch=None):
        """One step from θ with the step's keys, on its minibatch if drawn ahead."""
        k_batch, k_label, k_noise = keys
        obj = self.objective
        if self.batch is None:
            batch = obj.samples
        elif batch is None:
            batch = obj.draw_batch(k_batch, self.batch)
        if self.label_noise:
            assert batch is not None and obj.label is not None  # label noise needs a per-sample loss (E509)
            t = batch[obj.label]
            batch = {
                **batch,
                obj.label: t + args["sigma"].astype(t.dtype) * jax.random.normal(k_label, t.shape, t.dtype),
            }
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

            def one(carry, x):
                theta, bad = carry
                i, keys, batch = x
                k = start + b * unit + i
                new = self.step(theta, self.keys(key, k) if keys is None else keys, args, batch)
                active = b * unit + i < n
                bad = jnp.where((bad < 0) & active & ~jnp.all(jnp.isfinite(new)), (k + 1).astype(bad.dtype), bad)
                return (jnp.where(active, new, theta), bad), None

            def stretch(carry, j):
                i = j * self.ahead + jnp.arange(self.ahead, dtype=jnp.int32)
                keys = jax.vmap(self.keys, in_axes=(None, 0))(key, start + b * unit + i)
                size = self.batch
                assert size is not None  # minibatches are drawn ahead only for sgd
                batches = jax.vmap(lambda k: self.objective.draw_batch(k, size))(keys[:, 0])
                return jax.lax.scan(one, carry, (i, keys, batches))[0], None

            def steps(theta, bad):
                if self.ahead == 1:  # each step makes its keys and draws its own
                    return jax.lax.scan(one, (theta, bad), (jnp.arange(unit, dtype=jnp.int32), None, None))[0]
                return jax.lax.scan(stretch, (theta, bad), jnp.arange(unit // self.ahead, dtype=jnp.int32))[0]

            # A chunk shorter than `length` (the run's last) skips its blocks past n.
            theta, bad = jax.lax.cond(b * unit < n, steps, lambda theta, bad: (theta, bad), theta, bad)
            done = (b + 1) * unit
            outs = []
            for every, fn in self.groups:
                shape = jax.eval_shape(fn, theta)
                outs.append(
                    jax.lax.cond(
                        (done % every == 0) & (done <= n),
                        lambda fn=fn: fn(theta),
                        lambda shape=shape: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape),
                    )
                )
            return (theta, bad), tuple(outs)

        first = tuple(fn(theta) for _, fn in self.groups)
        (theta, bad), blocks = jax.lax.scan(
            block, (theta, jnp.asarray(-1, jnp.int32)), jnp.arange(self.length // unit, dtype=jnp.int32)
        )
        # Same layout as the SDE path: index 0 at the chunk start, then one per `every` steps.
        records = tuple(
            jax.tree.map(lambda f, rows, k=every // unit: jnp.concatenate([f[None], rows[k - 1 :: k]]), f, rows)
            for (every, _), f, rows in zip(self.groups, first, blocks)
        )
        return theta, records, bad


# The minibatches drawn ahead, all particles together, stay below this many bytes.
_AHEAD_LIMIT = 64 * 2**20
# Drawing ahead costs XLA about a second more to compile (E1, E3) and pays only where a step's
# draw does real arithmetic: E2's teacher, 3.6e5 flops per step, against 4e3 (E1) and 2e4 (E3,
# mostly the hash), neither of which ran faster.
_AHEAD_FLOPS = 1e5


def steps_ahead(objective: Objective, batch: int | None, unit: int, particles: int) -> int:
    """How many steps' minibatches to draw together: the largest divisor of `unit` (so that a
    record block is whole stretches) whose draws fit `_AHEAD_LIMIT`; 1 (every step its own
    draw) for gd, when a step's draw is cheaper than `_AHEAD_FLOPS` (all particles, by XLA's
    cost analysis) or when even one step's do not fit. `_AHEAD_FLOPS` is measured with JAX's
    own lowering of the hash: call this outside `straight_line_threefry`, whose hash XLA
    counts as far more flops (E3 would then be drawn ahead, for nothing)."""
    if batch is None:
        return 1
    draw = jax.jit(lambda key: objective.draw_batch(key, batch)).lower(jax.random.PRNGKey(0))
    cost = draw.cost_analysis() or {}
    if isinstance(cost, list):  # older JAX: one dict per program
        cost = cost[0] if cost else {}
    if particles * float(cost.get("flops", 0.0)) < _AHEAD_FLOPS:
        return 1
    shapes = draw.out_info
    per_step = particles * sum(math.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(shapes))
    small = [d for d in range(1, math.isqrt(unit) + 1) if unit % d == 0]
    divisors = small + [unit // d for d in small]
    return max(d for d in divisors if d == 1 or d * per_step <= _AHEAD_LIMIT)
