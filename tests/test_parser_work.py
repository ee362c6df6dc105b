"""The parser's work on junk grows linearly with its length, counted, not timed
(issue 17: a wall-clock bound failed on a loaded machine). The work is the number of
Python and C function calls the parse makes (sys.setprofile), which does not depend
on the machine's load; four times the text may cost at most about four times the
calls. The same junk at a million characters is tests/test_parser.py's slow test."""

from __future__ import annotations

import sys

import pytest

from exprcompiler.errors import ParseError
from exprcompiler.parse import parse

JUNK = {  # the shapes of test_parser.test_a_million_characters_of_junk_fails_fast
    "bad-chars": lambda n: "@" * n,
    "trailing-plus": lambda n: "x+" * (n // 2),
    "no-operators": lambda n: "x " * (n // 2),
    "open-parens": lambda n: "(" * n,
    "close-parens": lambda n: ")" * n,
    "bad-number": lambda n: "1" * (n - 1) + "e",
    "long-unknown-function": lambda n: "a" * (n - 3) + "(x)",
    "open-calls": lambda n: "sin(" * (n // 4),
}


def calls_to_refuse(text: str) -> int:
    """Function calls made by parse(text), which must raise ParseError."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1
    sys.setprofile(profile)
    try:
        parse(text)
    except ParseError:
        pass
    else:
        pytest.fail("junk was accepted")
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("make", JUNK.values(), ids=JUNK.keys())
def test_the_parsers_work_on_junk_is_linear_in_its_length(make):
    small, large = calls_to_refuse(make(1_000)), calls_to_refuse(make(4_000))
    assert large <= 4.4 * small + 50, (small, large)  # quadratic work would give 16x
    assert large <= 60 * 4_000  # and a few dozen calls per character at most (25 today)
