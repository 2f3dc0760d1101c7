"""AST → IR: declarations, scopes, symmetries, settings. All errors of a file are collected."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from typing import Any

from .. import ir
from ..diagnostics import Diagnostic, GaugeError, Span, error, warning
from ..kinds import GROUPS, MANIFOLDS, NOISES
from ..syntax import ast
from ..syntax.errors import KEYWORDS as _KEYWORD_TERMINALS
from . import functions as F
from . import settings as S
from .expressions import _BAD, KIND_WORDS, Binding, Context, ExprChecker
from .shapes import MAX_SIZE, Shape, ShapeError, broadcast, naming_sizes, show


@dataclasses.dataclass(frozen=True)
class Template:
    """A parametric symmetry, `symmetry name(u : R[n], ...) : Group[...] { ... }`."""

    decl: ast.SymmetryDecl
    origin: str  # the file that declares it

    def __post_init__(self) -> None:
        if self.decl.params is None:
            raise ValueError(f"'{self.decl.name}' has no parameter list: it is not a parametric symmetry")

    @property
    def params(self) -> tuple[ast.SymParam, ...]:
        """The declared parameters (`decl.params`, never None for a template)."""
        assert self.decl.params is not None  # checked in __post_init__
        return self.decl.params


KEYWORDS = frozenset(_KEYWORD_TERMINALS.values())
RESERVED = {"g": "the group element in symmetry actions", "pi": "the constant π"}
_SAMPLE_SIZES = (7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)  # stand-in sizes: distinct primes


class FileChecker:
    """Checks one parsed file. `templates` are the parametric symmetries its imports bring."""

    def __init__(self, program: ast.Program, templates: dict[str, Template], source_hash: str,
                 imports_failed: bool = False):  # fmt: skip
        self.program = program
        self.imports_failed = imports_failed  # then an unknown parametric symmetry may be in the broken import
        self.imported = templates
        self.source_hash = source_hash
        self.diagnostics: list[Diagnostic] = []
        self.exprs = ExprChecker(self._lookup, self._all_names, self.diagnostics)
        self._globals: dict[str, tuple[str, Any, Span]] = {}  # name → (kind, decl, span)
        self._resolved: dict[str, Binding] = {}
        self._in_progress: list[str] = []
        self._locals: list[dict[str, Binding]] = []
        self._data_order: list[ir.DataDef] = []
        self._stream_order: list[ir.StreamDef] = []
        self._lets: list[ir.Let] = []
        self._predictors: list[ir.Predictor] = []
        self._symmetries: dict[str, ir.Symmetry] = {}
        self._templates: dict[str, Template] = dict(templates)
        self._per_sample: ir.PerSample | None = None
        self._param_bindings: dict[str, Binding] | None = None  # the model's parameters, for actions
        self._broken_templates: set[str] = set()  # declared here, with errors in their signature

    # ---- diagnostics ----

    def _error(self, code, span, message, hint=None):
        self.diagnostics.append(error(code, span, message, hint))

    def _warn(self, code, span, message, hint=None):
        self.diagnostics.append(warning(code, span, message, hint))

    # ---- scope ----

    def _lookup(self, name: str) -> Binding | None:
        for scope in reversed(self._locals):
            if name in scope:
                return scope[name]
        if name in self._resolved:
            return self._resolved[name]
        entry = self._globals.get(name)
        if entry is None:
            return None
        kind, decl, span = entry
        if kind in ("data", "let", "predictor"):
            return self._resolve(name)
        if kind == "param":
            return Binding("param", name, decl.manifold.shape, span)
        if kind == "stream":  # not yet checked (or failed): its declared shape stands
            return Binding("error", name, (), span)
        if kind == "symmetry":
            sym = self._symmetries.get(name)
            return Binding("symmetry", name, (), span, sym) if sym else Binding("error", name, (), span)
        return Binding(kind, name, (), span)

    def _all_names(self) -> list[str]:
        names = set(self._globals)
        for scope in self._locals:
            names |= set(scope)
        return sorted(names)

    def _declare(self, name: str, kind: str, decl: Any, span: Span) -> bool:
        problem = _reserved(name)
        if problem is not None:
            self._error("E210", span, problem, f"choose another name, such as '{name}_'")
            # Known but unusable: later uses of the name are not reported again.
            self._globals.setdefault(name, ("error", None, span))
            return False
        previous = self._globals.get(name)
        if previous is not None:
            p_kind, _, p_span = previous
            word = KIND_WORDS.get(p_kind)
            what = "" if word is None else f" as {'' if word == 'data' else 'a '}{word}"
            self._error("E202", span, f"'{name}' is already declared{what} at line {p_span.line}", "rename one of them")
            return False
        self._globals[name] = (kind, decl, span)
        return True

    def _resolve(self, name: str) -> Binding:
        if name in self._resolved:  # already checked, possibly through another declaration
            return self._resolved[name]
        if name in self._in_progress:
            cycle = self._in_progress[self._in_progress.index(name) :] + [name]
            kind, decl, span = self._globals[name]
            self._error(
                "E203",
                span,
                f"'{name}' is defined in terms of itself: {' → '.join(cycle)}",
                "define one of them without referring back to the other",
            )
            self._resolved[name] = Binding("error", name, (), span)
            return self._resolved[name]
        kind, decl, span = self._globals[name]
        self._in_progress.append(name)
        saved, self._locals = self._locals, []
        try:
            binding = {"data": self._check_data, "let": self._check_let, "predictor": self._check_predictor}[kind](decl)
        finally:
            self._locals = saved
            self._in_progress.pop()
        if name not in self._resolved:
            self._resolved[name] = binding
        return self._resolved[name]

    # ---- the file ----

    def check(self) -> ir.Model | ir.Library:
        items = self.program.items
        models = [i for i in items if isinstance(i, ast.ModelDecl)]
        for extra in models[1:]:
            self._error("E217", extra.span, "a file declares one model", "remove this `model` line or split the file")
        model_items = [i for i in items if not isinstance(i, (ast.ModelDecl, ast.Import))
                       and not (isinstance(i, ast.SymmetryDecl) and i.params is not None)]  # fmt: skip

        self._collect(items)
        if not models:
            if model_items:
                self._error(
                    "E205",
                    model_items[0].span,
                    "this file has model statements but no `model NAME` line",
                    "start the file with `model my_model`; a file of parametric symmetries alone is a library",
                )
                raise GaugeError(self.diagnostics)
            self._check_library()
            if any(d.severity == "error" for d in self.diagnostics):
                raise GaugeError(self.diagnostics)
            return ir.Library(
                self.program.path,
                self.program.doc,
                tuple(n for n, t in self._templates.items() if t.origin == self.program.path),
            )

        model = self._check_model(models[0])
        if any(d.severity == "error" for d in self.diagnostics):
            raise GaugeError(self.diagnostics)
        return model

    def _collect(self, items) -> None:
        for item in items:
            if isinstance(item, ast.DataBlock):
                for entry in item.entries:
                    kind = "stream" if isinstance(entry, ast.StreamDef) else "data"
                    self._declare(entry.name, kind, entry, entry.name_span)
            elif isinstance(item, ast.ParamDecl):
                manifold = self._manifold(item.type)
                if manifold is not None:
                    self._declare(item.name, "param", _ParamInfo(item, manifold), item.name_span)
                else:
                    self._globals.setdefault(item.name, ("error", None, item.name_span))
            elif isinstance(item, ast.LetDecl):
                self._declare(item.name, "let", item, item.name_span)
            elif isinstance(item, ast.PredictorDecl):
                self._declare(item.name, "predictor", item, item.name_span)
            elif isinstance(item, ast.SymmetryDecl) and item.params is not None:
                if item.name in self._templates and self._templates[item.name].origin != self.program.path:
                    self._error(
                        "E202",
                        item.name_span,
                        f"'{item.name}' is already a parametric symmetry imported from {self._templates[item.name].origin}",
                        "rename it",
                    )
                elif self._declare(item.name, "template", item, item.name_span):
                    template = Template(item, self.program.path)
                    if self._check_template_signature(template):
                        self._templates[item.name] = template
                    else:
                        self._broken_templates.add(item.name)
            elif isinstance(item, (ast.SymmetryDecl, ast.SymmetryInst)):
                self._declare(item.name, "symmetry", item, item.name_span)

    # ---- library ----

    def _check_library(self) -> None:
        for name, t in self._templates.items():
            if t.origin == self.program.path:
                self._check_template(name, t)

    def _check_template(self, name: str, t: Template) -> None:
        """Instantiate a parametric symmetry with stand-in sizes, so that errors in its body
        show where it is declared, not only where it is used."""
        literals = {int(d.value) for p in t.params for d in p.type.dims or () if isinstance(d, ast.Number)}
        pool = [n for n in _SAMPLE_SIZES if n not in literals]
        sizes: dict[str, int] = {}
        for p in t.params:
            for d in p.type.dims or ():
                if isinstance(d, ast.Name) and d.id not in sizes and d.id not in F.CONSTANTS:
                    sizes[d.id] = pool[len(sizes) % len(pool)]
        # Size names must be bound before `constant` can evaluate expressions of them.
        self._locals.append({k: Binding("size", k, (), None, v) for k, v in sizes.items()})
        try:
            fake = []
            for p in t.params:
                dims = []
                for d in p.type.dims or ():
                    value = sizes[d.id] if isinstance(d, ast.Name) and d.id in sizes else self.exprs.constant(d, None)
                    if value is _BAD:
                        return
                    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                        self._error(
                            "E309",
                            d.span,
                            f"a size must be a positive whole number, not {value}",
                            "write sizes as names (n) or whole numbers, like R[n, 3]",
                        )
                        return
                    dims.append(value)
                fake.append((p.name, Binding("param", p.name, tuple(dims), p.span)))
            with naming_sizes({v: k for k, v in sizes.items()}):
                self._instantiate(t, name, fake, t.decl.span, t.decl.doc, [p.span for p in t.params], stand_in=True)
        finally:
            self._locals.pop()

    def _check_template_signature(self, t: Template) -> bool:
        d = t.decl
        ok = True
        seen: dict[str, Span] = {}
        for p in t.params:
            problem = _reserved(p.name)
            if problem is not None:
                self._error("E210", p.span, problem, f"choose another name, such as '{p.name}_'")
                ok = False
            elif p.name in seen:
                self._error(
                    "E202",
                    p.span,
                    f"'{p.name}' is already a parameter of '{d.name}' (line {seen[p.name].line})",
                    "give each parameter its own name",
                )
                ok = False
            seen.setdefault(p.name, p.span)
            if p.type.name not in MANIFOLDS:
                self._manifold(p.type)  # reports the unknown type
                ok = False
        return ok

    # ---- model ----

    def _check_model(self, decl: ast.ModelDecl) -> ir.Model:
        items = self.program.items
        params = self._check_params()

        blocks = [i for i in items if isinstance(i, ast.DataBlock)]
        for entry in (e for b in blocks for e in b.entries if isinstance(e, ast.StreamDef)):
            if self._globals.get(entry.name, (None, None))[1] is entry:
                self._check_stream(entry)
        for item in items:
            if isinstance(item, ast.DataBlock):
                for entry in item.entries:
                    if isinstance(entry, ast.DataDef) and self._globals.get(entry.name, (None,))[0] == "data":
                        self._resolve(entry.name)
            elif isinstance(item, (ast.LetDecl, ast.PredictorDecl)):
                if self._globals.get(item.name, (None,))[0] in ("let", "predictor"):
                    self._resolve(item.name)
        if not any(isinstance(i, ast.ParamDecl) for i in items):
            self._error(
                "E213",
                decl.span,
                f"model '{decl.name}' has no parameters",
                "declare one: param w : R[10] = normal(0, 0.1)",
            )

        losses = [i for i in items if isinstance(i, ast.LossDecl)]
        for extra in losses[1:]:
            self._error(
                "E207",
                extra.span,
                f"the model already has a loss (line {losses[0].span.line})",
                "keep one `loss` statement; add terms to it with +",
            )
        loss = self._check_loss(losses[0]) if losses else None
        if not losses:
            self._error(
                "E206", decl.span, f"model '{decl.name}' has no loss", "add one: loss = 0.5 * sum((X @ w - y)^2)"
            )

        for item in items:
            if isinstance(item, ast.SymmetryDecl) and item.params is None:
                self._check_symmetry_decl(item)
            elif isinstance(item, ast.SymmetryInst):
                self._check_symmetry_inst(item)
        # Parametric symmetries declared here but never used are checked with stand-in sizes.
        used = {i.template for i in items if isinstance(i, ast.SymmetryInst)}
        for name, t in self._templates.items():
            if t.origin == self.program.path and name not in used:
                self._check_template(name, t)

        noise = self._single(items, ast.NoiseDecl, "noise model", self._check_noise)
        run = self._single(items, ast.RunBlock, "run block", lambda r: self._check_run(r, noise))
        design = self._single(items, ast.DesignBlock, "design block", self._check_design)

        return ir.Model(
            name=decl.name,
            path=self.program.path,
            doc=self.program.doc,
            source_hash=self.source_hash,
            data=tuple(self._data_order),
            streams=tuple(self._stream_order),
            params=tuple(params),
            lets=tuple(self._lets),
            predictors=tuple(self._predictors),
            loss=loss,
            symmetries=tuple(self._symmetries.values()),
            noise=noise,
            run=run,
            design=design,
            name_span=Span(
                decl.span.path,
                decl.span.end_line,
                decl.span.end_column - len(decl.name),
                decl.span.end_line,
                decl.span.end_column,
            ),
        )

    def _single(self, items, cls, what, check):
        found = [i for i in items if isinstance(i, cls)]
        for extra in found[1:]:
            self._error(
                "E216", extra.span, f"the model already has a {what} (line {found[0].span.line})", f"keep one {what}"
            )
        return check(found[0]) if found else None

    # ---- types ----

    def _dims(self, t: ast.TypeExpr) -> tuple[int, ...] | None:
        dims = []
        for d in t.dims or ():
            value = self.exprs.constant(d, None)
            if value is _BAD:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self._error(
                    "E309", d.span, f"a size must be a positive whole number, not {value}", "write sizes like R[10, 20]"
                )
                return None
            if value > MAX_SIZE:
                self._error("E309", d.span, f"the size {value} is too large", f"sizes are at most {MAX_SIZE}")
                return None
            dims.append(value)
        return tuple(dims)

    def _manifold(self, t: ast.TypeExpr) -> ir.Manifold | None:
        kind = MANIFOLDS.get(t.name)
        if kind is None:
            if t.name in GROUPS:
                hint = f"{t.name} is a group; parameters live on {_either(MANIFOLDS, 'or')}"
            else:
                guess = difflib.get_close_matches(t.name, list(MANIFOLDS), n=1, cutoff=0.5)
                hint = f"did you mean '{guess[0]}'?" if guess else f"types are {_either(MANIFOLDS, 'and')}"
            self._error("E208", t.name_span, f"unknown type '{t.name}'", hint)
            return None
        dims = self._dims(t)
        if dims is None:
            return None
        if len(dims) < kind.min_dims or (kind.max_dims is not None and len(dims) > kind.max_dims):
            want = kind.min_dims if kind.min_dims == kind.max_dims else f"at least {kind.min_dims}"
            self._error(
                "E309",
                t.span,
                f"{t.name} takes {want} size{'s' if want != 1 else ''}, got {len(dims)}",
                f"{t.name}: {kind.doc}",
            )
            return None
        problem = kind.validate(dims)
        if problem:
            self._error("E314", t.span, problem, f"{t.name}: {kind.doc}")
            return None
        return ir.Manifold(t.name, dims)

    # ---- data ----

    def _data_context(self, target: Shape) -> Context:
        return Context(
            "in a data definition",
            frozenset({"data", "stream"}),
            generators=True,
            target=target,
            hint={"param": "data are fixed arrays; use parameters in lets, predictors and the loss"},
        )

    def _check_data(self, d: ast.DataDef) -> Binding:
        if d.type.name != "R":
            if d.type.name in MANIFOLDS:
                self._error(
                    "E218",
                    d.type.name_span,
                    f"data are plain arrays; '{d.type.name}' is for parameters",
                    "declare data as R[...]",
                )
            else:
                self._error("E208", d.type.name_span, f"unknown type '{d.type.name}'", "declare data as R[...]")
            return Binding("error", d.name, (), d.name_span)
        dims = self._dims(d.type)
        if dims is None:
            return Binding("error", d.name, (), d.name_span)
        value = self.exprs.check(d.value, self._data_context(dims))
        if value is None:
            return Binding("data", d.name, dims, d.name_span)
        if not self._fits(value, dims, d.value.span, f"'{d.name}'"):
            return Binding("data", d.name, dims, d.name_span)
        value = with_sites(d.name, value)
        if _uses(value, "stream"):
            self._stream_order.append(ir.StreamDef(d.name, dims, value, d.span))
            return Binding("stream", d.name, dims, d.name_span)
        self._data_order.append(ir.DataDef(d.name, dims, value, d.span))
        return Binding("data", d.name, dims, d.name_span)

    def _check_stream(self, s: ast.StreamDef) -> None:
        if s.type.name != "R":
            if s.type.name in MANIFOLDS:
                self._error(
                    "E218",
                    s.type.name_span,
                    f"streams are plain arrays; '{s.type.name}' is for parameters",
                    "declare the stream as R[...]",
                )
            else:
                self._error("E208", s.type.name_span, f"unknown type '{s.type.name}'", "declare the stream as R[...]")
            return
        dims = self._dims(s.type)
        if dims is None:
            return
        if not (
            isinstance(s.dist, ast.Call) and F.FUNCTIONS.get(s.dist.func) and F.FUNCTIONS[s.dist.func].where == F.STREAM
        ):
            self._error(
                "E317",
                s.dist.span,
                "a stream draws from a distribution",
                "write e.g. `stream x : R[3] ~ normal(0, 1)`; normal, uniform and bernoulli are available",
            )
            return
        ctx = Context("in a stream", frozenset({"data"}), random_streams=True, target=dims)
        value = self.exprs.check(s.dist, ctx)
        if value is not None and self._fits(value, dims, s.dist.span, f"stream '{s.name}'"):
            self._stream_order.append(ir.StreamDef(s.name, dims, with_sites(s.name, value), s.span))
        self._resolved[s.name] = Binding("stream", s.name, dims, s.name_span)

    def _fits(self, value: ir.Expr, dims: Shape, span: Span, what: str) -> bool:
        try:
            ok = broadcast(value.shape, dims) == dims
        except ShapeError:
            ok = False
        if not ok:
            self._error(
                "E303",
                span,
                f"{what} is declared {show(dims)} but this value has shape {show(value.shape)}",
                "make the declared shape and the value agree",
            )
        return ok

    # ---- parameters ----

    def _check_params(self) -> list[ir.Param]:
        params = []
        for item in self.program.items:
            if not isinstance(item, ast.ParamDecl):
                continue
            entry = self._globals.get(item.name)
            if entry is None or entry[0] != "param" or entry[1].decl is not item:
                continue
            manifold = entry[1].manifold
            if item.init is None:
                init = _default_init(manifold, item.span)
            else:
                ctx = Context(
                    "in an initializer",
                    frozenset({"data"}),
                    generators=True,
                    target=manifold.shape,
                    hint={"param": "initializers are computed from data and random draws only"},
                )
                init = self.exprs.check(item.init, ctx)
                if init is None or not self._fits(init, manifold.shape, item.init.span, f"parameter '{item.name}'"):
                    continue
            params.append(ir.Param(item.name, manifold, with_sites(item.name, init), item.doc, item.span))
        return params

    # ---- lets and predictors ----

    def _model_context(self, where: str) -> Context:
        return Context(
            where,
            frozenset({"param", "data", "let", "predictor"}),
            hint={"stream": "streams are drawn per sample; use them in the loss"},
        )

    def _check_let(self, d: ast.LetDecl) -> Binding:
        value = self.exprs.check(d.value, self._model_context("in a let definition"))
        if value is None:
            return Binding("error", d.name, (), d.name_span)
        self._lets.append(ir.Let(d.name, value, d.span))
        return Binding("let", d.name, value.shape, d.name_span)

    def _check_predictor(self, d: ast.PredictorDecl) -> Binding:
        value = self.exprs.check(d.value, self._model_context("in a predictor"))
        if value is None:
            return Binding("error", d.name, (), d.name_span)
        self._predictors.append(ir.Predictor(d.name, value, d.span))
        return Binding("predictor", d.name, value.shape, d.name_span)

    # ---- loss ----

    def _check_loss(self, d: ast.LossDecl) -> ir.Loss | None:
        ctx = Context("in the loss", frozenset({"param", "data", "let", "predictor", "stream", "bound"}))
        local: dict[str, Binding] = {}
        per_sample = None
        if d.binders is not None:
            per_sample = self._check_binders(d, local)
            if per_sample is None:
                return None
        self._locals.append(local)
        try:
            value = self.exprs.check(d.value, ctx)
        finally:
            self._locals.pop()
        if value is None:
            return None
        if value.shape != ():
            what = "the loss of one sample" if per_sample else "the loss"
            self._error(
                "E310",
                d.value.span,
                f"{what} must be a number, but this has shape {show(value.shape)}",
                "reduce it with sum(...) or mean(...)",
            )
            return None
        self._per_sample = per_sample
        return ir.Loss(value, per_sample, d.span)

    def _check_binders(self, d: ast.LossDecl, local: dict[str, Binding]) -> ir.PerSample | None:
        names, sources = d.binders, d.sources
        # a per-sample loss (the caller checks binders); the grammar writes sources with binders
        assert names is not None and sources is not None
        if len(names) != len(sources):
            self._error(
                "E311",
                d.span,
                f"{len(names)} per-sample name{'s' if len(names) != 1 else ''} but {len(sources)} dataset{'s' if len(sources) != 1 else ''}",
                "pair each name with a dataset: loss per (x, t) in (X, y) = ...",
            )
            return None
        sizes: dict[int, Span] = {}
        kinds = set()
        binders = []
        for b, src in zip(names, sources):
            source = self._lookup(src.id)
            if source is None:
                self.exprs._unknown_name(src.id, src.span)
                return None
            if source.kind not in ("data", "stream"):
                if source.kind != "error":
                    self._error(
                        "E312",
                        src.span,
                        f"'{src.id}' is a {KIND_WORDS.get(source.kind, source.kind)}; a loss ranges over data or streams",
                        "name a dataset (its first axis indexes the samples) or a stream",
                    )
                return None
            kinds.add(source.kind)
            if source.kind == "data":
                if source.shape == ():
                    self._error(
                        "E312",
                        src.span,
                        f"'{src.id}' is a single number, not a dataset",
                        "a dataset's first axis indexes the samples",
                    )
                    return None
                sizes.setdefault(source.shape[0], src.span)
                shape = source.shape[1:]
            else:
                shape = source.shape
            if _reserved(b.id) is not None:
                self._error("E210", b.span, _reserved(b.id), f"choose another name, such as '{b.id}_'")
                return None
            if b.id in self._globals:
                other = self._globals[b.id]
                word = KIND_WORDS.get(other[0])
                what = "" if word is None else f" the {word}"
                self._error(
                    "E214",
                    b.span,
                    f"the per-sample name '{b.id}' hides{what} '{b.id}' declared at line {other[2].line}",
                    f"choose a name not used elsewhere, such as '{b.id}_i'",
                )
                return None
            if b.id in local:
                self._error("E202", b.span, f"'{b.id}' is bound twice", "use distinct names")
                return None
            local[b.id] = Binding("bound", b.id, shape, b.span)
            binders.append((b.id, shape))
        if len(kinds) > 1:
            self._error(
                "E312",
                d.span,
                "a loss ranges over datasets or over streams, not both",
                "make all sources datasets, or all streams",
            )
            return None
        if len(sizes) > 1:
            (n1, s1), (n2, s2) = list(sizes.items())[:2]
            self._error(
                "E312",
                s2,
                f"the datasets have different numbers of samples: {n1} and {n2}",
                "their first axes must agree",
            )
            return None
        size = next(iter(sizes)) if sizes else None
        return ir.PerSample(tuple(binders), tuple(s.id for s in sources), size)

    # ---- symmetries ----

    def _group(self, t: ast.TypeExpr) -> ir.Group | None:
        kind = GROUPS.get(t.name)
        if kind is None:
            guess = difflib.get_close_matches(t.name, list(GROUPS), n=1, cutoff=0.5)
            hint = f"did you mean '{guess[0]}'?" if guess else "groups are " + ", ".join(GROUPS)
            self._error("E209", t.name_span, f"unknown group '{t.name}'", hint)
            return None
        dims = self._dims(t)
        if dims is None:
            return None
        if len(dims) < kind.min_dims or (kind.max_dims is not None and len(dims) > kind.max_dims):
            self._error(
                "E411",
                t.span,
                f"{t.name} takes {'one size' if kind.max_dims == 1 else 'sizes'}, got {len(dims)}",
                f"{t.name}: {kind.doc}",
            )
            return None
        algebra = kind.algebra_dim(dims)
        if algebra == 0:
            self._error(
                "E411",
                t.span,
                f"{t.name}[{', '.join(map(str, dims))}] is a trivial group (no generators)",
                "a symmetry needs a group of positive dimension",
            )
            return None
        return ir.Group(t.name, dims, kind.element_shape(dims), algebra)

    def _check_actions(self, name: str, decl_span: Span, group: ir.Group, actions: tuple[ast.Action, ...],
                       params: dict[str, Binding], rename: dict[str, str]) -> tuple[ir.Action, ...] | None:  # fmt: skip
        local = dict(params)
        local["g"] = Binding("group", "g", group.element_shape, None)
        ctx = Context(
            "in a symmetry action",
            frozenset({"param", "data", "group"}),
            hint={
                "let": "actions are written in terms of the parameters and g",
                "predictor": "actions are written in terms of the parameters and g",
            },
        )
        out = []
        seen: dict[str, Span] = {}
        uses_g = False
        self._locals.append(local)
        try:
            for a in actions:
                target = local.get(a.target)
                if target is None or target.kind != "param":
                    known = sorted(k for k, b in local.items() if b.kind == "param")
                    guess = difflib.get_close_matches(a.target, known, n=1, cutoff=0.5)
                    hint = (
                        f"did you mean '{guess[0]}'?"
                        if guess
                        else "the left side of '->' names a parameter: " + ", ".join(known)
                    )
                    self._error(
                        "E401",
                        a.target_span,
                        f"'{a.target}' is not a parameter {'of this symmetry' if rename else 'of the model'}",
                        hint,
                    )
                    continue
                if a.target in seen:
                    self._error(
                        "E405",
                        a.target_span,
                        f"'{a.target}' already has an action rule (line {seen[a.target].line})",
                        "give each parameter one rule",
                    )
                    continue
                seen[a.target] = a.span
                value = self.exprs.check(a.value, ctx)
                if value is None:
                    continue
                if value.shape != target.shape:
                    self._error(
                        "E402",
                        a.value.span,
                        f"the action maps '{a.target}' ({show(target.shape)}) to a value of shape {show(value.shape)}",
                        "an action must keep each parameter's shape",
                    )
                    continue
                uses_g = uses_g or _uses(value, "group")
                out.append(ir.Action(rename.get(a.target, a.target), value, a.span))
        finally:
            self._locals.pop()
        if not actions:
            self._error(
                "E404", decl_span, f"symmetry '{name}' acts on no parameter", "add action rules such as `u -> g * u`"
            )
            return None
        if len(out) == len(actions) and not uses_g:
            self._error(
                "E403",
                decl_span,
                f"the action of '{name}' never uses the group element g",
                "write the rules in terms of g, e.g. `u -> g * u`",
            )
            return None
        return tuple(out) if len(out) == len(actions) else None

    def _check_symmetry_decl(self, d: ast.SymmetryDecl) -> None:
        if self._globals.get(d.name, (None, None))[1] is not d:
            return
        group = self._group(d.group)
        if group is None:
            return
        if self._param_bindings is None:
            self._param_bindings = {
                n: Binding("param", n, e[1].manifold.shape, e[2]) for n, e in self._globals.items() if e[0] == "param"
            }
        actions = self._check_actions(d.name, d.span, group, d.actions, self._param_bindings, {})
        if actions is not None:
            self._symmetries[d.name] = ir.Symmetry(d.name, group, actions, None, d.doc, d.span)

    def _check_symmetry_inst(self, d: ast.SymmetryInst) -> None:
        if self._globals.get(d.name, (None, None))[1] is not d:
            return
        t = self._templates.get(d.template)
        if t is None and (d.template in self._broken_templates or self.imports_failed):
            return  # its errors are reported where it is declared, or with the import
        if t is None:
            guess = difflib.get_close_matches(d.template, list(self._templates), n=1, cutoff=0.5)
            hint = (
                f"did you mean '{guess[0]}'?"
                if guess
                else "import it first, e.g. `import std.rescaling`; `gaugedsl check stdlib/*.gauge --emit ir` lists the stdlib"
            )
            self._error("E406", d.template_span, f"unknown parametric symmetry '{d.template}'", hint)
            return
        want = len(t.params)
        if len(d.args) != want:
            self._error(
                "E407",
                d.span,
                f"{d.template} takes {want} parameter{'s' if want != 1 else ''}, got {len(d.args)}",
                f"usage: {_template_signature(t)}",
            )
            return
        args = []
        for a in d.args:
            b = self._lookup(a.id)
            if b is None or b.kind != "param":
                if b is not None and b.kind == "error":
                    return  # reported where it is declared
                what = _a(b.kind) if b is not None else "not declared"
                params = [n for n, e in self._globals.items() if e[0] == "param"]
                self._error(
                    "E408",
                    a.span,
                    f"'{a.id}' is {what}; a symmetry acts on parameters",
                    "pass parameters of the model: " + ", ".join(params) if params else "declare the parameters first",
                )
                return
            if any(a.id == name for name, _ in args):
                self._error(
                    "E408",
                    a.span,
                    f"'{a.id}' is passed twice; a symmetry acts on distinct parameters",
                    f"usage: {_template_signature(t)}",
                )
                return
            args.append((a.id, b))
        symmetry = self._instantiate(t, d.name, args, d.span, d.doc or t.decl.doc, [a.span for a in d.args])
        if symmetry is not None:
            self._symmetries[d.name] = symmetry

    def _instantiate(self, t: Template, name: str, args, span: Span, doc: str,
                     arg_spans: list[Span] | None = None, stand_in: bool = False) -> ir.Symmetry | None:  # fmt: skip
        sizes: dict[str, int] = {}
        where = arg_spans or [span] * len(args)
        for p, (arg_name, b), arg_span in zip(t.params, args, where):
            dims = p.type.dims or ()
            kind = p.type.name
            entry = self._globals.get(arg_name)
            if stand_in:
                arg_kind = kind
            else:
                arg_kind = entry[1].manifold.kind if entry and entry[0] == "param" else "R"
            if kind != "R" and kind != arg_kind:
                self._error(
                    "E409",
                    arg_span,
                    f"{t.decl.name} needs '{p.name}' on {kind}, but '{arg_name}' is on {arg_kind}",
                    f"usage: {_template_signature(t)}",
                )
                return None
            if len(dims) != len(b.shape):
                self._error(
                    "E409",
                    arg_span,
                    f"{t.decl.name} needs '{p.name}' of {len(dims)} axes ({_show_type(p.type)}), but '{arg_name}' has shape {show(b.shape)}",
                    f"usage: {_template_signature(t)}",
                )
                return None
            for d, actual in zip(dims, b.shape):
                if isinstance(d, ast.Name) and d.id not in F.CONSTANTS:
                    if sizes.setdefault(d.id, actual) != actual:
                        self._error(
                            "E409",
                            arg_span,
                            f"{t.decl.name}: size '{d.id}' would be both {sizes[d.id]} and {actual} ('{arg_name}' has shape {show(b.shape)})",
                            f"usage: {_template_signature(t)}",
                        )
                        return None
        self._locals.append({k: Binding("size", k, (), None, v) for k, v in sizes.items()})
        try:
            for p, (arg_name, b), arg_span in zip(t.params, args, where):
                for d, actual in zip(p.type.dims or (), b.shape):
                    if not isinstance(d, ast.Name):
                        value = self.exprs.constant(d, None)
                        if value is _BAD:
                            return None
                        if value != actual:
                            self._error(
                                "E409",
                                arg_span,
                                f"{t.decl.name} needs '{p.name}' of shape {_show_type(p.type)} = {value} on that axis, but '{arg_name}' has shape {show(b.shape)}",
                                f"usage: {_template_signature(t)}",
                            )
                            return None
            group = self._group(t.decl.group)
            if group is None:
                return None
            params = {p.name: Binding("param", arg_name, b.shape, b.span) for p, (arg_name, b) in zip(t.params, args)}
            rename = {p.name: arg_name for p, (arg_name, _) in zip(t.params, args)}
            actions = self._check_actions(name, t.decl.span, group, t.decl.actions, params, rename)
        finally:
            self._locals.pop()
        if actions is None:
            return None
        return ir.Symmetry(name, group, actions, t.decl.name, doc, span)

    # ---- noise, run, design ----

    def _settings(
        self, entries, schema: dict[str, S.Setting], what: str, usage: str | None = None
    ) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        ok = True
        for name, node, span in entries:
            spec = schema.get(name)
            if spec is None:
                guess = difflib.get_close_matches(name, list(schema), n=1, cutoff=0.6)
                hint = (
                    f"did you mean '{guess[0]}'?" if guess else (usage or f"{what} settings are: " + ", ".join(schema))
                )
                self._error("E504" if what != "noise" else "E502", span, f"unknown {what} setting '{name}'", hint)
                ok = False
                continue
            if name in spans:
                self._error("E510", span, f"'{name}' is already set (line {spans[name].line})", "set it once")
                ok = False
                continue
            spans[name] = span
            value = self._setting_value(spec, node, what)
            if value is _BAD:
                ok = False
                continue
            values[name] = value
        return values if ok else None

    def _setting_value(self, spec: S.Setting, node: ast.Expr, what: str):
        code = "E503" if what == "noise" else ("E602" if what == "design" else "E505")
        if spec.kind in ("enum", "name"):
            if isinstance(node, ast.Call) and spec.kind == "enum" and spec.name == "target":
                node = ast.Name(node.func, node.func_span)
            if not isinstance(node, ast.Name):
                self._error(
                    code,
                    node.span,
                    f"'{spec.name}' takes a name" + (f": one of {', '.join(spec.choices)}" if spec.choices else ""),
                    f"{spec.name}: {spec.doc}",
                )
                return _BAD
            if spec.choices and node.id not in spec.choices:
                guess = difflib.get_close_matches(node.id, list(spec.choices), n=1, cutoff=0.6)
                hint = f"did you mean '{guess[0]}'?" if guess else f"choose one of: {', '.join(spec.choices)}"
                self._error(
                    "E507" if what == "run" else code, node.span, f"'{node.id}' is not a valid {spec.name}", hint
                )
                return _BAD
            return node.id
        value = self.exprs.constant(node, None)
        if value is _BAD:
            return _BAD
        if spec.kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                    value = int(value)
                else:
                    self._error(
                        code,
                        node.span,
                        f"'{spec.name}' must be a whole number, not {value}",
                        f"{spec.name}: {spec.doc}",
                    )
                    return _BAD
            if spec.positive and value < 1:
                self._error(
                    code, node.span, f"'{spec.name}' must be at least 1, not {value}", f"{spec.name}: {spec.doc}"
                )
                return _BAD
            if spec.nonnegative and value < 0:
                self._error(
                    code, node.span, f"'{spec.name}' must be 0 or more, not {value}", f"{spec.name}: {spec.doc}"
                )
                return _BAD
            if spec.below is not None and value >= spec.below:
                self._error(
                    code,
                    node.span,
                    f"'{spec.name}' must be below {spec.below}, not {value}",
                    f"{spec.name}: {spec.doc}",
                )
                return _BAD
            return value
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self._error(code, node.span, f"'{spec.name}' must be a number", f"{spec.name}: {spec.doc}")
            return _BAD
        if spec.positive and not value > 0:
            self._error(code, node.span, f"'{spec.name}' must be positive, not {value}", f"{spec.name}: {spec.doc}")
            return _BAD
        return float(value)

    def _check_noise(self, d: ast.NoiseDecl) -> ir.Noise | None:
        kind = NOISES.get(d.kind)
        if kind is None:
            guess = difflib.get_close_matches(d.kind, list(NOISES), n=1, cutoff=0.5)
            hint = f"did you mean '{guess[0]}'?" if guess else "noise models are " + ", ".join(NOISES)
            self._error("E501", d.kind_span, f"unknown noise model '{d.kind}'", hint)
            return None
        specs = kind.settings
        schema = {s.name: s for s in specs}
        if len(d.args) > len(specs):
            self._error(
                "E502",
                d.args[len(specs)].span,
                f"{d.kind} takes {len(specs)} setting{'s' if len(specs) != 1 else ''}",
                "usage: " + _noise_signature(d.kind),
            )
            return None
        entries = [(s.name, a, a.span) for s, a in zip(specs, d.args)] + [(k.name, k.value, k.span) for k in d.kwargs]
        values = self._settings(entries, schema, "noise", "usage: " + _noise_signature(d.kind))
        if values is None:
            return None
        missing = [s.name for s in specs if s.required and s.name not in values]
        if missing:
            self._error(
                "E502", d.span, f"{d.kind} noise needs {', '.join(missing)}", "usage: " + _noise_signature(d.kind)
            )
            return None
        if kind.per_sample and self._per_sample is None:
            if not self._loss_is_per_sample():
                self._error(
                    "E509",
                    d.span,
                    f"{d.kind} noise needs a per-sample loss",
                    "write the loss as `loss per (x, t) in (X, y) = ...`",
                )
            return None  # else: the per-sample loss has errors of its own
        batch = values.get("batch")
        size = self._per_sample.size if self._per_sample else None
        if batch is not None and size is not None and batch > size:
            batch_span = next((k.value.span for k in d.kwargs if k.name == "batch"), d.span)
            self._error(
                "E511",
                batch_span,
                f"batch = {batch} is larger than the dataset ({size} samples)",
                f"use a batch of at most {size}",
            )
            return None
        return ir.Noise(d.kind, tuple(values.items()), d.span, tuple((k.name, k.span) for k in d.kwargs))

    def _check_run(self, r: ast.RunBlock, noise: ir.Noise | None) -> ir.Run | None:
        values = self._settings([(s.name, s.value, s.name_span) for s in r.settings], S.RUN_SETTINGS, "run")
        records = tuple(x for x in (self._check_record(rec) for rec in r.records) if x is not None)
        labels: dict[str, Span] = {}
        for rec in records:
            for item in rec.items:
                if item.label in labels:
                    self._error(
                        "E513",
                        item.span,
                        f"'{item.label}' is recorded twice",
                        "give one of them another name: name = expr",
                    )
                labels.setdefault(item.label, item.span)
        if values is None:
            return None
        if noise is None and any(isinstance(i, ast.NoiseDecl) for i in self.program.items):
            return None  # the noise model has errors; what the run needs from it is unknown
        spans = {s.name: s.value.span for s in r.settings}
        dynamics = values.setdefault("dynamics", "sde" if noise is not None else "gd")
        if dynamics == "sde" and noise is None:
            self._error(
                "E508",
                r.span,
                "dynamics = sde needs a noise model",
                "add e.g. `noise projected(T = 1e-3)`, or use dynamics = gd",
            )
            return None
        if dynamics == "quotient" and (noise is None or not NOISES[noise.kind].horizontal):
            what = "a noise model" if noise is None else f"{noise.kind} noise"
            msg = f"dynamics = quotient needs projected noise, not {what}"
            hint = (
                "it is the projected-noise SDE on the gauge slice: declare `noise projected(T = 1e-3)`, "
                "or use dynamics = sde"
            )
            self._error("E508", spans.get("dynamics", r.span), msg, hint)
            return None
        if dynamics in ("sde", "quotient") and "dt" not in values:
            values["dt"] = 1e-2
        if dynamics in ("sgd", "gd"):
            lr = values.get("lr") or (noise.get("lr") if noise else None)
            if lr is None:
                self._error(
                    "E508",
                    r.span,
                    f"dynamics = {dynamics} needs a learning rate",
                    "set lr = 1e-3 in the run block (or in the noise model)",
                )
                return None
            values["lr"] = lr
        if dynamics == "sgd":
            if self._per_sample is None:
                if not self._loss_is_per_sample():
                    self._error(
                        "E509",
                        spans.get("dynamics", r.span),
                        "dynamics = sgd needs a per-sample loss to draw minibatches from",
                        "write the loss as `loss per (x, t) in (X, y) = ...`",
                    )
                return None
            batch = values.get("batch") or (noise.get("batch") if noise else None)
            if batch is None:
                batch = 1 if self._per_sample.size is None else self._per_sample.size
            size = self._per_sample.size
            if size is not None and batch > size:
                self._error(
                    "E511",
                    spans.get("batch", r.span),
                    f"batch = {batch} is larger than the dataset ({size} samples)",
                    f"use a batch of at most {size}",
                )
                return None
            values["batch"] = int(batch)
        for name, spec in S.RUN_SETTINGS.items():
            if spec.default is not None:
                values.setdefault(name, spec.default)
        written = tuple((s.name, _joined(s.name_span, s.value.span)) for s in r.settings)  # `name = value`
        sweep = self._check_sweep(r.sweeps)
        if sweep is None:
            return None
        axes, zipped, span = sweep
        return ir.Run(tuple(values.items()), records, r.span, written, axes, zipped, span)

    def _check_sweep(self, blocks: tuple[ast.SweepBlock, ...]):
        """(axes, zipped, span) of the run block's sweep, `((), False, None)` without one; None
        after an error. Which names the run can sweep is the runner's (E813: it depends on the plan)."""
        if not blocks:
            return (), False, None
        for extra in blocks[1:]:
            self._error(
                "E514", extra.span, "a run block has one sweep", "put every swept setting in the first sweep { }"
            )
        block, ok = blocks[0], True
        axes: list[tuple[str, tuple[float, ...]]] = []
        for axis in block.axes:
            if axis.name in dict(axes):
                self._error("E514", axis.name_span, f"'{axis.name}' is swept twice", "give each setting one line")
                ok = False
                continue
            values = self._sweep_values(axis)
            if values is None:
                ok = False
                continue
            axes.append((axis.name, values))
        if not block.axes:
            self._error("E514", block.span, "the sweep is empty", "e.g. sweep { T = [1e-3, 1e-2]  seed = 0..4 }")
            ok = False
        if ok and block.zipped and (problem := ir.sweep_zip_problem(tuple(axes))):
            self._error("E514", block.span, *problem)
            ok = False
        return (tuple(axes), block.zipped, block.span) if ok else None

    def _sweep_values(self, axis: ast.SweepAxis) -> tuple[float, ...] | None:
        if axis.values is None:  # lo..hi
            if axis.range is None or axis.range[1] < axis.range[0]:
                self._error(
                    "E514", axis.span, f"{axis.name}: a range lo..hi runs over whole numbers from lo up to hi",
                    "e.g. seed = 0..4; for other values give a list: [0.1, 0.2]",
                )  # fmt: skip
                return None
            values: tuple[float, ...] = tuple(float(v) for v in range(axis.range[0], axis.range[1] + 1))
        else:
            value = self.exprs.constant(axis.values, None)
            if value is _BAD:
                return None
            values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        if problem := ir.sweep_axis_problem(axis.name, values):
            span = axis.values.span if axis.values is not None and "finite" in problem[0] else axis.span
            self._error("E514", span, *problem)
            return None
        return tuple(float(v) for v in values)

    def _loss_is_per_sample(self) -> bool:
        return any(isinstance(i, ast.LossDecl) and i.binders is not None for i in self.program.items)

    def _check_record(self, rec: ast.Record) -> ir.Record | None:
        every = self.exprs.constant(rec.every, None)
        if every is _BAD:
            return None
        if not isinstance(every, int) or not 1 <= every < 2**31:
            self._error(
                "E506",
                rec.every.span,
                f"record every k steps needs a whole k from 1 to 2^31 − 1, not {every}",
                "e.g. record every 100: w, loss",
            )
            return None
        ctx = Context(
            "in a record",
            frozenset({"param", "data", "let", "predictor", "loss"}),
            records=True,
            hint={"stream": "streams are drawn per sample; record a predictor or the loss instead"},
        )
        items = []
        self._locals.append({"loss": Binding("loss", "loss", (), None)} if self.program else {})
        try:
            for item in rec.items:
                value = self.exprs.check(item.value, ctx)
                if value is None:
                    continue
                label = item.label or _default_label(item.value)
                if label is None:
                    self._error(
                        "E512", item.span, "this recorded expression needs a name", "write it as name = expression"
                    )
                    continue
                items.append(ir.RecordItem(label, value, item.span))
        finally:
            self._locals.pop()
        return ir.Record(every, tuple(items), rec.span)

    def _check_design(self, d: ast.DesignBlock) -> ir.Design | None:
        entries, ok = self._design_entries(d)
        values = self._settings(entries, S.DESIGN_SETTINGS, "design")
        if values is None or not ok:
            return None
        if "target" not in values:
            self._error(
                "E601",
                d.span,
                "a design block needs a target",
                "add target = sparsity (or spectral_sparsity, low_rank, total_variation)",
            )
            return None
        spans = {name: node.span for name, node, _ in entries}
        pred = values.get("predictor")
        if pred is not None:
            b = self._lookup(pred)
            if b is not None and b.kind == "error":
                return None  # reported where it is declared
            # In a vanilla model the parameter itself is the predictor.
            if b is None or b.kind not in ("predictor", "param"):
                self._error(
                    "E602",
                    spans["predictor"],
                    f"'{pred}' is not a predictor or parameter of this model",
                    "name a `predictor` or a `param` declared in this file",
                )
                return None
        op = values.get("operator")
        if op is not None and op not in S.DESIGN_OPERATORS:
            b = self._lookup(op)
            if b is not None and b.kind == "error":
                return None
            if b is None or b.kind != "data" or len(b.shape) != 2:
                self._error(
                    "E602",
                    spans["operator"],
                    f"'{op}' is not an analysis operator",
                    "use identity, cosine, fourier, difference, or the name of a data matrix",
                )
                return None
        depth = values.get("depth")
        if depth is not None and depth < 2:
            self._error(
                "E602",
                spans.get("depth", d.span),
                "depth must be at least 2 (a product of two or more factors)",
                "depth L gives the bias exponent 1 − 1/L",
            )
            return None
        exponent = values.get("exponent")
        if exponent is not None and not exponent < 1:
            self._error(
                "E602",
                spans["exponent"],
                f"the bias exponent must be below 1, not {exponent}",
                "depth L gives the exponent 1 − 1/L: 1/2, 2/3, 3/4, ...",
            )
            return None
        return ir.Design(tuple(values.items()), d.span, tuple(spans.items()))

    def _design_entries(self, d: ast.DesignBlock):
        """The block's settings, with the named arguments of `target = sparsity(depth = 3)`
        taken as settings of their own (so they are checked, never silently dropped)."""
        entries, ok = [], True
        for s in d.settings:
            call = s.value
            if s.name != "target" or not isinstance(call, ast.Call):
                entries.append((s.name, s.value, s.name_span))
                continue
            entries.append((s.name, ast.Name(call.func, call.func_span), s.name_span))
            for a in call.args:
                self._error(
                    "E602",
                    a.span,
                    f"the arguments of {call.func}(...) are design settings and need names",
                    f"write {call.func}(depth = 3), or set it in the block: depth = 3",
                )
                ok = False
            for kw in call.kwargs:
                if kw.name == "target":
                    self._error(
                        "E602", kw.span, "the target cannot be set inside itself", f"write target = {call.func}"
                    )
                    ok = False
                    continue
                entries.append((kw.name, kw.value, kw.span))
        entries.sort(key=lambda e: e[2].sort_key())
        return entries, ok


@dataclasses.dataclass(frozen=True)
class _ParamInfo:
    decl: ast.ParamDecl
    manifold: ir.Manifold


def _a(kind: str) -> str:
    """'a parameter', 'data', 'a definition', ... for a binding kind."""
    word = KIND_WORDS.get(kind, kind)
    return word if word == "data" else f"a {word}"


def _reserved(name: str) -> str | None:
    """Why `name` cannot name a declaration, or None."""
    if name in F.FUNCTIONS:
        return f"'{name}' is the name of a built-in function"
    if name in RESERVED:
        return f"'{name}' is reserved for {RESERVED[name]}"
    if name in KEYWORDS:
        return f"'{name}' is a keyword of the language"
    return None


def _default_init(m: ir.Manifold, span: Span) -> ir.Expr:
    """The initializer of a parameter declared without one (documented in docs/language.md)."""
    zero, one = ir.Const(0.0, (), span), ir.Const(1.0, (), span)
    kind = MANIFOLDS[m.kind]
    if kind.default_init_call is not None:
        return ir.Call(kind.default_init_call, (), (), m.shape, span)
    draw = ir.Call("normal", (zero, one), (), m.shape, span)
    for wrapper in kind.default_init_wrappers:
        draw = ir.Call(wrapper, (draw,), (), m.shape, span)
    return draw


def _joined(first: Span, last: Span) -> Span:
    return Span(first.path, first.line, first.column, last.end_line, last.end_column)


def with_sites(owner: str, e: ir.Expr) -> ir.Expr:
    """`e` with its random calls named `owner#0`, `owner#1`, ... in source order (a call
    before its arguments, arguments left to right). Declaration names are unique in a model,
    so no two calls share a site; the names, not the layout, key the unseeded draws
    (docs/language.md, "What the numbers depend on")."""
    count = 0

    def visit(e):
        nonlocal count
        if isinstance(e, ir.Call):
            site = None
            if e.func in F.RANDOM:
                site, count = f"{owner}#{count}", count + 1
            e = dataclasses.replace(e, site=site)  # named before its arguments
        return ir.map_children(e, visit)

    return visit(e)


def _uses(e: ir.Expr, kind: str) -> bool:
    return any(isinstance(x, ir.Ref) and x.kind == kind for x in ir.walk(e))


def _default_label(e: ast.Expr) -> str | None:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Call) and len(e.args) == 1 and isinstance(e.args[0], ast.Name) and not e.kwargs:
        return f"{e.func}_{e.args[0].id}"
    return None


def _show_type(t: ast.TypeExpr) -> str:
    if t.dims is None:
        return t.name
    return f"{t.name}[{', '.join(_show_dim(d) for d in t.dims)}]"


def _show_dim(d: ast.Expr) -> str:
    if isinstance(d, ast.Name):
        return d.id
    if isinstance(d, ast.Number):
        return d.text
    if isinstance(d, ast.Binary):
        return f"{_show_dim(d.left)}{d.op}{_show_dim(d.right)}"
    return "?"


def _template_signature(t: Template) -> str:
    params = ", ".join(f"{p.name} : {_show_type(p.type)}" for p in t.params)
    return f"symmetry {t.decl.name}({params}) : {_show_type(t.decl.group)}"


def _noise_signature(kind: str) -> str:
    return NOISES[kind].signature()


def source_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", errors="surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _either(names, word: str) -> str:
    """`a, b, c or d` (the registered kinds, in registry order)."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"
