"""The loss and its gradients as functions of the flat parameter vector θ, built from the one
lowering (`gaugedsl.lowering.Lowered`).

A per-sample loss over a dataset of n samples is averaged exactly. Over a stream the training
loss is an expectation; drift and noise use a fixed Monte Carlo sample of `STREAM_SAMPLES`
draws (deterministic in θ, as an SDE's coefficients must be), while the discrete `sgd` map
draws fresh samples at every step.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..lowering import Lowered, stable_id

STREAM_SAMPLES = 256


class Objective:
    """**Arguments:** `lowered` (its data already in the run's dtype), `dtype`."""

    def __init__(self, lowered: Lowered, dtype):
        self.lowered = lowered
        self.layout = lowered.layout
        self.dtype = dtype
        ps = lowered.per_sample
        self.per_sample = ps is not None
        self.streams = lowered.has_streams
        self.finite = ps is not None and ps.size is not None
        if ps is not None:
            if self.finite:
                self.samples = {k: jnp.asarray(v, dtype) for k, v in lowered.samples().items()}
            else:
                key = jax.random.PRNGKey(stable_id(f"{lowered.model.name}:stream"))
                self.samples = {
                    k: jnp.asarray(v, dtype) for k, v in lowered.stream_samples(key, STREAM_SAMPLES).items()
                }
            self.n = int(next(iter(self.samples.values())).shape[0])
            self.label, label_shape = ps.binders[-1]
            self.label_size = int(math.prod(label_shape)) if label_shape else 1
        else:
            self.samples, self.n, self.label, self.label_size = None, None, None, 0
            if self.streams:
                key = jax.random.PRNGKey(stable_id(f"{lowered.model.name}:stream"))
                self.stream_draws = {
                    k: jnp.asarray(v, dtype) for k, v in lowered.draw_streams(key, STREAM_SAMPLES).items()
                }

    def params(self, theta):
        return self.layout.unflatten(theta)

    # -- the training loss --

    def loss(self, theta, fixed=None):
        """The training loss at θ; `fixed` maps predictor (or let) names to values that replace
        theirs (the loss as a function of the predictor, for `geometry/normalisable.py`)."""
        p = self.params(theta)
        if self.samples is not None:  # a per-sample loss
            return self.lowered.batch_loss(p, self.samples, fixed)
        if self.streams:
            return jnp.mean(jax.vmap(lambda s: self.lowered.sample_loss(p, s, fixed))(self.stream_draws))
        return self.lowered.sample_loss(p, {}, fixed)

    def grad(self, theta):
        return jax.grad(self.loss)(theta).astype(theta.dtype)

    # -- per sample --

    def sample_loss(self, theta, sample):
        return self.lowered.sample_loss(self.params(theta), sample)

    def per_sample_grads(self, theta):
        """(n, D): the gradient of every sample's loss."""
        g = jax.vmap(jax.grad(self.sample_loss), in_axes=(None, 0))(theta, self.samples)
        return g.astype(theta.dtype)

    def label_jacobians(self, theta):
        """(n, D, m): `∂_t ∇_θ ℓ_i`, the response of each per-sample gradient to its label."""

        def one(sample):
            def grad_at(t):
                return jax.grad(self.sample_loss)(theta, {**sample, self.label: t})

            j = jax.jacfwd(grad_at)(sample[self.label])
            return j.reshape(theta.shape[0], self.label_size)

        return jax.vmap(one)(self.samples).astype(theta.dtype)

    def batch_grad(self, theta, batch):
        return jax.grad(lambda t: self.lowered.batch_loss(self.params(t), batch))(theta).astype(theta.dtype)

    def draw_batch(self, key, size: int):
        """A minibatch: `size` distinct samples of the dataset, or fresh stream draws."""
        if self.finite:
            assert self.n is not None and self.samples is not None  # a finite dataset is per-sample
            idx = jax.random.choice(key, self.n, (size,), replace=False)
            return {k: v[idx] for k, v in self.samples.items()}
        draws = self.lowered.stream_samples(key, size)
        return {k: jnp.asarray(v, self.dtype) for k, v in draws.items()}


def cast_data(lowered: Lowered, dtype) -> None:
    """Put the lowered model's data in the run's dtype (under 64-bit JAX it is made in
    float64; a float32 run must not be promoted by it)."""
    lowered.data = {k: jnp.asarray(np.asarray(v), dtype) for k, v in lowered.data.items()}
