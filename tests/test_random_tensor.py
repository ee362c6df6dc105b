"""Random tensor programs (hypothesis): forward and reverse mode agree.

A recipe is a random straight-line program over a few inputs of random shapes
((), (m,), (m, k), (1, k), (m, 1)); each step applies an op that is valid for the
shapes at hand — elementwise functions and arithmetic with broadcasting, matmul,
transpose, reductions over a random axis, softmax, logsumexp, norm, indexing and
slicing, stack, where — so every rule meets broadcast and size-1 dimensions. Values
are kept bounded (tanh, sigmoid) so derivatives are well conditioned.

Properties: the dot-product test ⟨u, J v⟩ = ⟨Jᵀu, v⟩ between the JVP and the VJP
traces; the JVP against central differences; the NumPy backend against the
reference interpreter; every trace verifies.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exprcompiler import compile_expr, compile_jvp, compile_vjp
from exprcompiler.passes import jvp, vjp
from exprcompiler.trace import interpret, verify
from exprcompiler.trace.ir import Builder, trace_from_builder

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _broadcasts(a, b) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


@st.composite
def programs(draw):
    m, k = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    shape_pool = [(), (m,), (m, k), (1, k), (m, 1), (k,)]
    b = Builder()
    nodes = []
    for i in range(draw(st.integers(1, 3))):
        nodes.append(b.input(f"x{i + 1}", draw(st.sampled_from(shape_pool))))
    for _ in range(draw(st.integers(1, 7))):
        x = draw(st.sampled_from(nodes))
        y = draw(st.sampled_from(nodes))
        sx, sy = b.shape(x), b.shape(y)
        choices = ["tanh", "sigmoid", "sin", "mul_const"]
        if _broadcasts(sx, sy):
            choices += ["add", "sub", "mul", "where"]
        if len(sx) >= 1 and len(sy) >= 1 and len(sx) <= 2 and len(sy) <= 2 and sx[-1] == sy[0]:
            choices += ["matmul"]
        if len(sx) == 1 and len(sy) == 1:
            choices += ["outer"]
        if len(sx) >= 1:
            choices += ["sum", "mean", "max", "logsumexp", "softmax", "norm", "index", "slice"]
        if len(sx) == 2:
            choices += ["transpose"]
        if sx == sy:
            choices += ["stack"]
        op = draw(st.sampled_from(choices))
        axis = draw(st.integers(-len(sx), len(sx) - 1)) if sx else None
        if op in ("tanh", "sigmoid", "sin"):
            z = b.apply(op, x)
        elif op == "mul_const":
            z = b.mul(draw(st.sampled_from([0.5, -1.5, 2.0])), x)
        elif op == "where":
            z = b.where(b.gt(x, 0.0), b.tanh(y), b.mul(x, y))
        elif op in ("add", "sub", "mul", "matmul", "outer"):
            z = b.apply(op, x, y)
        elif op in ("sum", "mean", "max", "logsumexp"):
            z = b.apply(op, x, axis=axis, keepdims=draw(st.booleans()))
        elif op == "softmax":
            z = b.softmax(x, axis=axis)
        elif op == "norm":
            z = b.norm(x)
        elif op == "index":
            z = b.index(x, key=(draw(st.integers(0, sx[0] - 1)),))
        elif op == "slice":
            z = b.index(x, key=((draw(st.integers(0, sx[0] - 1)), None, None),))
        elif op == "transpose":
            z = b.transpose(x)
        else:
            z = b.stack(x, y, axis=draw(st.integers(0, len(sx))))
        nodes.append(b.tanh(z))  # bounded values for the next step
    out = nodes[-1]
    return trace_from_builder(b, [("y", out)])


def _point(trace, rng):
    return {name: rng.normal(size=trace.instrs[v].shape) for name, v in trace.inputs}


@given(programs(), st.integers(0, 2**31 - 1))
@settings(max_examples=120, **SETTINGS)
def test_forward_and_reverse_agree_on_random_tensor_programs(primal, seed):
    rng = np.random.default_rng(seed)
    verify(primal)
    tangent, adjoint = verify(jvp(primal)), verify(vjp(primal))
    x = _point(primal, rng)
    d = {k: rng.normal(size=np.shape(v)) for k, v in x.items()}
    value, jd = interpret(tangent, {**x, **{f"{k}.dot": v for k, v in d.items()}})
    u = rng.normal(size=np.shape(value))
    _, *adjoints = interpret(adjoint, {**x, "y.bar": u})
    names = [n for n, _ in primal.inputs]
    lhs = float(np.sum(u * jd))
    rhs = sum(float(np.sum(a * d[n])) for n, a in zip(names, adjoints))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)
    for n, a in zip(names, adjoints):
        assert np.shape(a) == np.shape(x[n])
    # JVP against central differences
    f = compile_expr(primal)
    h = 1e-6
    fd = (np.asarray(f(**{k: x[k] + h * d[k] for k in x})) - np.asarray(f(**{k: x[k] - h * d[k] for k in x}))) / (2 * h)
    np.testing.assert_allclose(jd, fd, rtol=1e-5, atol=1e-6)
    # the NumPy backend against the interpreter
    J = compile_jvp(primal)
    got_value, got = J(**x, **{f"{k}_dot": v for k, v in d.items()})
    np.testing.assert_allclose(got, jd, rtol=1e-12, atol=1e-14)
    V = compile_vjp(primal)
    _, got_adj = V(**x, y_bar=u)
    for a, b_ in zip(got_adj, adjoints):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-14)
