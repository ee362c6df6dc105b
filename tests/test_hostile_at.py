"""`exprc --at` with a decimal number past float64's range: float() would read 1e999 as
an infinity the user never wrote (and the expression parser refuses such numbers);
it is refused in one line, while inf, Infinity and NaN still read as written."""

import pytest

from exprcompiler.cli import main


@pytest.mark.parametrize("value, shown", [
    ("1e999", "'1e999'"),
    ("-1e999", "'-1e999'"),
    ("1" + "0" * 400, "'1000000"),     # digits, no exponent: float() gives inf as well
    ("[1, 1e999]", "'1e999'"),          # inside a list, the number itself is shown
    ("[[2.5], [-1E400]]", "'-1E400'"),
])
def test_a_number_past_float64_is_refused_not_read_as_infinite(value, shown, capsys):
    assert main(["eval", "x * y", "--at", f"x={value},y=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"exprc: error: --at: {shown}") and "past float64's range" in err
    assert err.rstrip().endswith("(for x)") and err.count("\n") == 1


@pytest.mark.parametrize("value", ["inf", "-inf", "+Infinity", "INF", "[Infinity, -Infinity]"])
def test_an_infinity_written_as_one_still_reads(value, capsys):
    assert main(["eval", "x * y", "--at", f"x={value},y=2"]) == 0
    assert "inf" in capsys.readouterr().out


def test_numbers_near_the_limits_read_as_before(capsys):
    assert main(["eval", "x * y", "--at", "x=1.7e308,y=1e-999"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("0.0")
