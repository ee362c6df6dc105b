"""The split kernels' scatter (c_driver's xc_scatter and xc_scatter_vector): the outputs'
slots of a block's points, XC_VL points a frame, to the caller's arrays, four outputs
of a point a store where a run of outputs is side by side (a Jacobian's block), one by
one elsewhere and in a block's last partial vector; runs that fill their rows past the
cache (xc_scatter_stream) where the outputs are large, forced at every size here. Checked against the NumPy backend
for both layouts of the parts, runs of outputs that are and are not whole fours, every
remainder of a vector and of a block, new and out= arrays, two threads, float32; and
under the sanitizers, where a store past a run or a point is outside an allocation."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_jacobian
from exprcompiler.backends import c_backend, c_split

# 3 values and a 3 x 5 Jacobian: runs of 3 and 15 outputs (whole fours and a remainder)
EXPRS = ["sin(a*b) + exp(-c**2) * d", "a / (1 + b**2) - cos(c * f) + d*f", "tanh(a + b + c + d + f) * a"]
WRT = ["a", "b", "c", "d", "f"]
SIZES = (1, 3, 4, 5, 7, 8, 9, 2 * c_backend.BLOCK + 5)   # partial vectors and blocks


def split(monkeypatch, make, lanes: bool):
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
    monkeypatch.setattr(c_backend, "PART", 8)
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 0 if lanes else 10**9)
    f = make()
    assert c_split.UNIT_MARK in f.source
    return f


def states(n: int, dtype=np.float64):
    rng = np.random.default_rng(n)
    return {nm: rng.uniform(-1.5, 1.5, n).astype(dtype) for nm in WRT}


@pytest.mark.parametrize("lanes", [True, False], ids=["vector-extension", "omp-simd"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_jacobians_block_is_scattered_to_every_point_and_entry(monkeypatch, tmp_path, lanes, threads):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    J = split(monkeypatch, lambda: compile_jacobian(EXPRS, wrt=WRT, backend="c", threads=threads), lanes)
    ref = compile_jacobian(EXPRS, wrt=WRT)
    for n in SIZES:
        x = states(n)
        want = ref(**x)
        got = J(**x)
        out = (np.full_like(want[0], np.nan), np.full_like(want[1], np.nan))
        into = J(**x, out=out)
        assert into[0] is out[0] and into[1] is out[1]
        for a, b, c in zip(got, out, want):
            assert a.shape == c.shape == (n, *c.shape[1:])
            np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-15, err_msg=f"n = {n}")
            assert np.array_equal(a, b), n


@pytest.mark.parametrize("threads", [1, 2])
def test_streamed_rows_hold_the_same_bits(monkeypatch, tmp_path, threads):
    """The rows of a Jacobian's block written past the cache (c_driver's
    xc_scatter_stream, at every size with XC_STREAM_FROM 0): the same bits as the
    plain scatter's, into new arrays and out= arrays, every remainder."""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    plain = split(monkeypatch, lambda: compile_jacobian(EXPRS, wrt=WRT, backend="c", threads=threads), True)
    monkeypatch.setenv("EXPRCOMPILER_EXTRA_CFLAGS", "-DXC_STREAM_FROM=0")
    streamed = split(monkeypatch, lambda: compile_jacobian(EXPRS, wrt=WRT, backend="c", threads=threads), True)
    for n in (*SIZES, 1000):
        x = states(n)
        want = plain(**x)
        out = (np.full_like(want[0], np.nan), np.full_like(want[1], np.nan))
        for got in (streamed(**x), streamed(**x, out=out)):
            for a, b in zip(got, want):
                assert np.array_equal(a, b), n


def test_separate_output_arrays_are_scattered_one_by_one(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    program = "p = sin(a) * cos(b) + c*d\nq = log(1 + p*p) + atan(f * a)\np * q + tanh(q) * f"
    g = split(monkeypatch, lambda: compile_grad(program, backend="c", threads=1), True)
    ref = compile_grad(program)
    for n in SIZES:
        x = states(n)
        got, want = g(**x), ref(**x)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-15)
        for a, b in zip(got[1], want[1]):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_float32_vectors_scatter_as_doubles_do(monkeypatch, tmp_path, stream):
    """The float rewrite (dtypes) doubles XC_VL: eight floats a frame's vector on AVX.
    `streamed`: rows written past the cache at every size (XC_STREAM_FROM 0), a float
    a store; NaN guards around an out= block must stay NaN."""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    if stream:
        monkeypatch.setenv("EXPRCOMPILER_EXTRA_CFLAGS", "-DXC_STREAM_FROM=0")
    J = split(monkeypatch, lambda: compile_jacobian(EXPRS, wrt=WRT, backend="c", threads=1, dtype="float32"), True)
    ref = compile_jacobian(EXPRS, wrt=WRT)
    for n in (*SIZES, 17):
        x = states(n, np.float32)
        got, want = J(**x), ref(**{k: v.astype(np.float64) for k, v in x.items()})
        for a, b in zip(got, want):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=f"n = {n}")
        block = np.full((n * 15 + 8,), np.nan, dtype=np.float32)   # the Jacobian's rows, then guards
        values = np.full_like(got[0], np.nan)
        J(**x, out=(values, block[:n * 15].reshape(n, 3, 5)))
        assert np.array_equal(block[:n * 15].reshape(n, 3, 5), got[1]) and np.isnan(block[n * 15:]).all(), n


SCRIPT = r'''
import numpy as np
from exprcompiler import compile_jacobian
from exprcompiler.backends import c_backend, c_build, c_split
assert "-fsanitize=address,undefined" in " ".join(c_build.extra_flags())
c_backend.SPLIT_FROM, c_backend.PART = 10, 8
EXPRS, WRT = %r, %r
ref = compile_jacobian(EXPRS, wrt=WRT)
for lanes in (0, 10**9):
    c_split.VECTOR_UP_TO = lanes
    for threads in (1, 2):
        J = compile_jacobian(EXPRS, wrt=WRT, backend="c", threads=threads)
        assert c_split.UNIT_MARK in J.source
        for n in (1, 3, 4, 5, 9, 2 * c_backend.BLOCK + 5):
            # every input and output its own allocation: a store past a point's run or
            # past the last point is outside one
            x = {k: np.linspace(-1, 1, n) + 0.1 * i for i, k in enumerate(WRT)}
            want = ref(**x)
            out = (np.empty_like(want[0]), np.empty_like(want[1]))
            for got in (J(**x), J(**x, out=out)):
                for a, b in zip(got, want):
                    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
print("SCATTER SANITIZED OK")
''' % (EXPRS, WRT)


@pytest.mark.slow
def test_the_scatter_is_clean_under_the_sanitizers(tmp_path):
    from test_asan import _sanitized
    _sanitized(tmp_path, SCRIPT, "SCATTER SANITIZED OK")


# The driver alone, from C, at every lane count (XC_VL 2: SSE, 4: AVX, 8: AVX-512 and
# AVX's floats; the driver takes XC_VL from the command line): a part that writes
# output k of point i as i * 1000 + k + 0.5 from the point's inputs, the outputs in
# the layouts callers use (one block, a block in two runs as the values and the
# Jacobian, an array each, rows with gaps), every point count to two blocks and some,
# NaN guards between and after the rows that must stay NaN; under AddressSanitizer.
HARNESS = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
%(driver)s
enum { N_IN = 2, N_OUT = 11, W = N_IN + N_OUT, BLOCK = 2 * XC_VL * 2, MAX_N = 2 * BLOCK + 2 * XC_VL + 1 };

static void part(double *restrict t, ptrdiff_t j)
{
    double *f = t + j * W;
    for (int l = 0; l < XC_VL; ++l)
        for (int k = 0; k < N_OUT; ++k)
            f[(N_IN + k) * XC_VL + l] = f[l] * 1000 + f[XC_VL + l] + k;
}

int main(void)
{
    static const xc_part_fn parts[] = {part};
    int bad = 0;
    for (int layout = 0; layout < 4; ++layout)
        for (ptrdiff_t n = 1; n <= MAX_N; ++n) {
            /* layout 0: one block, stride N_OUT; 1: runs of 3 and 8 in two blocks; 2: an
               array each; 3: one block with 5 doubles of gap after each point's row */
            const ptrdiff_t gap = layout == 3 ? 5 : 0, size = (N_OUT + gap) * n + 8;
            double *in0 = malloc(sizeof(double) * n), *mem = malloc(sizeof(double) * (size + N_OUT * (n + 8)));
            const double half = 0.5;
            double *outs[N_OUT];
            ptrdiff_t osts[N_OUT];
            for (ptrdiff_t i = 0; i < size + N_OUT * (n + 8); ++i) mem[i] = NAN;
            for (ptrdiff_t i = 0; i < n; ++i) in0[i] = (double)i;
            for (int k = 0; k < N_OUT; ++k) {
                if (layout == 0 || layout == 3) { outs[k] = mem + k; osts[k] = N_OUT + gap; }
                else if (layout == 1) { outs[k] = k < 3 ? mem + k : mem + 3 * n + 4 + (k - 3); osts[k] = k < 3 ? 3 : 8; }
                else { outs[k] = mem + k * (n + 1); osts[k] = 1; }
            }
            const double *ins[N_IN] = {in0, &half};
            const ptrdiff_t sts[N_IN] = {1, 0};
            if (xc_split_run(n, 1, ins, sts, N_IN, outs, osts, N_OUT, parts, 1, W, BLOCK, 1) != 0) bad |= 1;
            ptrdiff_t written = 0;
            for (int k = 0; k < N_OUT; ++k)
                for (ptrdiff_t i = 0; i < n; ++i, ++written)
                    if (outs[k][i * osts[k]] != i * 1000 + k + 0.5) bad |= 2;
            ptrdiff_t untouched = 0;
            for (ptrdiff_t i = 0; i < size + N_OUT * (n + 8); ++i)
                untouched += isnan(mem[i]);
            if (untouched + written != size + N_OUT * (n + 8)) bad |= 4;
            if (bad) { printf("layout %%d, n %%ld: %%d\n", layout, (long)n, bad); return 1; }
            free(in0);
            free(mem);
        }
    printf("SCATTER OK\n");
    return 0;
}
"""


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("lanes", [2, 4, 8])
def test_the_drivers_scatter_from_c_at_every_lane_count(tmp_path, lanes, stream):
    """`streamed`: the non-temporal stores of rows a run fills (layouts 0 and 1) at
    every size (XC_STREAM_FROM 0), where the driver has them (x86-64, gcc)."""
    from test_split_tape import _compiler_with_asan
    from exprcompiler.backends import c_driver
    compiler = _compiler_with_asan()
    (tmp_path / "main.c").write_text(HARNESS % {"driver": c_driver.DRIVER})
    exe = tmp_path / "harness"
    built = subprocess.run([compiler, "-std=gnu99", "-O1", "-g", "-march=native", f"-DXC_VL={lanes}",
                            *["-DXC_STREAM_FROM=0"] * stream, "-fsanitize=address,undefined",
                            "-fno-omit-frame-pointer", str(tmp_path / "main.c"),
                            "-o", str(exe), "-lm"], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr[-4000:]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="halt_on_error=1")
    env.pop("LD_PRELOAD", None)
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and "SCATTER OK" in done.stdout and "runtime error" not in done.stderr, \
        done.stdout[-2000:] + done.stderr[-4000:]
