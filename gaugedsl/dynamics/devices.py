"""Where an ensemble runs: its particles split across the local devices.

Particles never interact, so an ensemble shards along the particle axis with no
communication: each device integrates its share of the chunk, and the trajectories are the
same bit for bit (each particle's arithmetic does not depend on its neighbours; a recorded
reduction such as a norm may be vectorized differently and differ in the last bit).

On a CPU, XLA presents one device however many cores there are, and a small ensemble's step
is a chain of small kernels that its thread pool does not speed up (measured on the 2-core
machine: the same wall time on one core or two). `request_host_devices` asks XLA for one CPU
device per core instead; the command line calls it before JAX starts, and the particle
streams then run in parallel (about 2× on 2 cores). It is not done on `import gaugedsl`: a
library must not change how JAX starts in someone else's program. With one device (a GPU,
or a CPU left as it is) nothing is sharded.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._host import request_host_devices as request_host_devices  # noqa: F401 — re-exported


class ParticleSharding:
    """Splits an ensemble of `particles` over the default backend's devices (at most one
    device per particle). `put` pads the particle axis to a multiple of the device count
    (repeating the last particle) and places it; `take` drops the padding."""

    def __init__(self, particles: int):
        devices = jax.devices()
        self.particles = particles
        self.count = max(1, min(len(devices), particles))
        self.padded = math.ceil(particles / self.count) * self.count
        self.sharding = (
            NamedSharding(Mesh(np.asarray(devices[: self.count]), ("particles",)), PartitionSpec("particles"))
            if self.count > 1
            else None
        )

    def describe(self) -> str:
        kind = jax.devices()[0].platform
        where = f" in {jax.process_count()} processes" if jax.process_count() > 1 else ""
        return f"{self.count} × {kind}{where}"

    def put(self, x: np.ndarray) -> jax.Array:
        x = np.asarray(x)
        if self.sharding is None:
            return jax.numpy.asarray(x)
        if self.padded > x.shape[0]:
            x = np.concatenate([x, np.repeat(x[-1:], self.padded - x.shape[0], axis=0)])
        if jax.process_count() > 1:  # a global array: each process places its devices' rows (distributed.py)
            return jax.make_array_from_callback(x.shape, self.sharding, lambda index: x[index])
        return jax.device_put(x, self.sharding)

    def take(self, x) -> np.ndarray:
        if jax.process_count() > 1 and isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            x = multihost_utils.process_allgather(x, tiled=True)
        return np.asarray(x)[: self.particles]
