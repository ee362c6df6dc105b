"""NumPy's one-point variant where Python's math refuses (log(0), sqrt(-1), exp(1000),
0/0, 1/-0.0, x**-0.5 at -0.0): every way a point of floats reaches it — in order, by
name, np.float64 numbers, `g.at(x)` — gives NumPy's answer (the generated NumPy
function at np.float64 scalars: inf, NaN and signed zeros bit for bit), nested as the
call nests it, without a warning, whatever error state the caller has set. The
variant hands the point to that answer itself (numpy_backend.load_point), also where
it is a statement program and where an input is named like the name it calls.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_jvp, compile_vjp
from exprcompiler.backends import numpy_backend
from conftest import leaves

CASES = [
    (compile_grad, "log(x) + 1/y", (0.0, 0.0)),           # ValueError, ZeroDivisionError
    (compile_grad, "sqrt(x) * y", (-1.0, 2.0)),           # ValueError: NaN
    (compile_grad, "exp(x) * y", (1000.0, 1.0)),          # OverflowError: inf
    (compile_expr, "x / y", (0.0, 0.0)),                  # 0/0
    (compile_grad, "x**0.5 + y", (-0.0, 1.0)),            # pow(-0.0, -0.5): inf
    (compile_grad, "1/x + y", (-0.0, 2.0)),               # -inf, the zero's sign kept
    (compile_grad, "arctanh(x) * y", (1.0, 2.0)),
    (compile_jvp, "log(x) * y", (0.0, 1.0, 1.0, 0.0)),
    (compile_vjp, "sin(x); log(y)", (0.5, 0.0, 1.0, 1.0)),
    (compile_grad, "sigmoid(x) * log(y)", (0.0, 0.0)),    # no math variant: NumPy on floats
]
IDS = [f"{make.__name__}:{expr}" for make, expr, _ in CASES]


def _form(result):
    """The nesting of a result, its leaves' types in place of their values."""
    return tuple(_form(r) for r in result) if isinstance(result, tuple) else type(result)


def _bits(numbers) -> list:
    return [np.float64(v).tobytes() for v in numbers]


def _numpy_answer(f, values) -> list:
    """The generated NumPy function at np.float64 scalars, its outputs as floats."""
    with np.errstate(all="ignore"):
        return [float(r) for r in leaves(f.function(*map(np.float64, values)))]


def _quietly(call):
    """call(), its warnings recorded under the strictest state a caller can set."""
    with warnings.catch_warnings(record=True) as seen, np.errstate(all="raise"):
        warnings.simplefilter("always")
        result = call()
        assert np.geterr()["divide"] == "raise"  # the caller's state, untouched
    return result, len(seen)


@pytest.mark.parametrize("make, expr, values", CASES, ids=IDS)
def test_where_math_refuses_every_entry_gives_numpys_answer(make, expr, values):
    want = None
    names = None
    for entry in ("order", "name", "float64"):
        f = make(expr)
        names = f.inputs
        want = _bits(_numpy_answer(f, values))
        assert not all(np.isfinite(_numpy_answer(f, values))), "a point where math refuses"
        form = _form(f(*values))
        for _ in range(3):  # the general path, the call that learns the variant, the plan
            if entry == "order":
                got, warned = _quietly(lambda: f(*values))
            elif entry == "name":
                got, warned = _quietly(lambda: f(**dict(zip(names, values))))
            else:
                got, warned = _quietly(lambda: f(*map(np.float64, values)))
            assert _bits(leaves(got)) == want and _form(got) == form and warned == 0, entry
    if make is compile_grad:
        g = make(expr)
        x = np.array(values)
        for _ in range(3):  # the general packed call, then the entry it makes
            (value, grad), warned = _quietly(lambda: g.at(x))
            assert type(value) is float and type(grad) is np.ndarray and warned == 0
            assert _bits([value, *grad]) == want


def test_finite_points_after_a_refusal_are_maths_again():
    g = compile_grad("log(x) + 1/y")
    for _ in range(3):
        g(1.0, 2.0)
    assert _bits(leaves(g(0.0, 0.0))) == _bits(_numpy_answer(g, (0.0, 0.0)))
    assert g(4.0, 2.0) == (np.log(4.0) + 0.5, (0.25, -0.25))
    assert g.at(np.array([4.0, 2.0]))[1].tolist() == [0.25, -0.25]


def test_a_variant_loaded_as_a_statement_program_answers_the_same(monkeypatch):
    # above PROGRAM_ABOVE lines the variant is a statement program, which takes no
    # `try`: the same fallback, from a wrapper
    want = {}
    for above in (10**9, 0):
        monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", above)
        g = compile_grad("log(x) * y + exp(y)")
        got = [g(*v) for v in ((0.0, 1.0), (0.0, 1.0), (0.0, 1.0), (2.0, 3.0), (2.0, 1000.0))]
        got.append(g.at(np.array([0.0, 1.0])))
        got.append(g.at(np.array([0.0, 1.0])))
        # the program, guarded by a function that calls it
        assert (numpy_backend.UNGUARDED in g._direct.__code__.co_names) == (above == 0)
        want[above] = [_bits(leaves(r)) if isinstance(r[1], tuple) else _bits([r[0], *r[1]]) for r in got]
        assert want[above][0] == _bits(_numpy_answer(g, (0.0, 1.0)))
    assert want[0] == want[10**9]


def test_inputs_named_like_what_the_variant_calls():
    # the fallback is a value in the variant's namespace: an input called `fallback`
    # (or ValueError) is mangled and cannot shadow it
    g = compile_grad("log(fallback) + 1/ValueError")
    for _ in range(3):
        got, warned = _quietly(lambda: g(fallback=0.0, ValueError=0.0))
        want = _numpy_answer(g, [{"fallback": 0.0, "ValueError": 0.0}[name] for name in g.inputs])
        assert _bits(leaves(got)) == _bits(want) and warned == 0
    assert g(fallback=1.0, ValueError=2.0)[0] == 0.5
