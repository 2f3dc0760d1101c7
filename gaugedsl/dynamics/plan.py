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
from ..check.settings import NOISE_KINDS
from ..diagnostics import GaugeError, error

# Record buffers of one chunk stay below this many numbers (all particles together).
_CHUNK_BUFFER_LIMIT = 32 * 2**20


@dataclasses.dataclass(frozen=True)
class Plan:
    """The structural settings of a run (each one is part of the compiled program).

    - `dynamics`: `sde`, `quotient` (the projected-noise SDE on the gauge slice, quotient.py),
      `sgd` (the discrete minibatch map) or `gd`.
    - `noise`: the noise kind (`isotropic`, `projected`, `sgd`, `label`) or `None`.
    - `batch`: minibatch size of the discrete `sgd` map (a shape, hence static).
    - `chunk`: steps per compiled call; a multiple of every record interval.
    - `unit`: the greatest common divisor of the record intervals (the finest time grid
      that records, divergence probes and the discrete map's blocks use).
    """

    dynamics: str
    noise: str | None
    solver: str
    particles: int
    steps: int
    chunk: int
    unit: int
    batch: int | None
    dtype: str
    start: str
    seed: int
    records: tuple[ir.Record, ...]

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["records"] = [{"every": r.every, "items": [i.label for i in r.items]} for r in self.records]
        return d


class Numbers(eqx.Module):
    """The numeric settings, as traced scalars.

    - `dt`: the time one step advances: the SDE's `dt`, or the learning rate of the
      discrete maps (time t = k·lr).
    - `T`: temperature of `isotropic`/`projected` noise.
    - `lr`, `batch`: learning rate and batch size that scale `sgd`/`label` noise.
    - `sigma`: label-noise standard deviation.
    """

    dt: Float[Array, ""]
    T: Float[Array, ""]
    lr: Float[Array, ""]
    batch: Float[Array, ""]
    sigma: Float[Array, ""]

    def as_dict(self) -> dict[str, float]:
        # The shortest decimal that rounds to the stored value: dt = 0.01 in float32 reads
        # 0.01 in summary.json, not 0.009999999776482582.
        def shortest(x) -> float:
            x = np.asarray(x)
            return float(str(x.astype(np.float32))) if x.dtype == np.float32 else float(x)

        return {f.name: shortest(getattr(self, f.name)) for f in dataclasses.fields(self)}


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
    # (new names: the parameters are declared Optional, and a setting is Any)
    n_particles: int = particles if particles is not None else run.get("particles", 1)
    n_steps: int = steps if steps is not None else run.get("steps", 1000)
    first_seed: int = seed if seed is not None else run.get("seed", 0)
    if n_particles < 1 or n_steps < 1 or first_seed < 0:
        bad = [
            f"{name} = {value}"
            for name, value, low in (("particles", n_particles, 1), ("steps", n_steps, 1), ("seed", first_seed, 0))
            if value < low
        ]
        raise GaugeError(
            [
                error(
                    "E803",
                    run.span,
                    f"{', '.join(bad)}: particles and steps must be at least 1, seed at least 0",
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
    if chunk is None:
        # About ten progress updates and checkpoints per run, bounded record buffers.
        chunk = _round_up(max(1, -(-n_steps // 10)), lcm)
        cap = max(lcm, (_CHUNK_BUFFER_LIMIT // max(1, n_particles * per_step)) * unit // lcm * lcm)
        chunk = max(lcm, min(chunk, cap))
    batch = run.get("batch") if dynamics == "sgd" else None
    return Plan(
        dynamics=dynamics,
        noise=noise,
        solver=run.get("solver", "euler"),
        particles=int(n_particles),
        steps=int(n_steps),
        chunk=int(chunk),
        unit=int(unit),
        batch=None if batch is None else int(batch),
        dtype=dtype or run.get("dtype", "float32"),
        start=run.get("start", "init"),
        seed=int(first_seed),
        records=run.records,
    )


def numbers(model: ir.Model, plan: Plan, dtype, **overrides: float) -> Numbers:
    """The numeric settings from the model, with overrides (`T`, `dt`, `lr`, `batch`,
    `sigma`)."""
    noise = model.noise
    run, loss = model.run, model.loss
    assert run is not None and loss is not None  # the plan's resolve() refuses a model without them
    get = noise.get if noise is not None else (lambda name, default=None: default)
    n = loss.per_sample.size if loss.per_sample is not None else None
    if plan.dynamics in ("sde", "quotient"):
        dt = run.get("dt", 1e-2)
    else:
        dt = run.get("lr")
    values = {
        "dt": dt,
        "T": get("T", 0.0),
        "lr": get("lr", run.get("lr") or 0.0),
        "batch": get("batch", plan.batch or n or 1),
        "sigma": get("sigma", 0.0),
    }
    used = used_numbers(model, plan)
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in used:
            raise GaugeError([_unused(model, plan, k, v, used)])
        values[k] = v
        if k == "lr" and plan.dynamics in ("gd", "sgd"):
            values["dt"] = v  # the step of a discrete map is its learning rate
    return Numbers(**{k: jnp.asarray(float(v), dtype=dtype) for k, v in values.items()})


def used_numbers(model: ir.Model, plan: Plan) -> tuple[str, ...]:
    """The numeric settings this model's run reads, so the ones an override may change:
    `lr` for `dynamics = gd`/`sgd` (its step), else `dt` and the noise model's settings."""
    if plan.dynamics in ("gd", "sgd"):
        return ("lr",)
    kind = model.noise.kind if model.noise is not None else None
    return ("dt", *(s.name for s in NOISE_KINDS[kind][1])) if kind in NOISE_KINDS else ("dt",)


def _unused(model: ir.Model, plan: Plan, name: str, value, used: tuple[str, ...]):
    noise = f", noise {model.noise.kind}" if model.noise is not None else ", no noise"
    what = f"dynamics = {plan.dynamics}{noise if plan.dynamics in ('sde', 'quotient') else ''}"
    if name == "batch" and plan.dynamics == "sgd":
        why = "the minibatch size of dynamics = sgd is the shape of the compiled step, not a number it reads"
        hint = f"change `batch` in the run block (a new program is compiled for it); {what} uses: {', '.join(used)}"
    elif name in ("dt", "T", "lr", "batch", "sigma"):
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
