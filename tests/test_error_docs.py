"""docs/errors.md documents every diagnostic code gaugedsl can emit, from every stage (the
checker's codes, and those of design, lowering, the simulator and the geometry checks), so
that a new code cannot be added without its entry.

The checker's codes (E0xx–E602) are also tied to programs in tests/programs/bad by
`test_programs.py`; later-stage entries carry the command that reports them in their heading,
e.g. `### E704 (bias, run, design): ...`.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
SOURCE = ROOT / "gaugedsl"
ERRORS_DOC = ROOT / "docs" / "errors.md"

# A code as the source writes it: error("E603", ...), warning("W811", ...), _err("E605", ...).
_CODE = re.compile(r"""["']([EW]\d{3})["']""")
# An entry's heading: `### E201: ...` or `### E704 (bias, run, design): ...`.
_HEADING = re.compile(r"^### ([EW]\d{3})\b", re.M)


def _codes_in_source() -> set[str]:
    codes: set[str] = set()
    for py in SOURCE.rglob("*.py"):
        codes |= set(_CODE.findall(py.read_text(encoding="utf-8")))
    return codes


def _documented() -> list[str]:
    return _HEADING.findall(ERRORS_DOC.read_text(encoding="utf-8"))


def test_every_code_in_the_source_has_an_entry_in_errors_md():
    codes = _codes_in_source()
    assert len(codes) > 100, "expected to find the diagnostic codes in gaugedsl/"
    assert {"E603", "E704", "E811", "W601", "W811", "W903"} <= codes, "the code pattern no longer matches the source"
    missing = sorted(codes - set(_documented()))
    assert missing == [], f"codes used in gaugedsl/ but without a `### CODE` entry in docs/errors.md: {missing}"


def test_errors_md_documents_only_codes_that_exist_and_each_once():
    documented = _documented()
    duplicates = sorted({c for c in documented if documented.count(c) > 1})
    assert duplicates == [], f"codes with more than one entry in docs/errors.md: {duplicates}"
    stale = sorted(set(documented) - _codes_in_source())
    assert stale == [], f"docs/errors.md documents codes that gaugedsl/ no longer uses: {stale}"
