"""The Lie algebra of linear symmetries of a model, found numerically.

A linear field ξ(θ) = Σ_j c_j ξ_j(θ) (`candidates.py`) is an infinitesimal symmetry when it moves
nothing the model computes: `Jφ(θ) ξ(θ) = 0` for the model's outputs φ (its predictors, or its
per-sample losses on a probe set when it declares none, and always its loss) at every θ, and ξ is
tangent to every parameter's manifold. We stack these linear conditions on c over `points` generic
points and take the null space by SVD.

Two normalisations make the rank decision scale-aware. The candidate fields are first replaced by
an orthonormal basis of the fields they produce over the sample points (the SVD of the stacked
fields, which also removes combinations that vanish identically — the families overlap); each
point's Jacobian is divided by its spectral norm. The singular values of the stacked conditions
then lie in [0, 1]; a direction is a symmetry when its singular value is below `tolerance`
(√ε of the computation's precision) and the ratio of the smallest value above it to the largest
below it — the gap — is reported: a small gap (under 10³) means the decision is fragile.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..lowering import Lowered
from .candidates import Candidates

PROBE = 64  # per-sample losses evaluated when the model declares no predictor (at least D + 16)
MAX_POINTS = 1024
_FIELD_FLOOR = 1e-12
_DERIVATIVE_ABOVE = 64  # points beyond which the conditions' derivatives are added (see discover_algebra)
_REFINE = 1e-5  # singular values below this are recomputed by an SVD (`_small_singular`)
_BATCH = 16  # points whose fields are computed at once (memory: 16·D·C numbers)


@dataclasses.dataclass
class Algebra:
    """What the discovery found.

    - `coefficients`: (C, k), a basis of the algebra in the candidates' coefficients.
    - `fields`: (points, D, k), its fields at the sample points.
    - `singular_values`: of the stacked conditions, ascending; `tolerance`, `gap` as above.
    - `fiber_dimension`: dimension of the set of parameters with the same outputs, at generic
      points: the tangent dimension minus the rank of the Jacobian there.
    - `orbit_dimension`: the rank of the found fields at generic points (≤ k).
    """

    candidates: Candidates
    thetas: np.ndarray
    coefficients: np.ndarray
    fields: np.ndarray
    singular_values: np.ndarray
    tolerance: float
    gap: float
    fiber_dimension: int
    orbit_dimension: int
    tangent_dimension: int
    outputs: str
    witness_fields: np.ndarray  # (points, D, C): every candidate's field at the sample points
    determined: bool = True  # more conditions than unknowns: the dimension is not an upper bound
    derivatives: bool = False  # the conditions' derivatives were added (few outputs)

    @property
    def dimension(self) -> int:
        return int(self.coefficients.shape[1])

    def contains(self, coefficients: np.ndarray, atol: float = 1e-6) -> bool:
        """Whether the fields of these coefficients (C, j) lie in the algebra's fields at every
        sample point (relative residual below `atol`)."""
        return residual(self.fields, self.candidate_fields(coefficients)) <= atol

    def candidate_fields(self, coefficients: np.ndarray) -> np.ndarray:
        """(points, D, j): the fields of coefficient vectors at the sample points."""
        return self.witness_fields @ coefficients


def residual(basis: np.ndarray, fields: np.ndarray) -> float:
    """Relative size of what `fields` (points, D, j) keep outside the span of `basis` (points, D, k)
    when one coefficient vector is used at every point (the span of linear fields, not pointwise)."""
    b = basis.reshape(basis.shape[0] * basis.shape[1], basis.shape[2])
    f = fields.reshape(fields.shape[0] * fields.shape[1], fields.shape[2])
    if f.size == 0 or not np.any(f):
        return 0.0
    if b.shape[1] == 0:
        return 1.0
    q, _ = np.linalg.qr(b)
    rest = f - q @ (q.T @ f)
    return float(np.linalg.norm(rest) / np.linalg.norm(f))


def outputs_function(lowered: Lowered, probe: int = PROBE):
    """θ ↦ what the model computes that a symmetry must keep, and its description."""
    model, layout = lowered.model, lowered.layout
    key = jax.random.PRNGKey(0)
    loss_of = lambda params: jnp.reshape(lowered.loss(params, key), (1,))  # noqa: E731
    if model.predictors:
        what = "the predictors " + ", ".join(p.name for p in model.predictors) + " and the loss"

        def outputs(theta):
            params = layout.unflatten(theta)
            values = [jnp.ravel(v) for v in lowered.predictors(params).values()]
            return jnp.concatenate([*values, loss_of(params)])

        return outputs, what
    ps = model.loss.per_sample if model.loss is not None else None
    if ps is None:
        return (lambda theta: loss_of(layout.unflatten(theta))), "the loss"
    probe = max(probe, layout.dimension + 16)
    if ps.size is not None:
        batch = lowered.samples(jnp.arange(min(probe, ps.size)))
        if lowered.has_streams:
            batch = {**lowered.draw_streams(key, min(probe, ps.size)), **batch}
        what = f"the per-sample losses of {min(probe, ps.size)} samples and the loss"
    else:
        batch = lowered.stream_samples(key, probe)
        what = f"the per-sample losses of {probe} stream draws and the loss"

    def per_sample(theta):
        params = layout.unflatten(theta)
        losses = jax.vmap(lambda s: lowered.sample_loss(params, s))(batch)
        return jnp.concatenate([jnp.ravel(losses), loss_of(params)])

    return per_sample, what


def discover_algebra(lowered: Lowered, witnesses: int = 6, seed: int = 0, max_points: int = MAX_POINTS) -> Algebra:
    """The linear symmetries of `lowered`'s model (computed in the precision JAX runs in: use
    64-bit mode for a clean rank decision).

    Each point contributes one condition per output, so the points are as many as the unknowns
    need, with a margin: `1.5 C / n + 4` for C candidate coefficients and n outputs (at most
    `max_points`; fewer would leave spurious directions in the null space, and `Algebra.determined`
    says so). Where that would take more than `_DERIVATIVE_ABOVE` points (few outputs: a model
    read through its scalar loss), each point also contributes the derivative of its conditions
    along the manifold: `Jφ(θ) ξ(θ) = 0` holds for every θ, so its derivative does too, n·D more
    conditions per point. The fields are kept at the first `witnesses` points only."""
    from ..dynamics.manifolds import Constraint

    layout = lowered.layout
    cands = Candidates(layout)
    outputs, what = outputs_function(lowered)
    constraint = Constraint(lowered.model, layout)
    dtype = jnp.zeros(()).dtype
    n_out = int(jax.eval_shape(outputs, jax.ShapeDtypeStruct((layout.dimension,), dtype)).shape[0])
    needed = int(np.ceil(1.5 * cands.size / max(n_out, 1))) + 4
    derivative = needed > _DERIVATIVE_ABOVE
    if derivative:
        needed = int(np.ceil(1.5 * cands.size / (n_out * (layout.dimension + 1)))) + 4
    points = min(max(witnesses, needed), max_points)
    thetas = jnp.asarray(generic_points(lowered, constraint, points, seed), dtype)
    eye = jnp.eye(layout.dimension, dtype=thetas.dtype)

    @jax.jit
    @jax.vmap
    def at(theta):
        v = cands.fields(theta)  # (D, C)
        jac = jax.jacfwd(outputs)(theta)  # (n, D)
        tangent = jax.vmap(lambda e: constraint.tangent(theta, e), out_axes=1)(eye)  # (D, D): P_T
        if not derivative:
            return v, jac, tangent, jnp.zeros((0, cands.size), theta.dtype)
        # ∂_θ (Jφ(θ) V(θ)) along the manifold: (n, C, D) @ P_T, as rows (n·D, C)
        moved = jax.jacfwd(lambda t: jax.jacfwd(outputs)(t) @ cands.fields(t))(theta) @ tangent
        return v, jac, tangent, jnp.transpose(moved, (0, 2, 1)).reshape(-1, cands.size)

    def batches():
        for start in range(0, points, _BATCH):
            yield (np.asarray(x, np.float64) for x in at(thetas[start : start + _BATCH]))

    eps = float(np.finfo(np.asarray(thetas).dtype).eps)
    tol = float(np.sqrt(eps))

    # 1. An orthonormal basis of the fields the candidates produce over the points: from the Gram
    #    matrix of the stacked fields (its eigenvalues are the squared singular values).
    gram = np.zeros((cands.size, cands.size))
    for vs, _, _, _ in batches():
        flat = vs.reshape(-1, cands.size)
        gram += flat.T @ flat
    lam, vecs = np.linalg.eigh(gram)
    # eigh resolves the eigenvalues to ε·λ_max, so a combination whose field vanishes identically
    # shows λ ≈ 10⁻¹⁶ λ_max: keep λ > 10⁻¹² λ_max (fields above 10⁻⁶ of the largest; the points are
    # at the model's own scale, where the candidates' fields differ by a few decades at most)
    keep = lam > _FIELD_FLOOR * lam[-1] if lam.size and lam[-1] > 0 else np.zeros(0, bool)
    to_unit = vecs[:, keep] / np.sqrt(lam[keep])  # (C, r): coefficients of unit fields

    # 2. The conditions: outputs unchanged (each point's Jacobian at unit spectral norm), the field
    #    tangent to each manifold.
    rows, ranks, witness = [], [], []
    constrained = bool(constraint.blocks)
    for vs, jacs, tangents, derivatives in batches():
        for v, jac, tangent, slope in zip(vs, jacs, tangents, derivatives):
            sv = np.linalg.svd(jac @ tangent if constrained else jac, compute_uv=False)
            ranks.append(int(np.sum(sv > tol * sv[0])) if sv.size and sv[0] > 0 else 0)
            rows.append(((jac / sv[0] if sv.size and sv[0] > 0 else jac) @ v) @ to_unit)
            if constrained:
                u = v @ to_unit
                rows.append(u - tangent @ u)
            if slope.size:
                size = np.linalg.norm(slope)
                rows.append((slope / size if size > 0 else slope) @ to_unit)
            if len(witness) < witnesses:
                witness.append((v, tangent))
    conditions = np.concatenate(rows, axis=0)
    sigma, null_vectors = _small_singular(conditions, tol)
    null = sigma <= tol
    below, above = sigma[null], sigma[~null]
    gap = float((above.min() if above.size else np.inf) / max(below.max() if below.size else 0.0, eps))
    coefficients = to_unit @ null_vectors[:, null]  # (C, k)
    unit_fields = np.stack([v for v, _ in witness])
    fields = unit_fields @ coefficients
    tangent_dim = int(round(float(np.trace(witness[0][1]))))
    orbit = max((_rank(f, tol) for f in fields), default=0) if coefficients.shape[1] else 0
    return Algebra(
        cands, np.asarray(thetas[:witnesses]), coefficients, fields, np.sort(sigma), tol, gap,
        tangent_dim - max(ranks), orbit, tangent_dim, what, unit_fields,
        determined=conditions.shape[0] >= to_unit.shape[1] + 8, derivatives=derivative,
    )  # fmt: skip


def generic_points(lowered: Lowered, constraint, points: int, seed: int) -> np.ndarray:
    """(points, D): the initializers' draw (one, eager: nothing to compile), perturbed per block by
    N(0, (0.5 + its std)²) to be generic at the model's own scale (initializers may be tiny or
    special, zeros or orthonormal); blocks on a manifold are its random points instead."""
    layout = lowered.layout
    rng = np.random.default_rng(seed)
    start = np.asarray(layout.flatten(lowered.init_params(jax.random.PRNGKey(seed))), np.float64)
    thetas = np.empty((points, layout.dimension))
    for name in layout.names:
        block = layout.slice_of(name)
        centre = start[block]
        thetas[:, block] = centre + rng.normal(size=(points, centre.size)) * (0.5 + centre.std())
    for b in constraint.blocks:
        thetas[:, b.offset : b.offset + b.size] = [b.manifold.random_point(b.shape, rng).ravel() for _ in range(points)]
    return thetas


def _small_singular(m: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """The singular values of `m` (rows ≫ columns) and their right singular vectors, exact where
    it matters: the Gram matrix mᵀm (one matrix product, far cheaper than the SVD of m) gives every
    singular value above 10⁻⁵ to many digits, but resolves the small ones only to √ε·σ_max — the
    tolerance itself — so the subspace where mᵀm's eigenvalues are below (10⁻⁵)² is handed to an SVD
    of m restricted to it, which resolves them to ε."""
    if m.shape[0] <= m.shape[1] or m.shape[1] <= 64:  # small, or underdetermined: the plain SVD
        _, sv, vt = np.linalg.svd(m, full_matrices=m.shape[0] < m.shape[1])
        values = np.zeros(m.shape[1])
        values[: sv.size] = sv[: m.shape[1]]
        return values, vt.T
    lam, q = np.linalg.eigh(m.T @ m)
    small = lam <= _REFINE**2
    _, sv, vt = np.linalg.svd(m @ q[:, small], full_matrices=False)
    values = np.concatenate([sv, np.sqrt(lam[~small])])
    vectors = np.concatenate([q[:, small] @ vt.T, q[:, ~small]], axis=1)
    return values, vectors


def _rank(m: np.ndarray, tol: float) -> int:
    sv = np.linalg.svd(m, compute_uv=False)
    return int(np.sum(sv > tol * sv[0])) if sv.size and sv[0] > 0 else 0
