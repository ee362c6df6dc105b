"""Large expressions (tracker issue 14): the input-size limit, long generated NumPy
functions run as statement programs, the cycle collector paused around stages, and
(marked slow) front end to callable gradient at 10⁵ operations within a time bound."""

from __future__ import annotations

import gc
import inspect
import time
import traceback

import numpy as np
import pytest
import sympy

from exprcompiler import compile_grad
from exprcompiler.backends import numpy_backend
from exprcompiler.errors import ExprcError, InputTooLarge, ParseError
from exprcompiler.frontend import to_trace
from exprcompiler.parse import parse
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import deep_expression, random_program
from exprcompiler.trace.ir import MAX_OPS_ENV, gc_paused, max_ops_limit


# -- the input-size limit -------------------------------------------------------------

def test_text_over_the_limit_is_refused_with_how_to_raise_it():
    text = " + ".join(f"sin(x{k})" for k in range(200))
    with pytest.raises(InputTooLarge) as err:
        to_trace(text, max_ops=100)
    assert isinstance(err.value, ExprcError)
    assert "100 operations" in str(err.value) and MAX_OPS_ENV in str(err.value)
    assert to_trace(text, max_ops=1000).size == 399   # raised: it goes through


def test_the_limit_stops_early_not_after_reading_everything():
    # 10⁴ statements and then a syntax error: stopped at 50 instructions, the parse
    # never gets to the end (which would be a ParseError). Structural, not a timing.
    text = random_program(10_000, seed=2) + "\n) ("
    with pytest.raises(InputTooLarge):
        parse(text, max_ops=50)
    with pytest.raises(ParseError):
        parse(text, max_ops=10**7)


def test_the_limit_holds_for_sympy_expressions():
    x = sympy.Symbol("x")
    expr = x
    for k in range(60):
        expr = sympy.sin(expr) + k
    with pytest.raises(InputTooLarge):
        to_trace(expr, max_ops=50)
    assert to_trace(expr, max_ops=500).size > 50


def test_the_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv(MAX_OPS_ENV, "30")
    assert max_ops_limit() == 30
    with pytest.raises(InputTooLarge, match="30 operations"):
        compile_grad(" * ".join(f"x{k}" for k in range(40)))
    assert max_ops_limit(5000) == 5000   # the keyword wins
    monkeypatch.setenv(MAX_OPS_ENV, "lots")
    with pytest.raises(InputTooLarge, match="not a whole number"):
        max_ops_limit()


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_a_limit_that_is_not_a_positive_count_is_refused(bad):
    with pytest.raises(InputTooLarge, match="positive number"):
        max_ops_limit(bad)


def test_the_default_limit_comes_from_memory(monkeypatch):
    monkeypatch.delenv(MAX_OPS_ENV, raising=False)
    assert max_ops_limit() >= 100_000


# -- long generated functions, run as statement programs (tests/test_numpy_program.py) --

@pytest.fixture
def small_pieces(monkeypatch):
    """Statement programs from 40 lines on."""
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 40)


def test_pieces_compute_what_the_whole_function_computes(small_pieces, monkeypatch):
    grad = grad_reverse(to_trace(random_program(60, seed=4)))
    source, params = numpy_backend.generate(grad, func_name="f_grad")
    assert len(source.splitlines()) > 40
    pieces = numpy_backend.load(source, "f_grad")
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 10**9)
    whole = numpy_backend.load(source, "f_grad")
    rng = np.random.default_rng(0)
    args = [rng.uniform(-1, 1, 5) for _ in params]
    got, want = pieces(*args), whole(*args)
    np.testing.assert_array_equal(got[0], want[0])
    for g, w in zip(got[1], want[1]):
        np.testing.assert_array_equal(g, w)
    # by keyword too, and inspect shows the generated source
    np.testing.assert_array_equal(pieces(**dict(zip(params, args)))[0], want[0])
    assert inspect.getsource(pieces) == inspect.getsource(whole)


def test_a_traceback_in_a_piece_shows_the_generated_line(small_pieces):
    lines = [f"    v{k} = v{k - 1} + 1.0" for k in range(1, 50)]
    lines[30] = "    v31 = np.log(v30, boom=1)"   # a TypeError raised on line 31 of the body
    source = "import numpy as np\n\n\ndef f_grad(v0):\n" + "\n".join(lines) + "\n    return v49\n"
    fn = numpy_backend.load(source, "f_grad")
    with pytest.raises(TypeError) as err:
        fn(1.0)
    frame = traceback.extract_tb(err.value.__traceback__)[-1]
    assert frame.line == "v31 = np.log(v30, boom=1)"


def test_a_deep_expression_loads_in_pieces():
    # 10⁴ nested sin: the gradient's source is over the threshold
    g = compile_grad(deep_expression(10_000))
    assert len(g.source.splitlines()) > numpy_backend.PROGRAM_ABOVE
    value, (d,) = g(0.3)
    v, dv = 0.3, 1.0
    for _ in range(10_000):
        v, dv = np.sin(v), dv * np.cos(v)
    assert value == pytest.approx(v, rel=1e-12) and d == pytest.approx(dv, rel=1e-9)


# -- the cycle collector --------------------------------------------------------------

def test_gc_paused_restores_the_collector_state():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()   # a user who turned it off keeps it off
    finally:
        gc.enable()
    with pytest.raises(InputTooLarge):
        to_trace("x * y * z", max_ops=2)
    assert gc.isenabled()           # also after an error


# -- scale (slow) ---------------------------------------------------------------------

@pytest.mark.slow
def test_a_10_5_operation_gradient_is_ready_in_linear_time():
    """10⁵ operations from text to a callable NumPy gradient: measured 6-7 s of CPU
    (67 µs/op) after issue 14's work, 12.7 s before; the bound leaves room for a
    loaded machine."""
    text = random_program(int(100_000 / 2.1), seed=1)
    t0 = time.process_time()
    g = compile_grad(text)
    seconds = time.process_time() - t0
    value, grad = g(*[0.5] * len(g.inputs))
    assert np.isfinite(value) and all(np.isfinite(grad))
    assert seconds < 25
