"""The designed model as `.gauge` text: the source's text with the predictor re-expressed.

Data, loss, noise, run and comments of the source are kept as written; the edits are: a new
file doc and model name, the stdlib import of the symmetry, the replaced declarations (the
predictor's parameter(s), their symmetries and docs) swapped for the factors, the predictor
and the symmetry, the design block removed, and the `lr`/`strength` settings applied. The
result goes through `gaugedsl fmt`, so it is in canonical layout.
"""

from __future__ import annotations

import keyword
import os
import re
import textwrap

from ..format import format_text
from ..syntax import ast
from .family import Realization
from .source import Source

_WIDTH = 96


def number(x: float) -> str:
    """A float as the shortest text that reads back the same."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") and "e" not in text else text


class _Edits:
    """Replacements of ranges of the source text, applied together."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.edits: list[tuple[int, int, str]] = []
        self.protected = 0  # lines up to this one (the file doc) are never swallowed

    def offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1

    def replace(self, span, text: str) -> None:
        self.edits.append((self.offset(span.line, span.column), self.offset(span.end_line, span.end_column), text))

    def insert(self, at: int, text: str) -> None:
        self.edits.append((at, at, text))

    def replace_lines(self, span, text: str) -> None:
        """Replace a statement, with the comment lines directly above it and a comment after
        it on its last line, when it stands on lines of its own."""
        before = self.lines[span.line - 1][: span.column - 1]
        after = self.lines[span.end_line - 1][span.end_column - 1 :].strip()
        if before.strip() or (after and not after.startswith("#")):
            self.replace(span, text)
            return
        first = span.line
        while first - 1 > self.protected and self.lines[first - 2].strip().startswith("#"):
            first -= 1
        end = self.starts[span.end_line] if span.end_line < len(self.lines) else len(self.text)
        self.edits.append((self.starts[first - 1], end, text + ("\n" if text else "")))

    def apply(self) -> str:
        out, last = self.text, None
        for start, end, text in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            if last is not None and end > last:
                raise AssertionError("overlapping design edits")  # a bug in this module
            out = out[:start] + text + out[end:]
            last = start
        return out


def model_name(src: Source, out_path: str) -> str:
    stem = os.path.splitext(os.path.basename(out_path))[0]
    if re.fullmatch(r"[A-Za-z_]\w*", stem) and not keyword.iskeyword(stem) and stem not in src.names():
        return stem
    return f"{src.model.name}_designed"


def emit(src: Source, r: Realization, out_path: str, inline: bool = False) -> str:
    """The designed model's text (canonical layout). The symmetry instantiates a stdlib
    template, or, with `inline` (when the source has a template of the same name), is
    written out."""
    ed = _Edits(src.text)
    rel = os.path.relpath(os.path.abspath(src.path), os.path.dirname(os.path.abspath(out_path)))
    _doc(ed, src, r, rel, os.path.basename(out_path))
    decl = src.items(ast.ModelDecl)[0]
    ed.replace(decl.span, f"model {model_name(src, out_path)}")
    have = {i.dotted for i in src.items(ast.Import)}
    need = [] if inline else [m for m in _imports(r) if m not in have]
    if need:
        ed.insert(ed.offset(decl.span.end_line, decl.span.end_column), "".join(f"\nimport {m}" for m in need))

    block = "\n".join(_block(r, inline)) + "\n"  # a blank line before whatever follows
    if r.predictor_is_param:
        ed.replace_lines(src.decl(r.predictor).span, block)
    else:
        ed.replace_lines(src.decl(r.predictor).span, block)
        for p in r.replaces:
            ed.replace_lines(src.decl(p).span, "")
    for s in r.drops:
        ed.replace_lines(src.decl(s).span, "")
    _rename_observables(ed, src, r)
    ed.replace_lines(src.design_block.span, "")
    _settings(ed, src, r)
    return format_text(ed.apply(), out_path)


# ---- pieces of text --------------------------------------------------------------------------


def _wrap(text: str, prefix: str = "## ") -> list[str]:
    return [prefix + line for line in textwrap.wrap(text, _WIDTH - len(prefix), break_on_hyphens=False)]


def _temperature_words(r: Realization) -> str:
    if r.T is None:
        return "T the temperature of the training noise (the source declares no noise model with a T)"
    return f"T = {number(r.T)} ({'the design strength' if r.T_from == 'strength' else 'the noise temperature'})"


def _doc(ed: _Edits, src: Source, r: Realization, rel: str, out_name: str) -> None:
    what = r.target.replace("_", " ")
    text = [
        *_wrap(
            f"Designed by `gaugedsl design` from {rel} (model {src.model.name}): inverse design of the implicit bias for {what} of {r.predictor}."
        ),
        *_wrap(f"Realization: {r.realized_as()} with the symmetry {r.group()}."),
        *(
            _wrap(f"{r.operator.symbol}: {r.operator.what}.")
            if r.operator is not None and r.operator.matrix is not None
            else []
        ),
        *_wrap(f"Induced bias (T/2) log det G = {r.formula()} + const, with {_temperature_words(r)}."),
        *_wrap(
            "Data, loss, noise and run are the source's; only the predictor is re-expressed"
            + (f" (and lr = {number(r.lr)})" if r.lr is not None else "")
            + "."
        ),
        f"## Regenerate with: gaugedsl design {rel} -o {out_name}",
    ]
    n = 0
    while n < len(ed.lines) and ed.lines[n].startswith("##"):
        n += 1
    ed.protected = n
    if n:
        ed.edits.append((0, ed.starts[n - 1] + len(ed.lines[n - 1]), "\n".join(text)))
    else:
        ed.insert(0, "\n".join(text) + "\n")


def _imports(r: Realization) -> list[str]:
    if r.kind == "factorization":
        return ["std.factorization"]
    if len(r.shape) != 1:
        return []  # the symmetry is written out (the templates take vectors)
    return ["std.rescaling"] if r.depth == 2 else ["std.deep"]


def _dims(shape) -> str:
    return ", ".join(map(str, shape))


def _init(r: Realization, i: int) -> str:
    seed = "" if r.init_seed is None else f", seed = {r.init_seed + i}"
    return f"normal(0, {number(r.init_std)}{seed})"


def _block(r: Realization, inline: bool) -> list[str]:
    pred, f = r.predictor, r.factors
    if r.kind == "factorization":
        (m, n), k = r.shape, r.rank
        return [
            f"# {pred} = {f[0]} {f[1]}ᵀ with inner size {k} (gaugedsl design).",
            f"param {f[0]} : R[{m}, {k}] = {_init(r, 0)}",
            f"param {f[1]} : R[{n}, {k}] = {_init(r, 1)}",
            "",
            f"predictor {pred} = {f[0]} @ {f[1]}.T",
            "",
            *_wrap(
                f"GL({k}): {f[0]} → {f[0]} g, {f[1]} → {f[1]} g⁻ᵀ leaves {pred} = {f[0]} {f[1]}ᵀ unchanged. Induced bias (T/2) log det G = {r.formula()} + const."
            ),
            *(
                [
                    f"symmetry {r.symmetry} : GL[{k}] {{",
                    f"  {f[0]} -> {f[0]} @ g",
                    f"  {f[1]} -> {f[1]} @ inv(g).T",
                    "}",
                ]
                if inline
                else [f"symmetry {r.symmetry} = gl_factorization({f[0]}, {f[1]})"]
            ),
        ]
    op = r.operator
    assert op is not None  # a Hadamard realization has its analysis operator
    lines = []
    if op.data:
        lines += ["data {", *(f"  {name} : R[{dims}] = {expr}" for name, dims, expr in op.data), "}", ""]
    stacked = len(f) == 1
    z = f"prod({f[0]}, axis = 0)" if stacked else " * ".join(f)
    zname = pred if op.matrix is None else f"{op.symbol} {pred}"
    lines.append(f"# The factors of {zname} = {' ⊙ '.join(f) if not stacked else f'Π_l {f[0]}[l]'} (gaugedsl design).")
    if stacked:
        lines.append(f"param {f[0]} : R[{r.depth}, {_dims(r.shape)}] = {_init(r, 0)}")
    else:
        lines += [
            f"param {name} : R[{_dims(r.shape)}] = {_init(r, i)}" if r.shape else f"param {name} : R = {_init(r, i)}"
            for i, name in enumerate(f)
        ]
    synth = op.synthesis(z)
    lines += ["", f"predictor {pred} = {synth}", ""]
    lines += _wrap(
        f"(R_>0)^{(r.depth - 1) * r.size} rescaling of the factors: it leaves {zname}"
        + (f", hence {pred}," if zname != pred else "")
        + " unchanged. "
        f"Induced bias (T/2) log det G = {r.formula()} + const."
    )
    if inline or len(r.shape) != 1:
        lines += _inline_symmetry(r)
    elif not stacked:
        template = {2: "rescaling", 3: "deep3", 4: "deep4"}[r.depth]
        lines.append(f"symmetry {r.symmetry} = {template}({', '.join(f)})")
    else:
        lines.append(f"symmetry {r.symmetry} = deep_rescaling({f[0]})")
    return lines


def _inline_symmetry(r: Realization) -> list[str]:
    """The depth-L rescaling written out (for factors that are not vectors, or when a
    template's name is taken)."""
    f, L = r.factors, r.depth
    if len(f) == 1:  # stacked layers U : R[L, ...]
        return [
            f"symmetry {r.symmetry} : Scale[{_dims([L - 1, *r.shape])}] {{",
            f"  {f[0]} -> telescope(g) * {f[0]}",
            "}",
        ]
    dims = ([L - 1] if L > 2 else []) + list(r.shape)
    group = f"Scale[{_dims(dims)}]" if dims else "Scale"
    g = (lambda i: "g") if L == 2 else (lambda i: f"g[{i}]")
    rules = [f"  {f[0]} -> {g(0)} * {f[0]}"]
    rules += [f"  {f[i]} -> {g(i)} / {g(i - 1)} * {f[i]}" for i in range(1, L - 1)]
    rules.append(f"  {f[-1]} -> {f[-1]} / {g(L - 2)}")
    return [f"symmetry {r.symmetry} : {group} {{", *rules, "}"]


def _calls(e):
    if isinstance(e, ast.Call):
        yield e
        for a in (*e.args, *(k.value for k in e.kwargs)):
            yield from _calls(a)
    elif isinstance(e, ast.Binary):
        yield from _calls(e.left)
        yield from _calls(e.right)
    elif isinstance(e, ast.Unary):
        yield from _calls(e.operand)
    elif isinstance(e, (ast.Index, ast.Transpose)):
        yield from _calls(e.value)
    elif isinstance(e, ast.ListLit):
        for a in e.items:
            yield from _calls(a)


def _rename_observables(ed: _Edits, src: Source, r: Realization) -> None:
    """`charge(s)` / `logdet_gram(s)` of a dropped symmetry now observe the designed one."""
    for run in src.items(ast.RunBlock):
        for rec in run.records:
            for item in rec.items:
                for c in _calls(item.value):
                    if (
                        c.func in ("charge", "logdet_gram")
                        and c.args
                        and isinstance(first := c.args[0], ast.Name)
                        and first.id in r.drops
                    ):
                        ed.replace(first.span, r.symmetry)


def _settings(ed: _Edits, src: Source, r: Realization) -> None:
    runs = src.items(ast.RunBlock)
    run = runs[0] if runs else None
    add_to_run = []
    if r.lr is not None and run is not None:
        lr = next((s for s in run.settings if s.name == "lr"), None)
        if lr is not None:
            ed.replace(lr.value.span, number(r.lr))
        else:
            add_to_run.append(f"lr = {number(r.lr)}")
    if r.strength is not None:
        noises = src.items(ast.NoiseDecl)
        if noises:
            n = noises[0]
            t = next((k.value for k in n.kwargs if k.name == "T"), n.args[0] if n.args else None)
            assert t is not None  # a noise with a temperature requires T; realize refuses the others (E608)
            ed.replace(t.span, number(r.strength))
        else:
            loss = src.items(ast.LossDecl)[0]
            ed.insert(
                ed.offset(loss.span.end_line, loss.span.end_column), f"\n\nnoise projected(T = {number(r.strength)})"
            )
            if run is not None and not any(s.name == "dynamics" for s in run.settings):
                add_to_run.append("dynamics = gd")  # a noise model alone would make it an SDE
    if add_to_run:
        assert run is not None  # only settings of an existing run block are added
        brace = ed.text.index("{", ed.offset(run.span.line, run.span.column))
        ed.insert(brace + 1, "".join(f"\n  {s}" for s in add_to_run))
