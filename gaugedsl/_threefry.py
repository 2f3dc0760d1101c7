"""JAX's threefry hash lowered on CPU as straight-line code, not as a five-iteration loop —
while the discrete SGD/GD maps are compiled, and only then.

JAX lowers `threefry2x32` on CPU with rolled loops. Under XLA's thunk runtime every iteration
of that loop is several kernel launches, and every random draw (`fold_in`, `split`, `normal`,
`bernoulli`) goes through it: in the paper's attention experiment (E2) that was a third of
each SGD step. Upstream JAX has merged the same switch for every CPU program
(jax-ml/jax#37872). We do not make it globally: once the hash is straight-line code, XLA
fuses it into its consumers, and where a consumer slices the draws and concatenates the
halves (the projected noise of a diagonal action, `P_H ξ` on (u, v)) the fused loop runs
3-10 times slower than the loop it replaced (measured on this CPU). The minibatch draws of
the discrete maps are consumed whole; there the straight-line hash is 2-4 times faster.

Only how XLA runs the hash changes: the hash, and so every random number, is the same bit
for bit (`tests/test_threefry.py` checks the Random123 known answers and draws against the
rolled lowering).
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def straight_line_threefry():
    """Within the block, CPU programs lowered (traced and compiled for the first time) hash
    with straight-line code; the lowering JAX had is restored after it. Nothing changes if
    this JAX version keeps its internals elsewhere."""
    module = _threefry_module()
    try:
        from jax._src.interpreters import mlir

        table = mlir._platform_specific_lowerings["cpu"]
        previous = table.get(module.threefry2x32_p)
        rule = mlir.lower_fun(partial(module._threefry2x32_lowering, use_rolled_loops=False), multiple_results=True)
    except (ImportError, AttributeError, TypeError, KeyError):  # module None, or internals moved
        yield False
        return
    mlir.register_lowering(module.threefry2x32_p, rule, platform="cpu")
    try:
        yield True
    finally:
        if previous is None:
            table.pop(module.threefry2x32_p, None)
        else:
            table[module.threefry2x32_p] = previous
