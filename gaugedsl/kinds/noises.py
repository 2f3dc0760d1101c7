"""Noise models: one class per kind, with its settings, its diffusion and what the theory says
about it.

`noise KIND(settings)` names one of these. The diffusion itself is a Lineax operator
(`gaugedsl/dynamics/noise.py`), one step's `g(θ)·sqrt(dt)`; an entry says which one to build and
everything else a stage asks about the noise:

- `isotropic(T)`: `sqrt(2T) dW` on every coordinate. The charges of linear generators drift by
  `T tr A_a` and are otherwise martingales (P3); nothing balances, so there is no stationary law
  on the slice.
- `projected(T)`: `sqrt(2T) P_H dW`, restricted to the directions orthogonal to the orbits. Its
  charges come to rest (P4) and the stationary law on the slice is `exp(−L/T)·det G^(−1/2)`
  (P5, P6); the charge keeper, the slice sampler and `dynamics = quotient` are built for it.
- `sgd(lr, batch)`, `label(sigma, lr, batch)`: the diffusion limits of minibatch and label-noise
  SGD, from the per-sample gradients. Orthogonal to the orbits but state-dependent, so no law is
  predicted for them.
"""

from __future__ import annotations

from typing import Any

from .setting import Setting


def _temperature() -> Setting:
    return Setting("T", "float", "temperature", required=True, positive=True)


class NoiseKind:
    """A noise model. Subclasses set the class attributes and override `diffusion`.

    - `name`, `doc`, `settings`: what `noise name(...)` accepts, in positional order; each setting
      is a number the compiled run reads (`Numbers[name]`), so an override of it reaches the run.
    - `per_sample`: the diffusion reads per-sample gradients, so it needs `loss per ...` (E509).
    - `temperature`: it has a temperature `T` (a design's `strength` sets it).
    - `horizontal`: `sqrt(2T) P_H dW` at a constant T: the charges come to rest, the law on the
      slice is predicted, `dynamics = quotient` integrates it and the charge keeper applies.
    - `martingale_charges`: P3 holds: `χ_a − T tr(A_a) t` is a martingale under the SDE.
    - `discrete`: how the discrete maps (`dynamics = sgd`, `gd`) add it: `"kick"` (its diffusion
      over one step of length lr, as SGLD), `"labels"` (each step's labels perturbed by
      `sigma·N(0, 1)`), or None (the minibatch is the noise; `gd` ignores it, W801).
    - `state_dependence`: why the diffusion depends on θ (the solver diagnostic E810); empty
      when it is additive on flat parameters.
    - `why_no_law`: why no stationary law is predicted under it; None where one is (`horizontal`).
    - `charge_note`: why an SDE under it has no charge row, where neither P3 nor P4 applies.
    """

    name: str = ""
    doc: str = ""
    settings: tuple[Setting, ...] = ()
    per_sample: bool = False
    temperature: bool = False
    horizontal: bool = False
    martingale_charges: bool = False
    discrete: str | None = None
    state_dependence: str = ""
    why_no_law: str | None = None
    charge_note: str = ""

    def defaults(self, samples: int | None) -> dict[str, float]:
        """Values of optional settings that depend on the data (`samples`: the dataset's size)."""
        return {}

    def diffusion(self, sim) -> Any:
        """The diffusion operator (`dynamics/noise.AbstractNoise`) of a `Simulation` under
        construction: its `constraint`, `layout`, `geo` (the geometry) and `objective`."""
        raise NotImplementedError

    def signature(self) -> str:
        return f"noise {self.name}(" + ", ".join(f"{s.name} = ..." for s in self.settings) + ")"


class Isotropic(NoiseKind):
    name, doc = "isotropic", "isotropic Langevin noise sqrt(2T) dW"
    settings = (_temperature(),)
    temperature = martingale_charges = True
    discrete = "kick"
    state_dependence = (
        "on a Sphere or Stiefel manifold the noise is projected onto the tangent space, which depends on θ"
    )
    why_no_law = (
        "isotropic noise: the charges are martingales (P3), nothing drives the parameters to the balanced "
        "slice, and exp(−L/T) is not normalisable along the orbits; the law exp(−L/T)·det G^(−1/2) is that "
        "of projected noise"
    )

    def diffusion(self, sim):
        from ..dynamics.noise import Isotropic as Operator

        return Operator(sim.constraint, sim.layout.dimension)


class Projected(NoiseKind):
    name, doc = "projected", "noise restricted to the directions orthogonal to the symmetry orbits"
    settings = (_temperature(),)
    temperature = horizontal = True
    discrete = "kick"
    state_dependence = "projected noise depends on θ (through the orbit directions)"

    def diffusion(self, sim):
        from ..dynamics import _geometry
        from ..dynamics.noise import Projected as Operator

        return Operator(sim.constraint, _geometry.horizontal_projection(sim.geo), sim.layout.dimension)


_STATE_DEPENDENT_LAW = (
    "noise: its covariance is orthogonal to the orbits but state-dependent, so the projected-noise law "
    "exp(−L/T)·det G^(−1/2) (P5) would only approximate this model's law; it is not shown as its own"
)
_GRADIENT_COVARIANCE = (
    "noise: the charges drift with the gradient covariance (P2's general form), which this run does not record"
)


class Minibatch(NoiseKind):
    name, doc = "sgd", "minibatch SGD noise in the diffusion limit: sqrt(lr/batch) Σ(θ)^½ dW"
    settings = (
        Setting("lr", "float", "learning rate", required=True, positive=True),
        Setting("batch", "int", "minibatch size", required=True, positive=True),
    )
    per_sample = True
    state_dependence = "minibatch noise depends on θ (through the per-sample gradients)"
    why_no_law = "sgd " + _STATE_DEPENDENT_LAW
    charge_note = "sgd " + _GRADIENT_COVARIANCE

    def diffusion(self, sim):
        from ..dynamics.noise import Minibatch as Operator

        obj = sim.objective
        return Operator(sim.constraint, obj.per_sample_grads, obj.n, obj.finite)


class Label(NoiseKind):
    name, doc = "label", "label-noise SGD: the target of each sample is perturbed by sigma·N(0, 1)"
    settings = (
        Setting("sigma", "float", "label noise standard deviation", required=True, positive=True),
        Setting("lr", "float", "learning rate", required=True, positive=True),
        Setting("batch", "int", "minibatch size (default: full batch)", positive=True),
    )
    per_sample = True
    discrete = "labels"
    state_dependence = "label noise depends on θ (through the per-sample gradients)"
    why_no_law = "label " + _STATE_DEPENDENT_LAW
    charge_note = "label " + _GRADIENT_COVARIANCE

    def defaults(self, samples):
        return {"batch": float(samples or 1)}

    def diffusion(self, sim):
        from ..dynamics.noise import LabelNoise
        from ..dynamics.noise import Minibatch as Operator

        obj = sim.objective
        minibatch = Operator(sim.constraint, obj.per_sample_grads, obj.n, obj.finite)
        return LabelNoise(sim.constraint, minibatch, obj.label_jacobians, obj.label_size)


NOISES: dict[str, NoiseKind] = {k.name: k for k in (Isotropic(), Projected(), Minibatch(), Label())}
