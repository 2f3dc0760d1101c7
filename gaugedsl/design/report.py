"""What `gaugedsl design` prints: the target, the realization and the bias check."""

from __future__ import annotations


def render(d) -> str:
    r, v = d.realization, d.verification
    unit = (
        " (per unit temperature: the model sets no T for this bias)"
        if r.T is None
        else f" (T = {v.T:g}, from {r.T_from})"
    )
    lines = [
        f"designed {d.out} from {d.source}",
        f"  target        {r.target} of {r.predictor}: {r.formula()}{unit}",
        f"  realization   {r.realized_as()}, symmetry '{r.symmetry}': {r.group()}",
    ]
    if r.operator is not None and r.operator.matrix is not None:
        lines.append(f"  operator      {r.operator.symbol} = {r.operator.what}")
    lines.append(
        f"  factors       {', '.join(r.factors)} ~ normal(0, {r.init_std:g})"
        + (f"; lr = {r.lr:g}" if r.lr is not None else "")
    )
    lines += [
        "  verification  induced (T/2) log det G (geometry engine, generic Gram route, float64)",
        f"                against the target at {len(v.induced)} random points on the gauge slice (max |charge| {v.max_charge:.1e}):",
        f"      {'point':>5} {'induced':>20} {'target':>20} {'induced − target':>20}",
    ]
    for i, (a, b) in enumerate(zip(v.induced, v.target), 1):
        lines.append(f"      {i:>5} {a:>20.10f} {b:>20.10f} {a - b:>20.10f}")
    expected = "(T/2)·n·log L" if r.kind == "hadamard" else "0"
    lines.append(f"  induced − target = {v.constant:.10f} at every point (expected {expected} = {v.expected:.10f}):")
    lines.append(
        f"  equal up to a constant, max deviation {v.deviation:.2e} (relative to the bias {v.deviation / max(v.scale, 1e-300):.1e})"
    )
    return "\n".join(lines)
