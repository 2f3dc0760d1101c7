"""Recognising the shape of an action, to use structure where it is known.

A symmetry's action rules are IR expressions; a few shapes recur (the stdlib's) and have a
structured Gram determinant and a closed-form gauge projection. Recognition looks at the IR,
not at template names, so a user who writes the same action by hand gets the same fast path.
Torus (elementwise rescaling) actions are also recognised numerically, from their generators
(`torus_components`), whatever the spelling: the closed forms of product chains use it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import ir
from ..kinds import GROUPS


@dataclasses.dataclass(frozen=True)
class Pattern:
    """`kind` is one of:

    - `hadamard`: Scale; `u -> g * u`, `v -> v / g` (params `u`, `v` in that role);
    - `telescope`: Scale[L−1, n]; `U -> U * telescope(g)` (a depth-L product over rows of U);
    - `neuron`: Scale[h]; `W -> diag(g) @ W`, `V -> V / g` (2-layer network hidden units);
    - `columns`: Scale[h]; `Q -> Q * g`, `K -> K / g` with Q, K matrices (columnwise);
    - `gl`: GL[r]; `U -> U @ g`, `V -> V @ inv(g).T`;
    - `orthogonal`: O[r]/SO[r]; `U -> U @ g`, `V -> V @ g` (or `@ inv(g).T`).
    """

    kind: str
    params: tuple[str, ...]
    transposed: bool = False  # gl/orthogonal written on W = P Q: `Q -> inv(g) @ Q`


def _is_g(e) -> bool:
    return isinstance(e, ir.Ref) and e.kind == "group"


def _param(e) -> str | None:
    return e.name if isinstance(e, ir.Ref) and e.kind == "param" else None


def _op(e, op: str):
    return e.args if isinstance(e, ir.Op) and e.op == op else None


def _times_g(e) -> str | None:
    """`g * p` or `p * g` → p."""
    args = _op(e, "mul")
    if args is None:
        return None
    a, b = args
    if _is_g(a):
        return _param(b)
    if _is_g(b):
        return _param(a)
    return None


def _over_g(e) -> str | None:
    args = _op(e, "div")
    if args and _is_g(args[1]):
        return _param(args[0])
    return None


def _matmul_g(e) -> str | None:
    args = _op(e, "matmul")
    if args and _is_g(args[1]):
        return _param(args[0])
    return None


def _inv_transpose_g(e) -> bool:
    # inv(g).T or inv(g.T)
    t = _op(e, "transpose")
    if t and isinstance(t[0], ir.Call) and t[0].func == "inv" and _is_g(t[0].args[0]):
        return True
    if isinstance(e, ir.Call) and e.func == "inv":
        inner = _op(e.args[0], "transpose")
        return bool(inner and _is_g(inner[0]))
    return False


def _matmul_inv_t_g(e) -> str | None:
    args = _op(e, "matmul")
    if args and _inv_transpose_g(args[1]):
        return _param(args[0])
    return None


def _inv_g_matmul(e) -> str | None:
    """`inv(g) @ q` → q (the right factor of W = P Q)."""
    args = _op(e, "matmul")
    if args and isinstance(args[0], ir.Call) and args[0].func == "inv" and _is_g(args[0].args[0]):
        return _param(args[1])
    return None


def _diag_g_matmul(e) -> str | None:
    args = _op(e, "matmul")
    if args and isinstance(args[0], ir.Call) and args[0].func == "diag" and _is_g(args[0].args[0]):
        return _param(args[1])
    return None


def _times_telescope(e) -> str | None:
    args = _op(e, "mul")
    if args is None:
        return None
    for a, b in (args, args[::-1]):
        if isinstance(b, ir.Call) and b.func == "telescope" and _is_g(b.args[0]):
            return _param(a)
    return None


def recognise(sym: ir.Symmetry) -> Pattern | None:
    rules = {a.param: a.value for a in sym.actions}
    kind = GROUPS[sym.group.kind]
    if kind.rescaling and len(rules) == 2:
        (p1, e1), (p2, e2) = rules.items()
        for (pa, ea), (pb, eb) in (((p1, e1), (p2, e2)), ((p2, e2), (p1, e1))):
            if _times_g(ea) == pa and _over_g(eb) == pb:
                shape = ea.shape
                if shape == sym.group.element_shape and eb.shape == shape:
                    return Pattern("hadamard", (pa, pb))
                if len(shape) == 2 and sym.group.element_shape == shape[-1:] and eb.shape[-1:] == shape[-1:]:
                    return Pattern("columns", (pa, pb))
            if _diag_g_matmul(ea) == pa and _over_g(eb) == pb:
                return Pattern("neuron", (pa, pb))
    if kind.rescaling and len(rules) == 1:
        ((p, e),) = rules.items()
        if _times_telescope(e) == p:
            return Pattern("telescope", (p,))
    if kind.factorization is not None and len(rules) == 2:
        (p1, e1), (p2, e2) = rules.items()
        for (pa, ea), (pb, eb) in (((p1, e1), (p2, e2)), ((p2, e2), (p1, e1))):
            if _matmul_g(ea) == pa and _matmul_inv_t_g(eb) == pb:
                return Pattern(kind.factorization, (pa, pb))
            if _matmul_g(ea) == pa and _inv_g_matmul(eb) == pb:
                return Pattern(kind.factorization, (pa, pb), transposed=True)
            if kind.factorization == "orthogonal" and _matmul_g(ea) == pa and _matmul_g(eb) == pb and pa < pb:
                return Pattern("orthogonal", (pa, pb))
    return None


# ---- torus actions, found numerically ----


@dataclasses.dataclass(frozen=True)
class TorusComponent:
    """Coordinates `coords` (flat θ indices) that the generators `generators` (algebra
    indices) move, and no other generator does: ξ_a(θ)_j = M_aj θ_j with `exponents` the
    block M (len(generators) × len(coords))."""

    coords: tuple[int, ...]
    generators: tuple[int, ...]
    exponents: tuple[tuple[float, ...], ...]

    @property
    def matrix(self) -> np.ndarray:
        return np.asarray(self.exponents, np.float64).reshape(len(self.generators), len(self.coords))


def torus_components(generators: Callable, dimension: int, k: int, dtype) -> tuple[TorusComponent, ...] | None:
    """The connected components of a torus (diagonal) action — generators ξ_a(θ)_j = M_aj θ_j
    with a constant exponent matrix M, a coordinate possibly moved by several generators —
    or None if the action is not one. `generators(θ)` returns the rows ξ_a(θ), (k, D).

    M is read at a random positive point, as `dynamics.gauge.DiagonalAction.detect` does, and
    the form is confirmed at a second, generic point. Two coordinates are in one component
    when a chain of generators links them; every generator lies in one component."""
    rng = np.random.default_rng(0)
    tol = 1e-9 if jnp.zeros((), dtype).dtype == jnp.float64 else 1e-4
    first = jnp.asarray(rng.uniform(0.5, 1.5, dimension), dtype)
    second = jnp.asarray(rng.normal(size=dimension), dtype)
    xi = jax.jit(jax.vmap(generators))(jnp.stack([first, second]))
    xi1, xi2 = (np.asarray(x, np.float64) for x in xi)
    m = xi1 / np.asarray(first, np.float64)
    m[np.abs(m) <= tol * max(np.max(np.abs(m), initial=0.0), 1.0)] = 0.0
    scale = max(np.max(np.abs(xi2)), 1.0)
    if k == 0 or not np.allclose(xi2, m * np.asarray(second, np.float64), rtol=tol * 10, atol=tol * 10 * scale):
        return None
    support = m != 0
    if not support.any(axis=1).all():
        return None  # a generator that moves nothing: not a faithful torus
    parent = list(range(dimension))

    def root(j):
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    for row in support:
        cols = np.flatnonzero(row)
        for j in cols[1:]:
            parent[root(j)] = root(cols[0])
    out: dict[int, list[int]] = {}
    for j in np.flatnonzero(support.any(axis=0)):
        out.setdefault(root(int(j)), []).append(int(j))
    components = []
    for coords in out.values():
        gens = [a for a in range(k) if support[a, coords].any()]
        block = m[np.ix_(gens, coords)]
        components.append(TorusComponent(tuple(coords), tuple(gens), tuple(tuple(float(x) for x in r) for r in block)))
    return tuple(sorted(components, key=lambda c: c.coords))
