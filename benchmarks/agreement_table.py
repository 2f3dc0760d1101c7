"""The agreement table of docs/theory.md (§12) and docs/dynamics.md: for each example, the full
projected-noise simulation (`dynamics = sde`), the dynamics on the quotient (`dynamics = quotient`)
and the independent sampler of the predicted law (BlackJAX NUTS on the slice chart), side by side.

Not a speed benchmark: it measures agreement. Each example is run at its own sizes (the shapes of
its data and parameters) with the run settings changed only where its own would not reach the
stationary law in minutes (a higher T, a start on the gauge slice, a longer t); every change is
printed in the table's "settings" column. For each of the two dynamics the run's own law rows give
max_i |z| of the paired per-coordinate means against the sampler (Bonferroni threshold), KS and
energy distance against their permutation floors (the floor's mean shown; the verdict is the
permutation p-value's), and the stationarity check; the two dynamics are
also compared with each other directly (independent ensembles: per-coordinate z of the difference of
the means of per-particle time averages over the second half, Bonferroni over the coordinates).

Run `python benchmarks/agreement_table.py [--only NAME ...] [--dynamics quotient]
[--set steps=384000]` (hours on 2 cores for every case; the `sde` runs of depth 3–4 and of the
GL(4) factorization take 10–60 minutes each); it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 examples need it; float32 ones keep their dtype
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaugedsl.dynamics.devices import request_host_devices  # noqa: E402

request_host_devices()  # as `gaugedsl run` does, before JAX starts

import numpy as np  # noqa: E402

import gaugedsl  # noqa: E402
from gaugedsl.diagnostics import GaugeError  # noqa: E402
from gaugedsl.report.law_rows import bonferroni_z  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# name, example file, predictor record, run-block settings, noise T (None: the example's), text edits.
# Depth 3 and 4 run to t = 240: at t = 60 their ensembles had not mixed near the coordinate planes
# (the energy distance disagreed while means, KS and stationarity agreed; docs/dynamics.md).
# Depth 2 on Positive too: its law sits at the non-negative least-squares fit (entries up to 13,
# from a start at 0.01), which the particles had not reached at t = 60 (stationarity disagreed).
CASES = [
    ("scalar u·v", "scalar_projected.gauge", "w", dict(particles=4000, dt="1e-2", steps=8000, start="slice"), None, []),
    (
        "scalar u·v, u on Positive",
        "scalar_projected.gauge",
        "w",
        dict(particles=4000, dt="1e-2", steps=8000, start="slice"),
        None,
        [("param u : R", "param u : Positive")],
    ),
    ("diagonal net (quick start)", "diagonal_net.gauge", "w", {}, None, []),
    (
        "deep diagonal L = 2",
        "deep_diagonal_L2.gauge",
        "w",
        dict(particles=256, dt="2.5e-3", steps=24000, start="slice"),
        0.05,
        [],
    ),
    (
        "deep diagonal L = 2, U on Positive",
        "deep_diagonal_L2.gauge",
        "w",
        dict(particles=256, dt="2.5e-3", steps=96000, start="slice"),
        0.05,
        [("param U : R[2, 20] = normal(0, 0.1)", "param U : Positive[2, 20] = abs(normal(0, 0.1))")],
    ),
    (
        "deep diagonal L = 3",
        "deep_diagonal_L3.gauge",
        "w",
        dict(particles=256, dt="2.5e-3", steps=96000, start="slice"),
        0.05,
        [],
    ),
    (
        "deep diagonal L = 3, u1 on Positive",
        "deep_diagonal_L3.gauge",
        "w",
        dict(particles=256, dt="2.5e-3", steps=96000, start="slice"),
        0.05,
        [("param u1 : R[20] = normal(0, 0.1)", "param u1 : Positive[20] = 0.1 + uniform(0, 0.1)")],
    ),
    (
        "deep diagonal L = 4",
        "deep_diagonal_L4.gauge",
        "w",
        dict(particles=256, dt="2.5e-3", steps=96000, start="slice"),
        0.05,
        [],
    ),
    (
        "deep diagonal L = 4, U on Positive",
        "deep_diagonal_L4.gauge",
        "w",
        dict(particles=256, dt="2.5e-3", steps=96000, start="slice"),
        0.05,
        [("param U : R[4, 20] = normal(0, 0.3)", "param U : Positive[4, 20] = abs(normal(0, 0.3))")],
    ),
    (
        "deep diagonal L = 4 (vectors)",
        "deep_diagonal_L4_vectors.gauge",
        "w",
        dict(particles=256, dt="2.5e-3", steps=96000, start="slice"),
        0.05,
        [],
    ),
    (
        "matrix factorization GL(4)",
        "matrix_factorization_gl.gauge",
        "W",
        dict(particles=256, dt="1e-3", steps=20000, start="slice"),
        0.05,
        [("record every 500: sigma", "record every 500: W, sigma")],
    ),
    (
        "attention diagonal",
        "attention_diagonal.gauge",
        "out",
        dict(particles=256, dt="1e-2", steps=20000, start="slice"),
        0.05,
        [("record every 100: charge(columns)", "record every 100: out, charge(columns)")],
    ),
    # the example has no stationary law (softmax saturates, the cone measure grows: docs/theory.md
    # §10); an invariant penalty on the column products makes it normalisable
    (
        "attention diagonal + λ Σ‖q_j‖²‖k_j‖²",
        "attention_diagonal.gauge",
        "out",
        dict(particles=256, dt="1e-2", steps=20000, start="slice"),
        0.05,
        [
            (
                "loss = mean((out - Y)^2)",
                "loss = mean((out - Y)^2) + 0.05 * sum(sum(Wq^2, axis = 0) * sum(Wk^2, axis = 0))",
            ),
            ("record every 100: charge(columns)", "record every 100: out, charge(columns)"),
        ],
    ),
    # with W_V free the law above exists but mixes in t ~ 1e4–1e5: the loss is quadratic in W_V with Hessian
    # (2/64)(AX)ᵀ(AX) ⊗ I, nearly singular wherever the attention A averages tokens (docs/dynamics.md); with the
    # values held at the teacher's the head is its cone part alone (48 coordinates, 4 pairs)
    (
        "attention diagonal + λ Σ‖q_j‖²‖k_j‖², W_V = the teacher's",
        "attention_diagonal.gauge",
        "out",
        dict(particles=256, dt="1e-2", steps=20000, start="slice"),
        0.05,
        [
            (
                "loss = mean((out - Y)^2)",
                "loss = mean((out - Y)^2) + 0.05 * sum(sum(Wq^2, axis = 0) * sum(Wk^2, axis = 0))",
            ),
            ("param Wv : R[6, 4] = normal(0, 0.1)\n", ""),
            ("@ (X @ Wv)", "@ (X @ V_t)"),
            ("record every 100: charge(columns)", "record every 100: out, charge(columns)"),
        ],
    ),
]


def variant(text: str, settings: dict, T: float | None, edits: list) -> str:
    """The example with run-block settings replaced (or added), T replaced, and literal edits."""
    for old, new in edits:
        if old not in text:
            raise SystemExit(f"edit not applicable: {old!r}")
        text = text.replace(old, new)
    for key, value in settings.items():
        pattern = re.compile(rf"^(\s*){key}\s*=.*$", re.M)
        if pattern.search(text):
            text = pattern.sub(lambda m, k=key, v=value: f"{m.group(1)}{k} = {v}", text, count=1)
        else:
            text = re.sub(r"(run\s*\{\n)", rf"\g<1>  {key} = {value}\n", text, count=1)
    if T is not None:
        text = re.sub(r"projected\(T\s*=\s*[^)]*\)", f"projected(T = {T})", text)
    return text


def law_summary(result) -> dict:
    """The law rows of a run, by kind."""
    out = {}
    for row in result.table:
        q = row.quantity
        if q.startswith("max_i |z| of E["):
            out["z"] = (row.simulated, row.predicted, row.verdict)
        elif q.startswith("max_i KS("):  # judged by the permutation p-value (docs/theory.md §11)
            out["ks"] = (row.simulated, row.predicted, row.verdict)
        elif q.startswith("energy distance("):
            out["energy"] = (row.simulated, row.predicted, row.verdict)
        elif q.startswith("stationarity of"):
            out["stationary"] = (row.simulated, row.predicted, row.verdict)
        elif q.endswith("(second half)") and row.source == "P5":  # a scalar predictor: the exact 1-D law
            z = abs(row.simulated - row.predicted) / row.error
            out["z"] = (z, 3.0, row.verdict)
        elif row.source == "P5" and row.floor_sd is not None and "KS" in q:
            out["ks"] = (row.simulated, row.predicted + 3 * row.floor_sd, row.verdict)
        elif q.startswith("law of") and row.verdict == "no prediction":
            out["none"] = row.why
    return out


def time_averages(result, label: str) -> np.ndarray:
    values = result.records[label][:, result.result.healthy]
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    return flat[flat.shape[0] // 2 :].mean(axis=0)  # (N, m)


def cell(entry) -> str:
    if entry is None:
        return "—"
    value, limit, v = entry
    return f"{value:.3g} ({limit:.3g}) {v}"


def run_case(name, file, label, settings, T, edits, which=("sde", "quotient")):
    """Run each dynamics of a case and print its row as soon as it is done (a long case keeps
    what finished); the direct comparison goes on the second dynamics' row."""
    text = variant((EXAMPLES / file).read_text(encoding="utf-8"), settings, T, edits)
    changed = ", ".join(f"{k} = {v}" for k, v in settings.items()) + (f", T = {T}" if T is not None else "")
    changed = (changed + "".join(f", {new.split('=')[0].strip()}" for _, new in edits)) or "as in the example"
    averages = {}
    for dynamics in which:
        program = re.sub(r"^(\s*)dynamics\s*=.*$", rf"\g<1>dynamics = {dynamics}", text, count=1, flags=re.M)
        start = time.perf_counter()
        try:
            result = gaugedsl.load(program).run()
        except GaugeError as exc:
            first = exc.diagnostics[0]
            print(f"| {name} | {changed} | {dynamics}: {first.code} {first.message} | | | | | | | |", flush=True)
            continue
        wall = time.perf_counter() - start
        r = law_summary(result)
        averages[dynamics] = time_averages(result, label)
        direct = None
        if len(averages) == 2:
            a, b = averages.values()
            se = np.sqrt(a.var(0, ddof=1) / a.shape[0] + b.var(0, ddof=1) / b.shape[0])
            z = np.abs(a.mean(0) - b.mean(0)) / np.maximum(se, 1e-300)
            limit = bonferroni_z(z.size)
            direct = (float(z.max()), limit, "agrees" if z.max() <= limit else "disagrees")
        if "none" in r:
            cells = [f"no prediction: {r['none']}", "—", "—", cell(r.get("stationary"))]
        else:
            cells = [cell(r.get("z")), cell(r.get("ks")), cell(r.get("energy")), cell(r.get("stationary"))]
        mean = ", ".join(f"{x:.3g}" for x in averages[dynamics].mean(0)[:3])
        print(
            f"| {name} | {changed} | {dynamics} | {mean} | " + " | ".join(cells)
            + f" | {cell(direct) if direct else ''} | {wall:.0f} |",
            flush=True,
        )  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="case names containing any of these strings ('=NAME': exactly NAME)")
    parser.add_argument("--dynamics", nargs="*", default=["sde", "quotient"], help="which dynamics to run")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a run setting")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    print(
        "| example | settings changed | dynamics | E[w] (first 3) | max\\|z\\| vs sampler (limit) | KS (floor mean) "
        "| energy (floor mean) | stationarity (limit) | sde vs quotient max\\|z\\| (limit) | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, file, label, settings, T, edits in CASES:
        if args.only and not any(name == s[1:] if s.startswith("=") else s in name for s in args.only):
            continue
        run_case(name, file, label, {**settings, **overrides}, T, edits, which=tuple(args.dynamics))


if __name__ == "__main__":
    main()
