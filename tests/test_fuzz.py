"""Property-based robustness of the front end: whatever the input, parsing and checking end in
success or in a `GaugeError` whose every diagnostic has a place (file, line ≥ 1, column ≥ 1)
and renders, and the CLI exits with 0 or 1, never 3 (internal error).

The inputs are valid programs (the stdlib, the examples, tests/programs/good) mutated token by
token (deletions, duplications, swaps, replacements, insertions of random characters,
truncations), random text, random bytes (non-UTF-8 included), and random programs built
from the grammar's statements, which get past the parser deep into the checker. Hypothesis
runs derandomized, so CI sees the same cases every time. Well-typed programs mutated in their
meaning (sizes, kinds, extreme values, nesting past the limit) go further: through the memory
budget and, where they fit, the lowering and one evaluation of the loss. The budgets below add
up to 1,020 programs in CI (20 seconds on two cores); FUZZ_SCALE multiplies them.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaugedsl import cli
from gaugedsl.check import Loader
from gaugedsl.diagnostics import GaugeError

ROOT = Path(__file__).parent.parent
SEED_FILES = sorted(
    [*ROOT.glob("stdlib/*.gauge"), *ROOT.glob("examples/*.gauge"), *ROOT.glob("tests/programs/good/**/*.gauge")]
)
SEEDS = [(p, p.read_text(encoding="utf-8")) for p in SEED_FILES]

# Names, numbers, strings, comments, '->' and '.T', blanks, or any other single character.
_TOKEN = re.compile(r'[A-Za-z_][A-Za-z_0-9]*|\d+\.?\d*(?:[eE][+-]?\d+)?|"[^"\n]*"?|#[^\n]*|->|\.T|\s+|.', re.S)
_VOCABULARY = [
    *"{}()[],:=~+-*/@^.\n\"'#",
    "->", ".T", "**", "g", "x", "w", "u", "0", "1", "-1", "2.5", "1e400", "1e-400", "99999999999999999999",
    '"a.npz"', "model", "import", "std", "data", "stream", "param", "predictor", "let", "loss", "per",
    "in", "symmetry", "noise", "run", "record", "every", "design", "R", "Positive", "Sphere",
    "Stiefel", "Scale", "GL", "O", "SO", "Diag", "Translate", "sum", "charge", "normal", "load",
    "telescope", "concat", "axis", "shape", "seed", "pi", "T", "lr", "batch", "dynamics", "sgd",
    "\t", "\r", "\f", "\x00", "\x0b", "é", "⊙", "\u2028", "\ud800",
]  # fmt: skip

# FUZZ_SCALE multiplies every budget of this file: CI runs scale 1 (1,020 programs); a release
# runs `FUZZ_SCALE=10 pytest tests/test_fuzz.py -n auto` (10,200; docs/reliability.md).
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def assert_well_behaved(text: str, path: str) -> None:
    """Checking `text` succeeds or raises GaugeError with placed, renderable diagnostics."""
    loader = Loader()
    try:
        loader.check_text(text, path)
    except GaugeError as exc:
        assert exc.diagnostics, "a GaugeError without diagnostics"
        for d in exc.diagnostics:
            assert d.span is not None, f"{d.code} has no span"
            assert d.span.line >= 1 and d.span.column >= 1, d
            assert (d.span.end_line, d.span.end_column) >= (d.span.line, d.span.column), d
            rendered = d.render(loader.sources)
            assert rendered.startswith(f"{d.span}: error[{d.code}]: "), rendered
            assert d.hint and "  = hint: " in rendered, f"{d.code} has no hint"
            if loader.sources.line(d.span.path, d.span.line) is not None:
                assert "^" in rendered, f"{d.code}: no caret under the source line"


def _mutate(tokens: list[str], ops: list[tuple[int, int, int, str]]) -> str:
    tokens = list(tokens)
    for op, i, j, payload in ops:
        if not tokens:
            tokens = [payload]
            continue
        i %= len(tokens)
        j %= len(tokens)
        if op == 0:
            del tokens[i]
        elif op == 1:
            tokens.insert(j, tokens[i])
        elif op == 2:
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == 3:
            tokens[i] = payload
        elif op == 4:
            tokens.insert(i, payload)
        else:
            tokens = tokens[:i]
    return "".join(tokens)


_payload = st.one_of(st.sampled_from(_VOCABULARY), st.characters(), st.text(max_size=3))
_ops = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 10**6), st.integers(0, 10**6), _payload), min_size=1, max_size=4
)
_seed = st.sampled_from(range(len(SEEDS)))


def test_there_are_seeds():
    assert len(SEEDS) >= 10


@settings(FUZZ, max_examples=400 * SCALE)
@given(seed=_seed, ops=_ops)
def test_mutated_programs_fail_only_with_diagnostics(seed, ops):
    path, text = SEEDS[seed]
    # The seed's real path, so that its imports (std.*, files beside it) resolve.
    assert_well_behaved(_mutate(_TOKEN.findall(text), ops), str(path))


@settings(FUZZ, max_examples=100 * SCALE)
@given(seed=_seed, cut=st.floats(0, 1))
def test_truncated_programs_fail_only_with_diagnostics(seed, cut):
    path, text = SEEDS[seed]
    assert_well_behaved(text[: int(len(text) * cut)], str(path))


@settings(FUZZ, max_examples=80 * SCALE)
@given(text=st.lists(st.one_of(st.sampled_from(_VOCABULARY), st.characters()), max_size=40).map("".join))
def test_random_text_fails_only_with_diagnostics(text):
    assert_well_behaved(text, "random.gauge")


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(FUZZ, max_examples=80 * SCALE)
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_cli_on_random_bytes_exits_0_or_1(scratch, data):
    path = scratch / "bytes.gauge"
    path.write_bytes(data)
    code, out, err = _run_cli(["check", str(path)])
    assert code in (0, 1), err
    assert "internal error" not in err
    if code == 1:
        assert "error[E" in err and out == ""


@settings(FUZZ, max_examples=70 * SCALE)
@given(seed=_seed, ops=_ops, encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_cli_on_mutated_programs_exits_0_or_1(scratch, seed, ops, encoding):
    path, text = SEEDS[seed]
    target = scratch / path.name  # imports of files beside the seed fail there, with E101
    target.write_bytes(_mutate(_TOKEN.findall(text), ops).encode(encoding, "replace"))
    code, out, err = _run_cli(["check", str(target), "--emit", "ir"])
    assert code in (0, 1), err
    assert "internal error" not in err


# ---- random programs that parse: they reach deep into the checker ----------------------

_NAMES = ["a", "b", "c", "X", "y", "s", "t", "u", "v", "w", "g", "pi", "loss", "sum", "n", "undefined"]
_NUMBERS = ["0", "1", "2", "3", "-1", "0.5", "1e3", "2.0", "1e-3", "1e400", "123456789012345678901234567890"]
_FUNCS = ["exp", "log", "sum", "mean", "norm", "dot", "outer", "inv", "det", "diag", "concat", "telescope",
          "reshape", "normal", "uniform", "zeros", "ones", "full", "sparse", "spikes", "eye", "linspace",
          "arange", "repeat", "orthonormal", "load", "charge", "logdet_gram", "softmax", "cumsum",
          "maximum", "svdvals", "nope"]  # fmt: skip
_KWARGS = ["axis", "shape", "seed", "k", "n", "mean", "std", "at", "values", "counts", "file", "bogus"]
_TYPES = ["R", "R[3]", "R[2, 3]", "R[3, 2]", "Positive[3]", "Sphere[3]", "Stiefel[3, 2]", "R[n]",
          "Scale[3]", "Real[2]", "R[0]", "R[2.5]", "Sphere[1]", "Stiefel[2, 3]", "R[2, 3, 2]"]  # fmt: skip
_GROUPS = [
    "Scale",
    "Scale[3]",
    "Scale[2, 3]",
    "GL[2]",
    "O[3]",
    "SO[2]",
    "Diag[3]",
    "Translate[3]",
    "GL",
    "O[1]",
    "Lie[2]",
]


def _expressions():
    leaves = st.one_of(
        st.sampled_from(_NAMES),
        st.sampled_from(_NUMBERS),
        st.just('"data.npz"'),
    )

    def extend(inner):
        kwarg = st.tuples(st.sampled_from(_KWARGS), inner).map(lambda kv: f"{kv[0]} = {kv[1]}")
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "@", "^"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda e: f"-{e}"),
            inner.map(lambda e: f"({e}).T"),
            st.tuples(st.sampled_from(_FUNCS), st.lists(inner, max_size=3), st.lists(kwarg, max_size=2)).map(
                lambda t: f"{t[0]}({', '.join(t[1] + t[2])})"
            ),
            st.tuples(
                inner,
                st.lists(
                    st.one_of(
                        st.sampled_from(["0", "1", "-1", "2", "5"]),
                        st.just(":"),
                        st.sampled_from(["1:", ":2", "0:1", "2:1"]),
                    ),
                    min_size=1,
                    max_size=3,
                ),
            ).map(lambda t: f"({t[0]})[{', '.join(t[1])}]"),  # fmt: skip
            st.lists(inner, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
        )

    return st.recursive(leaves, extend, max_leaves=6)


_expr = _expressions()
_name = st.sampled_from(_NAMES)


def _statements():
    data_entry = st.one_of(
        st.tuples(_name, st.sampled_from(_TYPES), _expr).map(lambda t: f"  {t[0]} : {t[1]} = {t[2]}"),
        st.tuples(_name, st.sampled_from(_TYPES), _expr).map(lambda t: f"  stream {t[0]} : {t[1]} ~ {t[2]}"),
    )
    setting = st.tuples(
        st.sampled_from(["dynamics", "particles", "steps", "dt", "lr", "batch", "solver", "seed", "start", "chunk", "target", "depth", "operator", "rank", "strength", "oops"]),
        st.one_of(_expr, st.sampled_from(["sde", "sgd", "gd", "euler", "heun", "slice", "sparsity", "low_rank", "identity"])),
    ).map(lambda t: f"  {t[0]} = {t[1]}")  # fmt: skip
    record = st.tuples(st.sampled_from(["1", "10", "0", "x"]), st.lists(st.one_of(_expr, st.tuples(_name, _expr).map(lambda t: f"{t[0]} = {t[1]}")), min_size=1, max_size=3)).map(
        lambda t: f"  record every {t[0]}: {', '.join(t[1])}"
    )  # fmt: skip
    action = st.tuples(_name, _expr).map(lambda t: f"  {t[0]} -> {t[1]}")
    binders = st.lists(_name, min_size=1, max_size=3).map(lambda ns: ns[0] if len(ns) == 1 else f"({', '.join(ns)})")
    return st.one_of(
        st.just("model m"),
        st.sampled_from(["import std.rescaling", "import std.deep", "import nowhere"]),
        st.lists(data_entry, max_size=3).map(lambda es: "data {\n" + "\n".join(es) + "\n}"),
        st.tuples(_name, st.sampled_from(_TYPES), st.one_of(st.none(), _expr)).map(
            lambda t: f"param {t[0]} : {t[1]}" + ("" if t[2] is None else f" = {t[2]}")
        ),
        st.tuples(st.sampled_from(["let", "predictor"]), _name, _expr).map(lambda t: f"{t[0]} {t[1]} = {t[2]}"),
        _expr.map(lambda e: f"loss = {e}"),
        st.tuples(binders, binders, _expr).map(lambda t: f"loss per {t[0]} in {t[1]} = {t[2]}"),
        st.tuples(_name, st.sampled_from(_GROUPS), st.lists(action, max_size=3)).map(
            lambda t: f"symmetry {t[0]} : {t[1]} {{\n" + "\n".join(t[2]) + "\n}"
        ),
        st.tuples(
            _name,
            st.sampled_from(
                ["u : R[n], v : R[n]", "U : R[L, n]", "a : Positive[n]", "g : R[n]", "u : R[n + 1], v : R[n]"]
            ),
            st.sampled_from(_GROUPS + ["Scale[n]", "Scale[L - 1, n]", "GL[n]"]),
            st.lists(action, max_size=2),
        ).map(lambda t: f"symmetry {t[0]}({t[1]}) : {t[2]} {{\n" + "\n".join(t[3]) + "\n}"),  # fmt: skip
        st.tuples(
            _name, st.sampled_from(["rescaling", "deep_rescaling", "nothing", "s"]), st.lists(_name, max_size=3)
        ).map(lambda t: f"symmetry {t[0]} = {t[1]}({', '.join(t[2])})"),  # fmt: skip
        st.tuples(
            st.sampled_from(["isotropic", "projected", "sgd", "label", "pink"]),
            st.lists(
                st.one_of(
                    _expr,
                    st.tuples(st.sampled_from(["T", "lr", "batch", "sigma", "temp"]), _expr).map(
                        lambda t: f"{t[0]} = {t[1]}"
                    ),
                ),
                max_size=3,
            ),
        ).map(lambda t: f"noise {t[0]}({', '.join(t[1])})"),  # fmt: skip
        st.lists(st.one_of(setting, record), max_size=4).map(lambda es: "run {\n" + "\n".join(es) + "\n}"),
        st.lists(setting, max_size=3).map(lambda es: "design {\n" + "\n".join(es) + "\n}"),
    )


_program = st.lists(_statements(), min_size=1, max_size=8).map("\n".join)


@settings(FUZZ, max_examples=170 * SCALE)
@given(text=_program)
def test_random_programs_check_or_fail_with_diagnostics(text):
    assert_well_behaved("model m\n" + text, str(ROOT / "tests" / "random.gauge"))


# ---- well-typed programs, mutated semantically: they reach the budget and the lowering --------


_SIZES = st.sampled_from([1, 2, 3, 5, 100000, 2**31 - 1])
_VALUES = st.sampled_from(["0", "1", "-1", "0.5", "1e-30", "1e30", "1e300", "-1e300", "1e-300", "2.0^1000"])


@st.composite
def _typed_programs(draw):
    """The diagonal net u ⊙ v, well-typed by construction, then changed in meaning only: sizes,
    manifolds, groups, initial values, noise and run settings at their extremes, and nesting up
    to and past the parser's limit."""
    n = draw(_SIZES)
    m = draw(st.sampled_from([1, 3, 10, 10**6]))
    manifold = draw(st.sampled_from(["R", "Positive", "Sphere"]))
    group = draw(st.sampled_from([f"Scale[{n}]", f"Scale[{n + 1}]", "Scale", f"Diag[{n}]", f"GL[{n}]"]))
    init = draw(st.sampled_from(["normal(MU, SD)", "full(MU)", "zeros()", "uniform(MU, SD)"]))
    init = init.replace("MU", draw(_VALUES)).replace("SD", draw(_VALUES))
    depth = draw(st.sampled_from([0, 1, 5, 50, 190, 250]))
    inner = "sum((X @ w - y)^2) / " + draw(st.sampled_from(["1", str(m), "0.0", "1e-300"]))
    loss = "tanh(" * depth + inner + ")" * depth
    noise = draw(st.sampled_from(["projected", "isotropic", "sgd"]))
    T = draw(_VALUES)
    particles, steps = draw(st.sampled_from([1, 8, 10**9])), draw(st.sampled_from([1, 10, 2**31 - 1, 2**40]))
    every = draw(st.sampled_from([1, 10, 2**31 - 1]))
    settings_ = f"T = {T}" if noise != "sgd" else f"lr = {T}, batch = {draw(st.sampled_from([1, 2, m, m + 1]))}"
    return f"""model typed
data {{
  X : R[{m}, {n}] = normal(0, 1, seed = {draw(st.sampled_from([0, 2**32 - 1, 2**32]))})
  y : R[{m}] = X @ ones(shape = [{n}])
}}
param u : {manifold}[{n}] = {init}
param v : {manifold}[{n}] = {init}
predictor w = u * v
loss = {loss}
symmetry s : {group} {{
  u -> g * u
  v -> v / g
}}
noise {noise}({settings_})
run {{
  particles = {particles}
  steps = {steps}
  dt = {draw(_VALUES)}
  record every {every}: w, loss
}}
"""


def assert_deeply_well_behaved(text: str, path: str, lower: bool) -> None:
    """As `assert_well_behaved`, and a model that checks goes through the memory budget of
    `run` (refused or passed, never crashed) and, if `lower`, through the lowering and one
    evaluation of its loss at an initial point."""
    import jax

    from gaugedsl import budget, ir
    from gaugedsl.lowering import Lowered

    assert_well_behaved(text, path)
    loader = Loader()
    try:
        model = loader.check_text(text, path)
        if not isinstance(model, ir.Model):
            return
        budget.run_budget(model, {}, 2**30 if lower else None)  # lowered only what is small here
        if lower:
            lowered = Lowered(model)
            lowered.loss(lowered.init_params(jax.random.PRNGKey(0)))
    except GaugeError as exc:
        for d in exc.diagnostics:
            assert d.span is not None and d.span.line >= 1, d
            assert d.hint, f"{d.code} has no hint"


@settings(FUZZ, max_examples=100 * SCALE)
@given(text=_typed_programs())
def test_well_typed_programs_at_their_extremes_pass_the_budget_or_fail_with_diagnostics(text):
    assert_deeply_well_behaved(text, str(ROOT / "tests" / "typed.gauge"), lower=False)


@settings(FUZZ, max_examples=20 * SCALE)
@given(text=_typed_programs())
def test_well_typed_programs_that_fit_lower_or_fail_with_diagnostics(text):
    assert_deeply_well_behaved(text, str(ROOT / "tests" / "typed.gauge"), lower=True)
