"""A run's records as labelled arrays: an `xarray.Dataset` (`RunResult.to_xarray()`,
`gaugedsl run --format netcdf`) and the theory table as a `pandas.DataFrame`.

The dataset holds what results.npz holds, with names: each recorded value has the dims
(*sweep axes, `record`, `particle`, *its own axes) and the coords `step` and `time` (a second
record interval gets `LABEL.record`, `LABEL.step`, `LABEL.time`); `theta_final`,
`theta_initial`, `healthy` and `diverged_at` are per particle. A grid sweep has one dim per swept
setting, a zipped one a dim `point` with every setting as a coordinate along it. The attrs carry
the plan, the numbers, the versions and the program's hash (JSON text where nested: netCDF
attributes are flat). xarray, pandas and h5netcdf are an optional extra (`[xarray]`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import ir

INSTALL = "pip install xarray h5netcdf h5py (in a clone of gaugedsl: pip install -e '.[xarray]')"


def require(what: str):
    """xarray, or an ImportError that says how to install it."""
    try:
        import xarray
    except ImportError:
        raise ImportError(f"{what} needs xarray, which is not installed: {INSTALL}") from None
    return xarray


def require_netcdf() -> None:
    """Raises an ImportError that says how to install them if xarray, h5netcdf or h5py is missing."""
    require("netCDF output")
    try:
        import h5netcdf  # noqa: F401
        import h5py  # noqa: F401
    except ImportError:
        raise ImportError(f"netCDF output needs h5netcdf and h5py, which are not installed: {INSTALL}") from None


def split_points(values, axis: int, sweep) -> np.ndarray:
    """The particle axis `axis` of a sweep's ensemble (points × particles) → leading sweep axes."""
    values = np.asarray(values)
    if sweep is None:
        return values
    n = values.shape[axis] // sweep.size
    split = values.reshape(*values.shape[:axis], sweep.size, n, *values.shape[axis + 1 :])
    return np.moveaxis(split, axis, 0).reshape(*sweep.shape, *split.shape[:axis], n, *split.shape[axis + 2 :])


def _sweep_dims(sweep) -> tuple[tuple[str, ...], dict[str, Any]]:
    if sweep is None:
        return (), {}
    if sweep.zipped:
        return ("point",), {name: ("point", np.asarray(values)) for name, values in sweep.axes}
    return sweep.names, {name: np.asarray(values) for name, values in sweep.axes}


def dataset(model: ir.Model, result, sweep=None, point_dt: list[float] | None = None, extra_attrs=None):
    """The `xarray.Dataset` of `result` (a `dynamics.ensemble.Result`; of a whole sweep ensemble
    with `sweep`, whose points' time steps are `point_dt`)."""
    xr = require("to_xarray")
    from .results import versions

    lead, coords = _sweep_dims(sweep)
    dts = np.asarray(point_dt if point_dt is not None else [result.numbers["dt"]], dtype=float)
    one_dt = bool(np.all(dts == dts[0]))
    data: dict[str, Any] = {}
    intervals: list[tuple[np.ndarray, str]] = []  # (steps, record dim) of each record interval met
    for label, values in result.records.items():
        steps = np.asarray(result.record_steps[label])
        dim = next((d for s, d in intervals if s.shape == steps.shape and np.array_equal(s, steps)), None)
        if dim is None:
            dim = "record" if not intervals else f"{label}.record"
            intervals.append((steps, dim))
            prefix = "" if dim == "record" else f"{label}."
            coords[f"{prefix}step"] = (dim, steps)
            if one_dt:
                coords[f"{prefix}time"] = (dim, steps * dts[0])
            else:  # dt is swept: each point has its own times
                assert sweep is not None, "one dt per sweep point"
                coords[f"{prefix}time"] = ((*lead, dim), dts.reshape(*sweep.shape, 1) * steps)
        values = split_points(values, 1, sweep)
        own = tuple(f"{label}_{k}" for k in range(values.ndim - 2 - len(lead)))
        data[label] = ((*lead, dim, "particle", *own), values)
    for name, values, trailing in (
        ("theta_final", result.theta, ("theta",)),
        ("theta_initial", result.theta0, ("theta",)),
        ("healthy", result.healthy, ()),
        ("diverged_at", result.diverged_at, ()),
    ):
        if values is not None:
            data[name] = ((*lead, "particle", *trailing), split_points(values, 0, sweep))
    plan = result.plan.as_dict()
    attrs = {
        "model": model.name,
        "program_hash": model.source_hash,
        "seed": int(result.plan.seed),
        "dynamics": str(plan.get("dynamics", "")),
        "dtype": str(plan.get("dtype", "")),
        "plan": json.dumps(plan, default=str),
        "versions": json.dumps(versions()),
    }
    if sweep is None:
        attrs["numbers"] = json.dumps({k: float(v) for k, v in result.numbers.items()})
    else:
        attrs["sweep"] = json.dumps(sweep.as_dict())
    attrs.update(extra_attrs or {})
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write_netcdf(path: Path, ds) -> Path:
    """`ds` to `path` through h5netcdf, atomically (atomic.replacing)."""
    require_netcdf()
    from ..atomic import replacing

    with replacing(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def table_frame(rows):
    """The theory table's rows (report.compare.Row) as a `pandas.DataFrame`, one row each."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(f"to_dataframe needs pandas, which is not installed: {INSTALL}") from None
    return pd.DataFrame([r.as_dict() for r in rows])
