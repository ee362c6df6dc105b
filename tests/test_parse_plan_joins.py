"""When a statement form gets its plan (parse/plans.py): once a window's plans run (a
form of WORTH statements there), a form with half as many gets its plan at its first
statement too; a window with no such form reads every statement, as before. The
trace is the expression loop's either way."""

from __future__ import annotations

import pytest

from exprcompiler.parse import plans
from test_parse_plans import count_reads, outcome, without_plans


def program(a_count: int, b_count: int) -> str:
    """a_count statements of one form, then b_count of another, then the output."""
    lines = ["a0 = x * y"]
    lines += [f"a{k} = sin(a{k - 1}) * y" for k in range(1, a_count + 1)]
    lines += [f"b{k} = cos({f'a{a_count}' if k == 1 else f'b{k - 1}'}) + x" for k in range(1, b_count + 1)]
    return "\n".join(lines + [f"b{b_count}"])


@pytest.fixture(autouse=True)
def defaults(monkeypatch):
    monkeypatch.setattr(plans, "WORTH", 16)
    monkeypatch.setattr(plans, "RECORD_AT", 16)


def test_a_form_of_half_worth_joins_the_plans_of_its_window(monkeypatch):
    text = program(16, 8)
    # read: the first statement (its own form) and the output; both forms recorded at
    # their first statement, every other statement replayed
    assert count_reads(monkeypatch, text) == (2, 2)
    assert outcome(text) == without_plans(monkeypatch, text)


def test_a_form_of_fewer_is_read(monkeypatch):
    text = program(16, 7)
    assert count_reads(monkeypatch, text) == (2 + 7, 1)
    assert outcome(text) == without_plans(monkeypatch, text)


def test_a_window_whose_plans_do_not_run_reads_every_statement(monkeypatch):
    text = program(15, 8)   # (no form of WORTH statements: a short text gets no plans)
    assert count_reads(monkeypatch, text) == (1 + 15 + 8 + 1, 0)
    assert outcome(text) == without_plans(monkeypatch, text)
