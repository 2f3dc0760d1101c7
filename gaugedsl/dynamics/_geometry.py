"""The dynamics' one door to the geometry engine (`gaugedsl.geometry`).

Everything the dynamics needs from the symmetries goes through here: the engine itself, the
horizontal projection for `projected` noise, and the predicted stationary law.
"""

from __future__ import annotations

from typing import Callable

from ..geometry import Geometry, LawUnavailable, PredictedLaw, per_geometry, predicted_law
from ..lowering import Lowered


def geometry(lowered: Lowered) -> Geometry:
    return Geometry(lowered)


def joint_action(geo: Geometry) -> tuple[Callable, int]:
    """`(θ, a) ↦ exp(a)·θ` for all symmetries together (a concatenated), and dim a."""
    names = list(geo.symmetries)
    sizes = [geo.symmetries[n].group.algebra_dim for n in names]

    def act(theta, a):
        offset = 0
        for n, k in zip(names, sizes):
            theta = geo.act(n, theta, a[offset : offset + k])
            offset += k
        return theta

    return act, sum(sizes)


@per_geometry
def diagonal_action(geo: Geometry):
    """The symmetries' joint action in diagonal form (`gauge.DiagonalAction`), or None."""
    from .gauge import DiagonalAction

    if not geo.symmetries:
        return None
    act, k = joint_action(geo)
    return DiagonalAction.detect(act, k, geo.dimension)


@per_geometry
def torus_action(geo: Geometry):
    """The symmetries' joint action as a torus action (`θ_j ↦ θ_j exp(Σ_a M_aj a_a)`): the
    `gauge.DiagonalAction` where each coordinate has one generator, else a
    `torus.TorusAction`; None for other actions."""
    from .torus import TorusAction

    diagonal = diagonal_action(geo)
    if diagonal is not None or not geo.symmetries:
        return diagonal
    act, k = joint_action(geo)
    return TorusAction.detect(act, k, geo.dimension)


def charge_keeper(geo: Geometry):
    """The `ChargeKeeper` for projected noise where the action is a torus action; `None`
    otherwise (plain Euler steps)."""
    from .gauge import ChargeKeeper

    action = torus_action(geo)
    return None if action is None else ChargeKeeper(action)


def horizontal_projection(geo: Geometry) -> Callable:
    """`(θ, v) ↦ v − Ξᵀ G⁺ Ξ v`, the noise direction orthogonal to the orbits: elementwise
    for diagonal actions (`gauge.DiagonalAction`), by components for other torus actions
    (`torus.TorusAction`), else the geometry engine's general projector (forward-mode
    generators and an eigendecomposition of G)."""
    if not geo.symmetries:
        return lambda theta, v: v
    action = torus_action(geo)
    return geo.project_horizontal if action is None else action.project


def stationary_law(geo: Geometry, T: float, theta0) -> tuple[PredictedLaw | None, str | None]:
    """The predicted stationary law of the scalar predictor, or why there is none."""
    try:
        return predicted_law(geo, T, theta0=theta0), None
    except LawUnavailable as exc:
        return None, str(exc)
