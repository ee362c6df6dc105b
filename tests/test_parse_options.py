"""An option's value (axis=0, keepdims=True, shape=(3, -1)) is a constant: an operator
after it is refused where the parser used to apply it to the call's last argument
(sum(x, axis=0 + y) was sum(x + y, axis=0)) or to fail with an IndexError."""

from __future__ import annotations

import pytest

from exprcompiler.errors import ParseError
from exprcompiler.parse import parse

SHAPES = {"x": (3,), "y": (3,)}


@pytest.mark.parametrize("text, col", [
    ("sum(x, axis=0 + y)", 15),
    ("sum(x, axis=0 - 1)", 15),
    ("sum(x, keepdims=True * y)", 22),
    ("sum(axis=0* (x))", 11),
    ("mean(x, axis=(0,)\n ** 2)", 2),
])
def test_an_operator_after_an_option_is_refused(text, col):
    with pytest.raises(ParseError, match="after the option .*=...: an option's value is a constant") as info:
        parse(text, SHAPES)
    assert info.value.col == col


def test_options_still_end_at_a_comma_or_parenthesis():
    assert str(parse("sum(x, axis=0) + sum(y, axis=0, keepdims=False)", SHAPES)).count("sum(") == 2
    with pytest.raises(ParseError, match="missing operator between 'axis' and '1'"):
        parse("sum(x, axis=0 1)", SHAPES)
