"""The C tensor kernels' `threads` argument: a matrix product's rows are split over
threads only when there are several; one thread runs the same loop without entering
an OpenMP parallel region (c_tensor_ops._parallel), and both give the same bits."""

import numpy as np

from exprcompiler.backends import c_build
from exprcompiler.backends.c_tensor import generate_c_tensor
from exprcompiler.frontend import to_trace

# matrix·vector over a named dimension and matrix·matrix: loops split over threads;
# matrix·vector over 3 rows (fewer than a block of 4): one thread
PRODUCTS = "sum(A @ v) + sum(S @ v) + sum(A @ B)"
SHAPES = {"A": ("n", 5), "S": (3, 5), "v": (5,), "B": (5, 6)}


def _source():
    return generate_c_tensor(to_trace(PRODUCTS, SHAPES), func_name="f")


def test_one_thread_never_enters_a_parallel_region():
    lines = [ln.strip() for ln in _source()[0].splitlines()]
    starts = [k for k, ln in enumerate(lines) if ln.startswith("#pragma omp parallel")]
    assert len(starts) == 2
    for k in starts:
        assert lines[k - 1] == "if (threads > 1) {" and "if(" not in lines[k]
        end = lines.index("} else {", k)
        loop = lines[k + 1:end]
        assert lines[end + 1:end + 1 + len(loop)] == loop   # the same loop, as it is
        assert lines[end + 1 + len(loop)] == "}"


def test_one_and_two_threads_give_the_same_bits():
    source, decl = _source()
    ffi, lib = c_build.load(source, decl)
    rng = np.random.default_rng(3)
    n = 37   # not a multiple of the blocks of 4 rows
    A, S, v, B = rng.normal(size=(n, 5)), rng.normal(size=(3, 5)), rng.normal(size=5), rng.normal(size=(5, 6))
    arrays = {"A": A, "S": S, "v": v, "B": B}
    trace = to_trace(PRODUCTS, SHAPES)
    ins = [ffi.from_buffer("double[]", arrays[name]) for name in trace.input_names]
    values = []
    for threads in (1, 2, 1):
        out = ffi.new("double[1]")
        assert lib.f(ffi.new("ptrdiff_t[]", [n]), threads, *ins, out) == 0
        values.append(out[0])
    assert values[0] == values[1] == values[2]
    assert np.isclose(values[0], np.sum(A @ v) + np.sum(S @ v) + np.sum(A @ B), rtol=1e-13)
