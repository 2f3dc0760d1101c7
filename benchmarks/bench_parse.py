"""How long the front end takes on a large program: parse + check of a generated 2,000-line
`.gauge` file (median of several runs), and, separately, the one-time construction of the LALR
parser from grammar/gauge.lark.

    python benchmarks/bench_parse.py [--lines 2000] [--repeat 7]

Not a test: it prints the figures. Parse + check should stay well under a second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gaugedsl.check import check_text  # noqa: E402
from gaugedsl.syntax import parse  # noqa: E402
from gaugedsl.syntax import parser as parser_module  # noqa: E402


def generate(lines: int) -> str:
    """A valid model of about `lines` lines: data, parameters, chains of lets and predictors,
    symmetries on parameter pairs, a loss over everything, noise and a run block."""
    out = ["## A generated model for timing the parser and the checker.", "model bench", ""]
    blocks = max(1, (lines - 20) // 20)  # each block below is 20 lines
    out.append("data {")
    out += [f"  X{i} : R[16, 8] = normal(0, 1, seed = {i})" for i in range(blocks)]
    out += ["}", ""]
    body = []
    for i in range(blocks):
        body += [
            f"## Factors of block {i}.",
            f"param u{i} : R[8] = normal(0, 0.1)",
            f"param v{i} : R[8] = normal(0, 0.1)",
            f"predictor w{i} = u{i} * v{i}",
            f"let r{i} = X{i} @ w{i} - mean(X{i}, axis = 1)",
            f"let s{i} = sum(r{i}^2) / 16 + 1e-3 * norm(w{i})^2",
            f"let t{i} = [s{i}, sum(abs(w{i}[0:4])), -s{i}]",
            f"let q{i} = softmax(X{i} @ diag(u{i}) @ v{i}) # a comment",
            f"let z{i} = sum(t{i}) + sum(q{i}) * 0.5^2",
            "",
            f"symmetry balance{i} : Scale[8] {{",
            f"  u{i} -> g * u{i}",
            f"  v{i} -> v{i} / g",
            "}",
            "",
        ]
    out += body
    out.append("loss = " + " + ".join(f"z{i}" for i in range(blocks)))
    out += ["", "noise projected(T = 1e-3)", "", "run {", "  particles = 100", "  steps = 1000", "  dt = 1e-2"]
    records = ", ".join(f"charge(balance{i})" for i in range(min(blocks, 5)))
    out += [f"  record every 10: loss, {records}", "}"]
    text = "\n".join(out) + "\n"
    # Pad with comment lines to the exact length asked for.
    missing = lines - text.count("\n")
    return text + "# padding\n" * max(missing, 0)


def _medians(fn, repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of `repeat` calls (CPU time is steadier on a busy machine)."""
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _construct(cache: bool) -> float:
    os.environ["GAUGEDSL_PARSER_CACHE"] = "1" if cache else "0"
    parser_module._parser.cache_clear()
    start = time.perf_counter()
    parser_module.grammar()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    text = generate(args.lines)
    n_lines = text.count("\n")

    cold = _construct(cache=False)
    _construct(cache=True)  # writes the cache if it is not there yet
    cached = _construct(cache=True)

    check_text(text, "bench.gauge")  # warm up, and make sure the program is valid
    parse_wall, parse_cpu = _medians(lambda: parse(text, "bench.gauge"), args.repeat)
    total_wall, total_cpu = _medians(lambda: check_text(text, "bench.gauge"), args.repeat)

    print(f"program: {n_lines} lines, {len(text)} characters")
    print("parser construction, once per process:")
    print(f"  building the LALR tables from grammar/gauge.lark: {cold * 1e3:8.1f} ms")
    print(f"  loading them from the user cache:                 {cached * 1e3:8.1f} ms")
    print(f"median of {args.repeat} runs                  wall clock     CPU")
    print(f"  parse (text -> AST)            {parse_wall * 1e3:8.1f} ms  {parse_cpu * 1e3:8.1f} ms")
    print(f"  parse + check (text -> IR)     {total_wall * 1e3:8.1f} ms  {total_cpu * 1e3:8.1f} ms")
    print(f"  = {n_lines / total_wall:,.0f} lines per second (wall clock)")


if __name__ == "__main__":
    main()
