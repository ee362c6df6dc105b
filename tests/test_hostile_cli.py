"""`exprc --at` reads a tensor as JSON numbers and nothing else: a string, a boolean or
a null in the list is a mistake said in one line (NumPy would have read "1" and true
as 1.0), and an integer past float64's range is one too, not an internal error."""

import pytest

from exprcompiler.cli import main


@pytest.mark.parametrize("value", ['[true]', '["1"]', '[1, null]', '[[1], [{"a": 1}]]', '[false, 2]'])
def test_a_list_of_other_than_numbers_is_refused(value, capsys):
    assert main(["eval", "x * y", "--at", f"x={value},y=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exprc: error: --at: ") and err.rstrip().endswith("is not a list of numbers (for x)")
    assert err.count("\n") == 1


def test_an_integer_past_float64_in_a_list_is_a_clear_error(capsys):
    assert main(["eval", "x * y", "--at", "x=[1, 1" + "0" * 400 + "],y=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exprc: error: --at: '[1, 1000") and "integer too large for a float64 (for x)" in err
    assert "internal error" not in err and err.count("\n") == 1


def test_numbers_in_nested_lists_still_read(capsys):
    assert main(["eval", "x * y", "--at", "x=[[1, 2.5e3], [NaN, -Infinity]],y=2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("f     = [[2.e+00, 5.e+03],\n [   nan,   -inf]]\n")
