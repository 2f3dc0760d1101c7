"""The memory a command will need, from the IR and the plan alone, checked before anything is
allocated. A program that asks for 40 GB of data, a group of dimension 10¹⁰ or a run whose
records outgrow the machine is refused with a diagnostic on the declaration or setting that
makes it large, and the size that would fit, rather than aborting inside XLA.

The estimate counts the largest arrays each stage materializes (parameters and data, the
largest intermediate of any expression, the geometry's generator and Jacobian matrices, the
ensemble's state and per-particle temporaries, the records a run keeps); it is a lower bound
on the peak, within a small factor of it. The budget is `--max-memory`, or 80% of what the
machine (or its container's cgroup) has.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path

from . import ir
from .diagnostics import Diagnostic, GaugeError, Span, error, warning

# What a fast CPU run reaches (particle-steps per second, compilation excluded): a run predicted
# to take longer than LONG_RUN_S even at this rate is warned about.
FAST_RATE = 1e8
LONG_RUN_S = 24 * 3600


@dataclasses.dataclass(frozen=True)
class Need:
    """`bytes` of memory for `what`, attributed to the declaration or setting at `span`."""

    what: str
    bytes: int
    span: Span | None


def machine_memory() -> int:
    """Bytes of memory this process may use: the smaller of the physical memory and the cgroup
    limit of its container."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def default_budget() -> int:
    return int(0.8 * machine_memory())


def parse_size(text: str) -> int:
    """`'4GB'`, `'512M'`, `'1.5GiB'`, `'1000000'` → bytes; ValueError for anything else."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if m is None:
        raise ValueError(f"not a size: {text!r} (write 4GB, 512MB or a number of bytes)")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m[2].lower()]
    return int(float(m[1]) * scale)


def human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError


def _size(shape) -> int:
    return math.prod(int(d) for d in shape)


def _expressions(model: ir.Model):
    """Every expression with its declaration's span; a data or parameter value is counted as the
    declaration itself, so only what is inside it is an intermediate."""
    for d in model.data:
        yield from ((c, d.span) for c in ir.children(d.value))
    for s in model.streams:
        yield s.value, s.span
    for p in model.params:
        yield from ((c, p.span) for c in ir.children(p.init))
    for x in (*model.lets, *model.predictors):
        yield x.value, x.span
    if model.loss is not None:
        yield model.loss.value, model.loss.span
    for sym in model.symmetries:
        for a in sym.actions:
            yield a.value, a.span
    for r in model.run.records if model.run is not None else ():
        for i in r.items:
            yield i.value, i.span


def _largest_intermediate(model: ir.Model) -> tuple[int, Span | None]:
    """The most numbers any one expression node holds (an outer product can be far larger than
    every declaration), and where it is."""
    best, where = 0, None
    for root, span in _expressions(model):
        stack = [root]
        while stack:  # iterative: expressions may nest as deep as the parser allows
            e = stack.pop()
            n = _size(e.shape) if not isinstance(e, ir.Ref) else 0  # a name allocates nothing
            if n > best:
                best, where = n, e.span or span
            stack.extend(ir.children(e))
    return best, where


def program_needs(model: ir.Model, itemsize: int = 8) -> list[Need]:
    """What evaluating the program once needs: data, parameters, the largest intermediate."""
    needs = [Need(f"data '{d.name}'", _size(d.shape) * itemsize, d.span) for d in model.data]
    needs += [Need(f"parameter '{p.name}'", _size(p.manifold.shape) * itemsize, p.span) for p in model.params]
    n, span = _largest_intermediate(model)
    needs.append(Need("the largest intermediate value", n * itemsize, span))
    return needs


def _dimension(model: ir.Model) -> int:
    return sum(_size(p.manifold.shape) for p in model.params)


def _predictor_size(model: ir.Model) -> int:
    return max((_size(p.value.shape) for p in model.predictors), default=1)


def geometry_needs(model: ir.Model, itemsize: int = 8) -> list[Need]:
    """What one point's geometry needs: the generators (k × D), the Gram matrix (k × k) and the
    predictor's Jacobian (m × D), for D parameters, k = the symmetries' total dimension and m
    the largest predictor."""
    D, m = _dimension(model), _predictor_size(model)
    needs = []
    for sym in model.symmetries:
        k = sym.group.algebra_dim
        needs.append(Need(f"the generators of '{sym.name}' ({k} × {D})", k * D * itemsize, sym.span))
        needs.append(Need(f"the Gram matrix of '{sym.name}' ({k} × {k})", k * k * itemsize, sym.span))
    if model.symmetries and model.predictors:
        p = max(model.predictors, key=lambda p: _size(p.value.shape))
        needs.append(Need(f"the Jacobian of '{p.name}' ({m} × {D})", m * D * itemsize, p.span))
    return needs


def run_needs(model: ir.Model, plan) -> list[Need]:
    """What a run needs on top of one evaluation: every particle's state and per-step
    temporaries, and the records it keeps (on the host, and once more while results.npz is
    serialized)."""
    assert model.run is not None
    itemsize = 8 if plan.dtype == "float64" else 4
    N, D = plan.particles, _dimension(model)
    k = sum(s.group.algebra_dim for s in model.symmetries)
    m = _predictor_size(model) if model.predictors else 0
    widest, _ = _largest_intermediate(model)
    per_particle = (4 * D + k * D + k * k + m * D + widest) * itemsize
    needs = [Need(f"{N} particles' state and per-step temporaries", N * per_particle, model.run.span_of("particles"))]
    for record in plan.records:
        rows = plan.steps // record.every + 1
        for item in record.items:
            size = _size(item.value.shape)
            needs.append(
                Need(
                    f"the records of '{item.label}' ({rows} × {N} × {size})", 2 * rows * N * size * itemsize, item.span
                )
            )
    return needs


def check(needs: list[Need], budget: int, code: str, command: str, *, fits: str = "") -> None:
    """Raises `GaugeError` (`code`) when the needs add up to more than `budget` bytes; the
    diagnostic sits on the largest need and lists the others that matter."""
    total = sum(n.bytes for n in needs)
    if total <= budget:
        return
    ranked = sorted(needs, key=lambda n: -n.bytes)
    shown = [n for n in ranked if n.bytes >= 0.01 * total][:4]
    parts = ", ".join(f"{n.what}: {human(n.bytes)}" for n in shown)
    hint = fits or "make the declaration smaller, or raise the budget with --max-memory if the machine has more"
    raise GaugeError(
        [
            error(
                code,
                ranked[0].span,
                f"{command} would need at least {human(total)} of memory ({parts}); the budget is {human(budget)}",
                hint,
            )
        ]
    )


def run_fits(model: ir.Model, plan, budget: int) -> str:
    """A hint: how many particles, or how many steps between records, would fit the budget."""
    fixed = sum(n.bytes for n in program_needs(model, 8 if plan.dtype == "float64" else 4))
    per_particle = sum(n.bytes for n in run_needs(model, plan)) / plan.particles
    room = budget - fixed
    most = int(room // per_particle) if per_particle > 0 and room > 0 else 0
    if most >= 1:
        return f"at most {most:,} particles fit (--particles), or record less often (record every k: larger k), or fewer steps"
    return "record less often (record every k: larger k), record fewer values, or run fewer steps"


def long_run(model: ir.Model, plan) -> Diagnostic | None:
    """W803 when even at FAST_RATE particle-steps per second the run takes over LONG_RUN_S."""
    seconds = plan.particles * plan.steps / FAST_RATE
    if seconds <= LONG_RUN_S:
        return None
    assert model.run is not None
    days = seconds / 86400
    return warning(
        "W803",
        model.run.span_of("steps"),
        f"{plan.particles:,} particles × {plan.steps:,} steps would take more than {days:,.3g} days even at "
        f"{FAST_RATE:.0e} particle-steps per second",
        "check the number of steps; a run can be stopped (Ctrl-C) and resumed with --resume",
    )


def run_budget(model: ir.Model, overrides: dict, max_memory: int | None = None) -> list[Diagnostic]:
    """`gaugedsl run`'s check before anything is allocated: E707 for the program and its
    geometry, E814 for the ensemble and its records; returns W803 for a run predicted to take
    days."""
    from .dynamics.plan import resolve

    limit = default_budget() if max_memory is None else max_memory
    plan = resolve(model, **overrides)
    itemsize = 8 if plan.dtype == "float64" else 4
    fixed = program_needs(model, itemsize) + geometry_needs(model, itemsize)
    check(fixed, limit, "E707", "`run`")
    check(fixed + run_needs(model, plan), limit, "E814", "this run", fits=run_fits(model, plan, limit))
    slow = long_run(model, plan)
    return [slow] if slow is not None else []
