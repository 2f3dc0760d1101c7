"""Checkpoints that prove themselves: `checkpoint.npz` holds where a run stands (θ, keys, step,
records, divergence) and an identity — what the numbers depend on (program hash, a digest of
the data the program loads or draws, the plan, the numeric settings, the versions) and a
digest of the arrays themselves. A resume reads it back only when every part matches this run
and every array has the shape, dtype and length the plan implies; otherwise it is refused with
a `CheckpointError` that names what differs. Nothing in a checkpoint is trusted: it may be
truncated, damaged, edited or from another run."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import write_npz
from .results import _jsonable, versions

if TYPE_CHECKING:
    from ..dynamics.ensemble import Simulation, State
    from ..dynamics.plan import Numbers

NAME = "checkpoint.npz"


class CheckpointError(Exception):
    """A checkpoint that cannot be resumed from; the message says why and what to do."""


def array_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def identity(sim: Simulation, numbers: Numbers, program_hash: str) -> dict[str, Any]:
    """What a run's numbers depend on, as JSON values: a checkpoint resumes only a run with
    the same identity. The data digest covers what the program loads from files, which the
    program's hash does not."""
    ident = {
        "program_hash": program_hash,
        "data": array_digest({k: np.asarray(v) for k, v in sim.lowered.data.items()}),
        "plan": sim.plan.as_dict(),
        "numbers": numbers.as_dict() if sim.sweep is None else sim.point_numbers(numbers),
        **({} if sim.sweep is None else {"sweep": sim.sweep.as_dict()}),
        "versions": versions(),
    }
    return json.loads(json.dumps(ident, sort_keys=True, default=_jsonable))


def save_checkpoint(folder: Path, state: State, ident: dict[str, Any]) -> Path:
    arrays = {
        "theta": np.asarray(state.theta),
        "keys": np.asarray(state.keys),
        "step": np.asarray(state.step, np.int64),
        "diverged_at": np.asarray(state.diverged_at),
        **({"theta0": np.asarray(state.theta0)} if state.theta0 is not None else {}),
    }
    for label, chunks in state.records.items():
        if chunks:
            arrays[f"record:{label}"] = np.concatenate(chunks)
    meta = {"identity": ident, "digest": array_digest(arrays)}
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    folder.mkdir(parents=True, exist_ok=True)
    return write_npz(folder / NAME, arrays)


def load_checkpoint(folder: Path, sim: Simulation, ident: dict[str, Any]) -> State | None:
    """The state saved in `folder`, checked against this run; None when there is none.
    Raises `CheckpointError` for a checkpoint that is damaged or belongs to another run."""
    from ..dynamics.ensemble import State

    path = folder / NAME
    if not path.exists():
        return None
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file")
    arrays, meta = _read(path)
    if not {"digest", "identity"} <= set(meta):
        raise CheckpointError(f"{path} was written by an older gaugedsl (it has no identity); run without --resume")
    if meta["digest"] != array_digest(arrays):
        raise CheckpointError(f"{path} is damaged or was edited (its arrays do not match their digest)")
    _same_run(path, meta.get("identity"), ident)
    step = _scalar_step(path, arrays, sim.plan.steps)
    theta = _theta_template(sim)
    _expect(path, arrays, "theta", theta)
    _expect(path, arrays, "keys", _keys_template(sim))
    _expect(path, arrays, "diverged_at", np.empty(sim.plan.particles, np.int64))
    if "theta0" in arrays:
        _expect(path, arrays, "theta0", theta)
    diverged = arrays["diverged_at"]
    if np.any((diverged < -1) | (diverged > step)):
        raise CheckpointError(f"{path}: a particle's divergence step lies outside 0…{step}")
    records: dict[str, list[np.ndarray]] = {}
    for label in sim.recorder.labels:
        count = len(sim._record_steps(label, step)) if step else 0
        shape = (count, sim.plan.particles, *sim.recorder.item(label).value.shape)
        name = f"record:{label}"
        if count == 0:
            if name in arrays:
                raise CheckpointError(f"{path}: '{label}' has records before the first step was run")
            records[label] = []
            continue
        _expect(path, arrays, name, np.empty(shape, sim.dtype))
        records[label] = [arrays[name]]
    unknown = set(arrays) - {"theta", "keys", "step", "diverged_at", "theta0"} - {f"record:{x}" for x in records}
    if unknown:
        raise CheckpointError(f"{path} holds arrays this run does not record: {', '.join(sorted(unknown))}")
    theta0 = arrays.get("theta0")
    return State(arrays["theta"], arrays["keys"], step, records, diverged, theta0)


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        meta = json.loads(str(arrays.pop("meta")[()]))
        if not isinstance(meta, dict):
            raise ValueError("its meta is not a JSON object")
    except KeyError:
        raise CheckpointError(f"{path} is not a gaugedsl checkpoint (no meta); run without --resume") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{path} cannot be read ({exc or type(exc).__name__}): it is damaged or truncated; run without --resume"
        ) from None
    return arrays, meta


def _same_run(path: Path, saved: Any, ident: dict[str, Any]) -> None:
    if saved == ident:
        return
    saved = saved if isinstance(saved, dict) else {}
    words = {
        "program_hash": "program text",
        "data": "data files",
        "plan": "plan (particles, steps, chunk, seed, dtype, solver, records)",
        "numbers": "numeric settings",
        "versions": "versions of gaugedsl, Python or JAX",
        "sweep": "sweep (--sweep)",
    }
    keys = list(ident) + [k for k in saved if k not in ident]
    changed = [words.get(k, k) for k in keys if saved.get(k) != ident.get(k)] or ["identity"]
    raise CheckpointError(
        f"the checkpoint {path} was made by another run: its {' and '.join(changed)} differ; "
        "run without --resume to start afresh"
    )


def _scalar_step(path: Path, arrays: dict[str, np.ndarray], steps: int) -> int:
    step = arrays.get("step")
    if step is None or step.shape != () or step.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: 'step' is missing or not a whole number")
    value = int(step)
    if not 0 <= value <= steps:
        raise CheckpointError(f"{path}: step {value} lies outside this run's 0…{steps}")
    return value


def _expect(path: Path, arrays: dict[str, np.ndarray], name: str, template: np.ndarray) -> None:
    a = arrays.get(name)
    if a is None:
        raise CheckpointError(f"{path} has no '{name}'")
    if a.shape != template.shape or a.dtype != template.dtype:
        raise CheckpointError(
            f"{path}: '{name}' is {a.dtype}{list(a.shape)}, this run needs {template.dtype}{list(template.shape)}"
        )


def _theta_template(sim: Simulation) -> np.ndarray:
    import jax

    shape = jax.eval_shape(sim._init, sim.keys(0)[0])  # traced, not run
    return np.empty(shape.shape, shape.dtype)


def _keys_template(sim: Simulation) -> np.ndarray:
    _, keys = sim.keys(0)
    return np.empty(keys.shape, keys.dtype)
