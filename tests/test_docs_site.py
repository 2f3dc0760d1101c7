"""The documentation site (mkdocs.yml) covers every page and the API reference every public name.

Plain text only: neither mkdocs nor the package is imported, and nothing is built (`.ci/run`
builds the site with `mkdocs build --strict`).
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _exports() -> dict[str, str]:
    """The public names `gaugedsl/__init__.py` exports, each with the module that defines it."""
    tree = ast.parse((ROOT / "gaugedsl" / "__init__.py").read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                name = alias.asname or alias.name
                if not name.startswith("_"):
                    names[name] = f"gaugedsl.{node.module}.{alias.name}"
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "__all__":
                    for name in ast.literal_eval(node.value):
                        names.setdefault(name, f"gaugedsl.{name}")
    return names


def _api_module_names() -> list[str]:
    """The public classes and functions defined in gaugedsl/api.py."""
    tree = ast.parse((ROOT / "gaugedsl" / "api.py").read_text(encoding="utf-8"))
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_")
    ]


def _nav_pages() -> list[str]:
    """The .md files the nav of mkdocs.yml names, in order."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = re.search(r"^nav:\n((?:[ \t]+.*\n|\n)+)", text, re.MULTILINE)
    assert nav, "mkdocs.yml has no nav section"
    return re.findall(r":\s*(\S+\.md)\s*$", nav.group(1), re.MULTILINE)


def _directives() -> set[str]:
    return set(re.findall(r"^::: *(\S+)", (DOCS / "api.md").read_text(encoding="utf-8"), re.MULTILINE))


def test_exports_found():
    # the parse above must see the package's exports, or the next test proves nothing
    assert {"load", "Model", "RunResult", "GaugeError"} <= set(_exports())


def test_api_reference_documents_every_exported_name():
    directives = _directives()
    missing = [
        name for name, where in _exports().items() if where not in directives and f"gaugedsl.{name}" not in directives
    ]
    assert not missing, f"docs/api.md has no `::: ...` block for {missing}"


def test_api_reference_documents_every_public_name_of_gaugedsl_api():
    directives = _directives()
    missing = [name for name in _api_module_names() if f"gaugedsl.api.{name}" not in directives]
    assert not missing, f"docs/api.md has no `::: gaugedsl.api.NAME` block for {missing}"


def test_api_reference_names_the_version():
    assert "__version__" in (DOCS / "api.md").read_text(encoding="utf-8")


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = _nav_pages()
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(set(nav)) == sorted(nav), f"a page is in the nav twice: {nav}"
    assert sorted(nav) == pages, f"nav {sorted(nav)} != docs/*.md {pages}"
    assert nav[:2] == ["index.md", "tutorial.md"] and nav[-1] == "api.md"


def test_site_settings():
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for line in ("docs_dir: docs", "site_dir: site", "name: material", "- search", "- mkdocstrings:"):
        assert line in text, line
    assert re.search(r"^/?site/?$", (ROOT / ".gitignore").read_text(encoding="utf-8"), re.MULTILINE)
