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
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.linalg.lapack
from scipy import sparse

from ..lowering import Lowered
from .candidates import Candidates

PROBE = 64  # per-sample losses evaluated when the model declares no predictor (at least D + 16)
MAX_POINTS = 1024
_FIELD_FLOOR = 1e-12  # pivots of the fields' Gram matrix below this (relative) are combinations that vanish
_DERIVATIVE_ABOVE = 64  # points beyond which the conditions' derivatives are added (see discover_algebra)
_REFINE = 1e-5  # singular values below this are resolved to ε (`_small_singular`)
_MARGIN = 32  # vectors beyond those below the threshold, for the gap and for convergence
_ITERATIONS = 2  # subspace iterations (each shrinks what is not null by 10⁻⁴ or more: see below)
_BATCH = 16  # points whose Jacobians are computed at once
_RANK_POINTS = 3  # points at which the Jacobian's rank (the fiber) is computed


@dataclasses.dataclass
class Algebra:
    """What the discovery found.

    - `coefficients`: (C, k), a basis of the algebra in the candidates' coefficients.
    - `fields`: (points, D, k), its fields at the sample points.
    - `singular_values`: the smallest of the stacked conditions (those the rank decision and its
      gap look at), ascending; `tolerance`, `gap` as above.
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
    witness_fields: list  # per sample point, every candidate's field: a sparse (D, C) matrix
    jacobian: np.ndarray  # (n, D): the outputs' Jacobian at the first point, on the manifold (Jφ P_T)
    determined: bool = True  # more conditions than unknowns: the dimension is not an upper bound
    derivatives: bool = False  # the conditions' derivatives were added (few outputs)
    _basis: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @property
    def dimension(self) -> int:
        return int(self.coefficients.shape[1])

    def contains(self, coefficients: np.ndarray, atol: float = 1e-6) -> bool:
        """Whether the fields of these coefficients (C, j) lie in the algebra's fields at every
        sample point (relative residual below `atol`)."""
        return self.outside(self.candidate_fields(coefficients)) <= atol

    def outside(self, fields: np.ndarray) -> float:
        """`residual(self.fields, fields)`, with the basis factored once per algebra."""
        if self._basis is None:
            b = self.fields.reshape(self.fields.shape[0] * self.fields.shape[1], self.fields.shape[2])
            self._basis = orthonormal_basis(b)
        return residual(self.fields, fields, self._basis)

    def candidate_fields(self, coefficients: np.ndarray) -> np.ndarray:
        """(points, D, j): the fields of coefficient vectors at the sample points."""
        return np.stack([np.asarray(v @ coefficients) for v in self.witness_fields])


def residual(basis: np.ndarray, fields: np.ndarray, q: np.ndarray | None = None) -> float:
    """Relative size of what `fields` (points, D, j) keep outside the span of `basis` (points, D, k)
    when one coefficient vector is used at every point (the span of linear fields, not pointwise).
    `q`: the basis's orthonormal factor, where the caller has it."""
    b = basis.reshape(basis.shape[0] * basis.shape[1], basis.shape[2])
    f = fields.reshape(fields.shape[0] * fields.shape[1], fields.shape[2])
    if f.size == 0 or not np.any(f):
        return 0.0
    if b.shape[1] == 0:
        return 1.0
    q = orthonormal_basis(b) if q is None else q
    rest = f - q @ (q.T @ f)
    return float(np.linalg.norm(rest) / np.linalg.norm(f))


def orthonormal_basis(b: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the columns of a tall `b`, from the eigendecomposition of its Gram
    matrix (10× cheaper than a QR at these shapes; its error, ε·cond(b)², is far below the 10⁻⁶
    the span tests ask for: their bases are fields of orthonormal coefficients, well conditioned);
    directions below 10⁻⁶ of the largest are dropped."""
    if b.shape[1] == 0:
        return b
    lam, v = np.linalg.eigh(b.T @ b)
    keep = lam > 1e-12 * lam[-1] if lam[-1] > 0 else np.zeros(lam.size, bool)
    return b @ (v[:, keep] / np.sqrt(lam[keep]))


def outputs_function(lowered: Lowered, probe: int = PROBE):
    """θ ↦ what the model computes that a symmetry must keep, and its description.

    Random draws (a model's streams) are made once, here, as one compiled program: inside the
    function they would be compiled into every derivative of it, and eager every primitive of the
    generator compiles alone."""
    model, layout = lowered.model, lowered.layout
    key = jax.random.PRNGKey(0)
    draws = jax.jit(lowered.draw_streams, static_argnums=1)
    ps = model.loss.per_sample if model.loss is not None else None

    def loss_function():
        """`lowered.loss(params, key)`, its draws made here (only where it is an output)."""
        if ps is not None and ps.size is not None:
            dataset = lowered.samples()
            dataset = {**draws(key, ps.size), **dataset} if lowered.has_streams else dataset
            return lambda params: lowered.batch_loss(params, dataset)
        if lowered.has_streams:
            stream = jax.jit(lowered.stream_samples, static_argnums=1)(key, 256)
            return lambda params: jnp.mean(jax.vmap(lambda s: lowered.sample_loss(params, s))(stream))
        return lambda params: lowered.sample_loss(params, {})

    if model.predictors:
        loss_of = loss_function()
        what = "the predictors " + ", ".join(p.name for p in model.predictors) + " and the loss"

        def outputs(theta):
            params = layout.unflatten(theta)
            values = [jnp.ravel(v) for v in lowered.predictors(params).values()]
            return jnp.concatenate([*values, jnp.reshape(loss_of(params), (1,))])

        return outputs, what
    if ps is None:
        loss_of = loss_function()
        return (lambda theta: jnp.reshape(loss_of(layout.unflatten(theta)), (1,))), "the loss"
    probe = max(probe, layout.dimension + 16)
    with_loss = ps.size is not None  # a stream's loss is the mean of draws like the probe's: no more
    loss_of = loss_function() if with_loss else None
    if ps.size is not None:
        batch = lowered.samples(jnp.arange(min(probe, ps.size)))
        if lowered.has_streams:
            batch = {**draws(key, min(probe, ps.size)), **batch}
        what = f"the per-sample losses of {min(probe, ps.size)} samples and the loss"
    else:
        batch = jax.jit(lowered.stream_samples, static_argnums=1)(key, probe)
        what = f"the per-sample losses of {probe} stream draws"

    def per_sample(theta):
        params = layout.unflatten(theta)
        losses = jnp.ravel(jax.vmap(lambda s: lowered.sample_loss(params, s))(batch))
        return jnp.concatenate([losses, jnp.reshape(loss_of(params), (1,))]) if loss_of is not None else losses

    return per_sample, what


def discover_algebra(
    lowered: Lowered, witnesses: int = 6, seed: int = 0, max_points: int = MAX_POINTS, outputs=None
) -> Algebra:
    """The linear symmetries of `lowered`'s model (computed in the precision JAX runs in: use
    64-bit mode for a clean rank decision).

    Each point contributes one condition per output, so the points are as many as the unknowns
    need, with a margin: `1.5 C / n + 4` for C candidate coefficients and n outputs (at most
    `max_points`; fewer would leave spurious directions in the null space, and `Algebra.determined`
    says so). Where that would take more than `_DERIVATIVE_ABOVE` points (few outputs: a model
    read through its scalar loss), each point also contributes the derivative of its conditions
    along the manifold: `Jφ(θ) ξ(θ) = 0` holds for every θ, so its derivative does too, n·D more
    conditions per point. The fields are kept at the first `witnesses` points only. `outputs`:
    `outputs_function(lowered)`, where the caller has it."""
    from ..dynamics.manifolds import Constraint

    layout = lowered.layout
    cands = Candidates(layout)
    outputs, what = outputs_function(lowered) if outputs is None else outputs
    constraint = Constraint(lowered.model, layout)
    dtype = jnp.zeros(()).dtype
    n_out = int(jax.eval_shape(outputs, jax.ShapeDtypeStruct((layout.dimension,), dtype)).shape[0])
    needed = int(np.ceil(1.5 * cands.size / max(n_out, 1))) + 4
    derivative = needed > _DERIVATIVE_ABOVE
    if derivative:
        needed = int(np.ceil(1.5 * cands.size / (n_out * (layout.dimension + 1)))) + 4
    points = min(max(witnesses, needed), max_points)
    thetas = jnp.asarray(generic_points(lowered, constraint, points, seed), dtype)
    constrained = bool(constraint.blocks)
    eye = jnp.eye(layout.dimension, dtype=thetas.dtype)
    jacobian = jax.jacrev if n_out < layout.dimension else jax.jacfwd  # one pass per row or per column

    @jax.jit
    @jax.vmap
    def at(theta):
        jac = jacobian(outputs)(theta)  # (n, D)
        tangent = jax.vmap(lambda e: constraint.tangent(theta, e), out_axes=1)(eye) if constrained else eye[:0]
        if not derivative:
            return jac, tangent, jnp.zeros((0, cands.size), theta.dtype)
        if not constrained:  # the outputs' Hessians (n, D, D); the rows are formed sparse below
            return jac, tangent, jax.jacfwd(jax.jacrev(outputs))(theta)
        # ∂_θ (Jφ(θ) V(θ)) along the manifold: (n, C, D) @ P_T, as rows (n·D, C)
        moved = jax.jacfwd(lambda t: jax.jacfwd(outputs)(t) @ cands.fields(t))(theta) @ tangent
        return jac, tangent, jnp.transpose(moved, (0, 2, 1)).reshape(-1, cands.size)

    def batches():
        for start in range(0, points, _BATCH):
            yield (np.asarray(x, np.float64) for x in at(thetas[start : start + _BATCH]))

    eps = float(np.finfo(np.asarray(thetas).dtype).eps)
    tol = float(np.sqrt(eps))
    points64 = np.asarray(thetas, np.float64)
    fields = [cands.sparse_fields(t) for t in points64]  # sparse (D, C) per point

    # 1. An orthonormal basis of the fields the candidates produce over the points: from the Gram
    #    matrix of the stacked fields (its eigenvalues are the squared singular values), one block
    #    per parameter (a parameter's candidates move only that parameter).
    blocks = []  # (the parameter's candidate columns, the independent ones among them, their L)
    for coords, columns in cands.parameter_columns():
        stacked = sparse.vstack([v[coords, columns] for v in fields]).tocsc()
        blocks.append((columns, *_independent_fields((stacked.T @ stacked).toarray())))
    unit_size = sum(len(chosen) for _, chosen, _ in blocks)
    maps = [(c, chosen, scipy.linalg.solve_triangular(f, np.eye(len(chosen)), lower=True).T) for c, chosen, f in blocks]

    def to_unit(a, transpose=False):
        """`a` (.., C) times the block-diagonal (C, r) map to unit-field coordinates (`transpose`:
        the inverse direction on coefficient vectors, (r, k) to (C, k)). Per block the map is
        the chosen candidates times L⁻ᵀ."""
        if transpose:
            out, at = np.zeros((cands.size, a.shape[1])), 0
            for columns, chosen, factor in blocks:
                block = np.zeros((columns.stop - columns.start, a.shape[1]))
                block[chosen] = scipy.linalg.solve_triangular(factor.T, a[at : at + len(chosen)], lower=False)
                out[columns] = block
                at += len(chosen)
            return out
        dense = a.toarray() if sparse.issparse(a) else np.asarray(a)
        return np.concatenate([dense[:, columns][:, chosen] @ inverse for columns, chosen, inverse in maps], axis=1)

    # 2. The conditions: outputs unchanged (each point's Jacobian at unit spectral norm), the field
    #    tangent to each manifold.
    rows, ranks, first_tangent, first_jacobian = [], [], None, None
    batch_fields = iter(fields)
    for jacs, tangents, derivatives in batches():
        pending = []  # (Jφ V) per point, mapped to unit fields together (larger, faster products)
        for jac, tangent, slope in zip(jacs, tangents, derivatives):  # tangent: (0, D) unconstrained
            v = next(batch_fields)  # sparse (D, C): every candidate's field at this point
            on = jac @ tangent if constrained else jac  # the Jacobian along the manifold
            if first_jacobian is None:
                first_jacobian, first_tangent = on, tangent
            if len(ranks) < _RANK_POINTS:  # the Jacobian's rank (generic points: all equal)
                sv = np.linalg.svd(on, compute_uv=False)
                ranks.append(int(np.sum(sv > tol * sv[0])) if sv.size and sv[0] > 0 else 0)
                norm = float(sv[0]) if sv.size else 0.0
            else:
                norm = _spectral_norm(jac)
            # (Jφ V) then the unit-field map: a sparse product and dense blocks, cheaper than
            # forming the dense unit fields V·T first
            pending.append(np.asarray((v.T @ (jac / norm if norm > 0 else jac).T).T))
            if constrained:
                unit = to_unit(v.tocsc())  # (D, r): the unit fields at this point
                rows.append(unit - tangent @ unit)
            if slope.size and not constrained:  # ∂_θ(∇φ_i · V(θ)) = H_i V + ∂_θ⟨g, V(θ)⟩ at g = ∇φ_i
                slope = np.concatenate(
                    [np.asarray((v.T @ h).T) + cands.pairing_gradient(g).toarray() for g, h in zip(jac, slope)]
                )
            if slope.size:
                size = np.linalg.norm(slope)
                rows.append(to_unit(slope / size if size > 0 else slope))
        rows.append(to_unit(np.concatenate(pending)))
    assert first_jacobian is not None and first_tangent is not None  # points ≥ witnesses ≥ 1
    conditions = np.concatenate(rows, axis=0)
    sigma, null_vectors = _small_singular(conditions, tol)
    null = sigma <= tol
    below, above = sigma[null], sigma[~null]
    gap = float((above.min() if above.size else np.inf) / max(below.max() if below.size else 0.0, eps))
    coefficients = to_unit(null_vectors[:, null], transpose=True)  # (C, k)
    witness = fields[:witnesses]
    fields_at = np.stack([np.asarray(v @ coefficients) for v in witness])
    tangent_dim = int(round(float(np.trace(first_tangent)))) if constrained else layout.dimension
    orbit = max((_rank(f, tol) for f in fields_at[:2]), default=0) if coefficients.shape[1] else 0  # generic: equal
    return Algebra(
        cands, np.asarray(thetas[:witnesses]), coefficients, fields_at, np.sort(sigma), tol, gap,
        tangent_dim - max(ranks), orbit, tangent_dim, what, witness, first_jacobian,
        determined=conditions.shape[0] >= unit_size + 8, derivatives=derivative,
    )  # fmt: skip


def generic_points(lowered: Lowered, constraint, points: int, seed: int) -> np.ndarray:
    """(points, D): the initializers' draw (one, compiled as one program), perturbed per block by
    N(0, (0.5 + its std)²) to be generic at the model's own scale (initializers may be tiny or
    special, zeros or orthonormal); blocks on a manifold are its random points instead."""
    layout = lowered.layout
    rng = np.random.default_rng(seed)
    start = np.asarray(jax.jit(lambda k: layout.flatten(lowered.init_params(k)))(jax.random.PRNGKey(seed)), np.float64)
    thetas = np.empty((points, layout.dimension))
    for name in layout.names:
        block = layout.slice_of(name)
        centre = start[block]
        thetas[:, block] = centre + rng.normal(size=(points, centre.size)) * (0.5 + centre.std())
    for b in constraint.blocks:
        thetas[:, b.offset : b.offset + b.size] = [b.manifold.random_point(b.shape, rng).ravel() for _ in range(points)]
    return thetas


def _small_singular(m: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """The smallest singular values of `m` (rows ≫ columns), ascending, and their right singular
    vectors, resolved to ε where it matters, at the cost of two factorizations of mᵀm (not its
    full eigendecomposition, 10× dearer at the sizes of a D = 800 model):

    1. how many eigenvalues of H = mᵀm lie below τ = (2·max(tol, 10⁻⁵))², from the inertia of
       H − τI (Sylvester: its LDLᵀ factorization has as many negative pivots) — every direction
       the rank decision could call null, and the ones just above it;
    2. that many plus `_MARGIN` vectors by subspace iteration with (H + sI)⁻¹ (a Cholesky factor,
       s = 10⁻⁴τ): per iteration, a direction with eigenvalue λ ≥ τ shrinks by s/λ against the
       null ones, so after two its share in a null vector adds at most 10⁻⁸·√λ·(s/λ)^0 ≤ 10⁻⁸·√τ
       ≈ 10⁻¹³ to its singular value (λ = τ is the worst case; larger λ shrink faster), far
       below the tolerance;
    3. the SVD of m restricted to the subspace (Rayleigh–Ritz), which gives their singular values
       to ε (mᵀm would square the error) and upper bounds for the true ones.

    Only these values are returned: the rank decision and its gap need no more."""
    n = m.shape[1]
    if m.shape[0] <= n or n <= 256:  # small, or underdetermined: the plain SVD
        _, sv, vt = np.linalg.svd(m, full_matrices=m.shape[0] < m.shape[1])
        values = np.zeros(n)
        values[: sv.size] = sv[:n]
        return values, vt.T
    syrk = scipy.linalg.get_blas_funcs("syrk", (m,))
    assert callable(syrk)  # one name in, one function out
    h = np.asarray(syrk(1.0, m.T, lower=1))  # mᵀm, its lower triangle: half the work (m.T: no copy)
    tau = (2 * max(tol, _REFINE)) ** 2  # absolute: the conditions' singular values lie in [0, 1]
    diagonal = np.diag_indices(n)
    shifted = h.copy()
    shifted[diagonal] -= tau
    _, d, _ = scipy.linalg.ldl(shifted, lower=True, hermitian=True, overwrite_a=True)
    count = _negative_pivots(d)
    del shifted, d
    p = min(n, count + _MARGIN)
    if p >= n // 2:  # most of the spectrum: the full decomposition is as cheap
        lam, q = np.linalg.eigh(h, UPLO="L")
        _, sv, vt = np.linalg.svd(m @ q[:, :p], full_matrices=False)
        return sv[::-1], (q[:, :p] @ vt.T)[:, ::-1]
    shift = 1e-4 * tau
    h[diagonal] += shift
    while True:  # a shift below the rounding of H makes Cholesky fail: raise it
        try:
            factor = scipy.linalg.cho_factor(h, lower=True)
            break
        except np.linalg.LinAlgError:
            h[diagonal] += 9 * shift
            shift *= 10
    x = np.random.default_rng(0).normal(size=(n, p))
    for _ in range(_ITERATIONS):
        x, _ = np.linalg.qr(scipy.linalg.cho_solve(factor, x))
    _, sv, vt = np.linalg.svd(m @ x, full_matrices=False)
    return sv[::-1], (x @ vt.T)[:, ::-1]


def _negative_pivots(d: np.ndarray) -> int:
    """Negative eigenvalues of the block-diagonal D of an LDLᵀ factorization (1×1 and 2×2 blocks)."""
    count, i, n = 0, 0, d.shape[0]
    while i < n:
        if i + 1 < n and d[i + 1, i] != 0:
            count += int(np.sum(np.linalg.eigvalsh(d[i : i + 2, i : i + 2]) < 0))
            i += 2
        else:
            count += int(d[i, i] < 0)
            i += 1
    return count


def _independent_fields(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chosen, L): independent candidates whose fields span those of all C, and the Cholesky
    factor of their Gram matrix, G[chosen][:, chosen] = L Lᵀ, so that their fields times L⁻ᵀ are
    orthonormal (over the sample points). From a Cholesky factorization with complete pivoting
    (LAPACK's pstrf; a tenth of an eigendecomposition's cost): a combination whose field vanishes
    identically leaves a pivot at rounding, ε·max G; pivots below 10⁻¹² max G stop the
    factorization (fields above 10⁻⁶ of the largest are kept; the points are at the model's own
    scale, where the candidates' fields differ by a few decades at most)."""
    size = gram.shape[0]
    top = float(gram.diagonal().max()) if size else 0.0
    if top <= 0:
        return np.zeros(0, int), np.zeros((0, 0))
    pstrf = scipy.linalg.lapack.get_lapack_funcs("pstrf", (gram,))
    assert callable(pstrf)  # one name in, one function out
    factor, pivots, rank, info = cast(tuple, pstrf(gram, tol=_FIELD_FLOOR * top, lower=1))
    if info < 0:
        raise ValueError(f"pstrf: argument {-info} is invalid")
    return np.asarray(pivots[:rank]) - 1, np.tril(factor[:rank, :rank])  # LAPACK counts from 1


def _spectral_norm(m: np.ndarray, iterations: int = 30) -> float:
    """The largest singular value, by power iteration on the smaller Gram matrix (a normalisation:
    a few per cent would do; 30 steps resolve it to (σ₂/σ₁)⁶⁰, and a σ₂ ≈ σ₁ is as good)."""
    if m.size == 0:
        return 0.0
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    x = np.random.default_rng(0).normal(size=gram.shape[0])
    value = 0.0
    for _ in range(iterations):
        y = gram @ x
        value = float(np.linalg.norm(y))
        if value == 0.0:
            return 0.0
        x = y / value
    return float(np.sqrt(value))


def _rank(m: np.ndarray, tol: float) -> int:
    sv = np.linalg.svd(m, compute_uv=False)
    return int(np.sum(sv > tol * sv[0])) if sv.size and sv[0] > 0 else 0
