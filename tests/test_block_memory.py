"""Blocked NumPy calls (backends/numpy_run.py, runtime_blocks.py) and the heap they
keep (heap_release.keep_heap): the same bits as the unblocked evaluation at sizes
around the block boundaries, in float32 too, from threads calling one function at
once; and, in a fresh process on glibc, no page faults a call once the first call
has run (the blocks' temporaries given back and taken again at every block before)."""

import os
import platform
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian
from exprcompiler import runtime
from exprcompiler.backends import numpy_run
from exprcompiler.heap_release import KEEP_MAX, keep_heap
from exprcompiler import runtime_blocks

B = numpy_run.BLOCK
SIZES = [0, 1, B - 1, B, B + 1, 2 * B - 1, 2 * B, 2 * B + 1, 3 * B + 5]
GRAD = "sin(x)*exp(-y) + log(1 + x*x)*sqrt(y*y + 1) + x*y"
STABLE = "log(1 + exp(x)) + sqrt(x*x + y) - x*y"   # (a runtime helper: softplus_pair)


def _unblocked(g):
    """The generated function itself, called on whole arrays: no numpy_run blocks."""
    namespace = {}
    exec(g.source, namespace)   # (our generated text)
    return next(v for k, v in namespace.items() if k.startswith("f_"))


def _flat(result) -> list:
    if isinstance(result, tuple):
        return [a for r in result for a in _flat(r)]
    return [result]


def _same_bits(got, want, n: int, dtype) -> None:
    got, want = _flat(got), _flat(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.broadcast_to(np.asarray(w, dtype=dtype), (n,) + np.shape(w)[1:] if np.ndim(w) else (n,))
        assert g.dtype == dtype and g.shape == w.shape
        assert np.array_equal(g.view(np.uint8), np.ascontiguousarray(w).view(np.uint8))


def _points(n: int, k: int, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-3, 3, n).astype(dtype) for _ in range(k)]
    xs[-1] = np.abs(xs[-1]) + dtype(0.25)   # (y > 0: no NaN to compare)
    return xs


@pytest.mark.parametrize("expr,stable", [(GRAD, False), (STABLE, True)])
@pytest.mark.parametrize("n", SIZES)
def test_blocked_bits_equal_the_unblocked_evaluation(expr, stable, n):
    g = compile_grad(expr, stable=stable)
    f = _unblocked(g)
    xs = _points(n, len(g.inputs), seed=n)
    with np.errstate(all="ignore"):
        _same_bits(g(*xs), f(*xs), n, np.float64)
        out = (np.empty(n), tuple(np.empty(n) for _ in g.inputs))
        _same_bits(g(*xs, out=out), f(*xs), n, np.float64)


@pytest.mark.parametrize("n", [2 * B - 1, 2 * B, 3 * B + 5])
def test_blocked_hessian_bits(n):
    h = compile_hessian("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")
    xs = _points(n, 2, seed=1)
    got = h(*xs)
    want = [h(*(x[k:k + B] for x in xs)) for k in range(0, n, B)]   # pieces below two blocks: unblocked
    for j, g in enumerate(got):
        assert np.array_equal(g, np.concatenate([w[j] for w in want]))


@pytest.mark.parametrize("n", [B + 1, 2 * B, 3 * B + 5])
def test_float32_blocked_bits(n):
    g = compile_grad(GRAD, dtype="float32")
    f = _unblocked(g)
    xs = _points(n, 2, np.float32, seed=2)
    with np.errstate(all="ignore"):
        _same_bits(g(*xs), f(*xs), n, np.float32)


@pytest.mark.parametrize("n", [2 * runtime_blocks._BLOCK - 1, 2 * runtime_blocks._BLOCK,
                               2 * runtime_blocks._BLOCK + 1, 3 * runtime_blocks._BLOCK + 5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_runtime_helper_blocks_bits(n, dtype):
    """runtime_blocks._blocked (whole arrays: tensor programs, the interpreter) against
    the helper on the whole array unblocked."""
    x = np.random.default_rng(3).uniform(-40, 40, n).astype(dtype)
    for helper in (runtime.softplus_pair, runtime.softplus):
        got, want = helper(x), helper.__wrapped__(x)
        for a, b in zip(_flat(got), _flat(want)):
            assert a.dtype == b.dtype == dtype and np.array_equal(a, b)


def test_threads_calling_one_function_at_once():
    g = compile_grad(GRAD)
    n = 3 * B + 5
    inputs = [_points(n, 2, seed=10 + k) for k in range(6)]
    want = [g(*xs) for xs in inputs]
    got = [None] * len(inputs)
    start = threading.Barrier(len(inputs))

    def work(k):
        start.wait()
        for _ in range(3):
            got[k] = g(*inputs[k])
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(got, want):
        for x, y in zip(_flat(a), _flat(b)):
            assert np.array_equal(x, y)


def test_results_of_successive_calls_do_not_share_memory():
    """A call's results are its own: the heap's memory kept for the next call is
    freed memory only (what a reuse of buffers across calls would break)."""
    g = compile_grad(GRAD)
    n = 3 * B + 5
    a, b = _points(n, 2, seed=4), _points(n, 2, seed=5)
    first = g(*a)
    kept = [r.copy() for r in _flat(first)]
    second = g(*b)
    for r, k in zip(_flat(first), kept):
        assert np.array_equal(r, k)
        assert not any(np.shares_memory(r, s) for s in _flat(second))


def test_arrays_of_a_generated_function():
    g = compile_grad(GRAD)
    f = _unblocked(g)
    assert numpy_run._arrays_of(f) == f.__code__.co_nlocals
    assert numpy_run._arrays_of(len) == KEEP_MAX   # (no code: a program's size is unknown)


def test_keep_heap_frees_at_most_once_per_size(monkeypatch):
    from exprcompiler import heap_release
    made = []
    monkeypatch.setattr(heap_release, "_kept", 0)
    monkeypatch.setattr(np, "empty", lambda n, dtype=None: made.append(n))
    keep_heap(1 << 20)
    keep_heap(1 << 19)
    keep_heap(1 << 20)
    keep_heap(1 << 30)
    assert made == [(1 << 20) - heap_release._SLACK, KEEP_MAX - heap_release._SLACK]


_FAULTS = textwrap.dedent("""
    import resource, numpy as np
    from exprcompiler import compile_grad
    g = compile_grad({expr!r})
    n = {n}
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, n)
    out = (np.empty(n), (np.empty(n), np.empty(n)))   # (kept: no large array is ever freed)
    faults = []
    for _ in range(4):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        g(x, y, out=out)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    print(min(faults[1:]))
""")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's heap thresholds")
def test_no_page_faults_a_call_in_a_fresh_process():
    """A fresh process that frees no large array: the blocks' temporaries used to go
    back to the system at the end of every block (~1,000 faults a call at 10⁵ points,
    ~4,400 at 10⁶); with keep_heap the later calls take none (a few allowed)."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", _FAULTS.format(expr=GRAD, n=10**5)], env=env,
                          capture_output=True, text=True, check=True, cwd=str(root))
    assert int(done.stdout.split()[-1]) < 50

