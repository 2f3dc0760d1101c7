"""The gaugedsl language server (`gaugedsl lsp`, over stdio), built on pygls.

- **Diagnostics**: every diagnostic of the checker, published when a document is opened,
  changed or saved (saving re-checks every open document: one may import another).
  Diagnostics that lie in an imported file are shown on the `import` line that brings it in.
- **Hover**: function signatures and docs (from the function table), parametric symmetries
  with their `##` docs (stdlib or local imports), group kinds, manifolds, noise models,
  settings and keywords, and the inferred shapes of the model's names (from the IR of the
  last version of the document that checked).
- **Completion**: keywords, group kinds, manifolds, functions, noise models, run and design
  settings and their values, stdlib modules and symmetries, and the document's own names.
- **Formatting**: `gaugedsl fmt` on the whole document.

The language logic lives in plain functions (`diagnostics_for`, `hover_text`, `completions`)
that the server calls and the tests call directly. A failure inside the checker is reported
as one diagnostic and logged; the server keeps running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import traceback
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import PositionCodec, TextDocument

from . import __version__, ir
from ._resources import stdlib_dir
from .check import Loader
from .check.functions import CONSTANTS, FUNCTIONS, Function
from .check.loader import import_folders
from .check.settings import DESIGN_OPERATORS, DESIGN_SETTINGS, RUN_SETTINGS, Setting
from .check.shapes import show as show_shape
from .diagnostics import Diagnostic, GaugeError, Span
from .kinds import GROUPS, MANIFOLDS, NOISES
from .syntax import ast, parse
from .syntax.parser import expected_terminals

log = logging.getLogger("gaugedsl.lsp")
# How long edits must pause before a document is checked again (a burst of keystrokes is one check).
DEBOUNCE_S = 0.2

KEYWORD_DOCS = {
    "model": "`model NAME` — names the model; a file without it is a library.",
    "import": "`import std.NAME` brings a stdlib module's parametric symmetries into scope; "
    "`import a.b` reads `a/b.gauge` beside this file.",
    "data": "`data { X : R[n, d] = ... }` — fixed data, generated or loaded once.",
    "stream": "`stream x : R[d] ~ normal(0, 1)` — data drawn fresh at every step.",
    "param": "`param u : R[n] = init` — a parameter: a point of a manifold.",
    "predictor": "`predictor w = expr` — the function of the parameters that the data see.",
    "let": "`let name = expr` — a named intermediate expression.",
    "loss": "`loss = expr`, or `loss per (x, t) in (X, y) = expr`: a per-sample loss whose mean is the training loss.",
    "per": "`loss per (x, t) in (X, y) = ...` — binds one sample of each dataset.",
    "in": "`loss per (x, t) in (X, y) = ...` — the datasets or streams the samples come from.",
    "symmetry": "`symmetry s : Group[...] { u -> g * u ... }` declares a Lie group action "
    "(`g` is the group element); `symmetry s = template(u, v)` instantiates a parametric one.",
    "noise": "`noise KIND(...)` — the noise model: " + ", ".join(f"`{k}`" for k in NOISES) + ".",
    "run": "`run { setting = value ... record every N: ... }` — what to simulate.",
    "sweep": "`sweep { T = [1e-3, 1e-2]  seed = 0..4 }` in the run block — every combination run as one "
    "compiled program (`sweep zip { ... }`: the i-th values together); docs/scaling.md.",
    "record": "`record every N: expr, name = expr, ...` — observables saved every N steps.",
    "every": "`record every N: ...` — the recording interval in steps.",
    "design": "`design { target = ... }` — inverse design: a wanted bias.",
}


# ---- positions --------------------------------------------------------------------------
# Spans count code points from 1; LSP positions count code units of the negotiated encoding
# from 0. pygls's `PositionCodec` converts; lines are split on "\n" as the parser counts them.


def client_units(line_text: str, column: int, encoding: str | None = "utf-16") -> int:
    """The LSP `character` of code-point offset `column` in a line, in the negotiated
    encoding (UTF-16 code units unless the client chose otherwise)."""
    return PositionCodec(encoding).client_num_units(line_text[: max(column, 0)])


def code_points(line_text: str, character: int, encoding: str | None = "utf-16") -> int:
    """The inverse of `client_units`: a code-point offset into the line."""
    position = lsp.Position(0, character)
    return PositionCodec(encoding).position_from_client_units([line_text], position).character


def span_range(span: Span, lines: list[str], encoding: str | None = "utf-16") -> lsp.Range:
    """A 1-based, end-exclusive `Span` as a 0-based LSP range."""
    codec = PositionCodec(encoding)

    def position(line: int, column: int) -> lsp.Position:
        index = max(line - 1, 0)
        if index >= len(lines):
            return lsp.Position(index, 0)
        return codec.position_to_client_units(lines, lsp.Position(index, max(column - 1, 0)))

    start = position(span.line, span.column)
    end = position(span.end_line, span.end_column)
    if (end.line, end.character) < (start.line, start.character):
        end = start
    return lsp.Range(start, end)


# ---- outline ----------------------------------------------------------------------------

_SYMBOL_KINDS = {
    ast.DataDef: lsp.SymbolKind.Constant,
    ast.StreamDef: lsp.SymbolKind.Event,
    ast.ParamDecl: lsp.SymbolKind.Variable,
    ast.PredictorDecl: lsp.SymbolKind.Function,
    ast.LetDecl: lsp.SymbolKind.Variable,
    ast.SymmetryDecl: lsp.SymbolKind.Class,
    ast.SymmetryInst: lsp.SymbolKind.Class,
}


def document_symbols(program: ast.Program, text: str, encoding: str | None = "utf-16") -> list[lsp.DocumentSymbol]:
    """The outline of a document: its data, parameters, lets, predictors and symmetries by name,
    the loss, the noise, the run block (its settings as children) and the design block."""
    lines = text.split("\n")

    def symbol(name: str, detail: str | None, kind, span: Span, name_span: Span | None = None, children=None):
        return lsp.DocumentSymbol(name=name, detail=detail, kind=kind, range=span_range(span, lines, encoding),
                                  selection_range=span_range(name_span or span, lines, encoding),
                                  children=children or None)  # fmt: skip

    def settings(block) -> list[lsp.DocumentSymbol]:
        return [symbol(s.name, _source(text, s.value.span), lsp.SymbolKind.Property, s.span, s.name_span)
                for s in block.settings]  # fmt: skip

    out: list[lsp.DocumentSymbol] = []
    for item in program.items:
        if isinstance(item, ast.DataBlock):
            out.append(symbol("data", None, lsp.SymbolKind.Namespace, item.span, children=[
                symbol(e.name, _source(text, e.type.span), _SYMBOL_KINDS[type(e)], e.span, e.name_span)
                for e in item.entries]))  # fmt: skip
        elif isinstance(item, ast.ParamDecl):
            out.append(
                symbol(item.name, _source(text, item.type.span), lsp.SymbolKind.Variable, item.span, item.name_span)
            )
        elif isinstance(item, (ast.PredictorDecl, ast.LetDecl, ast.SymmetryDecl, ast.SymmetryInst)):
            kind = (
                "predictor"
                if isinstance(item, ast.PredictorDecl)
                else "let"
                if isinstance(item, ast.LetDecl)
                else "symmetry"
            )
            out.append(symbol(item.name, kind, _SYMBOL_KINDS[type(item)], item.span, item.name_span))
        elif isinstance(item, ast.LossDecl):
            out.append(symbol("loss", None, lsp.SymbolKind.Function, item.span))
        elif isinstance(item, ast.NoiseDecl):
            out.append(symbol(f"noise {item.kind}", None, lsp.SymbolKind.Event, item.span, item.kind_span))
        elif isinstance(item, ast.RunBlock):
            out.append(symbol("run", None, lsp.SymbolKind.Module, item.span, children=settings(item)))
        elif isinstance(item, ast.DesignBlock):
            out.append(symbol("design", None, lsp.SymbolKind.Module, item.span, children=settings(item)))
        elif isinstance(item, ast.ModelDecl):
            out.append(symbol(item.name, "model", lsp.SymbolKind.File, item.span))
    return out


# ---- go to definition -------------------------------------------------------------------


def _declarations(program: ast.Program) -> dict[str, Span]:
    """Each name the document declares (data, streams, parameters, lets, predictors, symmetries,
    the loss's binders) at its name."""
    found: dict[str, Span] = {}
    for item in program.items:
        if isinstance(item, ast.DataBlock):
            for entry in item.entries:
                found.setdefault(entry.name, entry.name_span)
        elif isinstance(item, (ast.ParamDecl, ast.LetDecl, ast.PredictorDecl, ast.SymmetryDecl, ast.SymmetryInst)):
            found.setdefault(item.name, item.name_span)
        elif isinstance(item, ast.LossDecl) and item.binders:
            for binder in item.binders:
                found.setdefault(binder.id, binder.span)
    return found


def definition(text: str, path: str, line: int, column: int, program: ast.Program | None,
               encoding: str | None = "utf-16") -> tuple[str, lsp.Range] | None:  # fmt: skip
    """Where the thing at 0-based (`line`, code-point `column`) is declared, as (file, range):
    an import's file; a name this document declares; a symmetry template of an imported file or
    the stdlib. None inside comments and strings, or for a name declared nowhere (a function,
    a keyword)."""
    lines = text.split("\n")
    if program is None or not 0 <= line < len(lines) or in_comment_or_string(lines[line], column):
        return None
    for item, file, _ in _imports(program, path):
        if item.span.line - 1 <= line <= item.span.end_line - 1:
            return str(file), lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    found = word_at(text, line, column)
    if found is None:
        return None
    word = found[0]
    declared = _declarations(program).get(word)
    if declared is not None:
        return path, span_range(declared, lines, encoding)
    for template in available_templates(program, path):
        if template.name == word and template.file is not None and template.name_span is not None:
            try:
                their_lines = template.file.read_text(encoding="utf-8").split("\n")
            except (OSError, UnicodeDecodeError):
                return None
            return str(template.file), span_range(template.name_span, their_lines, encoding)
    return None


# ---- code actions -----------------------------------------------------------------------

_DID_YOU_MEAN = re.compile(r"hint: did you mean '([A-Za-z_][A-Za-z_0-9.]*)'\?")


def code_actions(uri: str, text: str, diagnostics: list[lsp.Diagnostic],
                 encoding: str | None = "utf-16") -> list[lsp.CodeAction]:  # fmt: skip
    """Quick fixes from the hints that name one ("did you mean 'v'?"): replace the misspelled
    word the diagnostic points at. Only where the range holds exactly one identifier."""
    lines = text.split("\n")
    actions = []
    for d in diagnostics:
        match = _DID_YOU_MEAN.search(d.message or "")
        start, end = d.range.start, d.range.end
        if match is None or start.line != end.line or not 0 <= start.line < len(lines):
            continue
        line_text = lines[start.line]
        word = line_text[
            code_points(line_text, start.character, encoding) : code_points(line_text, end.character, encoding)
        ]
        guess = match.group(1)
        if not _IDENT.fullmatch(word) or word == guess:
            continue
        edit = lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=d.range, new_text=guess)]})
        actions.append(lsp.CodeAction(title=f"Change '{word}' to '{guess}'", kind=lsp.CodeActionKind.QuickFix,
                                      diagnostics=[d], edit=edit, is_preferred=True))  # fmt: skip
    return actions


# ---- checking ---------------------------------------------------------------------------


@dataclasses.dataclass
class Checked:
    """The result of checking one version of a document."""

    diagnostics: list[Diagnostic]
    model: ir.Model | ir.Library | None = None
    program: ast.Program | None = None
    internal_error: str | None = None


def check(text: str, path: str) -> Checked:
    """Parse and check `text` as the file `path`. Never raises: a crash of the checker comes
    back as `internal_error`."""
    try:
        program = parse(text, path)
    except GaugeError as exc:
        return Checked(list(exc.diagnostics))
    except Exception:  # noqa: BLE001
        return Checked([], internal_error=traceback.format_exc())
    try:
        model = Loader().check_text(text, path)
    except GaugeError as exc:
        return Checked(list(exc.diagnostics), program=program)
    except Exception:  # noqa: BLE001 — the server must survive any bug of the checker
        return Checked([], program=program, internal_error=traceback.format_exc())
    return Checked([], model, program)


_SEVERITY = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "note": lsp.DiagnosticSeverity.Information,
}


def _imports(program: ast.Program | None, path: str) -> list[tuple[ast.Import, Path, str]]:
    """The imports of a document that resolve, as the checker resolves them: (import, file,
    the path diagnostics call the file by). One that does not resolve is the checker's to report."""
    found: list[tuple[ast.Import, Path, str]] = []
    if program is None:
        return found
    folder, shown_folder = import_folders(path)
    loader = Loader()
    for item in program.items:
        if isinstance(item, ast.Import):
            try:
                file, shown = loader.resolve_import(item, folder, shown_folder)
            except GaugeError:
                continue
            found.append((item, file, shown))
    return found


def _import_ranges(program: ast.Program | None, path: str) -> tuple[dict[str, Span], dict[str, Span]]:
    """The `import` statement of each imported file, keyed by the path diagnostics call it by,
    and (when that does not resolve) by the module's last name."""
    by_path = {shown: item.span for item, _, shown in _imports(program, path)}
    by_name: dict[str, Span] = {}
    if program is not None:
        for item in program.items:
            if isinstance(item, ast.Import):
                by_name.setdefault(item.path[-1], item.span)
    return by_path, by_name


def to_lsp(checked: Checked, path: str, text: str, encoding: str | None = "utf-16") -> list[lsp.Diagnostic]:
    """The checker's diagnostics of one document as LSP diagnostics (0-based ranges)."""
    lines = text.split("\n")
    first_line = Span(path, 1, 1, 1, len(lines[0]) + 1 if lines else 1)
    by_path, imports = _import_ranges(checked.program, path)
    out = []
    for d in checked.diagnostics:
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        related = None
        span = d.span
        if span is None:
            span = first_line
        elif span.path != path:
            where = by_path.get(span.path) or imports.get(Path(span.path).stem)
            message = f"in {span.path}:{span.line}:{span.column}: {message}"
            related = [
                lsp.DiagnosticRelatedInformation(
                    lsp.Location(
                        from_fs_path(span.path) or span.path,
                        lsp.Range(
                            lsp.Position(span.line - 1, span.column - 1),
                            lsp.Position(span.end_line - 1, max(span.end_column - 1, 0)),
                        ),
                    ),
                    d.message,
                )
            ]
            span = where or next(iter(imports.values()), None) or first_line
        out.append(
            lsp.Diagnostic(
                range=span_range(span, lines, encoding),
                message=message,
                severity=_SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Error),
                code=d.code,
                source="gaugedsl",
                related_information=related,
            )
        )
    if checked.internal_error:
        last = checked.internal_error.strip().splitlines()[-1]
        out.append(
            lsp.Diagnostic(
                range=span_range(first_line, lines, encoding),
                message=f"internal error in gaugedsl (please report it): {last}",
                severity=lsp.DiagnosticSeverity.Error,
                code="internal",
                source="gaugedsl",
            )
        )
    return out


# ---- parametric symmetries (stdlib and local imports) -----------------------------------


@dataclasses.dataclass(frozen=True)
class TemplateInfo:
    name: str
    module: str  # `std.rescaling`, or the dotted import path
    signature: str
    doc: str
    file: Path | None = None  # where it is declared (go-to-definition)
    name_span: Span | None = None


def _type_text(t: ast.TypeExpr, text: str) -> str:
    return _source(text, t.span)


def _source(text: str, span: Span) -> str:
    lines = text.split("\n")
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1 : span.end_column - 1]
    parts = [lines[span.line - 1][span.column - 1 :]]
    parts += lines[span.line : span.end_line - 1]
    parts.append(lines[span.end_line - 1][: span.end_column - 1])
    return " ".join(p.strip() for p in parts)


_template_cache: dict[Path, tuple[float, list[TemplateInfo]]] = {}


def templates_in(path: Path, module: str) -> list[TemplateInfo]:
    """The parametric symmetries declared in a library file (cached by modification time)."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return []
    cached = _template_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        text = path.read_text(encoding="utf-8")
        program = parse(text, str(path))
    except (OSError, UnicodeDecodeError, GaugeError):
        return []
    found = []
    for item in program.items:
        if isinstance(item, ast.SymmetryDecl) and item.params is not None:
            params = ", ".join(f"{p.name} : {_type_text(p.type, text)}" for p in item.params)
            signature = f"symmetry {item.name}({params}) : {_type_text(item.group, text)}"
            found.append(TemplateInfo(item.name, module, signature, item.doc, path, item.name_span))
    _template_cache[path] = (mtime, found)
    return found


def stdlib_modules() -> list[str]:
    try:
        return sorted(p.stem for p in stdlib_dir().glob("*.gauge"))
    except (OSError, FileNotFoundError):
        return []


def available_templates(program: ast.Program | None, path: str) -> list[TemplateInfo]:
    """The parametric symmetries this document imports, then those of the whole stdlib."""
    found: list[TemplateInfo] = []
    for item, file, _ in _imports(program, path):
        found += templates_in(file, item.dotted)
    for module in stdlib_modules():
        found += templates_in(stdlib_dir() / f"{module}.gauge", f"std.{module}")
    return found


# ---- hover ------------------------------------------------------------------------------

# An identifier as the lexer reads it. pygls's default word patterns would also take a word
# that begins with a digit, and `word_at_position` returns only the word, not where it starts.
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_WORD_START = re.compile(r"(?:[A-Za-z_][A-Za-z_0-9]*)?$")
_WORD_END = re.compile(r"^[A-Za-z_0-9]*")
_NOTHING = re.compile(r"^")
_CODE_POINTS = PositionCodec(lsp.PositionEncodingKind.Utf32)


def word_at(text: str, line: int, column: int) -> tuple[str, int, int] | None:
    """The identifier around 0-based (`line`, code-point `column`): (word, start, end)."""
    lines = text.split("\n")
    if not 0 <= line < len(lines) or not 0 <= column <= len(lines[line]):
        return None
    # One line as its own document: the parser's lines are split on "\n" only.
    doc = TextDocument("untitled:line", lines[line], position_codec=_CODE_POINTS)
    word = doc.word_at_position(lsp.Position(0, column), _WORD_START, _WORD_END)
    if not _IDENT.fullmatch(word):
        return None
    start = column - len(doc.word_at_position(lsp.Position(0, column), _WORD_START, _NOTHING))
    return word, start, start + len(word)


def in_comment_or_string(line_text: str, column: int) -> bool:
    """Whether code-point `column` of a line lies in a comment or a string literal."""
    quoted = False
    for c in line_text[:column]:
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return True
    return quoted


def _setting_values() -> dict[str, list[str]]:
    """Each value of an enumerated setting, with the settings that take it."""
    values: dict[str, list[str]] = {}
    for block, table in (("run", RUN_SETTINGS), ("design", DESIGN_SETTINGS)):
        for s in table.values():
            for c in s.choices:
                values.setdefault(c, []).append(f"{block} setting `{s.name}`")
    for op in DESIGN_OPERATORS:
        values.setdefault(op, []).append("design setting `operator`")
    return values


def _function_doc(f: Function) -> str:
    where = {
        "generator": "\n\nOnly in data and parameter initializers.",
        "stream": "\n\nIn data, initializers and streams.",
        "record": "\n\nOnly in `record` items of the run block.",
    }.get(f.where, "")
    return f"```gauge\n{f.signature()}\n```\n{f.doc}{where}"


def _setting_doc(s: Setting, block: str) -> str:
    lines = [f"```gauge\n{s.name} = ...\n```", f"{block} setting ({s.kind}): {s.doc}"]
    if s.choices:
        lines.append("one of " + ", ".join(f"`{c}`" for c in s.choices))
    if s.default is not None:
        lines.append(f"default: `{s.default}`")
    if s.required:
        lines.append("required")
    return "\n\n".join(lines)


def _noise_doc(kind: str) -> str:
    doc, params = NOISES[kind].doc, NOISES[kind].settings
    args = ", ".join(p.name for p in params)
    lines = [f"```gauge\nnoise {kind}({args})\n```", doc]
    lines += [f"- `{p.name}`: {p.doc}{'' if p.required else ' (optional)'}" for p in params]
    return "\n\n".join(lines[:2]) + ("\n\n" + "\n".join(lines[2:]) if params else "")


def _model_names(model: ir.Model) -> dict[str, str]:
    """Each name of a checked model with a line that says what it is and its shape."""
    names: dict[str, str] = {}
    for d in model.data:
        names[d.name] = f"data {d.name} : {show_shape(d.shape)}"
    for s in model.streams:
        names[s.name] = f"stream {s.name} : {show_shape(s.shape)}  (one sample, fresh each step)"
    for p in model.params:
        kind = p.manifold.kind + ("" if p.shape == () else show_shape(p.shape))
        names[p.name] = f"param {p.name} : {kind}" + (f"\n\n{p.doc}" if p.doc else "")
    for let in model.lets:
        names[let.name] = f"let {let.name} : {show_shape(let.shape)}"
    for pred in model.predictors:
        names[pred.name] = f"predictor {pred.name} : {show_shape(pred.shape)}"
    if model.loss is not None and model.loss.per_sample is not None:
        for n, shape in model.loss.per_sample.binders:
            names.setdefault(n, f"{n} : {show_shape(shape)}  (one sample, in the loss)")
    for s in model.symmetries:
        g = s.group
        group = g.kind + (f"[{', '.join(map(str, g.dims))}]" if g.dims else "")
        origin = f" = {s.template}(...)" if s.template else ""
        line = f"symmetry {s.name}{origin} : {group}  ({g.algebra_dim} generators, g : {show_shape(g.element_shape)})"
        names[s.name] = line + (f"\n\n{s.doc}" if s.doc else "")
    names.setdefault(model.name, f"model {model.name}  ({model.dimension} coordinates)")
    return names


def _group_element_at(model: ir.Model, program: ast.Program | None, line: int) -> str | None:
    if program is None:
        return None
    for item in program.items:
        if isinstance(item, ast.SymmetryDecl) and item.span.line <= line + 1 <= item.span.end_line:
            if item.params is not None:
                return "g : the group element of a parametric symmetry"
            for s in model.symmetries:
                if s.name == item.name:
                    return f"g : {show_shape(s.group.element_shape)}  (the element of {s.group.kind})"
    return None


def hover_text(
    text: str,
    path: str,
    line: int,
    column: int,
    model: ir.Model | ir.Library | None = None,
    program: ast.Program | None = None,
    stale: bool = False,
) -> str | None:
    """Markdown for the hover at 0-based (`line`, code-point `column`), or None."""
    found = word_at(text, line, column)
    if found is None or in_comment_or_string(text.split("\n")[line], found[1]):
        return None
    word, _, end = found
    rest = text.split("\n")[line][end:]
    called = rest.lstrip().startswith("(")
    before = text.split("\n")[line][: found[1]]
    note = "\n\n*(from the last version of this file that checked)*" if stale else ""

    if called and word in FUNCTIONS:
        return _function_doc(FUNCTIONS[word])
    if re.search(r"\bnoise\s+$", before) and word in NOISES:
        return _noise_doc(word)
    if isinstance(model, ir.Model):
        if word == "g":
            g = _group_element_at(model, program, line)
            if g:
                return f"```gauge\n{g}\n```"
        names = _model_names(model)
        if word in names:
            head, _, doc = names[word].partition("\n\n")
            return f"```gauge\n{head}\n```" + (f"\n{doc}" if doc else "") + note
    if called or re.search(r"=\s*$", before):
        for t in available_templates(program, path):
            if t.name == word:
                doc = f"\n\n{t.doc}" if t.doc else ""
                return f"```gauge\n{t.signature}\n```\nfrom `{t.module}`{doc}"
    if word in GROUPS:
        return f"```gauge\n{word}[...]\n```\nLie group: {GROUPS[word].doc}"
    if word in MANIFOLDS:
        return f"```gauge\n{word}[...]\n```\nmanifold: {MANIFOLDS[word].doc}"
    if word in KEYWORD_DOCS:
        return f"**{word}** — {KEYWORD_DOCS[word]}"
    if re.match(r"\s*=", rest) and not re.search(r"[(,]\s*$", before):
        if word in RUN_SETTINGS:
            return _setting_doc(RUN_SETTINGS[word], "run")
        if word in DESIGN_SETTINGS:
            return _setting_doc(DESIGN_SETTINGS[word], "design")
    if word in NOISES:
        return _noise_doc(word)
    if word in FUNCTIONS:
        return _function_doc(FUNCTIONS[word])
    if word in CONSTANTS:
        return f"`{word}` = {CONSTANTS[word]!r}"
    values = _setting_values()
    if word in values and re.search(r"=\s*$", before):
        return f"`{word}`: a value of the " + ", ".join(values[word])
    for t in available_templates(program, path):
        if t.name == word:
            doc = f"\n\n{t.doc}" if t.doc else ""
            return f"```gauge\n{t.signature}\n```\nfrom `{t.module}`{doc}"
    return None


# ---- completion -------------------------------------------------------------------------


def completions(
    text: str,
    path: str,
    line: int,
    column: int,
    model: ir.Model | ir.Library | None = None,
    program: ast.Program | None = None,
) -> list[lsp.CompletionItem]:
    """Completion items at 0-based (`line`, code-point `column`), narrowed by what precedes
    the cursor on its line."""
    lines = text.split("\n")
    before = lines[line][:column] if 0 <= line < len(lines) else ""
    if in_comment_or_string(before, column):
        return []
    K = lsp.CompletionItemKind

    def item(label, kind, detail=None, doc=None, sort="5"):
        return lsp.CompletionItem(
            label=label,
            kind=kind,
            detail=detail,
            documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, doc) if doc else None,
            sort_text=f"{sort}{label}",
        )

    modules = [item(f"std.{m}", K.Module, "stdlib module") for m in stdlib_modules()]
    if re.match(r"^\s*import\s+[\w.]*$", before):
        return modules
    noise = [item(k, K.EnumMember, "noise model", _noise_doc(k), "1") for k in NOISES]
    if re.search(r"\bnoise\s+\w*$", before):
        return noise
    types = [item(k, K.Class, "Lie group", g.doc, "1") for k, g in GROUPS.items()]
    types += [item(k, K.Struct, "manifold", m.doc, "1") for k, m in MANIFOLDS.items()]
    if re.search(r":\s*\w*$", before) and not re.search(r"\[[^\]]*$", before):
        return types

    # What the grammar accepts here (the text up to the word being typed): a keyword only where
    # it may stand, names only where a name may; None (an error earlier in the file): everything.
    offset = sum(len(text_line) + 1 for text_line in lines[:line]) + len(before)
    partial = re.search(r"[A-Za-z_][A-Za-z_0-9]*$", before)
    expected = expected_terminals(text[: offset - (len(partial.group(0)) if partial else 0)])
    keywords = [item(k, K.Keyword, "keyword", KEYWORD_DOCS.get(k), "3") for k in KEYWORD_DOCS
                if expected is None or k.upper() in expected]  # fmt: skip
    if expected is not None and "NAME" not in expected:
        return keywords
    items = keywords + types + noise + modules
    items += [item(f.name, K.Function, f.signature(), _function_doc(f), "2") for f in FUNCTIONS.values()]
    items += [item(c, K.Constant, "constant") for c in CONSTANTS]
    items += [item(s.name, K.Property, "run setting", _setting_doc(s, "run"), "4") for s in RUN_SETTINGS.values()]
    items += [
        item(s.name, K.Property, "design setting", _setting_doc(s, "design"), "4")
        for s in DESIGN_SETTINGS.values()
        if s.name not in RUN_SETTINGS and s.name not in KEYWORD_DOCS
    ]
    values: set[str] = set(DESIGN_OPERATORS)
    for s in list(RUN_SETTINGS.values()) + list(DESIGN_SETTINGS.values()):
        values.update(s.choices)
    items += [item(v, K.Value, "setting value", sort="6") for v in sorted(values - set(NOISES))]
    seen = set()
    for t in available_templates(program, path):
        if t.name not in seen:
            seen.add(t.name)
            items.append(item(t.name, K.Interface, f"{t.signature}  ({t.module})", t.doc or None, "2"))
    if isinstance(model, ir.Model):
        for name, what in _model_names(model).items():
            items.append(item(name, K.Variable, what.partition("\n\n")[0], sort="0"))
    return items


def discovery_hints(model: ir.Model, text: str, encoding: str | None = "utf-16") -> list[lsp.Diagnostic]:
    """An information diagnostic on the first declared symmetry when the declared symmetries span
    less than the algebra `gaugedsl symmetries` discovers (docs/discovery.md): the bias they give
    is incomplete, and the message names the missing declarations. Takes seconds (JAX): the server
    computes it after a save, in a thread, once per version of the program."""
    from .discovery import discover

    if not model.symmetries:
        return []
    found = discover(model, laws=False)
    if found.declared_rank >= found.dimension or not all(d.is_symmetry for d in found.declared):
        return []  # complete, or a declared non-symmetry, which the checks of bias and run report (E901)
    missing = "; ".join(a.declaration() for a in found.missing)
    return [
        lsp.Diagnostic(
            range=span_range(model.symmetries[0].span, text.split("\n"), encoding),
            message=f"{found.verdict()}" + (f"; missing: {missing}" if missing else ""),
            severity=lsp.DiagnosticSeverity.Information,
            source="gaugedsl symmetries",
        )
    ]


# ---- the server -------------------------------------------------------------------------


class GaugeLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("gaugedsl", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.checked: dict[str, Checked] = {}
        self.last_model: dict[str, ir.Model | ir.Library] = {}
        self.hints: dict[str, tuple[str, list[lsp.Diagnostic]]] = {}  # uri: (program hash, discovery hints)
        self._waiting: dict[str, asyncio.Task] = {}  # uri: the debounced check not yet started
        self._locks: dict[str, asyncio.Lock] = {}  # uri: held while its check runs

    @property
    def encoding(self) -> str | None:
        """The position encoding negotiated at `initialize` (None: UTF-16)."""
        return self.workspace.position_codec.encoding

    def path_of(self, uri: str) -> str:
        try:
            path = to_fs_path(uri)
        except Exception:  # noqa: BLE001
            path = None
        return path or f"<{uri}>"

    def refresh(self, uri: str) -> None:
        """Check a document and publish its diagnostics, now; never raises."""
        doc = self.workspace.get_text_document(uri)
        self.publish(uri, self.diagnose(uri, doc.source, doc.version))

    def diagnose(self, uri: str, text: str, version: int | None):
        """The check of one version of a document: (Checked or None, its LSP diagnostics, the
        version). Pure, so that it can run in a worker thread; never raises."""
        try:
            path = self.path_of(uri)
            checked = check(text, path)
            if checked.internal_error:
                log.error("checker crashed on %s:\n%s", uri, checked.internal_error)
            diagnostics = to_lsp(checked, path, text, self.encoding)
            model = checked.model
            if isinstance(model, ir.Model) and self.hints.get(uri, ("", []))[0] == model.source_hash:
                diagnostics += self.hints[uri][1]
            return checked, diagnostics, version
        except Exception:  # noqa: BLE001
            log.exception("checking %s failed", uri)
            crash = lsp.Diagnostic(
                range=lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)),
                message="internal error in the gaugedsl language server (please report it)",
                severity=lsp.DiagnosticSeverity.Error,
                source="gaugedsl",
            )
            return None, [crash], None

    def publish(self, uri: str, outcome) -> None:
        checked, diagnostics, version = outcome
        if checked is not None:
            self.checked[uri] = checked
            if checked.model is not None:
                self.last_model[uri] = checked.model
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    def schedule(self, uri: str) -> None:
        """Debounce: check `uri` once edits pause for DEBOUNCE_S. A newer edit cancels a check
        still waiting; a check already running finishes, but its result is dropped if the
        document has moved on (the latest edit wins), and checks of one document never overlap,
        so a burst of edits costs one or two checks, not one per keystroke."""
        waiting = self._waiting.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        self._waiting[uri] = asyncio.get_running_loop().create_task(self._check_later(uri))

    async def _check_later(self, uri: str) -> None:
        await asyncio.sleep(DEBOUNCE_S)
        lock = self._locks.setdefault(uri, asyncio.Lock())
        async with lock:  # cancelled while waiting here: a newer edit has its own task
            if self._waiting.get(uri) is asyncio.current_task():
                del self._waiting[uri]  # past this point no edit cancels the check: it is running
            try:
                doc = self.workspace.get_text_document(uri)
            except Exception:  # noqa: BLE001 — closed meanwhile
                return
            loop = asyncio.get_running_loop()
            outcome = await asyncio.shield(
                loop.run_in_executor(self.thread_pool, self.diagnose, uri, doc.source, doc.version)
            )
        if uri in self.workspace.text_documents and self.workspace.get_text_document(uri).version == outcome[2]:
            self.publish(uri, outcome)

    def discover(self, uri: str) -> bool:
        """Compute the discovery hints of a saved document's model (run in a worker thread);
        whether there are new ones to publish."""
        checked = self.checked.get(uri)
        model = checked.model if checked else None
        if not isinstance(model, ir.Model) or checked is None or checked.diagnostics:
            return False
        if self.hints.get(uri, ("", []))[0] == model.source_hash:
            return False
        try:
            doc = self.workspace.get_text_document(uri)
            hints = discovery_hints(model, doc.source, self.encoding)
        except Exception:  # noqa: BLE001 — a hint must never take the server down
            log.exception("discovering the symmetries of %s failed", uri)
            return False
        self.hints[uri] = (model.source_hash, hints)
        return bool(hints)

    def context(self, uri: str, position: lsp.Position):
        doc = self.workspace.get_text_document(uri)
        text = doc.source
        lines = text.split("\n")
        line = position.line
        line_text = lines[line] if 0 <= line < len(lines) else ""
        column = code_points(line_text, position.character, self.encoding)
        checked = self.checked.get(uri)
        model = checked.model if checked else None
        stale = False
        if model is None and uri in self.last_model:
            model, stale = self.last_model[uri], True
        program = checked.program if checked else None
        return text, self.path_of(uri), line, column, model, program, stale


def make_server() -> GaugeLanguageServer:
    server = GaugeLanguageServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GaugeLanguageServer, params: lsp.DidOpenTextDocumentParams):
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: GaugeLanguageServer, params: lsp.DidChangeTextDocumentParams):
        ls.schedule(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: GaugeLanguageServer, params: lsp.DidSaveTextDocumentParams):
        for uri in list(ls.checked):
            ls.refresh(uri)
        # the discovery takes seconds: in a worker thread, published back here on the event loop
        uri = params.text_document.uri
        if await asyncio.get_running_loop().run_in_executor(ls.thread_pool, ls.discover, uri):
            ls.refresh(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GaugeLanguageServer, params: lsp.DidCloseTextDocumentParams):
        uri = params.text_document.uri
        ls.checked.pop(uri, None)
        ls.last_model.pop(uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: GaugeLanguageServer, params: lsp.HoverParams):
        try:
            text, path, line, column, model, program, stale = ls.context(params.text_document.uri, params.position)
            found = word_at(text, line, column)
            value = hover_text(text, path, line, column, model, program, stale)
        except Exception:  # noqa: BLE001
            log.exception("hover failed")
            return None
        if value is None or found is None:
            return None
        _, start, end = found
        line_text = text.split("\n")[line]
        enc = ls.encoding
        return lsp.Hover(
            contents=lsp.MarkupContent(lsp.MarkupKind.Markdown, value),
            range=lsp.Range(
                lsp.Position(line, client_units(line_text, start, enc)),
                lsp.Position(line, client_units(line_text, end, enc)),
            ),
        )

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", ":"]))
    def completion(ls: GaugeLanguageServer, params: lsp.CompletionParams):
        try:
            text, path, line, column, model, program, _ = ls.context(params.text_document.uri, params.position)
            items = completions(text, path, line, column, model, program)
        except Exception:  # noqa: BLE001
            log.exception("completion failed")
            items = []
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def go_to_definition(ls: GaugeLanguageServer, params: lsp.DefinitionParams):
        uri = params.text_document.uri
        try:
            text, path, line, column, _, program, _ = ls.context(uri, params.position)
            if program is None:  # not checked yet: parse it now
                program = parse(text, path)
            found = definition(text, path, line, column, program, ls.encoding)
        except GaugeError:
            return None
        except Exception:  # noqa: BLE001
            log.exception("definition failed")
            return None
        if found is None:
            return None
        file, where = found
        return lsp.Location(uri=uri if file == path else from_fs_path(file) or file, range=where)

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix])
    )
    def quick_fixes(ls: GaugeLanguageServer, params: lsp.CodeActionParams):
        uri = params.text_document.uri
        try:
            text = ls.workspace.get_text_document(uri).source
            want = params.range

            def overlaps(d: lsp.Diagnostic) -> bool:
                start, end = d.range.start, d.range.end
                return (start.line, start.character) <= (want.end.line, want.end.character) and (
                    want.start.line, want.start.character) <= (end.line, end.character)  # fmt: skip

            return code_actions(uri, text, [d for d in params.context.diagnostics if overlaps(d)], ls.encoding)
        except Exception:  # noqa: BLE001
            log.exception("code actions failed")
            return None

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: GaugeLanguageServer, params: lsp.DocumentSymbolParams):
        uri = params.text_document.uri
        try:
            text = ls.workspace.get_text_document(uri).source
            program = parse(text, ls.path_of(uri))
            return document_symbols(program, text, ls.encoding)
        except GaugeError:
            return []  # a file that does not parse has no outline; its diagnostics say why
        except Exception:  # noqa: BLE001
            log.exception("document symbols failed")
            return None

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: GaugeLanguageServer, params: lsp.DocumentFormattingParams):
        from .format import format_text

        uri = params.text_document.uri
        try:
            doc = ls.workspace.get_text_document(uri)
            text = doc.source
            formatted = format_text(text, ls.path_of(uri))
        except GaugeError:
            return None  # the diagnostics already say why
        except Exception:  # noqa: BLE001
            log.exception("formatting failed")
            return None
        if formatted == text:
            return []
        lines = text.split("\n")
        end = lsp.Position(len(lines) - 1, client_units(lines[-1], len(lines[-1]), ls.encoding))
        return [lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), end), new_text=formatted)]

    return server


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="gaugedsl lsp: %(levelname)s %(message)s")
    make_server().start_io()
