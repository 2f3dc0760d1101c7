"""An installed (non-editable) gaugedsl carries its grammar and stdlib inside the package, as
gaugedsl/_data/grammar/gauge.lark and gaugedsl/_data/stdlib/*.gauge (pyproject.toml's
force-include). Skipped when gaugedsl is not installed, or installed in editable mode, where
the files come from the source tree instead."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest


def _installed_distribution():
    try:
        dist = importlib.metadata.distribution("gaugedsl")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("gaugedsl is not installed (tests run from the source tree)")
    direct = dist.read_text("direct_url.json")
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        pytest.skip("gaugedsl is installed in editable mode")
    files = {str(f).replace("\\", "/"): f for f in dist.files or ()}
    if "gaugedsl/__init__.py" not in files:
        pytest.skip("gaugedsl's installed files are not listed (editable or unusual install)")
    return dist, files


def test_installed_package_ships_the_grammar_and_the_stdlib():
    dist, files = _installed_distribution()
    grammar = "gaugedsl/_data/grammar/gauge.lark"
    assert grammar in files
    stdlib = sorted(p for p in files if p.startswith("gaugedsl/_data/stdlib/") and p.endswith(".gauge"))
    assert stdlib, "no stdlib .gauge files in the distribution"
    assert "gaugedsl/_data/stdlib/rescaling.gauge" in stdlib
    # The listed files exist where they were installed.
    for path in [grammar, *stdlib]:
        assert Path(dist.locate_file(files[path])).is_file(), path
