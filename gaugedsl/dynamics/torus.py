"""Torus actions, where a coordinate may be moved by several generators, and their charge keeper.

**The action.** `θ_j ↦ θ_j exp(Σ_a M_aj a_a)` with a constant exponent matrix M (k × D): a
coordinate may be moved by several generators (std.deep's deep3 moves u2_i by g₁/g₀, the
stacked `deep_rescaling` every inner layer). Then ξ_a = M_a ⊙ θ, the charges are
χ_a = ½ Σ_j M_aj θ_j², the Gram matrix is G_ab = Σ_j M_aj M_bj θ_j², and a move along the
orbit by `a` multiplies θ_j² by exp(2 (Mᵀa)_j).

**Blocks.** Generators and coordinates linked by a non-zero M_aj fall into connected
components (for deep3, one per coordinate i: three coordinates, two generators), and G is
block diagonal over them. Components of the same size are stacked into a `Family` and
handled together, so every solve is a small g × g one per component, never a dense k × k one.

**The charge ODE.** Under projected noise (docs/theory.md P4, and the module docstring of
`gauge.py`), `dχ_a/dt = T tr(A_a P_H) = T (Σ_j M_aj − r_a)` with A_a = diag(M_a) and
`r_a = Σ_{b,c} (G⁻¹)_{bc} Σ_j M_aj M_bj M_cj θ_j²`; it has no martingale part. Along the
orbit, dχ/da = G, so as a function of the charges alone (θ moving along its orbit) the right
side has Jacobian `−T K`, `K = (∂r/∂a) G⁻¹`. Near a degenerate orbit r varies on the scale of
the vanishing θ_j², K grows like 1/θ_j² and the ODE is stiff.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Family:
    """B components with the same numbers of coordinates (c) and generators (g):
    `coords` (B, c) and `gens` (B, g) indices, `m` (B, g, c) exponents."""

    coords: tuple
    gens: tuple
    m: tuple

    @staticmethod
    def of(coords: np.ndarray, gens: np.ndarray, m: np.ndarray) -> "Family":
        return Family(_nested(coords), _nested(gens), _nested(m))


def _nested(a: np.ndarray):
    """A hashable copy of an array (static fields must be hashable)."""
    return tuple(_nested(x) for x in a) if a.ndim > 1 else tuple(a.tolist())


class TorusAction(eqx.Module):
    """`θ_j ↦ θ_j exp(Σ_a M_aj a_a)`, by connected components (module docstring)."""

    k: int = eqx.field(static=True)
    dimension: int = eqx.field(static=True)
    families: tuple[Family, ...] = eqx.field(static=True)

    def __init__(self, m: np.ndarray):
        self.k, self.dimension = m.shape
        self.families = _families(m)

    @staticmethod
    def detect(act: Callable, k: int, dimension: int) -> "TorusAction | None":
        """The torus form of `act(θ, a)` (the joint action at exp(a)), if it has one."""
        rng = np.random.default_rng(1)
        dtype = jnp.zeros(()).dtype
        tol = 1e-9 if dtype == jnp.float64 else 1e-4
        theta = jnp.asarray(rng.uniform(0.5, 1.5, dimension), dtype)
        xi = np.asarray(jax.jit(lambda t: jax.jacfwd(lambda a: act(t, a))(jnp.zeros(k, dtype)).T)(theta))  # (k, D)
        m = xi / np.asarray(theta)
        m = np.where(np.abs(m) > tol, m, 0.0)
        if not np.any(m):
            return None
        candidate = TorusAction(m)
        t = jnp.asarray(rng.normal(size=(2, dimension)), dtype)
        a = jnp.asarray(rng.normal(scale=0.3, size=(2, k)), dtype)
        both = jax.jit(lambda t, a: (jax.vmap(act)(t, a), jax.vmap(candidate.act)(t, a)))
        ours, theirs = (np.asarray(x) for x in both(t, a))
        if not np.allclose(ours, theirs, rtol=tol * 10, atol=tol * 10):
            return None
        return candidate

    def exponents(self) -> np.ndarray:
        """M as a dense (k, D) array."""
        m = np.zeros((self.k, self.dimension))
        for fam in self.families:
            coords, gens, ms = (np.asarray(x) for x in (fam.coords, fam.gens, fam.m))
            m[gens[:, :, None], coords[:, None, :]] = ms
        return m

    def act(self, theta, a):
        a = a.astype(theta.dtype)
        for fam in self.families:
            coords, gens, m = _arrays(fam, theta.dtype)
            theta = theta.at[coords].multiply(jnp.exp(jnp.einsum("bgc,bg->bc", m, a[gens])))
        return theta

    def project(self, theta, v):
        """The horizontal part `v − Ξᵀ G⁻¹ Ξ v`, a g × g solve per component. Each block gets
        its own ridge (`_solve`), relative to its own G: a global cutoff (the dense
        projector's, ~1e-5 of the largest eigenvalue in float32) would drop the orbit
        direction of a component near its degenerate point, just where it matters."""
        out = v
        for fam in self.families:
            coords, _, m = _arrays(fam, theta.dtype)
            xi = m * theta[coords][:, None, :]  # (B, g, c)
            gram = jnp.einsum("bgc,bhc->bgh", xi, xi)
            coeffs = jax.vmap(_solve)(gram, jnp.einsum("bgc,bc->bg", xi, v[coords]))
            out = out.at[coords].add(-jnp.einsum("bgc,bg->bc", xi, coeffs))
        return out

    def charges(self, theta):
        out = jnp.zeros(self.k, theta.dtype)
        for fam in self.families:
            coords, gens, m = _arrays(fam, theta.dtype)
            out = out.at[gens].set(0.5 * jnp.einsum("bgc,bc->bg", m, theta[coords] ** 2))
        return out


def _arrays(fam: Family, dtype):
    return jnp.asarray(fam.coords, jnp.int32), jnp.asarray(fam.gens, jnp.int32), jnp.asarray(fam.m, dtype)


def _families(m: np.ndarray) -> tuple[Family, ...]:
    """Connected components of the generator–coordinate graph (M_aj ≠ 0), stacked by size."""
    k, dim = m.shape
    parent = list(range(k + dim))  # generators 0…k−1, coordinates k…k+D−1

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, j in zip(*np.nonzero(m)):
        parent[root(int(a))] = root(k + int(j))
    members: dict[int, tuple[list, list]] = {}
    for a in range(k):
        members.setdefault(root(a), ([], []))[0].append(a)
    for j in range(dim):
        if np.any(m[:, j]):
            members.setdefault(root(k + j), ([], []))[1].append(j)
    by_size: dict[tuple[int, int], list] = {}
    for gens, coords in members.values():
        if gens and coords:
            by_size.setdefault((len(gens), len(coords)), []).append((gens, coords))
    families = []
    for comps in by_size.values():
        gens = np.array([g for g, _ in comps])
        coords = np.array([c for _, c in comps])
        families.append(Family.of(coords, gens, m[gens[:, :, None], coords[:, None, :]]))
    return tuple(families)


# ---- the charge keeper's two steps, for one component (vmapped over a family) ----


def _solve(a, b):
    """a⁻¹b for a small positive semi-definite matrix that may be singular at a degenerate orbit.
    Scaled to unit trace first (a Gram of θ ~ 1e-10 has a determinant below float32's range),
    then ridged by g ε: that keeps the computed determinant above its rounding error, so the
    solve is finite at a degenerate orbit (where the steps that use it are clipped or
    line-searched), and it shifts a result by ~ε relative elsewhere, the precision's own level.
    Sizes 1 and 2 (a pair, a depth-3 chain) in closed form, sizes up to `_UNROLLED` by an
    unrolled Cholesky: a batched LAPACK solve of a tiny matrix costs far more than the rest of
    the step (a depth-4 chain ran at ~1e3 particle-steps/s through it)."""
    g = a.shape[0]
    ridge = g * jnp.finfo(a.dtype).eps
    scale = jnp.abs(jnp.trace(a)) + jnp.finfo(a.dtype).tiny
    a = a / scale + ridge * jnp.eye(g, dtype=a.dtype)
    b = b / scale
    if g == 1:
        return b / a[0, 0]
    if g == 2:
        adjugate = jnp.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]])
        return adjugate @ b / (a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0])
    if g <= _UNROLLED:
        return _cholesky_solve(a, b, ridge)
    return jnp.linalg.solve(a, b)


_UNROLLED = 8  # beyond, the unrolled code (g³/6 scalar operations) outgrows one LAPACK call


def _cholesky_solve(a, b, ridge):
    """a⁻¹b for a symmetric positive definite g × g `a` whose eigenvalues are ≥ `ridge`, as
    scalar operations XLA fuses. A Cholesky pivot is a Schur complement, ≥ the least
    eigenvalue in exact arithmetic; rounding can push one below, so pivots are held at
    `ridge / 2` (finite where `a` is near singular, as the ridged LU was)."""
    g = a.shape[0]
    low = [[None] * g for _ in range(g)]
    for j in range(g):
        pivot = a[j, j] - sum(low[j][k] ** 2 for k in range(j))
        low[j][j] = jnp.sqrt(jnp.maximum(pivot, 0.5 * ridge))
        for i in range(j + 1, g):
            low[i][j] = (a[i, j] - sum(low[i][k] * low[j][k] for k in range(j))) / low[j][j]
    y = []
    for i in range(g):
        y.append((b[i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i])
    x = [None] * g
    for i in reversed(range(g)):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, g))) / low[i][i]
    return jnp.stack(x)


def drive(m, x):
    """(Σ_j M_aj − r_a, G) for one component with exponents m (g, c) at squares x (c,):
    dχ/dt = T · drive (module docstring). The keeper integrates it through its potential
    (`charge_step`); this is the ODE written out, for checks."""
    gram = (m * x) @ m.T
    h = jnp.einsum("ac,bc,dc,c->abd", m, m, m, x)  # Σ_j M_aj M_bj M_dj θ_j²
    r = jnp.einsum("abd,bd->a", h, _solve(gram, jnp.eye(m.shape[0], dtype=x.dtype)))
    return m.sum(axis=1) - r, gram


_SEARCH = (1.0, 0.5, 0.25, 0.125, 0.0625)  # Newton step lengths tried


def charge_step(m, x, tdt, iterations: int = 4):
    """The charges after one step of dχ/dt = T · drive from squares x (c,), T dt = `tdt`.

    The flow along the orbit is a gradient flow: ½ ∂_a log det G = r (since ∂_c G_ab =
    2 Σ_j M_aj M_bj M_cj θ_j²), so da/dt = −T G⁻¹ ∇V with V(a) = ½ log det G(a) − a·Σ_j M_·j,
    and V is convex (det G is a sum of exponentials of linear functions of a with non-negative
    coefficients, Cauchy–Binet). The step is the minimizing movement
    `a₁ = argmin T dt V(a) + ½ aᵀ G(0) a`: a strictly convex problem, solved by Newton with a
    line search, so V never increases, whatever dt — the step is stable, also where the flow is
    stiff (near a degenerate orbit its rate T/θ² can exceed 1/dt by orders of magnitude, and
    one linearized step, the first Newton iterate, overshoots the rest point by as much). It
    is implicit Euler in a with the metric frozen at the start, first order like
    Euler–Maruyama; for u ⊙ v it keeps the sign of the charge and shrinks it, as `gauge.py`'s
    fast path does."""
    gram0 = (m * x) @ m.T
    trace = m.sum(axis=1)
    eye = jnp.eye(m.shape[0], dtype=x.dtype)
    m3 = jnp.einsum("ac,bc,dc->abdc", m, m, m)  # M_aj M_bj M_dj
    m4 = jnp.einsum("abdc,ec->abdec", m3, m)

    def parts(a):
        moved = x * jnp.exp(2.0 * (m.T @ a))
        inverse = _solve((m * moved) @ m.T, eye)
        h = m3 @ moved  # H^d_ab at [a, b, d]
        gradient = tdt * (jnp.einsum("abd,ab->d", h, inverse) - trace) + gram0 @ a  # ∇Φ
        return moved, inverse, h, gradient

    def newton_step(a):
        """∇ ½ log det G = r and its Hessian in closed form (autodiff costs 5× more here):
        ∂_d r_c = 2 tr(G⁻¹ Q^{cd}) − 2 tr(G⁻¹ H^d G⁻¹ H^c), Q^{cd}_ab = Σ_j M_aj M_bj M_cj M_dj θ_j²."""
        moved, inverse, h, gradient = parts(a)
        gh = jnp.einsum("ab,bcd->acd", inverse, h)  # (G⁻¹ H^d)_ac
        hess = 2.0 * jnp.einsum("abde,ab->de", m4 @ moved, inverse) - 2.0 * jnp.einsum("acd,cae->de", gh, gh)
        step = -_solve(tdt * hess + gram0, gradient)
        step = jnp.where(jnp.all(jnp.isfinite(step)), step, 0.0)  # an overflow: no step
        return step, gradient @ step

    a = jnp.zeros(m.shape[0], x.dtype)
    lengths = jnp.asarray(_SEARCH, x.dtype)
    for _ in range(iterations):
        step, slope = newton_step(a)
        # The line search reads the slope of Φ along the step, not Φ: in float32 the changes
        # of Φ over a step sit below its rounding, its slope does not. On the convex Φ the
        # slope grows along the step from `slope` < 0; the longest length where it is still
        # below |slope|/2 lowers Φ (for a quadratic, any length short of twice the minimizer's
        # does), and the full Newton step passes where Φ is near quadratic.
        slopes = jnp.stack([parts(a + s * step)[3] @ step for s in _SEARCH])
        a = a + jnp.max(jnp.where(slopes <= 0.5 * jnp.abs(slope), lengths, 0.0)) * step
    return 0.5 * m @ (x * jnp.exp(2.0 * (m.T @ a)))


def orbit_move(m, x, target, iterations: int = 6):
    """a with ½ Σ_j M_aj x_j exp(2(Mᵀa)_j) = target: Newton with Jacobian G (the Hessian of
    the convex ¼ Σ_j x_j exp(2(Mᵀa)_j), so the iteration is well posed), each step clipped to
    |δa_a| ≤ 1 and the solve ridged where G is near-singular (see `_solve`)."""
    a = jnp.zeros(m.shape[0], x.dtype)
    for _ in range(iterations):
        moved = x * jnp.exp(2.0 * (m.T @ a))
        residual = target - 0.5 * m @ moved
        step = jnp.clip(_solve((m * moved) @ m.T, residual), -1.0, 1.0)
        a = a + jnp.where(jnp.isfinite(step), step, 0.0)
    return a


def keep(action: TorusAction, before, after, tdt):
    """`after` moved along its orbit so that its charges are those the ODE gives over the step
    from `before` (`gauge.ChargeKeeper` for torus actions)."""
    theta = after
    for fam in action.families:
        coords, _, m = _arrays(fam, after.dtype)
        target = jax.vmap(charge_step, in_axes=(0, 0, None))(m, before[coords] ** 2, tdt)
        a = jax.vmap(orbit_move)(m, after[coords] ** 2, target)
        theta = theta.at[coords].set(after[coords] * jnp.exp(jnp.einsum("bgc,bg->bc", m, a)))
    return theta
