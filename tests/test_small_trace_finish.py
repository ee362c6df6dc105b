"""A small trace's finish takes Python paths where NumPy's fixed costs exceed the work
(ir_trace.primal_labels below _SMALL_LABELS instructions, columns.made's count of the
arguments below _SUM_IN_PYTHON): each must give what the NumPy path gives, bit for bit,
on traces around its threshold (the oracle: the same call with the threshold moved so
that the other path runs, and labels.numbered, the NumPy path itself).

Random traces, not parsed ones, so that what a parse never makes is covered too: inputs
after operations, constants anywhere, an op the columns' table does not hold (one
registered later: code UNKNOWN), instructions of 256 arguments or more, no inputs."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from exprcompiler.parse import parse
from exprcompiler.trace import columns, ir_trace
from exprcompiler.trace.ir import Instr
from exprcompiler.trace.labels import Labels, numbered

_OPS = ("input", "const", "copy", "add", "mul", "sin", "neg", "hypot", "not_an_op")


@st.composite
def traces(draw, around: int):
    """Instructions (tuples, as a builder's) of about `around` variables: ops, arguments
    (earlier variables, any number where the op is hypot), names of inputs."""
    n = draw(st.integers(max(0, around - 40), around + 40))
    kinds = draw(st.lists(st.sampled_from(_OPS), min_size=n, max_size=n))
    instrs = []
    for i, op in enumerate(kinds):
        if op == "input" or not i:
            instrs.append(Instr("input", (), (("name", f"x{i}"),)))
        elif op == "const":
            instrs.append(Instr("const", (), (("value", float(i)),)))
        else:
            many = draw(st.sampled_from((1, 2, 3, 300))) if op == "hypot" else 1 if op in ("copy", "sin", "neg") else 2
            instrs.append(Instr(op, tuple(draw(st.lists(st.integers(0, i - 1), min_size=many, max_size=many)))))
    return instrs


def labels_bits(labels: Labels):
    """Everything a Labels holds, typecodes included."""
    return labels.kinds, labels.indexes.typecode, labels.indexes.tobytes(), sorted(labels.odd.items())


def both_labels(monkeypatch, instrs, code):
    """primal_labels(instrs, code) by the Python path and by the NumPy path."""
    monkeypatch.setattr(ir_trace, "_SMALL_LABELS", 1 << 40)
    small = ir_trace.primal_labels(instrs, code)
    monkeypatch.setattr(ir_trace, "_SMALL_LABELS", 0)
    large = ir_trace.primal_labels(instrs, code)
    monkeypatch.undo()
    return small, large


@pytest.mark.parametrize("around", [ir_trace._SMALL_LABELS if hasattr(ir_trace, "_SMALL_LABELS") else 64, 8])
def test_primal_labels_paths_agree(around):
    # (a fixture a test that @given runs cannot take: monkeypatch made per example)
    @settings(max_examples=examples(60), deadline=None)
    @given(traces(around), st.sampled_from(("none", "uint8", "int64", "list")))
    def check(instrs, how):
        code = np.frombuffer(columns.op_code_bytes(instrs), np.uint8)
        given_code = {"none": None, "uint8": code, "int64": code.astype(np.int64), "list": code.tolist()}[how]
        with pytest.MonkeyPatch.context() as mp:
            small, large = both_labels(mp, instrs, given_code)
        assert labels_bits(small) == labels_bits(large)
        assert small == large
        inputs = [i for i, ins in enumerate(instrs) if ins.op == "input"]
        assert labels_bits(small) == labels_bits(numbered(code, [instrs[i].name for i in inputs]))
    check()


def test_primal_labels_thresholds_on_parsed_traces(monkeypatch):
    # traces a parse makes, on both sides of the threshold: the labels a parse gives
    # are those of either path
    for n in (1, 3, 20, 40, 60, 70, 100, 300):
        from exprcompiler.bench.suite_scaling import random_dag
        trace = parse(random_dag(n, seed=n))
        small, large = both_labels(monkeypatch, trace.instrs, columns.made(trace.instrs).code)
        assert labels_bits(small) == labels_bits(large) == labels_bits(trace.labels)


def test_primal_labels_runs_no_import(monkeypatch):
    # (an import statement in it ran the import machinery on every front end's finish)
    instrs = parse("sin(x) * y + 1").instrs
    ir_trace.primal_labels(instrs)   # (its tables made at the first call)
    calls = []
    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    ir_trace.primal_labels(instrs)
    ir_trace.primal_labels(instrs, columns.made(instrs).code)
    monkeypatch.undo()
    assert calls == []


@pytest.mark.parametrize("around", [columns._SUM_IN_PYTHON if hasattr(columns, "_SUM_IN_PYTHON") else 256, 8])
def test_made_paths_agree(around):
    @settings(max_examples=examples(30), deadline=None)
    @given(traces(around))
    def check(instrs):
        made = {}
        for side, at in (("python", 1 << 40), ("numpy", 0)):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(columns, "_SUM_IN_PYTHON", at)
                made[side] = columns.made(instrs)
        for a, b in zip(made["python"], made["numpy"]):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes() and not a.flags.writeable
        assert made["python"].flat.tolist() == [a for ins in instrs for a in ins.args]
    check()
