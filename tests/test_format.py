"""`gaugedsl fmt`: the canonical layout, its invariants, and the command.

The invariants, on every example, every stdlib file and on generated programs:

- meaning: the formatted program parses to the same AST (spans aside) and, where the file
  checks, to the same IR; the tokens are the same, in the same order;
- comments: every comment survives, in order, with its text;
- idempotence: formatting formatted text changes nothing;
- canonical form: changing the whitespace inside statements (spaces, tabs, line breaks that
  are not after a comma or next to a comment) does not change the result.
"""

from __future__ import annotations

import dataclasses
import io
import os
import random
import stat
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaugedsl import cli, show
from gaugedsl.check import Loader
from gaugedsl.commands import fmt as fmt_command
from gaugedsl.diagnostics import GaugeError
from gaugedsl.format import format_text, tokens
from gaugedsl.syntax import parse

ROOT = Path(__file__).resolve().parent.parent


def corpus() -> list[Path]:
    files = []
    for folder in ("examples", "stdlib", "tests/programs/good"):
        files += sorted((ROOT / folder).rglob("*.gauge"))
    return files


FILES = corpus()
IDS = [str(f.relative_to(ROOT)) for f in FILES]


def strip_spans(node):
    """A dataclass tree without its positions (and, for the IR, the hash of the source text)."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__,) + tuple(
            (f.name, strip_spans(getattr(node, f.name)))
            for f in dataclasses.fields(node)
            if f.name not in ("span", "spans", "comments", "source_hash") and not f.name.endswith("_span")
        )
    if isinstance(node, (tuple, list)):
        return tuple(strip_spans(x) for x in node)
    return node


def code_tokens(text: str) -> list[tuple[str, str]]:
    return [(t.type, t.text) for t in tokens(text) if t.type != "COMMENT"]


def assert_invariants(text: str, path: str = "<test>") -> str:
    out = format_text(text, path)
    assert format_text(out, path) == out, "not idempotent"
    before, after = tokens(text), tokens(out)
    assert [(t.type, t.text) for t in after if t.type != "COMMENT"] == [
        (t.type, t.text) for t in before if t.type != "COMMENT"
    ]
    assert [t.text for t in after if t.type == "COMMENT"] == [t.text.rstrip() for t in before if t.type == "COMMENT"]
    tree_before, tree_after = parse(text, path), parse(out, path)
    assert strip_spans(tree_before) == strip_spans(tree_after)
    assert tree_before.doc == tree_after.doc
    assert out.endswith("\n") or out == ""
    assert "\n\n\n" not in out and not out.startswith("\n")
    assert all(line == line.rstrip() for line in out.split("\n"))
    return out


@cache
def formatted(path: Path) -> str:
    return format_text(path.read_text(), str(path))


def _gaps(text: str):
    """Each stretch of whitespace between two tokens: (start, end, token before, token after)."""
    toks = tokens(text)
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    for a, b in zip(toks, toks[1:]):
        yield starts[a.end_line - 1] + a.end_column - 1, starts[b.line - 1] + b.column - 1, a, b


def _rewrite_gaps(text: str, new_gap) -> str:
    out, at = [], 0
    for start, end, a, b in _gaps(text):
        out.append(text[at:start])
        out.append(new_gap(text[start:end], a, b))
        at = end
    out.append(text[at:])
    return "".join(out)


def perturb(text: str, rng: random.Random, allow_empty: bool = True, expected=None) -> str:
    """`text` with its whitespace changed where the layout must not depend on it: between
    two code tokens (no comment beside them) that are not separated by a line break after a
    comma. Blank lines stay blank lines (of any length), other line breaks stay line breaks."""

    def new_gap(gap, a, b):
        if a.type == "COMMENT" or b.type == "COMMENT":
            return gap
        newlines = gap.count("\n")
        if newlines >= 2:
            return "\n" * rng.randint(2, 4) + rng.choice(["", "  ", "\t"])
        if newlines == 1:
            return "\n" + rng.choice(["", " ", "      ", "\t"])
        choices = [" ", "   ", "\t", " \t "] + ([""] if allow_empty else [])
        if a.type != "COMMA":
            choices.append("\n" + rng.choice(["", "  ", "\t\t"]))
        return rng.choice(choices)

    candidate = _rewrite_gaps(text, new_gap)
    expected = code_tokens(text) if expected is None else expected
    try:
        same = code_tokens(candidate) == expected
    except GaugeError:
        same = False
    if not same:  # a removed space joined two tokens (`param u` → `paramu`): keep spaces
        assert allow_empty
        return perturb(text, rng, allow_empty=False, expected=expected)
    return candidate


def ir_text(model) -> str:
    text = show.model(model)
    return text.split("\n", 1)[1] if "\n" in text else ""


# ---- every file of the repository -------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_formatting_keeps_tokens_comments_ast_and_is_idempotent(path):
    assert assert_invariants(path.read_text(), str(path)) == formatted(path)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_formatting_keeps_the_checked_ir(path):
    text = path.read_text()
    try:
        original = Loader().check_text(text, str(path))
    except GaugeError:
        pytest.skip("does not check")
    after = Loader().check_text(formatted(path), str(path))
    assert strip_spans(after) == strip_spans(original)
    assert ir_text(after) == ir_text(original)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_layout_does_not_depend_on_whitespace_inside_statements(path):
    canonical = formatted(path)
    assert format_text(perturb(canonical, random.Random(path.name))) == canonical


# ---- the layout -------------------------------------------------------------------------

MESSY = """\


# leading comment
## file doc
model   m    # trailing on model
import std . rescaling



data{  # data comment
X:R[10,20]=normal(0,1,seed=0)
  w_star:R[ 20 ]=sparse(k=3,low=1,high=2,seed=1)   # t1

  # own line in data
  stream z : R[3] ~ normal(0, 1)
     y: R[10] = X@w_star


}
param u:R[20]=normal(0,-0.1)
let a = -u^-2 + (u*v)[0:3 , :].T - - v [ 1 : ] * x[: -1]
let b = a +   # mid comment
  b * 2
  # own line mid
  - 3
predictor w=u*v loss per(x,t)in(X,y)=0.5*(x@w-t)^2
symmetry s2(u:R[n],v:R[n]):Scale[n]{u->g*u
vv->v/g}
noise projected(T=1e-3)
run{dynamics=sde particles=1000
# c
  record every 100:w,charge(s2),
      loss
}   # after close
design { target = sparsity depth=3 }
# eof comment

"""

EXPECTED = """\
# leading comment
## file doc
model m  # trailing on model
import std.rescaling

data {  # data comment
  X      : R[10, 20] = normal(0, 1, seed = 0)
  w_star : R[20]     = sparse(k = 3, low = 1, high = 2, seed = 1)  # t1

  # own line in data
  stream z : R[3]  ~ normal(0, 1)
  y        : R[10] = X @ w_star
}
param u : R[20] = normal(0, -0.1)
let a = -u^-2 + (u * v)[0:3, :].T - -v[1:] * x[:-1]
let b = a +  # mid comment
    b * 2
    # own line mid
    - 3
predictor w = u * v
loss per (x, t) in (X, y) = 0.5 * (x @ w - t)^2
symmetry s2(u : R[n], v : R[n]) : Scale[n] {
  u  -> g * u
  vv -> v / g
}
noise projected(T = 1e-3)
run {
  dynamics  = sde
  particles = 1000
  # c
  record every 100: w, charge(s2),
                    loss
}  # after close
design {
  target = sparsity
  depth  = 3
}
# eof comment
"""


def test_canonical_layout_of_a_messy_program():
    assert assert_invariants(MESSY) == EXPECTED


@pytest.mark.parametrize(
    "source, expected",
    [
        ("let a = b*-c", "let a = b * -c"),
        ("let a = x ^ 2 ^ -y", "let a = x^2^-y"),
        ("let a = f( x , axis = 0 )", "let a = f(x, axis = 0)"),
        ("let a = [ 1 , - 2 ]", "let a = [1, -2]"),
        ("let a = x [ : , 1 : ] .T", "let a = x[:, 1:].T"),
        ("let a = 3 .T", "let a = 3 .T"),  # `3.T` would be the number `3.` and a name
        ('let a = load( "a b.npz" )', 'let a = load("a b.npz")'),
        ("let a = -(x)", "let a = -(x)"),
        ("let a = (x + y) * z", "let a = (x + y) * z"),
    ],
)
def test_spacing(source, expected):
    assert assert_invariants(source + "\n") == expected + "\n"


def test_trailing_comments_of_neighbouring_lines_share_a_column():
    text = "param u : R = 1 # a\nparam long_name : R[3] = zeros() # b\n\nlet c = u # c\n"
    assert assert_invariants(text) == (
        "param u : R = 1                   # a\nparam long_name : R[3] = zeros()  # b\n\nlet c = u  # c\n"
    )


def test_empty_and_comment_only_files():
    assert format_text("") == ""
    assert format_text("\n\n") == ""
    assert assert_invariants("  # only a comment   \n\n\n# another\n") == "# only a comment\n\n# another\n"


def test_a_file_that_does_not_parse_is_refused():
    with pytest.raises(GaugeError) as info:
        format_text("param = 3\n", "bad.gauge")
    assert info.value.diagnostics[0].span.line == 1


# ---- generated programs -----------------------------------------------------------------

NAMES = st.sampled_from(["u", "v", "w", "X", "y", "x_1", "alpha", "T2"])
FUNCS = st.sampled_from(["exp", "sum", "normal", "norm", "concat", "reshape", "charge"])
NUMBERS = st.sampled_from(["0", "1", "2.5", ".5", "1e-3", "3E+2", "10", "0.1"])


def _expr(depth: int):
    leaf = st.one_of(NAMES, NUMBERS, st.just('"f.npz"'))
    if depth == 0:
        return leaf
    sub = _expr(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "@", "^"]), sub).map(" ".join),
        sub.map(lambda e: f"-{e}"),
        sub.map(lambda e: f"({e})"),
        st.tuples(FUNCS, st.lists(sub, max_size=3), st.lists(st.tuples(NAMES, sub), max_size=2)).map(
            lambda t: f"{t[0]}({', '.join(t[1] + [f'{k} = {v}' for k, v in t[2]])})"
        ),
        st.tuples(
            NAMES, st.lists(st.sampled_from(["0", ":", "1:", ":2", "-1", "1:3", "i"]), min_size=1, max_size=3)
        ).map(lambda t: f"{t[0]}[{', '.join(t[1])}]"),
        NAMES.map(lambda n: f"{n}.T"),
        st.lists(sub, min_size=1, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
    )


EXPR = _expr(3)
TYPE = st.tuples(
    st.sampled_from(["R", "Positive", "Sphere"]), st.lists(st.sampled_from(["3", "n", "2"]), max_size=2)
).map(lambda t: t[0] + (f"[{', '.join(t[1])}]" if t[1] else ""))


def _statement():
    data_entry = st.one_of(
        st.tuples(NAMES, TYPE, EXPR).map(lambda t: f"{t[0]} : {t[1]} = {t[2]}"),
        st.tuples(NAMES, TYPE, EXPR).map(lambda t: f"stream {t[0]} : {t[1]} ~ {t[2]}"),
    )
    setting = st.tuples(st.sampled_from(["dt", "steps", "particles", "solver", "target"]), EXPR).map(
        lambda t: f"{t[0]} = {t[1]}"
    )
    record = st.tuples(
        NUMBERS,
        st.lists(st.one_of(EXPR, st.tuples(NAMES, EXPR).map(lambda t: f"{t[0]} = {t[1]}")), min_size=1, max_size=3),
    ).map(lambda t: f"record every {t[0]}: {', '.join(t[1])}")
    return st.one_of(
        NAMES.map(lambda n: f"model {n}"),
        st.just("import std.rescaling"),
        st.lists(data_entry, max_size=3).map(lambda es: ["data {", *es, "}"]),
        st.tuples(NAMES, TYPE, st.one_of(st.none(), EXPR)).map(
            lambda t: f"param {t[0]} : {t[1]}" + ("" if t[2] is None else f" = {t[2]}")
        ),
        st.tuples(st.sampled_from(["let", "predictor"]), NAMES, EXPR).map(lambda t: f"{t[0]} {t[1]} = {t[2]}"),
        EXPR.map(lambda e: f"loss = {e}"),
        EXPR.map(lambda e: f"loss per (x, t) in (X, y) = {e}"),
        st.tuples(NAMES, st.lists(st.tuples(NAMES, EXPR), max_size=2)).map(
            lambda t: [f"symmetry {t[0]} : Scale[3] {{", *[f"{a} -> {b}" for a, b in t[1]], "}"]
        ),
        NAMES.map(lambda n: f"symmetry {n} = rescaling(u, v)"),
        EXPR.map(lambda e: f"noise projected(T = {e})"),
        st.lists(st.one_of(setting, record), max_size=4).map(lambda es: ["run {", *es, "}"]),
        st.lists(setting, max_size=2).map(lambda es: ["design {", *es, "}"]),
    )


@st.composite
def programs(draw):
    """A syntactically valid program (not a meaningful one), written with random whitespace,
    own-line, trailing and mid-statement comments and blank lines."""
    statements = draw(st.lists(_statement(), max_size=6))
    lines: list[str] = []
    for s in statements:
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                lines.append("")
            else:
                lines.append(draw(st.sampled_from(["  ", ""])) + draw(st.sampled_from(["# note", "## doc", "#x"])))
        lines.extend(s if isinstance(s, list) else [s])
        if draw(st.integers(0, 3)) == 0:
            lines[-1] += draw(st.sampled_from(["  # trailing", "# t ", "\t## d"]))
    text = "\n".join(lines) + "\n"
    # Random whitespace between tokens, now and then a comment in the middle of a statement.
    rng = random.Random(draw(st.integers(0, 2**32)))

    def new_gap(gap, a, b):
        if "\n" in gap or a.type == "COMMENT" or b.type == "COMMENT":
            return gap
        return rng.choice([" ", "  ", "\t", " # mid\n  ", "\n", " "])

    return _rewrite_gaps(text, new_gap)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 1000))
def test_generated_programs(text, seed):
    try:
        parse(text)
    except GaugeError:  # e.g. a random expression that the grammar reads differently
        return
    out = assert_invariants(text)
    assert format_text(perturb(out, random.Random(seed))) == out


# ---- the command ------------------------------------------------------------------------


def gaugedsl(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the command as a user does: a new `python -m gaugedsl` process."""
    return subprocess.run(
        [sys.executable, "-m", "gaugedsl", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """The same command in this process (faster: the parsers are built once)."""
    code = cli.main(["fmt", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_fmt_check_lists_files_that_would_change_and_exits_1(tmp_path):
    messy, tidy = tmp_path / "messy.gauge", tmp_path / "tidy.gauge"
    messy.write_text("model  m\n")
    tidy.write_text("model m\n")
    result = gaugedsl("fmt", "--check", str(messy), str(tidy))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [str(messy)]
    assert messy.read_text() == "model  m\n"


def test_fmt_check_exits_0_when_nothing_would_change(tmp_path, capsys):
    tidy = tmp_path / "tidy.gauge"
    tidy.write_text("model m\n")
    assert run_cli(capsys, "--check", str(tidy)) == (0, "", "")


def test_fmt_rewrites_files_in_place_and_keeps_their_mode(tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    a = folder / "a.gauge"
    a.write_text("model  m\nparam u:R=1\n")
    a.chmod(0o640)
    code, _, err = run_cli(capsys, str(tmp_path))  # a folder: every .gauge file below it
    assert code == 0 and "reformatted" in err
    assert a.read_text() == "model m\nparam u : R = 1\n"
    assert stat.S_IMODE(a.stat().st_mode) == 0o640
    assert sorted(p.name for p in folder.iterdir()) == ["a.gauge"]  # no temporary files left


def test_fmt_leaves_a_file_with_a_syntax_error_alone(tmp_path, capsys):
    bad = tmp_path / "bad.gauge"
    bad.write_text("param = 3\n")
    code, _, err = run_cli(capsys, str(bad))
    assert code == 1
    assert "bad.gauge:1:7: error[E" in err
    assert bad.read_text() == "param = 3\n"


def test_fmt_reads_stdin_and_reports_a_missing_file(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("model  m\n"))
    assert run_cli(capsys, "-")[:2] == (0, "model m\n")
    assert run_cli(capsys, "no/such.gauge")[0] == 2


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.gauge"
    target.write_text("old\n")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        fmt_command.write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.gauge"]


def test_the_repository_is_formatted(capsys):
    # The acceptance of `gaugedsl fmt --check` on the repository: every program that parses
    # (tests/programs/bad holds programs that must not).
    from gaugedsl.cli import main

    root = Path(__file__).resolve().parent.parent
    folders = [str(root / d) for d in ("examples", "stdlib", "tests/programs/good")]
    assert main(["fmt", "--check", *folders]) == 0, capsys.readouterr().out
