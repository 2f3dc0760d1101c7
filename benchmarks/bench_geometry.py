"""log det G for GL(r) on a factorization W = U Vᵀ: the generic route (Gram of r² generators
by forward-mode differentiation, then Cholesky) against the structured one (the spectral form
Σ_ij log(λ_i(UᵀU) + λ_j(VᵀV)), docs/theory.md, P8), side by side in one run.

    python benchmarks/bench_geometry.py [--max-r 64] [--repeats 7]

Prints the median time per evaluation (after compilation) and the ratio; float64.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)


from gaugedsl.check import check_text  # noqa: E402
from gaugedsl.geometry import Geometry  # noqa: E402
from gaugedsl.lowering import Lowered  # noqa: E402


def model(m: int, n: int, r: int) -> Geometry:
    text = f"""model bench
import std.factorization
param U : R[{m}, {r}]
param V : R[{n}, {r}]
loss = sum((U @ V.T)^2)
symmetry s = gl_factorization(U, V)
"""
    return Geometry(Lowered(check_text(text, "<bench>")))


def median_time(fn, theta, repeats: int) -> float:
    fn(theta).block_until_ready()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(theta).block_until_ready()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-r", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"{'r':>4} {'U, V':>12} {'generic (s)':>12} {'structured (s)':>15} {'ratio':>8} {'|Δ logdet|':>11}")
    r = 4
    while r <= args.max_r:
        m = n = 4 * r
        geo = model(m, n, r)
        theta = jax.random.normal(jax.random.PRNGKey(0), (geo.dimension,))
        generic = jax.jit(lambda t, geo=geo: geo.logdet_gram("s", t, structured=False))
        structured = jax.jit(lambda t, geo=geo: geo.logdet_gram("s", t))
        tg = median_time(generic, theta, args.repeats)
        ts = median_time(structured, theta, args.repeats)
        diff = abs(float(generic(theta) - structured(theta)))
        print(f"{r:>4} {f'{m}×{r}':>12} {tg:>12.4g} {ts:>15.4g} {tg / ts:>7.1f}× {diff:>11.2e}", flush=True)
        r *= 2


if __name__ == "__main__":
    main()
