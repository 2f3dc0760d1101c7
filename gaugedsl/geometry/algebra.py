"""The Lie algebra of a symmetry's group: its kind's exponential map and basis
(`gaugedsl/kinds/groups.py`), for the `ir.Group` a symmetry declares."""

from __future__ import annotations

from .. import ir
from ..kinds import GROUPS


def exp_map(group: ir.Group, a):
    """The group element `exp(Σ a_a X_a)`, shaped as `g` in the action."""
    return GROUPS[group.kind].exp(group.dims, a)


def exp_map_first_order(group: ir.Group, a):
    """A map with the same derivative at the identity as `exp_map`, cheaper to trace (`I + A`
    for the matrix groups): the generators come out identical."""
    return GROUPS[group.kind].exp_first_order(group.dims, a)


def basis_names(group: ir.Group) -> list[str]:
    """Human names of the basis elements, in coordinate order."""
    return GROUPS[group.kind].basis_names(group.dims)
