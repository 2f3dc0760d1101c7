"""The checks `gaugedsl run` makes before it builds a simulation: the same as `gaugedsl bias`.

The symmetry checks (E901, E904, W903: `checks.symmetry_violations`) run in float64 whatever
the run's precision, on the same random points as `bias`, so that both commands report the
same diagnostics with the same numbers. E902 is checked at the initial points the run itself
draws: the first few particles' (their keys, initializers and precision are the run's; each
particle's draw does not depend on the number of particles), projected onto the gauge slice
where the run starts there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import ir
from .._jax_config import x64_enabled
from .._threefry import straight_line_threefry
from ..diagnostics import Diagnostic, GaugeError
from ..lowering import Lowered
from .checks import degeneracy_at, symmetry_violations
from .engine import Geometry

# Initial points checked for E902: the first particles' (a degenerate start comes from an
# initializer, e.g. zeros, and is then the same for every particle).
CHECKED_PARTICLES = 16


def run_checks(model: ir.Model, **overrides) -> list[Diagnostic]:
    """Raises `GaugeError` with the errors `gaugedsl bias` would raise for `model` (E901, E904,
    then E902 at the run's initial points); returns its warnings (W903). A model without
    symmetries passes at no cost. `overrides` are the run block's (`particles`, `seed`, ...,
    as `dynamics.resolve` takes them)."""
    if not model.symmetries:
        return []
    from ..dynamics.ensemble import _particle_keys
    from ..dynamics.plan import resolve

    plan = resolve(model, **overrides)
    in_x64 = x64_enabled()  # then the run's own lowering is the float64 one
    with straight_line_threefry():  # one-off programs: compiled faster, the same numbers
        keys, _ = _particle_keys(jnp.asarray(plan.seed, jnp.uint32), min(plan.particles, CHECKED_PARTICLES))
        own = Lowered(model, seed=0)  # in the run's precision, as the simulation draws
        starts = np.asarray(jax.jit(jax.vmap(lambda k: own.layout.flatten(own.init_params(k))))(keys), np.float64)
        with jax.enable_x64(True):
            geo = Geometry(own if in_x64 else Lowered(model, seed=0))  # float64 data either way
            problems = symmetry_violations(geo)
            if any(d.severity == "error" for d in problems):
                raise GaugeError(problems)
            thetas = jnp.asarray(starts)
            if plan.start == "slice":
                thetas = jax.vmap(geo.project_to_slice)(thetas)
            where = "at the initial point" if plan.start != "slice" else "at the slice point"
            # A start that is not finite is the simulation's to report (E806), not a Gram's.
            finite = np.flatnonzero(np.all(np.isfinite(np.asarray(thetas)), axis=1))
            bad = degeneracy_at(geo, thetas[finite], where, [f"particle {i}" for i in finite]) if finite.size else []
    if bad:
        raise GaugeError(problems + bad)
    return problems
