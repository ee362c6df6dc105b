"""The per-point C kernel's loop (c_backend.RANGE) and its tiles of inner points (c_tiles).

On one thread the kernel runs its loop without entering an OpenMP parallel region
(counted by wrapping libgomp's GOMP_parallel at link time: an `if(threads > 1)` clause
still entered one every call); on several, each thread's share is the one
`schedule(static)` deals, so every point is computed, tiles start at multiples of
XC_TILE, and a kernel without libm calls gives the same bits on any number of threads.
Which kernels run tiles, and the tests of their tiles, are read from the trace
(c_tiles.inner_tests): checked here on formulas whose arguments are inputs, one
operation on inputs, or more.
"""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.api import kind_trace
from exprcompiler.backends import c_backend, c_build, c_tiles
from exprcompiler.backends.c_forms import c_forms
from exprcompiler.backends.naming import assign_names
from exprcompiler.trace.render import named_vars

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
void __real_GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags);
static int regions;
void __wrap_GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags)
{
    ++regions;
    __real_GOMP_parallel(fn, data, threads, flags);
}
int main(void)
{
    const ptrdiff_t n = 1001;
    double *in = malloc(sizeof(double) * n * %(n_in)d), *out = malloc(sizeof(double) * n * %(n_out)d);
    for (ptrdiff_t i = 0; i < n * %(n_in)d; ++i)
        in[i] = 0.25 + 0.001 * (double)i;
    for (int threads = 1; threads <= 2; ++threads) {
        regions = 0;
        if (%(call)s != 0) return 1;
        printf("%%d %%d\n", threads, regions);
    }
    free(in);
    free(out);
    return 0;
}
"""


def _regions(tmp_path, source: str, decl: str) -> dict:
    """{threads: parallel regions entered by one call of the kernel on 1001 points}."""
    try:
        compiler, _ = c_build.find_compiler()
    except Exception as err:  # noqa: BLE001 - any reason there is no compiler is a skip
        pytest.skip(f"no C compiler: {err}")
    kernel = re.match(r"int (\w+)\(([^)]*)\)", decl)
    name, params = kernel.group(1), kernel.group(2)
    n_in, n_out = params.count("const double *in"), params.count("double *out")
    columns = f"{name}_batch" in source   # a Jacobian's: outputs at strides, side by side
    args = [f"in + {k} * n, 1" for k in range(n_in)]
    args += [f"out + {k}, {n_out}" if columns else f"out + {k} * n, 1" for k in range(n_out)]
    (tmp_path / "kernel.c").write_text(source)
    (tmp_path / "main.c").write_text("#include <stddef.h>\n" + decl.split(";")[0] + ";\n" + HARNESS % {
        "n_in": n_in, "n_out": n_out, "call": f"{name}(n, threads, {', '.join(args)})"})
    exe = tmp_path / "run"
    (tmp_path / "probe.c").write_text("int main(void) { return 0; }\n")
    for flags, libs in c_build.BUILDS:   # the first set with OpenMP that this compiler takes
        flags = [f for f in flags if f not in ("-shared", "-fPIC")]
        if "-fopenmp" in flags and subprocess.run([compiler, *flags, "probe.c", "-o", "probe", *libs],
                                                  cwd=tmp_path, capture_output=True).returncode == 0:
            break
    else:
        pytest.skip(f"{compiler} builds nothing with -fopenmp here")
    built = subprocess.run([compiler, *flags, "kernel.c", "main.c", "-o", str(exe), "-Wl,--wrap=GOMP_parallel",
                            *libs], cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, OMP_NUM_THREADS="2", OMP_DYNAMIC="false"))
    assert ran.returncode == 0, ran.stderr
    return {int(t): int(r) for t, r in (line.split() for line in ran.stdout.split("\n") if line)}


@pytest.mark.parametrize("kind, expr", [("grad", "exp(x) - 1"), ("grad", "x * y + sin(x)"),
                                        ("grad", "log(1 - exp(x))"), ("jacobian", ["x * y", "exp(x) - y"])])
def test_one_thread_enters_no_parallel_region(tmp_path, kind, expr):
    from exprcompiler.backends.c_source import generate
    _, _, trace, what = kind_trace(kind, expr, stable=True)
    generated = generate(trace, func_name=f"f_{kind}", description=what, columns=kind == "jacobian")
    assert _regions(tmp_path, generated.text, generated.decl) == {1: 0, 2: 1}


@pytest.mark.parametrize("expr", ["exp(x) - 1", "1 - exp(x) + x * y", "x * y / (x + y)", "sin(x) * y", "log(x) + cos(y)"])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 63, 64, 65, 1000, 1001, 4099])
def test_every_point_the_same_bits_on_any_number_of_threads(expr, n):
    """Threads take shares of whole tiles, so every vector starts at the same point as on
    one thread: also where a libm call's vector (libmvec) and scalar forms differ in the
    last bit (sin(x) on 3 threads, shares of points: 3 of 1,000 points 1-2 ulps off)."""
    rng = np.random.default_rng(n)
    x, y = rng.uniform(0.5, 3.0, n), rng.uniform(0.5, 3.0, n)
    results = []
    for threads in (1, 2, 3):
        g = compile_grad(expr, backend="c", stable=True, threads=threads)
        value, grads = g(x, y) if "y" in expr else g(x)
        results.append(np.concatenate([np.ravel(value), *map(np.ravel, grads)]).view(np.int64))
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_a_shares_points_are_all_computed_on_several_threads():
    n = 10_007
    x = np.linspace(-3.0, 3.0, n)
    expected = np.sin(x) * x
    for threads in (1, 2, 3, 5):
        value, (grad,) = compile_grad("sin(x) * x", backend="c", threads=threads)(x)
        np.testing.assert_allclose(value, expected, rtol=1e-15, atol=0)
        np.testing.assert_allclose(grad, np.cos(x) * x + np.sin(x), rtol=1e-14, atol=1e-15)


def _tests_of(expr: str, stable: bool = True):
    """c_tiles.inner_tests of the gradient kernel of `expr`, as generate_c asks it."""
    _, _, trace, _ = kind_trace("grad", expr, stable=stable)
    trace = c_forms(trace)
    named = c_backend.conditions_inlined(trace, named_vars(trace))
    names = assign_names(trace, named, c_backend.C_KEYWORDS | set(c_backend.HELPERS))
    r = c_backend.SelectRenderer(trace, c_backend.SPELLING, lambda i: names[i], named=named)
    return c_tiles.inner_tests(trace, named, names, r.rhs, len(c_backend._statements(trace, names, r)))


@pytest.mark.parametrize("expr, tests, reads", [
    ("expm1(x)", ["xc_exp_inner_at(x)"], ["x"]),
    ("expm1(2 * x)", ["xc_exp_inner_at(2.0 * x)"], ["x"]),
    ("expm1(x + y)", ["xc_exp_inner_at(x + y)"], ["x", "y"]),
    ("tanh(-y) * x", ["xc_exp_neg2_inner_at(-y)"], ["y"]),
    # each test once, in the order of the calls; inputs in their order
    ("tanh(y) + tanh(y) * expm1(x)", ["xc_exp_neg2_inner_at(y)", "xc_exp_inner_at(x)"], ["x", "y"]),
    ("log(1 - exp(x))", ["xc_exp_neg_inner_at(x)"], ["x"]),
])
def test_the_tests_of_a_kernels_tiles(expr, tests, reads):
    assert _tests_of(expr) == (tests, reads)


@pytest.mark.parametrize("expr", ["expm1(sin(x))", "expm1(x * y + 1)", "tanh(x * y + x)", "expm1(x * 1e400)",
                                  "sin(x) * y"])
def test_no_tiles_where_an_argument_is_more_than_one_operation(expr):
    assert _tests_of(expr) is None


def test_the_inner_body_is_the_body_with_inner_forms():
    source = compile_grad("sigmoid(x) * (1 - sigmoid(x)) + tanh(x * y)", backend="c", stable=True).source
    body = re.search(r"void f_grad_point\(.*?\n\{\n(.*?)\n\}", source, re.S).group(1)
    inner = re.search(r"void f_grad_point_inner\(.*?\n\{\n(.*?)\n\}", source, re.S).group(1)
    assert body != inner
    assert re.sub(r"\b(" + "|".join(c_tiles.INNER) + r")\(", lambda m: c_tiles.INNER[m.group(1)][0] + "(",
                  body) == inner


def test_large_kernels_run_no_tiles():
    many = " + ".join(f"sin({k} * x) * y" for k in range(1, c_tiles.INNER_UP_TO))
    assert _tests_of(f"exp(x) - 1 + {many}") is None
    assert _tests_of("exp(x) - 1 + sin(x) * y") is not None


def test_the_one_operation_kernels_match_their_tests_on_the_edges():
    """Tiles hold edge points of the one operation's value (not of the input's)."""
    g = compile_grad("expm1(2 * x)", backend="c", threads=1)
    x = np.full(256, 0.5)
    x[70] = 400.0          # 2x = 800: beyond 690, its tile runs the full forms
    x[200] = -0.0
    value, (grad,) = g(x)
    assert np.isinf(value[70]) and np.isinf(grad[70])
    assert np.copysign(1.0, value[200]) == -1.0
    np.testing.assert_allclose(value[:64], np.expm1(1.0), rtol=2e-16)
