"""The straight-line threefry lowering (gaugedsl/_threefry.py): the same hash as JAX's own, so
the same random numbers, without the rolled loop — inside its block only."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from gaugedsl._threefry import straight_line_threefry, support

# Random123's known answers for threefry2x32 with 20 rounds: (key, counter) -> output.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def _draws(key):
    """Draws of every kind the discrete maps make, in float32 and float64."""
    k = jax.random.fold_in(key, 12345)
    a, b, c = jax.random.split(k, 3)
    return (
        jax.random.normal(a, (16, 8, 16), jnp.float32),
        jax.random.normal(b, (7,), jnp.float64),
        jax.random.bernoulli(c, 0.2, (20, 20)),
        jax.random.choice(c, 50, (8,), replace=False),
    )


def _has_loop(fn, *args) -> bool:
    return "while" in jax.jit(fn).lower(*args).compile().as_text()


def test_this_jax_keeps_the_internals_the_switch_needs():
    """Loud on purpose: where JAX's internals move, the switch silently does nothing (the same
    numbers, E2's SGD steps ~4x slower); this test is where that shows."""
    found = support()
    assert found.kind in ("patch", "native"), f"gaugedsl/_threefry.py must follow JAX: {found.why}"


def test_known_answers_under_jit():
    with straight_line_threefry() as active:
        assert active
        hash_ = jax.jit(threefry_2x32)
        for key, count, expected in KNOWN_ANSWERS:
            out = hash_(np.array(key, np.uint32), np.array(count, np.uint32))
            assert tuple(int(x) for x in out) == expected
        # Vectorized: the three counters hashed at once, one key each.
        keys = np.array([k for k, _, _ in KNOWN_ANSWERS], np.uint32).T
        counts = np.array([c for _, c, _ in KNOWN_ANSWERS], np.uint32).T
        out = jax.jit(jax.vmap(threefry_2x32, in_axes=(1, 1), out_axes=1))(keys, counts)
    assert np.array_equal(np.asarray(out).T, np.array([e for _, _, e in KNOWN_ANSWERS], np.uint32))


def test_straight_line_inside_the_block_and_jax_own_lowering_after_it():
    key = jax.random.PRNGKey(0)
    with straight_line_threefry():
        assert not _has_loop(lambda k: jax.random.normal(k, (64,)), key)
    # A fresh function lowered after the block gets JAX's own lowering back: rolled on CPU
    # exactly where `support` says JAX has a (rolled) CPU rule of its own.
    assert _has_loop(lambda k: jax.random.normal(k, (65,)), key) == (support().kind == "patch")


def _cpu_rules():
    from jax._src.interpreters import mlir

    return mlir._platform_specific_lowerings["cpu"]


def test_where_jax_already_lowers_straight_line_the_switch_changes_nothing(monkeypatch):
    module = support().module
    monkeypatch.delitem(_cpu_rules(), module.threefry2x32_p)  # as JAX with jax-ml/jax#37872
    assert support().kind == "native"
    before = dict(_cpu_rules())
    with straight_line_threefry() as active:
        assert active and _cpu_rules() == before
    assert _cpu_rules() == before


def test_where_the_internals_moved_the_switch_changes_nothing(monkeypatch):
    real = support()
    monkeypatch.setattr(real.module, "_threefry2x32_lowering", lambda k1, k2, x1, x2: None)
    found = support()
    assert found.kind == "moved" and "use_rolled_loops" in found.why
    before = dict(_cpu_rules())
    with straight_line_threefry() as active:
        assert not active and _cpu_rules() == before
        # JAX's own lowering: rolled where JAX has a CPU rule of its own.
        assert _has_loop(lambda k: jax.random.normal(k, (66,)), jax.random.PRNGKey(0)) == (real.kind == "patch")


def test_draws_are_the_same_bits_as_with_jax_own_lowering():
    key = jax.random.PRNGKey(2026)
    rolled = jax.jit(lambda k: _draws(k))(key)
    with straight_line_threefry():
        straight = jax.jit(lambda k: _draws(k))(key)
    for a, b in zip(rolled, straight):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_an_sgd_run_gives_the_same_numbers_with_either_lowering():
    """The SGD map is compiled with the straight-line hash; compiled with JAX's own it must
    give the same trajectory and records, bit for bit (E1: streamed inputs, a teacher)."""
    import contextlib
    from pathlib import Path

    from gaugedsl.check import check_file
    from gaugedsl.dynamics import Simulation

    model = check_file(Path(__file__).resolve().parents[1] / "examples" / "e1_relu.gauge")
    straight = Simulation(model, particles=2, steps=300, chunk=100)
    assert straight._lowering is straight_line_threefry
    rolled = Simulation(model, particles=2, steps=300, chunk=100)
    rolled._lowering = contextlib.nullcontext
    a, b = straight.run(), rolled.run()
    assert np.array_equal(a.theta, b.theta)
    for label in a.records:
        assert np.array_equal(a.records[label], b.records[label], equal_nan=True), label
