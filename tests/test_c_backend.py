"""The C backend against the NumPy backend (itself tested against the reference
interpreter): every op, value / JVP / VJP, edge points, seeds, broadcasting, the
compile cache (truncation, concurrency, a fresh process), and hostile names."""

import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_jvp, compile_vjp, ops
from exprcompiler.backends import c_build
from exprcompiler.trace.ir import Builder, trace_from_builder
from conftest import HAVE_CC, NO_CC

if not HAVE_CC:
    pytest.skip(NO_CC, allow_module_level=True)

OPS = [op for op in ops.OPS.values() if not op.is_leaf and op.name != "copy" and op.elementwise]
GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"


pytestmark = pytest.mark.usefixtures("private_cache")


def every_op():
    """One trace with every op in OPS, each on inputs of its own (o<i>_x<k> -> y<i>), so
    each output and its derivatives depend on that op alone: one C build per kind
    instead of one per op and kind (the per-op kernels are test_edges.py's)."""
    b = Builder()
    outs = []
    for i, op in enumerate(OPS):
        xs = [b.input(f"o{i}_x{k + 1}") for k in range(op.arity)]
        outs.append((f"y{i}", b.apply(op.name, *xs)))
    return trace_from_builder(b, outs)


def points(op, n=9):
    rng = np.random.default_rng(len(op.name))
    cols = [rng.uniform(lo, hi, n) for lo, hi in op.domain]
    for args, _ in op.edges:  # append the edge points
        cols = [np.append(c, a) for c, a in zip(cols, args)]
    return cols


def agree(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    same_special = (np.isnan(a) & np.isnan(b)) | ((a == b) & np.isinf(a))
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= 1e-13 * np.maximum(np.abs(a), np.abs(b)) + 1e-300
    return bool(np.all(same_special | close))


@pytest.mark.parametrize("make", [compile_expr, compile_jvp, compile_vjp], ids=lambda f: f.__name__)
def test_every_op_value_jvp_vjp_match_numpy(make):
    trace = every_op()
    cols = [points(op) for op in OPS]
    n = max(len(c[0]) for c in cols)   # every op's points, repeated up to the longest's
    rng = np.random.default_rng(0)
    env = {f"o{i}_x{k + 1}": np.resize(c, n) for i, op_cols in enumerate(cols) for k, c in enumerate(op_cols)}
    c, py = make(trace, backend="c"), make(trace)
    for name in c.inputs:   # tangents (o0_x1_dot) and cotangents (y0_bar)
        env.setdefault(name, rng.standard_normal(n))
    args = [env[name] for name in c.inputs]
    got, want = _flat(c(*args)), _flat(py(*args))
    assert len(got) == len(want) == len(c.trace.output_names)
    bad = [f"{OPS[int(re.match(r'[oy]([0-9]+)', name)[1])].name}: {name}"
           for name, g, w in zip(c.trace.output_names, got, want) if not agree(g, w)]
    assert not bad, (make.__name__, bad)


def _flat(x):
    if isinstance(x, tuple):
        return [y for item in x for y in _flat(item)]
    return [x]


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_seeds_match_numpy(mode):
    for expr, at in ((GRIEWANK, (1.5, 0.5)), ("log(x1) + x1*x2 - sin(x2)", (2.0, 5.0)),
                     ("exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", (2.0, 3.0)),
                     ("x**3 - 3*x", (1.0,)), ("(x**2 + 1)**2", (1.0,))):
        c, py = compile_grad(expr, mode=mode, backend="c"), compile_grad(expr, mode=mode)
        assert agree(_flat(c(*at)), _flat(py(*at)))


def test_broadcasting_combinations():
    g, ref = compile_grad(GRIEWANK, backend="c"), compile_grad(GRIEWANK)
    rng = np.random.default_rng(1)
    cases = [(1.5, 0.5), (rng.uniform(0.5, 2, 7), 0.5), (1.5, rng.uniform(0.5, 2, 7)),
             (rng.uniform(0.5, 2, (3, 1)), rng.uniform(0.5, 2, 4)),
             (rng.uniform(0.5, 2, (2, 3))[:, ::2], 0.7),      # non-contiguous input
             (np.empty(0), 0.5)]
    for a, b in cases:
        (v, grads), (rv, rgrads) = g(a, b), ref(a, b)
        assert np.shape(v) == np.shape(rv)
        assert agree(v, rv) and all(agree(x, y) for x, y in zip(grads, rgrads))


def test_hostile_names_never_reach_c_unmangled():
    import sympy as sp
    names = ["int", "sin", "in0", "out0", "n", "i", "x*/y", "a\nb", "θ"]
    syms = [sp.Symbol(name) for name in names]
    expr = sum((k + 1) * s for k, s in enumerate(syms))
    g = compile_grad(expr, backend="c")
    _, grad = g(*[1.0] * len(names))
    coefficient = {name: float(k + 1) for k, name in enumerate(names)}
    assert grad == tuple(coefficient[name] for name in g.wrt)
    assert "*/y" not in g.source and "a\nb" not in g.source


def test_truncated_cache_entry_is_rebuilt():
    # Built but never loaded here: truncating a library this process has mapped
    # would crash it (SIGBUS), which is why the cache only ever replaces files.
    from exprcompiler.backends.c_backend import generate_c
    from exprcompiler import to_trace
    source, _ = generate_c(to_trace("sin(x) * 3.25 + 0.0078125"), func_name="f")
    lib = c_build.build(source)
    data = lib.read_bytes()
    lib.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="does not match"):
        rebuilt = c_build.build(source)
    assert rebuilt == lib and rebuilt.read_bytes() == data


def _run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_a_process_exits_cleanly_after_a_parallel_kernel(tmp_path):
    """OpenMP's idle team threads spin inside its runtime after a parallel region
    (with OMP_WAIT_POLICY=active, until the process ends). Freeing the loaded kernels at
    interpreter exit unloaded the runtime under them: a segmentation fault after the
    script had finished, every time (c_build._pin_openmp keeps the runtime loaded)."""
    code = """
        import numpy as np
        from exprcompiler import compile_grad
        g = compile_grad("sin(x) * y + exp(x * y)", backend="c", threads=2)
        x = np.linspace(0.0, 1.0, 200_000)
        g(x, x)
        print("finished")
    """
    for _ in range(2):
        done = _run(code, {"EXPRCOMPILER_CACHE": str(tmp_path), "OMP_WAIT_POLICY": "active"})
        assert done.returncode == 0 and done.stdout == "finished\n", (done.returncode, done.stderr[-2000:])


@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_concurrent_processes_compile_the_same_new_kernel(tmp_path):
    code = """
        import sys
        from exprcompiler import compile_grad
        g = compile_grad("cos(x) * exp(y) + 0.123456789 * x", backend="c")
        print(g(0.5, 0.25)[1][0])
    """
    env = {"EXPRCOMPILER_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
             for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    expected = -math.sin(0.5) * math.exp(0.25) + 0.123456789
    assert all(float(o[0]) == pytest.approx(expected, rel=1e-15) for o in outs)
    assert len(list(Path(tmp_path).rglob("*.so"))) == 1
    assert not list(Path(tmp_path).rglob(".build-*"))


def test_a_fresh_process_loads_from_the_cache(tmp_path):
    code = """
        import time
        from exprcompiler.backends import c_build
        built = []
        original = c_build.subprocess.run
        def spy(cmd, *a, **k):
            if "-shared" in cmd:
                built.append(cmd)
            return original(cmd, *a, **k)
        c_build.subprocess.run = spy
        from exprcompiler import compile_grad
        g = compile_grad("tanh(x) * y", backend="c")
        print(len(built), g(0.5, 2.0)[0])
    """
    env = {"EXPRCOMPILER_CACHE": str(tmp_path)}
    first, second = _run(code, env), _run(code, env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split()[0] == "1"      # compiled once
    assert second.stdout.split()[0] == "0"     # then loaded from the cache
    assert first.stdout.split()[1] == second.stdout.split()[1]


def test_compiler_failure_is_a_compile_error_with_stderr(monkeypatch, tmp_path):
    from exprcompiler.errors import CompileError
    monkeypatch.setattr(c_build, "BUILDS", tuple((flags + ("-fno-such-flag-exprc",), libs)
                                                 for flags, libs in c_build.BUILDS))
    with pytest.raises(CompileError, match="source kept at"):
        compile_grad("x * 2.5 + 0.75", backend="c")


def test_cli_prints_the_c_kernel_and_manages_the_cache(capsys, tmp_path, monkeypatch):
    from exprcompiler.cli import main
    assert main(["grad", GRIEWANK, "--target", "c"]) == 0
    out = capsys.readouterr().out
    assert "int f_grad(ptrdiff_t n, int threads, const double *in0, ptrdiff_t st0" in out
    assert "    v1_bar = v1_bar + v2_bar * cos(v1);" in out
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    compile_grad("x * 1.125", backend="c")
    assert main(["cache", "info"]) == 0
    assert "1 compiled kernels" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 2 files" in capsys.readouterr().out
    assert not list(tmp_path.rglob("*.so"))


def test_loading_a_kernel_keeps_the_floating_point_environment():
    """No fast-math: loading must not switch on flush-to-zero for the whole process."""
    compile_grad("exp(x) * 1.0625 + sin(x)", backend="c")(np.linspace(0, 1, 10))
    tiny = np.float64(1e-310)
    assert tiny * 1.5 != 0.0 and np.multiply(np.array([tiny]), 1.5)[0] != 0.0


def test_the_loop_is_vectorized_with_libmvec_where_the_compiler_can():
    """gcc with glibc's libmvec calls the vector variants (_ZGV...sin) in the loop."""
    g = compile_grad(GRIEWANK, backend="c")
    lib = c_build.build(g.source)
    symbols = subprocess.run(["nm", "-D", str(lib)], capture_output=True, text=True).stdout
    if "clang" in c_build.find_compiler()[1]:
        pytest.skip("vector math through libmvec is a gcc + glibc feature")
    assert "_ZGV" in symbols and "sin" in symbols, symbols


def test_one_and_two_threads_give_identical_results():
    rng = np.random.default_rng(5)
    x1, x2 = rng.uniform(0.5, 2, 300_001), rng.uniform(0.5, 2, 300_001)
    one = compile_grad(GRIEWANK, backend="c", threads=1)(x1, x2)
    two = compile_grad(GRIEWANK, backend="c", threads=2)(x1, x2)
    default = compile_grad(GRIEWANK, backend="c")(x1, x2)
    for a, b, c in zip(_flat(one), _flat(two), _flat(default)):
        assert np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="threads"):
        compile_grad("x * 2.0", backend="c", threads=bad)


def test_threads_is_for_the_c_backend():
    with pytest.raises(ValueError, match="backend"):
        compile_grad("x * 2.0", threads=2)


def test_no_compiler_is_a_compile_error_that_points_to_numpy(monkeypatch):
    from exprcompiler.errors import CompileError
    monkeypatch.setattr(c_build.shutil, "which", lambda name: None)
    c_build.find_compiler.cache_clear()
    try:
        with pytest.raises(CompileError, match='backend="numpy"'):
            compile_grad("x * 2.0 + 0.5", backend="c")
    finally:
        c_build.find_compiler.cache_clear()


@pytest.mark.parametrize("threads", [1, 2])
def test_a_large_kernel_split_into_parts_matches_numpy(monkeypatch, threads):
    """Parts handing values on through the tape (made small here so the test is quick):
    the same numbers as the NumPy backend, over blocks with a ragged tail."""
    from exprcompiler.backends import c_backend
    from exprcompiler.randexpr import random_program
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 20)
    monkeypatch.setattr(c_backend, "PART", 7)
    program = random_program(40, n_vars=3, seed=5)
    c = compile_grad(program, backend="c", threads=threads)
    assert "_part5(" in c.source and "t[" in c.source
    ref = compile_grad(program)
    rng = np.random.default_rng(1)
    x = [rng.uniform(-2, 2, 2 * c_backend.BLOCK + 3), 0.7, rng.uniform(-2, 2, 2 * c_backend.BLOCK + 3)]
    for a, b in zip([c(*x)[0], *c(*x)[1]], [ref(*x)[0], *ref(*x)[1]]):
        assert agree(a, b)


@pytest.mark.parametrize("broken", [1, 2])
def test_a_compiler_that_refuses_openmp_falls_back_to_a_serial_loop(monkeypatch, tmp_path, broken):
    """The first `broken` flag sets fail (as on a compiler without OpenMP, or without
    libmvec): the kernel is built with the next one and gives the same numbers."""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    builds = list(c_build.BUILDS)
    for k in range(broken):
        flags, libs = builds[k]
        builds[k] = (flags + ("-fno-such-flag-exprc",), libs)
    monkeypatch.setattr(c_build, "BUILDS", tuple(builds))
    g = compile_grad(GRIEWANK, backend="c", threads=2)
    x1, x2 = np.linspace(0.5, 2, 1001), np.linspace(2, 0.5, 1001)
    ref = compile_grad(GRIEWANK)
    for a, b in zip([g(x1, x2)[0], *g(x1, x2)[1]], [ref(x1, x2)[0], *ref(x1, x2)[1]]):
        assert agree(a, b)
