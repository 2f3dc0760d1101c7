"""Result files, written atomically: `results.npz` (the records, one array per label with its
steps, the final and initial θ, which particles stayed healthy), `summary.json` (program
hash, versions, seed, settings, wall time, the comparison table) and, while a run is going,
`checkpoint.npz` (enough to resume it bit for bit)."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, ir
from ..atomic import write_json, write_npz
from ..dynamics.ensemble import Result, State


def versions() -> dict[str, str]:
    out = {"gaugedsl": __version__, "python": platform.python_version()}
    for name in ("jax", "jaxlib", "equinox", "diffrax", "lineax", "numpy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            out[name] = "unknown"
    return out


def write_results(folder: Path, model: ir.Model, result: Result, summary: dict[str, Any]) -> list[Path]:
    """Writes results.npz and summary.json into `folder` (each atomically)."""
    arrays: dict[str, np.ndarray] = {}
    for label, values in result.records.items():
        arrays[label] = values
        arrays[f"{label}.steps"] = result.record_steps[label]
    arrays["theta_final"] = result.theta
    if result.theta0 is not None:
        arrays["theta_initial"] = result.theta0
    arrays["healthy"] = result.healthy
    arrays["diverged_at"] = result.diverged_at
    folder.mkdir(parents=True, exist_ok=True)
    npz = write_npz(folder / "results.npz", arrays)
    info = {
        "model": model.name,
        "program": model.path,
        "program_hash": model.source_hash,
        "versions": versions(),
        "seed": result.plan.seed,
        "plan": result.plan.as_dict(),
        "numbers": result.numbers,
        "noise": None if model.noise is None else {"kind": model.noise.kind, **dict(model.noise.settings)},
        "wall_time_s": result.wall_time,
        "healthy_particles": int(result.healthy.sum()),
        **summary,
    }
    js = write_json(folder / "summary.json", info, indent=2, default=_jsonable)
    return [npz, js]


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


# ---- checkpoints ----


def save_checkpoint(folder: Path, state: State, meta: dict[str, Any]) -> Path:
    arrays = {
        "theta": state.theta,
        "keys": state.keys,
        "step": np.asarray(state.step),
        "diverged_at": state.diverged_at,
        **({"theta0": state.theta0} if state.theta0 is not None else {}),
        "meta": np.asarray(json.dumps(meta, sort_keys=True, default=_jsonable)),
    }
    for label, chunks in state.records.items():
        if chunks:
            arrays[f"record:{label}"] = np.concatenate(chunks)
    folder.mkdir(parents=True, exist_ok=True)
    return write_npz(folder / "checkpoint.npz", arrays)


def load_checkpoint(folder: Path, labels: list[str]) -> tuple[State, dict[str, Any]] | None:
    path = folder / "checkpoint.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        records = {label: ([z[f"record:{label}"]] if f"record:{label}" in z.files else []) for label in labels}
        theta0 = z["theta0"] if "theta0" in z.files else None
        state = State(z["theta"], z["keys"], int(z["step"]), records, z["diverged_at"], theta0)
    return state, meta
