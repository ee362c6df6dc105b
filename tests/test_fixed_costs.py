"""Fixed costs of text -> gradient, cut per process (trace/builder.py's input-size
limit asked of the system once): behaviour only, the same limits and traces as before."""

import os

import pytest

from exprcompiler.errors import InputTooLarge
from exprcompiler.parse import parse
from exprcompiler.trace import builder
from exprcompiler.trace.ir import BYTES_PER_OP, MAX_OPS_ENV, max_ops_limit


def _from_system() -> int:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(builder._MIN_DEFAULT_MAX_OPS, memory // BYTES_PER_OP)


def test_default_limit_is_the_machines_before_and_after_it_is_kept(monkeypatch):
    monkeypatch.delenv(MAX_OPS_ENV, raising=False)
    monkeypatch.setattr(builder, "_DEFAULT_MAX_OPS", [])   # (not asked yet in this process)
    assert max_ops_limit() == _from_system()
    assert builder._DEFAULT_MAX_OPS == [_from_system()]
    assert max_ops_limit() == _from_system()   # (kept)
    assert max_ops_limit(123) == 123


def test_environment_variable_is_read_at_every_call(monkeypatch):
    monkeypatch.delenv(MAX_OPS_ENV, raising=False)
    default = max_ops_limit()   # (the machine's, kept from here on)
    monkeypatch.setenv(MAX_OPS_ENV, "1_000")
    assert max_ops_limit() == 1000
    monkeypatch.setenv(MAX_OPS_ENV, "many")
    with pytest.raises(InputTooLarge, match="is not a whole number"):
        max_ops_limit()
    monkeypatch.delenv(MAX_OPS_ENV)
    assert max_ops_limit() == default


def test_limit_set_after_the_default_was_kept_still_refuses(monkeypatch):
    monkeypatch.delenv(MAX_OPS_ENV, raising=False)
    text = "\n".join(f"t{k} = sin(t{k - 1}) * x" for k in range(1, 40)).replace("t0", "x") + "\nt39"
    small = parse(text)   # (kept the machine's limit)
    monkeypatch.setenv(MAX_OPS_ENV, "10")
    with pytest.raises(InputTooLarge):
        parse(text)
    monkeypatch.delenv(MAX_OPS_ENV)
    again = parse(text)
    assert again.instrs == small.instrs and again.outputs == small.outputs


@pytest.mark.parametrize("n_ops", [10, 100, 1000])
def test_traces_identical_in_a_process_first_and_again(n_ops):
    from exprcompiler.bench.suite_scaling import random_dag
    text = random_dag(n_ops, seed=1)
    first, second = parse(text), parse(text)
    assert first.instrs == second.instrs and first.outputs == second.outputs
    assert first.inputs == second.inputs
