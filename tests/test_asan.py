"""Kernels built with AddressSanitizer and UBSan, run on edge shapes.

One subprocess, with the sanitizer runtime preloaded (Python itself is not
instrumented) and EXPRCOMPILER_EXTRA_CFLAGS adding -fsanitize to every build, compiles
tensor and scalar kernels and calls them at n = 0, 1, 2, at indices on the boundary,
on slices that are exactly empty and on shapes the binding refuses; every result is
checked against the NumPy backend. The test passes when the subprocess exits 0, says
so, and no sanitizer wrote a report: a kernel that reads one element too far, or
allocates a negative size, fails it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SANITIZE = "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

# Run in the subprocess. (program, shapes, kind, sizes to try): every size either
# gives the NumPy backend's numbers or the same ShapeError, and never a sanitizer report.
SCRIPT = r'''
import sys
import numpy as np
from exprcompiler.bench.runner import flat_arrays
from exprcompiler import (ShapeError, compile_expr, compile_grad, compile_hvp, compile_jvp,
                          compile_vjp)
from exprcompiler.backends import c_build
from exprcompiler.shape_binding import concrete
from exprcompiler.trace.ir import Builder, trace_from_builder

assert "-fsanitize=address,undefined" in " ".join(c_build.extra_flags()), c_build.extra_flags()
MAKE = {"value": compile_expr, "grad": compile_grad, "jvp": compile_jvp, "vjp": compile_vjp,
        "hvp": compile_hvp, "stable grad": lambda e, **kw: compile_grad(e, stable=True, **kw),
        "stable hvp": lambda e, **kw: compile_hvp(e, stable=True, **kw),
        "stable jvp": lambda e, **kw: compile_jvp(e, stable=True, **kw)}


def diagonal_trace():
    b = Builder()
    A = b.input("A", ("n", "n"))
    corner = b.index(A, key=((1, None, None), (1, None, None)))
    d = b.diagonal(corner)
    return trace_from_builder(b, [("y", b.sum(b.mul(b.index(d, key=(-1,)), d)))])


CASES = [
    ("x[1:-1] * x[0] + x[-1]", {"x": ("n",)}, "vjp", [{"n": n} for n in range(5)]),
    ("sum(W[:, 2] * v) + sum(W[1:, -1]) + sum(W[:-1, 1:] @ W[0, :-1])", {"W": ("m", "n"), "v": ("m",)},
     "grad", [{"m": m, "n": n} for m in (0, 1, 2) for n in (0, 2, 3)]),
    ("max(x[3:]) + logsumexp(x) + min(x[:-1]) + mean(x[2:])", {"x": ("n",)}, "grad",
     [{"n": n} for n in range(6)]),
    ("sum(softmax(X, axis=0) * softmax(X)) + sum(max(X, axis=1)) + norm(X)", {"X": ("n", "p")}, "grad",
     [{"n": n, "p": p} for n in (0, 1, 3) for p in (0, 1, 2)]),
    ("0.5 * sum((X @ w - y)**2) + sum(X.T @ y)", {"X": ("n", "p"), "w": ("p",), "y": ("n",)}, "hvp",
     [{"n": n, "p": p} for n in (0, 1, 5) for p in (0, 1, 3)]),
    ("concatenate(X[2:], X[:-2], axis=1) * stack(x[2:], x[:-2], axis=1)[:, 0:1]",
     {"X": ("n", 2), "x": ("n",)}, "jvp", [{"n": n} for n in range(5)]),
    ("reshape(x[2:], shape=(-1, 1)) * outer(x, x)[2:, :-1][:, 0]", {"x": ("n",)}, "vjp",
     [{"n": n} for n in range(5)]),
    (diagonal_trace(), None, "grad", [{"n": n} for n in range(5)]),
    # log_softmax's vectorized rows and its adjoint op (log_softmax_vjp): rows shorter and
    # longer than a vector, with tails; Hessian-vector products through the adjoint op
    ("sum(log_softmax(X, axis=0) * Y) + sum(log_softmax(X) * Y) + sum(max(X, axis=1)) + min(X[0])",
     {"X": ("n", "p"), "Y": ("n", "p")}, "grad", [{"n": n, "p": p} for n in (0, 1, 3) for p in (1, 2, 5, 17, 33)]),
    ("-sum(y * log_softmax(x)) + logsumexp(x)", {"x": ("n",), "y": ("n",)}, "hvp", [{"n": n} for n in (1, 2, 7, 9, 31)]),
    # log_softmax's tangent op (log_softmax_jvp) along each axis; a vector's log_softmax(x)[k]
    # as the stability rules write it (log_softmax_at_parts, log_softmax_at, log_softmax_at_vjp),
    # the index first, inside and last, and its HVPs (their derivative rules)
    ("log_softmax(X, axis=0) * Y + log_softmax(X) * Y", {"X": ("n", "p"), "Y": ("n", "p")}, "jvp",
     [{"n": n, "p": p} for n in (0, 1, 3) for p in (1, 2, 5, 17, 33)]),
    ("log(exp(x[2])/sum(exp(x))) - log(softmax(x)[0]) + x[4] - logsumexp(x)", {"x": ("n",)}, "stable grad",
     [{"n": n} for n in (0, 1, 3, 4, 5, 6, 17, 33)]),
    ("log(exp(x[1])/sum(exp(x)))", {"x": ("n",)}, "stable hvp", [{"n": n} for n in (1, 2, 7, 31)]),
    # several picks of one vector: one log_softmax_at_parts for all keys, the values as a
    # vector, one adjoint and one tangent op (the tangent's loops between the keys)
    ("log(exp(x[2])/sum(exp(x))) + 2*log(softmax(x)[0]) - (logsumexp(x) - x[3])", {"x": ("n",)}, "stable grad",
     [{"n": n} for n in (0, 2, 3, 4, 5, 17, 33)]),
    ("log(exp(x[0])/sum(exp(x))) + log(exp(x[3])/sum(exp(x)))", {"x": ("n",)}, "stable jvp",
     [{"n": n} for n in (3, 4, 5, 17)]),
    ("log(exp(x[1])/sum(exp(x))) - 3*log(exp(x[2])/sum(exp(x)))", {"x": ("n",)}, "stable hvp",
     [{"n": n} for n in (2, 3, 7, 31)]),
]


def arguments(f, sizes, rng):
    out = []
    for _, v in f.trace.inputs:
        shape = concrete(f.trace.instrs[v].shape, sizes)
        out.append(rng.normal(size=tuple(max(d, 0) for d in shape)))
    return out


def outcome(f, args):
    try:
        result = f(*args)
    except ShapeError as err:
        return str(err)
    return flat_arrays(result)


calls = refused = 0
for program, shapes, kind, sizes_list in CASES:
    f_np = MAKE[kind](program, shapes=shapes)
    f_c = MAKE[kind](program, shapes=shapes, backend="c")
    for sizes in sizes_list:
        args = arguments(f_np, sizes, np.random.default_rng(len(sizes_list)))
        want, got = outcome(f_np, args), outcome(f_c, args)
        calls += 1
        if isinstance(want, str):
            assert got == want, (program, sizes, want, got)
            refused += 1
            continue
        assert not isinstance(got, str), (program, sizes, got)
        for g, w in zip(got, want):
            assert g.shape == w.shape, (program, sizes, g.shape, w.shape)
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"{program} at {sizes}")

# The softmax family at edge values: a row with a single +inf, -inf, NaN, ties of the
# maximum (the random normals above never reach those loops' special passes: a pass
# copied into the rows' kernel wrote dst[j] for dst[row, j] at a single +inf)
EDGE_CASES = [("sum(log_softmax(X) * Y) + sum(softmax(X, axis=0) * Y) + sum(logsumexp(X, axis=1) * Y[:, 0])",
               {"X": ("n", "p"), "Y": ("n", "p")}, "grad"),
              ("-sum(y * log_softmax(x)) + log(exp(x[1])/sum(exp(x))) + log(softmax(x)[0])",
               {"x": ("n",), "y": ("n",)}, "stable grad")]
for program, shapes, kind in EDGE_CASES:
    f_np = MAKE[kind](program, shapes=shapes)
    f_c = MAKE[kind](program, shapes=shapes, backend="c")
    rng = np.random.default_rng(7)
    for n, p in ((2, 5), (3, 17), (5, 2), (1, 33), (4, 1)):
        sizes = {"n": n, "p": p}
        for edge in (np.inf, -np.inf, np.nan, "tie"):
            args = arguments(f_np, sizes, rng)
            x = args[0] if args[0].ndim == 2 else args[0][None, :]   # (its rows: views)
            for row in x:
                j = rng.integers(len(row))
                row[j] = row.max() if edge == "tie" else edge
            with np.errstate(all="ignore"):
                want, got = outcome(f_np, args), outcome(f_c, args)
            calls += 1
            if isinstance(want, str):   # (x[1] of one element: refused alike)
                assert got == want, (program, sizes, want, got)
                continue
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, equal_nan=True,
                                           err_msg=f"{program} at {sizes}, {edge}")

# The temporaries' workspace (c_tensor.Workspace), kept per thread between calls: sizes
# up and down (a kept block too large for a call would hide an overflow: blocks are exact)
# and four threads at once, each on its own data.
import threading
program, shapes, kind, _ = CASES[4]
f_np, f_c = MAKE[kind](program, shapes=shapes), MAKE[kind](program, shapes=shapes, backend="c")
rng = np.random.default_rng(3)
work = [arguments(f_np, {"n": n, "p": 3}, rng) for n in (40, 2, 40, 1, 7, 40)]
expected = [flat_arrays(f_np(*args)) for args in work]


def run(k, failures):
    try:
        for j in range(len(work)):
            args, want = work[(j + k) % len(work)], expected[(j + k) % len(work)]
            for g, w in zip(flat_arrays(f_c(*args)), want):
                np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    except AssertionError as err:
        failures.append(err)


failures = []
run(0, failures)
threads = [threading.Thread(target=run, args=(k, failures)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not failures, failures
calls += 5 * len(work)

# Scalar kernels: a batch of 0, 1, 2 and many points, a scalar broadcast against them,
# the packed one-point entry and out=.
g_np = compile_grad("sin(x) * y + x**2 / (1 + y**2)")
g_c = compile_grad("sin(x) * y + x**2 / (1 + y**2)", backend="c")
for n in (0, 1, 2, 3, 1001):
    x, y = np.linspace(-1, 1, n), 0.5
    # the general path, then the call plan of arrays (call_plan.batch_plan): a number,
    # an array of one point (stride 0), of the batch's length, strided (copied)
    for args in [(x, y), (x, y), (x, np.full(1, y)), (x, np.full(1, y)), (x, np.full(n, y)), (x, np.full(n, y)),
                 (np.repeat(x, 2)[::2], y), (np.repeat(x, 2)[::2], y)]:
        for g, w in zip(g_c(*args), g_np(*args)):
            np.testing.assert_allclose(np.asarray(g, dtype=float), np.asarray(w, dtype=float), rtol=1e-10,
                                       atol=1e-12)
    calls += 8
value, grad = g_c.at(np.array([0.3, 0.7]))
np.testing.assert_allclose(grad, g_np.at(np.array([0.3, 0.7]))[1], rtol=1e-10, atol=1e-12)
# the one-point extension (backends/c_entry.py), built with the same flags: g(*floats)
# and g.at(x) through it, and what it hands to the general path
from exprcompiler.backends import c_entry
assert c_entry.load() is not None, c_entry.why_not()
for _ in range(3):
    assert g_c(0.3, 0.7) == g_c(*np.array([0.3, 0.7]))
    v2, g2 = g_c.at(np.array([0.3, 0.7]))
    assert v2 == value and np.array_equal(g2, grad)
assert g_c._direct(0.3) is NotImplemented and g_c.at(np.array([0.3, 9.0, 0.7])[::2])[0] == value
h_c = compile_grad(" + ".join(f"(x{i} - x{i + 1}**2)**2" for i in range(80)), backend="c")
for _ in range(3):  # more than the entry's stack buffer holds
    xs = np.linspace(-1, 1, 81)
    assert h_c(*xs)[0] == h_c.at(xs)[0]
# by name (the names handed to the entry), all or after some by position, and what it
# leaves to the general path
x81 = np.linspace(-1, 1, 81)
named = {f"x{i}": float(v) for i, v in enumerate(x81)}
for _ in range(3):
    assert g_c(x=0.3, y=0.7) == g_c(0.3, y=0.7) == g_c(0.3, 0.7)
    assert h_c(**named) == h_c(*x81[:40], **{f"x{i}": named[f"x{i}"] for i in range(40, 81)}) == h_c(*x81)
assert g_c._direct(0.3, x=0.7) is NotImplemented and g_c._direct(x=0.3, z=0.7) is NotImplemented
# dense Jacobians and Hessians (dense_point.py): results as new arrays of runs of the
# outputs, x reordered into the kernel's inputs; a Hessian large enough to be split
# (c_split.point_entry on `omp simd` parts) and to need the heap for its outputs
from exprcompiler import compile_hessian, compile_jacobian
wrt = ["w", "z", "x", "y"]
J_c = compile_jacobian(["x*y + exp(z/4)", "sin(x) - y*y"], wrt=wrt, backend="c")
J_np = compile_jacobian(["x*y + exp(z/4)", "sin(x) - y*y"], wrt=wrt)
point = {"x": 0.7, "y": -1.3, "z": 2.1, "w": 5.0}
program = " + ".join(f"x{i} * sin(x{i + 1}) * x{i + 2}" for i in range(28))
H_c, H_np = compile_hessian(program, backend="c"), compile_hessian(program)
from exprcompiler.backends import c_split
assert c_split.UNIT_MARK in H_c.source and len(H_c.trace.outputs) > 64
xh = np.linspace(-1, 1, 30)
for _ in range(3):
    for got, want in [(J_c(**point), J_np(**point)), (J_c.at(np.array([point[k] for k in wrt])),
                                                         J_np.at(np.array([point[k] for k in wrt]))),
                      (H_c(*xh), H_np(*xh)), (H_c.at(xh), H_np.at(xh))]:
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    calls += 4
# a split kernel in the vector extension (c_split: parts, lanes, the tape's aligned rows)
# over ragged last blocks
from exprcompiler.backends import c_split
c_split.VECTOR_UP_TO, vector_up_to = 0, c_split.VECTOR_UP_TO
program = " + ".join(f"sin(x{i}) * (x{i} - x{i + 1}**2)**2" for i in range(80))
s_c, s_np = compile_grad(program, backend="c"), compile_grad(program)
c_split.VECTOR_UP_TO = vector_up_to
assert c_split.UNIT_MARK in s_c.source and "xc_lanes_sin(" in s_c.source
for n in (1, 3, 17, 1001):
    xs = [np.linspace(-1, 1, n) + 0.01 * i for i in range(81)]
    got, want = s_c(*xs), s_np(*xs)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10, atol=1e-12)
    for a, b in zip(got[1], want[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    calls += 1
for _ in range(3):  # one point through its own entry (c_split.point_entry), by name and packed
    got, want = s_c(**named), s_np(**named)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s_c.at(x81)[1], s_np.at(x81)[1], rtol=1e-10, atol=1e-12)
    calls += 2
out = (np.empty(7), (np.empty(7), np.empty(7)))
g_c(np.arange(7.0), np.arange(7.0), out=out)
np.testing.assert_allclose(out[1][0], g_np(np.arange(7.0), np.arange(7.0))[1][0], rtol=1e-10, atol=1e-12)

# g.sum over broadcast batches (point_sums.block_sums): many blocks along the first axis,
# a shorter last one, the kernel writing into the thread's kept buffer; every input its
# own allocation, so a read past a block's last point, or a write past the buffer, is
# outside an allocation
from exprcompiler import point_sums
point_sums.BLOCK_NUMBERS = 96
for x, y in ((np.linspace(-1, 1, 101).reshape(101, 1), np.linspace(0.5, 1, 3)),
             (np.linspace(-1, 1, 3).reshape(1, 3), np.linspace(0.5, 1, 101).reshape(101, 1)),
             (np.linspace(-1, 1, 1001), 0.5)):
    got, want = point_sums.flatten(g_c.sum(x, y))[0], point_sums.flatten(g_np(x, y))[0]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.broadcast_to(w, np.broadcast_shapes(x.shape, np.shape(y))).sum(),
                                   rtol=1e-10, atol=1e-12)
    calls += 1

print(f"SANITIZED RUN OK: {calls} calls, {refused} refused")
'''


def _sanitizer_runtime() -> str:
    """The path of the compiler's libasan.so (gcc's), or skip: the runtime preloaded
    has to be the one of the compiler that exprcompiler builds with."""
    from exprcompiler.backends import c_build
    try:
        compiler, version = c_build.find_compiler()
    except Exception as err:  # noqa: BLE001 - any reason there is no compiler is a skip
        pytest.skip(f"no C compiler: {err}")
    try:
        path = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"cannot ask {compiler} for its sanitizer runtime: {err}")
    if not os.path.isabs(path) or not os.path.exists(path):
        pytest.skip(f"{compiler} ({version}) has no libasan.so: the sanitizer test needs gcc "
                    f"and its AddressSanitizer runtime (Debian: libasan8)")
    return path


def _sanitized(tmp_path, text: str, done_mark: str) -> None:
    """Run `text` in a subprocess with the sanitizers on every build; it must say
    `done_mark`, exit 0, leave no sanitizer report, and its kernels must be instrumented."""
    libasan = _sanitizer_runtime()
    script = tmp_path / "sanitized_run.py"
    script.write_text(textwrap.dedent(text))
    cache = tmp_path / "cache"
    env = dict(os.environ,
               EXPRCOMPILER_CACHE=str(cache),
               EXPRCOMPILER_EXTRA_CFLAGS=SANITIZE,
               LD_PRELOAD=libasan,
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    # (a hang still fails; a sanitized run of many kernel builds took 82-267 s at load 10-14,
    # within 35 s of the 300 s this was)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=900)
    report = f"exit status {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-8000:]}"
    assert done.returncode == 0, report
    assert done_mark in done.stdout, report
    for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"):
        assert mark not in done.stderr, report
    # the kernels really were instrumented (else this test would prove nothing)
    libraries = list(cache.rglob("*.so"))
    assert libraries and all(b"__asan_report" in lib.read_bytes() for lib in libraries), libraries


@pytest.mark.slow  # (CI runs it with -m slow; the README's run stays under 3 minutes)
def test_kernels_are_clean_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    _sanitized(tmp_path, SCRIPT, "SANITIZED RUN OK")


# The batch entry of dense Jacobians and Hessians (c_entry.run_entry, dense_point.py):
# a one-function and a split kernel at n = 0, 1, 2, 3, 17, 1001, with and without out=,
# strided and reversed columns, numbers and size-1 arrays mixed in, bad outs refused
# before anything is written, and 71 inputs (142 outputs) so that the inputs, their views
# and the out pointers are on the heap; every result the general path's, bit for bit.
BATCH_SCRIPT = r'''
import numpy as np
from exprcompiler import compile_hessian, compile_jacobian, api
from exprcompiler.backends import c_build, c_entry, c_split
assert "-fsanitize=address,undefined" in " ".join(c_build.extra_flags())
assert c_entry.load() is not None, c_entry.why_not()
general = api.Compiled.__call__
wrt = ["w", "z", "x", "y"]
J = compile_jacobian(["x*y + exp(z/4)", "sin(x) - y*y"], wrt=wrt, backend="c", threads=1)
program = " + ".join(f"x{i} * sin(x{i + 1}) * x{i + 2}" for i in range(28))
H = compile_hessian(program, backend="c")
assert c_split.UNIT_MARK in H.source
calls = 0
for f in (J, H):
    k = len(f.inputs)
    for _ in range(3):
        f(*[np.ones(3)] * k)
    assert f._entry, f._entry
    for n in (0, 1, 2, 3, 17, 1001):
        xs = [np.linspace(-1, 1, n) + 0.1 * i for i in range(k)]
        want = general(f, *xs)
        got = f(*xs)
        outs = tuple(np.full(w.shape, np.nan) for w in want)
        assert f._entry(outs, *xs) is not NotImplemented
        for g, o, w in zip(got, outs, want):
            assert np.array_equal(g, w) and np.array_equal(o, w)
        # strided, reversed, broadcast scalars and size-1 arrays
        X = np.stack(xs, axis=1) if n else np.zeros((0, k))
        cols = [X[:, i] for i in range(k)]
        cols[0] = cols[0][::-1].copy()[::-1]
        assert all(np.array_equal(g, w) for g, w in zip(f(*cols), want))
        if n:
            mixed = [0.5, np.array(0.25), np.array([0.75])] + xs[3:]
            got = f(*mixed[:k])
            ref = general(f, *mixed[:k])
            assert all(np.array_equal(g, w) for g, w in zip(got, ref))
            if n > 1:
                # bad outs: refused by the general path, nothing written
                for bad in (outs[:-1], tuple(o[..., :1] if o.ndim > 1 else o for o in outs),
                            tuple(np.empty(o.shape, np.float32) for o in outs)):
                    assert f._entry(bad, *xs) is NotImplemented
                    try:
                        f(*xs, out=bad)
                    except (TypeError, ValueError):
                        pass
                    else:
                        raise AssertionError("accepted a bad out")
        calls += 4
# many inputs and outputs: items, views and out pointers on the heap
exprs = [" + ".join(f"x{i} * x{i + 1}" for i in range(70)), " + ".join(f"sin(x{i})" for i in range(71))]
H2 = compile_jacobian(exprs, backend="c", threads=1)
xs = [np.linspace(-1, 1, 33) + 0.01 * i for i in range(71)]
for _ in range(3):
    got = H2(*xs)
want = general(H2, *xs)
assert H2._entry(None, *xs) is not NotImplemented
assert all(np.array_equal(g, w) for g, w in zip(got, want))
outs = tuple(np.empty(w.shape) for w in want)
assert H2(*xs, out=outs)[1] is outs[1] and np.array_equal(outs[1], want[1])
print(f"SANITIZED BATCH OK: {calls} calls")
'''


@pytest.mark.slow
def test_the_jacobian_batch_entry_is_clean_under_the_sanitizers(tmp_path):
    _sanitized(tmp_path, BATCH_SCRIPT, "SANITIZED BATCH OK")


# The stability rewrites' C helpers (c_exp's reductions, the shared sinh/cosh, log1mexp's
# slope, the three-term hypot and logaddexp, the arcsinh/arccosh slopes) convert doubles
# to integers and scale by powers of two: at NaN, ±inf, 1e308 or subnormals a conversion
# out of range would be undefined behaviour. Per-point kernels and the tape VM, stable
# forms, at such points; each result where NumPy has a NaN has one too.
STABLE_SCRIPT = r'''
import numpy as np
from exprcompiler import compile_grad

edges = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e308, -1e308, 1e20, -1e20,
                  710.5, 711.0, -745.2, -746.0, 709.78, -709.79, 0.5, -0.5, 1.0, 1.5, 30.0, -30.0])
rng = np.random.default_rng(7)
for text in ["(exp(x) - exp(-x))/2", "log(1 - exp(x))", "exp(x) - 1", "1 - exp(x)", "sqrt(x**2 + y**2 + z**2)",
             "log(exp(x) + exp(y) + exp(z))", "log(x + sqrt(x**2 + 1))", "log(x + sqrt(x**2 - 1))",
             "sigmoid(x)*(1 - sigmoid(x))", "tanh(x) + log(1 - x) + log(1 + x)",
             "-(0.3*log(sigmoid(x)) + 0.7*log(1 - sigmoid(x)))"]:
    want = compile_grad(text, stable=True)
    for backend in ("c", "vm"):
        g = compile_grad(text, stable=True, backend=backend)
        args = [edges] + [rng.permutation(edges) for _ in g.inputs[1:]]
        with np.errstate(all="ignore"):
            got, expected = g(*args), want(*args)
        for u, w in zip([got[0], *got[1]], [expected[0], *expected[1]]):
            assert np.array_equal(np.isnan(u), np.isnan(w)), (text, backend, u, w)
print("STABLE FORMS OK")
'''


@pytest.mark.slow
def test_the_stable_forms_c_helpers_are_clean_under_the_sanitizers(tmp_path):
    _sanitized(tmp_path, STABLE_SCRIPT, "STABLE FORMS OK")
