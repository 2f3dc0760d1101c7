"""The side-by-side benchmarks compare like with like: the hand-written loops of
`benchmarks/bench_sgd.py` train the same models as the example programs they are timed
against (benchmarks themselves are not run here: timings are not tests)."""

import importlib.util
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_sgd():
    with pytest.MonkeyPatch.context() as mp:
        # Importing it asks for host devices (too late to matter here); keep the environment as it was.
        mp.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
        mp.setenv("PJRT_NPROC", "1")
        spec = importlib.util.spec_from_file_location("bench_sgd", ROOT / "benchmarks" / "bench_sgd.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", [pytest.param("e1", marks=pytest.mark.slow), pytest.param("e2", marks=pytest.mark.slow),
                                  "e3"])  # fmt: skip  # CI: e3 (suite time)
def test_hand_written_loops_train_the_programs_models(bench_sgd, name):
    sim, build, data, params = bench_sgd.setup(name, 100)
    bench_sgd.same_model(sim, build(data), params, sim.plan.batch)  # SystemExit if they differ
    _, loss, _, adapt = build(data)
    # The check can fail: the hand loss at another point (every weight × 1.5) is told apart
    # at same_model's tolerance (1e-5 relative).
    changed = {k: v * 1.5 for k, v in params.items()}
    batch = sim.objective.draw_batch(jax.random.PRNGKey(1), sim.plan.batch)
    ours = float(sim.lowered.batch_loss(params, batch))
    assert abs(float(loss(changed, adapt(batch))) - ours) > 1e-5 * abs(ours)
    run = bench_sgd.hand_written(build, data, float(sim.numbers().dt), 20, 10)
    final, records = run(params, jax.random.PRNGKey(0))
    assert all(bool(jax.numpy.all(jax.numpy.isfinite(v))) for v in jax.tree.leaves((final, records)))
    # Drawing ahead trains on the same minibatches (to float32 rounding of the batched draws).
    ahead = bench_sgd.hand_written(build, data, float(sim.numbers().dt), 20, 10, ahead=True)(
        params, jax.random.PRNGKey(0)
    )[0]
    for k in final:
        np.testing.assert_allclose(ahead[k], final[k], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def bench_quotient():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
        mp.setenv("PJRT_NPROC", "1")
        spec = importlib.util.spec_from_file_location("bench_quotient", ROOT / "benchmarks" / "bench_quotient.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def test_quotient_benchmark_runs_the_same_model_both_ways(bench_quotient):
    sims = bench_quotient.simulations(8, 40)
    q, s = sims["quotient"], sims["sde"]
    assert (q.plan.dynamics, s.plan.dynamics) == ("quotient", "sde")
    # Same noise, numbers, records and start on the slice: only the dynamics differ.
    assert q.numbers().as_dict() == s.numbers().as_dict() and q.plan.noise == s.plan.noise == "projected"
    assert s.plan.start == "slice"
    np.testing.assert_allclose(q.initial_state().theta, s.initial_state().theta, rtol=1e-6)
    m = bench_quotient.measure(8, 40, 1, sims)
    assert set(m["mean"]) == {"quotient", "sde"} and m["mean"]["quotient"].shape == (5,)
    assert np.isfinite(m["ratio"]) and m["ratio"] > 0 and np.all(np.isfinite(m["z"]))
