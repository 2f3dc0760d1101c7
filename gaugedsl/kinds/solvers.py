"""SDE solvers: one entry each, naming the Diffrax solver and the noise it integrates correctly.

Our noise models are Itô SDEs (P4's balancing drift −2Tc/ρ² is the Itô term of projected noise).
Itô and Stratonovich solvers agree only where the noise does not depend on θ, the stochastic
Runge–Kutta solvers `sea`, `sra1`, `shark` are built for additive noise, and Milstein needs
commutative noise, which projections and minibatch factors are not: with θ-dependent noise only
Euler–Maruyama integrates our SDEs correctly (`dynamics/solve.solver_for` says so, E810).
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class SolverKind:
    """An SDE solver.

    - `name`, `doc`: as written in `run { solver = ... }`.
    - `diffrax_name`: the Diffrax solver class it builds, from `module` (Diffrax, or ours for a
      solver Diffrax does not have).
    - `stratonovich`: it converges to the Stratonovich SDE.
    - `additive_only`: built for additive noise.
    - `commutative_only`: needs commutative noise.
    - `levy_area`: it reads the space-time Lévy area of each step's Brownian increment.
    - `second_state`: it carries a second state that a reflection at a wall would break.
    """

    name: str
    doc: str
    diffrax_name: str
    stratonovich: bool = False
    additive_only: bool = False
    commutative_only: bool = False
    levy_area: bool = False
    second_state: bool = False
    module: str = "diffrax"

    def build(self) -> Any:
        import importlib

        return getattr(importlib.import_module(self.module), self.diffrax_name)()

    def refuses_state_dependent_noise(self, why: str) -> str | None:
        """The message of E810 when the noise depends on θ (`why` says how); None if it copes."""
        if self.stratonovich:
            return (
                f"solver = {self.name} converges to the Stratonovich SDE, but {why}: that would add the "
                "Itô–Stratonovich drift and change the stationary law"
            )
        if self.additive_only:
            return f"solver = {self.name} is for additive noise, but {why}"
        if self.commutative_only:
            return f"solver = {self.name} needs commutative noise, but {why}"
        return None


SOLVERS: dict[str, SolverKind] = {
    k.name: k
    for k in (
        SolverKind("euler", "Itô Euler–Maruyama (strong order 1/2): correct for every noise model", "Euler"),
        SolverKind("heun", "Stratonovich Heun", "Heun", stratonovich=True),
        SolverKind("milstein", "Itô Milstein (commutative noise)", "ItoMilstein", commutative_only=True),
        SolverKind("sea", "Shampine's SRK for additive noise", "SEA", additive_only=True, levy_area=True),
        SolverKind("sra1", "SRA1, an SRK for additive noise", "SRA1", additive_only=True, levy_area=True),
        SolverKind("shark", "ShARK, an SRK for additive noise", "ShARK", additive_only=True, levy_area=True),
        SolverKind("spark", "SPaRK, a Stratonovich SRK", "SPaRK", stratonovich=True, levy_area=True),
        SolverKind(
            "lm",
            "Leimkuhler–Matthews for additive noise: Euler's cost, second-order stationary averages",
            "LeimkuhlerMatthews",
            additive_only=True,
            second_state=True,
            module="gaugedsl.dynamics.lm",
        ),  # fmt: skip
        SolverKind(
            "reversible_heun", "reversible Heun (Stratonovich)", "ReversibleHeun", stratonovich=True, second_state=True
        ),
    )
}
