"""The straight-line threefry lowering (gaugedsl/_threefry.py): the same hash as JAX's own, so
the same random numbers, without the rolled loop on CPU."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

import gaugedsl.lowering  # noqa: F401 — installs the lowering
from gaugedsl._threefry import unroll_threefry_on_cpu

# Random123's known answers for threefry2x32 with 20 rounds: (key, counter) -> output.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]

# Draws of every kind the dynamics makes (fold_in, split, normal, bernoulli, uniform), in
# float32 and float64; printed as raw bytes so that equality is bit for bit.
DRAWS = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
if sys.argv[1] == "unrolled":
    from gaugedsl._threefry import unroll_threefry_on_cpu
    assert unroll_threefry_on_cpu()

@jax.jit
def draws(key):
    k = jax.random.fold_in(key, 12345)
    a, b, c = jax.random.split(k, 3)
    return (jax.random.normal(a, (16, 8, 16), jnp.float32), jax.random.normal(b, (7,), jnp.float64),
            jax.random.bernoulli(c, 0.2, (20, 20)).astype(jnp.uint8), jax.random.uniform(k, (5, 3)))

out = draws(jax.random.PRNGKey(2026))
print(json.dumps([np.asarray(x).tobytes().hex() for x in out]))
"""


def test_known_answers_under_jit():
    hash_ = jax.jit(threefry_2x32)
    for key, count, expected in KNOWN_ANSWERS:
        out = hash_(np.array(key, np.uint32), np.array(count, np.uint32))
        assert tuple(int(x) for x in out) == expected
    # Vectorized: the three counters hashed at once under one key each.
    keys = np.array([k for k, _, _ in KNOWN_ANSWERS], np.uint32).T
    counts = np.array([c for _, c, _ in KNOWN_ANSWERS], np.uint32).T
    out = jax.jit(jax.vmap(threefry_2x32, in_axes=(1, 1), out_axes=1))(keys, counts)
    assert np.array_equal(np.asarray(out).T, np.array([e for _, _, e in KNOWN_ANSWERS], np.uint32))


def test_the_lowering_is_in_place_and_has_no_loop():
    assert unroll_threefry_on_cpu()
    hlo = jax.jit(lambda k: jax.random.normal(k, (64,))).lower(jax.random.PRNGKey(0)).compile().as_text()
    assert "while" not in hlo


def test_draws_are_the_same_bits_as_with_the_rolled_lowering():
    def run(which):
        done = subprocess.run([sys.executable, "-c", DRAWS, which], capture_output=True, text=True, timeout=120, env={"JAX_PLATFORMS": "cpu", "PATH": ""})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run("unrolled") == run("rolled")
