"""Benchmark: the compiled `gaugedsl run` path against a hand-written JAX loop.

Diagonal linear network w = u ⊙ v (d = 20, n = 10; examples/diagonal_net.gauge), 1,000
particles, 10,000 Euler–Maruyama steps, float32, records every 100 steps. Both sides run the
same SDE — projected noise sqrt(2T) P_H dW at T = 1e-3, dt = 1e-2 — and are timed side by
side, interleaved, after a warm-up call (compilation excluded), medians of `--repeats`.

- gaugedsl: `Simulation(model).run()` exactly as `gaugedsl run` calls it — the chunked
  Python loop with per-chunk checks, Diffrax `diffeqsolve` with the one-hash-per-step
  `StepBrownianPath`, the elementwise horizontal projection of diagonal actions, the charge
  keeper, the run block's records (w, charge, log det G, loss, error), particles sharded over
  the CPU devices.
- hand-written: `jax.lax.scan` over steps inside `jax.vmap` over particles, the closed-form
  projection onto n_i = (v_i, u_i)/ρ_i, one `fold_in` key per step, recording w and the loss
  every 100 steps.
- hand-written, sharded: the same loop with its particles split over the CPU devices the way
  gaugedsl splits them (`gaugedsl.dynamics.devices`): what the per-step work costs on equal
  terms, without gaugedsl's use of every core.

Like `gaugedsl run`, the benchmark asks XLA for one CPU device per core before JAX starts.

- gaugedsl, Rademacher: the same run with `increments = rademacher` (±sqrt(dt) per coordinate,
  docs/dynamics.md "Increments"), against gaugedsl's own Gaussian step.

`--noise isotropic` compares isotropic noise instead (no projection on either side).
This is not a test: run `python benchmarks/bench_dynamics.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaugedsl.dynamics.devices import request_host_devices  # noqa: E402

request_host_devices()  # as `gaugedsl run` does, before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from gaugedsl import ir  # noqa: E402
from gaugedsl.check import check_file  # noqa: E402
from gaugedsl.dynamics import Simulation  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diagonal_net.gauge"


def hand_written(sim: Simulation, noise: str, steps: int, every: int):
    """The same model written directly in JAX, with the data `sim` generated."""
    X = jnp.asarray(sim.lowered.data["X"], jnp.float32)
    y = jnp.asarray(sim.lowered.data["y"], jnp.float32)
    d = X.shape[1]

    def loss(theta):
        u, v = theta[:d], theta[d:]
        return 0.5 * jnp.mean((X @ (u * v) - y) ** 2)

    grad = jax.grad(loss)

    @jax.jit
    def run(theta0, keys, T, dt):
        scale = jnp.sqrt(2 * T * dt)

        def particle(theta, key):
            def step(theta, k):
                xi = jax.random.normal(jax.random.fold_in(key, k), theta.shape, theta.dtype)
                if noise == "projected":
                    u, v = theta[:d], theta[d:]
                    n_u, n_v = v, u  # orbit normal (v_i, u_i)/ρ_i, per coordinate
                    rho2 = u * u + v * v
                    c = (n_u * xi[:d] + n_v * xi[d:]) / rho2
                    xi = jnp.concatenate([c * n_u, c * n_v])
                return theta - dt * grad(theta) + scale * xi, None

            def block(theta, b):
                theta, _ = jax.lax.scan(step, theta, b * every + jnp.arange(every))
                return theta, (theta[:d] * theta[d:], loss(theta))

            return jax.lax.scan(block, theta, jnp.arange(steps // every))

        return jax.vmap(particle)(theta0, keys)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noise", choices=("projected", "isotropic"), default="projected")
    args = parser.parse_args()

    model = check_file(EXAMPLE)
    if args.noise != model.noise.kind:
        model = dataclasses.replace(model, noise=ir.Noise(args.noise, model.noise.settings, model.noise.span))
    sim = Simulation(model, particles=args.particles, steps=args.steps)
    assert model.run is not None
    rademacher = dataclasses.replace(model, run=dataclasses.replace(
        model.run, settings=model.run.settings + (("increments", "rademacher"),)))  # fmt: skip
    sim_r = Simulation(rademacher, particles=args.particles, steps=args.steps)
    assert sim_r.plan.increments == "rademacher"
    assert sim.plan.dtype == "float32" and sim.plan.solver == "euler"
    numbers = sim.numbers()
    every = sim.plan.records[0].every
    state0 = sim.initial_state()
    hand = hand_written(sim, args.noise, args.steps, every)
    h_args = (jnp.asarray(state0.theta), jnp.asarray(state0.keys), numbers["T"], numbers.dt)
    put = sim.sharding.put  # particles is a multiple of the device count here: no padding
    s_args = (put(state0.theta), put(state0.keys), numbers["T"], numbers.dt)

    def run_gaugedsl():
        return sim.run(numbers, state=sim.initial_state())

    def run_rademacher():
        return sim_r.run(numbers, state=sim_r.initial_state())

    def run_hand():
        jax.block_until_ready(hand(*h_args))

    def run_hand_sharded():
        jax.block_until_ready(hand(*s_args))

    sides = {
        "gaugedsl": run_gaugedsl,
        "hand-written": run_hand,
        "hand, sharded": run_hand_sharded,
        "gaugedsl, Rademacher": run_rademacher,
    }
    warm = []
    for name, fn in sides.items():
        t0 = time.perf_counter()
        fn()
        warm.append(f"{name} {time.perf_counter() - t0:.1f} s")
    print(f"devices: {sim.sharding.describe()}; warm-up (compilation included): {', '.join(warm)}")
    wall = {name: [] for name in sides}
    cpu = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, fn in sides.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    work = args.particles * args.steps
    rates, cpu_rates = {}, {}
    for name, ts in wall.items():
        med = statistics.median(ts)
        rates[name] = work / med
        cpu_rates[name] = work / statistics.median(cpu[name])
        print(
            f"{name:>20}: median {med:.2f} s wall over {args.repeats} ({', '.join(f'{t:.2f}' for t in ts)}), {rates[name]:.3g} particle-steps/s; CPU time median {statistics.median(cpu[name]):.2f} s"
        )
    setting = f"[{args.noise} noise, {args.particles} particles × {args.steps} steps, float32, Euler–Maruyama]"
    print(
        f"ratio gaugedsl / hand-written (particle-steps/s): {rates['gaugedsl'] / rates['hand-written']:.2f} wall-clock, {cpu_rates['gaugedsl'] / cpu_rates['hand-written']:.2f} by CPU time  {setting}"
    )
    print(
        f"ratio gaugedsl / hand-written sharded the same way: {rates['gaugedsl'] / rates['hand, sharded']:.2f} wall-clock, {cpu_rates['gaugedsl'] / cpu_rates['hand, sharded']:.2f} by CPU time"
    )
    print(
        f"ratio gaugedsl Rademacher / gaugedsl Gaussian increments: {rates['gaugedsl, Rademacher'] / rates['gaugedsl']:.2f} wall-clock, {cpu_rates['gaugedsl, Rademacher'] / cpu_rates['gaugedsl']:.2f} by CPU time"
    )
    print(
        f"(load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; CPU time is the steadier measure on a shared machine)"
    )


if __name__ == "__main__":
    main()
