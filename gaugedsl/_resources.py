"""Where the grammar and the stdlib live, in a wheel and in a source checkout alike.

A wheel carries them as `gaugedsl/_data/{grammar,stdlib}` (see `pyproject.toml`); a source
checkout or an editable install finds them at the repository's top level.
"""

from __future__ import annotations

import functools
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gaugedsl is installed without its {name}/ folder; reinstall it with `pip install .`")


@functools.cache
def grammar_path() -> Path:
    return _find("grammar") / "gauge.lark"


@functools.cache
def stdlib_dir() -> Path:
    return _find("stdlib")
