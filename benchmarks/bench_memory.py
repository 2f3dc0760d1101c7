"""Benchmark: a long run that records only its first and last states runs in flat memory.

`gaugedsl run` on the quick start (examples/diagonal_net.gauge) with `--particles` particles (default
10⁵) and `--steps` steps (default 10⁵), recording w and the loss at the start and the end only. The
command runs as a child process whose peak resident memory (VmHWM, Linux's /proc) is read until it
ends, for each number of steps. Flat memory: the peak does not grow with the steps — the chunks
reuse their buffers and the records hold two states.

This is not a test: run `python benchmarks/bench_memory.py [--particles N] [--steps S ...]`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status(pid: int, field: str) -> float | None:
    """A /proc/PID/status field in MiB, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) / 1024 if match else None


def peak_of(particles: int, steps: int) -> tuple[float, float, str]:
    """Wall seconds, peak resident MiB (VmHWM) and the first output line of one run."""
    text = (ROOT / "examples" / "diagonal_net.gauge").read_text(encoding="utf-8")
    text = re.sub(r"record every 100:[^}]*", f"record every {steps}: w, loss\n", text)
    with tempfile.TemporaryDirectory() as folder:
        program = Path(folder) / "diagonal_net_long.gauge"
        program.write_text(text, encoding="utf-8")
        command = [sys.executable, "-m", "gaugedsl", "run", str(program), "--particles", str(particles),
                   "--steps", str(steps), "-o", str(Path(folder) / "out")]  # fmt: skip
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak = 0.0
        while child.poll() is None:
            peak = max(peak, _status(child.pid, "VmHWM") or 0.0)
            time.sleep(0.5)
        output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"gaugedsl run failed ({child.returncode}):\n{output}")
    return time.perf_counter() - start, peak, output.strip().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particles", type=int, default=100_000)
    parser.add_argument("--steps", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    print("| particles | steps | wall s | peak resident MiB |")
    print("|---|---|---|---|")
    for steps in args.steps:
        wall, peak, line = peak_of(args.particles, steps)
        print(f"| {args.particles} | {steps} | {wall:.0f} | {peak:.0f} |  ({line})", flush=True)


if __name__ == "__main__":
    main()
