"""The bulk reverse sweep's array helpers against plain references: the stable
argsorts (passes/reverse_bulk_order.py) against NumPy's merge sort on each of their
paths; the fold's peeling of what nothing reads, counted from a sorted copy of the
arguments (reverse_bulk_fold._Readers), against a count of every variable's
readers; the op kinds read off the columns' codes (reverse_bulk._op_kinds) in the
order the ops first come; the primal's hash-consing table of the constant sweep
(reverse_bulk_share._PrimalTable) against a search of the trace. The whole sweep's
trace is held to grad_reverse's by tests/test_reverse_bulk.py and
tests/test_reverse_wired.py."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler.passes.reverse_bulk import _op_kinds
from exprcompiler.passes.reverse_bulk_fold import _drop_and_renumber, _Readers
from exprcompiler.passes.reverse_bulk_order import stable_order
from exprcompiler.passes.reverse_bulk_share import _PrimalTable
from exprcompiler.passes.reverse_bulk_write import NewInstrs
from exprcompiler.trace.columns import CODE, UNKNOWN


@pytest.mark.parametrize("n, low, high, dtype", [
    (0, 0, 5, np.int32), (1, 0, 5, np.int32), (2, 3, 4, np.int32),
    (5000, 0, 3, np.int32),               # few values: the 16-bit radix sort
    (5000, -7, 9, np.int64),              # negative keys
    (5000, 0, 1 << 16, np.int32),         # 2^16 values: still the radix sort
    (5000, 0, (1 << 16) + 1, np.int32),   # one more: the composite sort
    (20000, 0, 10 ** 6, np.int32),        # many repeats of each
    (5000, -(1 << 40), 1 << 40, np.int64),   # a wide range: still fits the composite
    (5000, -(1 << 62), 1 << 62, np.int64),   # too wide: NumPy's merge sort
])
def test_stable_order_is_numpy_stable_argsort(n, low, high, dtype):
    rng = np.random.default_rng(n + high)
    keys = rng.integers(low, high, n, endpoint=True).astype(dtype)
    if n > 100:
        keys[rng.integers(0, n, n // 3)] = keys[0]   # (long runs of one key: their order is the test)
    got = stable_order(keys)
    assert got.dtype == np.intp
    assert got.tolist() == np.argsort(keys, kind="stable").tolist()


def test_readers_count_less_taken():
    rng = np.random.default_rng(1)
    A = rng.integers(0, 50, (2, 300)).astype(np.int32)
    counts = np.bincount(A.ravel(), minlength=60).tolist()
    readers = _Readers(A)
    readers.take(7)   # (taken before it was asked)
    readers.take(7)
    readers.ask([7, 3, 59, 3])
    readers.take(3)
    readers.ask([3, 12])   # (3 asked again: not counted again)
    assert readers.reads == {7: counts[7] - 2, 3: counts[3] - 1, 59: 0, 12: counts[12]}


def _peeled(A, arity, n, lost, outputs) -> list:
    """The reference: every variable's readers counted, what reads nothing peeled off."""
    S = A.shape[1]
    reads = np.bincount(A.ravel(), minlength=n + S)
    dead = np.zeros(S, bool)
    work = list(lost)
    while work:
        v = work.pop()
        if v < n or dead[v - n] or reads[v] or v in outputs:
            continue
        dead[v - n] = True
        for k in range(int(arity[v - n])):
            reads[A[k, v - n]] -= 1
            work.append(int(A[k, v - n]))
    return dead.tolist()


@pytest.mark.parametrize("seed", range(6))
def test_drop_and_renumber_peels_what_nothing_reads(seed):
    # chains and trees of new instructions (each reads earlier ones, often the one
    # just before: a drop goes several rounds up), a few read by outputs
    rng = np.random.default_rng(seed)
    n, S = 20, 400
    out = NewInstrs(n, S)
    for p in range(S):
        v = n + p
        arity = int(rng.integers(0, 3))
        args = [v - 1 if k == 0 and p and rng.random() < 0.6 else int(rng.integers(0, v)) for k in range(arity)]
        out.put(np.array([v]), ("const", "neg", "add")[arity], [np.array([a], np.int32) for a in args])
    A, arity = out.args[:2].copy(), out.arity.copy()
    outputs = [int(v) for v in rng.integers(n, n + S, 3)]
    lost = [int(v) for v in rng.integers(n, n + S, 40)]
    want = _peeled(A, arity, n, lost, set(outputs))
    assert any(want) and not all(want)
    pos_map = _drop_and_renumber(out, n, lost, [], [], outputs)
    assert (~out.moved.keep).tolist() == want
    kept = np.flatnonzero(out.moved.keep)
    assert pos_map[n + kept].tolist() == list(range(n, n + len(kept)))
    # (the kept instructions' arguments renumbered, in place)
    for k in range(2):
        live = kept[arity[kept] > k]
        assert out.args[k, live].tolist() == pos_map[A[k, live]].tolist()


def test_op_kinds_in_order_of_first_use():
    ops = ["input", "input", "const", "mul", "sin", "mul", "add", "sin", "const", "add"]
    instrs = [(op, (), (), ()) for op in ops]
    code = np.array([CODE[op] for op in ops], np.uint8)
    op_id, kind = _op_kinds(code, instrs)
    assert list(op_id) == ["input", "const", "mul", "sin", "add"]
    assert kind.dtype == np.int32 and kind.tolist() == [op_id[op] for op in ops]
    # an op the columns do not know (registered later): read off the instructions
    code[4] = code[7] = UNKNOWN
    instrs[4] = instrs[7] = ("later_op", (), (), ())
    op_id, kind = _op_kinds(code, instrs)
    assert list(op_id) == ["input", "const", "mul", "later_op", "add"]
    assert kind.tolist() == [0, 0, 1, 2, 3, 2, 4, 3, 1, 4]


def test_primal_table_finds_the_first_instruction_of_a_key():
    ops = ["input", "input", "const", "mul", "sub", "mul", "sin", "sub", "sin", "mul", "sub", "where"]
    args = [(), (), (), (0, 1), (1, 0), (1, 0), (3,), (1, 0), (3,), (2, 0), (0, 1), (0, 1, 2)]
    op_id = {op: k for k, op in enumerate(dict.fromkeys(ops))}
    op_kind = np.array([op_id[op] for op in ops], np.int32)
    cols = np.full((3, len(ops)), -1, np.int32)
    for i, a in enumerate(args):
        cols[:len(a), i] = a
    table = _PrimalTable(op_kind, op_id, list(cols), {})

    def searched(op, key):
        for i, (o, a) in enumerate(zip(ops, args)):
            if o == op and len(a) == len(key) and (sorted(a) == sorted(key) if op == "mul" else a == key):
                return i
        return None

    asked = [("mul", (0, 1)), ("mul", (1, 0)), ("mul", (0, 2)), ("mul", (1, 1)), ("sub", (1, 0)), ("sub", (0, 1)),
             ("sub", (2, 0)), ("sin", (3,)), ("sin", (4,)), ("cos", (3,)), ("where", (0, 1, 2))]
    for op, key in asked:
        want = None if op == "where" else searched(op, key)   # (three arguments: never in the table)
        assert table(op, list(key)) == want, (op, key)
    assert table("mul", [0, 1]) == 3 and table("sub", [1, 0]) == 4 and table("sin", [3]) == 6
