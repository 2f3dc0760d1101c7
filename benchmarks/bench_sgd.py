"""Benchmark: the paper's SGD experiments (E1–E3) as `gaugedsl run` runs them, one seed,
against the same SGD loops written by hand in JAX.

Each experiment is its example program (`examples/e1_relu.gauge`, `e2_attention.gauge`,
`e3_matrix_completion.gauge`) with one particle, and a hand-written loop of the same step:
the same teacher (or truth and mask) and the same start, fresh minibatches drawn inside the
loop, `lax.scan` over steps, the paper's plotted quantities recorded as often as the
program records them. Timed side by side, interleaved, after a warm-up call (compilation
excluded); medians of `--repeats`.

- gaugedsl: `Simulation(model, particles=1).run()` exactly as `gaugedsl run` calls it — the
  chunked loop with per-step finiteness checks and every record of the program (which records
  more than the hand loop: charges, unit sizes, log det G, losses on a fixed sample).
- hand-written: the loop compiled with JAX's own lowering of the random-number hash (on CPU
  a rolled loop of five rounds, in this JAX version).
- hand, straight-line hash: the same loop compiled with the straight-line lowering gaugedsl
  uses for its discrete maps (`gaugedsl/_threefry.py`; upstream JAX's default from
  jax-ml/jax#37872): the step's own arithmetic on equal terms.
- hand, drawn ahead: that loop drawing each record block's minibatches in one vmapped call
  before the block's steps, as gaugedsl does where a step's draw does real arithmetic (E2;
  `gaugedsl/dynamics/discrete.py`).

This is not a test: run `python benchmarks/bench_sgd.py [e1 e2 e3]`.
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

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from gaugedsl._threefry import straight_line_threefry  # noqa: E402
from gaugedsl.check import check_file  # noqa: E402
from gaugedsl.dynamics import Simulation  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
relu = jax.nn.relu


def e1_relu(data):
    """3 → 16 → 1 bias-free ReLU student of a fixed teacher, batch 8 of fresh x ~ N(0, I₃)."""
    Wt, Vt = data["W_teacher"], data["V_teacher"]

    def draw(key):
        kx, ke = jax.random.split(key)
        x = jax.random.normal(kx, (8, 3))
        return x, relu(x @ Wt.T) @ Vt.T + 0.1 * jax.random.normal(ke, (8, 1))

    def loss(p, batch):
        x, y = batch
        return jnp.mean((relu(x @ p["W"].T) @ p["V"].T - y) ** 2)

    def record(p):
        return jnp.abs(p["V"][0]) / jnp.linalg.norm(p["W"], axis=1)

    return draw, loss, record, lambda batch: (batch["x"], batch["y"])


def e2_attention(data):
    """Single-head attention student of a fixed teacher, batch 16 of fresh 8 × 16 sequences."""
    teacher = (data["Q_teacher"], data["K_teacher"], data["V_teacher"])

    def attend(x, Wq, Wk, Wv):
        scores = (x @ Wq) @ jnp.swapaxes(x @ Wk, -1, -2) / jnp.sqrt(8.0)
        return jax.nn.softmax(scores, axis=-1) @ (x @ Wv)

    def draw(key):
        kx, ke = jax.random.split(key)
        x = jax.random.normal(kx, (16, 8, 16))
        return x, attend(x, *teacher) + 0.02 * jax.random.normal(ke, (16, 8, 8))

    def loss(p, batch):
        x, y = batch
        return jnp.mean((attend(x, p["Wq"], p["Wk"], p["Wv"]) - y) ** 2)

    def record(p):
        Wq, Wk = p["Wq"], p["Wk"]
        columns = jnp.linalg.norm(Wq, axis=0) / jnp.linalg.norm(Wk, axis=0)
        nuclear = jnp.sum(jnp.linalg.svd(Wq, compute_uv=False)) / jnp.sum(jnp.linalg.svd(Wk, compute_uv=False))
        return columns, jnp.linalg.norm(Wq) / jnp.linalg.norm(Wk), nuclear

    return draw, loss, record, lambda batch: (batch["x"], batch["y"])


def e3_matrix_completion(data):
    """P Q fitted to the observed entries of a rank-2 20 × 20 truth, a fresh half of them per step."""
    M_star, observed = data["M_star"], data["observed"]

    def draw(key):
        return observed * jax.random.bernoulli(key, 0.5, observed.shape)

    def loss(p, mask):
        return jnp.mean(((M_star - p["P"] @ p["Q"]) * mask) ** 2)

    def record(p):
        return 2 * jnp.linalg.svd(p["P"] @ p["Q"], compute_uv=False), jnp.linalg.norm(p["P"], axis=0) / jnp.linalg.norm(
            p["Q"], axis=1
        )

    return draw, loss, record, lambda batch: batch["mask"]


EXPERIMENTS = {
    "e1": ("e1_relu.gauge", e1_relu, 100_000),
    "e2": ("e2_attention.gauge", e2_attention, 10_000),
    "e3": ("e3_matrix_completion.gauge", e3_matrix_completion, 100_000),
}


def hand_written(build, data, lr: float, steps: int, every: int, ahead: bool = False):
    """One seed's SGD loop: `steps` steps, the records every `every` steps; with `ahead`, each
    block's minibatches drawn at once before its steps."""
    draw, loss, record, _ = build(data)
    grad = jax.grad(loss)

    @jax.jit
    def run(params, key):
        def step(p, k):
            g = grad(p, draw(jax.random.fold_in(key, k)))
            return jax.tree.map(lambda a, b: a - lr * b, p, g), None

        def step_on(p, batch):
            return jax.tree.map(lambda a, b: a - lr * b, p, grad(p, batch)), None

        def block(p, b):
            ks = b * every + jnp.arange(every)
            if ahead:
                p, _ = jax.lax.scan(step_on, p, jax.vmap(lambda k: draw(jax.random.fold_in(key, k)))(ks))
            else:
                p, _ = jax.lax.scan(step, p, ks)
            return p, record(p)

        return jax.lax.scan(block, params, jnp.arange(steps // every))

    return run


def same_model(sim: Simulation, hand, params, batch_size: int) -> None:
    """Both sides train the same model: on one of gaugedsl's minibatches the hand-written loss
    equals the program's (to float32 rounding)."""
    _, loss, _, adapt = hand
    batch = sim.objective.draw_batch(jax.random.PRNGKey(1), batch_size)
    ours, theirs = float(sim.lowered.batch_loss(params, batch)), float(loss(params, adapt(batch)))
    if abs(ours - theirs) > 1e-5 * abs(ours):
        raise SystemExit(
            f"the hand-written loss ({theirs}) is not the program's ({ours}): the benchmark would compare different models"
        )


def setup(name: str, steps: int):
    """The example's one-seed simulation, its data in float32 and its first particle's start."""
    file, build, _ = EXPERIMENTS[name]
    sim = Simulation(check_file(EXAMPLES / file), particles=1, steps=steps)
    data = {k: jnp.asarray(v, jnp.float32) for k, v in sim.lowered.data.items()}
    params = sim.objective.params(jnp.asarray(sim.initial_state().theta[0]))
    return sim, build, data, params


def bench(name: str, steps: int | None, repeats: int) -> None:
    steps = steps or EXPERIMENTS[name][2]
    sim, build, data, params = setup(name, steps)
    file = EXPERIMENTS[name][0]
    numbers = sim.numbers()
    lr = float(numbers.dt)
    every = min(r.every for r in sim.plan.records)
    if steps % every:
        raise SystemExit(f"--steps must be a multiple of {every} for {name} (its records' interval)")
    key = jax.random.PRNGKey(0)
    same_model(sim, build(data), params, sim.plan.batch)
    rolled = hand_written(build, data, lr, steps, every)
    straight = hand_written(build, data, lr, steps, every)
    ahead = hand_written(build, data, lr, steps, every, ahead=True)

    sides = {
        "gaugedsl": lambda: sim.run(numbers, state=sim.initial_state()),
        "hand-written": lambda: jax.block_until_ready(rolled(params, key)),
        "hand, straight-line hash": lambda: jax.block_until_ready(straight(params, key)),
        "hand, drawn ahead": lambda: jax.block_until_ready(ahead(params, key)),
    }
    rolled(params, key)  # compiled here with JAX's own lowering
    with straight_line_threefry():
        straight(params, key)
        ahead(params, key)
    sides["gaugedsl"]()
    wall = {side: [] for side in sides}
    for _ in range(repeats):
        for side, fn in sides.items():
            start = time.perf_counter()
            fn()
            wall[side].append(time.perf_counter() - start)
    per_step = {side: statistics.median(ts) / steps * 1e6 for side, ts in wall.items()}
    print(f"{name} ({file}, 1 seed, {steps} SGD steps, records every {every}):")
    for side, ts in wall.items():
        print(f"  {side:>24}: {per_step[side]:6.1f} µs/step  (median of {', '.join(f'{t:.2f}' for t in ts)} s)")
    ratio = per_step["hand, straight-line hash"] / per_step["gaugedsl"]
    print(
        f"  speed gaugedsl / hand-written: {per_step['hand-written'] / per_step['gaugedsl']:.2f}; / hand with the same hash: {ratio:.2f}; / hand drawn ahead: {per_step['hand, drawn ahead'] / per_step['gaugedsl']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="*", metavar="{e1,e2,e3}", help="default: all three")
    parser.add_argument(
        "--steps", type=int, help="SGD steps per timed call (default: 100,000 for E1 and E3, 10,000 for E2)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name in args.experiments:
        if name not in EXPERIMENTS:
            parser.error(f"unknown experiment {name!r}: choose from {', '.join(sorted(EXPERIMENTS))}")
    for name in args.experiments or sorted(EXPERIMENTS):
        bench(name, args.steps, args.repeats)
    print(f"(load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
