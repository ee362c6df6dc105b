"""conftest's module_generator_per_test: a module's `_RNG` starts every test from the
test's own state, whatever the tests before it drew."""

import zlib

import numpy as np

_RNG = np.random.default_rng(0)


def _own_first_draw(request) -> float:
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode())).random()


def test_a_test_draws_from_its_own_state(request):
    assert _RNG.random() == _own_first_draw(request)
    _RNG.random(1000)   # (left for the next test to find, were the state not reset)


def test_the_draws_of_the_test_before_do_not_carry_over(request):
    assert _RNG.random() == _own_first_draw(request)
