"""A long generated NumPy function run as a statement program (backends/numpy_program.py)
gives the compiled function's bits, raises what it raises from the generated line, shows
the same source, and is what `load` makes above numpy_backend.PROGRAM_ABOVE lines."""

from __future__ import annotations

import inspect
import linecache
import traceback

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler import compile_grad
from exprcompiler.backends import numpy_backend, numpy_program
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program
from test_builder_fast import expressions  # random scalar expressions, signed zeros and ±1 among the constants
from test_numpy_render import CASES, _inputs  # tensor expressions with NaN, ±inf, ±0 in their inputs


def _program_and_compiled(source: str, func_name: str = "f"):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
        program = numpy_backend.load(source, func_name)
        m.setattr(numpy_backend, "PROGRAM_ABOVE", 10**9)
        compiled = numpy_backend.load(source, func_name)
    assert _is_program(program) and not _is_program(compiled)
    return program, compiled


def _is_program(fn) -> bool:
    return "_exprc_program" in fn.__code__.co_names


def _bits(results):
    """Every output's type, dtype, shape and bytes (so -0.0 is not 0.0 and NaN is NaN)."""
    def flat(r):
        return [x for item in r for x in flat(item)] if isinstance(r, tuple) else [r]
    return [(type(x), np.asarray(x).dtype, np.shape(x), np.asarray(x).tobytes()) for x in flat(results)]


def _outcome(fn, args):
    """_bits of the call's results, or the type of what it raised."""
    with np.errstate(all="ignore"):
        try:
            return _bits(fn(*args))
        except Exception as err:   # math's ValueError, OverflowError, ZeroDivisionError
            return type(err)


def _check(trace, args_point, args_batch):
    for point in (False, True):   # the batch source, and the one-point source (math's functions)
        source, _ = numpy_backend.generate(trace, point=point)
        program, compiled = _program_and_compiled(source)
        for args in (args_point,) if point else (args_point, args_batch):
            assert _outcome(program, args) == _outcome(compiled, args)


@settings(max_examples=50, deadline=None)
@given(text=expressions(), seed=st.integers(0, 2**32 - 1))
def test_the_program_gives_the_compiled_functions_bits(text, seed):
    trace = to_trace(text)
    if not trace.input_names:
        return
    grad = grad_reverse(trace)
    rng = np.random.default_rng(seed)
    batch = [np.concatenate([[0.0, -0.0, 1.0, -1.0, np.inf], rng.normal(size=6) * 3]) for _ in grad.input_names]
    _check(grad, [float(b[-1]) for b in batch], batch)


@pytest.mark.parametrize("seed", range(3))
def test_the_program_of_a_random_program_s_gradient(seed, monkeypatch):
    monkeypatch.setattr(numpy_program, "CHUNK", 7 + seed)   # tokenized in chunks, the return in the last
    grad = grad_reverse(to_trace(random_program(40, seed=seed)))
    rng = np.random.default_rng(seed)
    batch = [rng.uniform(-2, 2, 9) for _ in grad.input_names]
    _check(grad, [float(b[0]) for b in batch], batch)


@pytest.mark.parametrize("expr, shapes", CASES)
def test_the_program_of_a_tensor_gradient(expr, shapes):
    # x.dot(w), np.add.reduce(x, axis=1, keepdims=True), masks, shared exps: tokens
    # with a name inside and integers that stay in the template
    g = compile_grad(expr, shapes=shapes)
    source, _ = numpy_backend.generate(g.trace)
    program, compiled = _program_and_compiled(source)
    args = [_inputs(shapes)[k] for k in g.inputs]
    assert _outcome(program, args) == _outcome(compiled, args)


def test_load_takes_the_program_path_above_the_threshold():
    # a function just over the default threshold: no compile() of its statements
    n = numpy_backend.PROGRAM_ABOVE
    lines = [f"    v{k} = v{k - 1} * 0.5 + x" for k in range(1, n + 1)]
    source = "import numpy as np\n\n\ndef f(v0, x):\n" + "\n".join(lines) + f"\n    return v{n}, -v1\n"
    fn = numpy_backend.load(source, "f")
    assert _is_program(fn)
    v = 1.0
    for _ in range(n):
        v = v * 0.5 + 3.0
    assert fn(1.0, 3.0) == (v, -3.5)
    assert fn(x=3.0, v0=1.0) == (v, -3.5)
    code = fn.__code__   # the source as inspect finds it (getsource itself takes 1.4 s on 20k lines)
    assert code.co_firstlineno == 4 and linecache.getline(code.co_filename, 4) == "def f(v0, x):\n"


def _source(bad_line: str, n: int = 49) -> str:
    lines = [f"    v{k} = v{k - 1} + 1.0" for k in range(1, n + 1)]
    lines[30] = bad_line
    return "import numpy as np\n\n\ndef f(v0):\n" + "\n".join(lines) + f"\n    return v{n}\n"


@pytest.mark.parametrize("bad_line, arg, error", [
    ("    v31 = np.log(v30, boom=1)", 1.0, TypeError),
    ("    v31 = np.log(v30 - v30)", np.ones(3), FloatingPointError),   # under errstate(divide="raise")
    ("    v31 = v30 / (v30 - v30)", 1.0, ZeroDivisionError),
])
def test_a_traceback_ends_at_the_generated_line(bad_line, arg, error):
    program, compiled = _program_and_compiled(_source(bad_line))
    assert inspect.getsource(program) == inspect.getsource(compiled)
    frames = []
    for fn in (program, compiled):
        with np.errstate(divide="raise"), pytest.raises(error) as err:
            fn(arg)
        frames.append(traceback.extract_tb(err.value.__traceback__)[-1])
        assert err.value.__context__ is None or err.value.__suppress_context__
    assert [(f.filename, f.lineno, f.name, f.line) for f in frames] == \
        [(frames[1].filename, 35, "f", bad_line.strip())] * 2


def test_a_text_the_program_does_not_take_is_compiled(monkeypatch):
    # a string literal could hold anything: such a text is compiled as it is
    monkeypatch.setattr(numpy_backend, "PROGRAM_ABOVE", 0)
    source = _source("    v31 = v30 + len('v30 x')")
    fn = numpy_backend.load(source, "f")
    assert not _is_program(fn) and fn(1.0) == 54.0
