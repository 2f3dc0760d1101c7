"""Dynamics: drift and diffusion as Equinox modules built from the IR through the one
lowering, integrated by Diffrax (`sde`) or iterated as the discrete maps (`sgd`, `gd`), for an
ensemble of particles under one `jit`."""

from .drift import Drift as Drift
from .ensemble import Result as Result
from .ensemble import Simulation as Simulation
from .ensemble import State as State
from .manifolds import Constraint as Constraint
from .noise import (
    AbstractNoise as AbstractNoise,
)
from .noise import (
    Isotropic as Isotropic,
)
from .noise import (
    LabelNoise as LabelNoise,
)
from .noise import (
    Minibatch as Minibatch,
)
from .noise import (
    Projected as Projected,
)
from .plan import Numbers as Numbers
from .plan import Plan as Plan
from .plan import resolve as resolve
