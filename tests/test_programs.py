"""Golden tests: every program in tests/programs/bad fails with exactly the diagnostics in its
`.expected` file, and every program in tests/programs/good checks, with exactly the IR listing
(`gaugedsl check --emit ir`) in its `.expected` file.

Programs run through the CLI in-process, from their own folder, so that the paths in the
output are relative and the goldens are the same on every machine. Helper files in
subfolders (imported libraries, cycles) are not programs of their own.

To regenerate the goldens (and the examples in docs/errors.md) after a deliberate change, run

    GAUGEDSL_UPDATE_GOLDEN=1 python -m pytest -q tests/test_programs.py

and read every changed `.expected` file (git diff) before committing it: each message must be
clear, point at the right place and say what to do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from gaugedsl import cli
from gaugedsl._resources import stdlib_dir

PROGRAMS = Path(__file__).parent / "programs"
BAD = sorted((PROGRAMS / "bad").glob("*.gauge"))
GOOD = sorted((PROGRAMS / "good").glob("*.gauge"))
UPDATE = os.environ.get("GAUGEDSL_UPDATE_GOLDEN") == "1"
# The language's own stages; later stages (geometry, dynamics) have codes of their own.
LANGUAGE = [Path(__file__).parent.parent / "gaugedsl" / d for d in ("syntax", "check")]

_HEADER = re.compile(
    r"^(?P<path>[^\s:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning)\[(?P<code>E\d{3})\]: ", re.M
)
_HASH = re.compile(r"sha256 [0-9a-f]{12}")


def _run(monkeypatch, capsys, folder: Path, argv: list[str]) -> tuple[int, str, str]:
    monkeypatch.chdir(folder)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _normalize(text: str) -> str:
    # The stdlib's location depends on the installation; everything else is relative already.
    return text.replace(str(stdlib_dir().resolve()), "<stdlib>")


def _compare(path: Path, actual: str) -> None:
    golden = path.with_suffix(".expected")
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"no golden for {path.name}; run with GAUGEDSL_UPDATE_GOLDEN=1"
    expected = golden.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name}: output differs from {golden.name}"


def _imports_stdlib(path: Path) -> bool:
    return re.search(r"^\s*import\s+std\.", path.read_text(encoding="utf-8"), re.M) is not None


def test_there_are_enough_programs():
    assert len(BAD) >= 45
    assert len(GOOD) >= 10


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_program_fails_with_its_golden_diagnostics(path, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, path.parent, ["check", path.name])
    assert code == 1, err
    assert out == "", "diagnostics go to stderr, nothing to stdout"
    _compare(path, _normalize(err))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_program_checks_to_its_golden_ir(path, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, path.parent, ["check", path.name, "--emit", "ir"])
    assert code == 0, err
    assert err == ""
    if _imports_stdlib(path):
        # The hash covers the imported stdlib text, which changes as the stdlib grows.
        out = _HASH.sub("sha256 <stdlib-dependent>", out)
    _compare(path, out)


def _golden_diagnostics() -> list[tuple[str, list[re.Match]]]:
    return [(p.name, list(_HEADER.finditer(p.with_suffix(".expected").read_text(encoding="utf-8"))))
            for p in BAD if p.with_suffix(".expected").exists()]  # fmt: skip


# Codes whose program is too big to keep in tests/programs/bad and to show in docs/errors.md:
# the test named writes one and checks what it prints.
GENERATED = {"E012": "test_a_program_over_the_size_limit_is_refused_before_it_is_parsed"}


def test_a_program_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path, monkeypatch, capsys):
    from gaugedsl.syntax.parser import MAX_PROGRAM_CHARS

    (tmp_path / "big.gauge").write_text("model big\n#" + "x" * (MAX_PROGRAM_CHARS - 11) + "\n")
    code, _, err = _run(monkeypatch, capsys, tmp_path, ["check", "big.gauge"])
    assert code == 1
    documented = ERRORS_DOC.read_text(encoding="utf-8").split("### E012", 1)[1].split("```text\n", 1)[1]
    assert documented.startswith(err), err  # the entry shows exactly this output
    # in bytes, before reading: a 50 MB file is refused at once
    (tmp_path / "huge.gauge").write_bytes(b"model huge\n#" + b"x" * 50_000_000)
    code, _, err = _run(monkeypatch, capsys, tmp_path, ["check", "huge.gauge"])
    assert code == 1 and "error[E012]: the program is 50,000,012 bytes long" in err


def test_every_error_code_has_a_bad_program():
    codes = set()
    for py in (f for d in LANGUAGE for f in d.rglob("*.py")):
        codes |= set(re.findall(r'"(E\d{3})"', py.read_text(encoding="utf-8")))
    covered = {m["code"] for _, ms in _golden_diagnostics() for m in ms} | set(GENERATED)
    assert codes, "no error codes found in the source"
    assert sorted(codes - covered) == [], "error codes without a program in tests/programs/bad"


def test_goldens_point_into_the_program_and_give_a_hint():
    for name, matches in _golden_diagnostics():
        text = (PROGRAMS / "bad" / name).with_suffix(".expected").read_text(encoding="utf-8")
        assert matches, f"{name}: no diagnostic"
        for m in matches:
            assert not os.path.isabs(m["path"]), f"{name}: absolute path in {m.group(0)}"
            assert int(m["line"]) >= 1 and int(m["col"]) >= 1
        # Every diagnostic quotes its line, puts a caret under it and ends with a hint.
        for block in re.split(r"^(?=\S+:\d+:\d+: )", text, flags=re.M):
            if not _HEADER.match(block):
                continue
            lines = block.rstrip("\n").splitlines()
            assert any(re.match(r"^ {5}\| *\^+$", line) for line in lines), f"{name}: no caret in\n{block}"
            assert any(line.startswith("  = hint: ") for line in lines), f"{name}: no hint in\n{block}"


def test_multi_error_goldens_are_sorted_by_position():
    multi = 0
    for name, matches in _golden_diagnostics():
        keys = [(m["path"], int(m["line"]), int(m["col"])) for m in matches]
        assert keys == sorted(keys), f"{name}: diagnostics not in source order"
        if len({k[1:] for k in keys}) > 2:
            multi += 1
    assert multi >= 3, "expected several files with three or more errors each"


ERRORS_DOC = Path(__file__).parent.parent / "docs" / "errors.md"
_EXAMPLE = re.compile(
    r"^<!-- example: (?P<name>[\w-]+) -->\n```gauge\n(?P<source>.*?)^```\n(?P<between>.*?)^```text\n(?P<output>.*?)^```",
    re.M | re.S,
)


def test_every_error_code_is_documented_with_its_real_output():
    """docs/errors.md has a section per code; each shows a program of tests/programs/bad and
    exactly what it prints (GAUGEDSL_UPDATE_GOLDEN=1 refreshes both from the files)."""
    text = ERRORS_DOC.read_text(encoding="utf-8")
    if UPDATE:

        def refresh(m: re.Match) -> str:
            program = PROGRAMS / "bad" / f"{m['name']}.gauge"
            source = program.read_bytes().decode("utf-8", errors="replace")
            output = program.with_suffix(".expected").read_text(encoding="utf-8")
            return f"<!-- example: {m['name']} -->\n```gauge\n{source}```\n{m['between']}```text\n{output}```"

        text = _EXAMPLE.sub(refresh, text)
        ERRORS_DOC.write_text(text, encoding="utf-8")
    documented = re.findall(r"^### (E\d{3}): ", text, re.M)
    codes = set()
    for py in (f for d in LANGUAGE for f in d.rglob("*.py")):
        codes |= set(re.findall(r'"(E\d{3})"', py.read_text(encoding="utf-8")))
    assert sorted(documented) == sorted(codes), "docs/errors.md and the codes in the source differ"
    examples = list(_EXAMPLE.finditer(text))
    assert len(examples) == len(documented) - len(GENERATED), "every code needs an example"
    for m in examples:
        program = PROGRAMS / "bad" / f"{m['name']}.gauge"
        assert m["source"] == program.read_bytes().decode("utf-8", errors="replace"), (
            f"{program.name} differs from docs/errors.md"
        )
        assert m["output"] == program.with_suffix(".expected").read_text(encoding="utf-8"), (
            f"the output of {program.name} differs from docs/errors.md"
        )
