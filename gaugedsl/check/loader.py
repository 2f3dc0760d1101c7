"""Reading files and resolving imports.

`import std.x` reads `stdlib/x.gauge`; `import a.b` reads `a/b.gauge` in the importing file's
folder. Nothing else can be reached: names are plain identifiers (no `..`), and a path that
resolves (through a symbolic link) outside its root is refused. Imports bring a library's
parametric symmetries into scope. Cycles are reported.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import ir
from .._resources import stdlib_dir
from ..diagnostics import Diagnostic, GaugeError, SourceCache, Span, error
from ..syntax import ast, normalize, parse
from ..syntax.parser import MAX_PROGRAM_BYTES, too_long
from .checker import FileChecker, Template, source_hash

MAX_IMPORT_DEPTH = 8  # libraries import libraries a level or two deep; the chain is checked by recursion


class Loader:
    """One checking session: the files read so far, their text (for diagnostics), the
    libraries already checked."""

    def __init__(self) -> None:
        self.sources = SourceCache()
        self._libraries: dict[Path, tuple[dict[str, Template], list[str]]] = {}
        self._stack: list[Path] = []
        self._shown: dict[Path, str] = {}  # resolved path → the path diagnostics call it by

    def read(self, path: Path, span: Span | None = None, shown: str | None = None) -> str:
        """The UTF-8 text of `path`; diagnostics name it `shown` (default: `path` as given)."""
        shown = str(path) if shown is None else shown
        try:
            if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO or device never ends
                raise GaugeError(
                    [error("E100", span, f"cannot read {shown}: it is not a regular file", "name a .gauge file")]
                )
            if path.is_file() and path.stat().st_size > MAX_PROGRAM_BYTES:  # refused before it is read
                raise GaugeError([too_long(shown, path.stat().st_size, "bytes")])
            data = path.read_bytes()
        except OSError as exc:
            if path.is_dir():
                reason, hint = "it is a folder", "import a .gauge file, not a folder"
            else:
                reason, hint = (exc.strerror or str(exc)).lower(), "check that the file exists and can be read"
            raise GaugeError([error("E100", span, f"cannot read {shown}: {reason}", hint)]) from None
        try:
            text = normalize(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            col = _column(data, exc.start)
            self.sources.add(shown, data.decode("utf-8", errors="replace"))
            raise GaugeError(
                [
                    error(
                        "E008",
                        Span(shown, line, col, line, col + 1),
                        f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be read",
                        "save the file as UTF-8",
                    )
                ]
            ) from None
        if "\x00" in text:
            pos = text.index("\x00")
            line = text.count("\n", 0, pos) + 1
            col = pos - (text.rfind("\n", 0, pos) + 1) + 1
            self.sources.add(shown, text)
            raise GaugeError(
                [
                    error(
                        "E008",
                        Span(shown, line, col, line, col + 1),
                        "the file contains a NUL byte; it is not a text file",
                        "check that this is the right file",
                    )
                ]
            )
        self.sources.add(shown, text)
        return text

    def check_file(self, path: str | Path) -> ir.Model | ir.Library:
        path = Path(path)
        return self.check_text(self.read(path), str(path))

    def check_text(self, text: str, path: str = "<string>") -> ir.Model | ir.Library:
        text = normalize(text)
        self.sources.add(path, text)
        program = parse(text, path)
        virtual = path.startswith("<")
        folder, shown_folder = import_folders(path)
        self._stack.append(Path(path) if virtual else Path(path).resolve())
        self._shown[self._stack[-1]] = path
        try:
            templates, texts, import_errors = self._imports(program, folder, shown_folder)
        finally:
            self._stack.pop()
        return _check(FileChecker(program, templates, source_hash([text, *texts]), bool(import_errors)), import_errors)

    def _imports(
        self, program: ast.Program, folder: Path, shown_folder: str
    ) -> tuple[dict[str, Template], list[str], list[Diagnostic]]:
        """The parametric symmetries the imports bring, the imported texts, and the problems
        with the imports (the file is checked all the same, so that its own errors show too)."""
        templates: dict[str, Template] = {}
        texts: list[str] = []
        diagnostics: list[Diagnostic] = []
        seen: dict[str, Span] = {}
        for item in program.items:
            if not isinstance(item, ast.Import):
                continue
            if item.dotted in seen:
                diagnostics.append(
                    error(
                        "E105",
                        item.span,
                        f"'{item.dotted}' is already imported (line {seen[item.dotted].line})",
                        "remove this line",
                    )
                )
                continue
            seen[item.dotted] = item.span
            try:
                lib_templates, lib_texts = self._library(item, folder, shown_folder)
            except GaugeError as exc:
                diagnostics.extend(exc.diagnostics)
                continue
            texts.extend(lib_texts)
            for name, t in lib_templates.items():
                if name in templates and templates[name].origin != t.origin:
                    diagnostics.append(
                        error(
                            "E105",
                            item.span,
                            f"'{name}' is defined both in {templates[name].origin} and in {t.origin}",
                            "import only one of them",
                        )
                    )
                    continue
                templates[name] = t
        return templates, texts, diagnostics

    def resolve_import(self, item: ast.Import, folder: Path, shown_folder: str = "") -> tuple[Path, str]:
        """The file an import names, resolved, and the path diagnostics call it by."""
        std = item.path[0] == "std"
        if std:
            if len(item.path) == 1:
                raise GaugeError(
                    [
                        error(
                            "E101",
                            item.span,
                            "import which part of the stdlib?",
                            "name a module, e.g. import std.rescaling",
                        )
                    ]
                )
            root = stdlib_dir().resolve()
            parts = item.path[1:]
            shown = str(root.joinpath(*parts[:-1], parts[-1] + ".gauge"))
        else:
            root = folder
            parts = item.path
            shown = os.path.join(shown_folder, *parts[:-1], parts[-1] + ".gauge")
        path = root.joinpath(*parts[:-1], parts[-1] + ".gauge")
        if path.is_dir():
            return path, shown  # `read` reports it
        if path.exists() and not path.is_file():  # a FIFO or device: reading it could block for ever
            raise GaugeError(
                [error("E100", item.span, f"cannot read {shown}: it is not a regular file", "import a .gauge file")]
            )
        if not path.is_file():
            if std:
                available = sorted(p.stem for p in root.glob("*.gauge"))
                message = f"the stdlib has no module '{'.'.join(parts)}'"
                hint = "the stdlib has: " + ", ".join(f"std.{a}" for a in available)
            else:
                message = f"cannot find '{item.dotted}': there is no file {shown}"
                hint = "`import a.b` reads a/b.gauge in the importing file's folder; `import std.x` reads the stdlib"
            raise GaugeError([error("E101", item.span, message, hint)])
        resolved = path.resolve()
        if root not in resolved.parents:
            where = "the stdlib" if std else "the importing file's folder"
            raise GaugeError(
                [
                    error(
                        "E103",
                        item.span,
                        f"'{item.dotted}' leads outside {where}: {shown} is a link to {os.path.relpath(resolved, root)}",
                        "imports may only read the stdlib and files in the importing file's own folder; copy the file here",
                    )
                ]
            )
        return resolved, shown

    def _library(self, item: ast.Import, folder: Path, shown_folder: str) -> tuple[dict[str, Template], list[str]]:
        path, shown = self.resolve_import(item, folder, shown_folder)
        if path in self._stack:
            chain = " → ".join(self._shown.get(p, p.name) for p in self._stack[self._stack.index(path) :] + [path])
            raise GaugeError(
                [
                    error(
                        "E102",
                        item.span,
                        f"import cycle: {chain}",
                        "break the cycle; move the shared symmetries into a file both import",
                    )
                ]
            )
        if path in self._libraries:
            return self._libraries[path]
        if len(self._stack) > MAX_IMPORT_DEPTH:
            raise GaugeError(
                [
                    error(
                        "E106",
                        item.span,
                        f"imports nest more than {MAX_IMPORT_DEPTH} files deep ({self._shown.get(self._stack[0], '')} → … → {shown})",
                        "import the libraries you need directly from the model instead of through a chain",
                    )
                ]
            )
        text = self.read(path, item.span, shown)
        self._stack.append(path)
        self._shown.setdefault(path, shown)
        try:
            result = self.check_text_library(text, path, item, shown)
        finally:
            self._stack.pop()
        self._libraries[path] = result
        return result

    def check_text_library(self, text: str, path: Path, item: ast.Import, shown: str | None = None):
        shown = str(path) if shown is None else shown
        program = parse(text, shown)
        templates, texts, import_errors = self._imports(program, path.parent, os.path.dirname(shown))
        checked = _check(FileChecker(program, templates, source_hash([text]), bool(import_errors)), import_errors)
        if isinstance(checked, ir.Model):
            raise GaugeError(
                [
                    error(
                        "E104",
                        item.span,
                        f"'{item.dotted}' is a model, not a library",
                        "an imported file may hold only imports and parametric symmetries; move the symmetries you need into a file of their own",
                    )
                ]
            )
        exported = {}
        for decl in program.items:
            if isinstance(decl, ast.SymmetryDecl) and decl.params is not None:
                exported[decl.name] = Template(decl, shown)
        return exported, [text, *texts]


def import_folders(path: str) -> tuple[Path, str]:
    """Where the imports of the file `path` are looked up (`<...>` names no file: the working
    folder), and the folder as diagnostics write it."""
    if path.startswith("<"):
        return Path.cwd(), ""
    return Path(path).resolve().parent, os.path.dirname(path)


def _check(checker: FileChecker, import_errors: list[Diagnostic]) -> ir.Model | ir.Library:
    """Check a file; its import problems and its own errors are reported together."""
    try:
        result = checker.check()
    except GaugeError as exc:
        raise GaugeError([*import_errors, *exc.diagnostics]) from None
    if import_errors:
        raise GaugeError(import_errors)
    return result


def _column(data: bytes, pos: int) -> int:
    """The 1-based column, in characters, of byte `pos` of `data`."""
    start = data.rfind(b"\n", 0, pos) + 1
    return len(data[start:pos].decode("utf-8", errors="replace")) + 1


def check_file(path: str | Path) -> ir.Model | ir.Library:
    """Parse and check a `.gauge` file; raises `GaugeError` with every diagnostic found."""
    return Loader().check_file(path)


def check_text(text: str, path: str = "<string>") -> ir.Model | ir.Library:
    return Loader().check_text(text, path)
