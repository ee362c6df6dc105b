"""The bulk reverse sweep (passes/reverse_bulk.py) against grad_reverse, its oracle.

Not identical traces (the bulk sweep builds no hash-consing or identities): the
same gradient bit for bit at random points (a NaN as a NaN: an identity such as
old + (−m) -> old − m may flip a NaN's sign bit), the same label on every
gradient output, every v̄ label of grad_reverse's trace present, a trace the
checker accepts; and None exactly where the bulk sweep's coverage ends."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from test_builder_fast import expressions
from test_ops import DIFFERENTIABLE

from exprcompiler.bench.suite_scaling import FAMILIES
from exprcompiler.frontend import to_trace
from exprcompiler.op_def import VARIADIC
from exprcompiler.passes.replay import scalar_output
from exprcompiler.passes.reverse import vjp
from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
from exprcompiler.trace.builder import Builder, trace_from_builder
from exprcompiler.trace import identities
from exprcompiler.trace.check import interpret, verify


def per_instruction(trace, wrt=None):
    """The oracle: grad_reverse's per-instruction sweep (its VJP seeded with 1), at
    any size (grad_reverse itself takes the bulk sweep from reverse._BULK_FROM
    instructions)."""
    return vjp(trace, wrt, seeds={scalar_output(trace)[0]: 1.0})


def _points(trace, count=4, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield {name: rng.uniform(-2.0, 2.0) for name in trace.input_names}


def _same_bits(x, y) -> bool:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return x.tobytes() == y.tobytes() or (bool(np.isnan(x)) and bool(np.isnan(y)))


def assert_matches(trace, wrt=None, points=None):
    """The bulk gradient of `trace` is not None and agrees with grad_reverse's."""
    want = per_instruction(trace, wrt)
    got = grad_reverse_bulk(trace, wrt)
    assert got is not None
    verify(got)
    assert [name for name, _ in got.outputs] == [name for name, _ in want.outputs]
    assert [got.labels[v] for _, v in got.outputs] == [want.labels[v] for _, v in want.outputs]
    assert set(filter(None, want.labels)) <= set(filter(None, got.labels))
    # no dead code (the trace says it has none: a builder loading it trusts that)
    used = {a for ins in got.instrs for a in ins.args} | {v for _, v in got.outputs}
    assert all(i in used or ins.op == "input" for i, ins in enumerate(got.instrs))
    for env in points or _points(trace):
        for a, b in zip(interpret(want, env), interpret(got, env)):
            assert _same_bits(a, b), (env, a, b)
    return got


# -- the lecture's examples (../shared/SEEDS.md) -------------------------------------

LECTURE = [
    ("x**3 - 3*x", {"x": 1.0}),
    ("(x**2 + 1)**2", {"x": 1.0}),
    ("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))", {"x1": 1.5, "x2": 0.5}),
    ("log(x1) + x1*x2 - sin(x2)", {"x1": 2.0, "x2": 5.0}),
    ("exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", {"x": 2.0, "z": 3.0}),
    ("tanh(x)", {"x": 4.0}),
    ("abs(x) + (x - 5)**2", {"x": 10.0}),
    ("x*cos(4*x) + 2*abs(x)", {"x": -3.5}),
]


@pytest.mark.parametrize("text, point", LECTURE, ids=[t for t, _ in LECTURE])
def test_lecture_examples(text, point):
    trace = to_trace(text)
    assert_matches(trace, points=[point, *_points(trace)])


def test_griewank_published_numbers():
    trace = to_trace("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")
    _, g1, g2 = interpret(grad_reverse_bulk(trace), {"x1": 1.5, "x2": 0.5})
    # (the published table rounds its intermediates: -13.7239 for -13.72396...)
    assert abs(float(g1) - 3.0118) < 1e-4 and abs(float(g2) + 13.7239) < 1e-3


def test_griewank_table_lines():
    # the published reverse sweep, line for line, as grad_reverse writes it: the seed
    # v̄_6 = 1 folded (1 · v_5 is v_5, so the seed is dead), `old + (−m)` written `old − m`
    trace = to_trace("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")
    table = str(grad_reverse_bulk(trace))
    sweep = [line.split()[0] + " = " + line.split("=", 1)[1].strip() for line in table.splitlines() if "̄" in line]
    assert sweep == ["v̄_4 = v_5", "v̄_5 = v_4", "v̄_4 = v̄_4 + v̄_5",
                     "v̄_2 = v̄_5", "v̄_3 = −v̄_4", "v̄_1 = v̄_4", "v̄_0 = v̄_3 · v_3", "v̄_1 = v̄_1 + v̄_2 · cos(v_1)",
                     "v̄_0 = v̄_0 − v̄_1 · v_1 / v_0", "v̄_-1 = v̄_1 / v_0", "x̄1 = v̄_-1", "x̄2 = v̄_0"]
    assert table == str(per_instruction(trace))


EDGE_CASES = ["x", "x*x", "x - x", "2.0*x", "x + y*0", "-x", "-(-x)", "x/x", "where(x > y, x, y)",
              "maximum(x, y)*x", "(x + y)**2", "exp(x)**0", "x**0.0"]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases(text):
    assert_matches(to_trace(text))


# -- random expressions and the benchmark families -----------------------------------

@settings(max_examples=examples(150), deadline=None)
@given(expressions())
def test_random_expressions(text):
    trace = to_trace(text)
    if not trace.input_names:
        return
    if grad_reverse_bulk(trace) is None:
        # coverage ends only at an adjoint that flows nowhere, and where grad_reverse's
        # replay changes the primal's bits (test_reverse_bulk_bits.py)
        assert _has_zero_power(trace) or _replay_folds(trace), text
        return
    assert_matches(trace)


def test_no_unread_copy_when_every_reader_is_a_primal_hit():
    # (found by the explore profile: v̄_1 = v_0·v̄_2 is the primal's v_1, a hit, and
    # every reader of v̄_1 is a hit too, so its named copy is read by nothing)
    assert_matches(to_trace("(x) * ((x) * ((x) * (x)))"))


def _replay_folds(trace) -> bool:
    """Whether grad_reverse's replay of the primal applies c·(k·v) -> (c·k)·v (the
    builder's own call counted, independently of the bulk sweep's check)."""
    from exprcompiler.passes.replay import replay
    from exprcompiler.trace.ir import Builder
    fired = []
    scale = identities._scale_constant

    def counted(*args):
        got = scale(*args)
        fired.append(got is not None)
        return got
    with pytest.MonkeyPatch.context() as m:
        m.setattr(identities, "_scale_constant", counted)
        replay(Builder(pull_negations=True), trace)
    return any(fired)


def _has_zero_power(trace) -> bool:
    """Whether `trace` has x**0 (the one structural zero of these expressions)."""
    instrs = trace.instrs
    return any(ins.op == "pow" and instrs[ins.args[1]].op == "const" and instrs[ins.args[1]].value == 0
               for ins in instrs)


@pytest.mark.parametrize("family", ["random DAG", "deep"])
@pytest.mark.parametrize("size", [1000, 10000])
def test_bench_families(family, size):
    trace = to_trace(FAMILIES[family](size))
    got = assert_matches(trace, points=_points(trace, 2))
    # the bulk sweep leaves out sharing and identities, not whole contributions
    assert len(got.instrs) <= 1.1 * len(per_instruction(trace).instrs)


_NOT_YET = pytest.mark.xfail(strict=True, reason="not yet grad_reverse's trace: no identities on negated adjoints, "
                                                 "no hash-consing of what reads a G that names a sweep variable "
                                                 "(module docstring); when this passes, the bulk sweep may be wired in")


@pytest.mark.parametrize("family, size", [pytest.param("random DAG", 1000, marks=_NOT_YET), ("deep", 1000),
                                          ("deep", 10000)])
def test_same_trace_as_grad_reverse(family, size):
    trace = to_trace(FAMILIES[family](size))
    want, got = per_instruction(trace), grad_reverse_bulk(trace)
    assert got.instrs == want.instrs and got.labels == want.labels and got.outputs == want.outputs


def test_identities_on_an_arguments_shape():
    # 2·(0.5·x) is x (c·(k·v) -> (c·k)·v, in the partial of a square of a product with a
    # constant): the kinds are told apart by their arguments' shape, and each recorded
    # on such a placeholder. (Not yet: (x*0.25)**2, where 2·0.25 is a new constant that
    # grad_reverse makes where it is first read, the bulk sweep after the primal.)
    for text in ["(0.5*x)**2 + y*(2*y)", "(0.5*x)**2", "y*(0.5*x)**2"]:
        trace = to_trace(text)
        want, got = per_instruction(trace), assert_matches(trace)
        assert got.instrs == want.instrs and got.labels == want.labels, text


@pytest.mark.parametrize("inner", ["a*x - cos(a)", "cos(a)*y - a", "x - a*y", "exp(a) - a", "(x - a)*cos(a)",
                                   "a - cos(a)*x", "cos(a) + a*a"])
def test_negation_identities(inner):
    # exp(b)·x makes every adjoint below b a fresh variable (not the seed's cascade);
    # a first contribution −m then c: the builder's −m + c is c − m (the negation
    # dropped), and a G that is −m, summed: old − m
    trace = to_trace("a = x*y\nb = " + inner + "\nexp(b)*x")
    want, got = per_instruction(trace), assert_matches(trace)
    assert got.instrs == want.instrs and got.labels == want.labels


@pytest.mark.parametrize("text", [
    # the explore profile's (session 36): a constant sweep's negation −cos(v) (or
    # −(v_3/v_2), −v_0), then a negated seed −(−cos) is cos, named v̄_1 (a copy), and
    # −cos read by nothing (dropped); a first contribution that is a copy of it, then
    # a sum: c − cos (the copy dropped)
    "-(sin((x) - ((x) + (x))))", "(x) + ((x) / ((x) - ((x) + (x))))", "(x) - ((x) * ((x) - ((x) + (x))))",
    # ... and a negated seed of a copy of cos (v̄_1 = t_1) finds −t_1 built: a copy of it
    "(x) / ((x) - ((x) - (y)))", "(x) * (((1e308) - (x)) + ((x) - (x)))",
    # the same on regular edges (exp(b)·x: no constant adjoint below b): G a negation
    # made by its own edge, through copies, or a chain of them (−(−(−x)) is −x)
    "a = x*y\nb = x - (y - a)\nexp(b)*x", "a = x*y\nb = x - cos(y - a)\nexp(b)*x",
    "a = x*y\nb = x - (y - (a + a))\nexp(b)*x", "a = x*y\nb = x - (y - (a + y))\nexp(b)*x",
    "a = x*y\nb = -(-(-(a*y)))\nexp(b)*x", "a = x*y\nb = x - (y - (a - y*sin(a)))\nexp(b)*x",
    "a = x*y\nb = x - (a - (y-a))\nexp(b)*x", "a = x*y\nb = x - (y - (a - (y - a)))\nexp(b)*x",
])
def test_a_negated_seed_of_a_negation(text):
    # −(−m) is m, as grad_reverse's builder makes it: the same trace
    trace = to_trace(text)
    want, got = per_instruction(trace), assert_matches(trace)
    assert str(got) == str(want) and got.labels == want.labels


@pytest.mark.parametrize("text", [
    "x*cos(x - (x - x))", "cos(x - (x - y))*x", "cos(x - (x - y))*x - y", "x*cos(x - (x - x)) + y*sin(y - (y - x))",
    "a = x*y\nb = x*cos(x - (x - a))\nexp(b)*x", "a = x*y\nb = cos(a - (a - y))*a\nexp(b)*x",
])
def test_a_negation_found_that_its_own_edge_made(text):
    # (10^6 text, session 37: the bulk sweep declined.) v̄_2 = −t_1 is made by v_2's
    # single edge (cos's partial); every edge out of v_2 reads it no more (−(−t_1) is
    # t_1, named v̄_1; old + v̄_2 is old − t_1), so it is not laid out; −v̄_1 then finds
    # −t_1 built: a later contribution is old − t_1 (what v̄_2 negates, from its own
    # edge), a first one a copy of v̄_2 (which is then laid out)
    trace = to_trace(text)
    want, got = per_instruction(trace), assert_matches(trace)
    assert str(got) == str(want) and got.labels == want.labels


@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_covers_random_programs():
    # the guard on the bulk sweep's coverage: random DAGs of the bench's kind at a size
    # where grad_reverse takes it (~2,100 instructions), 100 seeds (~2.5 s); before
    # the test above was mended, seeds 57 and 87 declined (the rest of the scan over
    # 300 programs of 200-1,000 operations and 1,500 of 200 and 400: 7 more, all that case)
    from exprcompiler.randexpr import random_program
    declined = [seed for seed in range(100) if grad_reverse_bulk(to_trace(random_program(1000, seed=seed))) is None]
    assert not declined
    for seed in (57, 87):
        trace = to_trace(random_program(1000, seed=seed))
        assert_matches(trace, points=_points(trace, 1))


def test_the_constant_sweep_meets_the_primal():
    # cos's partial at v̄ = 1 is −sin(x), and sin(x) is the primal's: hash-consed
    for text in ["sin(x) + cos(x)", "x*y + cos(x*y)"]:
        trace = to_trace(text)
        want, got = per_instruction(trace), assert_matches(trace)
        assert got.instrs == want.instrs and got.labels == want.labels, text


def test_a_seed_copy_that_meets_the_primal():
    # v̄ of y·e is y (1·y), named as a copy of y; exp's partial v̄·e is then y·e, the
    # primal's own product (hash-consed by sources): the copy is read by nothing, and
    # grad_reverse's finish drops it
    for text in ["x*exp(-x**2)", "sin(x*y)*exp(-(x*y)**2)", "(x*y)*exp(x*y) + x"]:
        trace = to_trace(text)
        want, got = per_instruction(trace), assert_matches(trace)
        assert got.instrs == want.instrs and got.labels == want.labels, text


@pytest.mark.parametrize("family, most", [("random DAG", 25), ("deep", 0)])
def test_near_grad_reverse(family, most):
    # the seed's cascade folded, partials on primal variables (and on a G that names
    # one) hash-consed, the identities on arguments' shapes and on negated adjoints, as
    # grad_reverse's builder does (module docstring): at most `most` more instructions
    # than grad_reverse's 3,034 and 3,011 (session 33: +220 and +3, then +53 and +1;
    # now +18 and 0)
    trace = to_trace(FAMILIES[family](1000))
    want, got = per_instruction(trace), assert_matches(trace, points=_points(trace, 2))
    assert len(got.instrs) <= len(want.instrs) + most


def test_constant_cascade():
    # 1·v is v, −1·v is −v, and 1 + 1 folds, as in grad_reverse: the same table
    for text in ["x*y + sin(x)*3", "x*y - y*z + (x - y)*(y - z)", "(x + y) + (x + y)*2", "2*x - 3*y + x",
                 "(x - y) - (y - x)*(1 + 1)", "-(x + y) + 0.5*(x*y)", "x - (y + 2*(x - y))"]:
        trace = to_trace(text)
        assert str(assert_matches(trace)) == str(per_instruction(trace)), text


def test_negative_zero_adjoint_then_a_regular_edge():
    # v̄_5 = 1 − 1 = 0, so v_5 = v_4 − v_1 gives v_1 the constant −0.0; v_2 = sin(v_1)
    # then adds a regular contribution: −0.0 + c is c (the builder's identity), named in place
    trace = to_trace("sin(x*y)*x + ((exp(x) - x*y) + cos(y)) - (exp(x) - x*y)")
    got = assert_matches(trace)
    assert "v̄_1  = v̄_2 · cos(v_1)" in str(got).splitlines()


def test_sympy_family():
    from exprcompiler.trace.to_sympy import to_sympy
    expr, = to_sympy(to_trace(FAMILIES["random DAG"](1000)), evaluate=False)
    trace = to_trace(expr)
    assert_matches(trace, points=_points(trace, 2))


def test_no_gradient_flows():
    # nothing to differentiate: no seed either (grad_reverse's finish drops it)
    got = assert_matches(to_trace("x*y + sin(x)"), [])
    assert len(got.outputs) == 1 and all(ins.op != "const" for ins in got.instrs)


def test_wrt_a_subset():
    trace = to_trace("sin(x*y) + exp(z)*x - y/z")
    assert_matches(trace, ["y"])
    assert_matches(trace, ["z", "x"])
    assert_matches(to_trace("x**2*y + cos(z)*3.0"), ["z"])   # (x**2's constant: not in the trace)


def test_an_input_without_adjoint_gets_zero():
    # the partial of x**0 to x is a structural zero, so x has no adjoint (a constant 0)
    assert_matches(to_trace("x**0"))
    assert_matches(to_trace("x*y + sin(z)"), ["y", "z"])


def test_none_where_an_adjoint_flows_nowhere():
    # v̄ of x**0 is made (from the product) but reaches nothing: dead code, not laid out
    assert grad_reverse_bulk(to_trace("x**0*y + sin(z)")) is None
    assert grad_reverse_bulk(to_trace("x**0.0 * y + sin(x)")) is None


# -- every elementwise op ------------------------------------------------------------

def _op_trace(op):
    b = Builder()
    x, y, z = b.input("x"), b.input("y"), b.input("z")
    v = b.apply(op.name, *(x, y, z)[:op.arity])
    out = b.add(b.mul(v, z), b.sin(x))
    return trace_from_builder(b, [("f", out)])


@pytest.mark.parametrize("op", [op for op in DIFFERENTIABLE if op.arity != VARIADIC], ids=lambda op: op.name)
def test_each_elementwise_op(op):
    trace = _op_trace(op)
    want = per_instruction(trace)
    got = grad_reverse_bulk(trace)
    if got is None:   # coverage ends: say why, so a new op is looked at on purpose
        assert op.name in _NOT_COVERED, f"{op.name}: the bulk sweep returned None"
        return
    assert op.name not in _NOT_COVERED
    rng = np.random.default_rng(1)
    for _ in range(4):
        env = {n: rng.uniform(0.1, 0.9) for n in trace.input_names}
        for a, b in zip(interpret(want, env), interpret(got, env)):
            assert _same_bits(a, b), (op.name, env, a, b)


# ops whose partials are all structural zeros (comparisons, sign): the adjoint the
# product gives them flows nowhere, dead code the bulk sweep does not lay out
_NOT_COVERED = frozenset(op.name for op in DIFFERENTIABLE if not any(op.vjp.partials))


# -- where coverage ends -------------------------------------------------------------

def test_none_for_tensors():
    trace = to_trace("sum(X*w)", shapes={"X": (3,), "w": (3,)})
    assert grad_reverse_bulk(trace) is None


def test_none_for_options():
    from exprcompiler.trace.ir import Instr, Trace
    instrs = [Instr("input", (), (("name", "x"),)), Instr("sum", (0,), (("axis", None),))]
    trace = Trace(instrs, [None, None], [("f", 1)], _all_live=True)
    assert grad_reverse_bulk(trace) is None


def test_none_for_inputs_not_first():
    from exprcompiler.trace.ir import Instr, Trace
    instrs = [Instr("const", (), (("value", 2.0),)), Instr("input", (), (("name", "x"),)), Instr("mul", (0, 1))]
    trace = Trace(instrs, [None, None, None], [("f", 2)], _all_live=True)
    assert grad_reverse_bulk(trace) is None


def test_none_past_the_int32_columns(monkeypatch):
    # positions are int32: the bound counts on templates of at most _MAX_BLOCK
    # instructions and on the trace's size
    import exprcompiler.passes.reverse_bulk as bulk
    trace = to_trace("sin(x)*y")
    assert grad_reverse_bulk(trace) is not None
    monkeypatch.setattr(bulk, "_MAX_BLOCK", 0)   # (every partial here builds an instruction)
    assert grad_reverse_bulk(trace) is None
    monkeypatch.setattr(bulk, "_MAX_BLOCK", 2 ** 28)   # (n·(3·_MAX_BLOCK + 8) past 2^31)
    assert grad_reverse_bulk(trace) is None


def test_errors_as_grad_reverse():
    from exprcompiler.errors import ShapeError
    with pytest.raises(ShapeError):
        grad_reverse_bulk(to_trace("a + b, a - b"))


@pytest.mark.parametrize("family", ["random DAG", "deep"])
def test_labels_as_columns(family):
    # a primal with Labels gets its gradient's labels as columns (read off the
    # primal's, the constant sweep's through as_labels); a primal with a tuple, a
    # tuple: the same labels, column for column
    from exprcompiler.trace.ir import Trace
    from exprcompiler.trace.labels import Labels, as_labels
    for text in [FAMILIES[family](1000), *EDGE_CASES, *(t for t, _ in LECTURE)]:
        trace = to_trace(text)
        as_tuple = Trace(trace.instrs, tuple(trace.labels), trace.outputs, None, _inputs=trace.inputs,
                         _all_live=True)
        got, plain = grad_reverse_bulk(trace), grad_reverse_bulk(as_tuple)
        if got is None:
            assert plain is None
            continue
        assert isinstance(trace.labels, Labels) and isinstance(got.labels, Labels)
        assert not isinstance(plain.labels, Labels) and got.instrs == plain.instrs
        assert got.labels == as_labels(plain.labels), text
