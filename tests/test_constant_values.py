"""Arithmetic on two numbers with no finite value (`1/0`, `0^-1`, `(-8)^0.5`, `2.0^2000`) is E319 at
its span in `check`, not inf or NaN in every step of a run (issue 20 item 6)."""

import pytest

from gaugedsl.check import check_text
from gaugedsl.diagnostics import GaugeError


@pytest.mark.parametrize("expr", ["1/0", "0^-1", "(-8)^0.5", "2.0^2000", "(1 - 1)^(0 - 2)"])
def test_arithmetic_on_numbers_with_no_finite_value_is_refused_where_written(expr):
    with pytest.raises(GaugeError) as e:
        check_text(f"model m\nlet c = {expr}\nparam u : R = 1\nloss = u^2 + c\n", "<c>")
    d = e.value.diagnostics[0]
    assert d.code == "E319" and d.span.line == 2 and d.span.column == 9


@pytest.mark.parametrize("expr", ["1/3", "2^0.5", "(-8)^2", "0^0", "10^300"])
def test_finite_arithmetic_on_numbers_still_folds(expr):
    check_text(f"model m\nlet c = {expr}\nparam u : R = 1\nloss = u^2 + c\n", "<c>")


def test_an_integer_literal_of_thousands_of_digits_is_read_or_refused_never_a_crash():
    # Python reads no int of over 4,300 digits: leading zeros are stripped first, and a long one
    # is E318 (too large) before it is read
    check_text("model m\nparam u : R = " + "0" * 5000 + "1\nloss = u^2\n", "<n>")
    with pytest.raises(GaugeError) as e:
        check_text("model m\nparam u : R = " + "9" * 5000 + "\nloss = u^2\n", "<n>")
    assert e.value.diagnostics[0].code == "E318"
