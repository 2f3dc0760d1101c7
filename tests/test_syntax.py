"""The parser: spans of AST nodes, comments and doc comments, the cached parser tables."""

from __future__ import annotations

import pytest

from gaugedsl.diagnostics import GaugeError, SourceCache, Span
from gaugedsl.syntax import ast, parse
from gaugedsl.syntax import parser as parser_module


def _where(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.column, span.end_line, span.end_column)


def test_spans_of_expressions_cover_their_tokens_and_surrounding_parentheses():
    (loss,) = parse("loss = (a + b) * c[1:, 0].T").items
    mul = loss.value
    assert isinstance(mul, ast.Binary) and mul.op == "*"
    assert _where(mul.span) == (1, 8, 1, 28)  # from '(' to '.T'
    assert _where(mul.left.span) == (1, 9, 1, 14)  # a + b, without the parentheses
    transpose = mul.right
    assert isinstance(transpose, ast.Transpose)
    assert _where(transpose.value.span) == (1, 18, 1, 26)  # c[1:, 0]
    start, index = transpose.value.items
    assert isinstance(start, ast.Slice) and _where(start.span) == (1, 20, 1, 22)
    assert _where(loss.span) == (1, 1, 1, 28)


def test_spans_of_statements_and_blocks():
    text = "model m\n\nrun {\n  steps = 10\n  record every 5: w, n = norm(w)\n}\n"
    model, run = parse(text).items
    assert _where(model.span) == (1, 1, 1, 8)
    assert _where(run.span) == (3, 1, 6, 2)
    (setting,) = run.settings
    assert _where(setting.span) == (4, 3, 4, 13) and _where(setting.name_span) == (4, 3, 4, 8)
    (record,) = run.records
    assert _where(record.span) == (5, 3, 5, 33)
    assert [(i.label, _where(i.span)) for i in record.items] == [(None, (5, 19, 5, 20)), ("n", (5, 22, 5, 33))]


def test_import_span_covers_the_dotted_name():
    (imp,) = parse("import std.rescaling  # comment").items
    assert imp.path == ("std", "rescaling")
    assert _where(imp.span) == (1, 1, 1, 21)


def test_calls_keep_keyword_arguments_apart():
    (loss,) = parse("loss = normal(0, 1, shape = [3], seed = 2)").items
    call = loss.value
    assert call.func == "normal" and _where(call.func_span) == (1, 8, 1, 14)
    assert [a.value for a in call.args] == [0.0, 1.0]
    assert [k.name for k in call.kwargs] == ["shape", "seed"]


def test_doc_comments_attach_to_the_declaration_below_and_to_the_file():
    text = "## The file.\n## Second line.\n\nmodel m\n## A parameter.\nparam w : R[3]  ## not a doc comment\nparam v : R\n# plain\n## Sym.\nsymmetry s : Scale { v -> g * v }\n"
    program = parse(text)
    assert program.doc == "The file.\nSecond line."
    _, w, v, s = program.items
    assert w.doc == "A parameter."
    assert v.doc == ""  # the `##` at the end of line 6 follows code: not a doc comment
    assert s.doc == "Sym."
    assert [c.text for c in program.comments] == [
        "## The file.",
        "## Second line.",
        "## A parameter.",
        "## not a doc comment",
        "# plain",
        "## Sym.",
    ]


def test_keywords_are_names_where_only_a_name_can_stand():
    (run,) = parse("run { record every 10: loss }").items
    assert run.records[0].items[0].value == ast.Name("loss", Span("<string>", 1, 24, 1, 28))
    (design,) = parse("design { target = sparsity\n predictor = w }").items
    assert [s.name for s in design.settings] == ["target", "predictor"]


def test_a_syntax_error_is_one_gauge_error_with_a_placed_diagnostic():
    with pytest.raises(GaugeError) as exc:
        parse("model m\nparam w : R[3] =\n", "f.gauge")
    (d,) = exc.value.diagnostics
    assert d.code == "E007" and _where(d.span) == (2, 17, 2, 18)
    sources = SourceCache()
    sources.add("f.gauge", "model m\nparam w : R[3] =\n")
    assert d.render(sources).splitlines()[1:3] == ["   2 | param w : R[3] =", "     |                 ^"]


def test_lines_are_counted_as_the_lexer_counts_them():
    # Form feeds and other separators that str.splitlines() splits at are not line breaks.
    text = "model m\x0c param w : R[3]\nloss = nope"
    with pytest.raises(GaugeError) as exc:
        from gaugedsl.check import check_text

        check_text(text, "f.gauge")
    (d,) = exc.value.diagnostics
    assert (d.span.line, d.span.column) == (2, 8)
    sources = SourceCache()
    sources.add("f.gauge", text)
    assert "   2 | loss = nope" in d.render(sources)


def test_parser_tables_are_cached_and_give_the_same_parser(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("GAUGEDSL_PARSER_CACHE", "1")
    text = "model m\nparam w : R[3] = normal(0, 1)  # c\nloss = sum((w - 1)^2)\n"
    parser_module._parser.cache_clear()
    try:
        built = parse(text)
        (cache,) = (tmp_path / "gaugedsl").glob("parser-*.lark-cache")
        parser_module._parser.cache_clear()
        loaded = parse(text)  # from the cache
        assert loaded == built
        assert parser_module.grammar().source_grammar.startswith("// The .gauge language")
        cache.write_bytes(b"not a pickle")  # a broken cache is rebuilt, silently
        parser_module._parser.cache_clear()
        assert parse(text) == built
    finally:
        parser_module._parser.cache_clear()


def test_parser_cache_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("GAUGEDSL_PARSER_CACHE", "0")
    parser_module._parser.cache_clear()
    try:
        parse("model m")
        assert not (tmp_path / "gaugedsl").exists()
    finally:
        parser_module._parser.cache_clear()


def test_threads_can_parse_at_the_same_time():
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"model m{i}\n## Doc {i}.\nparam w{i} : R[{i + 1}]  # c{i}\nloss = sum(w{i}^2)\n" for i in range(40)]
    expected = [parse(t, f"f{i}.gauge") for i, t in enumerate(texts)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda it: parse(it[1], f"f{it[0]}.gauge"), enumerate(texts)))
    assert results == expected
