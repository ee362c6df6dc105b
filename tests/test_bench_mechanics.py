"""`exprc bench mechanics`: the pendulum model is the physics it claims to be, the
generated Jacobian (NumPy and C) agrees with SymPy's exact one, the bare-kernel
adapter computes what the call does, and the suite runs end to end at one link,
reporting a competitor that disagrees loudly. No timing is asserted."""

import numpy as np
import pytest
import sympy

from exprcompiler import compile_jacobian
from exprcompiler.backends import c_build
from exprcompiler.bench import mechanics, suite_mechanics
from exprcompiler.bench.cli import SUITES
from exprcompiler.errors import CompileError
from conftest import NO_CC, has_compiler
from test_bench import bench  # `exprc bench ARGS`

TOL = 1e-12  # relative, denominator floored at 1


pytestmark = pytest.mark.usefixtures("private_cache")


BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(not has_compiler(), reason=NO_CC))]


def test_one_link_forcing_is_the_cart_pendulum_by_hand():
    # cart + one massless link with a point mass at its tip, the link at the absolute
    # angle q1 from the horizontal: the forcing is f + m1 l u1² cos q1 for the cart
    # and −m1 g l cos q1 for the link (m1 = 1/100, l = 1, g = 9.81, f = 1/2)
    model = mechanics.pendulum(1)
    q0, q1, u0, u1 = model.states
    want = [sympy.Rational(1, 2) + sympy.Rational(1, 100) * u1**2 * sympy.cos(q1),
            -sympy.Rational(981, 100) * sympy.Rational(1, 100) * sympy.cos(q1)]
    assert [sympy.simplify(e - w) for e, w in zip(model.exprs, want)] == [0, 0]


def test_the_model_has_n_plus_one_outputs_in_two_n_plus_two_states_and_no_cart_position():
    model = mechanics.pendulum(2)
    assert model.shape == (3, 6)
    assert model.names == ["q0", "q1", "q2", "u0", "u1", "u2"]
    used = set().union(*(e.free_symbols for e in model.exprs))
    assert used <= set(model.states) and model.states[0] not in used
    assert mechanics.pendulum(2) is model  # derived once per process
    with pytest.raises(ValueError, match="at least one link"):
        mechanics.pendulum(0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_jacobian_agrees_with_sympys_exact_one(backend):
    model = mechanics.pendulum(2)
    X = mechanics.random_states(2, 7)
    J = compile_jacobian(list(model.exprs), wrt=model.names, backend=backend)
    values, jac = J(**{name: X[:, k] for k, name in enumerate(model.names)})
    got = suite_mechanics._flat(values, jac)
    want = mechanics.exact(2, X)
    assert got.shape == want.shape == (7, 3 + 3 * 6)
    assert np.all(np.abs(got - want) <= TOL * np.maximum(1, np.abs(want)))
    assert np.all(jac[:, :, 0] == 0)  # no output depends on the cart's position
    point = suite_mechanics._flat(*J(**{name: float(v) for name, v in zip(model.names, X[3])}))
    assert np.allclose(point, want[3], rtol=TOL, atol=TOL)


@pytest.mark.skipif(not has_compiler(), reason="no C compiler")
@pytest.mark.parametrize("fresh", [False, True])
def test_the_bare_kernel_computes_what_the_call_does(fresh):
    model = mechanics.pendulum(2)
    X = mechanics.random_states(2, 33)
    cols = {name: np.ascontiguousarray(X[:, k]) for k, name in enumerate(model.names)}
    J = compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1)
    kernel = suite_mechanics.bare_c_kernel(J, cols, 1, fresh)
    got = kernel()
    assert got.shape == (33, 3 + 3 * 6)
    np.testing.assert_array_equal(got, suite_mechanics._flat(*J(**cols)))
    assert np.shares_memory(kernel(), got) is not fresh  # fresh: a new block per call


def test_the_bare_kernel_refuses_what_is_not_a_c_kernel():
    model = mechanics.pendulum(1)
    J = compile_jacobian(list(model.exprs), wrt=model.names)  # NumPy: a Python function
    with pytest.raises(suite_mechanics.Missing, match="not a cffi C function"):
        suite_mechanics.bare_c_kernel(J, {name: np.ones(3) for name in model.names}, 1)


def test_the_suite_is_registered():
    assert SUITES["mechanics"][0] is suite_mechanics.run


def _tiny(**kwargs):
    return suite_mechanics.measure((1,), [1], 1, points=20, build_rounds=1, targets=(1e-4, 1e-4),
                                   **kwargs)


def test_the_suite_runs_end_to_end_and_every_row_agrees_with_the_exact_jacobian():
    result = _tiny()
    text = result.text()
    assert text.startswith("== mechanics ==") and "MISMATCH" not in text
    goals = [note for note in result.notes if note.startswith("issue 14, generated C / symengine")]
    assert len(goals) == 1 and "n = 1: one point J(**inputs) " in goals[0]
    rows = {(r["implementation"], r["threads"]): r for r in result.records}
    ran = [r for r in result.records if not r["missing"]]
    assert {suite_mechanics.NP_CALL, suite_mechanics.NP_BARE, suite_mechanics.SYMPY} <= \
        {r["implementation"] for r in ran}
    for r in ran:
        if r["max_rel_error"] is not None:
            assert r["max_rel_error"] <= suite_mechanics.TOL, r["implementation"]
    for label, package in ((suite_mechanics.SYMENGINE, "symengine"), (suite_mechanics.CASADI, "casadi"),
                           (suite_mechanics.JAX, "jax")):
        if not suite_mechanics.installed(package):
            assert rows[label, "1"]["missing"] == "not installed"
    if has_compiler():
        assert rows[suite_mechanics.C_COLD, "1"]["build"]["rounds"] == 1
        call = rows[suite_mechanics.C_CALL, "1"]
        assert call["batch"]["max_rel_error"] <= suite_mechanics.TOL
        assert call["call_over_kernel"] > 0 and call["out_call_over_kernel"] > 0
        assert rows[suite_mechanics.C_OUT, "1"]["batch"]["max_rel_error"] <= suite_mechanics.TOL


def test_a_competitor_that_disagrees_is_reported_loudly(monkeypatch):
    exact = mechanics.exact
    monkeypatch.setattr(suite_mechanics, "exact", lambda n, states: exact(n, states) * 1.01)
    result = _tiny()
    assert result.notes[0].startswith("MISMATCH: n = 1,")
    assert "MISMATCH" in "\n".join(" ".join(row) for row in result.table)


def test_without_a_compiler_the_c_rows_say_so(monkeypatch):
    def none():
        raise CompileError("no C compiler found (test)")
    monkeypatch.setattr(c_build, "find_compiler", none)
    result = _tiny()
    c_rows = [r for r in result.records if r["implementation"].startswith("generated C")]
    assert c_rows and all(r["missing"].startswith("no C compiler") for r in c_rows)
    assert any(not r["missing"] for r in result.records)  # the others still ran


class _Measured(Exception):
    """Raised by a stand-in for suite_mechanics.measure: the sizes are all we look at."""


def test_links_choose_the_suites_link_counts_and_bad_ones_are_refused(monkeypatch):
    from exprcompiler.cli import UserError
    seen = []

    def measure(sizes, threads, repeat, *rest):
        seen.append((tuple(sizes), repeat))
        raise _Measured  # before anything is built
    monkeypatch.setattr(suite_mechanics, "measure", measure)
    for argv, sizes in ((["mechanics", "--links", "5", "2", "5"], (2, 5)), (["mechanics", "--quick"], (3, 6)),
                        (["mechanics", "--quick", "--links", "1"], (1,)), (["mechanics"], (3, 6, 10, 20))):
        with pytest.raises(_Measured):
            bench(*argv, "--threads", "1", "--repeat", "2")
        assert seen.pop() == (sizes, 2)
    for argv, why in ((["mechanics", "--links", "0"], "from 1 to 40, got '0'"),
                      (["mechanics", "--links", "2.5"], "got '2.5'"),
                      (["mechanics", "--links", "41"], "got '41'"),
                      (["--links", "3", "mechanics"], "got 'mechanics' \\(name the suites before --links\\)"),
                      (["seeds", "--links", "3"], "name that suite")):
        with pytest.raises(UserError, match=why):
            bench(*argv)
    assert not seen
