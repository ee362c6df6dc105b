"""A statement program compiled on use is named when its text is made (backends/
name_later.py): generate runs no naming pass for it, its text when asked for is the
eager text byte for byte, its parameters' names are assign_names', and it runs on
fewer slots than named variables (a variable takes its first argument's slot where
that one is read there only) with the compiled function's results."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler.backends import name_later, numpy_backend
from exprcompiler.backends.naming import assign_names
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_forward, grad_reverse, hessian
from exprcompiler.randexpr import random_program
from exprcompiler.trace.render import named_array, use_counts_and_reads
from test_numpy_program import _is_program, _outcome


def _grad(statements: int, seed: int):
    return grad_reverse(to_trace(random_program(statements, seed=seed)))


@pytest.mark.parametrize("statements, seed", [(47, 1), (60, 4), (200, 2)])
def test_generate_names_nothing_until_the_text_is_asked_for(monkeypatch, statements, seed):
    grad = _grad(statements, seed)
    calls = []
    naming = numpy_backend.assign_names
    monkeypatch.setattr(numpy_backend, "assign_names", lambda *a, **k: calls.append(1) or naming(*a, **k))
    source, params, program = numpy_backend.generated(grad, func_name="f")
    assert program is not None and calls == []
    eager, eager_params = numpy_backend.generate(grad, func_name="f")
    assert params == eager_params and str(source) == eager


@pytest.mark.parametrize("statements, seed", [(47, 1), (120, 3)])
def test_the_program_runs_on_fewer_slots_with_the_compiled_functions_results(statements, seed):
    grad = _grad(statements, seed)
    source, _, program = numpy_backend.generated(grad, func_name="f")
    prepared, _, codes = numpy_backend._prepared_codes(grad, False)
    named = int(np.count_nonzero(named_array(prepared, None, codes)))
    # (a slot per name, as assign_names' aliases give them, was 0.85-0.89 of them here)
    assert program.size < 0.7 * named
    fn = numpy_backend.load(source, "f", program=program)
    compiled = numpy_backend.load(numpy_backend.generate(grad, func_name="f")[0], "f")
    assert _is_program(fn) and not _is_program(compiled)
    rng = np.random.default_rng(seed)
    n_in = len(grad.input_names)
    for args in ([rng.uniform(-2, 2, 9) for _ in range(n_in)], [float(x) for x in rng.uniform(0.1, 1, n_in)],
                 [rng.uniform(-2, 2, 3000) for _ in range(n_in)]):
        assert _outcome(fn, args) == _outcome(compiled, args)


def _traces():
    for text in ("x*y + sin(x)", "exp(a)*log(b) + a*b*c", "int*float + len", "v1*v2 + fallback", "x_dot*x + x",
                 "x_bar + x*x", "f*f_grad + f", "np*math + sin(np)", "u__x + x"):
        t = to_trace(text)
        yield from (t, grad_reverse(t), grad_forward(t), hessian(t))
    for seed in range(3):
        t = to_trace(random_program(30, seed=seed))
        yield from (t, grad_reverse(t), grad_forward(t))


def test_the_inputs_names_are_assign_names():
    found = 0
    for trace in _traces():
        for func_name, guarded in (("f", False), ("f_grad", True), ("x", True), ("v1", False)):
            reserved = numpy_backend._reserved(func_name, guarded)
            names = name_later.input_names(trace, reserved)
            if names is None:
                continue
            found += 1
            uses, _ = use_counts_and_reads(trace)
            given = assign_names(trace, named_array(trace, uses), reserved, uses)
            assert names == [given[v] for _, v in trace.inputs]
    assert found > 100
