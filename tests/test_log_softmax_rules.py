"""The stability rules for the other spellings of log-softmax (issue 18): logsumexp(x) - x
and logsumexp(z) - z[k] (cross-entropy written out; rule neg_log_softmax_lse), z[k] -
logsumexp(z) (log_softmax_lse), log(c·softmax(x)) and log(softmax(x)/c) (log_softmax_scaled,
c a positive constant), exp(z[k])/sum(exp(z)) (softmax, then log_softmax under a log), and
x - logsumexp(x) over all of a matrix or over adjacent axes kept (log_softmax_flat: of x
reshaped so they are one axis). Where each fires and where it must not; values and
gradients against mpmath at 50 digits where the naive forms fail, on NumPy and C; random
points over wide ranges where no rewrite may make a value or a gradient worse; the Hessian;
the reasons in g.rewrites and explain. (The spellings that were rewritten before:
tests/test_log_softmax.py; the catalogue entries: tests/test_stability_catalogue.py.)"""

from __future__ import annotations

import functools
import math
import re

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exprcompiler import compile_expr, compile_grad, compile_hessian
from exprcompiler.backends import c_build
from exprcompiler.frontend import to_trace
from exprcompiler.jacobians import explain
from exprcompiler.stability import RULES, stabilize
from exprcompiler.stability import accuracy as A
from exprcompiler.stability.catalogue import CATALOGUE
from test_log_softmax import error

GOAL = 1e-13
HAVE_CC = c_build.shutil.which("cc") is not None or c_build.shutil.which("gcc") is not None
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(not HAVE_CC, reason="no C compiler"))]
# the tables of spellings compile a kernel per spelling, size and element on C (8-10 s each)
C_SLOW = ["numpy", pytest.param("c", marks=[pytest.mark.skipif(not HAVE_CC, reason="no C compiler"),
                                            pytest.mark.slow])]
REASON = {r.name: r.reason for r in RULES}
NEW = ("neg_log_softmax_lse", "log_softmax_scaled", "log_softmax_flat")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path_factory.getbasetemp() / "c-cache"))


def fired(expr, shapes):
    shapes = {k: v for k, v in shapes.items() if re.search(rf"\b{k}\b", expr)}
    return [f.rule for f in stabilize(to_trace(expr, shapes), "primal")[1]]


@functools.lru_cache(maxsize=None)
def grad(expr: str, shape: tuple, backend: str = "numpy", stable: bool = True, name: str = "z"):
    return compile_grad(expr, shapes={name: shape}, backend=backend, stable=stable)


def exact(z, k):
    """log_softmax(z)[k] over all elements of z (flattened) and its gradient (flat), by
    mpmath at 50 digits: the maximum's term taken out (log1p of the others' sum), the
    maximum's own derivative as the others' share T/(1 + T), not 1 - 1/(1 + T)."""
    with mpmath.workdps(50):
        z = [mpmath.mpf(float(t)) for t in np.ravel(z)]
        i = max(range(len(z)), key=lambda j: z[j])
        others = mpmath.fsum(mpmath.exp(t - z[i]) for j, t in enumerate(z) if j != i)
        value = z[k] - z[i] - mpmath.log1p(others)
        g = [(j == k) - mpmath.exp(t - z[i]) / (1 + others) for j, t in enumerate(z)]
        if i == k:
            g[k] = others / (1 + others)
        return value, g


def want_of(label: str, z, k):
    """(value, gradient) of a spelling by its label: log_softmax(z)[k] as it is ("pos"),
    negated ("neg"), plus log(c) ("c=2") or minus it ("/c=3")."""
    value, g = exact(z, k)
    with mpmath.workdps(50):
        if label == "neg":
            return -value, [-t for t in g]
        if label.lstrip("/").startswith("c="):
            log_c = mpmath.log(mpmath.mpf(label.lstrip("/")[2:]))
            return value + (-log_c if label.startswith("/") else log_c), g
        return value, g


def errors(g, z, want) -> tuple[float, float]:
    with np.errstate(all="ignore"):
        v, (d,) = g(np.asarray(z, dtype=float))
    return error(v, want[0]), max(error(a, b) for a, b in zip(np.ravel(d), want[1]))


# -- where the rules fire ---------------------------------------------------------------------
V3, M23, T234 = {"z": (3,), "y": (3,)}, {"Z": (2, 3), "W": (2, 3)}, {"Z": (2, 3, 4)}


@pytest.mark.parametrize("expr, shapes, rules", [
    ("logsumexp(z) - z", V3, ["neg_log_softmax_lse"]),
    ("(logsumexp(z) - z)[0]", V3, ["neg_log_softmax_lse"]),
    ("logsumexp(z) - z[1]", V3, ["neg_log_softmax_lse"]),             # cross-entropy with a label
    ("logsumexp(z) - z[1:]", V3, ["neg_log_softmax_lse"]),
    ("log(sum(exp(z))) - z[2]", V3, ["logsumexp", "neg_log_softmax_lse"]),
    ("sum(y*(logsumexp(z) - z))", V3, ["neg_log_softmax_lse"]),
    ("logsumexp(Z, axis=1, keepdims=True) - Z", M23, ["neg_log_softmax_lse"]),
    ("logsumexp(Z, axis=0, keepdims=True) - Z", M23, ["neg_log_softmax_lse"]),
    ("z[1] - logsumexp(z)", V3, ["log_softmax_lse"]),                  # the positive form, picked
    ("log(exp(z[0])) - log(sum(exp(z)))", V3, ["log_exp", "logsumexp", "log_softmax_lse"]),
    ("log(2*softmax(z))", V3, ["log_softmax_scaled"]),
    ("log(softmax(z)*2)", V3, ["log_softmax_scaled"]),
    ("log(softmax(z)/3)", V3, ["log_softmax_scaled"]),
    ("log(2*softmax(z)[0])", V3, ["log_softmax_scaled"]),              # picked, then scaled
    ("log((2*softmax(z))[0])", V3, ["log_softmax_scaled"]),            # scaled, then picked
    ("log(0.5*softmax(Z, axis=0))", M23, ["log_softmax_scaled"]),
    ("log(2*exp(z)/sum(exp(z)))", V3, ["softmax", "log_softmax_scaled"]),
    ("log(5e-324*softmax(z))", V3, ["log_softmax_scaled"]),            # (naive: 0 for most s)
    ("log(exp(z[0])/sum(exp(z)))", V3, ["softmax", "log_softmax"]),
    ("log(exp(z)[0]/sum(exp(z)))", V3, ["softmax", "log_softmax"]),
    ("log(exp(z[1:])/sum(exp(z)))", V3, ["softmax", "log_softmax"]),
    ("-log(y[0]*exp(z[0])/sum(exp(z)))", V3, ["softmax"]),              # (the log of a product: no rule)
    ("Z - logsumexp(Z)", M23, ["log_softmax_flat"]),
    ("logsumexp(Z) - Z", M23, ["log_softmax_flat"]),
    ("Z[1, 2] - logsumexp(Z)", M23, ["log_softmax_flat"]),
    ("logsumexp(Z) - Z[1]", M23, ["log_softmax_flat"]),
    ("Z - logsumexp(Z, keepdims=True)", M23, ["log_softmax_flat"]),
    ("Z - logsumexp(Z, axis=(1, 0), keepdims=True)", M23, ["log_softmax_flat"]),
    ("log(sum(exp(Z))) - Z[0, 0]", M23, ["logsumexp", "log_softmax_flat"]),
    ("Z - logsumexp(Z, axis=(1, 2), keepdims=True)", T234, ["log_softmax_flat"]),
    ("Z - logsumexp(Z, axis=(0, 1), keepdims=True)", T234, ["log_softmax_flat"]),
])
def test_fires(expr, shapes, rules):
    assert fired(expr, shapes) == rules


@pytest.mark.parametrize("expr, shapes", [
    ("logsumexp(z) - y", V3),                            # another vector
    ("logsumexp(y) - z[0]", V3),
    ("logsumexp(z[1:]) - z[0]", V3),                     # the sum of other elements
    ("logsumexp(Z, axis=1) - Z", {"Z": (3, 3)}),         # row i's logsumexp from column i
    ("logsumexp(Z, axis=1, keepdims=True) - Z[0]", M23),  # a pick of one line against every line's sum
    ("logsumexp(z, keepdims=True) - z[0]", V3),          # shape (1,), not (): left as written
    ("log(-2*softmax(z))", V3),                          # NaN either way: c must be > 0
    ("log(0*softmax(z))", V3),
    ("log(1e309*softmax(z))", V3),                       # inf·0 is NaN, inf + log 0 is not
    ("log(y*softmax(z))", V3),                           # not a constant
    ("log(2/softmax(z))", V3),                           # c over the softmax: not matched
    ("log(softmax(z)*softmax(z))", V3),
    ("log(exp(z[0])/sum(exp(y)))", V3),
    ("log(exp(z[0])/sum(exp(z[1:])))", V3),
    ("log(exp(Z[0])/sum(exp(Z)))", M23),                 # over every element: no softmax op
    ("exp(Z[0])/sum(exp(Z), axis=1, keepdims=True)", M23),
    ("log(exp(z[0])/sum(exp(z), keepdims=True))", V3),   # shape (1,), not (): left as written
    ("Z - logsumexp(Z, axis=(0, 2), keepdims=True)", T234),   # axes apart: would need a transpose
    ("Z - logsumexp(Z, axis=(0, 1))", {"Z": (2, 3, 3)}),      # not kept: subtracts from other slices
    ("Z[0] - logsumexp(Z, axis=(1, 2), keepdims=True)", T234),
    ("Z - logsumexp(Z)", {"Z": ("n", 3)}),               # a named dimension: no reshape without its size
    ("Y - logsumexp(Z)", {"Y": (2, 3), "Z": (2, 3)}),
])
def test_does_not_fire_where_it_cannot_prove_equivalence(expr, shapes):
    assert fired(expr, shapes) == []


def test_a_pick_against_a_logsumexp_kept_as_an_array_is_not_matched_at_all():
    """logsumexp(z, keepdims=True) has shape (1,): minus z[0] it is (1,), which
    -log_softmax(z)[0] is not; the pattern refuses it, so the trace comes back as it is
    (no rebuild for a replacement the rewriter would drop for its shape)."""
    for expr, shapes in (("logsumexp(z, keepdims=True) - z[0]", {"z": (3,)}),
                         ("Z[0, 1] - logsumexp(Z, keepdims=True)", {"Z": (2, 3)})):
        t = to_trace(expr, shapes)
        assert stabilize(t) == (t, ())


def test_the_pass_is_idempotent_and_keeps_shapes():
    for expr, shapes in [("logsumexp(z) - z[1]", V3), ("log(softmax(z)/3)[2]", V3), ("Z - logsumexp(Z)", M23),
                         ("logsumexp(Z, axis=(1, 2), keepdims=True) - Z", T234),
                         ("log(exp(z[0])/sum(exp(z)))", V3)]:
        t = to_trace(expr, {k: v for k, v in shapes.items() if k in expr})
        once, firings = stabilize(t)
        assert firings and stabilize(once) == (once, ())
        assert [ins.shape for _, ins in [(n, once.instrs[v]) for n, v in once.outputs]] == \
               [t.instrs[v].shape for _, v in t.outputs]


# -- values and gradients at the edges, against mpmath --------------------------------------------
EDGES = [
    ([0.0, -800.0, 1.0], 0),        # lane 1 underflows
    ([0.0, -800.0, 1.0], 1),        # the underflowed lane itself
    ([-800.0, 0.0], 0),
    ([1000.0, -1000.0, 0.0], 0),    # the maximum dominates: its value e^-1000 (0), gradient e^-1000
    ([700.0, 0.0, -700.0], 0),      # value e^-700, normal: naive logsumexp(z) - z gives 0
    ([30.0, 0.0, -1.0], 0),         # 1 - softmax_0 = 1.3e-13
    ([1e4, 1e4 - 30.0, 9990.0], 0),
    ([1e300, -1e300, 0.0], 1),
    ([0.0, 0.0, 0.0], 0),           # ties
    ([5.0, 5.0, -3.0, -900.0], 2),
    ([-1000.0, -1001.0, -1200.0, -999.5], 3),
    ([2.0, 1.0, 0.5, -0.25, 3.0], 4),
]
# (label for want_of, spelling with {k}); c=... is the constant of a scaled spelling
VECTOR_SPELLINGS = [
    ("neg", "logsumexp(z) - z[{k}]"),
    ("neg", "(logsumexp(z) - z)[{k}]"),
    ("neg", "log(sum(exp(z))) - z[{k}]"),
    ("pos", "z[{k}] - logsumexp(z)"),
    ("c=2", "log(2*softmax(z))[{k}]"),
    ("c=0.5", "log(softmax(z)[{k}]*0.5)"),
    ("/c=3", "log(softmax(z)/3)[{k}]"),
    ("c=1e-10", "log(1e-10*softmax(z)[{k}])"),
    ("c=1e+300", "log((1e+300*softmax(z))[{k}])"),
    ("pos", "log(exp(z[{k}])/sum(exp(z)))"),
    ("pos", "log(exp(z)[{k}]/sum(exp(z)))"),
]


@pytest.mark.parametrize("backend", C_SLOW)
@pytest.mark.parametrize("label, spelling", VECTOR_SPELLINGS, ids=[s for _, s in VECTOR_SPELLINGS])
def test_vector_spellings_against_mpmath(label, spelling, backend):
    """Within 1e-13 at every edge, value and each gradient element; the naive form fails
    at one of them at least (what the rule is for)."""
    naive_worst = 0.0
    for z, k in EDGES:
        expr = spelling.format(k=k)
        want = want_of(label, z, k)
        assert max(errors(grad(expr, (len(z),), backend), z, want)) <= GOAL, (expr, z)
        naive_worst = max(naive_worst, *errors(grad(expr, (len(z),), backend, False), z, want))
    assert naive_worst > 1e-6, spelling


MATRIX_EDGES = [
    ([[0.0, -800.0, 1.0], [2.0, -3.0, 0.5]], 1),
    ([[0.0, -800.0, 1.0], [2.0, -3.0, 0.5]], 3),
    ([[1000.0, -1000.0, 0.0], [-5.0, 3.0, 960.0]], 0),
    ([[700.0, 0.0, -700.0], [-700.0, 0.0, 1.0]], 0),
    ([[30.0, 0.0, -1.0], [-2.0, -3.0, -4.0]], 0),
    ([[1e300, -1e300, 0.0], [1.0, 2.0, 3.0]], 1),
    ([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], 5),
    ([[-1000.0, -1001.0, -1200.0], [-999.5, -1e4, -2000.0]], 3),
]
MATRIX_SPELLINGS = [
    ("pos", "(Z - logsumexp(Z))[{i}, {j}]"),
    ("pos", "Z[{i}, {j}] - logsumexp(Z)"),
    ("pos", "(Z - logsumexp(Z, axis=(0, 1), keepdims=True))[{i}, {j}]"),
    ("neg", "(logsumexp(Z) - Z)[{i}, {j}]"),
    ("neg", "log(sum(exp(Z))) - Z[{i}, {j}]"),
]


@pytest.mark.parametrize("backend", C_SLOW)
@pytest.mark.parametrize("label, spelling", MATRIX_SPELLINGS, ids=[s for _, s in MATRIX_SPELLINGS])
def test_over_all_elements_of_a_matrix_against_mpmath(label, spelling, backend):
    naive_worst = 0.0
    for z, k in MATRIX_EDGES:
        expr = spelling.format(i=k // 3, j=k % 3)
        want = want_of(label, z, k)
        g = grad(expr, (2, 3), backend, name="Z")
        assert [f.rule for f in g.rewrites if f.rule in NEW] == ["log_softmax_flat"]
        assert max(errors(g, z, want)) <= GOAL, (expr, z)
        naive_worst = max(naive_worst, *errors(grad(expr, (2, 3), backend, False, "Z"), z, want))
    assert naive_worst > 1e-6, spelling


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axes, lines", [((1, 2), lambda Z: Z.reshape(2, 12)),
                                         ((0, 1), lambda Z: Z.reshape(6, 4).T)])
def test_over_adjacent_axes_kept_against_mpmath(axes, lines, backend):
    """sum(W·(Z - logsumexp(Z, axis=axes, keepdims=True))) over a (2, 3, 4) tensor: each
    block of those axes its own log-softmax (the trailing two, or the leading two)."""
    rng = np.random.default_rng(5)
    Z = rng.uniform(-5, 5, (2, 3, 4))
    Z[0, 1, 2], Z[1, 0, 0], Z[1, 2, 3], Z[0, 0, 3] = 900.0, -800.0, 40.0, 1e4
    W = rng.uniform(-1, 1, (2, 3, 4))
    expr = f"sum(W*(Z - logsumexp(Z, axis={axes}, keepdims=True)))"
    g = compile_grad(expr, shapes={"Z": (2, 3, 4), "W": (2, 3, 4)}, wrt=["Z"], backend=backend, stable=True)
    assert [f.rule for f in g.rewrites] == ["log_softmax_flat"]
    v, (d,) = g(Z=Z, W=W)
    want_v, got_d = mpmath.mpf(0), lines(d)
    for z, w, got in zip(lines(Z), lines(W), got_d):
        with mpmath.workdps(50):
            row = [mpmath.mpf(0)] * len(z)
            for k, wk in enumerate(w):
                val, gk = exact(z, k)
                want_v += wk * val
                row = [a + wk * t for a, t in zip(row, gk)]
        scale = max(abs(t) for t in row)   # (weighted sums of gradients cancel: against the largest)
        assert max(abs(a - b) for a, b in zip(got, row)) <= GOAL * scale
    assert error(v, want_v) <= GOAL


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_with_labels_as_written_out(backend):
    """-log(softmax(z))[k] written as logsumexp(z) - z[k], summed over a batch of rows
    with a label each (rows of a matrix, logsumexp along each row kept)."""
    Z = np.array([[0.0, -800.0, 40.0], [1e4, 1e4 - 40.0, -1e4], [3.0, 3.0, -745.5]])
    Y = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    expr = "sum(Y*(logsumexp(Z, axis=1, keepdims=True) - Z))"
    shapes = {"Z": (3, 3), "Y": (3, 3)}
    g = compile_grad(expr, shapes=shapes, wrt=["Z"], backend=backend, stable=True)
    naive = compile_grad(expr, shapes=shapes, wrt=["Z"], backend=backend)
    assert [f.rule for f in g.rewrites] == ["neg_log_softmax_lse"]
    (v, (d,)), (_, (nd,)) = g(Z=Z, Y=Y), naive(Z=Z, Y=Y)
    want_v, naive_worst = mpmath.mpf(0), 0.0
    for z, y, got, got_naive in zip(Z, Y, d, nd):
        k = int(np.argmax(y))
        val, gk = exact(z, k)
        want_v -= val
        assert max(error(a, -b) for a, b in zip(got, gk)) <= GOAL
        naive_worst = max(naive_worst, *(error(a, -b) for a, b in zip(got_naive, gk)))
    assert error(v, want_v) <= GOAL
    assert naive_worst > 1e-6   # the second row's e^-40: 1 - softmax rounded to 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_zeros_keep_their_sign_and_infinities_their_limits(backend):
    """logsumexp(z) - z of one element is +0, as the naive form (0 - log_softmax, not its
    negation, which would be -0); the log of a scaled softmax at a -inf lane is -inf."""
    for expr, shape, name in (("(logsumexp(z) - z)[0]", (1,), "z"), ("(logsumexp(Z) - Z)[0, 0]", (1, 1), "Z")):
        v, _ = grad(expr, shape, backend, name=name)(np.full(shape, 7.0))
        naive, _ = grad(expr, shape, backend, False, name)(np.full(shape, 7.0))
        assert v == 0.0 and not np.signbit(v) and not np.signbit(naive)
    with np.errstate(all="ignore"):
        v, (d,) = grad("log(2*softmax(z))[1]", (3,), backend)(np.array([0.0, -np.inf, 1.0]))
    assert v == -np.inf and d[1] == 1.0 and np.isfinite(d).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("expr, shapes", [("logsumexp(Z)", {"Z": (2, 3)}),
                                          ("sum(W*logsumexp(Z, axis=(1, 2), keepdims=True))",
                                           {"Z": (2, 3, 4), "W": (2, 1, 1)})])
def test_logsumexp_gradient_over_several_axes_is_rewritten_in_the_derivative_trace(expr, shapes, backend):
    """logsumexp's derivative over several axes is exp(x - logsumexp(x)) (tensor_rules:
    softmax takes one axis), which carries logsumexp's rounding, half an ulp of max(x),
    into every element: 5e-11 at |x| ~ 1e6. Under stable=True the rule log_softmax_flat
    rewrites that difference in the derivative trace: exp(log_softmax) of the elements."""
    g = compile_grad(expr, shapes=shapes, wrt=["Z"], backend=backend, stable=True)
    assert ("log_softmax_flat", "derivative") in [(f.rule, f.stage) for f in g.rewrites]
    size = 6 if "W" not in shapes else 12   # the elements of one logsumexp
    rng = np.random.default_rng(1)
    for scale in (600.0, 1e4, 1e6):
        Z = scale + rng.uniform(-3, 3, shapes["Z"])
        d = g(Z=Z, **({"W": np.ones((2, 1, 1))} if "W" in shapes else {}))[1][0]
        for block, got in zip(Z.reshape(-1, size), d.reshape(-1, size)):
            with mpmath.workdps(50):
                e = [mpmath.exp(mpmath.mpf(float(t)) - mpmath.mpf(float(block.max()))) for t in block]
                want = [t / mpmath.fsum(e) for t in e]
            assert max(error(a, b) for a, b in zip(got, want)) <= GOAL, scale


# -- second derivatives -------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("expr, shape, name", [("logsumexp(z) - z[0]", (3,), "z"),
                                               ("(logsumexp(Z) - Z)[0, 0]", (1, 3), "Z"),
                                               ("-log(exp(z[0])/sum(exp(z)))", (3,), "z")])
def test_hessian_is_diag_s_minus_s_st(expr, shape, name, backend):
    """All three are logsumexp(z) - z_0 (over the elements): Hessian diag(s) - s·sᵀ, also
    at an underflowed lane (where the naive form of the last is NaN) and at ties."""
    h = compile_hessian(expr, shapes={name: shape}, backend=backend, stable=True)
    for z in ([0.0, -800.0, 1.0], [2.0, 2.0, 2.0], [30.0, 0.0, -800.0]):
        with mpmath.workdps(50):
            e = [mpmath.exp(mpmath.mpf(t)) for t in z]
            s = [t / sum(e) for t in e]
            want = np.array([[float((i == j) * s[i] - s[i] * s[j]) for j in range(3)] for i in range(3)])
        got = np.asarray(h(np.array(z).reshape(shape))[2]).reshape(3, 3)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


# -- random points: never worse -----------------------------------------------------------------
ELEMENT = st.one_of(st.floats(-5, 5), st.floats(-1e3, 1e3), st.floats(-1e300, 1e300),
                    st.sampled_from([0.0, -745.0, 709.0, 1.0, 40.0]))
RANDOM_SPELLINGS = VECTOR_SPELLINGS + [("pos", "(Z - logsumexp(Z))[{k}]"), ("neg", "(logsumexp(Z) - Z)[{k}]")]


def not_worse(label, spelling, z, k, backend):
    """The rewritten error at most the naive one, or within 1e-13; for the value, or within
    what a backward-stable evaluation may lose, 32·κ·ε (κ = (Σ|z_j ∂f/∂z_j| + |c ∂f/∂c|) / |f|,
    the constant's term 1 in log(c·softmax(z)): large near a zero of the value, as where
    c·softmax(z) is near 1; without the constant's term κ was ~1 at z = (2^-23, 0), c = 2,
    where both forms are 4.1e-10 off and the naive one 5 ulps of the value nearer)."""
    flat = "Z" in spelling   # (a matrix of rows of 2)
    expr = spelling.format(k=f"{k // 2}, {k % 2}" if flat else k)
    shape = (len(z) // 2, 2) if flat else (len(z),)
    want = want_of(label, z, k)
    points = np.asarray(z, dtype=float).reshape(shape)
    stable = errors(grad(expr, shape, backend, True, "Z" if flat else "z"), points, want)
    naive = errors(grad(expr, shape, backend, False, "Z" if flat else "z"), points, want)
    with mpmath.workdps(50):
        value = want[0]
        by_c = 1 if "c=" in label else 0
        kappa = math.inf if value == 0 else float((mpmath.fsum(abs(mpmath.mpf(t) * g) for t, g in zip(z, want[1]))
                                                   + by_c) / abs(value))
    floors = (32 * 1.1e-16 * kappa, 0.0)
    for what, s, n, floor in zip(("value", "gradient"), stable, naive, floors):
        assert s <= max(GOAL, n, floor), (what, expr, z, s, n)


def _case(even: bool):
    size = st.integers(1, 3).map(lambda n: 2 * n) if even else st.integers(2, 6)
    return size.flatmap(lambda n: st.tuples(st.lists(ELEMENT, min_size=n, max_size=n), st.integers(0, n - 1)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(RANDOM_SPELLINGS).flatmap(
    lambda sp: st.tuples(st.just(sp), _case("Z" in sp[1]))))
@example((("c=2", "log(2*softmax(z))[{k}]"), ([2.0 ** -23, 0.0], 0)))   # (c·s near 1: see not_worse)
def test_no_rewrite_makes_a_point_worse_numpy(case):
    (label, spelling), (z, k) = case
    not_worse(label, spelling, z, k, "numpy")


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
def test_no_rewrite_makes_a_point_worse_c():
    """The same search on C, as fixed random draws (each spelling compiled once a size)."""
    rng = np.random.default_rng(18)
    scales = (5.0, 1e3, 1e300)
    for label, spelling in RANDOM_SPELLINGS:
        n = 4 if "Z" in spelling else 3
        for _ in range(12):
            z = rng.uniform(-1, 1, n) * rng.choice(scales, n)
            not_worse(label, spelling, list(z), int(rng.integers(n)), "c")


# -- the reasons ----------------------------------------------------------------------------------
@pytest.mark.parametrize("rule, expr, shapes, added", [
    ("neg_log_softmax_lse", "logsumexp(z) - z[0]", {"z": (3,)}, "log_softmax_at(v_0, v_1, key=(0,))"),
    ("log_softmax_scaled", "log(2*softmax(z))[0]", {"z": (3,)}, "log_softmax(v_0, axis=0)"),
    ("log_softmax_flat", "(Z - logsumexp(Z))[0, 1]", {"Z": (2, 3)}, "reshape("),
])
def test_reasons_in_rewrites_and_explain(rule, expr, shapes, added):
    g = compile_grad(expr, shapes=shapes, stable=True)
    assert (rule, "primal", REASON[rule]) in [(f.rule, f.stage, f.reason) for f in g.rewrites]
    text = str(explain(expr, stability=True, shapes=shapes))
    assert f"{rule}: {REASON[rule]}" in text
    lines = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("+ ") and added in line for line in lines), text
    assert any(line.startswith("- ") and ("logsumexp(" in line or "log(" in line) for line in lines), text


def test_each_new_rule_has_a_catalogue_entry_where_the_naive_form_fails():
    """(NumPy, 24 points; both backends on 60: tests/test_stability_catalogue.py, slow.)"""
    entries = [e for e in CATALOGUE if set(e.rules) & set(NEW) or e.name == "log(exp(a[0])/sum(exp(a)))"]
    assert {r for e in entries for r in e.rules} >= set(NEW)
    for e in entries:
        pts = A.points(e, 24, seed=3)
        refs = A.references(e, pts)
        naive = A.errors(A.compile_entry(e, stable=False), pts, refs)
        stable = A.errors(A.compile_entry(e, stable=True), pts, refs)
        assert max(A.worst(naive[0]), A.worst(naive[1])) > GOAL, e.name
        assert A.worst(stable[0]) <= GOAL and A.worst(stable[1]) <= GOAL, e.name


def test_agrees_with_the_naive_form_where_that_is_accurate():
    """Moderate inputs: the rewritten forms are the same functions (every element, the
    right axes): within 1e-13 of the naive forms, on NumPy."""
    rng = np.random.default_rng(3)
    for expr, shapes in [("logsumexp(Z, axis=0, keepdims=True) - Z", {"Z": (3, 4)}),
                         ("Z - logsumexp(Z)", {"Z": (3, 4)}),
                         ("logsumexp(Z, axis=(1, 2), keepdims=True) - Z", {"Z": (2, 3, 4)}),
                         ("Z - logsumexp(Z, axis=(0, 1), keepdims=True)", {"Z": (2, 3, 4)}),
                         ("log(3*softmax(Z, axis=0))", {"Z": (3, 4)}),
                         ("log(softmax(Z)/7)[1]", {"Z": (3, 4)}),
                         ("log(exp(z[2:])/sum(exp(z)))", {"z": (5,)})]:
        x = rng.uniform(-3, 3, next(iter(shapes.values())))
        stable = compile_expr(expr, shapes=shapes, stable=True)
        assert stable.rewrites, expr
        np.testing.assert_allclose(stable(x), compile_expr(expr, shapes=shapes)(x), rtol=1e-13, atol=1e-15)
