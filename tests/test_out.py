"""`out=`: results written into caller-owned arrays, on both backends, small and
blocked batches, with the same numbers as allocating calls; bad buffers are refused
before anything is written."""

import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_hessian, compile_jacobian, compile_jvp, compile_vjp
from exprcompiler.api import BLOCK
from conftest import backends_here, in_threads

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"

BACKENDS = backends_here("c")


pytestmark = pytest.mark.usefixtures("private_cache")


def points(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, n)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [7, 2 * BLOCK + 5])  # one piece, and blocks with a tail
def test_grad_into_out_equals_allocating_call(backend, n):
    g = compile_grad(GRIEWANK, backend=backend)
    x1, x2 = points(n)
    want_y, (want_g1, want_g2) = g(x1, x2)
    y, g1, g2 = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    got = g(x1, x2, out=(y, (g1, g2)))
    assert got[0] is y and got[1][0] is g1 and got[1][1] is g2
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(g1, want_g1)
    np.testing.assert_array_equal(g2, want_g2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flat_out_and_scalar_broadcast(backend):
    g = compile_grad("x * y + 2", backend=backend)
    x = np.linspace(-1, 1, 5)
    outs = [np.empty(5) for _ in range(3)]
    y, (gx, gy) = g(x, 3.0, out=outs)  # a flat list works too
    np.testing.assert_array_equal(y, 3 * x + 2)
    np.testing.assert_array_equal(gx, np.full(5, 3.0))  # a constant partial, broadcast
    np.testing.assert_array_equal(gy, x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_with_matrix_batch_and_every_kind(backend):
    x1, x2 = (a.reshape(3, 4) for a in points(12))
    f = compile_expr(GRIEWANK, backend=backend)
    y = np.empty((3, 4))
    assert f(x1, x2, out=y) is y
    np.testing.assert_array_equal(y, f(x1, x2))
    jvp = compile_jvp(GRIEWANK, backend=backend)
    bufs = (np.empty((3, 4)), np.empty((3, 4)))
    jvp(x1, x2, 1.0, 0.0, out=bufs)
    np.testing.assert_array_equal(bufs[1], jvp(x1, x2, 1.0, 0.0)[1])
    vjp = compile_vjp(GRIEWANK, backend=backend)
    bufs = (np.empty((3, 4)), (np.empty((3, 4)), np.empty((3, 4))))
    vjp(x1, x2, 2.0, out=bufs)
    np.testing.assert_array_equal(bufs[1][1], vjp(x1, x2, 2.0)[1][1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_may_be_an_input(backend):
    f = compile_expr("exp(x) + x", backend=backend)
    x = np.linspace(0, 1, 2 * BLOCK + 3)
    want = f(x)
    assert f(x, out=x) is x
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_point_evaluation_into_zero_d_arrays(backend):
    g = compile_grad("x**2", backend=backend)
    y, gx = np.empty(()), np.empty(())
    g(3.0, out=(y, (gx,)))
    assert float(y) == 9.0 and float(gx) == 6.0


@pytest.mark.parametrize("bad, message", [
    ((np.empty(4), np.empty(4)), "expected 3 arrays"),
    ((np.empty(4), (np.empty(4), 1.0)), "out= array 2: expected a NumPy array, got float"),
    ((np.empty(4), (np.empty(5), np.empty(4))), "out= array 1: expected float64 of shape (4,)"),
    ((np.empty(4, dtype=np.float32), (np.empty(4), np.empty(4))), "got float32"),
    ((np.empty(8)[::2], (np.empty(4), np.empty(4))), "C-contiguous"),
])
def test_bad_out_is_refused_before_writing(bad, message):
    g = compile_grad("x * y")
    with pytest.raises((TypeError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        g(np.ones(4), np.ones(4), out=bad)


def test_overlapping_outs_are_refused():
    g = compile_grad("x * y")
    buf = np.zeros(8)
    with pytest.raises(ValueError, match="overlaps out= array 0"):
        g(np.ones(4), np.ones(4), out=(buf[:4], (buf[:4], np.empty(4))))
    x = np.ones(5)
    with pytest.raises(ValueError, match="overlaps an input"):
        g(x[:4], x[:4], out=(x[1:], (np.empty(4), np.empty(4))))
    assert np.all(x == 1) and np.all(buf == 0)


def test_read_only_out_is_refused():
    y = np.empty(3)
    y.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        compile_expr("x + 1")(np.ones(3), out=y)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", [(), (5,), (2, 3), (0,)])
def test_jacobian_and_hessian_come_in_their_final_layout_and_take_out(backend, batch):
    """Each entry of a Jacobian or Hessian is a trace output that the kernel stores
    straight into its place in a C-contiguous (batch..., m, n) array — the caller's
    with out=, the same numbers as the allocating call and as the one-point call."""
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0.5, 2.0, batch), rng.uniform(0.5, 2.0, batch)
    J = compile_jacobian("x * y; sin(x) - y; x / y", backend=backend)
    H = compile_hessian(GRIEWANK, wrt="x2, x1", backend=backend)
    for f, suffixes in ((J, [(3,), (3, 2)]), (H, [(), (2,), (2, 2)])):
        got = f(x, y)
        for r, sfx in zip(got, suffixes):
            assert np.shape(r) == batch + sfx
            if np.ndim(r):
                assert r.flags.c_contiguous and r.flags.owndata
        outs = tuple(np.full(batch + sfx, np.nan) for sfx in suffixes)
        into = f(x, y, out=outs)
        assert all(a is b for a, b in zip(into, outs))
        for a, b in zip(outs, got):
            np.testing.assert_array_equal(a, b)
        for idx in np.ndindex(*batch):  # every point as numbers: the one-point path (in C,
            for a, b in zip(f(float(x[idx]), float(y[idx])), got):  # scalar sin, not libmvec's)
                np.testing.assert_allclose(a, np.asarray(b)[idx], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_call_time_sweeps_take_out_too(backend):
    """Hessians and Jacobians of tensors (one sweep per element, at call time) and the
    forward-mode tensor gradient follow the same out= convention, and refuse a wrong
    array before writing anything."""
    shapes = {"x": (3,), "A": (2, 3)}
    x, A = np.array([0.5, -1.0, 2.0]), np.arange(6.0).reshape(2, 3) / 5
    H = compile_hessian("sum(sin(x) * x)", wrt="x", backend=backend, shapes={"x": (3,)})
    J = compile_jacobian("A @ exp(x)", wrt="x", backend=backend, shapes=shapes)
    G = compile_grad("sum(x * x * x)", mode="forward", backend=backend, shapes={"x": (3,)})
    for f, args in ((H, (x,)), (J, (A, x) if J.inputs[0] == "A" else (x, A)), (G, (x,))):
        want = f(*args)
        leaves = [np.asarray(r, dtype=float) for r in (want[:1] + tuple(want[1]) if f is G else want)]
        outs = [np.full(np.shape(r), np.nan) for r in leaves]
        nested = (outs[0], tuple(outs[1:])) if f is G else tuple(outs)
        got = f(*args, out=nested)
        for o, r in zip(outs, leaves):
            np.testing.assert_array_equal(o, r)
        assert (got[1][0] if f is G else got[-1]) is outs[-1]
        bad = [np.full(np.shape(r), np.nan) for r in leaves]
        bad[-1] = np.empty(np.shape(leaves[-1]) + (1,))
        with pytest.raises(ValueError, match=f"out= array {len(leaves) - 1}: expected float64 of shape"):
            f(*args, out=(bad[0], tuple(bad[1:])) if f is G else tuple(bad))
        assert np.isnan(bad[0]).all()   # nothing written


# ---- dense C Jacobians and Hessians: batches straight to the kernel (dense_point.py) ----

C_ONLY = pytest.mark.skipif("c" not in BACKENDS, reason="no C compiler")


@pytest.fixture(scope="module")
def dense_c():
    """A Jacobian and a Hessian compiled to C (the same kernels as above), their batch
    entry learnt (it is made at the second call)."""
    J = compile_jacobian("x * y; sin(x) - y; x / y", backend="c")
    H = compile_hessian(GRIEWANK, wrt="x2, x1", backend="c")
    for f in (J, H):
        f(np.ones(2), np.ones(2))
        f(np.ones(2), np.ones(2))
        if f._entry is False:
            pytest.skip("the one-point extension does not load here (c_entry.why_not())")
    return J, H


def _general(f, *args, out=None):
    """The general path (the C runner through cffi), whatever the object has learnt."""
    from exprcompiler import api
    return api.Compiled.__call__(f, *args, out=out)


@C_ONLY
@pytest.mark.parametrize("batch", [(1,), (6,), (2, 3), (0,), (1001,)])
def test_batch_entry_gives_the_general_paths_bits(dense_c, batch):
    rng = np.random.default_rng(7)
    x, y = rng.uniform(0.5, 2.0, batch), rng.uniform(0.5, 2.0, batch)
    for f, suffixes in zip(dense_c, ([(3,), (3, 2)], [(), (2,), (2, 2)])):
        want = _general(f, x, y)
        outs = tuple(np.full(batch + sfx, np.nan) for sfx in suffixes)
        assert f._entry(outs, x, y) is not NotImplemented  # taken by the entry, not handed on
        for got in (f(x, y), f(x1=x, x2=y) if f is dense_c[1] else f(x=x, y=y), f(x, y, out=outs), outs):
            assert type(got) is tuple and len(got) == len(suffixes)
            for g, w, sfx in zip(got, want, suffixes):
                assert type(g) is np.ndarray and g.shape == batch + sfx and g.flags.c_contiguous
                np.testing.assert_array_equal(g, w)
        assert all(a is b for a, b in zip(f(x, y, out=list(outs)), outs))


@C_ONLY
def test_batch_entry_takes_strided_and_broadcast_inputs(dense_c):
    J, _ = dense_c
    X = np.random.default_rng(1).uniform(0.5, 2.0, (9, 4))
    want = _general(J, X[:, 1].copy(), X[:, 3].copy())
    for x, y in ((X[:, 1], X[:, 3]), (X[::-1, 1][::-1], X[:, 3])):
        assert J._entry(None, x, y) is not NotImplemented
        for g, w in zip(J(x, y), want):
            np.testing.assert_array_equal(g, w)
    y0 = X[0, 3]
    want = _general(J, X[:, 1].copy(), np.full(9, y0))
    for scalar in (y0, np.float64(y0), np.array(y0), np.array([y0])):
        assert J._entry(None, X[:, 1], scalar) is not NotImplemented
        for g, w in zip(J(X[:, 1], scalar), want):
            np.testing.assert_array_equal(g, w)


@C_ONLY
def test_batch_entry_leaves_the_rest_to_the_general_path(dense_c, monkeypatch):
    """What the entry does not take — other dtypes, lists, subclasses, broadcasting
    that adds dimensions, a batch for threads=None's choice — gives NotImplemented and
    the general path's answer."""
    J, _ = dense_c
    x = np.arange(1.0, 7.0) / 4  # exact in float32
    want = _general(J, x, 2.0 * x)
    for args in ((x.astype(np.float32), 2.0 * x), (list(x), 2.0 * x), (x.view(np.matrix), 2.0 * x),
                 (x[None, :], 2.0 * x), (x[:, None], 2.0 * x)):
        assert J._entry(None, *args) is NotImplemented
    for args in ((x.astype(np.float32), 2.0 * x), (list(x), 2.0 * x)):
        np.testing.assert_array_equal(J(*args)[1], want[1])
    assert J(x[:, None], 2.0 * x)[1].shape == (6, 6, 3, 2)  # broadcast to (6, 6) by the general path
    from exprcompiler.backends import c_run
    monkeypatch.setattr(c_run, "PARALLEL_FROM", 4)
    K = compile_jacobian("x * y; sin(x) - y; x / y", backend="c")  # threads=None, the cached kernel
    for _ in range(3):
        got = K(x, 2.0 * x)
    assert K._entry(None, x, 2.0 * x) is NotImplemented and K._entry(None, x[:3], 1.0) is not NotImplemented
    np.testing.assert_array_equal(got[1], want[1])


@C_ONLY
@pytest.mark.parametrize("bad, message", [
    (lambda: (np.empty((4, 3)), np.empty((4, 2, 3))), r"out= array 1: expected float64 of shape \(4, 3, 2\)"),
    (lambda: (np.empty((4, 3)), np.empty((4, 3, 2), np.float32)), "got float32"),
    (lambda: (np.empty((4, 3)),), "expected 2 arrays"),
    (lambda: (np.empty((4, 3)), np.empty((4, 3, 2, 2))[..., 0]), "C-contiguous"),
    (lambda: (np.empty((4, 3)), 0.0), "out= array 1: expected a NumPy array, got float"),
    (lambda: (np.empty((4, 3)), _read_only(np.empty((4, 3, 2)))), "writable"),
    (lambda: _overlapping(), "overlaps out= array 0"),
])
def test_batch_entry_refuses_bad_out_before_writing(dense_c, bad, message):
    J, _ = dense_c
    x, y = np.linspace(0.5, 2.0, 4), np.full(4, 1.5)
    outs = bad()
    before = [np.array(o, copy=True) for o in outs]
    assert J._entry(outs, x, y) is NotImplemented
    with pytest.raises((TypeError, ValueError), match=message):
        J(x, y, out=outs)
    for o, b in zip(outs, before):
        np.testing.assert_array_equal(np.asarray(o), b)


def _read_only(a):
    a.setflags(write=False)
    return a


def _overlapping():
    buf = np.zeros(4 * 3 + 4 * 3 * 2 - 1)
    return buf[:12].reshape(4, 3), buf[11:].reshape(4, 3, 2)


@C_ONLY
def test_batch_entry_hands_subclasses_to_the_general_path(dense_c):
    class Tagged(np.ndarray):
        pass
    J, _ = dense_c
    x, y = np.linspace(0.5, 2.0, 4), np.full(4, 1.5)
    outs = (np.empty((4, 3)), np.empty((4, 3, 2)).view(Tagged))
    assert J._entry(outs, x, y) is NotImplemented
    assert J(x, y, out=outs)[1] is outs[1]
    np.testing.assert_array_equal(outs[1], _general(J, x, y)[1])


@C_ONLY
def test_batch_entry_and_inputs_as_out(dense_c):
    """An out= array may be an input itself (each point is read before it is
    written), never another view of its memory."""
    _, H = dense_c
    x1, x2 = np.linspace(0.5, 2.0, 5), np.linspace(1.0, 1.5, 5)
    want = _general(H, x1, x2)
    grad, hess = np.empty((5, 2)), np.empty((5, 2, 2))
    a, b = x1.copy(), x2.copy()
    assert H(a, b, out=(b, grad, hess))[0] is b
    np.testing.assert_array_equal(b, want[0])
    np.testing.assert_array_equal(hess, want[2])
    buf = np.linspace(0.5, 2.0, 6)
    shifted = buf[1:]
    with pytest.raises(ValueError, match="overlaps an input"):
        H(buf[:5], x2, out=(shifted, grad, hess))
    np.testing.assert_array_equal(buf, np.linspace(0.5, 2.0, 6))
    J, _ = dense_c
    block = np.zeros((5, 3, 2))
    with pytest.raises(ValueError, match="overlaps an input"):  # an input inside a result
        J(block[:, 0, 0], x2, out=(np.empty((5, 3)), block))
    assert not block.any()


@C_ONLY
def test_batch_entry_from_several_threads(dense_c):
    """The entry keeps no state between calls and runs the kernel without the GIL:
    threads calling it at once each get their own numbers."""
    J, _ = dense_c
    xs = [np.linspace(0.5, 2.0, 257) + 0.01 * k for k in range(4)]
    wants = [_general(J, x, 1.5 * x) for x in xs]
    failures = []

    def work(k):
        outs = (np.empty((257, 3)), np.empty((257, 3, 2)))
        for _ in range(50):
            for got in (J(xs[k], 1.5 * xs[k]), J(xs[k], 1.5 * xs[k], out=outs)):
                if not all(np.array_equal(g, w) for g, w in zip(got, wants[k])):
                    failures.append(k)
    in_threads(work)
    assert not failures
