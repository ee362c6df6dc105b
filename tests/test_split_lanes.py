"""Vector-extension split kernels (c_split above VECTOR_UP_TO) call libmvec's vector
variants by name (c_lanes.MVEC) and pass their outputs through the tape: the same bits
as the `omp simd` parts of the same trace (the one-function kernel runs a batch's last
points as scalar code, whose libm may differ in the last bit), for a Jacobian's block,
a gradient's separate arrays, batches that end in a partial vector and block, and the
one-point entry."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_jacobian
from exprcompiler.backends import c_backend, c_build, c_split

EXPRS = ["sin(x*y) + exp(-z**2) * x", "x / (1 + y**2) - cos(z * x) + sqrt(1 + z**2) * x**3 + tanh(y)"]
PROGRAM = "a = sin(x) * cos(y)\nb = log(1 + a*a) + atan(z * x)\na * b + atan2(z, x) + tanh(b) + sigmoid(y)"


def built(monkeypatch, make, lanes: bool = True):
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
    monkeypatch.setattr(c_backend, "PART", 6)
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 0 if lanes else 10**9)
    return make()


def points(n: int):
    rng = np.random.default_rng(n)
    return [rng.uniform(-2, 2, n) for _ in range(3)]


def flat(result, kind: str) -> list:
    return [np.asarray(v) for v in (result[0], *(result[1] if kind == "gradient" else [result[1]]))]


@pytest.mark.parametrize("kind", ["jacobian", "gradient"])
def test_vector_extension_parts_match_the_omp_simd_parts_bit_for_bit(monkeypatch, tmp_path, kind):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    if kind == "jacobian":
        def make():
            return compile_jacobian(EXPRS, wrt=["x", "y", "z"], backend="c", threads=1)
    else:
        def make():
            return compile_grad(PROGRAM, backend="c", threads=1)
    split, whole = built(monkeypatch, make), built(monkeypatch, make, lanes=False)
    assert c_split.UNIT_MARK in split.source and "XC_ST(xc_f + " in split.source
    assert "XC_ST(" not in whole.source and "#pragma omp simd\n        for (ptrdiff_t j" in whole.source
    for n in (1, 3, 4, 5, 17, 2 * c_backend.BLOCK + 5):   # partial vectors and blocks
        args = points(n)
        for a, b in zip(flat(split(*args), kind), flat(whole(*args), kind)):
            assert a.shape == b.shape and np.array_equal(a, b), (n, a, b)
    x = np.array([0.3, -1.2, 0.7])
    for a, b in zip(split.at(x), whole.at(x)):   # the one-point entry: lane 0 to `out`
        assert np.array_equal(np.atleast_1d(a), np.atleast_1d(b))


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
