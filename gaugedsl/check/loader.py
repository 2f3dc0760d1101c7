"""Reading files and resolving imports.

`import std.x` reads `stdlib/x.gauge`; `import a.b` reads `a/b.gauge` in the importing file's
folder. Nothing else can be reached: names are plain identifiers (no `..`), and a path that
resolves (through a symbolic link) outside its root is refused. Imports bring a library's
parametric symmetries into scope. Cycles are reported.
"""

from __future__ import annotations

from pathlib import Path

from .. import ir
from .._resources import stdlib_dir
from ..diagnostics import Diagnostic, GaugeError, SourceCache, Span, error
from ..syntax import ast, parse
from .checker import FileChecker, Template, source_hash


class Loader:
    """One checking session: the files read so far, their text (for diagnostics), the
    libraries already checked."""

    def __init__(self) -> None:
        self.sources = SourceCache()
        self._libraries: dict[Path, tuple[dict[str, Template], list[str]]] = {}
        self._stack: list[Path] = []

    def read(self, path: Path, span: Span | None = None) -> str:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise GaugeError([error("E100", span, f"cannot read {path}: {exc.strerror or exc}", "check the path")])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise GaugeError([error("E008", Span(str(path), line, col, line, col + 1), f"{path.name} is not UTF-8 text (byte 0x{data[exc.start]:02x})", "save the file as UTF-8")])
        if "\x00" in text:
            pos = text.index("\x00")
            line = text.count("\n", 0, pos) + 1
            col = pos - (text.rfind("\n", 0, pos) + 1) + 1
            raise GaugeError([error("E008", Span(str(path), line, col, line, col + 1), f"{path.name} contains a NUL byte; it is not a text file", "check that this is the right file")])
        self.sources.add(str(path), text)
        return text

    def check_file(self, path: str | Path) -> ir.Model | ir.Library:
        path = Path(path)
        return self.check_text(self.read(path), str(path))

    def check_text(self, text: str, path: str = "<string>") -> ir.Model | ir.Library:
        self.sources.add(path, text)
        program = parse(text, path)
        folder = Path(path).resolve().parent if not path.startswith("<") else Path.cwd()
        self._stack.append(Path(path).resolve() if not path.startswith("<") else Path(path))
        try:
            templates, texts = self._imports(program, folder)
        finally:
            self._stack.pop()
        return FileChecker(program, templates, source_hash([text, *texts])).check()

    def _imports(self, program: ast.Program, folder: Path) -> tuple[dict[str, Template], list[str]]:
        templates: dict[str, Template] = {}
        texts: list[str] = []
        diagnostics: list[Diagnostic] = []
        seen: dict[str, Span] = {}
        for item in program.items:
            if not isinstance(item, ast.Import):
                continue
            if item.dotted in seen:
                diagnostics.append(error("E105", item.span, f"'{item.dotted}' is already imported (line {seen[item.dotted].line})", "remove this line"))
                continue
            seen[item.dotted] = item.span
            try:
                lib_templates, lib_texts = self._library(item, folder)
            except GaugeError as exc:
                diagnostics.extend(exc.diagnostics)
                continue
            texts.extend(lib_texts)
            for name, t in lib_templates.items():
                if name in templates and templates[name].origin != t.origin:
                    diagnostics.append(error("E105", item.span, f"'{name}' is defined both in {templates[name].origin} and in {t.origin}", "import only one of them"))
                    continue
                templates[name] = t
        if diagnostics:
            raise GaugeError(diagnostics)
        return templates, texts

    def resolve_import(self, item: ast.Import, folder: Path) -> Path:
        if item.path[0] == "std":
            if len(item.path) == 1:
                raise GaugeError([error("E101", item.span, "import which part of the stdlib?", "e.g. import std.rescaling")])
            root = stdlib_dir().resolve()
            parts = item.path[1:]
        else:
            root = folder
            parts = item.path
        path = root.joinpath(*parts[:-1], parts[-1] + ".gauge")
        if not path.is_file():
            if item.path[0] == "std":
                available = sorted(p.stem for p in root.glob("*.gauge"))
                hint = "the stdlib has: " + ", ".join(f"std.{a}" for a in available)
            else:
                hint = f"imports other than std.* are files beside this one: {path.name} in {folder}"
            raise GaugeError([error("E101", item.span, f"cannot find '{item.dotted}' ({path})", hint)])
        resolved = path.resolve()
        if root not in resolved.parents:
            raise GaugeError([error("E103", item.span, f"'{item.dotted}' resolves outside {root} (to {resolved})", "imports may only read the stdlib and the importing file's own folder")])
        return resolved

    def _library(self, item: ast.Import, folder: Path) -> tuple[dict[str, Template], list[str]]:
        path = self.resolve_import(item, folder)
        if path in self._stack:
            chain = " → ".join(p.name for p in self._stack[self._stack.index(path):] + [path])
            raise GaugeError([error("E102", item.span, f"import cycle: {chain}", "break the cycle; move the shared symmetries into a file both import")])
        if path in self._libraries:
            return self._libraries[path]
        text = self.read(path, item.span)
        self._stack.append(path)
        try:
            result = self.check_text_library(text, path, item)
        finally:
            self._stack.pop()
        self._libraries[path] = result
        return result

    def check_text_library(self, text: str, path: Path, item: ast.Import):
        program = parse(text, str(path))
        templates, texts = self._imports(program, path.parent)
        checked = FileChecker(program, templates, source_hash([text])).check()
        if isinstance(checked, ir.Model):
            raise GaugeError([error("E104", item.span, f"'{item.dotted}' is a model, not a library", "an imported file may hold only imports and parametric symmetries")])
        exported = {}
        for decl in program.items:
            if isinstance(decl, ast.SymmetryDecl) and decl.params is not None:
                exported[decl.name] = Template(decl, str(path))
        return exported, [text, *texts]


def check_file(path: str | Path) -> ir.Model | ir.Library:
    """Parse and check a `.gauge` file; raises `GaugeError` with every diagnostic found."""
    return Loader().check_file(path)


def check_text(text: str, path: str = "<string>") -> ir.Model | ir.Library:
    return Loader().check_text(text, path)
