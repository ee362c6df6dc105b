"""The quick one-point paths of dense Jacobians and Hessians compiled to C
(exprcompiler/dense_point.py): the same results as api.Compiled's general path and
the NumPy backend, views of one new buffer per call, and every other call (ints,
strings, out=, seeds) still answered as the general path answers. (Batches through
the kernel's batch entry: tests/test_out.py.)"""

import numpy as np
import pytest

from exprcompiler import api, compile_hessian, compile_jacobian
from exprcompiler.dense_point import PointCompiled

EXPRS = "x*y + exp(z/4); sin(x) - y*y"
WRT = ["w", "z", "x", "y"]  # w absent: an input appended last; the kernel's order is x, y, z, w


@pytest.fixture(scope="module")
def jac():
    return (compile_jacobian(EXPRS, wrt=WRT, backend="c"), compile_jacobian(EXPRS, wrt=WRT, backend="numpy"))


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert type(g) is type(w) and np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


def test_calls_with_numbers_and_at_agree_with_numpy(jac):
    J, ref = jac
    assert isinstance(J, PointCompiled) and not isinstance(ref, PointCompiled)
    assert J.inputs != tuple(WRT)  # at() must reorder x
    point = {"x": 0.7, "y": -1.3, "z": 2.1, "w": 5.0}
    want = ref(**point)
    for _ in range(3):  # the first calls take the general path; the quick one is made at the second
        _same(J(**point), want)
        _same(J(*[point[k] for k in J.inputs]), want)
        _same(J.at(np.array([point[k] for k in WRT])), ref.at(np.array([point[k] for k in WRT])))
    values, jacobian = want
    assert values.shape == (2,) and jacobian.shape == (2, 4)
    assert np.all(jacobian[:, 0] == 0)  # d/dw
    np.testing.assert_allclose(jacobian[1, 2], np.cos(0.7))


def test_results_are_new_each_call(jac):
    J, _ = jac
    a = J(x=1.0, y=2.0, z=3.0, w=4.0)
    b = J(x=-1.0, y=0.5, z=0.0, w=4.0)
    assert not np.shares_memory(a[1], b[1]) and not np.shares_memory(a[0], b[0])
    assert a[1][0, 2] == 2.0 and b[1][0, 2] == 0.5  # dy... d(x*y)/dx = y, each its own


def test_other_calls_take_the_general_path(jac):
    J, ref = jac
    J(x=1.0, y=2.0, z=3.0, w=4.0)
    J(x=1.0, y=2.0, z=3.0, w=4.0)
    _same(J(x=1, y=2, z=3, w=4), ref(x=1, y=2, z=3, w=4))  # ints
    _same(J(x=True, y=2.0, z=np.float32(3.0), w=np.array(4.0)), ref(x=1.0, y=2.0, z=3.0, w=4.0))
    xs = np.linspace(0, 1, 5)
    for g, w in zip(J(x=xs, y=2.0, z=xs, w=0.0), ref(x=xs, y=2.0, z=xs, w=0.0)):  # a batch
        np.testing.assert_allclose(g, w, rtol=1e-13)
    with pytest.raises(TypeError, match="input 'y'"):
        J(x=1.0, y="2", z=3.0, w=4.0)
    with pytest.raises(TypeError, match="unexpected argument 'v'"):
        J(x=1.0, v=2.0, z=3.0, w=4.0)
    out = (np.empty(2), np.empty((2, 4)))
    assert J(1.0, 2.0, 3.0, 4.0, out=out) is not None
    _same((out[0], out[1]), ref(1.0, 2.0, 3.0, 4.0))
    x = np.array([4.0, 3.0, 1.0, 2.0])
    _same(J.at([4.0, 3.0, 1.0, 2.0]), ref.at(x))  # a list: PackedCall converts it
    strided = np.zeros(8)
    strided[::2] = x
    _same(J.at(strided[::2]), ref.at(x))
    with pytest.raises(ValueError, match="must hold"):
        J.at(np.zeros(3))
    with pytest.raises(TypeError, match="takes no second vector"):
        J.at(x, x)


def test_one_output_and_hessian():
    J1 = compile_jacobian(["x*y"], wrt=["x", "y"], backend="c")
    H = compile_hessian("x*x*y + sin(y)", wrt=["y", "x"], backend="c")
    assert isinstance(J1, PointCompiled) and isinstance(H, PointCompiled)
    for _ in range(3):
        v, j = J1.at(np.array([2.0, 3.0]))
        assert v == 6.0 and type(v) is float and j.tolist() == [[3.0, 2.0]]
        values, j = J1(x=2.0, y=3.0)
        assert values.tolist() == [6.0] and j.tolist() == [[3.0, 2.0]]
        value, grad, hess = H(x=2.0, y=0.5)
        general = api.Compiled.__call__(H, x=2.0, y=0.5)
        _same((value, grad, hess), general)
        assert type(value) is float and grad.shape == (2,) and hess.shape == (2, 2)
        _same(H.at(np.array([0.5, 2.0])), general)
    assert hess.tolist() == [[-np.sin(0.5), 4.0], [4.0, 1.0]]  # rows and columns in wrt order: y, x


def test_without_the_extension_the_quick_paths_go_through_cffi(monkeypatch, jac):
    from exprcompiler import dense_point
    monkeypatch.setattr(dense_point.c_entry, "load", lambda: None)
    J = compile_jacobian(EXPRS, wrt=WRT, backend="c")  # the kernel from the cache: no compiler run
    ref = jac[1]
    point = {"x": 0.25, "y": 2.0, "z": -1.0, "w": 0.0}
    x = np.array([point[k] for k in WRT])
    for _ in range(3):
        _same(J(**point), ref(**point))
        _same(J.at(x), ref.at(x))
    assert J._direct is False  # api.Compiled's point path, not the extension's entry
    _same(J.at(list(x)), ref.at(x))


# ---- the call itself: the object's own class, whose __call__ is the C entry ----

def _learnt(J):
    """J after two calls, its class's __call__ the C entry (skip where the extension
    does not load)."""
    J(*[0.5] * len(J.inputs))
    J(*[0.5] * len(J.inputs))
    if J._entry is False:
        pytest.skip("the one-point extension does not load here (c_entry.why_not())")
    return J


def _python_calls(call) -> list:
    """The Python functions that run during call() (sys.setprofile's 'call' events)."""
    import sys
    seen = []
    sys.setprofile(lambda frame, event, arg: seen.append(frame.f_code.co_qualname) if event == "call" else None)
    try:
        call()
    finally:
        sys.setprofile(None)
    return seen


def test_calls_by_name_position_and_mixed_run_no_python_frame(jac):
    J, ref = jac
    _learnt(J)
    assert type(J) is not PointCompiled and isinstance(J, PointCompiled)
    point = {"x": 0.7, "y": -1.3, "z": 2.1, "w": 5.0}
    ordered = [point[k] for k in J.inputs]
    xs = np.linspace(0.5, 1.5, 5)
    batch = {"x": xs, "y": 2.0 * xs, "z": 0.25, "w": xs[::-1]}
    outs = (np.full((5, 2), np.nan), np.full((5, 2, 4), np.nan))
    rest = {k: point[k] for k in J.inputs[2:]}
    calls = {"by name": lambda: J(**point), "by position": lambda: J(*ordered),
             "mixed": lambda: J(*ordered[:2], **rest),
             "batch by name": lambda: J(**batch), "out= by keyword": lambda: J(**batch, out=outs),
             "out= before the names": lambda: J(out=outs, **batch)}
    for label, call in calls.items():
        want = ref(**(batch if "batch" in label or "out" in label else point))
        _same(call(), want)
        assert _python_calls(call) == ["test_calls_by_name_position_and_mixed_run_no_python_frame.<locals>."
                                       "<lambda>"], label  # the lambda's frame, nothing of ours
    assert J(**batch, out=outs)[1] is outs[1]
    _same(outs, ref(**batch))
    assert "Compiled.__call__" in _python_calls(lambda: J(x=1.0, y=np.float32(2.0), z=3.0, w=4.0))  # general


@pytest.mark.parametrize("args, kwargs", [
    ((), {"x": 1.0, "y": 2.0, "z": 3.0}),                       # missing
    ((), {"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0, "v": 5.0}),   # extra name
    ((1.0, 2.0, 3.0, 4.0, 5.0), {}),                             # extra position
    ((1.0,), {"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0}),          # given twice
    ((), {"x": 1.0, "y": "2", "z": 3.0, "w": 4.0}),              # not a number
    ((), {"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0, "out": (1.0,)}),  # a bad out=
])
def test_wrong_calls_get_the_general_paths_errors(jac, args, kwargs):
    J, _ = jac
    _learnt(J)
    with pytest.raises((TypeError, ValueError)) as general:
        api.Compiled.__call__(J, *args, **kwargs)
    with pytest.raises(type(general.value), match=str(general.value).replace("(", r"\(").replace(")", r"\)")):
        J(*args, **kwargs)


def test_an_input_named_out_is_taken_by_position_only():
    """As the general path binds it (`out` is the keyword of out=): by position, never
    by name, and out= still means the result arrays."""
    J = _learnt(compile_jacobian("out * y; out - y", backend="c"))
    assert J.inputs == ("out", "y")
    assert J(2.0, y=3.0)[1].tolist() == J(2.0, 3.0)[1].tolist() == [[3.0, 2.0], [1.0, -1.0]]
    for kwargs in ({"out": 2.0, "y": 3.0}, {"y": 3.0}):
        with pytest.raises(TypeError, match="missing value for input 'out'"):
            J(**kwargs)
    outs = (np.empty((3, 2)), np.empty((3, 2, 2)))
    assert J(np.ones(3), y=np.arange(3.0), out=outs)[1] is outs[1]
    np.testing.assert_array_equal(outs[1][:, 0, 0], np.arange(3.0))


def test_a_dropped_function_is_freed_and_a_learnt_one_pickles(jac):
    import gc
    import inspect
    import pickle
    import pydoc
    import weakref
    J = _learnt(compile_jacobian(EXPRS, wrt=WRT, backend="c"))
    assert str(inspect.signature(J)) == str(inspect.signature(jac[1])) == "(*args, out=None, **kwargs)"
    assert "__call__(*args, out=None, **kwargs)" in pydoc.render_doc(J, renderer=pydoc.plaintext)
    copy = pickle.loads(pickle.dumps(J))  # by its recipe: a new object of PointCompiled
    point = {"x": 0.7, "y": -1.3, "z": 2.1, "w": 5.0}
    for _ in range(3):
        _same(copy(**point), J(**point))
    assert type(copy) is not type(J)
    call = type(J).__call__
    dropped = weakref.ref(J)
    del J
    gc.collect()
    assert dropped() is None
    with pytest.raises(ReferenceError):  # its class's __call__ kept on its own: no object to answer
        call(x="1", y=2.0, z=3.0, w=4.0)
