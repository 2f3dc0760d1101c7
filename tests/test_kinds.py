"""The registries of groups, manifolds, noise models and solvers (gaugedsl/kinds/).

Every registered kind goes through check → geometry → dynamics → report on a small model, so a
kind that a stage does not handle fails here; and a toy group, a toy manifold, a toy noise model
and a toy solver, added by one `register` call each, work everywhere without touching anything
else.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

import gaugedsl
from gaugedsl import kinds
from gaugedsl.diagnostics import GaugeError
from gaugedsl.dynamics.manifolds import Constraint
from gaugedsl.dynamics.noise import AbstractNoise
from gaugedsl.kinds import GROUPS, MANIFOLDS, NOISES, SOLVERS, SolverKind
from gaugedsl.kinds.groups import GroupKind
from gaugedsl.kinds.manifolds import ManifoldKind
from gaugedsl.kinds.noises import NoiseKind
from gaugedsl.kinds.setting import Setting
from gaugedsl.lowering import Lowered

jax.config.update("jax_enable_x64", True)

RUN = """
noise {noise}
run {{
  dynamics = sde
  particles = 4
  dt = 1e-2
  steps = 20
  record every 10: {record}
}}
"""

VECTORS = """model walk
data {{
  X : R[5, 3] = normal(0, 1, seed = 0)
  y : R[5]    = X @ normal(0, 1, [3], seed = 1)
}}
param a : {a_type} = {a_init}
param b : R[3] = normal(0, 1)
predictor w = {predictor}
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry s : {group} {{ {actions} }}
"""

MATRICES = """model walk
data {{
  M : R[4, 3] = normal(0, 1, seed = 0)
}}
param U : R[4, 2] = normal(0, 1)
param V : R[3, 2] = normal(0, 1)
predictor W = U @ V.T
loss = mean((W - M)^2)
symmetry s : {group} {{ {actions} }}
"""

CURVED = """model walk
data {{
  M : R[3, 3] = normal(0, 1, seed = 0)
}}
param Q : {q_type} = {q_init}
let P = {projector}
loss = -sum(P * M)
symmetry s : {group} {{ {actions} }}
"""

SPHERE = """model walk
param Q : Sphere[3] = normalize(ones(shape = [3]))
param z : R[3] = normal(0, 1)
loss = (dot(Q, z) - 1)^2 + 0.1 * sum(z^2)
symmetry s : SO[3] { Q -> g @ Q  z -> g @ z }
"""

# one small model per kind; a kind registered without an entry here fails the completeness test
GROUP_WALKS = {
    "Scale": VECTORS.format(
        a_type="R[3]", a_init="normal(0, 1)", predictor="a * b", group="Scale[3]", actions="a -> g * a  b -> b / g"
    ),  # fmt: skip
    "Translate": VECTORS.format(
        a_type="R[3]", a_init="normal(0, 1)", predictor="a - b", group="Translate[3]", actions="a -> a + g  b -> b + g"
    ),  # fmt: skip
    "Diag": MATRICES.format(group="Diag[2]", actions="U -> U @ g  V -> V @ inv(g)"),
    "GL": MATRICES.format(group="GL[2]", actions="U -> U @ g  V -> V @ inv(g).T"),
    "O": MATRICES.format(group="O[2]", actions="U -> U @ g  V -> V @ g"),
    "SO": MATRICES.format(group="SO[2]", actions="U -> U @ g  V -> V @ g"),
}
MANIFOLD_WALKS = {
    "R": GROUP_WALKS["Scale"],
    "Positive": VECTORS.format(
        a_type="Positive[3]",
        a_init="abs(normal(1, 0.1))",
        predictor="a * b",
        group="Scale[3]",
        actions="a -> g * a  b -> b / g",
    ),  # fmt: skip
    "Sphere": SPHERE,
    "Stiefel": CURVED.format(
        q_type="Stiefel[3, 2]", q_init="orthonormal()", projector="Q @ Q.T", group="O[2]", actions="Q -> Q @ g"
    ),  # fmt: skip
}
# each noise model's settings, walked on the Scale model (a per-sample loss, a recorded predictor)
NOISE_WALKS = {
    "isotropic": "isotropic(T = 1e-2)",
    "projected": "projected(T = 1e-2)",
    "sgd": "sgd(lr = 0.1, batch = 2)",
    "label": "label(sigma = 0.1, lr = 0.1)",
}


def walk(program: str, noise: str = "projected(T = 1e-2)"):
    """check → geometry (bias at the start) → dynamics (a short run) → report (its table)."""
    record = "W" if "predictor W" in program else ("w" if "predictor w" in program else "loss")
    model = gaugedsl.load(program + RUN.format(noise=noise, record=record))
    bias = model.bias(law=False)
    result = model.run()
    assert result.table, "the run reported no rows"
    theta = np.asarray(result.result.theta)
    assert np.all(np.isfinite(theta))
    return bias, result, Lowered(model.ir).layout


def test_every_registered_kind_has_a_walk():
    assert set(GROUPS) <= set(GROUP_WALKS), "add a small model for the new group kind to GROUP_WALKS"
    assert set(MANIFOLDS) <= set(MANIFOLD_WALKS), "add a small model for the new manifold kind to MANIFOLD_WALKS"
    assert set(NOISES) <= set(NOISE_WALKS), "add the new noise model's settings to NOISE_WALKS"


# CI budget: O shares SO's class, Diag and GL the matrix-group path SO walks (an action U -> U g on
# matrices), R the Scale walk's program, and the group and manifold walks already run projected and
# isotropic noise; these run under --runslow
_SHARED = {"O", "Diag", "GL", "R", "isotropic", "projected"}


def _walks(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in _SHARED else n for n in sorted(names)]


@pytest.mark.parametrize("name", _walks(GROUP_WALKS))
def test_every_group_walks_through_the_pipeline(name):
    walk(GROUP_WALKS[name])


@pytest.mark.parametrize("name", _walks(MANIFOLD_WALKS))
def test_every_manifold_walks_through_the_pipeline(name):
    _, result, layout = walk(MANIFOLD_WALKS[name], noise="isotropic(T = 1e-2)")
    kind = MANIFOLDS[name]
    param = "Q" if "param Q" in MANIFOLD_WALKS[name] else "a"
    block = np.asarray(result.result.theta)[:, layout.slice_of(param)]
    shape = dict(Sphere=(3,), Stiefel=(3, 2)).get(name, (3,))
    off = [float(kind.violation(jnp.asarray(x.reshape(shape)))) for x in block]
    # on its manifold to float32 rounding (the run's dtype: a few ulps of 1)
    assert max(off) < 1e-5


@pytest.mark.parametrize("name", _walks(NOISE_WALKS))
def test_every_noise_model_walks_through_the_pipeline(name):
    _, result, _ = walk(GROUP_WALKS["Scale"], noise=NOISE_WALKS[name])
    law = next(r for r in result.comparison.rows if r.quantity == "law of w")
    # the law row says what the registry entry says: predicted under a horizontal noise only
    assert (law.why == NOISES[name].why_no_law) != NOISES[name].horizontal


# ---- toy kinds, each added by one `register` call ----


class Rotation2(GroupKind):
    """SO(2) by its angle, with the generator [[0, −1], [1, 0]] of Frobenius norm √2 (O[2]'s
    orthonormal basis element has norm 1): the same orbits, a Gram matrix twice as large."""

    name, doc, min_dims, max_dims = "Rotation2", "rotations of the plane by an angle", 0, 0

    def element_shape(self, dims):
        return (2, 2)

    def algebra_dim(self, dims):
        return 1

    def exp(self, dims, a):
        c, s = jnp.cos(a[0]), jnp.sin(a[0])
        return jnp.stack([jnp.stack([c, -s]), jnp.stack([s, c])])


class Box(ManifoldKind):
    """Arrays with entries in [−1, 1], kept there by reflection at the walls."""

    name, doc = "Box", "arrays with entries in [−1, 1]"
    init_hint = "use an initializer inside [-1, 1], e.g. uniform(-0.5, 0.5)"

    def retract(self, x):
        t = jnp.mod(x + 1.0, 4.0)
        return 1.0 - jnp.abs(t - 2.0)

    def violation(self, x):
        return jnp.max(jnp.maximum(jnp.abs(x) - 1.0, 0.0))

    def random_point(self, shape, rng):
        return rng.uniform(-1.0, 1.0, size=shape)


class GainOperator(AbstractNoise):
    """`sqrt(2T)·gain·dW` on every coordinate, for one step."""

    constraint: Constraint
    dimension: int = eqx.field(static=True)

    @property
    def shape(self):
        return (self.dimension,)

    @property
    def additive(self) -> bool:
        return not self.constraint.projects

    def operator(self, theta, args):
        scale = (jnp.sqrt(2 * args["T"] * args.dt) * args["gain"]).astype(theta.dtype)
        return lx.DiagonalLinearOperator(jnp.full(self.dimension, scale, theta.dtype))


class Gain(NoiseKind):
    """Isotropic noise amplified by a gain: Langevin at the temperature T·gain²."""

    name, doc = "gain", "isotropic noise amplified by a gain: sqrt(2T)·gain·dW"
    settings = (
        Setting("T", "float", "temperature", required=True, positive=True),
        Setting("gain", "float", "amplification of the noise", required=True, positive=True),
    )
    temperature = True
    discrete = "kick"
    why_no_law = "gain noise: a toy without a stated law"
    charge_note = "gain noise: a toy without a stated charge law"

    def diffusion(self, sim):
        return GainOperator(sim.constraint, sim.layout.dimension)


@pytest.fixture
def toy_kinds():
    kinds.register(Rotation2())
    kinds.register(Box())
    kinds.register(Gain())
    yield
    kinds.unregister("Rotation2")
    kinds.unregister("Box")
    kinds.unregister("gain")


def test_a_toy_group_is_one_registry_entry(toy_kinds):
    toy = GROUP_WALKS["O"].replace("O[2]", "Rotation2")
    bias_toy, *_ = walk(toy)
    bias_o = gaugedsl.load(GROUP_WALKS["O"] + RUN.format(noise="projected(T = 1e-2)", record="W")).bias(law=False)
    # same orbits, generator √2 longer: log det G larger by log 2 (one generator), exactly
    toy_logdet, o_logdet = (b.summary["symmetries"][0]["logdet_gram"] for b in (bias_toy, bias_o))
    assert toy_logdet == pytest.approx(o_logdet + np.log(2.0), rel=1e-9, abs=1e-9)


def test_a_toy_manifold_is_one_registry_entry(toy_kinds):
    program = """model toy
data {
  X : R[5, 3] = normal(0, 1, seed = 0)
  y : R[5]    = X @ normal(0, 1, [3], seed = 1)
}
param a : Box[3] = uniform(0.9, 0.99)  # near the wall: noise carries some past it
param b : R[3] = normal(0, 1)
param c : R[3] = normal(0, 1)
predictor w = a + b * c
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry s : Scale[3] { b -> g * b  c -> c / g }
"""
    _, result, _ = walk(program, noise="isotropic(T = 1e-2)")
    a = np.asarray(result.result.theta)[:, :3]
    assert np.all(np.abs(a) <= 1.0)  # reflected at the walls, never outside
    # an initial value off the manifold is refused with the kind's own hint
    bad = program.replace("uniform(0.9, 0.99)", "uniform(2, 3)")
    with pytest.raises(GaugeError) as err:
        gaugedsl.load(bad + RUN.format(noise="isotropic(T = 1e-2)", record="w")).run()
    assert any(d.code == "E807" and "inside [-1, 1]" in d.hint for d in err.value.diagnostics)


def test_a_toy_noise_model_is_one_registry_entry(toy_kinds):
    # Ornstein–Uhlenbeck: dz = −z dt + sqrt(2T)·gain dW. Euler's stationary variance is exactly
    # T·gain²/(1 − dt/2); at t = 10 the start (z = 1) is forgotten to e^−20.
    program = """model toy
param z : R[3] = ones(shape = [3])
loss = 0.5 * sum(z^2)
noise gain(T = 1e-2, gain = 3)
run {
  dynamics = sde
  particles = 2000
  dt = 0.05
  steps = 200
  record every 100: loss
}
"""
    model = gaugedsl.load(program)

    def variance(**override):
        z = np.asarray(model.run(**override).result.theta, np.float64)
        return z.var(), z.size

    for gain in (3.0, 1.0):  # the model's gain, then an override of it: both reach the compiled step
        var, n = variance() if gain == 3.0 else variance(gain=gain)
        expected = 1e-2 * gain**2 / (1 - 0.05 / 2)
        # 6000 near-independent draws: the variance's relative standard error is sqrt(2/n) ≈ 1.8%;
        # 4 standard errors
        assert var == pytest.approx(expected, rel=4 * np.sqrt(2 / n))
    # its settings are checked like any other's, with the kind's own signature in the hint
    with pytest.raises(GaugeError) as err:
        gaugedsl.load(program.replace("gain(T = 1e-2, gain = 3)", "gain(T = 1e-2)"))
    assert any(d.code == "E502" and "noise gain(T = ..., gain = ...)" in d.hint for d in err.value.diagnostics)
    # and the report asks the entry: no law of the predictor under it
    _, result, _ = walk(GROUP_WALKS["Scale"], noise="gain(T = 1e-2, gain = 2)")
    law = next(r for r in result.comparison.rows if r.quantity == "law of w")
    assert law.why == Gain.why_no_law


# ---- solvers ----

OU = """model ou
param z : R[3] = ones(shape = [3])
loss = 0.5 * sum(z^2)
noise isotropic(T = 1e-2)
run {
  dynamics = sde
  solver = SOLVER
  particles = 400
  dt = 0.05
  steps = 200
  record every 100: loss
}
"""


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_every_solver_reaches_the_ou_law(name):
    # Additive noise on flat parameters, which every solver integrates: dz = −z dt + sqrt(2T) dW has
    # the stationary variance T (each scheme's own O(dt) bias at dt = 0.05 is ≤ 2.6%, Euler's
    # T/(1 − dt/2) the largest); 1200 draws give a relative standard error sqrt(2/1200) ≈ 4%: 4
    # standard errors plus that bias.
    z = np.asarray(gaugedsl.load(OU.replace("SOLVER", name)).run().result.theta, np.float64)
    assert z.var() == pytest.approx(1e-2, rel=4 * np.sqrt(2 / z.size) + 0.026)


def test_a_toy_solver_is_one_registry_entry():
    toy = SolverKind("toy_sra", "SRA1 under another name", "SRA1", additive_only=True, levy_area=True)
    kinds.register(toy)
    try:
        z = np.asarray(gaugedsl.load(OU.replace("SOLVER", "toy_sra")).run().result.theta, np.float64)
        assert z.var() == pytest.approx(1e-2, rel=4 * np.sqrt(2 / z.size) + 0.026)
        # projected noise depends on θ: the entry's flags give E810 with its own name
        projected = GROUP_WALKS["Scale"] + RUN.format(noise="projected(T = 1e-2)", record="w")
        with pytest.raises(GaugeError) as err:
            gaugedsl.load(projected.replace("dynamics = sde", "dynamics = sde\n  solver = toy_sra")).run()
        assert any(d.code == "E810" and "toy_sra is for additive noise" in d.message for d in err.value.diagnostics)
    finally:
        kinds.unregister("toy_sra")
    with pytest.raises(GaugeError):  # and once removed, the checker no longer accepts the name
        gaugedsl.load(OU.replace("SOLVER", "toy_sra"))
