"""Symmetries acting diagonally, and keeping the charges on their course under projected noise.

**Diagonal actions.** Elementwise rescalings — the commonest symmetries (`u -> g * u`,
`v -> v / g`, per neuron, per column) — act as `θ_j ↦ θ_j exp(m_j a_{o(j)})`: coordinate j
is moved by at most one generator o(j), with a constant exponent m_j. Then everything the
dynamics needs is elementwise: ξ_{a,j} = m_j θ_j, the Gram matrix is diagonal,
G_aa = Σ_{o(j)=a} m_j² θ_j², the charges are χ_a = ½ Σ m_j θ_j², and the horizontal
projection is `v − Ξᵀ(Ξv / diag G)`. `DiagonalAction.detect` recognises this numerically
from the geometry engine's action (never from names), so a hand-written rescaling gets the
same path. It is ~50× cheaper than the general projector (an eigendecomposition of G per
particle and step) and is what lets projected noise cost about what isotropic noise costs.

**Charge keeper.** Under projected noise neither the drift (∇L ⟂ orbits) nor the noise
(P_H dW) moves θ along its orbit to first order, so each charge has no martingale part:
`dχ_a = T tr(A_a P_H) dt` with A_a = ∂ξ_a/∂θ (docs/theory.md, P4: dc = −2T c/ρ² dt). An
Euler–Maruyama step reproduces this only on average: its charge increment fluctuates by
O(dt) per step (zero mean, vanishing in the limit), and near a degenerate orbit (ξ_a → 0,
e.g. u = v = 0 for w = u v), where a step can be much longer than the distance to the
degenerate point, it multiplies the relative imbalance by |1 − b|/|1 + b| for a step of
relative size b. Rounding errors of 1e-16 then compound over repeated passes until particles
leave the balanced slice for another branch (u v < 0) — a discretization artefact (~10% of
the particles by t = 30 in the P5 model at dt = 1e-2, more for smaller dt).

`ChargeKeeper` removes it: after each step it moves θ along its orbit — which changes neither
the loss nor any predictor — so that the charges take the value their ODE gives over the
step. The motion across orbits is still Euler–Maruyama; the motion along them is integrated
as the ODE it is, and the scheme converges to the same SDE. For exponents m_j = ±1 the ODE
is linear, dχ_a/dt = T tr(A_a) − 2T χ_a / G_aa, and stiff near degenerate orbits: it is
integrated over the step with G frozen — exactly on the general path, by implicit Euler
on the fast path for uniform ±1 blocks (u ⊙ v); both are stable for any dt — and the orbit
move that hits the target charge is found in closed form.

Where a coordinate is moved by several generators (deep products, std.deep's deep3) the
action is a `torus.TorusAction`, and the keeper's ODE step and orbit move are `torus.keep`'s.
"""

from __future__ import annotations

import functools
import operator
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import torus
from .plan import Numbers
from .torus import TorusAction


class DiagonalAction(eqx.Module):
    """`θ_j ↦ θ_j exp(m_j a_{o(j)})`: `owner[j]` = o(j) (k where no generator moves j),
    `expo[j]` = m_j. See the module docstring."""

    owner_: tuple[int, ...] = eqx.field(static=True)  # tuples: static fields must be hashable
    expo_: tuple[float, ...] = eqx.field(static=True)
    k: int = eqx.field(static=True)
    dense: bool = eqx.field(static=True)

    tiled: int = eqx.field(static=True)
    blocks: tuple[float, ...] | None = eqx.field(static=True)
    signs: tuple[int, ...] | None = eqx.field(static=True)

    def __init__(self, owner: np.ndarray, expo: np.ndarray, k: int):
        self.owner_, self.expo_, self.k = tuple(int(i) for i in owner), tuple(float(x) for x in expo), k
        owner, expo = np.asarray(self.owner_), np.asarray(self.expo_)
        self.dense = owner.size * k <= 2**16  # small: one-hot matmuls beat scatters
        # owner = (0, 1, …, k−1) repeated B times (e.g. u and v of w = u ⊙ v): sums and
        # spreads are reshapes, which fuse with the elementwise work around them.
        blocks = owner.size // k if k else 0
        self.tiled = (
            blocks
            if blocks and owner.size == blocks * k and np.array_equal(owner, np.tile(np.arange(k), blocks))
            else 0
        )
        # ... and one exponent per block (u: +1, v: −1): then ξ restricted to block b is
        # m_b θ_b and every formula is a few k-vector operations (no constant arrays).
        per_block = np.asarray(expo).reshape(blocks, k) if self.tiled else None
        uniform = None
        if per_block is not None and bool(np.all(per_block == per_block[:, :1])):
            uniform = tuple(float(x) for x in per_block[:, 0])
        self.blocks = uniform
        self.signs = (
            tuple(int(x) for x in uniform) if uniform is not None and all(abs(x) == 1 for x in uniform) else None
        )

    @property
    def owner(self) -> np.ndarray:
        return np.asarray(self.owner_, np.int32)

    @property
    def expo(self) -> np.ndarray:
        return np.asarray(self.expo_, np.float64)

    @staticmethod
    def detect(act: Callable, k: int, dimension: int) -> "DiagonalAction | None":
        """The diagonal form of `act(θ, a)` (the joint action at exp(a)), if it has one."""
        rng = np.random.default_rng(0)
        dtype = jnp.zeros(()).dtype
        tol = 1e-9 if dtype == jnp.float64 else 1e-4
        theta = jnp.asarray(rng.uniform(0.5, 1.5, dimension), dtype)
        # Compiled, not op by op: eager evaluation compiles every primitive separately.
        xi = np.asarray(jax.jit(lambda t: jax.jacfwd(lambda a: act(t, a))(jnp.zeros(k, dtype)).T)(theta))  # (k, D)
        m = xi / np.asarray(theta)
        support = np.abs(m) > tol
        if np.any(support.sum(axis=0) > 1):
            return None  # a coordinate moved by two generators: G is not diagonal
        owner = np.where(support.any(axis=0), support.argmax(axis=0), k).astype(np.int32)
        expo = np.where(support.any(axis=0), m[np.minimum(owner, k - 1), np.arange(dimension)], 0.0)
        candidate = DiagonalAction(owner, expo, k)
        # check the form at random points and group elements
        t = jnp.asarray(rng.normal(size=(2, dimension)), dtype)
        a = jnp.asarray(rng.normal(scale=0.3, size=(2, k)), dtype)
        both = jax.jit(lambda t, a: (jax.vmap(act)(t, a), jax.vmap(candidate.act)(t, a)))
        ours, theirs = (np.asarray(x) for x in both(t, a))
        if not np.allclose(ours, theirs, rtol=tol * 10, atol=tol * 10):
            return None
        return candidate

    # -- the pieces --

    def _onehot(self, dtype):
        return jnp.asarray(np.eye(self.k + 1)[self.owner][:, : self.k], dtype)  # (D, k)

    def _sum(self, x):
        """(Σ_{o(j)=a} x_j)_a."""
        if self.tiled:  # slices and adds fuse; a reduction over a reshaped axis does not
            k = self.k
            return sum((x[b * k : (b + 1) * k] for b in range(1, self.tiled)), x[:k])
        if self.dense:
            return x @ self._onehot(x.dtype)
        return jax.ops.segment_sum(x, jnp.asarray(self.owner), num_segments=self.k + 1)[: self.k]

    def _spread(self, c):
        """c_{o(j)} (0 where no generator moves j)."""
        if self.tiled:
            return jnp.concatenate([c] * self.tiled)
        if self.dense:
            return self._onehot(c.dtype) @ c
        return jnp.concatenate([c, jnp.zeros(1, c.dtype)])[jnp.asarray(self.owner)]

    def m(self, dtype):
        return jnp.asarray(self.expo, dtype)

    def against(self, theta, v):
        """Ξv = (⟨ξ_a, v⟩)_a."""
        return self._sum(self.m(theta.dtype) * theta * v)

    def along(self, theta, c):
        """Ξᵀc = Σ_a c_a ξ_a."""
        return self.m(theta.dtype) * theta * self._spread(c)

    def gram_diag(self, theta):
        return self._sum((self.m(theta.dtype) * theta) ** 2)

    def charges(self, theta):
        return 0.5 * self._sum(self.m(theta.dtype) * theta * theta)

    def act(self, theta, a):
        return theta * jnp.exp(self.m(theta.dtype) * self._spread(a.astype(theta.dtype)))

    def _parts(self, x):
        return [x[b * self.k : (b + 1) * self.k] for b in range(self.tiled)]

    def project(self, theta, v):
        """The horizontal part `v − Ξᵀ G⁻¹ Ξ v` (0 coefficients on degenerate orbits)."""
        if self.blocks is not None:
            th, vs = self._parts(theta), self._parts(v)
            g = sum(m * m * t * t for m, t in zip(self.blocks, th))
            xv = sum(m * t * w for m, t, w in zip(self.blocks, th, vs))
            # Ξv = 0 where G = 0; a floor instead of a select (selects cost ~50% of a step here)
            c = xv / jnp.maximum(g, jnp.finfo(theta.dtype).tiny)  # g has θ's dtype (the m are Python floats)
            return jnp.concatenate([w - m * t * c for m, t, w in zip(self.blocks, th, vs)])
        g = self.gram_diag(theta)
        ok = g > 0
        coeffs = jnp.where(ok, self.against(theta, v) / jnp.where(ok, g, 1.0), 0.0)
        return v - self.along(theta, coeffs)

    @property
    def unit(self) -> bool:
        """Every exponent is ±1 (rescalings): then ⟨ξ_a, A_a ξ_a⟩ = 2χ_a."""
        moved = self.owner < self.k
        return bool(np.all(np.abs(np.abs(self.expo[moved]) - 1) < 1e-9))


class ChargeKeeper(eqx.Module):
    """Moves θ along its orbit after a step so that the charges follow their ODE (module
    docstring). Call as `keeper(θ_before, θ_after, numbers)`. For a `torus.TorusAction` (a
    coordinate moved by several generators) the ODE step and the orbit move are `torus.keep`'s."""

    action: DiagonalAction | TorusAction

    @staticmethod
    def _block_sums(act: DiagonalAction, signs: tuple[int, ...], theta):
        """(P, N): Σ θ_j² over the coordinates with exponent +1, resp. −1, per generator."""
        squares = [x * x for x in act._parts(theta)]

        def total(side):  # no zeros to start the sum from: one add fewer on the hot path
            xs = [sq for sq, sign in zip(squares, signs) if sign == side]
            return functools.reduce(operator.add, xs) if xs else jnp.zeros(act.k, theta.dtype)

        return total(1), total(-1)

    def _blocks_call(self, act: DiagonalAction, signs: tuple[int, ...], before, after, args):
        """The same as `__call__` for rescalings in uniform blocks (u ⊙ v): a dozen k-vector
        operations. The charge ODE step is implicit Euler, χ' = (χ + λ χ_∞)/(1 + λ) with
        λ = 2T dt/G: as stable as the exact exponential for stiff orbits, and cheaper."""
        tiny = jnp.finfo(before.dtype).tiny
        floor = tiny**0.5  # x ≤ (P + N)/floor stays finite
        tdt = (args["T"] * args.dt).astype(before.dtype)
        p0, n0 = self._block_sums(act, signs, before)
        g = p0 + n0
        trace = sum(signs)  # tr(A_a) = Σ_j m_j; 0 for u ⊙ v
        drive = 0.5 * (p0 - n0) * g if trace == 0 else (0.5 * (p0 - n0) + tdt * trace) * g
        target = drive / jnp.maximum(g + 2.0 * tdt, tiny)
        # ½(P x − N/x) = target for x = exp(2a) > 0: x = (t + s)/P with s = sqrt(t² + PN),
        # which cancels for t < 0, where the same root is N/(s − t).
        p, n = self._block_sums(act, signs, after)
        s = jnp.sqrt(target * target + p * n)
        a = jnp.abs(target) + s
        # The floor keeps x finite and positive on degenerate sides (P or N = 0), where the
        # move is by a finite factor (a max or clip here would cost as much as the rest).
        pos = target >= 0
        x = (jnp.where(pos, a, n) + floor) / (jnp.where(pos, p, a) + floor)
        q = jax.lax.rsqrt(x)  # exp(−a)
        up = x * q  # exp(a)
        return jnp.concatenate([part * (up if sign > 0 else q) for part, sign in zip(act._parts(after), signs)])

    @staticmethod
    def target(act: DiagonalAction, theta, args: Numbers):
        """The charges after one step of `dχ_a/dt = T tr(A_a P_H)` from θ."""
        m = act.m(theta.dtype)
        tdt = (args["T"] * args.dt).astype(theta.dtype)
        g = act.gram_diag(theta)
        chi = act.charges(theta)
        ok = g > 0
        safe = jnp.where(ok, g, 1.0)
        trace = act._sum(m * jnp.ones_like(theta))  # tr(A_a) = Σ m_j
        if act.unit:
            rest = 0.5 * trace * safe  # the fixed point of the linear ODE (G frozen)
            return jnp.where(ok, rest + (chi - rest) * jnp.exp(-2.0 * tdt / safe), chi)
        quad = act._sum(m**3 * theta * theta)  # ⟨ξ_a, A_a ξ_a⟩
        return chi + tdt * (trace - jnp.where(ok, quad / safe, 0.0))

    def __call__(self, before, after, args: Numbers):
        act = self.action
        if isinstance(act, TorusAction):
            return torus.keep(act, before, after, (args["T"] * args.dt).astype(before.dtype))
        if act.signs is not None:
            return self._blocks_call(act, act.signs, before, after, args)
        target = self.target(act, before, args)
        m = act.m(after.dtype)
        if act.unit:
            # ½(P x − N/x) = target with x = exp(2a): the positive root, exactly.
            sq = after * after
            p = act._sum(jnp.where(m > 0, sq, 0.0))
            n = act._sum(jnp.where(m < 0, sq, 0.0))
            ok = (p > 0) & (n > 0)
            p_safe = jnp.where(ok, p, 1.0)
            x = (target + jnp.sqrt(target * target + p * n)) / p_safe
            r = jnp.sqrt(jnp.where(ok & (x > 0), x, 1.0))  # exp(a) = sqrt(x): no log/exp
            moved = act.owner < act.k
            return after * jnp.where(moved, jnp.where(m > 0, act._spread(r), act._spread(1.0 / r)), 1.0)
        a = jnp.zeros(act.k, after.dtype)
        for _ in range(4):  # Newton on a: ∂χ_a/∂a_a = G_aa at the moved point
            moved = act.act(after, a)
            g = act.gram_diag(moved)
            ok = g > 0
            a = a + jnp.clip(jnp.where(ok, (target - act.charges(moved)) / jnp.where(ok, g, 1.0), 0.0), -1.0, 1.0)
        return act.act(after, a)
