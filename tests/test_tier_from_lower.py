"""numpy_backend.TIER_FROM lowered to 120 named variables: a gradient of ~50 operations
(121-200 named variables, compiled at once before) is a statement program compiled on
use, with the same text and the same results as the compiled function; one of fewer
named variables is still compiled at once."""

from __future__ import annotations

import numpy as np

from exprcompiler.backends import numpy_backend
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program
from test_numpy_program import _is_program, _outcome


def _named(trace) -> int:
    trace, _, codes = numpy_backend._prepared_codes(trace, False)
    uses, _ = numpy_backend.use_counts_and_reads(trace)
    return int(np.count_nonzero(numpy_backend.named_array(trace, uses.astype(np.int32), codes)))


def _between(low: int, high: int):
    """A gradient of a random program with low < named variables <= high."""
    for statements in range(10, 80):
        for seed in range(3):
            grad = grad_reverse(to_trace(random_program(statements, seed=seed)))
            if low < _named(grad) <= high:
                return grad
    raise AssertionError("no such gradient")


def test_a_gradient_of_121_to_200_named_variables_is_a_program():
    grad = _between(120, 200)
    source, _, program = numpy_backend.generated(grad)
    assert program is not None
    fn = numpy_backend.load(source, "f", program=program)
    compiled = numpy_backend.load(numpy_backend.generate(grad)[0], "f")
    assert str(source) == numpy_backend.generate(grad)[0]
    assert _is_program(fn) and not _is_program(compiled)
    rng = np.random.default_rng(2)
    n_in = len(grad.input_names)
    for args in ([rng.uniform(-2, 2, 5) for _ in range(n_in)], [float(x) for x in rng.uniform(0.1, 1, n_in)]):
        assert _outcome(fn, args) == _outcome(compiled, args)


def test_a_gradient_of_fewer_named_variables_is_compiled_at_once():
    grad = _between(60, 120)
    assert numpy_backend.generated(grad).program is None
