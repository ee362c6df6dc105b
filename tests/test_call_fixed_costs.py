"""Fixed costs of a first compile and of the first calls: what `import exprcompiler`
loads, a statement program's stub made without compile(), a function whose shapes come
from its calls choosing the function for a call from a key of its arguments, the first
calls with numbers (one one-point variant, no regex) and call plans of one form
compiled once."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

import exprcompiler
from exprcompiler import compile_expr, compile_grad, compile_jvp
from exprcompiler.backends import numpy_program
from exprcompiler.shapes_at_call import MAX_KEYS, ShapesAtCall
from test_shapes_at_call_dynamic import counted  # (the shape sets a ShapesAtCall compiles)

_IMPORTS = r"""
import json, sys
import numpy
before = set(sys.modules)
import exprcompiler
imported = set(sys.modules) - before
g = exprcompiler.compile_grad("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")
g(1.5, 0.5)
used = set(sys.modules) - before
print(json.dumps({"imported": sorted(imported), "used": sorted(used)}))
"""

# what neither `import exprcompiler` nor a first compile_grad and call need
_NOT_NEEDED = {"hashlib", "_hashlib", "sysconfig", "exprcompiler.jacobians", "exprcompiler.dense_point",
               "exprcompiler.gradcheck", "exprcompiler.backends.c_entry"}


def test_import_and_a_first_gradient_load_neither_the_jacobians_nor_openssl():
    out = subprocess.run([sys.executable, "-c", _IMPORTS], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert "exprcompiler.api" in seen["imported"]
    assert sorted(_NOT_NEEDED & set(seen["used"])) == []


def test_the_names_imported_on_first_use_are_the_modules_own():
    from exprcompiler import gradcheck, jacobians
    for name in ("check_grad", "compile_hessian", "compile_hvp", "compile_jacobian", "explain"):
        assert getattr(exprcompiler, name) is getattr(jacobians if name != "check_grad" else gradcheck, name)
        assert name in dir(exprcompiler) and name in exprcompiler.__all__
    assert exprcompiler.jacobians is jacobians and exprcompiler.gradcheck is gradcheck
    namespace: dict = {}
    exec("from exprcompiler import *", namespace)   # (our test's text)
    assert namespace["compile_hessian"] is jacobians.compile_hessian
    with pytest.raises(AttributeError, match="no attribute 'compile_everything'"):
        exprcompiler.compile_everything


def _compiled_stub(lines, start):
    return next(c for c in numpy_program._stub(lines, start, "<f>").co_consts if type(c) is types.CodeType)


@pytest.mark.parametrize("params", ["", "x", "a, b, c", ", ".join(f"x{k}" for k in range(37))])
def test_a_stub_is_made_without_compile_for_any_number_of_parameters(monkeypatch, params):
    """The stub's code (what inspect and tracebacks see) is made from one code of this
    module, for any number of parameters, equal to what compile() makes of its text."""
    lines = ["# head\n", f"def g({params}):\n", "    v = 1.0\n", "    return v\n"]
    want = _compiled_stub(lines, 1)

    def refused(*args, **kwargs):
        raise AssertionError("compile() called")
    monkeypatch.setattr(numpy_program, "compile", refused, raising=False)
    made = numpy_program._stub_function(lines, 1, "<f>", "g")
    assert made == want and made.co_argcount == len(want.co_varnames)
    fn = types.FunctionType(made, {numpy_program._RUNNER: lambda given: given}, "g")
    names = [p for p in params.split(", ") if p]
    assert fn(*range(len(names))) == dict(zip(names, range(len(names))))


LOSS = "mean((a*t + b - y)**2)"


def _loss_args(n: int) -> tuple:
    rng = np.random.default_rng(n)
    return 0.7, -0.2, rng.normal(size=n), rng.normal(size=n)


def _counting_binds(f: ShapesAtCall) -> list:
    """The calls that bind their arguments in `f` itself (its `named`), from now on."""
    binds: list = []
    named = f.named

    def counting(args, kwargs):
        binds.append(1)
        return named(args, kwargs)
    f.named = counting
    return binds


def _same(got, want) -> None:
    flat = [np.ravel(got[0]), *map(np.ravel, got[1])]
    np.testing.assert_array_equal(np.concatenate(flat), np.concatenate([np.ravel(want[0]), *map(np.ravel, want[1])]))


def test_a_call_of_known_shapes_runs_its_function_without_binding_here():
    f = compile_grad(LOSS, wrt=["a", "b"])
    assert isinstance(f, ShapesAtCall)
    binds = _counting_binds(f)
    want = compile_grad(LOSS, wrt=["a", "b"], shapes={"t": (4,), "y": (4,)})
    a, b, t, y = _loss_args(4)
    for _ in range(4):
        _same(f(a, b, t, y), want(a, b, t, y))
        _same(f(a=a, b=b, t=t, y=y), want(a, b, t, y))
        _same(f(a, b, y=y, t=t), want(a, b, t, y))
    assert len(binds) == 3   # once per way of calling: positional, by name, both
    # numbers of other types, or a list: read the full way, the same answers
    _same(f(np.float64(a), b, t, y), want(a, b, t, y))
    _same(f(a, b, list(t), y), want(a, b, t, y))
    _same(f(a, b, list(t), y), want(a, b, t, y))
    assert len(binds) == 5


def test_the_key_follows_the_shapes_and_the_function_they_choose():
    f = compile_grad(LOSS, wrt=["a", "b"])
    made = counted(f)
    for n in (4, 5, 6, 4, 5, 6, 4):
        a, b, t, y = _loss_args(n)
        _same(f(a, b, t, y), compile_grad(LOSS, wrt=["a", "b"], shapes={"t": (n,), "y": (n,)})(a, b, t, y))
    assert made == [{"t": (4,), "y": (4,)}, {"t": ("n",), "y": ("n",)}]
    a, b, t, y = _loss_args(4)
    f(a, b, t, y)
    assert f._last is f._compiled.peek(((("t", (4,)), ("y", (4,)))))   # the first call's own function
    a, b, t, y = _loss_args(5)
    f(a, b, t, y)
    assert f._last is f._named[0][1]
    # out= goes to the function the key chose
    out = (np.empty(()), (np.empty(()), np.empty(())))
    got = f(a, b, t, y, out=out)
    assert got[0] is out[0] and got[1][0] is out[1][0]
    _same(got, f(a, b, t, y))


def test_the_keys_kept_are_bounded():
    f = compile_grad("sum(x*x)")
    assert isinstance(f, ShapesAtCall)
    for n in range(1, 3 * MAX_KEYS):
        value, (grad,) = f(np.arange(float(n)))
        assert value == sum(k * k for k in range(n)) and grad.tolist() == [2.0 * k for k in range(n)]
        assert len(f._by_key) <= MAX_KEYS
    assert f(np.arange(3.0))[0] == 5.0


def test_a_jvp_keys_its_seeds_shapes_too():
    f = compile_jvp("sum(x*y)", wrt=["x"])
    x, y, seed = np.arange(3.0), np.arange(3.0) + 1, np.ones(3)
    first = f(x, y, seed)
    assert f(x, y, seed) == first
    x4, y4, seed4 = np.arange(4.0), np.arange(4.0) + 1, np.ones(4)
    want = compile_jvp("sum(x*y)", wrt=["x"], shapes={"x": (4,), "y": (4,)})(x4, y4, seed4)
    _same_flat(f(x4, y4, seed4), want)


def _same_flat(got, want) -> None:
    np.testing.assert_array_equal(np.concatenate([np.ravel(v) for v in _flat(got)]),
                                  np.concatenate([np.ravel(v) for v in _flat(want)]))


def _flat(result) -> list:
    if isinstance(result, tuple):
        return [v for item in result for v in _flat(item)]
    return [result]


_FIRST_CALLS = r"""
import json, re
import exprcompiler
from exprcompiler.backends import numpy_backend
g = exprcompiler.compile_grad("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")
compiled, variants = [], []
compile_pattern = re._compiler.compile
def spy(pattern, flags=0):
    compiled.append(str(pattern))
    return compile_pattern(pattern, flags)
re._compiler.compile = spy
generated = numpy_backend.generated
def counted(*args, **kwargs):
    variants.append(kwargs.get("point", False))
    return generated(*args, **kwargs)
numpy_backend.generated = counted
results = [g(1.5, 0.5) for _ in range(3)]
print(json.dumps({"compiled": compiled, "variants": variants, "planned": type(g) is not exprcompiler.api.Compiled,
                  "same": results[0] == results[1] == results[2]}))
"""


def test_a_gradients_first_calls_with_numbers_make_one_variant_and_compile_no_regex():
    """The first call with numbers makes the one-point variant that returns the result
    nested (the one the second call's plan runs), not a variant of flat results first;
    the plan's text is read with no regular expression (~0.1-0.3 ms at its first use)."""
    out = subprocess.run([sys.executable, "-c", _FIRST_CALLS], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"compiled": [], "variants": [True], "planned": True, "same": True}


@pytest.mark.parametrize("expr, make", [("x1 * sin(x2) + exp(x1 / x2)", compile_grad),
                                        ("sigmoid(x1) * x2 + x1 ** 3", compile_grad),
                                        ("x1 * x2; sin(x1) - x2", compile_expr)])
def test_calls_with_numbers_agree_with_the_array_call_from_the_first(expr, make):
    """Every call with numbers (the nested variant from the first where the trace is
    math and arithmetic only; the flat variant where it is not, or where the function
    has several values) gives the array call's numbers, by position and by name."""
    g = make(expr)
    x = (0.7, -1.3)
    want = g(*map(np.array, x))
    for k in range(3):
        got = g(*x) if k != 1 else g(x1=x[0], x2=x[1])
        assert _flat_numbers(got) == _flat_numbers(want)
    if make is compile_grad:
        assert _flat_numbers(g.at(np.array(x))) == _flat_numbers(want)


def _flat_numbers(result) -> list:
    return [float(v) for item in _flat(result) for v in np.ravel(item)]


def test_names_in_a_plans_text_are_the_regexs():
    import random
    import re

    from exprcompiler.call_plan import _names_in
    rng = random.Random(1)
    alphabet = "ab_Z09 ()[],.:=*+-\n'#{}"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))
        assert _names_in(text) == set(re.findall(r"[A-Za-z_]\w*", text)), text


def test_a_plan_of_the_same_form_is_not_compiled_again_and_takes_its_own_names(monkeypatch):
    """A call plan's code is compiled once per form (its names placeholders, which each
    plan's code then takes): another function of as many inputs binds its own names."""
    from exprcompiler import api, call_plan
    g = compile_grad("x * sin(y)")
    g(1.0, 2.0), g(1.0, 2.0)
    assert type(g) is not api.Compiled

    def refused(*args, **kwargs):
        raise AssertionError("compile() called")
    monkeypatch.setattr(call_plan, "compile", refused, raising=False)
    h = compile_grad("a * cos(b)")
    want = h(np.array(1.0), np.array(2.0))
    h(1.0, 2.0), h(1.0, 2.0)
    assert type(h) is not api.Compiled
    assert type(h).__call__.__code__.co_varnames[2:4] == ("a", "b")
    for got in (h(1.0, 2.0), h(b=2.0, a=1.0), h(1.0, b=2.0), h(a=1.0, b=2.0)):
        assert _flat_numbers(got) == _flat_numbers(want)
    with pytest.raises(TypeError, match="unexpected argument 'x'"):
        h(x=1.0, b=2.0)
    with pytest.raises(TypeError, match="given twice"):
        h(1.0, a=1.0)
    assert _flat_numbers(g(y=2.0, x=1.0)) == _flat_numbers(g(np.array(1.0), np.array(2.0)))
