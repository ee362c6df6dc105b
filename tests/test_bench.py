"""`exprc bench`: --quick runs end to end in-process and every implementation agrees
with the hand-written reference; --json holds every number and the machine; a missing
competitor or C compiler is a row that says so; user mistakes are one-line errors.
No timing is asserted."""

import argparse
import json
import sys

import pytest

from exprcompiler.backends import c_build
from exprcompiler.bench.cli import add_bench_command
from exprcompiler.cli import UserError
from exprcompiler.errors import CompileError

TOL = 1e-12  # relative, denominator floored at 1


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path_factory.getbasetemp() / "c-cache"))


def bench(*argv) -> str:
    parser = argparse.ArgumentParser()
    add_bench_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


def has_compiler() -> bool:
    try:
        c_build.find_compiler()
        return True
    except CompileError:
        return False


@pytest.fixture
def no_jax_or_torch(monkeypatch):
    for name in ("jax", "torch"):
        monkeypatch.setitem(sys.modules, name, None)  # importlib.util.find_spec -> None


def test_quick_run_agrees_with_the_reference_and_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    text = bench("seeds", "scaling", "--quick", "--threads", "all", "--json", str(path))
    assert "== seeds ==" in text and "== scaling ==" in text and text.startswith("machine: ")
    data = json.loads(path.read_text())
    m = data["machine"]
    for key in ("cpu", "cpus_available", "python", "c_compiler", "threads", "environment"):
        assert key in m
    assert {"numpy", "sympy", "cffi", "jax", "torch"} <= set(m["versions"])
    seeds, scaling = data["suites"]
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
    for r in scaling["rows"]:
        assert r["grad_ops"] > r["ops"] > 0
        for tool in ("c_compile", "sympy", "jax"):
            if r[tool]["status"] == "ok":
                assert r[tool]["max_rel_error"] < TOL, (r["family"], r["ops"], tool)


def test_a_missing_competitor_is_listed_as_not_installed(no_jax_or_torch, tmp_path):
    path = tmp_path / "b.json"
    text = bench("seeds", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    rows = json.loads(path.read_text())["suites"][0]["rows"]
    jax = [r for r in rows if r["implementation"].startswith("JAX")]
    assert len(jax) == 5 and all(r["missing"] == "not installed" for r in jax)
    assert "JAX jit(vmap(value_and_grad))" in text and "not installed" in text


def test_without_a_compiler_the_c_rows_say_so(no_jax_or_torch, monkeypatch, tmp_path):
    def none():
        raise CompileError("no C compiler found (looked for cc, gcc, clang on PATH)")
    monkeypatch.setattr(c_build, "find_compiler", none)
    path = tmp_path / "b.json"
    bench("seeds", "--quick", "--threads", "1", "--repeat", "1", "--json", str(path))
    rows = json.loads(path.read_text())["suites"][0]["rows"]
    c_rows = [r for r in rows if " C" in r["implementation"]]
    assert c_rows and all(r["missing"].startswith("no C compiler") for r in c_rows)
    assert all(r["max_rel_error"] < TOL for r in rows if not r["missing"])


@pytest.mark.parametrize("argv, message", [
    (("lsqq",), "unknown suite 'lsqq' (suites: seeds, scaling)"),
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
