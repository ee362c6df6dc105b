"""Compile on use's rent (backends/numpy_tier.py): only a call that takes less than
CHEAP_US a line pays it. On larger arrays the statement program is mostly faster than
the compiled function (it runs on about half the slots), so such calls do not bring the
tier-up nearer; a function called on small arrays still tiers up once its rent reaches
the price. Checked: the calls that pay and those that do not, with set constants and with
the defaults; the results are the compiled function's bits either way."""

from __future__ import annotations

import inspect

import numpy as np

from exprcompiler.backends import numpy_backend, numpy_tier
from exprcompiler.frontend import to_trace
from exprcompiler.passes import grad_reverse
from exprcompiler.randexpr import random_program
from test_numpy_program import _is_program, _outcome


def _loaded(seed: int = 1):
    grad = grad_reverse(to_trace(random_program(30, seed=seed)))
    source, _, program = numpy_backend.generated(grad, func_name="f")
    assert program is not None
    fn = numpy_backend.load(source, "f", program=program)
    return fn, numpy_backend.load(str(source), "f")


def _args(fn, points: int):
    return [np.linspace(0.2, 0.9, points) + k for k in range(len(inspect.signature(fn).parameters))]


def test_a_call_over_the_cheap_bound_pays_no_rent(monkeypatch):
    monkeypatch.setattr(numpy_backend, "TIER_FROM", 0)
    monkeypatch.setattr(numpy_tier, "COMPILE_US", 1.0)
    monkeypatch.setattr(numpy_tier, "DELTA_US", 1.0)   # a cheap call would pay the whole price
    monkeypatch.setattr(numpy_tier, "SHARE", 1.0)
    monkeypatch.setattr(numpy_tier, "CHEAP_US", 0.0, raising=False)   # no call is cheap
    fn, compiled = _loaded()
    x = _args(fn, 5)
    for _ in range(5):
        assert _outcome(fn, x) == _outcome(compiled, x)
    assert _is_program(fn) and not numpy_tier.tiered(fn)
    monkeypatch.setattr(numpy_tier, "CHEAP_US", float("inf"))   # read when the function is loaded
    assert not numpy_tier.tiered(fn)
    fn, compiled = _loaded()
    assert _outcome(fn, x) == _outcome(compiled, x)   # the first call pays the price
    assert numpy_tier.tiered(fn) and _outcome(fn, x) == _outcome(compiled, x)


def test_by_default_large_arrays_keep_the_program_and_small_ones_tier_up(monkeypatch):
    monkeypatch.setattr(numpy_backend, "TIER_FROM", 0)
    fn, compiled = _loaded(2)
    large = _args(fn, 50_000)   # tens of µs a line on any machine: the program is not the slower there
    want = _outcome(compiled, large)
    for _ in range(60):   # (the rent of the share of each call's time tiered up after ~30)
        fn(*large)
    assert _is_program(fn) and not numpy_tier.tiered(fn) and _outcome(fn, large) == want
    small = _args(fn, 3)
    calls = int(numpy_tier.COMPILE_US / numpy_tier.DELTA_US)
    for k in range(10 * calls):   # (calls slowed by a busy machine past CHEAP_US do not pay)
        fn(*small)
        if numpy_tier.tiered(fn):
            break
    assert numpy_tier.tiered(fn) and not _is_program(fn) and k >= calls - 1   # not before the price
    assert _outcome(fn, small) == _outcome(compiled, small) and _outcome(fn, large) == want
