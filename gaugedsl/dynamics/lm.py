"""The Leimkuhler–Matthews step (`solver = lm`) for overdamped Langevin with additive noise:

    θ_{n+1} = θ_n + f(θ_n) dt + g (ΔW_n + ΔW_{n−1}) / 2,

Euler–Maruyama with each step's noise the mean of its own increment and the previous step's.
Its trajectories are no better than Euler's (strong order 1/2), but its stationary averages are
second order in dt where Euler's are first order: on a quadratic loss its stationary variance is
exact at every stable dt, where Euler's is T/(k(1 − k dt/2)) (docs/dynamics.md, "Cheaper steps").
The previous increment is the solver's state; each chunk reads the one before its first step off
the Brownian path (the step before the run has its own stream), so a run draws the same whatever
its chunks. Only for additive noise: with θ-dependent noise the averaging changes the Itô drift.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import diffrax


class LeimkuhlerMatthews(diffrax.AbstractItoSolver):
    """`diffrax.Euler` with the noise of each step averaged with the previous step's increment."""

    term_structure: ClassVar = diffrax.MultiTerm[tuple[diffrax.AbstractTerm, diffrax.AbstractTerm]]
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = diffrax.LocalLinearInterpolation

    def order(self, terms):
        return 1

    def strong_order(self, terms):
        return 0.5

    def init(self, terms, t0, t1, y0, args):
        _, diffusion = terms.terms
        return diffusion.contr(t0 - (t1 - t0), t0)  # the increment of the step before t0

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        drift, diffusion = terms.terms
        increment = diffusion.contr(t0, t1)
        noise = (increment + solver_state) / 2
        y1 = y0 + drift.vf_prod(t0, y0, args, drift.contr(t0, t1)) + diffusion.vf_prod(t0, y0, args, noise)
        return y1, None, dict(y0=y0, y1=y1), increment, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
