"""Constant indices, slices and reductions against the sizes bound at call time.

x[5] on a vector declared ("n",) type-checks, but needs n >= 6; x[3:] needs n >= 3;
max(x) needs n >= 1. The binding checks these before any kernel runs, so both
backends refuse with the same ShapeError (naming the input, the index and the sizes)
and a C kernel never reads out of range or allocates a negative size; every other
input gives NumPy's own answer. Derivative traces (the adjoint of x[5] fills zeros
shaped like x) are checked as well.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from exprcompiler import ShapeError, compile_expr, compile_grad, compile_jvp, compile_vjp
from exprcompiler.bench.runner import flat_arrays
from exprcompiler.shape_binding import ShapeBinder, concrete
from exprcompiler.trace.ir import Builder, trace_from_builder
from conftest import HAVE_CC, examples
from merged_cases import merged

KINDS = {"value": compile_expr, "grad": compile_grad, "jvp": compile_jvp, "vjp": compile_vjp}


pytestmark = pytest.mark.usefixtures("private_cache")


def _diagonal_of_a_slice():
    # diagonal has no spelling in the string language (SymPy's DiagonalOf gives it)
    b = Builder()
    A = b.input("A", ("n", "n"))
    corner = b.index(A, key=((1, None, None), (1, None, None)))
    return trace_from_builder(b, [("y", b.index(b.diagonal(corner), key=(2,)))])


def _arguments(compiled, sizes: dict, rng) -> list:
    return [rng.normal(size=concrete(compiled.trace.instrs[v].shape, sizes)) for _, v in compiled.trace.inputs]


def _outcome(compiled, args):
    """What a call gives: ("error", message) or ("ok", flat list of arrays)."""
    try:
        result = compiled(*args)
    except ShapeError as err:
        return "error", str(err)
    return "ok", flat_arrays(result)


# (program, shapes, sizes, the words the message has)
REFUSED = [
    ("x[5] * 2", {"x": ("n",)}, {"n": 3}, ["x[5] needs n >= 6, but n = 3", "input 'x' has shape (3,)"]),
    ("x[3]", {"x": ("n",)}, {"n": 3}, ["x[3] needs n >= 4, but n = 3"]),
    ("x[-4]", {"x": ("n",)}, {"n": 3}, ["x[-4] needs n >= 4, but n = 3"]),
    ("x[0]", {"x": ("n",)}, {"n": 0}, ["x[0] needs n >= 1, but n = 0"]),
    ("x[3:]", {"x": ("n",)}, {"n": 2}, ["x[3:] needs n >= 3, but n = 2"]),
    ("x[:-3]", {"x": ("n",)}, {"n": 2}, ["x[:-3] needs n >= 3, but n = 2"]),
    ("x[1:-1] * 3", {"x": ("n",)}, {"n": 1}, ["x[1:-1] needs n >= 2, but n = 1"]),
    ("x[2::1]", {"x": ("n",)}, {"n": 1}, ["x[2::1] needs n >= 2"]),
    ("x[1:][4]", {"x": ("n",)}, {"n": 5}, ["x[1:][4] needs n >= 6, but n = 5"]),
    ("(x * 2)[3]", {"x": ("n",)}, {"n": 3}, ["(x * 2)[3] needs n >= 4"]),
    ("W[:, 2]", {"W": (3, "n")}, {"n": 2}, ["W[:, 2] needs n >= 3, but n = 2", "input 'W' has shape (3, 2)"]),
    ("W[-3, 1:]", {"W": ("m", "n")}, {"m": 2, "n": 4}, ["W[-3, 1:] needs m >= 3, but m = 2"]),
    ("W[1, 4:]", {"W": ("m", "n")}, {"m": 2, "n": 3}, ["W[1, 4:] needs n >= 4, but n = 3"]),
    ("X[2:] @ w", {"X": ("n", 3), "w": (3,)}, {"n": 1}, ["X[2:] needs n >= 2, but n = 1"]),
    ("concatenate(X[2:], X[:-2], axis=1)", {"X": ("n", 2)}, {"n": 1}, ["X[2:] needs n >= 2"]),
    ("stack(x[1:], x[:-1])", {"x": ("n",)}, {"n": 0}, ["x[1:] needs n >= 1, but n = 0"]),
    ("reshape(x[2:], shape=(-1, 1))", {"x": ("n",)}, {"n": 1}, ["x[2:] needs n >= 2"]),
    ("y * x[4]", {"x": ("n",), "y": ("n",)}, {"n": 4}, ["x[4] needs n >= 5, but n = 4"]),
    # reductions without an identity: NumPy raises on them, both backends refuse
    ("max(x)", {"x": ("n",)}, {"n": 0}, ["max(x) needs n >= 1, but n = 0", "empty dimension (n = 0)"]),
    ("min(X, axis=0)", {"X": ("n", 2)}, {"n": 0}, ["min(X, axis=0) needs n >= 1", "a min over an empty"]),
    ("logsumexp(x)", {"x": ("n",)}, {"n": 0}, ["logsumexp(x) needs n >= 1"]),
    ("softmax(X, axis=0)", {"X": ("n", 2)}, {"n": 0}, ["softmax(X, axis=0) needs n >= 1"]),
    ("softmax(X)", {"X": (2, "n")}, {"n": 0}, ["needs n >= 1, but n = 0"]),
    ("max(x[3:])", {"x": ("n",)}, {"n": 3}, ["max(x[3:]) needs n >= 4, but n = 3", "empty dimension (n-3 = 0)"]),
    ("max(x[3:])", {"x": ("n",)}, {"n": 2}, ["x[3:] needs n >= 3, but n = 2"]),
    ("logsumexp(x[3:]) + max(x[2:])", {"x": ("n",)}, {"n": 3}, ["logsumexp(x[3:]) needs n >= 4"]),
    ("max(x[3:])", {"x": (3,)}, {}, ["max(x[3:])", "empty dimension (of size 0)"]),
    (_diagonal_of_a_slice(), None, {"n": 3}, ["diagonal(A[1:, 1:])[2] needs n >= 4, but n = 3"]),
]


def _as_scalar(program):
    return program if not isinstance(program, str) else f"sum({program})"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("case", range(len(REFUSED)), ids=[str(c[0]) for c in REFUSED])
def test_out_of_range_is_the_same_shape_error_on_both_backends(case, kind):
    """Every kind on NumPy; on C one kind per program, in turn (the refusal is the
    signature's, which both backends share, before any kernel runs; the C kernels'
    own checks: test_the_c_tensor_kernel_checks_its_own_sizes), so a quarter of the
    C builds."""
    program, shapes, sizes, words = REFUSED[case]
    if kind in ("grad", "vjp"):  # a scalar output: the seed's shape is () whatever n is
        program = _as_scalar(program)
    on_c = HAVE_CC and list(KINDS)[case % len(KINDS)] == kind
    messages = []
    for backend in ["numpy"] + (["c"] if on_c else []):
        f = KINDS[kind](program, shapes=shapes, backend=backend)
        with pytest.raises(ShapeError) as info:
            f(*_arguments(f, sizes, np.random.default_rng(0)))
        messages.append(str(info.value))
    assert len(set(messages)) == 1, messages
    for w in words:
        assert w in messages[0], (w, messages[0])


def test_each_trace_lists_its_needs_once():
    f = compile_vjp("max(x[3:]) + sum(x[5] * x[1:]) + x[-2]", shapes={"x": ("n",)})
    # in trace order, each stronger than the ones before: x[1:] and x[-2] are implied by
    # x[5], the adjoints' scatters by the primal indices
    assert ShapeBinder(f.trace, f.inputs).describe() == \
        ["x[3:] needs n >= 3", "max(x[3:]) needs n >= 4", "x[5] needs n >= 6"]
    assert ShapeBinder(compile_grad("sum(x * y)", shapes={"x": ("n",), "y": ("n",)}).trace, ("x", "y")).needs == []


def test_a_derived_size_is_never_negative_even_without_the_ops_rule(monkeypatch):
    # the safety net under the op rules: every "n-k" in the trace needs n >= k
    import dataclasses
    from exprcompiler import ops
    monkeypatch.setitem(ops.OPS, "index", dataclasses.replace(ops.OPS["index"], bounds=None))
    f = compile_expr("x[3:] * 2", shapes={"x": ("n",)})
    with pytest.raises(ShapeError, match=r"^x\[3:\] needs n >= 3, but n = 2 .*: its dimension n-3 would be -1$"):
        f(np.ones(2))


# (program, shapes, sizes, what NumPy computes): exactly at the boundary, and empty slices
BOUNDARY = [
    ("x[2]", {"x": ("n",)}, {"n": 3}, lambda x: x[2]),
    ("x[-3]", {"x": ("n",)}, {"n": 3}, lambda x: x[-3]),
    ("x[3:]", {"x": ("n",)}, {"n": 3}, lambda x: x[3:]),
    ("x[:-3]", {"x": ("n",)}, {"n": 3}, lambda x: x[:-3]),
    ("x[1:-1]", {"x": ("n",)}, {"n": 2}, lambda x: x[1:-1]),
    ("sum(x[3:])", {"x": ("n",)}, {"n": 3}, lambda x: np.sum(x[3:])),
    ("max(x[3:])", {"x": ("n",)}, {"n": 4}, lambda x: np.max(x[3:])),
    ("W[:, 2]", {"W": (3, "n")}, {"n": 3}, lambda W: W[:, 2]),
    ("W[-2, 1:]", {"W": ("m", "n")}, {"m": 2, "n": 1}, lambda W: W[-2, 1:]),
    ("max(x)", {"x": ("n",)}, {"n": 1}, lambda x: np.max(x)),
    ("softmax(X, axis=0)", {"X": ("n", 2)}, {"n": 1}, lambda X: np.ones((1, 2))),
    ("softmax(X, axis=0)", {"X": (2, "n")}, {"n": 0}, lambda X: np.zeros((2, 0))),  # the axis is not empty
    ("max(X, axis=0)", {"X": (2, "n")}, {"n": 0}, lambda X: np.zeros(0)),
    ("sum(x)", {"x": ("n",)}, {"n": 0}, lambda x: 0.0),
    ("mean(x)", {"x": ("n",)}, {"n": 0}, lambda x: np.nan),  # NumPy's mean of nothing, not an error
    ("norm(x)", {"x": ("n",)}, {"n": 0}, lambda x: 0.0),
    ("X @ w", {"X": ("n", "p"), "w": ("p",)}, {"n": 2, "p": 0}, lambda X, w: np.zeros(2)),
]


def _check_boundary(k: int, on_c=None) -> None:
    """BOUNDARY[k]: the value is NumPy's, the adjoint fills zeros shaped like the
    inputs; on NumPy, or `on_c(make, k, one-case kernel)`: case k's results on C."""
    program, shapes, sizes, numpy = BOUNDARY[k]
    f = compile_expr(program, shapes=shapes)
    args = _arguments(f, sizes, np.random.default_rng(1))
    with np.errstate(all="ignore"):
        want = np.asarray(numpy(*args), dtype=float)
    got = np.asarray(f(*args) if on_c is None else on_c(compile_expr, k, f)[0])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-14)
    vjp = compile_vjp(program, shapes=shapes)
    seeds = _arguments(vjp, sizes, np.random.default_rng(2))
    status, flat = _outcome(vjp, seeds) if on_c is None else ("ok", on_c(compile_vjp, k, vjp))
    assert status == "ok" and all(a.shape == s.shape for a, s in zip(flat[-len(args):], seeds)), flat


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # NumPy's, with its nan
@pytest.mark.parametrize("k", range(len(BOUNDARY)), ids=[c[0] for c in BOUNDARY])
def test_at_the_boundary_the_answer_is_numpys(k):
    _check_boundary(k)


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_at_the_boundary_the_c_answer_is_numpys():
    """Every BOUNDARY case in one C kernel per kind (merged_cases.py: two builds instead
    of one per case and kind; each case its own dimensions, bound to its sizes), called
    with the arguments the one-case NumPy kernels take."""
    results = {}
    for make, seed in ((compile_expr, 1), (compile_vjp, 2)):
        f = make(merged([(p, shapes) for p, shapes, _, _ in BOUNDARY], separate_dims=True), backend="c")
        kwargs = {}
        for k, (program, shapes, sizes, _) in enumerate(BOUNDARY):
            one = make(program, shapes=shapes)
            kwargs.update({f"c{k}_{name}": a for name, a in
                           zip(one.inputs, _arguments(one, sizes, np.random.default_rng(seed)))})
        status, flat = _outcome(f, [kwargs[name] for name in f.inputs])
        assert status == "ok", flat
        results[make] = dict(zip(f.trace.output_names, flat))
    failures = []
    for k, case in enumerate(BOUNDARY):
        try:
            _check_boundary(k, lambda make, k, one: [results[make][f"c{k}_{name}"]
                                                     for name in one.trace.output_names])
        except AssertionError as err:
            failures.append(f"{case[0]}: {err}")
    assert not failures, "\n".join(failures)


def test_a_seed_shaped_like_a_slice_binds_the_dimension():
    f = compile_vjp("x[1:-1] * 2", shapes={"x": ("n",)})          # y_bar is (n-2,)
    with pytest.raises(ShapeError, match=r"'y_bar': dimension 'n-2' is 1, but 'x' has n = 5, so n-2 = 3"):
        f(np.ones(5), np.ones(1))
    value, (x_bar,) = f(np.arange(4.0), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x_bar, [0.0, 2.0, 4.0, 0.0])


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_the_bare_c_function_checks_too():
    # Compiled.function skips the call's conversions, not the checks the kernel relies on
    g = compile_grad("sum(x[3:])", shapes={"x": ("n",)}, backend="c")
    with pytest.raises(ShapeError, match=r"x\[3:\] needs n >= 3, but n = 2"):
        g.function(np.ones(2))
    with pytest.raises(TypeError, match="expected 1 arrays"):
        g.function()
    assert g.function(np.ones(4))[0] == 1.0


# -- random constant keys against NumPy's own indexing ------------------------------------------
ITEMS = st.one_of(st.integers(-4, 4),
                  st.tuples(st.sampled_from([None, 0, 1, 2, 3]), st.sampled_from([None, -1, -2])))


def _text(item) -> str:
    if isinstance(item, int):
        return str(item)
    return ":".join("" if k is None else str(k) for k in item)


@functools.lru_cache(maxsize=None)
def _pair(program: str, shape: tuple):
    shapes = {"x": shape}
    return tuple(compile_jvp(program, shapes=shapes, backend=b) for b in ["numpy"] + (["c"] if HAVE_CC else []))


@given(item=ITEMS, two_d=st.booleans(), n=st.integers(0, 6))
@settings(max_examples=examples(30), deadline=None)   # a C build for most
@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_random_keys_give_numpys_answer_or_one_shape_error(item, two_d, n):
    key = item if isinstance(item, int) else slice(*item)
    text, shape, pykey = (f"x[:, {_text(item)}]", (2, "n"), (slice(None), key)) if two_d else \
        (f"x[{_text(item)}]", ("n",), key)
    rng = np.random.default_rng(n)
    x, x_dot = rng.normal(size=(2, n) if two_d else n), rng.normal(size=(2, n) if two_d else n)
    outcomes = [_outcome(f, [x, x_dot]) for f in _pair(text, shape)]
    try:
        want = x[pykey], x_dot[pykey]
    except IndexError:
        want = None
    event("refused" if outcomes[0][0] == "error" else "NumPy's answer")
    for status, got in outcomes:
        if status == "error":
            assert outcomes[0] == (status, got), outcomes   # one message on both backends
            # refused only where NumPy raises, or where its empty slice would be a negative size
            assert want is None or (isinstance(item, tuple) and n < (item[0] or 0) - (item[1] or 0)), (item, n)
            assert "needs n >= " in got and f"but n = {n}" in got, got
        else:
            assert want is not None, (item, n)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])


def test_the_c_tensor_kernel_checks_its_own_sizes():
    """An exported kernel is called from C with sizes nobody checked: it returns -2
    for a size too small for what it indexes, before touching an array."""
    from exprcompiler.backends import c_build
    from exprcompiler.backends.c_tensor import generate_c_tensor
    from exprcompiler.frontend import to_trace
    trace = to_trace("sum(x[5:] * y[1])", {"x": ("n",), "y": ("m",)})
    source, decl = generate_c_tensor(trace, func_name="k")
    assert "/* x[5:] needs n >= 5 */" in source and "/* y[1] needs m >= 2 */" in source
    ffi, lib = c_build.load(source, decl)
    x, y, out = np.arange(6.0), np.arange(3.0), np.zeros(1)

    def call(n, m):  # dims are sorted by name: m, n
        return lib.k(ffi.new("ptrdiff_t[]", [m, n]), 1, ffi.from_buffer("double[]", x),
                     ffi.from_buffer("double[]", y), ffi.from_buffer("double[]", out, require_writable=True))
    assert call(6, 3) == 0 and out[0] == 5.0
    assert [call(4, 3), call(6, 1), call(-1, 3), call(6, -2)] == [-2, -2, -2, -2]
