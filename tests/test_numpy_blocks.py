"""The NumPy backend's blocks (numpy_run.block_for): a generated function holds
every line's array until it returns, so a large one runs a batch in blocks small
enough that those arrays stay within numpy_run.MEMORY, with the same results."""

import numpy as np

from exprcompiler import compile_grad
from exprcompiler.backends import numpy_backend, numpy_run
from exprcompiler.randexpr import random_program


def test_block_for_keeps_a_calls_arrays_within_the_budget():
    lines = "\n".__mul__
    assert numpy_backend.block_for(lines(10)) == numpy_backend.BLOCK
    assert numpy_backend.block_for(lines(8192)) == numpy_backend.BLOCK
    for k in (8193, 10**5, 3 * 10**5):
        b = numpy_backend.block_for(lines(k))
        assert b < numpy_backend.BLOCK and 8 * k * b <= numpy_backend.MEMORY < 8 * k * (b + 1)
    assert numpy_backend.block_for(lines(3 * 10**6)) == 64


def test_a_large_function_runs_in_smaller_blocks_with_the_same_results(monkeypatch):
    program = random_program(300, seed=3)
    whole = compile_grad(program)
    lines = whole.source.count("\n")
    monkeypatch.setattr(numpy_run, "MEMORY", 8 * lines * 100)   # blocks of 100 points
    blocked = compile_grad(program)
    blocks, original = [], numpy_run._blocked

    def recording(fn, arrays, batch, outs=None, block=numpy_backend.BLOCK):
        blocks.append(block)
        return original(fn, arrays, batch, outs, block)
    monkeypatch.setattr(numpy_run, "_blocked", recording)
    X = np.random.default_rng(0).uniform(0.5, 1.5, (len(whole.inputs), 1001))
    want = whole(*X)
    assert blocks == []   # 1001 points: one piece for the small budget's twin
    got = blocked(*X)
    assert blocks == [100]
    assert np.array_equal(got[0], want[0])
    for g, w in zip(got[1], want[1]):
        assert np.array_equal(g, w)
