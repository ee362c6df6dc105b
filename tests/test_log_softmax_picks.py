"""Several picks log_softmax(z)[k] of one vector (softmax_forms.share_picks), and the
pick's tangent as one op (log_softmax_at_jvp).

* Two or more picks of one vector read one P = log_softmax_at_parts(z, key=(all of
  them)): log_softmax_at is the vector of the values, its adjoint one
  log_softmax_at_vjp and its tangent one log_softmax_at_jvp, whatever the number of
  picks (each pick took its own exp pass and its own adjoint pass before).
* Values and gradients of weighted sums of picks against mpmath at the edges (a
  dominant element, underflowed lanes, huge entries, ties) on both backends, the
  values' bits those of log_softmax(z)[k]; central differences; forward against
  reverse mode; HVPs; the new op's and the widened ops' own derivative rules.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from exprcompiler import compile_grad, compile_hessian, compile_jvp, runtime
from conftest import BACKENDS
from test_log_softmax import error
from test_log_softmax_op import GOAL, exact
from test_log_softmax_pick import _rules_hold, assert_hvp_is_differences, softmax_hessian

pytestmark = pytest.mark.usefixtures("private_cache")

PICK = "log(exp(z[{k}])/sum(exp(z)))"


def picks(keys, weights=None) -> str:
    """The weighted sum of quotient picks of z at `keys` (weights 1 by default)."""
    weights = weights or [1.0] * len(keys)
    return " + ".join(f"{w!r}*{PICK.format(k=k)}" if w != 1.0 else PICK.format(k=k) for k, w in zip(keys, weights))


def ops_of(c) -> list:
    return [ins.op for ins in c.trace.instrs]


# -- what the trace holds --------------------------------------------------------------------------
@pytest.mark.parametrize("m", [2, 3, 5])
def test_several_picks_share_one_pass_each_way(m):
    """Value and gradient: one log_softmax_at_parts, one log_softmax_at, one adjoint op,
    for any number of picks (on the code before: m of each, and m - 1 adds of n-vectors)."""
    keys = (3, 1, 7, 0, 5)[:m]
    ops = ops_of(compile_grad(picks(keys), shapes={"z": (10,)}, stable=True))
    assert ops.count("log_softmax_at_parts") == 1 and ops.count("log_softmax_at_vjp") == 1, ops
    assert ops.count("log_softmax_at") == 1 and not {"log_softmax", "exp", "log"} & set(ops), ops
    g = compile_grad(picks(keys), shapes={"z": (10,)}, stable=True)
    key = [dict(ins.attrs)["key"] for ins in g.trace.instrs if ins.op == "log_softmax_at_parts"]
    assert key == [tuple(sorted(keys))]


@pytest.mark.parametrize("m", [1, 3])
def test_the_tangent_is_one_op(m):
    """Forward mode: one log_softmax_at_jvp (a dot over the others), where it was the
    adjoint op at 1, a product and a sum."""
    ops = ops_of(compile_jvp(picks((3, 1, 7)[:m]), shapes={"z": (10,)}, stable=True))
    assert ops.count("log_softmax_at_jvp") == 1 and ops.count("log_softmax_at_parts") == 1, ops
    assert "log_softmax_at_vjp" not in ops and "sum" not in ops, ops


def test_one_pick_is_as_it_was():
    """One pick: key (k,), a number read from P, its adjoint at a number (no index)."""
    g = compile_grad(PICK.format(k=3), shapes={"z": (10,)}, stable=True)
    ops = ops_of(g)
    assert ops.count("log_softmax_at_parts") == 1 and "index" not in ops and "scatter" not in ops, ops
    at = [ins for ins in g.trace.instrs if ins.op == "log_softmax_at"]
    assert len(at) == 1 and at[0].shape == () and dict(at[0].attrs)["key"] == (3,)


def test_picks_of_other_vectors_and_a_repeated_pick_stay_apart():
    """Picks of two vectors: one P each; the same element twice: one pick (one key)."""
    g = compile_grad(f"{PICK.format(k=1)} + {PICK.format(k=2).replace('z', 'y')} + {PICK.format(k=0)}",
                     shapes={"z": (4,), "y": (4,)}, stable=True)
    parts = [dict(ins.attrs)["key"] for ins in g.trace.instrs if ins.op == "log_softmax_at_parts"]
    assert sorted(parts) == [(0, 1), (2,)]
    g = compile_grad(f"{PICK.format(k=1)} + 2*{PICK.format(k=-3)}", shapes={"z": (4,)}, stable=True)
    assert [dict(i.attrs)["key"] for i in g.trace.instrs if i.op == "log_softmax_at_parts"] == [(1,)]


# -- values and gradients ------------------------------------------------------------------------
def exact_sum(z, keys, weights):
    """sum_i w_i·log_softmax(z)[k_i] and its gradient, by mpmath."""
    with mpmath.workdps(60):
        value, grad = mpmath.mpf(0), [mpmath.mpf(0)] * len(z)
        for k, w in zip(keys, weights):
            v, g = exact(z, k)
            value += w * v
            grad = [a + w * b for a, b in zip(grad, g)]
        return value, grad


CASES = [
    ([0.3, -1.0, 2.0, 0.5, -0.2], (0, 2, 4), (1.0, 1.0, 1.0)),
    ([0.0, -800.0, 1.0, 3.0], (1, 2), (1.0, -2.0)),           # an underflowed lane picked
    ([1000.0, -1000.0, 0.0, 1.0], (0, 3), (1.0, 1.0)),         # the maximum dominates, picked
    ([700.0, 0.0, -700.0], (0, 1, 2), (1.0, 0.5, 0.25)),
    ([30.0, 0.0, -1.0, 2.0], (0, 2), (1.0, 3.0)),              # 1 - s_0 = 1.3e-13 keeps its digits
    ([30.0, 0.0, -1.0, 2.0], (1, 2), (1.0, 1.0)),              # the dominant element not picked
    ([1e4, 1e4 - 30.0, 9990.0], (0, 1, 2), (2.0, -1.0, 1.0)),
    ([1e300, -1e300, 0.0], (1, 2), (1.0, 1.0)),
    ([3.0, 3.0, 3.0, -np.inf], (0, 3), (1.0, 0.5)),            # ties, a -inf lane
    ([-745.0, 0.0, -746.0, -1.0], (0, 2, 3), (1.0, 1.0, 1.0)),
    ([0.5, 0.25, 0.0, -0.25, 2.0], (0, 1, 2, 3, 4), (1.0, 2.0, 3.0, 4.0, 5.0)),
]


def _worst(c, z, keys, weights) -> float:
    with np.errstate(all="ignore"):
        v, (d,) = c(np.asarray(z, dtype=float))
    want_v, want_d = exact_sum(z, keys, weights)
    errs = [error(v, want_v)] if np.isfinite(float(want_v)) else [0.0 if v == float(want_v) else np.inf]
    return max(errs + [error(a, b) for a, b in zip(d, want_d)])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("z, keys, weights", CASES, ids=[f"{z}{k}" for z, k, _ in CASES])
def test_against_mpmath(z, keys, weights, backend):
    c = compile_grad(picks(keys, list(weights)), shapes={"z": (len(z),)}, backend=backend, stable=True)
    assert sum(i.op == "log_softmax_at_parts" for i in c.trace.instrs) == 1
    assert _worst(c, z, keys, weights) <= GOAL


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_have_log_softmax_bits(backend):
    """Each pick's value is log_softmax(z)[k] bit for bit (the op the rules wrote
    before), so a sum of them is that sum; both backends alike."""
    rng = np.random.default_rng(3)
    keys = (4, 0, 9, 2)
    expr = " + ".join(f"{w}*{PICK.format(k=k)}" for k, w in zip(keys, (1, 3, 5, 7)))
    ref = " + ".join(f"{w}*log_softmax(z)[{k}]" for k, w in zip(keys, (1, 3, 5, 7)))
    c = compile_grad(expr, shapes={"z": (10,)}, backend=backend, stable=True)
    r = compile_grad(ref, shapes={"z": (10,)}, backend=backend, stable=True)
    for z in (rng.normal(scale=3.0, size=10), np.r_[40.0, rng.normal(size=9)], np.full(10, -2.0)):
        assert np.float64(c(z)[0]).tobytes() == np.float64(r(z)[0]).tobytes()
        np.testing.assert_allclose(c(z)[1][0], r(z)[1][0], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_rows(backend):
    """Past the C loops' vector widths and tails: keys first, inside and last."""
    rng = np.random.default_rng(8)
    for n in (17, 1001):
        keys = (0, n // 2, n - 1)
        z = rng.normal(scale=3.0, size=n)
        z[n // 2] = 60.0
        c = compile_grad(picks(keys, [1.0, -1.0, 2.0]), shapes={"z": (n,)}, backend=backend, stable=True)
        assert _worst(c, z, keys, (1.0, -1.0, 2.0)) <= GOAL


@pytest.mark.parametrize("backend", BACKENDS)
def test_central_differences(backend):
    rng = np.random.default_rng(1)
    keys, w = (5, 1, 3), [1.0, -0.5, 2.0]
    c = compile_grad(picks(keys, w), shapes={"z": (7,)}, backend=backend, stable=True)
    z = rng.normal(size=7)
    _, (d,) = c(z)
    h = 1e-6
    fd = [(c(z + h * e)[0] - c(z - h * e)[0]) / (2 * h) for e in np.eye(7)]
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("keys", [(2,), (0, 2), (3, 1, 0)])
def test_forward_mode_against_reverse(keys, backend):
    """<∇f, t> from reverse mode = the tangent from forward mode, at a dominant element
    (picked and not) too."""
    rng = np.random.default_rng(2)
    w = [1.0, -2.0, 0.5][:len(keys)]
    for z in ([0.3, -1.0, 2.0, 0.5], [30.0, 0.0, -1.0, 2.0], [0.0, -800.0, 1.0, 40.0]):
        z, t = np.array(z), rng.normal(size=4)
        j = compile_jvp(picks(keys, w), shapes={"z": (4,)}, backend=backend, stable=True)
        _, (d,) = compile_grad(picks(keys, w), shapes={"z": (4,)}, backend=backend, stable=True)(z)
        assert j(z, t)[1] == pytest.approx(float(np.dot(d, t)), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_tangent_against_mpmath(backend):
    """t_k - sum(s·t) where s_k nears 1 (the dominant element picked): -expm1(v)·t_k keeps
    its digits, as the adjoint's does."""
    z, t = [30.0, 0.0, -1.0, 2.0], np.array([1.0, 1e-3, -2e-3, 5e-4])
    with mpmath.workdps(60):
        zz = [mpmath.mpf(x) for x in z]
        e = [mpmath.exp(x - zz[0]) for x in zz]
        s = [x / sum(e) for x in e]
        want = {k: t[k] - sum(a * mpmath.mpf(float(b)) for a, b in zip(s, t)) for k in range(4)}
    for keys in ((0,), (0, 2), (1, 0, 3)):
        j = compile_jvp(picks(keys), shapes={"z": (4,)}, backend=backend, stable=True)
        got = j(np.array(z), t)[1]
        assert error(got, sum(want[k] for k in keys)) <= GOAL, keys


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_and_hvps(backend):
    """sum_i w_i·log_softmax(z)[k_i] has the Hessian -(sum w)·(diag(s) - s·sᵀ); HVPs against
    central differences of the gradient."""
    keys, w = (0, 2), [1.0, 2.0]
    for z in ([0.0, -800.0, 1.0], [2.0, 2.0, 2.0], [30.0, 0.0, -800.0], [0.3, -1.0, 2.0]):
        want = 3.0 * softmax_hessian(z)
        h = compile_hessian(picks(keys, w), shapes={"z": (3,)}, backend=backend, stable=True)
        np.testing.assert_allclose(np.asarray(h(np.array(z))[2]).reshape(3, 3), want, rtol=1e-12, atol=1e-300)
    rng = np.random.default_rng(6)
    for n, keys in ((4, (0, 3)), (9, (5, 1, 2))):
        w = [1.0, -1.5, 0.25][:len(keys)]
        assert_hvp_is_differences(picks(keys, w), n, backend, rng)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_named_size(backend):
    """Keys of a vector of a named size: the binding checks the largest; forward mode
    (the C tangent's loops between the keys run to n) too."""
    g = compile_grad(picks((0, 2)), shapes={"z": ("n",)}, backend=backend, stable=True)
    assert [dict(i.attrs)["key"] for i in g.trace.instrs if i.op == "log_softmax_at_parts"] == [(0, 2)]
    j = compile_jvp(picks((0, 2)), shapes={"z": ("n",)}, backend=backend, stable=True)
    for z in (np.array([0.5, -1.0, 3.0]), np.array([0.5, -1.0, 3.0, 2.0]), np.linspace(-3.0, 2.0, 37)):
        assert _worst(g, z, (0, 2), (1.0, 1.0)) <= GOAL
        t = np.cos(np.arange(len(z)))
        assert j(z, t)[1] == pytest.approx(float(np.dot(g(z)[1][0], t)), rel=1e-13)
    with pytest.raises(Exception, match="n"):
        g(np.array([0.5, 1.0]))


# -- the ops' own derivative rules, several keys ----------------------------------------------------
@pytest.mark.parametrize("z", [[0.3, -1.0, 2.0, 0.5], [30.0, 0.0, -1.0, 2.0], [1.0, 1.0, -2.0, 0.0]])
@pytest.mark.parametrize("key", [(0,), (2,), (0, 2), (1, 2, 3)])
def test_the_ops_own_derivative_rules(z, key):
    x = np.array(z)
    P = runtime.log_softmax_at_parts(x, key)
    rng = np.random.default_rng(9)
    g = np.float64(1.7) if len(key) == 1 else rng.normal(size=len(key))
    t = rng.normal(size=4)
    if len(key) > 1:
        _rules_hold("log_softmax_at_parts", {"x": x}, {"key": key, "axis": 0},
                    lambda x: runtime.log_softmax_at_parts(x, key), ["x"])
        _rules_hold("log_softmax_at", {"x": x, "P": P}, {"key": key},
                    lambda x, P: runtime.log_softmax_at(x, runtime.log_softmax_at_parts(x, key), key), ["x"])
        _rules_hold("log_softmax_at_vjp", {"P": P, "g": g}, {"key": key},
                    lambda P, g: runtime.log_softmax_at_vjp(P, g, key), ["P", "g"])
    _rules_hold("log_softmax_at_jvp", {"P": P, "t": t}, {"key": key},
                lambda P, t: runtime.log_softmax_at_jvp(P, t, key), ["P", "t"])


def test_the_runtime_ops_against_their_definitions():
    """Several keys: the values P[K]; the adjoint sum_i g_i·(δ_k_i - s); the tangent
    t_K - sum(s·t) (s = softmax)."""
    rng = np.random.default_rng(11)
    x, g, t = rng.normal(size=6), rng.normal(size=3), rng.normal(size=6)
    key = (1, 4, 5)
    s = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    P = runtime.log_softmax_at_parts(x, key)
    np.testing.assert_allclose(runtime.log_softmax_at(x, P, key), np.log(s)[list(key)], rtol=1e-14)
    want = -g.sum() * s
    want[list(key)] += g
    np.testing.assert_allclose(runtime.log_softmax_at_vjp(P, g, key), want, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(runtime.log_softmax_at_jvp(P, t, key), t[list(key)] - s @ t, rtol=1e-13)
