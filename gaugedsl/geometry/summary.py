"""What `gaugedsl bias` reports: per symmetry, its geometry at a point, and the predicted law."""

from __future__ import annotations

import jax
import numpy as np

from ..diagnostics import GaugeError
from ..kinds import NOISES
from ..lowering import Lowered
from .checks import degeneracy, symmetry_violations
from .closed_form import closed_form_of
from .engine import Geometry
from .law import LawUnavailable, predicted_law


def bias_summary(lowered: Lowered, at: str = "init", law: bool = True) -> dict:
    """The geometry of every symmetry at the initial point (`at="init"`) or at its
    projection onto the gauge slice (`at="slice"`). Raises `GaugeError` when a symmetry is
    not one (the loss changes, or a parameter leaves its manifold) or its Gram matrix is degenerate at that point."""
    model = lowered.model
    geo = Geometry(lowered)
    problems = symmetry_violations(geo)
    if any(d.severity == "error" for d in problems):
        raise GaugeError(problems)
    theta = lowered.layout.flatten(
        lowered.init_params(jax.random.PRNGKey(model.run.get("seed", 0) if model.run else 0))
    )
    if at == "slice":
        theta = geo.project_to_slice(theta)
    where = "at the initial point" if at == "init" else "at the slice point"
    bad = degeneracy(geo, theta, where)
    if bad:
        raise GaugeError(problems + bad)
    T = model.noise.get("T") if model.noise is not None else None
    params = lowered.layout.unflatten(theta)
    out = {
        "model": model.name,
        "path": model.path,
        "at": at,
        "T": T,
        "dimension": geo.dimension,
        "warnings": [d.render() for d in problems],  # with place, code and hint
        "symmetries": [],
    }
    for name, sym in geo.symmetries.items():
        charges = np.asarray(geo.charges(name, theta))
        logdet = float(geo.logdet_gram(name, theta, structured=False))
        structured = float(geo.logdet_gram(name, theta))
        _, rank = geo.degeneracy(name, theta)
        pattern = geo.patterns[name]
        cf, why_none = closed_form_of(geo, name)
        group = sym.group.kind + (f"[{', '.join(map(str, sym.group.dims))}]" if sym.group.dims else "")
        entry = {
            "name": name,
            "group": group,
            "template": sym.template,
            "doc": sym.doc,
            "algebra_dim": sym.group.algebra_dim,
            "independent_generators": rank,
            "structure": pattern.kind if pattern else (cf.structure if cf and cf.structure else "generic"),
            "charges": charges.tolist(),
            "max_abs_charge": float(np.max(np.abs(charges))) if charges.size else 0.0,
            "gauge_condition": cf.condition if cf else "χ_a(θ) = ½⟨θ, ξ_a(θ)⟩ = 0 for every generator",
            "closed_form_bias": cf.text() if cf else None,
            "closed_form_note": cf.note if cf else why_none,
            "logdet_gram": logdet,
            "logdet_gram_structured": structured,
            "bias": None if T is None else 0.5 * T * logdet,
        }
        if cf is not None and at == "slice" and entry["max_abs_charge"] < 1e-8 and _balanced(pattern, params):
            entry["closed_form_logdet"] = cf.numeric(params)
        out["symmetries"].append(entry)
    without = _why_no_law(model.noise.kind) if model.noise is not None else None
    if law and model.predictors and without is not None:
        out["predicted_law"] = {"none": without}
    elif law and model.predictors and model.noise is not None and T is not None:
        try:
            pl = predicted_law(geo, T, theta0=theta)
            out["predicted_law"] = {
                "predictor": pl.predictor,
                "mean": pl.mean,
                "std": pl.std,
                "gibbs_mean": pl.gibbs_mean,
                "density": "p(w) ∝ exp(−L(w)/T) · det G(θ*(w))^(−1/2)",
            }
        except LawUnavailable as exc:
            out["predicted_law"] = {"unavailable": str(exc)}
    return out


def render(summary: dict) -> str:
    lines = [f"model {summary['model']} — geometry {'at the initial point' if summary['at'] == 'init' else 'on the gauge slice'}"
             f" (D = {summary['dimension']}, T = {summary['T'] if summary['T'] is not None else 'not set'})"]  # fmt: skip
    lines.extend(summary["warnings"])
    for s in summary["symmetries"]:
        lines.append("")
        origin = f" = {s['template']}(...)" if s["template"] else ""
        lines.append(f"symmetry {s['name']}{origin} : {s['group']}")
        if s["doc"]:
            lines += [f"  ## {d}" for d in s["doc"].splitlines()]
        rows = [
            ("Lie algebra dimension", str(s["algebra_dim"])),
            ("independent generators", str(s["independent_generators"])),
            ("structure", s["structure"]),
            ("Noether charges χ", f"{len(s['charges'])} values, max |χ| = {s['max_abs_charge']:.6g}"),
            ("gauge condition", s["gauge_condition"]),
            ("bias R_T (closed form)", s["closed_form_bias"] or f"— ({_none_shown(s)}; numeric below)"),
        ]
        if s["closed_form_note"]:
            rows.append(("", s["closed_form_note"]))
        rows.append(("log det G", f"{s['logdet_gram']:.10g}  (structured route: {s['logdet_gram_structured']:.10g})"))
        if "closed_form_logdet" in s:
            rows.append(("log det G, closed form", f"{s['closed_form_logdet']:.10g}"))
        if s["bias"] is not None:
            rows.append(("R_T = (T/2) log det G", f"{s['bias']:.10g}"))
        width = max(len(k) for k, _ in rows)
        lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    law = summary.get("predicted_law")
    if law:
        lines.append("")
        if "none" in law:
            lines.append(f"predicted stationary law: none for {summary['model']} ({law['none']})")
        elif "unavailable" in law:
            lines.append(f"predicted stationary law: not computed ({law['unavailable']})")
        else:
            lines.append(f"predicted stationary law of {law['predictor']} (projected noise): {law['density']}")
            lines.append(
                f"  E[{law['predictor']}] = {law['mean']:.6g}, std = {law['std']:.6g}   (the plain Gibbs law exp(−L/T) would give E = {law['gibbs_mean']:.6g})"
            )
    return "\n".join(lines)


def _none_shown(entry) -> str:
    return "not shown" if entry["closed_form_note"] else "no closed form for this action"


def _why_no_law(noise: str) -> str | None:
    """Why the model's noise has no predicted stationary law; None for a horizontal noise
    (projected), whose law exp(−L/T)·det G^(−1/2) is the one computed (docs/theory.md P5, P6).

    For `sgd` and `label` noise we show none: their covariance lies in the span of the per-sample
    gradients, orthogonal to the orbits like projected noise, but it is neither isotropic on that
    span nor of constant temperature (it scales with the loss), so the projected-noise law would be
    an approximation of unknown quality, not this model's law."""
    kind = NOISES[noise]
    if kind.horizontal:
        return None
    return kind.why_no_law or f"{noise} noise: no stationary law is stated for it"


def _balanced(pattern, params) -> bool:
    """The closed forms in singular values hold where UᵀU = VᵀV (orthogonal groups do not
    impose it: their charges vanish identically)."""
    if pattern is None or pattern.kind != "orthogonal":
        return True
    u, v = (np.asarray(params[p]) for p in pattern.params)
    v = v.T if pattern.transposed else v
    a, b = u.T @ u, v.T @ v
    return bool(np.max(np.abs(a - b)) <= 1e-8 * max(np.max(np.abs(a)), 1e-300))
