"""Many processes, and many hosts, on JAX's own multi-controller runtime (`jax.distributed`).

Every process runs the same `gaugedsl run`: the ensemble (with a sweep, every point's particles)
is one global array sharded over the devices of every process, each process integrating the
particles on its own devices, with no communication during the run (particles never interact).
At each chunk's end the records and states are gathered (`process_allgather`, over Gloo on CPUs);
only process 0 writes checkpoints and result files, and prints. Each process computes the
(cheap, deterministic) initial state of the whole ensemble, so nothing is sent at the start.

Launch: `--coordinator HOST:PORT --num-processes N --process-id I` by hand, or `--distributed`
where JAX finds the cluster itself (SLURM's variables, and the other environments
`jax.distributed.initialize()` reads). docs/scaling.md shows the three launches.
"""

from __future__ import annotations

import jax


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None):
    """Joins this process to the run's other processes, before any computation. Arguments left
    None are read from the environment by JAX (SLURM, Open MPI, Kubernetes, ...)."""
    # CPU processes gather their shares through Gloo, JAX's CPU collectives (GPUs use their own)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)


def many() -> bool:
    """Whether this run spans several processes."""
    return jax.process_count() > 1


def lead() -> bool:
    """Whether this process writes the files and prints (process 0)."""
    return jax.process_index() == 0
