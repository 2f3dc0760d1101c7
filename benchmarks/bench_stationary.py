"""Benchmark: accuracy per cost of a stationary statistic, Euler–Maruyama (Gaussian and Rademacher
increments) against the Leimkuhler–Matthews step (`solver = lm`).

The model: four independent coordinates under isotropic noise, L = Σ (w_i²/2 + w_i⁴/4), T = 0.5.
Its stationary law is exp(−L/T), so E[w_i²] is known exactly (1-D quadrature). For each step dt,
each method runs 10,000 particles to t = 200 (the first 20% dropped); the table gives the error of
E[w²] against the exact value, its Monte Carlo standard error, and the run's wall time (warm: the
compiled program is reused, so compilation is excluded). The cost of a run is steps = t/dt, so a
method whose bias is second order reaches a given error at a larger dt, in fewer seconds.

This is not a test: run `python benchmarks/bench_stationary.py` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaugedsl.dynamics.devices import request_host_devices  # noqa: E402

request_host_devices()  # as `gaugedsl run` does, before JAX starts

import numpy as np  # noqa: E402
from scipy import integrate  # noqa: E402

from gaugedsl.check import check_text  # noqa: E402
from gaugedsl.dynamics import Simulation  # noqa: E402

T = 0.5
PROGRAM = """model soft_quartic
param w : R[4] = normal(0, 0.5)
loss = sum(0.5 * w^2 + 0.25 * w^4)
noise isotropic(T = {T})
run {{
  particles = {particles}
  steps = {steps}
  dt = {dt}
  solver = {solver}
  increments = {increments}
  record every {every}: w
}}
"""
METHODS = {  # name: (solver, increments)
    "euler, Gaussian": ("euler", "gaussian"),
    "euler, Rademacher": ("euler", "rademacher"),
    "lm, Gaussian": ("lm", "gaussian"),
}


def exact_second_moment() -> float:
    def weight(w):
        return np.exp(-(0.5 * w**2 + 0.25 * w**4) / T)

    top = integrate.quad(lambda w: w * w * weight(w), -np.inf, np.inf)[0]
    return top / integrate.quad(weight, -np.inf, np.inf)[0]


def measure(solver: str, increments: str, dt: float, particles: int, horizon: float):
    """E[w²] over the particles that stayed finite, its standard error, the warm wall time, and
    how many particles diverged."""
    steps = int(round(horizon / dt))
    every = max(1, steps // 200)
    steps = every * (steps // every)
    text = PROGRAM.format(T=T, particles=particles, steps=steps, dt=dt, solver=solver, increments=increments,
                          every=every)  # fmt: skip
    sim = Simulation(check_text(text, "<bench>"))
    sim.run(steps=every)  # compiles
    start = time.perf_counter()
    result = sim.run()
    wall = time.perf_counter() - start
    w = result.records["w"].astype(np.float64)
    # a particle past |w| = 100 is on its way to infinity (the explicit step's instability of w⁴)
    lost = ~np.all(np.isfinite(w) & (np.abs(w) < 100), axis=(0, 2))
    per_particle = (w[w.shape[0] // 5 :, ~lost] ** 2).mean(axis=(0, 2))
    se = float(per_particle.std(ddof=1) / np.sqrt(per_particle.size))
    return float(per_particle.mean()), se, wall, int(lost.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=10_000)
    parser.add_argument("--horizon", type=float, default=200.0)
    parser.add_argument("--dt", type=float, nargs="*", default=[0.4, 0.2, 0.1, 0.05, 0.025])
    args = parser.parse_args()
    exact = exact_second_moment()
    print(f"E[w²] exact {exact:.5f}; {args.particles} particles to t = {args.horizon:g}, first 20% dropped")
    print("| method | dt | E[w²] | error | Monte Carlo se | wall s (warm) | diverged |")
    print("|---|---|---|---|---|---|---|")
    for dt in args.dt:
        for name, (solver, increments) in METHODS.items():
            mean, se, wall, lost = measure(solver, increments, dt, args.particles, args.horizon)
            print(
                f"| {name} | {dt:g} | {mean:.5f} | {mean - exact:+.5f} | {se:.5f} | {wall:.2f} | {lost} |", flush=True
            )


if __name__ == "__main__":
    main()
