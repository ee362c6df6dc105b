"""C kernels: a `where` whose condition is a comparison temporary selects on the
comparison itself (c_backend.SelectRenderer, c_backend.conditions_inlined), with the
values of the op-by-op evaluation (the tape VM's, NumPy's) at ties, NaN, signed zeros
and infinities; a split kernel's parts keep xc_where; logaddexp3's helper is spelled
as its derivative's statements, so that gcc computes their exps once."""

import math
import re

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_backend, c_split
from exprcompiler.trace.ir_trace import Instr, Label, Trace
from conftest import needs_cc


SPECIAL = [0.0, -0.0, 1.0, -2.5, 1e-300, 700.0, math.inf, -math.inf, math.nan]


pytestmark = pytest.mark.usefixtures("private_cache")


def points(k: int) -> list:
    """Every k-tuple of SPECIAL, then random points with ties (integers in [-2, 2])."""
    grid = np.array(np.meshgrid(*([SPECIAL] * k))).reshape(k, -1)
    ties = np.round(np.random.default_rng(k).uniform(-2, 2, (k, 200)))
    return list(np.concatenate([grid, ties], axis=1))


def point_body(source: str) -> str:
    return source.split("/* one point */")[1].split("\n}\n")[0]


def bits(values, n: int) -> np.ndarray:
    return np.stack([np.broadcast_to(np.asarray(v, float), (n,)) for v in values]).view(np.uint64)


@needs_cc
@pytest.mark.parametrize("text, arity, select", [
    ("maximum(x, y) * minimum(y, x)", 2, "xc_select(x == y, 0.5, xc_lt(x, y))"),
    ("maximum(x, 0) * y", 2, "xc_select(x == 0.0, 0.5, xc_gt(x, 0.0))"),
    ("logaddexp(x, y)", 2, "xc_select(x == y, xc_select(t1 == t1, t3, 0.5), t3)"),
    ("hypot(x, y)", 2, "xc_select(v1 == 0.0, 0.0, x / t1)"),
    ("hypot3(x, y, z)", 3, "xc_select(v1 == 0.0, 0.0, xc_over_norm(x, t2, t1))"),
    ("logaddexp3(x, y, z)", 3, "exp(xc_select(t3 == t1, xc_select(t5 == t5, t5, 0.0), t5))"),
])
def test_a_where_on_a_comparison_selects_on_it_with_the_same_values(text, arity, select):
    """The derivative rules' wheres (the tie of maximum and logaddexp, hypot's zero, the
    largest term of logaddexp3) select on their comparison, shared by several wheres
    or not: no 1.0/0.0 double is made of it. The bits are the VM's, which evaluates the
    comparison and the where one after the other."""
    c, vm = compile_grad(text, backend="c", threads=1), compile_grad(text, backend="vm", threads=1)
    body = point_body(c.source)
    assert select in body
    assert "xc_where(" not in body and "xc_eq(" not in body
    xs = points(arity)
    with np.errstate(all="ignore"):
        (cv, cg), (vv, vg) = c(*xs), vm(*xs)
    n = len(xs[0])
    assert np.array_equal(bits([cv, *cg], n), bits([vv, *vg], n))


@needs_cc
def test_maximum_partials_at_ties_nan_and_zeros_are_numpys():
    """0.5 to each side at a tie (-0.0 against 0.0 included), NaN's side 0 by the
    comparison, as the NumPy backend's where(eq(x, y), 0.5, ...)."""
    c, ref = compile_grad("maximum(x, y)", backend="c", threads=1), compile_grad("maximum(x, y)")
    xs = points(2)
    with np.errstate(all="ignore"):
        (_, cg), (_, rg) = c(*xs), ref(*xs)
    n = len(xs[0])
    assert np.array_equal(bits(cg, n), bits(rg, n))
    x, y = np.array([0.0, -0.0, 1.0]), np.array([-0.0, 0.0, 1.0])
    assert c(x, y)[1][0].tolist() == [0.5, 0.5, 0.5]


def _trace(readers: list, output_cmp: bool = False) -> Trace:
    """x, y, a temporary c = eq(x, y), then one temporary per reader (op, args with "c"
    for the comparison), each an output; `output_cmp`: c an output too."""
    instrs = [Instr("input", (), (("name", "x"),), ()), Instr("input", (), (("name", "y"),), ()),
              Instr("eq", (0, 1), (), ())]
    instrs += [Instr(op, tuple(2 if a == "c" else a for a in args), (), ()) for op, args in readers]
    labels = [Label("v", -1, "x", None), Label("v", 0, "y", None)] + [None] * (len(instrs) - 2)
    outputs = [(f"o{k}", 3 + k) for k in range(len(readers))] + ([("c", 2)] if output_cmp else [])
    return Trace(instrs, labels, outputs)


def test_a_comparison_read_only_by_where_conditions_is_inlined_into_each():
    two = _trace([("where", ("c", 0, 1)), ("where", ("c", 1, 0))])
    body = point_body(c_backend.generate_c(two)[0])
    assert body.count("xc_select(x == y, ") == 2 and "xc_eq(" not in body


@pytest.mark.parametrize("readers, output_cmp", [
    ([("where", ("c", 0, 1)), ("mul", ("c", 0))], False),       # a mask multiplied
    ([("where", ("c", 0, 1)), ("where", (0, "c", 1))], False),  # a where's value
    ([("where", ("c", 0, 1)), ("where", ("c", 1, 0))], True),   # an output
])
def test_a_comparison_read_otherwise_keeps_its_statement(readers, output_cmp):
    body = point_body(c_backend.generate_c(_trace(readers, output_cmp=output_cmp))[0])
    name = re.search(r"double (\w+) = xc_eq\(x, y\);", body).group(1)
    assert f"xc_where({name}, x, y)" in body


@needs_cc
def test_a_split_kernels_parts_keep_xc_where(monkeypatch):
    """The vector extension's parts call helpers on xc_v values, which a mask is not:
    a split kernel keeps xc_where(xc_eq(...)), and its numbers."""
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
    monkeypatch.setattr(c_backend, "PART", 4)
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 0)
    text = "maximum(x, y) * sin(x) + logaddexp(x, y) * cos(y) + hypot(x, y) * maximum(y, 0)"
    c, ref = compile_grad(text, backend="c", threads=1), compile_grad(text)
    assert c_split.UNIT_MARK in c.source
    assert "xc_v_xc_where(" in c.source and "xc_v_xc_select(" not in c.source
    xs = points(2)
    with np.errstate(all="ignore"):
        (cv, cg), (rv, rg) = c(*xs), ref(*xs)
    for a, b in zip([cv, *cg], [rv, *rg]):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-300)


@needs_cc
def test_logaddexp3s_helper_is_spelled_as_its_gradients_statements():
    """gcc computes an exp once for the value and the partials only where both spell
    it the same (after inlining, xc_where(xc_eq(x, m), ...) and xc_select(x == m, ...)
    are different values to it: twice the exps). The helper's steps, with the kernel's
    names for m and the two other arguments, are the gradient kernel's; the kernel
    calls exp twice a point."""
    from exprcompiler.backends import c_nary
    body = point_body(compile_grad("logaddexp3(x, y, z)", backend="c", threads=1).source)
    helper = c_nary.HELPERS["xc_logaddexp3"][0]
    names = {"big": "t1", "m": "t2", "u": "t3", "w": "t4", "du": "t5", "dw": "t7"}
    steps = [re.search(rf"\b{var} = (.*?)[,;]\n", helper).group(1) for var in ("m", "w")]
    steps += [re.search(r"\bu = (.*?), w =", helper).group(1)]
    steps += re.findall(r"exp\(xc_select\(\w == big, xc_select\(d\w == d\w, d\w, 0\.0\), d\w\)\)", helper)
    assert len(steps) == 5
    for step in steps:
        assert re.sub(r"\b(big|m|u|w|du|dw)\b", lambda k: names[k.group(1)], step) in body, step
    assert body.count("exp(") == 2


@needs_cc
@pytest.mark.parametrize("backend", ["c", "vm", "numpy"])
def test_logaddexp3s_gradient_is_the_softmax_with_ties_and_infinities(backend):
    """Two exps for three partials: the first largest argument's is 1, the two others'
    exp(t - m) (exp(0) for a tie with m, infinities included): the softmax at random
    points, ties (1/2 each, 1/3 each) and infinite arguments, in reverse and forward
    mode."""
    from exprcompiler import compile_jvp
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.uniform(-30, 30, (60, 3)), np.round(rng.uniform(-2, 2, (60, 3))),
                          [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [2.0, 2.0, 2.0], [800.0, 0.0, -math.inf],
                           [math.inf, math.inf, 0.0], [-math.inf, 0.0, 0.0], [math.inf] * 3, [-math.inf] * 3]]).T
    g = compile_grad("logaddexp3(a, b, c)", backend=backend)
    with np.errstate(all="ignore"):
        _, grads = g(*pts)
        m = np.max(pts, axis=0)
        e = np.exp(np.where(pts == m, 0.0, pts - m))
        want = e / np.sum(e, axis=0)
    np.testing.assert_allclose(np.array(grads), want, rtol=4e-15, atol=0)
    f = compile_jvp("logaddexp3(a, b, c)", backend=backend)
    for k in range(3):   # forward mode, one tangent per argument
        with np.errstate(all="ignore"):
            _, t = f(*pts, *(float(j == k) for j in range(3)))
        np.testing.assert_allclose(t, want[k], rtol=4e-15, atol=0)
