"""Particles that leave their sign branch through a degenerate orbit (warning W802).

For a torus action, take a generator that moves exactly two coordinates, with opposite
exponents (u_i, v_i of w = u ⊙ v; neighbouring layers of a deep product): its charge is
½ m (θ_j² − θ_j'²), at rest at 0 under projected noise. A particle that starts balanced keeps
θ_j² = θ_j'² under the exact SDE, so along a chain of such generators (u1_i, u2_i, u3_i of
deep3) all magnitudes stay equal, and a coordinate reaches 0 only where the whole chain does:
at its degenerate orbit, which the exact dynamics crosses along its line, flipping every sign
of the chain together (docs/theory.md §9, item 2). The relative signs sign(θ_j θ_j') within a
chain are therefore kept exactly; a particle whose relative signs changed jumped to another
line near the degenerate point — a discretization artefact.

Only chains whose coordinates no other generator moves are judged, and only for particles
that start balanced on them (all charges of the chain at rest): started off balance, a
coordinate can pass 0 legitimately while its charge has not yet decayed. A pair with a
coordinate on `Positive` is not judged either: that coordinate reflects at 0 while the rest of
its chain goes through, so its sign relative to them changes legitimately (docs/theory.md §9.2).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Chains:
    """Pairs of coordinates tied by a balanced state: `first[p]`, `second[p]` (P,), and the
    chain `chain[p]` each pair belongs to."""

    first: np.ndarray
    second: np.ndarray
    chain: np.ndarray


def chains(action, positive: np.ndarray | None = None) -> Chains | None:
    """The chains of a `gauge.DiagonalAction` or `torus.TorusAction` (None if it has none);
    `positive` (D,) marks the coordinates on `Positive`, whose pairs are not judged."""
    supports, moved_by = _supports(action)
    locked = [(c[0], c[1]) for c, m in supports if len(c) == 2 and m[0] != 0 and abs(m[0] + m[1]) <= 1e-6 * abs(m[0])]
    in_locked = np.zeros_like(moved_by)
    for j, k in locked:
        in_locked[[j, k]] += 1
    # A coordinate also moved by a generator outside the chains has no fixed partner.
    pairs = [(j, k) for j, k in locked if moved_by[j] == in_locked[j] and moved_by[k] == in_locked[k]]
    if positive is not None:
        pairs = [(j, k) for j, k in pairs if not (positive[j] or positive[k])]
    if not pairs:
        return None
    parent: dict[int, int] = {}

    def root(i):
        parent.setdefault(i, i)
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for j, k in pairs:
        parent[root(j)] = root(k)
    first, second = (np.array(x, np.int64) for x in zip(*pairs))
    return Chains(first, second, np.array([root(j) for j in first], np.int64))


def _supports(action):
    """Per generator (its coordinates, their exponents); per coordinate the number of
    generators that move it."""
    from .gauge import DiagonalAction

    if isinstance(action, DiagonalAction):
        owner, expo = action.owner, action.expo
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(action.k + 1))
        spans = [order[bounds[a] : bounds[a + 1]] for a in range(action.k)]
        supports = [(s.tolist(), expo[s].tolist()) for s in spans]
        moved_by = (owner < action.k).astype(int)
        return supports, moved_by
    supports, moved_by = [], np.zeros(action.dimension, int)
    for fam in action.families:
        for coords, ms in zip(np.asarray(fam.coords), np.asarray(fam.m)):
            for row in ms:
                on = np.nonzero(row)[0]
                supports.append((coords[on].tolist(), row[on].tolist()))
                moved_by[coords[on]] += 1
    return supports, moved_by


def left_branch(chains: Chains, theta0: np.ndarray, theta: np.ndarray, tol: float) -> np.ndarray:
    """(N,) whether each particle changed the relative signs of a chain it started balanced on
    (relative imbalance |θ_j² − θ_j'²| / (θ_j² + θ_j'²) ≤ tol on every pair of the chain)."""
    x0 = theta0[:, chains.first] ** 2, theta0[:, chains.second] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.abs(x0[0] - x0[1]) > tol * (x0[0] + x0[1])
    before = np.sign(theta0[:, chains.first] * theta0[:, chains.second])
    after = np.sign(theta[:, chains.first] * theta[:, chains.second])
    flipped = before * after < 0  # zeros (a degenerate start, a NaN) are not judged
    _, index = np.unique(chains.chain, return_inverse=True)
    onehot = np.eye(index.max() + 1, dtype=int)[index]  # (P, chains)
    unbalanced = (off.astype(int) @ onehot) > 0
    changed = (flipped.astype(int) @ onehot) > 0
    return np.any(changed & ~unbalanced, axis=1)
