"""The language server: driven over stdio as an editor would, and its logic in-process."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gaugedsl import lsp as server
from gaugedsl.diagnostics import Diagnostic, Span

ROOT = Path(__file__).resolve().parent.parent

TWO_ERRORS = """\
model two_errors
import std.rescaling

param u : R[3] = normal(0, 0.1)
param v : R[3] = normal(0, 0.1)
predictor w = u * vv
let z = frobnicate(u)
loss = sum(w^2)
symmetry balance = rescaling(u, v)
noise projected(T = 1e-3)
"""

CHECKS = """\
model fine
import std.rescaling

data {
  X : R[10, 3] = normal(0, 1, seed = 0)
  y : R[10]    = X @ [1, 0, -1]
}

param u : R[3] = normal(0, 0.1)
param v : R[3] = normal(0, 0.1)
predictor w = u * v
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry balance = rescaling(u, v)
noise projected(T = 1e-3)
"""


class Client:
    """A minimal LSP client: JSON-RPC with Content-Length framing over a child's stdio."""

    def __init__(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gaugedsl", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        stream = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send(self, message: dict):
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.proc.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict | None = None):
        self.send({"method": method, "params": params if params is not None else {}})

    def request(self, method: str, params: dict | None) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        reply = self.wait(lambda m: m.get("id") == self.next_id and "method" not in m)
        assert "error" not in reply, reply
        return reply["result"]

    # a liveness bound, not a speed test: a save starts the symmetry discovery (JAX compiles), which
    # took over 30 s on the 2-core machine loaded by other jobs
    def wait(self, accept, timeout: float = 120.0) -> dict:
        while True:
            try:
                message = self.messages.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("the server did not answer in time") from None
            assert message is not None, "the server closed its output: " + self._stderr()
            if accept(message):
                return message

    def diagnostics(self, uri: str) -> list[dict]:
        message = self.wait(
            lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
        )
        return message["params"]["diagnostics"]

    def _stderr(self) -> str:
        self.proc.kill()
        return self.proc.stderr.read().decode(errors="replace")


@pytest.fixture(scope="module")
def client():
    c = Client()
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
        c.proc.wait()


def _open(client: Client, path: Path, text: str) -> str:
    uri = path.as_uri()
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "gauge", "version": 1, "text": text}},
    )
    return uri


def test_server_over_stdio(client, tmp_path):
    """One session, in the order an editor speaks: initialize, open a file with two errors,
    hover, complete, fix the file, format, shut down and exit."""
    result = client.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}})
    caps = result["capabilities"]
    assert caps["hoverProvider"] and caps["completionProvider"] and caps["documentFormattingProvider"]
    client.notify("initialized")

    # Exactly the checker's two diagnostics, at their 0-based positions.
    uri = _open(client, tmp_path / "two.gauge", TWO_ERRORS)
    diagnostics = sorted(client.diagnostics(uri), key=lambda d: d["range"]["start"]["line"])
    assert [d["code"] for d in diagnostics] == ["E201", "E306"]
    assert diagnostics[0]["range"] == {"start": {"line": 5, "character": 18}, "end": {"line": 5, "character": 20}}
    assert diagnostics[1]["range"] == {"start": {"line": 6, "character": 8}, "end": {"line": 6, "character": 18}}
    assert "unknown name 'vv'" in diagnostics[0]["message"]
    assert all(d["severity"] == 1 and d["source"] == "gaugedsl" for d in diagnostics)

    # The hint "did you mean 'v'?" becomes a quick fix that replaces the misspelled name.
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": diagnostics[0]["range"], "context": {"diagnostics": diagnostics}},
    )
    assert [a["title"] for a in actions] == ["Change 'vv' to 'v'"]
    (edit,) = actions[0]["edit"]["changes"][uri]
    assert edit == {"range": diagnostics[0]["range"], "newText": "v"}

    # Hover on a function name: its signature and doc from the function table.
    hover = client.request(
        "textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 19}}
    )
    assert "normal(mean=0.0, std=1.0, shape=none, seed=none)" in hover["contents"]["value"]
    assert hover["range"] == {"start": {"line": 3, "character": 17}, "end": {"line": 3, "character": 23}}

    # Hover on a stdlib symmetry: its signature and its `##` doc.
    hover = client.request(
        "textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 8, "character": 22}}
    )
    assert "symmetry rescaling(u : R[n], v : R[n]) : Scale[n]" in hover["contents"]["value"]
    assert "std.rescaling" in hover["contents"]["value"]

    # Completion offers what the grammar accepts at the cursor: at the start of a statement the
    # statement keywords alone; inside an expression functions, names, groups, manifolds, noise
    # models, settings and the stdlib's templates, and no keyword.
    result = client.request(
        "textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 10, "character": 0}}
    )
    labels = {item["label"] for item in result["items"]}
    assert {"param", "symmetry", "noise", "run", "data"} <= labels and "normal" not in labels
    result = client.request(
        "textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 14}}
    )
    labels = {item["label"] for item in result["items"]}
    assert {"Scale", "GL", "Sphere", "normal", "logdet", "projected", "dynamics", "steps", "rescaling"} <= labels
    assert not labels & {"param", "symmetry", "run"}
    result = client.request(
        "textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 9, "character": 7}}
    )
    assert {item["label"] for item in result["items"]} == {"isotropic", "projected", "sgd", "label"}

    # Fixing the file clears the diagnostics; hover then shows inferred shapes from the IR.
    client.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": CHECKS}],
        },
    )
    assert client.diagnostics(uri) == []
    hover = client.request(
        "textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 10, "character": 10}}
    )
    assert "predictor w : [3]" in hover["contents"]["value"]
    hover = client.request(
        "textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 11, "character": 11}}
    )
    assert "x : [3]" in hover["contents"]["value"]

    # The outline: the document's declarations by name, at their lines.
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    outline = {sym["name"]: sym for sym in symbols}
    assert {"u", "v", "w", "loss"} <= set(outline)
    assert outline["w"]["selectionRange"]["start"]["line"] == 10

    # Go to definition: `w` in the loss goes to the predictor.
    loc = client.request(
        "textDocument/definition", {"textDocument": {"uri": uri}, "position": {"line": 11, "character": 39}}
    )
    assert loc["uri"] == uri and loc["range"]["start"] == {"line": 10, "character": 10}

    # Formatting replaces the document by its canonical layout.
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": "model  m\nparam u:R=1\n"}]},
    )
    client.diagnostics(uri)
    edits = client.request(
        "textDocument/formatting",
        {"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": True}},
    )
    assert [e["newText"] for e in edits] == ["model m\nparam u : R = 1\n"]

    assert client.request("shutdown", None) is None
    client.notify("exit")
    assert client.proc.wait(timeout=30) == 0


# ---- in-process -------------------------------------------------------------------------


def test_definition_finds_names_imports_and_stdlib_templates(tmp_path):
    from gaugedsl.syntax import parse

    path = str(tmp_path / "fine.gauge")
    lines = CHECKS.split("\n")
    program = parse(CHECKS, path)

    def where(line: int, word: str, nth: int = 0):
        column = [i for i in range(len(lines[line])) if lines[line].startswith(word, i)][nth]
        found = server.definition(CHECKS, path, line, column + 1, program)
        return None if found is None else (Path(found[0]).name, found[1].start.line, found[1].start.character)

    loss = next(i for i, text in enumerate(lines) if text.startswith("loss"))
    assert where(loss, "w") == ("fine.gauge", 10, 10)  # the predictor
    assert where(loss, "X") == ("fine.gauge", 4, 2)  # the data
    assert where(loss, "x", nth=1) == ("fine.gauge", loss, 10)  # the binder of `per (x, t)`
    symmetry = next(i for i, text in enumerate(lines) if text.startswith("symmetry"))
    file, line, _ = where(symmetry, "rescaling")  # a stdlib template, at its declaration
    assert file == "rescaling.gauge"
    stdlib = (Path(server.stdlib_dir()) / "rescaling.gauge").read_text(encoding="utf-8").split("\n")
    assert "symmetry rescaling(" in stdlib[line]
    assert where(1, "std")[0] == "rescaling.gauge"  # the import line goes to the file
    assert where(loss, "loss") is None  # a keyword is declared nowhere


def test_a_quick_fix_only_replaces_one_identifier():
    from lsprotocol import types as lsp

    text = "model m\nparam u : R = 1\nloss = (uu + 1)^2\n"

    def diagnostic(line, start, end, message):
        return lsp.Diagnostic(range=lsp.Range(lsp.Position(line, start), lsp.Position(line, end)), message=message)

    hinted = diagnostic(2, 8, 10, "unknown name 'uu'\nhint: did you mean 'u'?")
    too_wide = diagnostic(2, 7, 11, "unknown name 'uu'\nhint: did you mean 'u'?")  # "(uu " is not one name
    no_hint = diagnostic(2, 8, 10, "unknown name 'uu'\nhint: declare it")
    actions = server.code_actions("file:///m.gauge", text, [hinted, too_wide, no_hint])
    assert [a.title for a in actions] == ["Change 'uu' to 'u'"]
    assert actions[0].kind == lsp.CodeActionKind.QuickFix and actions[0].diagnostics == [hinted]


def test_document_symbols_outline_the_quick_start():
    from lsprotocol import types as lsp

    from gaugedsl.syntax import parse

    path = Path(__file__).parent.parent / "examples" / "diagonal_net.gauge"
    text = path.read_text(encoding="utf-8")
    symbols = server.document_symbols(parse(text, str(path)), text)
    by_name = {s.name: s for s in symbols}
    assert {"diagonal_net", "data", "u", "v", "w", "loss", "balance", "noise projected", "run"} <= set(by_name)
    assert [c.name for c in by_name["data"].children] == ["X", "w_star", "y"]
    assert by_name["u"].kind == lsp.SymbolKind.Variable and by_name["u"].detail == "R[20]"
    assert by_name["balance"].detail == "symmetry" and by_name["w"].detail == "predictor"
    run = {c.name: c.detail for c in by_name["run"].children}
    assert run["particles"] == "256" and run["dt"] == "2.5e-3"
    # the selection is the name; the range the whole declaration
    lines = text.split("\n")
    u = by_name["u"]
    assert lines[u.selection_range.start.line][u.selection_range.start.character :].startswith("u ")
    assert lines[u.range.start.line].startswith("param u")


def test_a_crash_in_the_checker_becomes_a_diagnostic(monkeypatch):
    def crash(self, text, path):
        raise ZeroDivisionError("checker bug")

    monkeypatch.setattr(server.Loader, "check_text", crash)
    checked = server.check("model m\nparam u : R = 1\n", "/tmp/m.gauge")
    assert checked.internal_error and "ZeroDivisionError" in checked.internal_error
    (d,) = server.to_lsp(checked, "/tmp/m.gauge", "model m\n")
    assert d.code == "internal" and "checker bug" in d.message


def test_positions_count_utf16_code_units():
    # 𝒳 lies outside the Basic Multilingual Plane: one code point, two UTF-16 units.
    line = 'let a = "𝒳" + b'
    column = line.index("b")
    assert server.client_units(line, column) == column + 1
    assert server.client_units(line, column, "utf-32") == column
    assert server.client_units(line, column, "utf-8") == column + 3
    assert server.code_points(line, column + 1) == column
    span = Span("f", 1, column + 1, 1, column + 2)
    r = server.span_range(span, [line])
    assert (r.start.line, r.start.character, r.end.character) == (0, column + 1, column + 2)


def test_diagnostics_in_an_imported_file_point_at_the_import():
    text = "model m\nimport lib\nparam u : R = 1\n"
    program = server.parse(text, "/p/m.gauge")
    inside = Diagnostic("error", "E201", Span("/p/lib.gauge", 3, 5, 3, 7), "unknown name 'q'")
    checked = server.Checked([inside], program=program)
    (d,) = server.to_lsp(checked, "/p/m.gauge", text)
    assert (d.range.start.line, d.range.start.character) == (1, 0)
    assert d.message.startswith("in /p/lib.gauge:3:5:")
    assert d.related_information[0].location.range.start.line == 2


def test_hover_says_nothing_inside_comments():
    text = "model m  # normal(0, 1)\nparam u : R = normal(0, 1)\n"
    assert server.hover_text(text, "<t>", 0, text.index("normal") + 1) is None
    assert "Gaussian" in server.hover_text(text, "<t>", 1, 16)


def test_completion_narrows_to_what_fits_before_the_cursor():
    labels = lambda text: {i.label for i in server.completions(text, "<t>", 0, len(text))}  # noqa: E731
    assert labels("import st") == {f"std.{m}" for m in server.stdlib_modules()}
    assert labels("param u : ") == {"R", "Positive", "Sphere", "Stiefel", "Scale", "Translate", "GL", "O", "SO", "Diag"}
    assert "normal" in labels("param u : R[3] = ") and "param" in labels("")
    assert labels("let a = 1  # a comment") == set()


def test_hover_on_the_group_element_shows_its_shape():
    text = CHECKS + "symmetry turn : Scale[3] {\n  u -> g * u\n  v -> v / g\n}\n"
    checked = server.check(text, str(ROOT / "m.gauge"))
    assert checked.model is not None, checked.diagnostics
    line = text.split("\n").index("  u -> g * u")
    hover = server.hover_text(text, "<t>", line, 7, checked.model, checked.program)
    assert "g : [3]" in hover and "Scale" in hover


# ---- positions with non-ASCII text, words, imports --------------------------------------

# ∇ is one UTF-16 unit and three UTF-8 bytes; 😀 is two UTF-16 units and four UTF-8 bytes.
NON_ASCII = 'model m\nparam u : R[3] = normal(0, 0.1)\nlet z = "∇😀" + sum(vv)  # ∇ 😀\nloss = sum(u^2)\n'
NON_ASCII_LINE = NON_ASCII.split("\n")[2]


@pytest.mark.parametrize("encoding, extra", [("utf-32", 0), ("utf-16", 1), ("utf-8", 5)])
def test_diagnostic_columns_after_non_ascii_text(encoding, extra):
    checked = server.check(NON_ASCII, "/tmp/m.gauge")
    (unknown,) = [d for d in server.to_lsp(checked, "/tmp/m.gauge", NON_ASCII, encoding) if d.code == "E201"]
    column = NON_ASCII_LINE.index("vv")
    assert (unknown.range.start.line, unknown.range.start.character) == (2, column + extra)
    assert unknown.range.end.character == column + 2 + extra
    assert server.code_points(NON_ASCII_LINE, column + extra, encoding) == column


def test_hover_after_non_ascii_text():
    column = NON_ASCII_LINE.index("sum")
    assert server.word_at(NON_ASCII, 2, column + 1) == ("sum", column, column + 3)
    assert "sum of the entries" in server.hover_text(NON_ASCII, "/tmp/m.gauge", 2, column + 1)
    assert server.hover_text(NON_ASCII, "/tmp/m.gauge", 2, len(NON_ASCII_LINE) - 1) is None  # in the comment


def test_words_are_identifiers_as_the_lexer_reads_them():
    text = "let a = 3x1 + ab_2*c"
    assert server.word_at(text, 0, text.index("ab_2")) == ("ab_2", 8 + 6, 8 + 10)
    assert server.word_at(text, 0, text.index("*")) == ("ab_2", 14, 18)  # just after a word
    assert server.word_at(text, 0, text.index("3")) is None  # a number is no word
    assert server.word_at(text, 0, text.index("x1")) == ("x1", 9, 11)
    assert server.word_at(text, 0, text.index("=") + 1) is None
    assert server.word_at(text, 5, 0) is None and server.word_at(text, 0, 99) is None


def test_imports_resolve_as_the_checker_resolves_them(tmp_path):
    for folder, name in (("a", "left"), ("b", "right")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "lib.gauge").write_text(
            f"## {name} doc\nsymmetry {name}(u : R[n], v : R[n]) : Scale[n] {{\n  u -> g * u\n  v -> v / g\n}}\n"
        )
    path = str(tmp_path / "m.gauge")
    text = "model m\nimport a.lib\nimport b.lib\nparam u : R = 1\n"
    program = server.parse(text, path)
    modules = {t.name: t.module for t in server.available_templates(program, path)}
    assert modules["left"] == "a.lib" and modules["right"] == "b.lib"
    # Both imports end in `lib`: a diagnostic inside b/lib.gauge belongs on `import b.lib`.
    inside = Diagnostic("error", "E201", Span(str(tmp_path / "b" / "lib.gauge"), 3, 3, 3, 4), "boom")
    (d,) = server.to_lsp(server.Checked([inside], program=program), path, text)
    assert d.range.start.line == 2


def test_server_negotiates_utf8_positions(tmp_path):
    c = Client()
    try:
        result = c.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": tmp_path.as_uri(),
                "capabilities": {"general": {"positionEncodings": ["utf-8"]}},
            },
        )
        assert result["capabilities"]["positionEncoding"] == "utf-8"
        c.notify("initialized")
        uri = _open(c, tmp_path / "m.gauge", NON_ASCII)
        (unknown,) = [d for d in c.diagnostics(uri) if d["code"] == "E201"]
        column = NON_ASCII_LINE.index("vv") + 5
        assert unknown["range"] == {
            "start": {"line": 2, "character": column},
            "end": {"line": 2, "character": column + 2},
        }
        start = NON_ASCII_LINE.index("sum") + 5
        hover = c.request(
            "textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 2, "character": start + 1}}
        )
        assert "sum of the entries" in hover["contents"]["value"]
        assert hover["range"] == {"start": {"line": 2, "character": start}, "end": {"line": 2, "character": start + 3}}
    finally:
        c.proc.kill()
        c.proc.wait()


SUBALGEBRA = """model partial
import std.factorization
param U : R[4, 2] = normal(0, 1)
param V : R[3, 2] = normal(0, 1)
predictor W = U @ V.T
loss = sum((W - 1)^2)
symmetry cols = diagonal_factorization(U, V)
"""


def test_a_saved_model_whose_declared_algebra_is_too_small_gets_a_hint(tmp_path):
    # After a save, in a worker thread, the server runs the discovery once per version of the program
    # and adds an information diagnostic on the first symmetry naming what is missing (docs/discovery.md).
    c = Client()
    try:
        c.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}})
        c.notify("initialized")
        path = tmp_path / "partial.gauge"
        path.write_text(SUBALGEBRA)
        uri = _open(c, path, SUBALGEBRA)
        assert c.diagnostics(uri) == []
        c.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        assert c.diagnostics(uri) == []  # the save's own check, before the discovery
        (hint,) = c.diagnostics(uri)  # then the discovery's, published when it is done
        assert hint["severity"] == 3 and hint["source"] == "gaugedsl symmetries"
        assert hint["range"]["start"]["line"] == 6
        assert "2 of the 4 discovered directions" in hint["message"] and "GL[2]" in hint["message"]
    finally:
        c.proc.kill()
        c.proc.wait()


def test_a_burst_of_edits_is_checked_once_and_the_latest_edit_wins(tmp_path):
    """Ten edits of a large document in quick succession (issue 20 item 6): the server answers a
    hover while it checks, publishes diagnostics for the last version only, and not one check
    per edit (which took 10 s per edit for a 1 MB document before the debounce)."""
    import time

    numbers = ", ".join(f"{i * 0.001:.3f}" for i in range(20_000))  # ~150 KB: a check takes a second or more

    def version(k: int) -> str:
        return f"model big\ndata {{ x : R[20000] = [{numbers}] }}\nparam u : R = {k}.0\nloss = (u - mean(x))^2\n"

    c = Client()
    try:
        c.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}})
        c.notify("initialized")
        uri = _open(c, tmp_path / "big.gauge", version(1))
        assert c.diagnostics(uri) == []
        start = time.perf_counter()
        for k in range(2, 12):
            c.notify("textDocument/didChange",
                     {"textDocument": {"uri": uri, "version": k}, "contentChanges": [{"text": version(k)}]})  # fmt: skip
        hover = c.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 2, "character": 1}})
        answered = time.perf_counter() - start
        published = c.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics", timeout=120)
        checked = time.perf_counter() - start
        assert published["params"]["version"] == 11 and published["params"]["diagnostics"] == []
        assert hover is not None and "param" in hover["contents"]["value"]
        # The hover was answered before the check finished: it did not queue behind it.
        assert answered < checked, (answered, checked)
        # nothing else is published for the burst (undebounced, versions 2…10 were published too)
        with pytest.raises(AssertionError, match="did not answer in time"):
            c.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics", timeout=3)
        assert c.request("shutdown", None) is None
        c.notify("exit")
        c.proc.wait(timeout=30)
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
