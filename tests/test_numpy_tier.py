"""Compile on use (backends/numpy_tier.py): a batch function of plain lines is loaded
as its statement program and compiled once its calls' estimated excess reaches the
compile's cost; the compiled code is swapped into the same function object. Checked:
the program and the compiled function give the same bits, before and after the swap,
as the function compiled at once; the swap happens at the call the constants say and
not before; tracebacks, inspect and `.source` show the same lines either side of it;
the one-point variant's fallback, float32, tensors, pickling, threads; a text that
does not compile keeps the program."""

from __future__ import annotations

import inspect
import pickle
import threading
import traceback

import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad
from exprcompiler.backends import numpy_backend, numpy_tier
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program
from test_numpy_program import _is_program, _outcome
from test_numpy_render import CASES, _inputs


@pytest.fixture
def every_size(monkeypatch):
    """Every batch function of plain lines compiled on use, and never tiered up unless
    a test lowers the price (COMPILE_US)."""
    monkeypatch.setattr(numpy_backend, "TIER_FROM", 0)
    monkeypatch.setattr(numpy_tier, "COMPILE_US", float("inf"))
    return monkeypatch


def _price(monkeypatch, calls: int):
    """Rent and price such that the function tiers up at its `calls`-th call."""
    monkeypatch.setattr(numpy_tier, "COMPILE_US", float(calls))
    monkeypatch.setattr(numpy_tier, "DELTA_US", 1.0)
    monkeypatch.setattr(numpy_tier, "DELTA_POINT_US", 1.0)
    monkeypatch.setattr(numpy_tier, "SHARE", 0.0)
    monkeypatch.setattr(numpy_tier, "CHEAP_US", float("inf"))   # every call pays, whatever it takes


def _loaded(trace, **kw):
    source, _, program = numpy_backend.generated(trace, **kw)
    assert program is not None
    return numpy_backend.load(source, "f", program=program), source


def _batch(names, seed):
    rng = np.random.default_rng(seed)
    return [np.concatenate([[0.0, -0.0, np.inf, np.nan, 1e300], rng.uniform(-2, 2, 11)]) for _ in names]


@pytest.mark.parametrize("seed", range(6))
def test_the_same_bits_before_and_after_the_tier_up(every_size, seed):
    grad = grad_reverse(to_trace(random_program(40 + 15 * seed, seed=seed)))
    _price(every_size, 3)
    fn, source = _loaded(grad)
    compiled = numpy_backend.load(str(source), "f")   # compiled at once, as before compile on use
    assert _is_program(fn) and not _is_program(compiled)
    batch = _batch(grad.input_names, seed)
    cases = [batch, [b[:1] for b in batch], [np.float64(b[-1]) for b in batch], [float(b[-2]) for b in batch]]
    want = [_outcome(compiled, args) for args in cases]
    before = [_outcome(fn, args) for args in cases[:2]]   # the program's calls 1 and 2
    assert _is_program(fn) and not numpy_tier.tiered(fn)
    assert before == want[:2]
    assert _outcome(fn, cases[2]) == want[2]   # the third: run by the program, then compiled
    assert not _is_program(fn) and numpy_tier.tiered(fn)
    assert [_outcome(fn, args) for args in cases] == want


@pytest.mark.parametrize("calls", [1, 2, 7])
def test_it_tiers_up_at_the_call_the_price_says(every_size, calls):
    _price(every_size, calls)
    fn, _ = _loaded(grad_reverse(to_trace(random_program(30, seed=1))))
    x = [np.linspace(0.1, 0.9, 5)] * len(inspect.signature(fn).parameters)
    stub = fn.__code__
    for k in range(1, calls + 3):
        fn(*x)
        assert (fn.__code__ is not stub) == (k >= calls), k
    assert numpy_tier.tiered(fn)


def test_the_rent_is_a_line_share_of_the_call(every_size):
    # no rent a call, but SHARE of the call's time: a call of the program takes more than
    # a µs a line at 10⁴ points, so a price of 1 µs a line is paid at the first
    every_size.setattr(numpy_tier, "COMPILE_US", 1.0)
    every_size.setattr(numpy_tier, "DELTA_US", 0.0)
    every_size.setattr(numpy_tier, "SHARE", 1.0)
    every_size.setattr(numpy_tier, "CHEAP_US", float("inf"))   # (a call this long pays no rent by default)
    fn, _ = _loaded(grad_reverse(to_trace(random_program(30, seed=1))))
    x = [np.linspace(0.1, 0.9, 10_000)] * len(inspect.signature(fn).parameters)
    fn(*x)
    assert numpy_tier.tiered(fn)


def test_by_default_small_functions_compile_and_larger_ones_tier(monkeypatch):
    small = compile_grad(random_program(20, seed=3))
    assert not _is_program(small._fn) and type(small._text) is str
    # (every call pays rent, as a call on small arrays does on a quiet machine: at a load
    # of ~9 a 3-point call took longer than CHEAP_US a line, paid none, and never tiered)
    monkeypatch.setattr(numpy_tier, "CHEAP_US", float("inf"))
    larger = compile_grad(random_program(400, seed=3))
    assert _is_program(larger._fn) and not numpy_tier.tiered(larger._fn)
    # the same text as the one rendered as text lines (lazy=False: generate's)
    lazy, _, program = numpy_backend.generated(larger.trace, description="d", returns=(0, (1, 2)))
    eager, _, none = numpy_backend.generated(larger.trace, description="d", returns=(0, (1, 2)), lazy=False)
    assert program is not None and none is None and str(lazy) == eager
    x = [np.linspace(0.2, 0.9, 3) + k for k in range(len(larger.inputs))]
    want = _outcome(larger, x)
    for _ in range(150):   # ~70 calls on small arrays pay the price (numpy_tier's constants)
        larger(*x)
    assert numpy_tier.tiered(larger._fn) and _outcome(larger, x) == want


def test_tracebacks_and_inspect_show_the_same_lines_either_side(every_size):
    _price(every_size, 2)
    fn, source = _loaded(to_trace("y = x * z\nw = sin(y) + z\nw * x"))
    shown = inspect.getsource(fn)
    assert shown.startswith("def f(x, z):") and shown in str(source)
    frames = []
    for tiered in (False, True):   # (a call that raises pays no rent: two calls that return)
        with pytest.raises(ValueError) as err:
            fn(np.ones(3), np.ones(4))   # shapes that do not broadcast
        frames.append(traceback.extract_tb(err.value.__traceback__)[-1])
        assert inspect.getsource(fn) == shown and numpy_tier.tiered(fn) == tiered
        fn(np.ones(3), np.ones(3))
        fn(np.ones(3), np.ones(3))
    assert len({(f.filename, f.lineno, f.name, f.line) for f in frames}) == 1
    assert frames[0].line.endswith(" = x * z") and frames[0].filename == fn.__code__.co_filename
    assert str(source).splitlines()[frames[0].lineno - 1].strip() == frames[0].line


def test_the_api_through_the_tier_up(every_size):
    _price(every_size, 4)
    g = compile_grad("log(x) * y + exp(x * y) - sqrt(y)")
    assert _is_program(g._fn)
    every_size.setattr(numpy_backend, "TIER_FROM", 10**9)
    h = compile_grad("log(x) * y + exp(x * y) - sqrt(y)")   # compiled at once
    assert not _is_program(h._fn) and h.source == g.source
    x, y = np.linspace(-1, 2, 13), np.linspace(0.5, 3, 13)
    points = [(0.0, 2.0), (1.5, 0.25), (-1.0, 1.0)]   # log(0), and log(-1): math refuses, NumPy answers
    for k in range(6):
        assert _outcome(g, (x, y)) == _outcome(h, (x, y)), k
        assert [_outcome(g, p) for p in points] == [_outcome(h, p) for p in points], k
        assert numpy_tier.tiered(g._fn) == (3 * (k + 1) >= 4), k   # (the batch call and two points that fall back)
    assert _outcome(pickle.loads(pickle.dumps(g)), (x, y)) == _outcome(h, (x, y))


def test_float32(every_size):
    _price(every_size, 2)
    g = compile_expr("sin(x) * y + x / y", dtype=np.float32)
    assert _is_program(g._fn)
    x, y = np.linspace(0.1, 2, 9, dtype=np.float32), np.linspace(1, 3, 9, dtype=np.float32)
    first = _outcome(g, (x, y))
    assert first[0][1] == np.float32
    for _ in range(3):
        assert _outcome(g, (x, y)) == first
    assert numpy_tier.tiered(g._fn)


@pytest.mark.parametrize("expr, shapes", CASES[1:4])   # (CASES[0] has a matmul: no plain lines)
def test_tensor_gradients(every_size, expr, shapes):
    _price(every_size, 2)
    g = compile_grad(expr, shapes=shapes)
    assert _is_program(g._fn)
    every_size.setattr(numpy_backend, "TIER_FROM", 10**9)
    h = compile_grad(expr, shapes=shapes)
    args = [_inputs(shapes)[k] for k in g.inputs]
    want = _outcome(h, args)
    assert [_outcome(g, args) for _ in range(3)] == [want] * 3 and numpy_tier.tiered(g._fn)


def test_threads_racing_through_the_tier_up(every_size):
    _price(every_size, 5)
    fn, source = _loaded(grad_reverse(to_trace(random_program(80, seed=5))))
    x = _batch(inspect.signature(fn).parameters, 2)
    want = _outcome(numpy_backend.load(str(source), "f"), x)
    got, start = [], threading.Barrier(4)

    def calls():
        start.wait()
        got.extend(_outcome(fn, x) for _ in range(10))
    threads = [threading.Thread(target=calls) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [want] * 40 and numpy_tier.tiered(fn)


def test_a_text_that_does_not_compile_keeps_the_program(every_size):
    _price(every_size, 1)

    def refused(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded during compilation")
    every_size.setattr(numpy_tier, "compile", refused, raising=False)
    fn, source = _loaded(grad_reverse(to_trace(random_program(30, seed=4))))
    x = _batch(inspect.signature(fn).parameters, 4)
    want = _outcome(numpy_backend.load(str(source), "f"), x)
    assert [_outcome(fn, x) for _ in range(3)] == [want] * 3
    assert _is_program(fn) and not numpy_tier.tiered(fn)


def test_the_one_point_variant_through_the_tier_up(every_size):
    _price(every_size, 6)
    every_size.setattr(numpy_tier, "DELTA_POINT_US", 0.5)   # (its own rent: 12 calls; a batch call's, 1)
    every_size.setattr(numpy_tier, "DELTA_US", 6.0)
    expr = "log(x) * y + exp(y) - sqrt(x * y)"
    g = compile_grad(expr)
    for _ in range(4):   # the variant made at the first call, then g's direct call
        g(2.0, 3.0)
    inner = g._direct.__globals__[numpy_backend.UNGUARDED]   # the program, guarded from outside (load_point)
    assert _is_program(inner) and not numpy_tier.tiered(inner)
    every_size.setattr(numpy_backend, "TIER_FROM", 10**9)
    h = compile_grad(expr)   # its variant compiled at once, with its own `try`
    for _ in range(4):
        h(2.0, 3.0)
    assert numpy_backend.FALLBACK in h._direct.__code__.co_names
    # math refuses log(0), exp(1000), log(-1): the fallback's answer (NumPy's), either way
    points = [(2.0, 3.0), (0.0, 1.0), (2.0, 1000.0), (-1.0, 2.0), (0.5, 0.25), (3.0, -0.0)]
    for k in range(6):   # 3 calls a round that math does not refuse (and at()'s: the batch function's)
        assert [_outcome(g, p) for p in points] == [_outcome(h, p) for p in points], k
        assert np.array_equal(g.at(np.array([0.5, 0.25]))[1], h.at(np.array([0.5, 0.25]))[1])
        if k == 0:   # (at most 3 + 3 calls so far, of the 12 its rent needs)
            assert not numpy_tier.tiered(inner)
    assert numpy_tier.tiered(inner) and not _is_program(inner)
