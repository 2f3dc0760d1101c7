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

The switch touches JAX internals, so it is gated on finding them as they are (`support`): where
this JAX has no CPU rule of its own (upstream's change released) it does nothing, and where the
internals have moved it does nothing either, and `tests/test_threefry.py` fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import types
from functools import partial

import jax


@dataclasses.dataclass(frozen=True)
class Support:
    """What this JAX does with threefry on CPU, and so what the switch does.

    - `"patch"`: JAX has a CPU rule of its own (the rolled loop) and the straight-line lowering
      beside it: the switch installs the latter while its block runs.
    - `"native"`: JAX has no CPU rule of its own, so every CPU program already gets its default,
      straight-line lowering (upstream jax-ml/jax#37872): the switch changes nothing.
    - `"moved"`: the internals are not where or what this module expects: the switch changes
      nothing (the same numbers, drawn as fast as JAX draws them), and `tests/test_threefry.py`
      fails, so that this is noticed here and not as a slow-down in users' runs.
    """

    kind: str
    why: str
    module: types.ModuleType | None = None  # where threefry2x32_p lives (for patch and native)


def support() -> Support:
    where = f"JAX {jax.__version__}"
    try:
        from jax._src.interpreters import mlir
    except ImportError:
        return Support("moved", f"{where} has no jax._src.interpreters.mlir")
    module = None
    for name in ("jax._src.random.threefry2x32", "jax._src.prng"):  # this JAX, older ones
        with contextlib.suppress(ImportError):
            module = importlib.import_module(name)
            if hasattr(module, "threefry2x32_p"):
                break
            module = None
    if module is None:
        return Support(
            "moved", f"{where} defines threefry2x32_p in neither jax._src.random.threefry2x32 nor jax._src.prng"
        )
    lowering = getattr(module, "_threefry2x32_lowering", None)
    try:
        takes_switch = lowering is not None and "use_rolled_loops" in inspect.signature(lowering).parameters
    except (TypeError, ValueError):
        takes_switch = False
    tables = getattr(mlir, "_platform_specific_lowerings", None)
    if not takes_switch or not hasattr(mlir, "lower_fun") or not isinstance(tables, dict):
        return Support(
            "moved", f"{where}: no _threefry2x32_lowering(use_rolled_loops=...) or no per-platform lowering table"
        )
    if module.threefry2x32_p not in tables.get("cpu", {}):
        return Support("native", f"{where} has no CPU rule of its own: its default (straight-line) applies", module)
    return Support("patch", f"{where} lowers threefry2x32 on CPU with a rule of its own (rolled loops)", module)


@contextlib.contextmanager
def straight_line_threefry():
    """Within the block, CPU programs lowered (traced and compiled for the first time) hash
    with straight-line code; the lowering JAX had is restored after it. Yields whether the
    straight-line lowering is in effect (see `support`)."""
    found = support()
    if found.kind != "patch":
        yield found.kind == "native"
        return
    from jax._src.interpreters import mlir

    module = found.module
    assert module is not None  # support() found it
    table = mlir._platform_specific_lowerings["cpu"]
    previous = table[module.threefry2x32_p]
    rule = mlir.lower_fun(partial(module._threefry2x32_lowering, use_rolled_loops=False), multiple_results=True)
    mlir.register_lowering(module.threefry2x32_p, rule, platform="cpu")
    try:
        yield True
    finally:
        table[module.threefry2x32_p] = previous
