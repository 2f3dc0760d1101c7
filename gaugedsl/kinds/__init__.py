"""The language's kinds, one registry each: Lie groups (`groups.py`), manifolds
(`manifolds.py`), noise models (`noises.py`) and SDE solvers (`solvers.py`).

Each kind is one object that carries all of its behaviour — what the checker accepts, its Lie
algebra or its constraint, how the dynamics keeps a parameter on it, what the reports say about
it — and every stage asks the registry, never a kind's name. Adding a kind is one class and one
`register` call (docs/architecture.md has the recipe); a name the registry does not know is a
checker diagnostic, never a `KeyError` later.
"""

from __future__ import annotations

from .groups import GROUPS, GroupKind
from .manifolds import MANIFOLDS, ManifoldKind
from .noises import NOISES, NoiseKind
from .solvers import SOLVERS, SolverKind


def register(kind: GroupKind | ManifoldKind | NoiseKind | SolverKind) -> None:
    """Add (or replace) a kind in its registry: from then on the checker accepts its name and
    every stage uses its behaviour."""
    if isinstance(kind, GroupKind):
        GROUPS[kind.name] = kind
    elif isinstance(kind, ManifoldKind):
        MANIFOLDS[kind.name] = kind
    elif isinstance(kind, NoiseKind):
        NOISES[kind.name] = kind
    else:
        SOLVERS[kind.name] = kind


def unregister(name: str) -> None:
    """Remove a kind added by `register` (tests use it to clean up)."""
    GROUPS.pop(name, None)
    MANIFOLDS.pop(name, None)
    NOISES.pop(name, None)
    SOLVERS.pop(name, None)


__all__ = [
    "GROUPS",
    "MANIFOLDS",
    "NOISES",
    "SOLVERS",
    "GroupKind",
    "ManifoldKind",
    "NoiseKind",
    "SolverKind",
    "register",
    "unregister",
]
