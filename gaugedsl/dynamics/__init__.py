"""Dynamics: drift and diffusion as Equinox modules built from the IR through the one
lowering, integrated by Diffrax (`sde`) or iterated as the discrete maps (`sgd`, `gd`), for an
ensemble of particles under one `jit`."""

from .drift import Drift as Drift
from .ensemble import Result as Result, Simulation as Simulation, State as State
from .manifolds import Constraint as Constraint
from .noise import (
    AbstractNoise as AbstractNoise,
    Isotropic as Isotropic,
    LabelNoise as LabelNoise,
    Minibatch as Minibatch,
    Projected as Projected,
)
from .plan import Numbers as Numbers, Plan as Plan, resolve as resolve
