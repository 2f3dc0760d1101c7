"""Whether the stationary law can exist, by the power counting of docs/theory.md §10.

The sampler's drift detector (`sampler.not_normalisable`) sees a divergence only when the chains
run off within their draws; a logarithmic one (the marginal case p = nL) is far too slow for it,
and the table then compares the runs with a law that does not exist. The counting decides it
from the model's structure instead, where its assumptions can be checked numerically:

- one predictor w whose dimension is the quotient's, p = D − k (the slice maps onto w locally);
- w homogeneous of degree L in θ: w(cθ) = c^L w(θ) (products of L factors, `U Vᵀ` with L = 2);
- the loss a function of w alone (replacing w leaves it unchanged at another θ) and quadratic
  in w, with a Hessian H of rank n: its flat directions are ker H, of dimension p − n.

Then along the flat directions the normaliser grows like ∫ ρ^{p − nL − 1} dρ in the θ-scale ρ:
it diverges when p ≥ nL — on a sign branch whose reachable region contains flat directions.
A particle's current sign orthant is part of its branch's region for every depth, and if ker H
meets that open orthant the flat cone there is (p − n)-dimensional, so the counting applies to
that particle's branch (a linear feasibility problem per sign pattern). Where any assumption
fails, or p < nL, nothing is claimed.

A second, wholly structural test (`bounded_loss`) settles the other way a law fails to exist: a
block of parameters that the loss sees only through bounded functions (softmax, tanh, ...), so
that the loss stays bounded however far they go, while the slice over them is a cone of infinite
measure (docs/theory.md §10, "Attention (cones)").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import ir
from ..kinds.manifolds import MANIFOLDS

MAX_DIMENSION = 2000  # the Hessian in w is dense: 2000² float64 = 32 MB


def power_counting(sim, theta_end: np.ndarray) -> str | None:
    """Why the law of `sim`'s model cannot be normalised on the branches of the end states
    `theta_end` (N, D), or None (the counting does not apply, or says finite)."""
    model = sim.model
    if len(model.predictors) != 1:
        return None
    name, shape = model.predictors[0].name, model.predictors[0].shape
    geo, lowered, layout = sim.geo, sim.lowered, sim.layout
    p = geo.dimension - geo.algebra_dim
    if p > MAX_DIMENSION:
        return None  # a dense p × p Hessian; the sampler's own detector still runs
    tol = 1e-9 if jnp.dtype(sim.dtype) == jnp.float64 else 1e-4
    rng = np.random.default_rng(0)
    theta = jnp.asarray(rng.uniform(0.5, 1.5, geo.dimension) * rng.choice([-1.0, 1.0], geo.dimension), sim.dtype)

    def predictor(t):
        return jnp.ravel(lowered.predictors(layout.unflatten(t))[name])

    def loss_of_w(w, at):
        return sim.objective.loss(at, fixed={name: jnp.reshape(w, shape)})

    try:
        degree = _degree(predictor, theta, p, tol)
        hessian = _constant_hessian(loss_of_w, theta, p, rng, tol) if degree else None
    except Exception:  # noqa: BLE001 — a predictor or loss the substitution cannot evaluate: no claim
        return None
    if hessian is None:
        return None
    scale = max(float(np.abs(hessian).max()), 1e-300)
    eig, vec = np.linalg.eigh(0.5 * (hessian + hessian.T))
    if eig.min() < -tol * scale:
        return None  # not convex: the slab picture does not hold
    flat = vec[:, eig <= tol * scale]
    n = p - flat.shape[1]
    if flat.shape[1] == 0 or p < n * degree:
        return None
    w_end = np.asarray(jax.vmap(predictor)(jnp.asarray(theta_end, sim.dtype)), np.float64)
    patterns, counts = np.unique(np.sign(w_end), axis=0, return_counts=True)
    reached = sum(int(c) for signs, c in zip(patterns, counts) if _meets(flat, signs))
    if reached == 0:
        return None
    kind = "logarithmically (p = nL)" if p == n * degree else f"(p − nL = {p - n * degree})"
    return (
        f"the normaliser diverges {kind} by the power counting of docs/theory.md §10: a {p}-dimensional quotient, "
        f"a predictor of degree L = {degree} in θ, a quadratic loss with n = {n} independent constraints, so "
        f"p = {p} ≥ nL = {n * degree}; the loss is flat to infinity in the sign orthants of "
        f"{reached / w_end.shape[0]:.0%} of the particles"
    )


def gibbs_flat(sim) -> str | None:
    """Why the plain Gibbs law exp(−L/T) dw of `sim`'s single predictor (no gauge correction)
    cannot be normalised, or None (it can, or nothing is claimed): a loss of w alone, quadratic,
    whose Hessian in w has a kernel — flat to infinity along it in dw, whatever T. The corrected
    law can still exist there (docs/theory.md §10): the slice's volume decays along those
    directions, which is the bias itself."""
    model = sim.model
    if len(model.predictors) != 1:
        return None
    name, shape = model.predictors[0].name, model.predictors[0].shape
    p = int(np.prod(shape, dtype=int))
    if p > MAX_DIMENSION:
        return None
    tol = 1e-9 if jnp.dtype(sim.dtype) == jnp.float64 else 1e-4
    rng = np.random.default_rng(0)
    theta = jnp.asarray(rng.uniform(0.5, 1.5, sim.geo.dimension), sim.dtype)

    def loss_of_w(w, at):
        return sim.objective.loss(at, fixed={name: jnp.reshape(w, shape)})

    try:
        hessian = _constant_hessian(loss_of_w, theta, p, rng, tol)
    except Exception:  # noqa: BLE001 — a loss the substitution cannot evaluate: no claim
        return None
    if hessian is None:
        return None
    eig = np.linalg.eigvalsh(0.5 * (hessian + hessian.T))
    flat = int(np.sum(eig <= tol * max(float(np.abs(eig).max()), 1e-300)))
    if flat == 0:
        return None
    return (
        f"exp(−L/T) dw has no law here: the loss is quadratic in {name} with {flat} flat direction"
        f"{'s' if flat > 1 else ''} (its Hessian has rank {p - flat} of {p}), along which dw does not decay; "
        "the gauge correction's slice volume is what makes the stationary law exist"
    )


def _degree(predictor, theta, p: int, tol: float) -> int:
    """L with w(2θ) = 2^L w(θ) where w has p components, else 0."""
    w, w2 = np.asarray(predictor(theta), np.float64), np.asarray(predictor(2.0 * theta), np.float64)
    if w.size != p or not np.all(np.isfinite(w)) or not np.any(w):
        return 0
    degree = int(round(float(np.log2(np.median(np.abs(w2[w != 0]) / np.abs(w[w != 0]))))))
    return degree if degree >= 1 and np.allclose(w2, 2.0**degree * w, rtol=tol, atol=tol * 1e-3) else 0


def _constant_hessian(loss_of_w, theta, p: int, rng, tol: float) -> np.ndarray | None:
    """The Hessian of the loss in w, if the loss depends on θ only through w (the same at another
    θ) and is quadratic in w (the same Hessian at two points); else None."""
    probe = jnp.asarray(rng.normal(size=p), theta.dtype)
    other = jnp.asarray(rng.normal(size=theta.shape), theta.dtype)
    a, b = float(loss_of_w(probe, theta)), float(loss_of_w(probe, other))
    if not np.isclose(a, b, rtol=tol, atol=tol * 1e-3):
        return None
    hess = jax.hessian(loss_of_w)
    h1 = np.asarray(hess(probe, theta), np.float64)
    h2 = np.asarray(hess(3.0 * probe + 1.0, theta), np.float64)
    return h1 if np.allclose(h1, h2, atol=tol * max(float(np.abs(h1).max()), 1e-300)) else None


def _meets(flat: np.ndarray, signs: np.ndarray) -> bool:
    """Whether the span of `flat` (p, f) meets the open orthant of `signs` (zeros: a coordinate
    that is 0 at the end, unconstrained): max t with signs ⊙ (flat c) ≥ t, |c| ≤ 1, is > 0."""
    from scipy.optimize import linprog

    rows = signs != 0
    if not rows.any():
        return True
    a = -(signs[rows, None] * flat[rows])  # −s ⊙ (Fc) + t ≤ 0
    f = flat.shape[1]
    a_ub = np.hstack([a, np.ones((a.shape[0], 1))])
    result = linprog(
        c=np.r_[np.zeros(f), -1.0], A_ub=a_ub, b_ub=np.zeros(a.shape[0]), bounds=[(-1, 1)] * f + [(None, 1)]
    )
    return bool(result.status == 0 and -result.fun > 1e-9)


# Functions whose values are bounded whatever their arguments: what the loss sees of a parameter
# only through these stays bounded when the parameter runs off.
BOUNDED_CALLS = frozenset({"softmax", "tanh", "sigmoid", "sin", "cos", "sign", "normalize"})
# Finite on every bounded set (continuous everywhere): bounded arguments give a bounded value.
# A function not listed here or above (log, inv, division by a parameter, ...) makes every
# parameter in its arguments count as unbounded: the test then claims nothing about them.
CONTINUOUS_CALLS = frozenset({
    "exp", "abs", "square", "relu", "softplus", "sum", "mean", "prod", "max", "min", "logsumexp", "norm",
    "maximum", "minimum", "cumsum", "dot", "outer", "det", "trace", "diag", "svdvals", "concat", "reshape",
})  # fmt: skip
CONTINUOUS_OPS = frozenset({"add", "sub", "mul", "matmul", "neg", "transpose"})


def bounded_loss(sim) -> str | None:
    """Why the law of `sim`'s model cannot be normalised because the loss is bounded along a cone
    of infinite measure, or None (nothing is claimed).

    Let B be the parameters that the loss reaches only through `BOUNDED_CALLS` (after inlining
    `let`s and predictors), on a manifold closed under dilation (`R`, `Positive`), whose symmetries
    act on B alone, by linear maps or translations. For fixed values of the other parameters the
    loss is then a continuous function of bounded quantities, so `exp(−L/T) ≥ exp(−sup L/T) > 0` on
    the whole of the slice's B part — a cone (dilations commute with the actions) of dimension
    |B| − k_B ≥ 1 whose measure is homogeneous of non-negative degree: infinite. So is Z, at any T."""
    model = sim.model
    if model.loss is None:
        return None
    definitions = {d.name: d.value for d in (*model.lets, *model.predictors)}
    raw = _unbounded(model.loss.value, definitions, {})
    free = {
        p.name for p in model.params if p.name not in raw and getattr(MANIFOLDS.get(p.manifold.kind), "conic", False)
    }
    touched = {s.name: _touched(s) for s in model.symmetries}
    changed = True
    while changed:  # a symmetry that moves a parameter of B and one outside it: both outside
        changed = False
        for names in touched.values():
            if names & free and not names <= free:
                free -= names
                changed = True
    if not free:
        return None
    acting = [s for s in model.symmetries if touched[s.name] <= free]
    size = sum(int(np.prod(model.param(n).shape, dtype=int)) for n in free)
    quotient = size - sum(s.group.algebra_dim for s in acting)
    if quotient < 1 or not all(_dilation_commutes(sim, s.name) for s in acting):
        return None
    names = ", ".join(p.name for p in model.params if p.name in free)
    through = sorted(_bounded_calls_reaching(model.loss.value, definitions, free)) or ["nothing"]
    return (
        f"the loss sees {names} only through {', '.join(through)}, so it stays bounded however far they go, "
        f"while the slice over them is a {quotient}-dimensional cone of infinite measure: exp(−L/T) does not decay "
        "along it, at any T (docs/theory.md §10)"
    )


def _unbounded(e: ir.Expr, definitions: dict, memo: dict) -> frozenset[str]:
    """The parameters `e` depends on other than through a bounded function (conservatively)."""
    if isinstance(e, ir.Ref):
        if e.kind == "param":
            return frozenset({e.name})
        if e.kind in ("let", "predictor") and e.name in definitions:
            if e.name not in memo:
                memo[e.name] = _unbounded(definitions[e.name], definitions, memo)
            return memo[e.name]
        return frozenset()
    if isinstance(e, ir.Call) and e.func in BOUNDED_CALLS:
        return frozenset()
    inner = [_unbounded(c, definitions, memo) for c in ir.children(e)]
    if isinstance(e, ir.Op) and e.op in ("div", "pow") and _constant(e.args[1], definitions):
        if e.op == "div" or _whole_power(e.args[1]):
            return inner[0]
    safe = (
        isinstance(e, (ir.Stack, ir.Index, ir.Const, ir.Ref))
        or (isinstance(e, ir.Op) and e.op in CONTINUOUS_OPS)
        or (isinstance(e, ir.Call) and e.func in CONTINUOUS_CALLS)
    )
    if safe:
        return frozenset().union(*inner)
    return frozenset().union(*(_parameters(c, definitions) for c in ir.children(e)))


def _parameters(e: ir.Expr, definitions: dict) -> frozenset[str]:
    """Every parameter `e` depends on."""
    found: set[str] = set()
    for node in ir.walk(e):
        if isinstance(node, ir.Ref) and node.kind == "param":
            found.add(node.name)
        elif isinstance(node, ir.Ref) and node.kind in ("let", "predictor") and node.name in definitions:
            found |= _parameters(definitions[node.name], definitions)
    return frozenset(found)


def _constant(e: ir.Expr, definitions: dict) -> bool:
    return not _parameters(e, definitions)


def _whole_power(e: ir.Expr) -> bool:
    """A literal non-negative whole exponent (x^2, not x^-1 or x^0.5)."""
    if not isinstance(e, ir.Const):
        return False
    value = np.asarray(e.value, np.float64)
    return bool(np.all(value >= 0) and np.all(value == np.round(value)))


def _bounded_calls_reaching(e: ir.Expr, definitions: dict, block: set) -> set[str]:
    """The bounded functions through which parameters of `block` reach `e` (for the message)."""
    found: set[str] = set()
    for node in ir.walk(e):
        if isinstance(node, ir.Call) and node.func in BOUNDED_CALLS and _parameters(node, definitions) & block:
            found.add(node.func)
        elif isinstance(node, ir.Ref) and node.kind in ("let", "predictor") and node.name in definitions:
            found |= _bounded_calls_reaching(definitions[node.name], definitions, block)
    return found


def _touched(sym: ir.Symmetry) -> frozenset[str]:
    """The parameters a symmetry moves or reads."""
    names = {a.param for a in sym.actions}
    for action in sym.actions:
        names |= {n.name for n in ir.walk(action.value) if isinstance(n, ir.Ref) and n.kind == "param"}
    return frozenset(names)


def _dilation_commutes(sim, name: str) -> bool:
    """Whether symmetry `name`'s generators are linear (ξ(2θ) = 2ξ(θ)) or constant (translations)
    at a random point: then dilations map orbits to orbits and the slice over its block is a cone."""
    rng = np.random.default_rng(1)
    theta = jnp.asarray(rng.uniform(0.5, 1.5, sim.geo.dimension), sim.dtype)
    try:
        xi, xi2 = (np.asarray(sim.geo.generators_of(name, t), np.float64) for t in (theta, 2.0 * theta))
    except Exception:  # noqa: BLE001 — an action the probe cannot evaluate: no claim
        return False
    tol = 1e-9 if jnp.dtype(sim.dtype) == jnp.float64 else 1e-4
    scale = max(float(np.abs(xi).max()), 1e-300)
    return bool(np.allclose(xi2, 2.0 * xi, atol=tol * scale) or np.allclose(xi2, xi, atol=tol * scale))
