"""A loaded NumPy function's linecache entries go with it (statement programs, which
every function of more than numpy_backend.TIER_FROM named variables starts as), and a
tier-up does not keep the program's text."""

from __future__ import annotations

import gc
import linecache

import numpy as np

from exprcompiler.backends import numpy_backend, numpy_tier
from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse


def _loaded(size: int):
    grad = grad_reverse(to_trace(FAMILIES["random DAG"](size)))
    source, params, program = numpy_backend.generated(grad, func_name="f")
    assert program is not None   # (a program: above TIER_FROM)
    return source, params, numpy_backend.load(source, "f", program=program)


def test_loads_leave_no_linecache_entries():
    gc.collect()
    before = set(linecache.cache)
    for size in (400, 401, 402):
        _, _, fn = _loaded(size)
        assert set(linecache.cache) - before   # (registered while it lives: tracebacks, warnings)
        del fn
        gc.collect()
    assert set(linecache.cache) - before == set()


def test_tier_up_does_not_keep_the_text(monkeypatch):
    monkeypatch.setattr(numpy_tier, "COMPILE_US", 0.0)   # (compiled at the first call)
    monkeypatch.setattr(numpy_tier, "CHEAP_US", float("inf"))   # (a slow call on a busy machine pays rent too)
    source, params, fn = _loaded(400)
    args = [np.linspace(0.5, 1.5, 7)] * len(params)
    first = fn(*args)
    assert numpy_tier.tiered(fn)
    assert source._text is None
    again = fn(*args)
    for a, b in zip(first, again):
        assert np.array_equal(a, b, equal_nan=True)
