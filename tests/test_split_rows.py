"""Vector-extension split kernels (c_split above VECTOR_UP_TO, with ROWS_FROM outputs
or more) store each output's lanes straight to their points' rows (c_split.ROWS,
c_driver's xc_rows) and call libmvec's vector variants by name (c_split.MVEC): the same
bits as the `omp simd` parts of the same trace and as vector-extension parts that pass
their outputs through the tape (the one-function kernel runs a batch's last points as
scalar code, whose libm may differ in the last bit), for a Jacobian's block (outputs
side by side), a gradient's separate arrays (scratch rows copied out), batches that end
in a partial vector and block, and the one-point entry."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_jacobian
from exprcompiler.backends import c_backend, c_build, c_split

EXPRS = ["sin(x*y) + exp(-z**2) * x", "x / (1 + y**2) - cos(z * x) + sqrt(1 + z**2) * x**3 + tanh(y)"]
PROGRAM = "a = sin(x) * cos(y)\nb = log(1 + a*a) + atan(z * x)\na * b + atan2(z, x) + tanh(b) + sigmoid(y)"


def built(monkeypatch, make, lanes: bool = True, rows_from: int = 0):
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
    monkeypatch.setattr(c_backend, "PART", 6)
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 0 if lanes else 10**9)
    monkeypatch.setattr(c_split, "ROWS_FROM", rows_from)
    return make()


def points(n: int):
    rng = np.random.default_rng(n)
    return [rng.uniform(-2, 2, n) for _ in range(3)]


@pytest.mark.parametrize("kind", ["jacobian", "gradient"])
def test_vector_extension_parts_store_outputs_to_rows_bit_for_bit(monkeypatch, tmp_path, kind):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    if kind == "jacobian":
        def make():
            return compile_jacobian(EXPRS, wrt=["x", "y", "z"], backend="c", threads=1)
    else:
        def make():
            return compile_grad(PROGRAM, backend="c", threads=1)
    split, whole = built(monkeypatch, make), built(monkeypatch, make, lanes=False)
    tape = built(monkeypatch, make, rows_from=10**9)   # the lanes' outputs through the tape
    assert c_split.UNIT_MARK in split.source and "XC_OUT(0, " in split.source
    assert "XC_OUT(" not in whole.source and "#pragma omp simd\n        for (ptrdiff_t j" in whole.source
    assert "XC_OUT(" not in tape.source and "XC_ST(xc_f + " in tape.source
    for n in (1, 3, 4, 5, 17, 2 * c_backend.BLOCK + 5):   # partial vectors and blocks
        args = points(n)
        got, want = split(*args), whole(*args)
        flat = [np.asarray(v) for v in (got[0], *(got[1] if kind == "gradient" else [got[1]]))]
        via_tape = tape(*args)
        for a, b in zip(flat, (via_tape[0], *(via_tape[1] if kind == "gradient" else [via_tape[1]]))):
            assert np.array_equal(a, b), (n, a, b)
        for a, b in zip(np.atleast_1d(got[0]), np.atleast_1d(want[0])):
            assert np.array_equal(a, b), (n, a, b)
        for a, b in zip(got[1] if kind == "gradient" else [got[1]], want[1] if kind == "gradient" else [want[1]]):
            assert np.array_equal(a, b), (n, a, b)
    x = np.array([0.3, -1.2, 0.7])
    for a, b in zip(split.at(x), whole.at(x)):   # the one-point entry: lane 0 to `out`
        for u, v in zip(np.atleast_1d(a), np.atleast_1d(b)):
            assert np.array_equal(u, v)


def test_libm_calls_go_to_the_libmvec_variants_without_a_wrapper(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    g = built(monkeypatch, lambda: compile_grad(PROGRAM, backend="c", threads=1))
    assert "#define xc_v_sin(a0) XC_MVEC(v, sin)(XC_V(a0))" in g.source
    assert "XC_MVEC(vv, atan2)" in g.source    # two vector parameters
    assert "xc_lanes_xc_sigmoid(" in g.source   # a helper: its wrapper's loop inlines it
    flags = " ".join(c_build.BUILDS[0][0])
    if c_build.MVEC_DEFINE not in flags or "clang" in c_build.find_compiler()[1].lower():
        pytest.skip("not gcc")
    lib = c_build.build(g.source)
    try:
        symbols = subprocess.run(["nm", str(lib)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no nm")
    if "_ZGV" not in symbols:
        pytest.skip("built without libmvec (a fallback flag set)")
    # the parts call the variants themselves: no lane wrapper of sin is compiled
    assert "xc_lanes_sin" not in symbols and "xc_lanes_atan2" not in symbols
    assert "v_sin" in symbols and "vv_atan2" in symbols


ROWS_SCRIPT = r'''
import numpy as np
from exprcompiler import compile_grad, compile_jacobian
from exprcompiler.backends import c_backend, c_build, c_split
assert "-fsanitize=address,undefined" in " ".join(c_build.extra_flags())
c_backend.SPLIT_FROM, c_backend.PART, c_split.VECTOR_UP_TO, c_split.ROWS_FROM = 10, 6, 0, 0
EXPRS = %r
PROGRAM = %r
J_c = compile_jacobian(EXPRS, wrt=["x", "y", "z"], backend="c", threads=2)
g_c = compile_grad(PROGRAM, backend="c", threads=2)
J_np, g_np = compile_jacobian(EXPRS, wrt=["x", "y", "z"]), compile_grad(PROGRAM)
assert "XC_OUT(0, " in J_c.source and "XC_OUT(0, " in g_c.source
for n in (1, 3, 17, 1001):
    xs = [np.linspace(-1, 1, n) + 0.1 * i for i in range(3)]
    for got, want in ((J_c(*xs), J_np(*xs)), (g_c(*xs), g_np(*xs))):
        for a, b in zip([got[0], *np.atleast_1d(got[1])], [want[0], *np.atleast_1d(want[1])]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
x = np.array([0.3, -1.2, 0.7])
for f, ref in ((J_c, J_np), (g_c, g_np)):
    for _ in range(3):   # the one-point entry: lane 0 to out, the others to the scratch row
        for a, b in zip(f.at(x), ref.at(x)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
print("ROWS SANITIZED OK")
''' % (EXPRS, PROGRAM)


@pytest.mark.slow
def test_rows_are_clean_under_the_sanitizers(tmp_path):
    """The rows (c_driver's xc_rows, the scratch rows, the one-point entry's) under
    AddressSanitizer and UBSan, as test_asan runs the other kernels."""
    from test_asan import _sanitized
    _sanitized(tmp_path, ROWS_SCRIPT, "ROWS SANITIZED OK")
