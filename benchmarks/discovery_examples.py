"""`gaugedsl symmetries` on every example: the discovered algebra against the declared one, one
line per model, with the wall time of each (the issue's target: under 10 s per example on 2
cores, conservation laws included). Run `python benchmarks/discovery_examples.py [NAME ...]`.

Each example is discovered twice in one process and the second time is reported (the first
includes compiling JAX's own small programs once per process); both are printed.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gaugedsl  # noqa: E402
from gaugedsl.discovery import discover  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    names = sys.argv[1:]
    files = sorted(p for p in EXAMPLES.glob("*.gauge") if not names or any(n in p.stem for n in names))
    times = []
    print("| example | declared | discovered | named | fiber | laws | verdict | first s | again s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in files:
        model = gaugedsl.load(path).ir
        walls = []
        for _ in range(2):
            start = time.perf_counter()
            d = discover(model)
            walls.append(time.perf_counter() - start)
        times.append(walls[1])
        declared = sum(x.dimension for x in d.declared)
        named = " × ".join(a.group for a in d.named) or "—"
        laws = d.laws.count if d.laws is not None else "—"
        print(
            f"| {path.stem} | {declared} | {d.dimension} | {named} | {d.algebra.fiber_dimension} | {laws} "
            f"| {d.verdict()} | {walls[0]:.1f} | {walls[1]:.1f} |",
            flush=True,
        )
    if times:
        print(f"\nmedian {statistics.median(times):.1f} s, max {max(times):.1f} s over {len(times)} examples")


if __name__ == "__main__":
    main()
