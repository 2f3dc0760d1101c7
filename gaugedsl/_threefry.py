"""JAX's threefry hash lowered on CPU as straight-line code, not as a five-iteration loop.

JAX lowers `threefry2x32` on CPU with rolled loops, a choice made for the compile times of
XLA's old CPU runtime. Under the thunk runtime every iteration of that loop is several kernel
launches, and every random draw (`fold_in`, `split`, `normal`, `bernoulli`) goes through it:
for the paper's attention experiment (E2) that was a third of each SGD step. Upstream JAX has
made the same switch (jax-ml/jax#37872, "threefry2x32: use unrolled loops in CPU lowering",
which also measured shorter compiles); this backports it to the JAX versions we support.

Only how XLA runs the hash changes: the hash, and so every random number, is the same bit
for bit (`tests/test_threefry.py` checks the Random123 known answers and draws against the
rolled lowering).
"""

from __future__ import annotations

from functools import partial


def _threefry_module():
    """The private module that defines the primitive and its lowering, wherever this JAX
    version keeps it; None if it has moved or changed shape (then nothing is changed)."""
    try:
        from jax._src.random import threefry2x32 as module
    except ImportError:
        try:
            from jax._src import prng as module
        except ImportError:
            return None
    if not (hasattr(module, "threefry2x32_p") and hasattr(module, "_threefry2x32_lowering")):
        return None
    return module


def unroll_threefry_on_cpu() -> bool:
    """Register the straight-line lowering for CPU; True if it is in place."""
    module = _threefry_module()
    if module is None:
        return False
    try:
        from jax._src.interpreters import mlir

        rule = mlir.lower_fun(partial(module._threefry2x32_lowering, use_rolled_loops=False), multiple_results=True)
        mlir.register_lowering(module.threefry2x32_p, rule, platform="cpu")
    except (ImportError, AttributeError, TypeError):
        return False
    return True
