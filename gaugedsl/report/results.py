"""Result files, written atomically: `results.npz` (the records, one array per label with its
steps, the final and initial θ, which particles stayed healthy) and/or `results.nc` (the same as
labelled arrays, report/labelled.py), and `summary.json` (program hash, versions, seed, settings,
wall time, the comparison table, and the sha256 of each results file it describes). `summary.json` is written last and removed first: it marks a
complete pair, so a run killed between the two files never leaves results that look finished.
While a run is going, `checkpoint.npz` (report/checkpoint.py) holds enough to resume it."""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, ir
from ..atomic import write_json, write_npz
from ..dynamics.ensemble import Result
from .labelled import split_points

RESULTS, NETCDF, SUMMARY = "results.npz", "results.nc", "summary.json"
_HASH_KEY = {RESULTS: "results_sha256", NETCDF: "netcdf_sha256"}


def versions() -> dict[str, str]:
    out = {"gaugedsl": __version__, "python": platform.python_version()}
    for name in ("jax", "jaxlib", "equinox", "diffrax", "lineax", "numpy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            out[name] = "unknown"
    return out


def write_results(
    folder: Path,
    model: ir.Model,
    result: Result,
    summary: dict[str, Any],
    figures=None,
    sweep=None,
    formats: tuple[str, ...] = ("npz",),
    point_dt: list[float] | None = None,
) -> list[Path]:
    """Writes results.npz and/or results.nc (`formats`: "npz", "netcdf"), then the figures
    (`figures()` returns their paths), then summary.json into `folder`, each atomically;
    summary.json carries each results file's sha256. With a `sweep` (dynamics/sweep.py), every
    array gains its leading axes (`sweep.shape`) and `sweep.NAME` holds each setting's value at
    every point; `point_dt` is each point's dt (the netCDF file's time coordinate)."""
    points = sweep.shape if sweep is not None else ()
    folder.mkdir(parents=True, exist_ok=True)
    remove_results(folder)
    written: list[Path] = []
    if "npz" in formats:
        arrays: dict[str, np.ndarray] = {}
        for label, values in result.records.items():
            arrays[label] = split_points(values, 1, sweep)
            arrays[f"{label}.steps"] = result.record_steps[label]
        arrays["theta_final"] = split_points(result.theta, 0, sweep)
        if result.theta0 is not None:
            arrays["theta_initial"] = split_points(result.theta0, 0, sweep)
        arrays["healthy"] = split_points(result.healthy, 0, sweep)
        arrays["diverged_at"] = split_points(result.diverged_at, 0, sweep)
        if sweep is not None:
            for name, values in sweep.coordinates().items():
                arrays[f"sweep.{name}"] = np.asarray(values).reshape(points)
        written.append(write_npz(folder / RESULTS, arrays))
    if "netcdf" in formats:
        from .labelled import dataset, write_netcdf

        written.append(write_netcdf(folder / NETCDF, dataset(model, result, sweep, point_dt)))
    pictures = list(figures()) if figures is not None else []
    info = {
        "model": model.name,
        "program": model.path,
        "program_hash": model.source_hash,
        "versions": versions(),
        "seed": result.plan.seed,
        "plan": result.plan.as_dict(),
        # a sweep's numbers and seeds are its points' (summary["points"]); its plan counts all their particles
        **({"numbers": result.numbers} if sweep is None else {"sweep": sweep.as_dict()}),
        "noise": None if model.noise is None else {"kind": model.noise.kind, **dict(model.noise.settings)},
        "wall_time_s": result.wall_time,
        "healthy_particles": int(result.healthy.sum()),
        **summary,
        # the sha256 of each results file it describes: results.npz's, results.nc's
        **{_HASH_KEY[f.name]: hashlib.sha256(f.read_bytes()).hexdigest() for f in written},
    }
    js = write_json(folder / SUMMARY, info, indent=2, default=_jsonable)
    return [*written, js, *pictures]


def remove_results(folder: Path) -> None:
    """Removes a previous run's results, the summary (the mark of a complete pair) first."""
    for name in (SUMMARY, RESULTS, NETCDF):
        (folder / name).unlink(missing_ok=True)


def remove_interrupted_writes(folder: Path) -> None:
    """Removes the temporary files of writes a kill interrupted (atomic.replacing's names)."""
    if folder.is_dir():
        for name in (SUMMARY, RESULTS, NETCDF, "checkpoint.npz"):
            for tmp in folder.glob(f".{name}.*.tmp{Path(name).suffix}"):
                tmp.unlink(missing_ok=True)


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
