"""On a GPU, in one call: the step benchmark and a 10⁶-particle diagonal-net run.

1. `bench_dynamics.py` at 10⁴ and 10⁵ particles (gaugedsl against the hand-written loop on the same
   device, Gaussian and Rademacher increments);
2. the quick start (examples/diagonal_net.gauge) with 10⁶ particles through `gaugedsl run`,
   recording w and the loss 9 times (what is recorded bounds the memory: 0.8 GB here, where the
   run block's records every 100 steps would hold 19 GB), with its table and verdicts.

It prints the device JAX found and refuses to run on a CPU unless `--smoke` (tiny sizes, to check
the script itself anywhere). Run it on the GPU machine as `python benchmarks/gpu.py`; the figures
go into the README with the device named. Never a test.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    # the benchmarks default JAX to the CPU when JAX_PLATFORMS is unset; empty lets JAX pick the GPU
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": ""})
    print(f"({time.perf_counter() - start:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, any device: checks the script")
    args = parser.parse_args()
    import jax

    device = jax.devices()[0]
    print(f"JAX {jax.__version__} on {device.platform}: {device.device_kind} ({jax.device_count()} devices)")
    if device.platform == "cpu" and not args.smoke:
        raise SystemExit("no accelerator found: this script is for a GPU machine (--smoke checks it on a CPU)")
    sizes = [(64, 200)] if args.smoke else [(10_000, 10_000), (100_000, 1_000)]
    for particles, steps in sizes:
        run([sys.executable, "benchmarks/bench_dynamics.py", "--particles", str(particles), "--steps", str(steps),
             "--repeats", "1" if args.smoke else "5"])  # fmt: skip
    particles, steps = (256, 240) if args.smoke else (1_000_000, 24_000)
    text = (ROOT / "examples" / "diagonal_net.gauge").read_text(encoding="utf-8")
    text = re.sub(r"record every 100:[^}]*", f"record every {steps // 8}: w, loss\n", text)
    with tempfile.TemporaryDirectory() as folder:
        program = Path(folder) / "diagonal_net_million.gauge"
        program.write_text(text, encoding="utf-8")
        run([sys.executable, "-m", "gaugedsl", "run", str(program), "--particles", str(particles), "--steps", str(steps),
             "-o", str(Path(folder) / "out")])  # fmt: skip


if __name__ == "__main__":
    main()
