"""The split kernel's one-point entry keeps its tape per thread (XC_TAPE_KEPT in c_driver.DRIVER):
threads that call it and exit free their tapes. A C program built with
AddressSanitizer and its leak checker calls the entry of a split Jacobian from threads
that exit, each thread several times; it passes when every thread's numbers agree with
the NumPy backend and LeakSanitizer reports nothing (a tape left behind by an exiting
thread is a leak it reports)."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from exprcompiler import compile_jacobian
from exprcompiler.backends import c_backend, c_build, c_split

EXPRS = ["sin(x*y) + exp(-z**2) * x", "x / (1 + y**2) - cos(z * x) + (1 + z**2)**0.5 * x**3"]
THREADS, CALLS = 6, 3

HARNESS = r"""
#include <pthread.h>
#include <stdio.h>
#include <string.h>
int f_jacobian_packed(const double *in, double *out);
enum { N_IN = %(n_in)d, N_OUT = %(n_out)d, THREADS = %(threads)d, CALLS = %(calls)d };
static const double points[THREADS][N_IN] = {%(points)s};
static double results[THREADS][N_OUT];
static int status[THREADS];

static void *run(void *arg)
{
    int k = (int)(size_t)arg;
    double out[N_OUT];
    for (int c = 0; c < CALLS; ++c) {  /* the second call on reuses the thread's tape */
        status[k] |= f_jacobian_packed(points[k], out);
        if (c > 0 && memcmp(out, results[k], sizeof out) != 0) status[k] |= 2;
        memcpy(results[k], out, sizeof out);
    }
    return NULL;
}

int main(void)
{
    /* two waves of threads, so the second may reuse the first's stacks and keys */
    for (int wave = 0; wave < 2; ++wave) {
        pthread_t ids[THREADS];
        for (int k = 0; k < THREADS; ++k)
            if (pthread_create(&ids[k], NULL, run, (void *)(size_t)k) != 0) return 3;
        for (int k = 0; k < THREADS; ++k)
            pthread_join(ids[k], NULL);
    }
    for (int k = 0; k < THREADS; ++k) {
        printf("%%d", status[k]);
        for (int j = 0; j < N_OUT; ++j) printf(" %%.17g", results[k][j]);
        printf("\n");
    }
    return 0;
}
"""


def _compiler_with_asan() -> str:
    try:
        compiler, version = c_build.find_compiler()
    except Exception as err:  # noqa: BLE001 - any reason there is no compiler is a skip
        pytest.skip(f"no C compiler: {err}")
    path = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True,
                          timeout=30).stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        pytest.skip(f"{compiler} ({version}) has no AddressSanitizer runtime")
    return compiler


@pytest.mark.slow  # a sanitized build of the joined kernel and a harness: about 5 s
def test_threads_that_exit_free_their_kept_tapes(monkeypatch, tmp_path):
    compiler = _compiler_with_asan()
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
    monkeypatch.setattr(c_backend, "PART", 4)
    J = compile_jacobian(EXPRS, wrt=["x", "y", "z"], backend="c")
    assert c_split.UNIT_MARK in J.source and "pthread_getspecific(xc_tape_key)" in J.source
    ref = compile_jacobian(EXPRS, wrt=["x", "y", "z"])
    n_in, n_out = len(J.inputs), len(J.trace.outputs)
    rng = np.random.default_rng(5)
    points = rng.uniform(-2, 2, (THREADS, n_in))
    (tmp_path / "kernel.c").write_text(J.source)  # the joined text: one valid unit (exprc export)
    (tmp_path / "main.c").write_text(HARNESS % {
        "n_in": n_in, "n_out": n_out, "threads": THREADS, "calls": CALLS,
        "points": ", ".join("{" + ", ".join(repr(float(v)) for v in p) + "}" for p in points)})
    exe = tmp_path / "harness"
    built = subprocess.run([compiler, "-std=gnu99", "-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer",
                            "-fno-math-errno", "-pthread", str(tmp_path / "main.c"), str(tmp_path / "kernel.c"),
                            "-o", str(exe), "-lm"], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr[-4000:]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", LSAN_OPTIONS="exitcode=23")
    env.pop("LD_PRELOAD", None)
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)
    report = f"exit status {done.returncode}\n--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-6000:]}"
    assert done.returncode == 0 and "Sanitizer" not in done.stderr, report
    rows = [line.split() for line in done.stdout.splitlines()]
    assert len(rows) == THREADS and all(r[0] == "0" for r in rows), report
    for k, row in enumerate(rows):
        values, jac = ref.at(points[k][[J.inputs.index(nm) for nm in ("x", "y", "z")]])
        want = np.concatenate([np.ravel(values), np.ravel(jac)])
        # the kernel's outputs in order: the values, then the Jacobian row by row
        np.testing.assert_allclose(np.array(row[1:], dtype=float), want, rtol=1e-13, atol=1e-14)
