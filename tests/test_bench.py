"""`exprc bench`: --quick runs every suite end to end in-process and every implementation
agrees with the hand-written reference (a wrong one is reported); --json holds every number and the machine; a missing
competitor or C compiler is a row that says so; user mistakes are one-line errors.
No timing is asserted."""

import argparse
import dataclasses
import json
import sys
from importlib.util import find_spec

import numpy as np
import pytest

from exprcompiler import compile_hessian
from exprcompiler.backends import c_build
from exprcompiler.bench import rosenbrock, suite_call, suite_hvp, suite_lsq, suite_mlp
from exprcompiler.bench.cli import add_bench_command
from exprcompiler.cli import UserError
from exprcompiler.errors import CompileError
from conftest import has_compiler  # (test_bench_mechanics, test_c_entry, ... take it from here)

TOL = 1e-12  # relative, denominator floored at 1


pytestmark = pytest.mark.usefixtures("private_cache")


def bench(*argv) -> str:
    parser = argparse.ArgumentParser()
    add_bench_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


@pytest.fixture
def no_jax_or_torch(monkeypatch):
    for name in ("jax", "torch"):
        monkeypatch.setitem(sys.modules, name, None)  # importlib.util.find_spec -> None


HVP_LABELS = {"generated C, n scalars, at()", "generated C, vector x, call",
              "generated NumPy, n scalars, at()", "generated NumPy, vector x, call",
              "hand-written NumPy", "JAX jit, jvp(value_and_grad)"}


@pytest.mark.slow
def test_quick_run_of_every_suite_agrees_with_the_reference_and_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    text = bench("--quick", "--threads", "all", "--json", str(path))
    for name in ("seeds", "lsq", "mlp", "hvp", "call", "scaling", "mechanics", "sparse"):
        assert f"== {name} ==" in text
    assert text.startswith("machine: ")
    data = json.loads(path.read_text())
    m = data["machine"]
    for key in ("cpu", "cpus_available", "python", "c_compiler", "threads", "environment"):
        assert key in m
    assert {"numpy", "sympy", "cffi", "jax", "torch"} <= set(m["versions"])
    suites = {s["suite"]: s for s in data["suites"]}
    assert list(suites) == ["seeds", "lsq", "mlp", "hvp", "call", "scaling", "mechanics", "sparse"]
    seeds, hvp, scaling = suites["seeds"], suites["hvp"], suites["scaling"]
    ran = [r for r in seeds["rows"] if not r["missing"]]
    assert {r["function"] for r in ran} == {"cubic", "griewank", "logsin", "explog", "square"}
    for r in ran:
        assert r["max_rel_error"] < TOL, (r["function"], r["implementation"])
        assert r["value"]["rounds"] == r["grad"]["rounds"] == 3
    labels = {r["implementation"] for r in ran}
    assert {"generated NumPy", "hand-written NumPy", "SymPy diff + cse + lambdify"} <= labels
    if has_compiler():
        assert {"generated C, out=", "hand-written C, vectorized, out=",
                "hand-written C, scalar, out="} <= labels
    for r in seeds["rows"]:
        if r["missing"]:
            assert r["implementation"].startswith(("JAX", "PyTorch")) or not has_compiler()
    check_hvp_rows(hvp["rows"], sizes={10, 100})
    check_call_rows(suites["call"]["rows"])
    check_lsq_rows(suites["lsq"]["rows"])
    check_mlp_rows(suites["mlp"]["rows"])
    for r in scaling["rows"]:
        assert r["grad_ops"] > r["ops"] > 0
        for tool in ("c_compile", "sympy", "jax"):
            if r[tool]["status"] == "ok":
                assert r[tool]["max_rel_error"] < TOL, (r["family"], r["ops"], tool)


def check_ran(rows, optional=("JAX", "PyTorch")):
    """The rows that ran; a missing one is an optional tool or C without a compiler."""
    for r in rows:
        if r["missing"]:
            assert r["implementation"].startswith(optional) or (" C" in r["implementation"]
                                                                and not has_compiler()), r
    return [r for r in rows if not r["missing"]]


def check_lsq_rows(rows):
    """Every gradient agrees with the hand-written value + gradient, and the descents end
    at the hand-written descent's w."""
    ran = check_ran(rows)
    for r in ran:
        assert r["max_rel_error"] < TOL, (r["task"], r["implementation"])
        assert r["ratio_to_reference"] > 0 and r["time"]["rounds"] == 3
    got = {(r["task"], r["implementation"]) for r in ran}
    assert {("gradient", suite_lsq.REFERENCE), ("gradient", suite_lsq.AGREEMENT),
            ("gradient", "generated NumPy"), (suite_lsq.DESCENT, suite_lsq.GD_REFERENCE),
            (suite_lsq.DESCENT, "generated NumPy loop")} <= got
    assert not has_compiler() or {("gradient", "generated C"), (suite_lsq.DESCENT, "generated C loop")} <= got
    assert {tuple(r["size"]) for r in rows} == {(200, 50)}


def check_mlp_rows(rows):
    """Every trainer ends at the hand-written backprop's parameters and test accuracy."""
    if find_spec("sklearn") is None:
        assert rows == []
        return
    ran = check_ran(rows)
    labels = {r["implementation"] for r in ran}
    assert {suite_mlp.REFERENCE, "generated NumPy"} <= labels
    assert "generated C" in labels or not has_compiler()
    ref = next(r for r in ran if r["implementation"] == suite_mlp.REFERENCE)
    for r in ran:
        assert r["max_rel_error"] < 1e-10, r["implementation"]
        assert r["test_accuracy"] == ref["test_accuracy"] > 0.5, r["implementation"]


def check_hvp_rows(rows, sizes):
    """Every implementation ran at every size (or says why not) and agrees with the
    hand-written NumPy in value, gradient and HVP."""
    assert {(r["n"], r["implementation"]) for r in rows} == {(n, k) for n in sizes for k in HVP_LABELS}
    ran = check_ran(rows, optional=("JAX",))
    for r in ran:
        assert r["max_rel_error"] < TOL, (r["n"], r["implementation"])
        assert r["hvp"]["rounds"] == r["value"]["rounds"]
        assert r["hvp_over_value"] > 0 and r["ratio_to_reference"] > 0
    names = {r["implementation"] for r in ran}
    assert {"generated NumPy, n scalars, at()", "generated NumPy, vector x, call", "hand-written NumPy"} <= names
    assert {"generated C, n scalars, at()", "generated C, vector x, call"} <= names or not has_compiler()


CALL_LABELS = {suite_call.REFERENCE, *suite_call.PEERS,
               *(f"generated {tool}, {entry}" for tool in ("C", "NumPy") for entry in suite_call.ENTRIES)}


def check_call_rows(rows):
    """Every entry ran on both functions (or says why not), on one thread, and agrees with
    the hand-written Python in the value and every partial derivative."""
    assert {(r["function"], r["implementation"]) for r in rows} == \
        {(f.name, k) for f in suite_call.FUNCTIONS for k in CALL_LABELS}
    ran = check_ran(rows, optional=("JAX", "symengine", "CasADi"))
    for r in ran:
        assert r["max_rel_error"] < TOL, (r["function"], r["implementation"])
        assert r["ratio_to_reference"] > 0 and r["threads"] == "1"
    names = {r["implementation"] for r in ran}
    assert {suite_call.REFERENCE, *(f"generated NumPy, {e}" for e in suite_call.ENTRIES)} <= names
    assert {f"generated C, {e}" for e in suite_call.ENTRIES} <= names or not has_compiler()


def test_call_without_symengine_casadi_or_jax_says_not_installed(no_jax_or_torch, monkeypatch, tmp_path):
    for name in ("symengine", "casadi"):
        monkeypatch.setitem(sys.modules, name, None)
    path = tmp_path / "b.json"
    text = bench("call", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    rows = json.loads(path.read_text())["suites"][0]["rows"]
    check_call_rows(rows)
    assert {r["implementation"]: r["missing"] for r in rows if r["missing"]} == \
        dict.fromkeys(suite_call.PEERS, "not installed")
    line = next(ln for ln in text.splitlines() if ln.startswith("griewank") and "CasADi" in ln)
    assert line.endswith(" 1  not installed")


def test_call_disagreement_with_the_reference_is_reported(no_jax_or_torch, monkeypatch, tmp_path):
    def wrong(x1, x2):
        y, (g1, g2) = suite_call.griewank_grad(x1, x2)
        return y, (g1, g2 + 1.0)
    monkeypatch.setattr(suite_call, "FUNCTIONS", (dataclasses.replace(suite_call.FUNCTIONS[0], hand=wrong),))
    path = tmp_path / "b.json"
    bench("call", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    rows = [r for r in json.loads(path.read_text())["suites"][0]["rows"] if not r["missing"]]
    generated = [r for r in rows if r["implementation"].startswith("generated")]
    assert generated and all(r["max_rel_error"] > 0.01 for r in generated)


def test_the_hand_written_rosenbrock_is_the_function_the_program_computes():
    n = 6
    x, v = rosenbrock.point(n)
    y, g, hess = compile_hessian(rosenbrock.program(n)).at(x)
    assert rosenbrock.value(x) == pytest.approx(y, rel=1e-14)
    y2, g2 = rosenbrock.grad(x)
    y3, g3, hv = rosenbrock.hvp(x, v)
    assert y2 == y3 == pytest.approx(y, rel=1e-14)
    np.testing.assert_allclose(g2, g, rtol=1e-13)
    np.testing.assert_allclose(g3, g, rtol=1e-13)
    np.testing.assert_allclose(hv, hess @ v, rtol=1e-13)
    with pytest.raises(ValueError, match="n >= 2"):
        rosenbrock.program(1)


def test_hvp_disagreement_with_the_reference_is_reported(no_jax_or_torch, monkeypatch, tmp_path):
    monkeypatch.setattr(suite_hvp, "QUICK_SIZES", (10,))
    monkeypatch.setattr(rosenbrock, "hvp", lambda x, v: (*rosenbrock.grad(x), 2 * v))
    path = tmp_path / "b.json"
    bench("hvp", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    rows = [r for r in json.loads(path.read_text())["suites"][0]["rows"] if not r["missing"]]
    generated = [r for r in rows if r["implementation"].startswith("generated")]
    assert generated and all(r["max_rel_error"] > 1 for r in generated)


@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_a_missing_competitor_is_listed_as_not_installed(no_jax_or_torch, tmp_path):
    path = tmp_path / "b.json"
    text = bench("seeds", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    rows = json.loads(path.read_text())["suites"][0]["rows"]
    jax = [r for r in rows if r["implementation"].startswith("JAX")]
    assert len(jax) == 5 and all(r["missing"] == "not installed" for r in jax)
    assert "JAX jit(vmap(value_and_grad))" in text and "not installed" in text


def test_hvp_without_jax_says_not_installed(no_jax_or_torch, monkeypatch, tmp_path):
    monkeypatch.setattr(suite_hvp, "QUICK_SIZES", (10,))
    path = tmp_path / "b.json"
    text = bench("hvp", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    rows = json.loads(path.read_text())["suites"][0]["rows"]
    check_hvp_rows(rows, sizes={10})
    jax, = (r for r in rows if r["implementation"].startswith("JAX"))
    assert jax["missing"] == "not installed"
    line, = (ln for ln in text.splitlines() if ln.startswith("10 ") and "JAX" in ln)
    assert line.split() == ["10", "JAX", "jit,", "jvp(value_and_grad)", "1", "not", "installed"]


def test_without_a_compiler_the_c_rows_say_so(no_jax_or_torch, monkeypatch, tmp_path):
    def none():
        raise CompileError("no C compiler found (looked for cc, gcc, clang on PATH)")
    monkeypatch.setattr(c_build, "find_compiler", none)
    path = tmp_path / "b.json"
    monkeypatch.setattr(suite_hvp, "QUICK_SIZES", (10,))
    bench("seeds", "lsq", "hvp", "call", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    for suite in json.loads(path.read_text())["suites"]:
        rows = suite["rows"]
        c_rows = [r for r in rows if " C" in r["implementation"]]
        assert c_rows and all(r["missing"].startswith("no C compiler") for r in c_rows)
        assert all(r["max_rel_error"] < TOL for r in rows if not r["missing"])


@pytest.mark.parametrize("argv, message", [
    (("lsqq",), "unknown suite 'lsqq' (suites: seeds, lsq, mlp, hvp, call, scaling, mechanics, sparse)"),
    (("--threads", "0"), "--threads: expected a positive number or 'all', got '0'"),
    (("--repeat", "0"), "--repeat must be at least 1, got 0"),
])
def test_user_mistakes_are_one_line_errors(argv, message):
    with pytest.raises(UserError) as info:
        bench(*argv)
    assert str(info.value) == message


def test_plot_without_matplotlib_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UserError, match="^--plot needs matplotlib, which is not installed"):
        bench("seeds", "--plot", "ratios.png")


def test_lsq_without_jax_or_torch_says_not_installed(no_jax_or_torch, tmp_path):
    path = tmp_path / "b.json"
    text = bench("lsq", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    rows = json.loads(path.read_text())["suites"][0]["rows"]
    missing = {r["implementation"]: r["missing"] for r in rows if r["missing"]}
    assert missing == {suite_lsq.JAX: "not installed", suite_lsq.TORCH: "not installed"} or not has_compiler()
    assert "not installed" in text


def test_mlp_without_scikit_learn_is_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    text = bench("mlp", "--quick", "--threads", "1")
    assert "== mlp ==" in text and "scikit-learn not installed" in text


def test_batches_are_calibrated_after_a_slow_first_call():
    # a first call that loads something (here: sleeps 50 ms) must not make every batch
    # one call long, which timed the 3-link pendulum's one-point call at 10x its cost
    import time as _time
    from exprcompiler.bench.runner import Batch, calls_for
    state = {"first": True}

    def call():
        if state["first"]:
            state["first"] = False
            _time.sleep(0.05)
    assert calls_for(call, 0.01) > 1000
    state["first"] = True
    batch = Batch(call, (), 0.01)
    batch()
    assert batch.calls > 1000
