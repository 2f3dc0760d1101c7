"""Benchmark: `dynamics = quotient` against the full `sde` simulation, to the same accuracy.

Diagonal linear network w = u ⊙ v, d = 5, n = 40 (benchmarks/diagonal_net_law.gauge: full column
rank, so the stationary law exists and is reached), projected noise at T = 0.05, dt = 1e-2,
float32, Euler–Maruyama, every particle started on the gauge slice (charges at rest: the two
dynamics are then the same process, docs/dynamics.md "Dynamics on the quotient").

- full `sde`: θ = (u, v) ∈ R^10, the elementwise horizontal projection of the noise and the
  charge keeper (gaugedsl/dynamics/gauge.py) every step;
- `quotient`: s ∈ R^5 on the slice's lines, additive noise sqrt(2T/2) per line, no projection
  and no keeper.

Both run the same particles, steps and seed and read the stationary mean E[w] over the second
half of the run (the mean of each particle's time average; its Monte Carlo standard error from
their spread). Equal length and particles give equal accuracy in expectation — the processes
are the same — and the benchmark prints the standard errors it got beside the wall times, and
the ratio of the costs to reach a fixed standard error (wall · se², the cost of a run scaling as
its particles). Timed side by side, interleaved, after a warm-up call (compilation excluded),
medians of `--repeats`, wall-clock and CPU time (the steadier on a shared machine). Like
`gaugedsl run`, it asks XLA for one CPU device per core first.

This is not a test: run `python benchmarks/bench_quotient.py`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaugedsl.dynamics.devices import request_host_devices  # noqa: E402

request_host_devices()  # as `gaugedsl run` does, before JAX starts

import numpy as np  # noqa: E402

from gaugedsl.check import check_file, check_text  # noqa: E402
from gaugedsl.dynamics import Simulation  # noqa: E402

MODEL = Path(__file__).resolve().parent / "diagonal_net_law.gauge"
SIDES = ("quotient", "sde")


def simulations(particles: int, steps: int) -> dict[str, Simulation]:
    """The benchmark model under each dynamics; nothing else differs."""
    text = MODEL.read_text(encoding="utf-8")
    assert "dynamics  = quotient" in text
    sde = check_text(text.replace("dynamics  = quotient", "dynamics  = sde"), str(MODEL))
    models = {"quotient": check_file(MODEL), "sde": sde}
    return {name: Simulation(m, particles=particles, steps=steps) for name, m in models.items()}


def stationary_mean(result) -> tuple[np.ndarray, np.ndarray]:
    """E[w_i] over the second half of the run and its standard error, per coordinate."""
    w = result.records["w"]
    per_particle = w[w.shape[0] // 2 :].mean(axis=0)  # (N, d)
    n = per_particle.shape[0]
    return per_particle.mean(axis=0), per_particle.std(axis=0, ddof=1) / np.sqrt(n)


def measure(particles: int, steps: int, repeats: int, sims: dict[str, Simulation] | None = None) -> dict:
    """Wall times (warm, medians over `repeats`, interleaved) and the stationary means of each side."""
    sims = simulations(particles, steps) if sims is None else sims
    warm = {}
    for name, sim in sims.items():
        start = time.perf_counter()
        sim.run()
        warm[name] = time.perf_counter() - start
    wall = {name: [] for name in sims}
    cpu = {name: [] for name in sims}
    results = {}
    for _ in range(repeats):
        for name, sim in sims.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = sim.run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    out = {"warm": warm, "wall": wall, "median": {k: statistics.median(v) for k, v in wall.items()}}
    out["cpu"] = {k: statistics.median(v) for k, v in cpu.items()}
    out["cpu_ratio"] = out["cpu"]["sde"] / out["cpu"]["quotient"]
    out["mean"], out["se"] = {}, {}
    for name, res in results.items():
        out["mean"][name], out["se"][name] = stationary_mean(res)
    q, s = out["median"]["quotient"], out["median"]["sde"]
    out["ratio"] = s / q  # how many times faster the quotient is, same particles and steps
    se2 = {k: float(np.mean(v**2)) for k, v in out["se"].items()}
    out["cost_ratio"] = (s * se2["sde"]) / (q * se2["quotient"])  # at the same standard error
    diff = out["mean"]["quotient"] - out["mean"]["sde"]
    out["z"] = diff / np.sqrt(out["se"]["quotient"] ** 2 + out["se"]["sde"] ** 2)
    out["devices"] = sims["quotient"].sharding.describe()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    m = measure(args.particles, args.steps, args.repeats)
    print(f"devices: {m['devices']}; warm-up (compilation included): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in m["warm"].items()))  # fmt: skip
    for name in SIDES:
        ts = m["wall"][name]
        means = ", ".join(f"{x:+.4f}" for x in m["mean"][name])
        times = ", ".join(f"{t:.2f}" for t in ts)
        print(f"{name:>8}: median {m['median'][name]:.2f} s wall over {args.repeats} ({times}); "
              f"CPU time median {m['cpu'][name]:.2f} s; E[w] = [{means}], "
              f"standard error {m['se'][name].max():.4f} at most")  # fmt: skip
    print(f"the two laws agree: |z| ≤ {np.abs(m['z']).max():.2f} over the {m['z'].size} coordinates")
    setting = f"[{args.particles} particles × {args.steps} steps, dt = 1e-2, float32, Euler–Maruyama]"
    print(f"wall-time ratio sde / quotient: {m['ratio']:.2f} at equal particles and steps; "
          f"{m['cost_ratio']:.2f} at equal standard error of E[w]; "
          f"{m['cpu_ratio']:.2f} by CPU time  {setting}")  # fmt: skip
    print(f"(load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          "CPU time is the steadier measure on a shared machine)")  # fmt: skip


if __name__ == "__main__":
    main()
