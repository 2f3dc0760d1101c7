"""The grammar is LALR(1) without conflicts and ships with the package."""

import lark

from gaugedsl._resources import grammar_path


def test_grammar_builds_in_strict_mode():
    # strict=True turns shift/reduce conflicts and terminal collisions into errors.
    lark.Lark(grammar_path().read_text(), parser="lalr", lexer="contextual", strict=True)


def test_every_terminal_is_named():
    text = grammar_path().read_text()
    rules = [line for line in text.splitlines() if ":" in line and not line.lstrip().startswith("//")]
    # Anonymous terminals are string literals inside rules (lowercase rule names).
    for line in rules:
        head, _, body = line.partition(":")
        if head.strip() and head.strip()[0].islower() or head.startswith((" ", "|")):
            assert '"' not in body, f"anonymous terminal in rule line: {line}"
