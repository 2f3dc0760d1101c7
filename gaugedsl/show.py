"""Readable text for the AST and the IR (`gaugedsl check --emit ast|ir`)."""

from __future__ import annotations

import dataclasses

from . import ir
from .check.shapes import show as show_shape
from .diagnostics import Span

_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4}
_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@", "pow": "^"}


def expr(e: ir.Expr, parent: int = 0) -> str:
    """An IR expression in the surface syntax, with the parentheses it needs."""
    if isinstance(e, ir.Const):
        return _number(e.value)
    if isinstance(e, ir.Ref):
        return e.name
    if isinstance(e, ir.Stack):
        return "[" + ", ".join(expr(i) for i in e.items) + "]"
    if isinstance(e, ir.Index):
        items = []
        for i in e.items:
            if isinstance(i, ir.SliceSpec):
                items.append(f"{'' if i.start is None else i.start}:{'' if i.stop is None else i.stop}")
            else:
                items.append(str(i))
        return f"{expr(e.value, 5)}[{', '.join(items)}]"
    if isinstance(e, ir.Call):
        args = [expr(a) for a in e.args] + [f"{k} = {_number(v)}" for k, v in e.static]
        return f"{e.func}({', '.join(args)})"
    if isinstance(e, ir.Op):
        if e.op == "transpose":
            return f"{expr(e.args[0], 5)}.T"
        prec = _PRECEDENCE[e.op]
        if e.op == "neg":
            text = f"-{expr(e.args[0], prec)}"
        elif e.op == "pow":  # right-associative
            text = f"{expr(e.args[0], prec + 1)} ^ {expr(e.args[1], prec)}"
        else:
            text = f"{expr(e.args[0], prec)} {_SYMBOL[e.op]} {expr(e.args[1], prec + 1)}"
        return f"({text})" if prec < parent else text
    raise TypeError(e)


def _number(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if (v == 0 or 1e-4 <= abs(v) < 1e6) else f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_number(x) for x in v) + "]"
    if isinstance(v, str):
        return v
    return str(v)


def _settings(pairs) -> str:
    return ", ".join(f"{k} = {_number(v)}" for k, v in pairs)


def model(m: ir.Model | ir.Library) -> str:
    """The whole IR as an indented listing."""
    if isinstance(m, ir.Library):
        lines = [f"library {m.path}"]
        if m.doc:
            lines += ["  ## " + d for d in m.doc.splitlines()]
        lines += [f"  parametric symmetry {t}" for t in m.templates]
        return "\n".join(lines)
    lines = [f"model {m.name}    # {m.path}, sha256 {m.source_hash[:12]}"]
    if m.doc:
        lines += ["  ## " + d for d in m.doc.splitlines()]
    if m.data:
        lines.append("data")
        lines += [f"  {d.name} : {show_shape(d.shape)} = {expr(d.value)}" for d in m.data]
    if m.streams:
        lines.append("streams (fresh each sample)")
        lines += [f"  {s.name} : {show_shape(s.shape)} ~ {expr(s.value)}" for s in m.streams]
    lines.append(f"params    # {m.dimension} coordinates")
    for p in m.params:
        kind = p.manifold.kind + ("" if p.shape == () else show_shape(p.shape))
        lines.append(f"  {p.name} : {kind} = {expr(p.init)}")
    for title, entries in (("lets", m.lets), ("predictors", m.predictors)):
        if entries:
            lines.append(title)
            lines += [f"  {d.name} : {show_shape(d.shape)} = {expr(d.value)}" for d in entries]
    if m.loss is not None:
        ps = m.loss.per_sample
        if ps is None:
            lines.append("loss")
        else:
            binders = ", ".join(f"{n} : {show_shape(s)}" for n, s in ps.binders)
            over = f"mean over {ps.size} samples" if ps.size is not None else "expectation over the streams"
            lines.append(f"loss per ({binders}) in ({', '.join(ps.sources)})    # {over}")
        lines.append(f"  {expr(m.loss.value)}")
    if m.symmetries:
        lines.append("symmetries")
        for s in m.symmetries:
            g = s.group
            group = g.kind + (f"[{', '.join(map(str, g.dims))}]" if g.dims else "")
            origin = f" = {s.template}(...)" if s.template else ""
            lines.append(
                f"  {s.name}{origin} : {group}    # {g.algebra_dim} generator{'s' if g.algebra_dim != 1 else ''}, g : {show_shape(g.element_shape)}"
            )
            lines += [f"    {a.param} -> {expr(a.value)}" for a in s.actions]
    if m.noise is not None:
        lines.append(f"noise {m.noise.kind}({_settings(m.noise.settings)})")
    if m.run is not None:
        lines.append("run")
        lines += [f"  {k} = {_number(v)}" for k, v in m.run.settings]
        for r in m.run.records:
            items = ", ".join(f"{i.label} : {show_shape(i.value.shape)}" for i in r.items)
            lines.append(f"  record every {r.every}: {items}")
    if m.design is not None:
        lines.append("design")
        lines += [f"  {k} = {_number(v)}" for k, v in m.design.settings]
    return "\n".join(lines)


def tree(node, indent: int = 0) -> str:
    """Any dataclass tree (the AST) as an indented outline; spans shown as line:col."""
    pad = "  " * indent
    if dataclasses.is_dataclass(node) and not isinstance(node, Span):
        span = getattr(node, "span", None)
        where = f"  @{span.line}:{span.column}" if isinstance(span, Span) else ""
        lines = [f"{pad}{type(node).__name__}{where}"]
        for f in dataclasses.fields(node):
            if f.name in ("span", "comments") or f.name.endswith("_span"):
                continue
            value = getattr(node, f.name)
            if dataclasses.is_dataclass(value) or (
                isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0])
            ):
                lines.append(f"{pad}  {f.name}:")
                items = value if isinstance(value, tuple) else (value,)
                lines += [tree(v, indent + 2) for v in items]
            elif value not in (None, "", ()):
                lines.append(f"{pad}  {f.name}: {value!r}")
        return "\n".join(lines)
    return f"{pad}{node!r}"
