"""What a run is: the static plan (changing it recompiles) and the numbers (traced arrays,
changing them does not).

The plan is resolved once from the IR's `run` and `noise` blocks plus command-line overrides.
Temperatures, step sizes, learning rates and seeds never enter a compiled program as Python
constants: they travel as `Numbers` (arrays) or as PRNG keys.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import ir
from ..diagnostics import GaugeError, error
from ..kinds import NOISES

# Record buffers of one chunk stay below this many numbers (all particles together).
_CHUNK_BUFFER_LIMIT = 32 * 2**20
# The longest SDE chunk whose time (in steps, in the state's dtype) Diffrax integrates step by
# step: it ends a solve at t1 once the next time is within 100 ULPs of t1, which in float32 is a
# whole step from 2^17 steps on (the chunk would end with one double step, its last record unset).
_SDE_CHUNK_LIMIT = {"float32": 2**16, "float64": 2**40}


@dataclasses.dataclass(frozen=True)
class Plan:
    """The structural settings of a run (each one is part of the compiled program).

    - `dynamics`: `sde`, `quotient` (the projected-noise SDE on the gauge slice, quotient.py),
      `sgd` (the discrete minibatch map) or `gd`.
    - `noise`: the noise kind (`isotropic`, `projected`, `sgd`, `label`) or `None`.
    - `batch`: minibatch size of the discrete `sgd` map (a shape, hence static).
    - `chunk`: steps per compiled call; a multiple of every record interval.
    - `segment`: the steps of the compiled SDE call (`sde`, `quotient`), which a chunk runs as
      many calls of; it does not depend on `chunk`, so a chunk length changes where the run
      checkpoints, never the program that steps it (bit-identical results). The discrete maps
      compile the chunk itself (they are bit-identical across lengths as compiled).
    - `unit`: the greatest common divisor of the record intervals (the finest time grid
      that records, divergence probes and the discrete map's blocks use).
    """

    dynamics: str
    noise: str | None
    solver: str
    particles: int
    steps: int
    chunk: int
    segment: int
    unit: int
    batch: int | None
    dtype: str
    start: str
    seed: int
    records: tuple[ir.Record, ...]
    increments: str = "gaussian"  # the SDE's Brownian increments: gaussian or rademacher (solve.py)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["records"] = [{"every": r.every, "items": [i.label for i in r.items]} for r in self.records]
        return d


class Numbers(eqx.Module):
    """The numeric settings, as traced scalars, so that a new value does not recompile.

    - `dt`: the time one step advances: the SDE's `dt`, or the learning rate of the
      discrete maps (time t = k·lr).
    - `settings`: the noise model's settings by name (its registry entry's `settings`, e.g.
      `T` of projected noise, `lr` and `batch` of sgd noise), and `lr` for the discrete maps;
      read as `numbers["T"]`.
    """

    dt: Float[Array, ""]
    settings: dict[str, Float[Array, ""]]

    def __getitem__(self, name: str) -> Float[Array, ""]:
        return self.dt if name == "dt" else self.settings[name]

    def as_dict(self) -> dict[str, float]:
        # The shortest decimal that rounds to the stored value: dt = 0.01 in float32 reads
        # 0.01 in summary.json, not 0.009999999776482582.
        def shortest(x) -> float:
            x = np.asarray(x)
            return float(str(x.astype(np.float32))) if x.dtype == np.float32 else float(x)

        return {"dt": shortest(self.dt), **{k: shortest(v) for k, v in self.settings.items()}}


def resolve(
    model: ir.Model,
    *,
    particles: int | None = None,
    steps: int | None = None,
    seed: int | None = None,
    chunk: int | None = None,
    dtype: str | None = None,
) -> Plan:
    """The plan of `model`'s run block, with overrides. Raises `GaugeError` with a span on
    the setting to change."""
    if model.run is None:
        raise GaugeError(
            [
                error(
                    "E801",
                    model.name_span,
                    f"model '{model.name}' has no run block",
                    "add `run { dynamics = sde ... }` to simulate it",
                )
            ]
        )
    run = model.run
    dynamics = run.get("dynamics")
    noise = model.noise.kind if model.noise is not None else None
    if model.loss is None:
        raise GaugeError([error("E802", run.span, "there is no loss to descend", "declare `loss = ...`")])
    if run.get("increments", "gaussian") != "gaussian" and dynamics not in ("sde", "quotient"):
        raise GaugeError(
            [
                error(
                    "E810",
                    run.span_of("increments"),
                    f"increments = {run.get('increments')} is for the SDEs (dynamics = sde or quotient); "
                    f"dynamics = {dynamics} draws its noise as its noise model says",
                    "remove `increments`, or use dynamics = sde",
                )
            ]
        )
    # (new names: the parameters are declared Optional, and a setting is Any)
    n_particles: int = particles if particles is not None else run.get("particles", 1)
    n_steps: int = steps if steps is not None else run.get("steps", 1000)
    first_seed: int = seed if seed is not None else run.get("seed", 0)
    if not 1 <= n_particles < 2**31 or not 1 <= n_steps < 2**31 or not 0 <= first_seed < 2**32:
        bad = [
            f"{name} = {value}"
            for name, value, low, below in (
                ("particles", n_particles, 1, 2**31),
                ("steps", n_steps, 1, 2**31),  # the step counter is a 32-bit integer on the device
                ("seed", first_seed, 0, 2**32),  # a JAX key holds 32 bits
            )
            if value < low or (below is not None and value >= below)
        ]
        raise GaugeError(
            [
                error(
                    "E803",
                    run.span,
                    f"{', '.join(bad)}: particles and steps must be from 1 to 2^31 − 1, seed from 0 to 2^32 − 1",
                    "change the run block's setting, or the override (--particles, --steps, --seed)",
                )
            ]
        )
    everys = [r.every for r in run.records]
    unit = math.gcd(*everys) if everys else 1
    lcm = math.lcm(*everys) if everys else 1
    per_step = sum(_size(i.value.shape) for r in run.records for i in r.items) or 1
    if chunk is None and run.get("chunk") is not None:
        given: int = run.get("chunk")
        chunk = given
        if given % lcm:
            raise GaugeError(
                [
                    error(
                        "E804",
                        run.span_of("chunk"),
                        f"chunk = {chunk} is not a multiple of the record intervals (every {', '.join(map(str, sorted(set(everys))))})",
                        f"use chunk = {_round_up(chunk, lcm)}",
                    )
                ]
            )
    elif chunk is not None and chunk % lcm:
        chunk = _round_up(chunk, lcm)
    time_limit = _SDE_CHUNK_LIMIT[dtype or run.get("dtype", "float32")] if dynamics in ("sde", "quotient") else None
    # About ten progress updates and checkpoints per run, bounded record buffers.
    default = _round_up(max(1, -(-n_steps // 10)), lcm)
    cap = max(lcm, (_CHUNK_BUFFER_LIMIT // max(1, n_particles * per_step)) * unit // lcm * lcm)
    if time_limit is not None:
        cap = min(cap, max(lcm, time_limit // lcm * lcm))
    default = max(lcm, min(default, cap))
    if chunk is None:
        chunk = default
    elif time_limit is not None and chunk > time_limit and run.get("chunk") is None:  # --chunk, chunk=: a knob
        chunk = max(lcm, time_limit // lcm * lcm)
    elif time_limit is not None and chunk > time_limit:
        raise GaugeError(
            [
                error(
                    "E804",
                    run.span_of("chunk"),
                    f"chunk = {chunk} is longer than an SDE chunk can be in {dtype or run.get('dtype', 'float32')}: "
                    f"at most {time_limit} steps (the solver's time would lose whole steps)",
                    f"use chunk = {max(lcm, time_limit // lcm * lcm)}",
                )
            ]
        )
    batch = run.get("batch") if dynamics == "sgd" else None
    return Plan(
        dynamics=dynamics,
        noise=noise,
        solver=run.get("solver", "euler"),
        increments=run.get("increments", "gaussian"),
        particles=int(n_particles),
        steps=int(n_steps),
        chunk=int(chunk),
        segment=int(default) if time_limit is not None else int(chunk),
        unit=int(unit),
        batch=None if batch is None else int(batch),
        dtype=dtype or run.get("dtype", "float32"),
        start=run.get("start", "init"),
        seed=int(first_seed),
        records=run.records,
    )


def numbers(model: ir.Model, plan: Plan, dtype, **overrides: float) -> Numbers:
    """The numeric settings from the model, with overrides (`dt`, `lr` or the noise model's
    settings; see `used_numbers`)."""
    noise = model.noise
    run, loss = model.run, model.loss
    assert run is not None and loss is not None  # the plan's resolve() refuses a model without them
    values: dict[str, float] = {}
    if noise is not None:
        kind = NOISES[noise.kind]
        samples = loss.per_sample.size if loss.per_sample is not None else None
        given = {s.name: noise.get(s.name) for s in kind.settings}
        declared = {s.name: s.default for s in kind.settings if s.default is not None}
        values = {**declared, **kind.defaults(samples), **{k: v for k, v in given.items() if v is not None}}
    if plan.dynamics in ("sde", "quotient"):
        dt = run.get("dt", 1e-2)
    else:
        dt = values["lr"] = run.get("lr")
    used = used_numbers(model, plan)
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in used:
            raise GaugeError([_unused(model, plan, k, v, used)])
        if k == "dt" or (k == "lr" and plan.dynamics in ("gd", "sgd")):
            dt = v  # the step of a discrete map is its learning rate
        values[k] = v
    values.pop("dt", None)
    return Numbers(
        jnp.asarray(float(dt), dtype=dtype), {k: jnp.asarray(float(v), dtype=dtype) for k, v in values.items()}
    )


def used_numbers(model: ir.Model, plan: Plan) -> tuple[str, ...]:
    """The numeric settings this model's run reads, so the ones an override may change:
    `lr` for `dynamics = gd`/`sgd` (its step), else `dt` and the noise model's settings."""
    if plan.dynamics in ("gd", "sgd"):
        return ("lr",)
    kind = NOISES.get(model.noise.kind) if model.noise is not None else None
    return ("dt", *(s.name for s in kind.settings)) if kind is not None else ("dt",)


def _unused(model: ir.Model, plan: Plan, name: str, value, used: tuple[str, ...]):
    noise = f", noise {model.noise.kind}" if model.noise is not None else ", no noise"
    what = f"dynamics = {plan.dynamics}{noise if plan.dynamics in ('sde', 'quotient') else ''}"
    if name == "batch" and plan.dynamics == "sgd":
        why = "the minibatch size of dynamics = sgd is the shape of the compiled step, not a number it reads"
        hint = f"change `batch` in the run block (a new program is compiled for it); {what} uses: {', '.join(used)}"
    elif name in ("dt", "lr") or any(name in (s.name for s in k.settings) for k in NOISES.values()):
        why = f"this run does not use {name}"
        hint = f"{what} uses: {', '.join(used)}"
    else:
        why = f"there is no numeric setting '{name}'"
        hint = f"{what} uses: {', '.join(used)}"
    return error(
        "E813",
        model.run.span if model.run is not None else model.name_span,
        f"the override {name} = {value:g} cannot change this run: {why}"
        if isinstance(value, (int, float))
        else f"the override {name} cannot change this run: {why}",
        hint,
    )


def _size(shape) -> int:
    return int(math.prod(shape)) if shape else 1


def _round_up(x: int, k: int) -> int:
    return -(-x // k) * k
