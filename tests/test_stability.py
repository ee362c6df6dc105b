"""The stability rewrites (issue 18): the rule table, matching and its near misses,
the pass's properties (idempotent, deterministic, off means off), compile_*'s
`stable=` and `g.rewrites`, explain, and a few catalogue entries against mpmath.
The whole catalogue on both backends and the no-worse property on random points are
in test_stability_catalogue.py."""

from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_hessian, compile_jacobian, ops, passes
from exprcompiler.cli import main as cli_main
from exprcompiler.frontend import to_trace
from exprcompiler.jacobians import explain, operations
from exprcompiler.stability import RULES, stabilize
from exprcompiler.stability.rules import select
from exprcompiler.stability import accuracy as A
from exprcompiler.stability.catalogue import CATALOGUE
from exprcompiler.trace import verify


def fired(expr, stage="primal"):
    return [f.rule for f in stabilize(to_trace(expr), stage)[1]]


def ops_of(trace):
    return {ins.op for ins in trace.instrs}


def test_rule_table_is_well_formed():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    for r in RULES:
        assert r.op in ops.OPS, r.name
        assert r.reason and r.fails and callable(r.pattern) and callable(r.build), r.name
        assert set(r.stages) <= {"primal", "derivative"} and r.stages, r.name


def test_every_rule_fires_on_some_catalogue_entry():
    seen = {name for e in CATALOGUE for name in e.rules}
    assert {r.name for r in RULES} - seen <= {"expm1_add", "erf_minus_one", "log1p_expm1", "sinh", "logsumexp",
                                              "softmax"}   # the tensor ones: test_softmax_* below
    for e in CATALOGUE:
        got = {f.rule for f in A.compile_entry(e, stable=True).rewrites}
        assert set(e.rules) <= got, (e.name, got)


@pytest.mark.parametrize("expr, rule", [
    ("log(exp(x) + 1)", "softplus"), ("log(1.0 + exp(x))", "softplus"), ("log(2 - 1 + exp(x))", "softplus"),
    ("exp(x) + -1", "expm1_add"), ("log1p(expm1(x))", "log1p_expm1"), ("erf(x) - 1", "erf_minus_one"),
    ("0.5*(exp(x) - exp(-x))", "sinh"), ("sqrt(x*x + y*y)", "hypot"), ("sqrt(x**2 + 4)", "hypot"),
    ("log(exp(a) + 1 + exp(b))", "logaddexp"), ("x/(1 + exp(-x))", "sigmoid"),
])
def test_commuted_and_folded_forms_match(expr, rule):
    assert rule in fired(expr)


@pytest.mark.parametrize("expr", [
    "log(2 + exp(x))", "log(1.0000001 + x)", "sqrt(x**2 + 2)", "exp(x) - 2", "log(exp(x) + y)",
    "exp(a)/(exp(b) + exp(c))", "x*log(y)", "1 - sigmoid(x)**2", "sqrt(x**2 - y**2)",
])
def test_near_misses_do_not_match(expr):
    assert fired(expr) == []


@pytest.mark.parametrize("expr, rule", [
    ("(exp(2*x) - 1)/(exp(x) + 1)", "tanh_ratio"),     # two different exponentials
    ("log(x + sqrt(y**2 + 1))", "arcsinh"),             # y is not x
    ("log(x + hypot(x, 2))", "arcsinh"),
    ("1 - tanh(x)*tanh(y)", "tanh_derivative"),
    ("exp(x)/(1 + exp(y))", "sigmoid_ratio"),
])
def test_near_misses_of_one_rule(expr, rule):
    assert rule not in fired(expr)


def test_a_rule_set_without_some_rules():
    t = to_trace("log(1 + exp(x)) + log(1 + y)")
    assert [f.rule for f in stabilize(t, rules=select(exclude=["softplus"]))[1]] == ["logaddexp", "log1p"]
    assert [f.rule for f in stabilize(t, rules=select(exclude=["softplus", "logaddexp"]))[1]] == ["log1p", "log1p"]
    with pytest.raises(ValueError, match="unknown stability rule 'softplu'"):
        select(exclude=["softplu"])


def test_rules_compose_and_the_diff_names_the_lines():
    new, firings = stabilize(to_trace("log(1 - sigmoid(x))"))
    assert [f.rule for f in firings] == ["one_minus_sigmoid", "log_sigmoid"]
    assert ops_of(new) == {"input", "neg", "softplus"}   # log(sigmoid(-x)) = -softplus(x)
    last = firings[-1]
    assert [t for _, t in last.removed] == ["v_1 = sigmoid(v_0)", "v_2 = 1 − v_1", "v_3 = log(v_2)"]
    assert [t for _, t in last.added] == ["v_1 = softplus(v_0)", "v_2 = −v_1"]
    assert firings[0].added == () and "rewritten again" in firings[0].diff()[-1]
    assert str(new).splitlines()[2].startswith("v_2 = −v_1")


def test_the_pass_is_idempotent_deterministic_and_verified():
    for e in CATALOGUE:
        t = to_trace(e.expr, e.shape_map)
        once, _ = stabilize(t)
        verify(once)
        assert stabilize(once)[1] == ()
        assert stabilize(once)[0] is once   # nothing matches: the same trace, not a copy
        assert str(stabilize(to_trace(e.expr, e.shape_map))[0]) == str(once)


def test_a_trace_no_rule_matches_is_returned_as_it_is():
    t = to_trace("sin(x)*y + exp(x)")
    assert stabilize(t) == (t, ())


def test_stable_false_compiles_exactly_the_naive_traces():
    g = compile_grad("log(1 + exp(x)) * tanh(y)", stable=False)
    assert g.rewrites == ()
    assert str(g.trace) == str(passes.grad_reverse(to_trace("log(1 + exp(x)) * tanh(y)")))
    assert compile_grad("log(1 + exp(x))").rewrites == ()   # off by default (see stability.DEFAULT_STABLE)
    h = compile_grad("log(1 + exp(x)) * tanh(y)", stable=True)
    assert {f.rule for f in h.rewrites} == {"softplus", "tanh_derivative"}
    assert {f.stage for f in h.rewrites} == {"primal", "derivative"}
    assert h.source.count("softplus") and not g.source.count("softplus")


def test_shared_subexpressions_keep_their_other_users():
    g = compile_grad("log(1 + exp(x)) + exp(x)", stable=True)
    v, (d,) = g(0.5)
    assert v == pytest.approx(math.log1p(math.exp(0.5)) + math.exp(0.5), rel=1e-15)
    assert d == pytest.approx(1 / (1 + math.exp(-0.5)) + math.exp(0.5), rel=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_logistic_loss_with_large_margins(backend):
    """The demo stays honest: naive NaN, rewritten finite and right."""
    expr = "log(1 + exp(-y*w*x))"
    z = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    _, (naive,) = compile_grad(expr, wrt=["w"], backend=backend, stable=False)(w=1.0, x=z, y=1.0)
    value, (d,) = compile_grad(expr, wrt=["w"], backend=backend, stable=True)(w=1.0, x=z, y=1.0)
    assert np.isnan(naive[0])
    with np.errstate(over="ignore"):
        want = -z / (1 + np.exp(z))   # d/dw log(1 + exp(-w z)) at w = 1; exp(800) = inf gives -0
    np.testing.assert_allclose(d, want, rtol=1e-15)
    np.testing.assert_allclose(value, [800.0, 40.0, math.log(2), 4.248354255291589e-18, 0.0], rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_exp_log_keeps_nan_below_zero(backend):
    g = compile_grad("exp(log(x))", backend=backend, stable=True)
    v, (d,) = g(np.array([-1.0, -0.0, 0.0, 2.5, np.inf, np.nan]))
    assert np.isnan(v[0]) and np.isnan(v[-1])
    assert list(v[1:5]) == [0.0, 0.0, 2.5, np.inf] and not np.signbit(v[1])
    assert list(d[2:5]) == [1.0, 1.0, 1.0]


def test_logsumexp_of_large_terms():
    v, d = compile_grad("log(exp(a) + exp(b))", stable=True)(1000.0, 1000.0)
    assert v == 1000.0 + math.log(2) and d == (0.5, 0.5)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_logsumexp_of_a_vector(backend):
    g = compile_grad("log(sum(exp(x)))", shapes={"x": (3,)}, backend=backend, stable=True)
    v, (d,) = g(np.array([1000.0, 1000.0, 0.0]))
    assert v == pytest.approx(1000.0 + math.log(2), rel=1e-15)
    assert [r.rule for r in g.rewrites] == ["logsumexp"]
    np.testing.assert_allclose(d, [0.5, 0.5, 0.0], atol=1e-300)
    assert np.isnan(compile_grad("log(sum(exp(x)))", shapes={"x": (3,)})(np.array([1000.0, 1000.0, 0.0]))[1][0][0])


def test_hessian_and_jacobian_take_stable():
    h = compile_hessian("tanh(x)", stable=True)
    _, _, hess = h(30.0)
    want = -8 * math.exp(-60) / (1 + math.exp(-60)) ** 3 * (1 - math.exp(-60))   # -2 sech² tanh
    assert hess[0, 0] == pytest.approx(want, rel=1e-13)
    assert compile_hessian("tanh(x)", stable=False)(30.0)[2][0, 0] == 0.0
    j = compile_jacobian("log(1 + exp(x)); sqrt(x**2 + y**2)", stable=True)
    _, jac = j(800.0, 1e200)
    assert np.allclose(jac, [[1.0, 0.0], [4e-198, 1.0]], rtol=1e-13)
    assert {f.rule for f in j.rewrites} == {"softplus", "hypot"}


def test_value_kind_and_pickling_keep_the_rewrites():
    f = compile_expr("log(1 + exp(x))", stable=True)
    assert f(1000.0) == 1000.0 and [r.rule for r in f.rewrites] == ["softplus"]
    g = pickle.loads(pickle.dumps(compile_grad("log(1 + exp(x))", stable=True)))
    assert [r.rule for r in g.rewrites] == ["softplus"] and g(1000.0) == (1000.0, (1.0,))


def test_stable_must_be_a_bool():
    with pytest.raises(TypeError, match="stable must be True or False"):
        compile_grad("x", stable="yes")


def test_explain_lists_each_rewrite_with_its_reason_and_lines(capsys):
    text = str(explain("log(1 + exp(w*x)) + tanh(w)", stability=True))
    assert "stability rewrites: 2, applied by compile_*(..., stable=True)" in text
    assert "softplus: log(1 + exp(u)) is inf for u > 709.78" in text
    assert "    - v_4 = log(v_3)" in text and "    + v_2 = softplus(v_1)" in text
    assert "in the derivatives (the reverse-mode gradient):" in text and "tanh_derivative" in text
    assert "stability rewrites: none" in str(explain("x*y", stability=True))
    assert "stability" not in str(explain("log(1 + exp(x))"))
    assert cli_main(["explain", "--stability", "log(1 - exp(x))"]) == 0
    out = capsys.readouterr().out
    assert "log1mexp:" in out and "+ v_1 = log1mexp(v_0)" in out


@pytest.mark.parametrize("name", ["log(1+exp(x))", "1-sigmoid(x)", "sqrt(x**2+y**2)", "tanh(x) (gradient)",
                                  "log(1-exp(x))", "cos(x)-1", "arcsin(x) (gradient)", "x*log(x)"])
def test_catalogue_entries_against_mpmath(name):
    """The naive form really fails on the entry's range (which documents the reason),
    and the rewritten one is within 1e-13 there, value and gradient (NumPy backend)."""
    e = next(e for e in CATALOGUE if e.name == name)
    pts = A.points(e, 24, seed=3)
    refs = A.references(e, pts)
    naive = A.errors(compile_grad(e.expr, stable=False), pts, refs)
    stable = A.errors(compile_grad(e.expr, stable=True), pts, refs)
    assert max(A.worst(naive[0]), A.worst(naive[1])) > 1e-13
    assert A.worst(stable[0]) <= 1e-13 and A.worst(stable[1]) <= 1e-13


def _softmax_exact(x, w):
    """sum(w·softmax(x)) and its gradient w.r.t. x, by mpmath at 50 digits."""
    import mpmath
    with mpmath.workdps(50):
        e = [mpmath.exp(mpmath.mpf(float(t))) for t in x]
        s = [t / sum(e) for t in e]
        value = sum(mpmath.mpf(float(wk)) * sk for wk, sk in zip(w, s))
        return float(value), np.array([float(sk * (mpmath.mpf(float(wk)) - value)) for sk, wk in zip(s, w)])


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_softmax_of_large_and_tiny_terms_against_mpmath(backend):
    """exp(x)/sum(exp(x)) -> softmax(x) (max taken out): value and gradient within 1e-13
    where the naive form is NaN; written with the weight inside or outside the quotient."""
    w = np.array([0.3, -1.0, 2.0, 0.5])
    for expr in ("sum(w*(exp(x)/sum(exp(x))))", "sum(w*exp(x)/sum(exp(x)))"):
        g = compile_grad(expr, shapes={"x": (4,), "w": (4,)}, wrt=["x"], backend=backend, stable=True)
        assert [f.rule for f in g.rewrites] == ["softmax"]
        for x in ([1000.0, 999.0, -5.0, 990.0], [-1000.0, -1001.0, -1200.0, -999.5], [0.1, -0.2, 0.3, 0.0]):
            x = np.array(x)
            v, (d,) = g(x=x, w=w)
            want_v, want_d = _softmax_exact(x, w)
            assert v == pytest.approx(want_v, rel=1e-13)
            np.testing.assert_allclose(d, want_d, rtol=1e-13, atol=1e-300)
    naive = compile_grad("sum(w*exp(x)/sum(exp(x)))", shapes={"x": (4,), "w": (4,)}, wrt=["x"])
    assert np.isnan(naive(x=np.array([1000.0, 999.0, -5.0, 990.0]), w=w)[0])


def test_softmax_matches_one_axis_kept_only():
    shapes = {"X": (2, 3)}
    assert fired_shaped("exp(X)/sum(exp(X), axis=1, keepdims=True)", shapes) == ["softmax"]
    assert fired_shaped("exp(X)/sum(exp(X), axis=-2, keepdims=True)", shapes) == ["softmax"]
    assert fired_shaped("exp(X)/sum(exp(X), axis=1)", {"X": (3, 3)}) == []       # divides by the wrong sums
    assert fired_shaped("exp(X)/sum(exp(X))", shapes) == []                         # over every element
    assert fired_shaped("exp(X)/sum(exp(Y), axis=1, keepdims=True)", {"X": (2, 3), "Y": (2, 3)}) == []
    g = compile_grad("sum(exp(X)/sum(exp(X), axis=0, keepdims=True) * W)", shapes={"X": (2, 3), "W": (2, 3)},
                     wrt=["X"], stable=True)
    X, W = np.array([[800.0, 1.0, -900.0], [799.0, 2.0, -901.0]]), np.arange(6.0).reshape(2, 3)
    v, (d,) = g(X=X, W=W)
    for k in range(3):   # each column its own softmax
        want_v, want_d = _softmax_exact(X[:, k], W[:, k])
        np.testing.assert_allclose(d[:, k], want_d, rtol=1e-13)


def fired_shaped(expr, shapes):
    return [f.rule for f in stabilize(to_trace(expr, shapes), "primal")[1]]


@pytest.mark.parametrize("mode", ["forward", "reverse", "sparse"])
def test_tensor_and_sparse_jacobians_rewrite_their_derivative_traces(mode):
    """tanh's derivative 1 - tanh² is 0 from |x| = 19 unless the derivative trace is
    rewritten (sech2), as compile_grad does: on the tensor JVP/VJP sweeps and the sparse one."""
    x = np.array([0.5, 30.0, -25.0])
    kw = {"sparse": True} if mode == "sparse" else {"mode": mode}
    J = compile_jacobian("tanh(x)", shapes={"x": (3,)}, stable=True, **kw)
    _, jac = J(x=x)
    jac = jac.toarray() if mode == "sparse" else jac
    np.testing.assert_allclose(np.diag(jac), 1 / np.cosh(x) ** 2, rtol=1e-14)
    assert [(f.rule, f.stage) for f in J.rewrites] == [("tanh_derivative", "derivative")]
    naive = compile_jacobian("tanh(x)", shapes={"x": (3,)}, **kw)(x=x)[1]
    assert (naive.toarray() if mode == "sparse" else naive)[1, 1] == 0.0


def test_forward_gradient_of_tensors_rewrites_its_sweeps():
    g = compile_grad("sum(tanh(x))", shapes={"x": (2,)}, mode="forward", stable=True)
    _, (d,) = g(np.array([30.0, 0.5]))
    np.testing.assert_allclose(d, 1 / np.cosh([30.0, 0.5]) ** 2, rtol=1e-14)
    assert [f.rule for f in g.rewrites] == ["tanh_derivative"]


def test_explain_counts_the_rewritten_traces():
    """With stability=True the operation counts are those of the traces stable=True runs."""
    def counts(text):
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"^  (\S.*?)\s{2,}(\d+)", text, re.M)}
    expr = "log(1 + exp(x)) + tanh(x)"
    plain, stable = counts(str(explain(expr))), counts(str(explain(expr, stability=True)))
    want_value = operations(stabilize(to_trace(expr), "primal")[0])
    assert stable["value"] == want_value < plain["value"]
    g = compile_grad(expr, stable=True)
    assert stable["value + gradient, reverse mode"] == operations(g.trace)
    assert "after the stability rewrites" in str(explain(expr, stability=True))


def test_cli_grad_and_export_take_stable(capsys, tmp_path):
    assert cli_main(["grad", "--stable", "log(1 + exp(x))"]) == 0
    assert "softplus_pair(x)" in capsys.readouterr().out   # one exp(x) for the value and the gradient
    assert cli_main(["grad", "log(1 + exp(x))"]) == 0
    assert "softplus" not in capsys.readouterr().out
    assert cli_main(["grad", "--target", "c", "--stable", "log(1 + exp(x))"]) == 0
    assert "xc_softplus(x)" in capsys.readouterr().out
    stem = str(tmp_path / "k")
    assert cli_main(["export", "--stable", "-o", stem, "1/(1 + exp(-x))"]) == 0
    assert "xc_sigmoid(" in (tmp_path / "k.c").read_text()
    assert cli_main(["export", "--no-stable", "-o", stem, "1/(1 + exp(-x))"]) == 0
    assert "xc_sigmoid(" not in (tmp_path / "k.c").read_text()


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_one_exp_primitives_at_their_edges(backend):
    """The branch-free sigmoid, softplus, logaddexp, xlogy and log1mexp (one exp each,
    vectorizable in C): IEEE edges and extremes against mpmath / the limits."""
    import mpmath
    f = compile_expr("sigmoid(x); softplus(x); logaddexp(x, y); xlogy(y, x); log1mexp(-abs(x))", backend=backend)
    xs = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -800.0, 800.0, 1e-300, -40.0, 3.5, -2.0])
    ys = np.array([1.0, np.inf, -np.inf, -0.0, 0.0, -800.0, 800.0, 0.0, 2.0, 3.5, np.nan])
    sig, sp, lae, xly, l1m = (np.asarray(r) for r in f(xs, ys))
    with mpmath.workdps(40):
        for k, (x, y) in enumerate(zip(xs, ys)):
            if np.isnan(x):
                assert all(np.isnan(r[k]) for r in (sig, sp, lae, l1m)), k
                continue
            X = mpmath.mpf(float(x))
            want_sig = 1 / (1 + mpmath.exp(-X)) if np.isfinite(x) else float(x > 0)
            want_sp = mpmath.log1p(mpmath.exp(X)) if np.isfinite(x) else max(float(x), 0.0)
            assert sig[k] == pytest.approx(float(want_sig), rel=4e-16, abs=0), (k, sig[k])
            assert sp[k] == pytest.approx(float(want_sp), rel=4e-16, abs=0), (k, sp[k])
    with np.errstate(invalid="ignore"):   # NumPy's own values, ties and infinities too
        np.testing.assert_array_equal(lae[1:], np.logaddexp(xs, ys)[1:])
    assert np.isnan(lae[0]) and np.isnan(lae[-1])
    assert xly[7] == 0.0 and xly[3] == 0.0 and np.isnan(xly[0])       # 0·log(x) is 0, NaN stays NaN
    assert l1m[3] == -np.inf and l1m[6] == pytest.approx(-math.exp(-800.0), rel=1e-15)


def test_stable_primitives_keep_the_c_loop_vectorized(tmp_path):
    """gcc 12 vectorizes no loop that has both a libm call and a branch: the stable forms
    and the selections (where, the comparisons) select by bit masks, so a kernel using
    them all still runs on libmvec's vector variants (gcc's own report, -fopt-info)."""
    import re as _re
    import shutil
    import subprocess
    from exprcompiler import api
    from exprcompiler.backends import c_build
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc")
    expr = "softplus(x) + sigmoid(y) + logaddexp(x, y) + xlogy(x, y) + log1mexp(-abs(x)) + sqrt(x**2 + y**2)"
    _, _, trace, _ = api.kind_trace("grad", expr, stable=True)
    source = api.BACKENDS["c"].generate(trace, func_name="f_grad", description="test").source
    (tmp_path / "k.c").write_text(source)
    flags = [f for f in c_build.BUILDS[1][0] if f != "-shared"]   # the vector-math build, without OpenMP
    r = subprocess.run([gcc, *flags, "-fopt-info-vec-optimized", "-c", "-o", str(tmp_path / "k.o"),
                        str(tmp_path / "k.c")], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"this gcc does not take the vector-math flags: {r.stderr.splitlines()[:1]}")
    vectorized = {int(n) for n in _re.findall(r"k\.c:(\d+):\d+: optimized: loop vectorized", r.stderr)}
    call = next(k for k, line in enumerate(source.splitlines(), 1) if "f_grad_point(in0[i]," in line)
    assert {call - 1, call} & vectorized, (call, sorted(vectorized))


def test_numpy_stable_helpers_at_edges_and_ties():
    """The runtime helpers the NumPy code of a stable gradient calls (softplus with
    _log1p_unit, the one-exp sigmoid, logaddexp): softplus' derivative is the sigmoid
    bit for bit, logaddexp within an ulp of np.logaddexp with its values at ties and
    infinities; runtime.hypot (batch code's hypot) within an ulp of np.hypot."""
    from exprcompiler import runtime
    x = np.array([-800.0, -30.0, -1.0, -0.0, 0.0, 1e-300, 2.5, 40.0, 800.0, np.inf, -np.inf, np.nan])
    g = compile_grad("log(1 + exp(x))", stable=True)
    assert "softplus_pair(x)" in g.source   # one exp
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(runtime.softplus(x)[:9], np.logaddexp(0.0, x[:9]), rtol=2.3e-16)
    with np.errstate(all="ignore"):
        v, (d,) = g(np.tile(x, 3000))   # a batch of blocks
    np.testing.assert_array_equal(v[:12], runtime.softplus(x))
    np.testing.assert_array_equal(d[:12], runtime.sigmoid(x))
    assert g(800.0) == (800.0, (1.0,))   # the one-point code calls the helpers
    a = np.array([1.0, np.inf, -np.inf, 5.0, np.nan, 1000.0, -1000.0, 0.3])
    b = np.array([1.0, np.inf, -np.inf, -3.0, 0.0, -1000.0, -999.0, -0.4])
    h = compile_grad("log(exp(a) + exp(b))", stable=True)
    with np.errstate(all="ignore"):
        v, (da, db) = h(a, b)
        np.testing.assert_allclose(v, np.logaddexp(a, b), rtol=2.3e-16)
    assert v[0] == pytest.approx(1.0 + math.log(2), rel=2.3e-16) and list(v[1:3]) == [np.inf, -np.inf] and list(da[:3]) == [0.5] * 3
    np.testing.assert_allclose(da[3:], runtime.sigmoid(a[3:] - b[3:]), rtol=2.3e-16)
    with np.errstate(all="ignore"):   # the value alone: runtime.logaddexp
        np.testing.assert_allclose(compile_expr("log(exp(a) + exp(b))", stable=True)(a, b), v, rtol=2.3e-16)
    p = np.array([3e-300, 1e-160, 1e200, -1e154, 3.0, 0.0, np.inf, np.nan, 2.0])
    q = np.array([4e-300, 1e-161, 1e200, 1e154, -4.0, 0.0, np.nan, 1.0, np.inf])
    np.testing.assert_allclose(runtime.hypot(p, q), np.hypot(p, q), rtol=3.4e-16)
