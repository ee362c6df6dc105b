"""A careless caller's and an attacker's checks of the call layer, the NumPy stable forms
and the C shared forms: a ShapesAtCall key that runs the function of an earlier call
(arguments of other dtypes, types, strides, ways of passing them, out=, threads), the
first call with numbers (its one-point variant against later calls and the array path
at inf, NaN, -0.0, ints, bools), call plans of inputs named as the plan's own names, the
package's lazy attributes, the shared spellings of the NumPy backend against the tape
VM, log1mexp's silenced errors, and C's shared forms in split, one-point and float32
kernels and in exported files."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import exprcompiler
from exprcompiler import compile_expr, compile_grad, compile_hvp, runtime
from exprcompiler.api import Compiled
from exprcompiler.backends import c_backend, c_build
from exprcompiler.shapes_at_call import ShapesAtCall

from test_vm import same_bits

_HAS_CC = c_build.shutil.which("cc") is not None or c_build.shutil.which("gcc") is not None
needs_cc = pytest.mark.skipif(not _HAS_CC, reason="no C compiler on this machine")

LOSS = "mean((a*t + b - y)**2)"
_RNG = np.random.default_rng(43)


def _outcome(f, *args, **kwargs):
    """What a call gives: its results flattened, or the exception's type and message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = f(*args, **kwargs)
    except Exception as err:   # noqa: BLE001 (the refusal itself is compared)
        return ("raised", type(err).__name__, str(err))
    return ("ok", [np.asarray(v, dtype=float) for v in _flat(result)])


def _flat(result) -> list:
    if isinstance(result, (tuple, list)):
        return [v for item in result for v in _flat(item)]
    return [result]


def _same_outcome(got, want) -> bool:
    if got[0] != want[0]:
        return False
    if got[0] == "raised":
        return got[1:] == want[1:]
    return len(got[1]) == len(want[1]) and all(same_bits(u, w) for u, w in zip(got[1], want[1]))


# -- ShapesAtCall: the key of a call ----------------------------------------------------------

def _matrix(values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix(values)


def _variants() -> dict:
    t, y = _RNG.standard_normal(4), _RNG.standard_normal(4)
    return {
        "float64": (0.5, 0.25, t, y),
        "float32 arrays": (0.5, 0.25, t.astype(np.float32), y.astype(np.float32)),
        "int array": (0.5, 0.25, np.arange(4), y),
        "bool array": (0.5, 0.25, t > 0, y),
        "complex array": (0.5, 0.25, t + 1j, y),
        "complex array, real values": (0.5, 0.25, t.astype(complex), y),
        "object array": (0.5, 0.25, t.astype(object), y),
        "strided view": (0.5, 0.25, _RNG.standard_normal(8)[::2], y),
        "reversed view": (0.5, 0.25, t[::-1], y),
        "read-only": (0.5, 0.25, np.frombuffer(t.tobytes()), y),
        "0-d array number": (np.array(0.5), 0.25, t, y),
        "np.float32 number": (np.float32(0.5), 0.25, t, y),
        "int number": (2, 0.25, t, y),
        "bool number": (True, 0.25, t, y),
        "huge int": (2 ** 70, 0.25, t, y),
        "NaN": (math.nan, -0.0, t, y),
        "matrix": (0.5, 0.25, _matrix(t), y),
        "masked, one masked": (0.5, 0.25, np.ma.masked_array(t, [0, 1, 0, 0]), y),
        "masked, none masked": (0.5, 0.25, np.ma.masked_array(t), y),
        "number where a reduction reads": (0.5, 0.25, 1.5, y),
        "array where a number was": (np.ones(4), 0.25, t, y),
        "Fortran 2-d": (0.5, 0.25, np.asfortranarray(t.reshape(2, 2)), y.reshape(2, 2)),
        "length 5": (0.5, 0.25, _RNG.standard_normal(5), _RNG.standard_normal(5)),
        "lengths that differ": (0.5, 0.25, _RNG.standard_normal(5), y),
        "empty": (0.5, 0.25, np.empty(0), np.empty(0)),
    }


_CALLS = {
    "in order": lambda f, a: f(*a),
    "by name": lambda f, a: f(a=a[0], b=a[1], t=a[2], y=a[3]),
    "both": lambda f, a: f(a[0], a[1], y=a[3], t=a[2]),
}


@pytest.mark.parametrize("how", list(_CALLS))
def test_a_known_key_runs_what_a_fresh_function_would_run(how):
    """Every kind of argument, after calls of float64 arrays of the same shapes (and, on
    a second round, after itself): the answer or the refusal of a function that never saw
    a call. The key reads shapes, not dtypes or types, so these share keys with the
    float64 call where their arrays are plain ndarrays."""
    variants = _variants()
    call = _CALLS[how]
    f = compile_grad(LOSS, wrt=["a", "b"])
    assert isinstance(f, ShapesAtCall)
    call(f, variants["float64"])
    fresh = {}
    for _ in range(2):
        for name, args in variants.items():
            if name not in fresh:
                fresh[name] = _outcome(lambda: call(compile_grad(LOSS, wrt=["a", "b"]), args))
            assert _same_outcome(_outcome(lambda: call(f, args)), fresh[name]), name


def test_a_call_that_raised_keeps_nothing_and_out_goes_where_a_fresh_call_sends_it():
    t, y = np.arange(4.0), np.arange(4.0)[::-1].copy()
    outs = {"right": (np.empty(()), (np.empty(()), np.empty(()))),
            "wrong shape": (np.empty(3), (np.empty(()), np.empty(()))),
            "wrong dtype": (np.empty((), np.float32), (np.empty(()), np.empty(()))),
            "flat": [np.empty(()), np.empty(()), np.empty(())], "none": None}
    for first in outs:
        f = compile_grad(LOSS, wrt=["a", "b"])
        _outcome(f, 0.5, 0.25, t, y, out=outs[first])
        for second, out in outs.items():
            want = _outcome(compile_grad(LOSS, wrt=["a", "b"]), 0.5, 0.25, t, y, out=out)
            assert _same_outcome(_outcome(f, 0.5, 0.25, t, y, out=out), want), (first, second)


def test_threads_calling_one_function_with_different_lengths_get_their_own_answers():
    f = compile_grad(LOSS, wrt=["a", "b"])
    cases = []
    for n in range(3, 9):
        t, y = _RNG.standard_normal(n), _RNG.standard_normal(n)
        want = compile_grad(LOSS, wrt=["a", "b"], shapes={"t": (n,), "y": (n,)})(0.5, 0.25, t, y)
        cases.append(((0.5, 0.25, t, y), np.array([want[0], *want[1]])))
    wrong: list = []
    start = threading.Barrier(4)

    def worker(k: int) -> None:
        start.wait()
        for i in range(60):
            args, want = cases[(k + i) % len(cases)]
            try:
                r = list(_CALLS.values())[i % 3](f, args)
                if not np.allclose([r[0], *r[1]], want, rtol=1e-13, atol=1e-15):
                    wrong.append((k, i, r, want))
            except Exception as err:   # noqa: BLE001 (reported below)
                wrong.append((k, i, repr(err)))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not wrong, wrong[:3]


# -- the first call with numbers --------------------------------------------------------------

_FIRST = [("value", "x/y"), ("value", "log(x) + y"), ("grad", "x/y"), ("grad", "log(x)*y"), ("grad", "sqrt(x) + y**2"),
          ("grad", "x**y"), ("grad", "abs(x) + y"), ("grad", "x"), ("grad", "2.0 + 0*x*y"), ("grad", "max(x, y)"),
          ("grad", "where(x > y, x, y)"), ("grad", "log(1 - exp(x)) + y"), ("grad", "exp(x)*y"),
          ("grad", "log(1 - x) + y")]
_NUMBERS = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 5e-324, 1e308, 710.5, -745.0, 2, True, 2 ** 60,
            10 ** 400, np.float64(0.5), np.float32(0.5), np.array(0.5)]


@pytest.mark.parametrize("kind, expr", _FIRST)
def test_the_first_call_with_numbers_gives_what_later_calls_and_arrays_give(kind, expr):
    """The first call runs the one-point variant the later calls run: the same bits
    (signs of zeros, NaN) or the same refusal at every call, by position or by name;
    the array path agrees to a few ulps, with inf, NaN and zeros' signs where it has them."""
    make = compile_expr if kind == "value" else compile_grad
    for number in _NUMBERS:
        g = make(expr)
        args = [number, 0.75][:len(g.inputs)]
        calls = [_outcome(g, *args) for _ in range(3)] + [_outcome(g, **dict(zip(g.inputs, args)))]
        assert all(_same_outcome(c, calls[0]) for c in calls), (number, calls)
        if calls[0][0] == "ok":
            arrays = _outcome(g, *[np.array([float(v)]) for v in args])
            assert arrays[0] == "ok", (number, arrays)
            for u, w in zip(calls[0][1], arrays[1]):
                u, w = u.ravel(), w.ravel()
                assert np.array_equal(np.isnan(u), np.isnan(w)), (number, u, w)
                assert np.array_equal(np.isinf(u), np.isinf(w)), (number, u, w)
                assert np.array_equal(np.signbit(u[u == 0]), np.signbit(w[w == 0])), (number, u, w)
                np.testing.assert_allclose(u, w, rtol=8 * np.finfo(float).eps, atol=0)


# -- call plans whose inputs are named as the plan's own names -----------------------------------

@pytest.mark.parametrize("names", [("x", "y"), ("len", "NO"), ("given", "general"), ("a0", "a1"), ("self", "args"),
                                   ("kwargs", "x"), ("direct", "float"), ("type", "tuple"), ("__p1", "__p0"),
                                   ("p0", "__p0"), ("out", "y"), ("_", "__")])
def test_a_plan_answers_and_refuses_as_the_general_path(names):
    for make in (compile_expr, compile_grad):
        g = make(f"{names[0]} * 2 + {names[1]} / 3")
        first, second = g.inputs
        g(1.0, 2.0)
        g(1.5, 2.5)   # (the plan is made here)
        assert type(g).__call__ is not Compiled.__call__
        calls = [((1.25, 2.5), {}), ((), {first: 1.25, second: 2.5}), ((), {second: 2.5, first: 1.25}),
                 ((1.25,), {second: 2.5}), ((1.25,), {first: 2.5}), ((1.25, 2.5, 3.0), {}), ((), {first: 1.25}),
                 ((), {first: 1.0, "zz": 2.0}), ((), {first: 1.0, second: 2.0, "zz": 2.0}), ((1.25, 2.5), {"zz": 1.0}),
                 ((2, 2.5), {}), ((np.float64(1.0), 2.5), {}), ((True, 2.5), {}), ((), {first: math.nan, second: -0.0})]
        for args, kwargs in calls:
            want = _outcome(lambda: Compiled.__call__(g, *args, **kwargs))
            assert _same_outcome(_outcome(lambda: g(*args, **kwargs)), want), (names, args, kwargs)


# -- the package's lazy attributes ------------------------------------------------------------------

def test_the_lazy_names_and_modules_of_the_package():
    code = ("import exprcompiler as xc, sys\n"
            "assert 'exprcompiler.jacobians' not in sys.modules\n"
            "assert {'check_grad', 'compile_hessian', 'explain'} <= set(dir(xc))\n"
            "from exprcompiler.jacobians import compile_hessian\n"
            "assert xc.compile_hessian is compile_hessian and xc.jacobians.compile_hessian is compile_hessian\n"
            "assert xc.gradcheck.check_grad is xc.check_grad\n"
            "try:\n    xc.no_such_name\nexcept AttributeError as e:\n    assert 'no_such_name' in str(e)\n"
            "else:\n    raise SystemExit('no AttributeError')\n"
            "ns = {}\nexec('from exprcompiler import *', ns)\n"
            "assert all(name in ns for name in xc.__all__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- NumPy's shared spellings (dead_rows, log1m_of_diff, neg_expm1_pair) against the VM -------------

_SHARED = ["0 - x; log1p(0 - x)", "log1p(0 - x); 0 - x", "expm1(x); 0 - expm1(x)", "0 - expm1(x); exp(x)",
           "log(1 - x); 1 - x", "-x; sigmoid(-x)", "log1p(0 - x) * (0 - x)", "log1p(0.0 - x) / (1 + (0.0 - x))",
           "(0 - expm1(x)) * expm1(x)", "log(1 - exp(x)); expm1(0 - x)", "log(1 - exp(x)) + expm1(0 - x) + exp(0 - x)",
           "logaddexp(x, y); x - y", "sigmoid(x - y) + logaddexp(x, y)", "log(1 - x)*y + log(1 - y)*x",
           "log1p(0.0 - x) + (1.0 + (0.0 - x))", "sigmoid(-x)*(0 - x)", "1 - exp(x) + 0*(expm1(x))",
           "(1 - exp(x))*(0 - x) + log(1 - (x - y))"]


@needs_cc   # (the tape VM is a C library)
@pytest.mark.parametrize("expr", _SHARED)
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_numpy_shared_spellings_agree_with_the_vm(expr):
    """Lines that dead_rows leaves out must be lines no other line reads: the NumPy
    function runs (no NameError) and gives the VM's numbers, in every kind and mode."""
    kinds = ((compile_expr, {}), (compile_grad, {}), (compile_grad, {"mode": "forward"}), (compile_hvp, {}))
    for make, kwargs in kinds:
        try:
            numpy_fn = make(expr, backend="numpy", stable=True, **kwargs)
        except exprcompiler.ExprcError:
            continue   # (a gradient of several outputs)
        vm_fn = make(expr, backend="vm", stable=True, **kwargs)
        for n in (1, 9, 3000):
            values = {}
            for name in numpy_fn.inputs:
                v = _RNG.uniform(-2, 0.9, n)
                v[:min(n, 4)] = [0.0, -0.0, -700.0, math.nan][:min(n, 4)]
                values[name] = v
            got, want = _outcome(numpy_fn, **values), _outcome(vm_fn, **values)
            assert got[0] == want[0] == "ok", (got, want)
            for u, w in zip(got[1], want[1]):
                with np.errstate(invalid="ignore"):   # (inf - inf)
                    ok = (u == w) | (np.isnan(u) & np.isnan(w)) | (np.abs(u - w) <= 1e-12 * np.maximum(1, np.abs(w)))
                assert ok.all(), (make.__name__, kwargs, n, u[~ok][:3], w[~ok][:3])


# log1m_of_diff of a 0-d w near 1 (in (15/16, 17/16)) once raised TypeError: np.greater of a
# 0-d array is a scalar, which np.logical_not(near, out=near) cannot write.
@pytest.mark.parametrize("expr, stable, shapes, args", [
    ("log1p(0.0 - mean(t))", False, None, (np.array([0.01, 0.02, 0.03]),)),
    ("log(1 - mean(t)) * sum(t)", True, None, (np.array([0.01, 0.02, 0.03]),)),
    ("log(1 - a) * sum(t)", True, {"t": (3,)}, (0.01, np.array([0.1, 0.2, 0.3]))),
])
def test_the_gradient_of_log_of_one_minus_a_tensor_traces_number(expr, stable, shapes, args):
    """A reduction's value (or a number input of a tensor trace) under log(1 - v), v near
    0: the NumPy function gives the naive form's value and gradient."""
    got = _flat(compile_grad(expr, stable=stable, shapes=shapes)(*args))
    want = _flat(compile_grad(expr.replace("log1p(0.0 - ", "log(1.0 - "), stable=False, shapes=shapes)(*args))
    for u, w in zip(got, want):
        np.testing.assert_allclose(u, w, rtol=1e-14, atol=0)


@pytest.mark.parametrize("x", [0.01, np.float64(-0.02), np.array(0.01), np.array(0.02, np.float32), -0.0])
def test_log1m_of_diff_of_one_number(x):
    want = np.log1p(0.0 - np.asarray(x))
    got = runtime.log1m_of_diff(x, 1.0 - np.asarray(x))
    assert np.ndim(got) == 0 and same_bits(got, want)


def test_log1mexp_raises_no_floating_point_error_inside_or_outside_its_quiet_range():
    """Inside _quiet_range errstate is skipped: no point may raise there, whichever branch
    runs on all of them; outside it the errors stay silenced."""
    for dtype, low in ((np.float64, -707.99), (np.float32, -86.99)):
        inside = [np.concatenate([_RNG.uniform(low, -0.7, 900), -10.0 ** _RNG.uniform(-15, -0.2, 3)]),
                  np.concatenate([-10.0 ** _RNG.uniform(-15, -0.2, 900), _RNG.uniform(low, -0.7, 3)]),
                  _RNG.uniform(low, -1e-6, 50), np.array([low, -1e-6])]
        # (with NaN or x > 0, log1mexp_pair computes its expm1 apart, with NumPy's warnings)
        outside = [np.array([0.0, -0.0, -np.inf, -900.0, -1e-300, -0.5]), np.array([-1e-300, -0.5])]
        for x in inside + outside + [np.array([-900.0, np.nan, 1.0, -np.inf])]:
            x = x.astype(dtype)
            with np.errstate(all="raise"):
                value = runtime.log1mexp(x)
            with np.errstate(all="raise" if not (np.isnan(x).any() or (x > 0).any()) else "ignore"):
                pair = runtime.log1mexp_pair(x)
            with np.errstate(all="ignore"):
                want = np.where(x > -math.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
                np.testing.assert_allclose(value, want, rtol=4 * np.finfo(dtype).eps, atol=0)
                np.testing.assert_allclose(pair[0], want, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_the_runtime_pairs_at_the_edges():
    """neg_expm1_pair is 0.0 - expm1(x) and exp(x) bit for bit; log1m_of_diff(x, 1 - x)
    is log1p(0.0 - x) to a few ulps, and exactly at ±0, 1, ±inf and NaN (+0.0 at both zeros)."""
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 709.8, -745.5, 1.0, math.log(2), -math.log(2)]
    for n in (1, 7, 40000):
        x = _RNG.uniform(-3, 3, n)
        x[:min(n, len(edges))] = edges[:min(n, len(edges))]
        with np.errstate(all="ignore"):
            value, e = runtime.neg_expm1_pair(x)
            assert same_bits(value, 0.0 - runtime.expm1(x)) and same_bits(e, np.exp(x))
            y = _RNG.uniform(-3, 0.99, n)
            y[:min(n, 9)] = [0.0, -0.0, -np.inf, np.inf, np.nan, 5e-324, -5e-324, 1.0, 0.25][:min(n, 9)]
            got, want = runtime.log1m_of_diff(y, 1.0 - y), np.log1p(0.0 - y)
        exact = ~np.isfinite(want) | (want == 0)
        assert same_bits(got[exact], want[exact])
        np.testing.assert_allclose(got[~exact], want[~exact], rtol=5.2e-16, atol=0)


# -- C's shared forms: split kernels, one point, float32, exported files ------------------------------

_C_FORMS = "log(1 - exp(x)) * y + (exp(x) - exp(-x))/2 + arccosh(y) + x"
_C_EDGES = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, -1e-310, 1.0, 1 + 2 ** -52, 0.5, 2.0 ** 28,
            1e300, -1e300, 710.47, 710.4758600739439, 710.5, -710.5, 709.78, -709.78, -709.79, -745.0, -745.2, 1e-300,
            -0.6931471805599453]


@needs_cc
def test_split_kernels_one_point_and_the_vm_give_the_same_bits(monkeypatch):
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 5)
    monkeypatch.setattr(c_backend, "PART", 3)
    g_c = compile_grad(_C_FORMS, backend="c", stable=True)
    assert "_part" in g_c.source and "xc_sinh_shared(" in g_c.source and "xc_log1mexp_slope(" in g_c.source
    g_vm = compile_grad(_C_FORMS, backend="vm", stable=True)
    n = 301
    x, y = _RNG.uniform(-30, 30, n), _RNG.uniform(0.5, 30, n)
    x[:len(_C_EDGES)] = _C_EDGES
    y[:len(_C_EDGES)] = np.abs(_C_EDGES)[::-1]
    with np.errstate(all="ignore"):
        batch, vm = _flat(g_c(x, y)), _flat(g_vm(x, y))
    assert all(same_bits(u, w) for u, w in zip(batch, vm))
    for k in range(len(_C_EDGES)):
        point = _flat(g_c(float(x[k]), float(y[k])))
        assert all(same_bits(p, b[k]) for p, b in zip(point, batch)), (x[k], y[k])


_FLOAT32_EDGES = [0.0, -0.0, 1e-45, -1e-45, -1e-40, math.inf, -math.inf, math.nan, 1.0, 1.0000001, 0.5, 2.0 ** 28,
                  3e38, -3e38, 88.7, 89.4, 89.5, -89.5, -87.3, -88.0, -103.0, -104.0, 20.0, -20.0, -0.6931472, 3.0]


@needs_cc
@pytest.mark.parametrize("dtype, edges", [("float64", _C_EDGES), ("float32", _FLOAT32_EDGES)])
def test_c_kernels_of_the_shared_forms_agree_with_numpy_at_the_edges(dtype, edges):
    """Within 4 ulps of the dtype, with inf and NaN where NumPy has them."""
    x = np.array(edges, dtype)
    expr = "log(1 - exp(x)) + (exp(x) - exp(-x))/2 + arccosh(x) + arcsinh(x)"
    g_c = compile_grad(expr, backend="c", stable=True, dtype=dtype)
    g_np = compile_grad(expr, backend="numpy", stable=True, dtype=dtype)
    with np.errstate(all="ignore"):
        for u, w in zip(_flat(g_c(x)), _flat(g_np(x))):
            ok = (u == w) | (np.isnan(u) & np.isnan(w)) | (np.abs(u - w) <= 4 * np.finfo(dtype).eps * np.abs(w))
            assert ok.all(), (x[~ok], u[~ok], w[~ok])


@needs_cc
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exported_kernels_with_the_shared_forms_build_under_strict_warnings(tmp_path, capsys, dtype):
    from exprcompiler.cli import main
    expr = "sinh(y)*z + arcsinh(z) + arccosh(w) + log1mexp(x)"
    assert main(["export", expr, "-o", str(tmp_path / "k"), "--kind", "grad", "--dtype", dtype]) == 0
    capsys.readouterr()
    source = (tmp_path / "k.c").read_text()
    assert all(f"{h}(" in source for h in ("xc_sinh_shared", "xc_hypot1_shared", "xc_acosh_root_shared",
                                         "xc_log1mexp_slope"))
    cc = c_build.shutil.which("cc") or c_build.shutil.which("gcc")
    done = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror", "-Wno-unknown-pragmas",
                           "-c", "-o", str(tmp_path / "k.o"), str(tmp_path / "k.c")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
