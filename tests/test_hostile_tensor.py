"""Hostile sizes for the C tensor kernels: arrays NumPy accepts whose sizes, combined in a
temporary, pass what memory (and ptrdiff_t) can hold. Empty arrays make it cheap: A of
shape (n, 0) and B of shape (0, m) hold nothing, but A @ B has n * m elements."""

import subprocess
import sys
import textwrap

import pytest

from exprcompiler.backends import c_build
from exprcompiler.backends.c_tensor import generate_c_tensor
from exprcompiler.frontend import to_trace
from conftest import HAVE_CC, NO_CC

if not HAVE_CC:
    pytest.skip(NO_CC, allow_module_level=True)

PRODUCT = "sum(tanh(A @ B))"
SHAPES = {"A": ("n", "k"), "B": ("k", "m")}


pytestmark = pytest.mark.usefixtures("private_cache")


def test_a_product_of_empty_matrices_past_int64_is_refused_not_a_crash():
    # n * m = 2**64 wrapped to 0 in the kernel's size arithmetic: a block of no doubles,
    # then the product's zeros written through it (a segmentation fault). In a child
    # process, so that a crash fails this test rather than ending the run.
    script = textwrap.dedent(f"""
        import numpy as np
        from exprcompiler import ShapeError, compile_expr
        f = compile_expr({PRODUCT!r}, shapes={SHAPES!r}, backend="c")
        assert f(np.ones((3, 0)), np.ones((0, 4))) == 0.0
        try:
            f(np.empty((2**32, 0)), np.empty((0, 2**32)))
        except ShapeError as err:
            print(err)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "'m': 4294967296" in run.stdout and "too large for f" in run.stdout


@pytest.mark.parametrize("n, m, refused", [
    (2**32, 2**32, True),          # wraps to 0
    (2**31 + 1, 2**31 + 1, True),  # wraps to a small positive number
    (2**40, 1, False),             # large, but what a C caller might hold
    (3, 0, False),
])
def test_an_exported_kernels_work_size_refuses_sizes_past_memory(n, m, refused):
    # the C caller of an exported kernel asks NAME_work(dims) first: -2, not a wrapped size
    trace = to_trace(PRODUCT, shapes=SHAPES)
    source, decl = generate_c_tensor(trace, func_name="g")
    ffi, lib = c_build.load(source, decl)
    dims = ffi.new("ptrdiff_t[]", [0, m, n])  # k, m, n: the names sorted
    need = lib.g_work(dims)
    assert need == (-2 if refused else 2 * n * m)  # two temporaries of n * m: A @ B, its tanh
