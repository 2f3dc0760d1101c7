"""Editor support: the generated grammars are up to date and highlight every example.

The TextMate grammar is exercised with a small TextMate tokenizer written here in Python
(CI has no guaranteed node): it implements the subset the grammar uses — `match`/`name`/
`captures`, `begin`/`end` with their captures and nested `patterns`, `include` of
repository rules and `$self` — with the same rules as vscode-textmate: at each position the
earliest match wins, ties go to the end pattern of the enclosing rule, then to the first
pattern listed. Ground truth comes from the parser's own token stream.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import tomllib

from gaugedsl import editors
from gaugedsl.check.functions import FUNCTIONS
from gaugedsl.format import tokens
from gaugedsl.kinds import GROUPS, MANIFOLDS
from gaugedsl.syntax import ast, parse

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = """## A sample with every construct.
model sample
import std.rescaling

data {
  X      : R[10, 2] = normal(0, 1, seed = 0)   # inputs
  stream z : R[2] ~ uniform(-1, 1)
  y      : R[10]    = X @ [1.5, -2e-3] + 0.5
  f      : R[3]     = load("values.npz", "f")
}

param u : R[2] = normal(0, .1)
param s : Sphere[3] = normalize(ones(shape = [3]))
let sq = -u^2 + exp(u)[0:1].T * pi
predictor w = u * u
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2

symmetry turn : SO[3] {
  s -> g @ s
}
symmetry balance = rescaling(u, u)

noise projected(T = 1e-3)

run {
  dynamics = sde
  solver   = heun
  steps    = 100
  record every 10: w, charge(balance), loss
}
"""


def program_files() -> list[Path]:
    files = sorted((ROOT / "examples").glob("*.gauge")) + sorted((ROOT / "stdlib").glob("*.gauge"))
    return [f for f in files if f.is_file()]


def texts() -> list[tuple[str, str]]:
    return [("sample", SAMPLE)] + [(str(f.relative_to(ROOT)), f.read_text()) for f in program_files()]


CASES = texts()
IDS = [name for name, _ in CASES]


# ---- the generated files ----------------------------------------------------------------


def test_generated_editor_files_match_the_generator():
    stale = editors.stale(ROOT)
    assert not stale, f"stale generated files {stale}: run `python -m gaugedsl.editors`"


def test_vocabulary_comes_from_the_grammar_and_tables():
    v = editors.vocabulary()
    grammar_text = (ROOT / "grammar" / "gauge.lark").read_text()
    declared = re.findall(r"^[A-Z_]+\.2: /([a-z_]+)\\b/", grammar_text, re.M)
    assert declared and v["keywords"] == declared
    assert set(v["functions"]) == set(FUNCTIONS)
    assert set(v["groups"]) == set(GROUPS) and set(v["manifolds"]) == set(MANIFOLDS)


# ---- a TextMate tokenizer ---------------------------------------------------------------


class TextMate:
    def __init__(self, grammar: dict):
        self.grammar = grammar
        self.repo = grammar.get("repository", {})
        self._regex: dict[str, re.Pattern] = {}

    def regex(self, source: str) -> re.Pattern:
        if source not in self._regex:
            self._regex[source] = re.compile(source)
        return self._regex[source]

    def rules(self, patterns: list[dict]) -> list[dict]:
        """Flatten includes: the rules that can match, in order."""
        out = []
        for p in patterns:
            if "include" in p:
                ref = p["include"]
                if ref == "$self":
                    target = {"patterns": self.grammar["patterns"]}
                else:
                    assert ref.startswith("#"), f"unsupported include {ref}"
                    target = self.repo[ref[1:]]
                out.extend(self.rules([target]))
            elif "match" in p or "begin" in p:
                out.append(p)
            else:
                out.extend(self.rules(p.get("patterns", [])))
        return out

    @staticmethod
    def _paint(scopes, m, base, name, captures):
        for k in range(m.start(), m.end()):
            scopes[k] = base + ([name] if name else [])
        for group in sorted(captures or {}, key=int):
            g = int(group)
            if m.group(g) is None or "name" not in captures[group]:
                continue
            for k in range(m.start(g), m.end(g)):
                scopes[k] = scopes[k] + [captures[group]["name"]]

    def tokenize(self, text: str) -> list[list[list[str]]]:
        """The scope list of every character, line by line."""
        root = self.grammar["scopeName"]
        stack = [(None, [root], [root], self.rules(self.grammar["patterns"]))]
        result = []
        for line in text.split("\n"):
            line += "\n"
            scopes: list[list[str]] = [[] for _ in line]
            pos = 0
            while pos < len(line):
                rule, outer, inner, rules = stack[-1]
                best = None  # (start, order, kind, rule, match)
                if rule is not None:
                    m = self.regex(rule["end"]).search(line, pos)
                    if m:
                        best = (m.start(), -1, "end", rule, m)
                for order, r in enumerate(rules):
                    m = self.regex(r.get("match") or r["begin"]).search(line, pos)
                    if m and (best is None or (m.start(), order) < best[:2]):
                        best = (m.start(), order, "match" if "match" in r else "begin", r, m)
                if best is None:
                    for k in range(pos, len(line)):
                        scopes[k] = list(inner)
                    break
                start, _, kind, r, m = best
                for k in range(pos, start):
                    scopes[k] = list(inner)
                if kind == "end":
                    self._paint(scopes, m, outer, None, r.get("endCaptures", r.get("captures")))
                    stack.pop()
                elif kind == "match":
                    self._paint(scopes, m, inner, r.get("name"), r.get("captures"))
                else:
                    self._paint(scopes, m, inner, r.get("name"), r.get("beginCaptures", r.get("captures")))
                    new_outer = inner + ([r["name"]] if "name" in r else [])
                    new_inner = new_outer + ([r["contentName"]] if "contentName" in r else [])
                    stack.append((r, new_outer, new_inner, self.rules(r.get("patterns", []))))
                if m.end() > pos:
                    pos = m.end()
                elif kind == "match":  # an empty match: step over one character
                    scopes[pos] = list(inner)
                    pos += 1
            result.append(scopes[:-1])
        return result


@cache
def textmate() -> TextMate:
    path = ROOT / editors.TEXTMATE
    return TextMate(json.loads(path.read_text()))


def test_tokenizer_follows_textmate_rules():
    grammar = {
        "scopeName": "source.t",
        "patterns": [
            {"match": r"\b(a)(b)?\b", "name": "m", "captures": {"1": {"name": "one"}, "2": {"name": "two"}}},
            {"begin": r"\(", "end": r"\)", "name": "p", "patterns": [{"include": "$self"}]},
            {"match": r"\w+", "name": "w"},
        ],
    }
    (line,) = TextMate(grammar).tokenize("ab (a x) y")
    assert line[0] == ["source.t", "m", "one"] and line[1] == ["source.t", "m", "two"]
    assert line[2] == ["source.t"]
    assert line[3] == ["source.t", "p"] and line[4] == ["source.t", "p", "m", "one"]
    assert line[6] == ["source.t", "p", "w"] and line[7] == ["source.t", "p"]
    assert line[9] == ["source.t", "w"]


def _scopes_of(tm_lines, tok) -> list[list[str]]:
    """The scopes of every character of a (single-line) token."""
    assert tok.line == tok.end_line
    return tm_lines[tok.line - 1][tok.column - 1 : tok.end_column - 1]


def _has(scopes: list[str], prefix: str) -> bool:
    return any(s.startswith(prefix) for s in scopes)


def _type_name_positions(program: ast.Program) -> set[tuple[int, int]]:
    found = set()

    def visit(node):
        if isinstance(node, ast.TypeExpr):
            found.add((node.name_span.line, node.name_span.column))
        if hasattr(node, "__dataclass_fields__"):
            for name in node.__dataclass_fields__:
                visit(getattr(node, name))
        elif isinstance(node, (tuple, list)):
            for x in node:
                visit(x)

    visit(program.items)
    return found


@pytest.mark.parametrize("name, text", CASES, ids=IDS)
def test_textmate_scopes_keywords_numbers_comments_strings(name, text):
    keywords = {t.upper() for t in editors.keywords()}
    keyword_words = set(editors.keywords())
    toks = tokens(text, name)
    types = _type_name_positions(parse(text, name))
    lines = textmate().tokenize(text)
    assert len(lines) == text.count("\n") + 1
    for i, tok in enumerate(toks):
        scopes = _scopes_of(lines, tok)
        where = f"{name}:{tok.line}:{tok.column} {tok.text!r}"
        for s in scopes:
            assert not _has(s, "invalid"), where
        if tok.type in keywords:
            assert all(_has(s, "keyword.control.gauge") for s in scopes), (where, scopes)
        elif tok.type == "NUMBER":
            assert all(_has(s, "constant.numeric.gauge") for s in scopes), (where, scopes)
        elif tok.type == "STRING":
            assert all(_has(s, "string.quoted.double.gauge") for s in scopes), (where, scopes)
        elif tok.type == "COMMENT":
            scope = "comment.line.documentation" if tok.text.startswith("##") else "comment.line.number-sign"
            assert all(_has(s, scope) for s in scopes), (where, scopes)
        elif tok.type == "NAME":
            assert not any(_has(s, "keyword.control") for s in scopes) or tok.text in keyword_words, where
            if tok.text in FUNCTIONS and i + 1 < len(toks) and toks[i + 1].type == "LPAR":
                assert all(_has(s, "support.function.builtin.gauge") for s in scopes), (where, scopes)
            if (tok.line, tok.column) in types and tok.text in GROUPS:
                assert all(_has(s, "support.type.group.gauge") for s in scopes), (where, scopes)
            if (tok.line, tok.column) in types and tok.text in MANIFOLDS:
                assert all(_has(s, "support.type.manifold.gauge") for s in scopes), (where, scopes)


def test_textmate_does_not_take_words_inside_names_for_keywords_or_numbers():
    lines = textmate().tokenize("param params : R = w2 + model_2\n")
    (line, _) = lines
    text = "param params : R = w2 + model_2"
    at = lambda s: line[text.index(s)]  # noqa: E731
    assert _has(at("params"), "variable.other.definition")
    assert not _has(line[text.index("w2") + 1], "constant.numeric")
    assert not _has(at("model_2"), "keyword")


def test_textmate_unterminated_string_stops_at_the_end_of_its_line():
    lines = textmate().tokenize('let a = load("oops\nlet b = 1\n')
    assert _has(lines[0][-1], "string.quoted")
    assert _has(lines[1][0], "keyword.control") and not _has(lines[1][0], "string")


# ---- Pygments ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, text", CASES, ids=IDS)
def test_pygments_lexes_without_errors_and_agrees_with_the_parser(name, text):
    from pygments.token import Comment, Error, Keyword, Name, Number, String

    from gaugedsl.pygments_lexer import GaugeLexer

    lexed = list(GaugeLexer().get_tokens_unprocessed(text))
    assert not [(i, v) for i, t, v in lexed if t in Error], name
    assert "".join(v for _, _, v in lexed) == text
    kind_at = {}
    for index, kind, value in lexed:
        for k in range(index, index + len(value)):
            kind_at[k] = kind
    offsets = [0]
    for line in text.split("\n"):
        offsets.append(offsets[-1] + len(line) + 1)
    keywords = {t.upper() for t in editors.keywords()}
    keyword_words = set(editors.keywords())
    for tok in tokens(text, name):
        kind = kind_at[offsets[tok.line - 1] + tok.column - 1]
        where = f"{name}:{tok.line}:{tok.column} {tok.text!r}"
        if tok.type in keywords:
            assert kind in Keyword, (where, kind)
        elif tok.type == "NUMBER":
            assert kind in Number, (where, kind)
        elif tok.type == "STRING":
            assert kind in String, (where, kind)
        elif tok.type == "COMMENT":
            assert kind in (String.Doc if tok.text.startswith("##") else Comment), (where, kind)
        elif tok.type == "NAME" and tok.text not in keyword_words:  # `loss` in a record
            assert kind in Name or kind in Keyword.Type, (where, kind)


def test_pygments_entry_point_makes_pygmentize_find_the_lexer(tmp_path):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    target = declared["pygments.lexers"]["gauge"]
    assert target == "gaugedsl.pygments_lexer:GaugeLexer"
    # An installed distribution's entry points, without installing: a .dist-info beside it.
    info = tmp_path / "gaugedsl_probe-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gaugedsl-probe\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(f"[pygments.lexers]\ngauge = {target}\n")
    code = (
        "import sys; from pygments.cmdline import main; "
        "sys.exit(main(['pygmentize', '-l', 'gauge', '-f', 'raw', sys.argv[1]]))"
    )
    env_path = f"{tmp_path}{':' + str(ROOT)}"
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "stdlib" / "rescaling.gauge")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Token.Keyword\t'symmetry'" in out.stdout
    assert "Token.Error" not in out.stdout


# ---- vim and VS Code --------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")
def test_vim_detects_gauge_files_and_highlights_keywords_numbers_comments_strings(tmp_path):
    # The file type comes from ftdetect/ (nothing sets it by hand), the groups from syntax/.
    text = SAMPLE
    probes = []
    for tok in tokens(text):
        if tok.type in {"PARAM", "NUMBER", "COMMENT", "STRING"} or (
            tok.type == "NAME" and tok.text in ("normal", "R", "SO", "heun", "projected")
        ):
            probes.append(tok)
    source = tmp_path / "probe.gauge"
    source.write_text(text)
    out = tmp_path / "out.txt"
    script = tmp_path / "probe.vim"
    calls = "\n".join(f'call add(g:out, synIDattr(synID({t.line}, {t.column}, 1), "name"))' for t in probes)
    script.write_text("let g:out = []\n" + calls + f'\ncall writefile(g:out, "{out}")\nqa!\n')
    subprocess.run(
        [
            "vim", "-N", "-u", "NONE", "-i", "NONE", "-es",
            "--cmd", f"set rtp^={ROOT / 'editors' / 'vim'}",
            "-c", "filetype on", "-c", "syntax on", "-c", f"edit {source}",
            "-S", str(script),
        ],
        timeout=60, capture_output=True,
    )  # fmt: skip
    got = out.read_text().splitlines()
    expected = {
        "PARAM": "gaugeKeyword", "NUMBER": "gaugeNumber", "STRING": "gaugeString",
        "normal": "gaugeFunction", "R": "gaugeManifold", "SO": "gaugeGroup",
        "heun": "gaugeValue", "projected": "gaugeNoise",
    }  # fmt: skip
    assert len(got) == len(probes)
    for tok, group in zip(probes, got):
        if tok.type == "COMMENT":
            want = "gaugeDocComment" if tok.text.startswith("##") else "gaugeComment"
        else:
            want = expected.get(tok.type) or expected[tok.text]
        assert group == want, (tok, group)


def test_vscode_extension_declares_the_language_and_the_grammar():
    folder = ROOT / "editors" / "vscode"
    package = json.loads((folder / "package.json").read_text())
    (language,) = package["contributes"]["languages"]
    # the id is gaugedsl: "gauge" is another extension's language (the Gauge test framework's)
    assert language["id"] == "gaugedsl" and language["extensions"] == [".gauge"]
    (grammar,) = package["contributes"]["grammars"]
    assert grammar["language"] == "gaugedsl" and grammar["scopeName"] == "source.gauge"
    assert 'language: "gaugedsl"' in (folder / package["main"]).read_text()
    assert (folder / grammar["path"]).resolve() == (ROOT / editors.TEXTMATE).resolve()
    config = json.loads((folder / language["configuration"]).read_text())
    assert config["comments"]["lineComment"] == "#"
    assert ["{", "}"] in config["brackets"] and ["(", ")"] in config["brackets"]
    assert {"open": "[", "close": "]"} in config["autoClosingPairs"]
    assert "folding" in config
    assert (folder / package["main"]).is_file()
