"""Split kernels (c_split): parts as separate translation units compiled in parallel,
a tape whose slots are reused, and the joined source still one valid unit."""

import subprocess

import numpy as np
import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_backend, c_build, c_split
from exprcompiler.randexpr import random_program


def _stmts(spec):
    """Statements (target, rhs, reads) from (target, reads) pairs."""
    return [(t, "0", set(rd)) for t, rd in spec]


def test_plan_reuses_slots_and_takes_a_rewritten_adjoint_from_its_last_writer():
    # chunks of 2: [a, b] [c, a again] [d, out0]; a is rewritten in chunk 1 after c
    # reads the first a; d reads the second a, out0 reads b (which lives through chunk 1)
    stmts = _stmts([("a", "x"), ("b", "x"), ("c", "a"), ("a", "ac"), ("d", "a"), ("out0", "bd")])
    chunks, loads, stores, slots = c_split.plan(stmts, {"x": 0}, 2)
    assert [len(c) for c in chunks] == [2, 2, 2]
    assert set(stores[0]) == {"a", "b"} and set(loads[1]) == {"a"}
    assert set(stores[1]) == {"a"} and set(loads[2]) == {"a", "b"}
    # the first a's slot is free when chunk 1 stores the second a: two slots, not three
    assert slots == 2 and stores[1]["a"] == stores[0]["a"] == loads[1]["a"]
    assert loads[2] == {"a": stores[1]["a"], "b": stores[0]["b"]}


@pytest.mark.parametrize("threads", [1, 2])
def test_split_kernel_matches_numpy_with_strided_outputs(monkeypatch, tmp_path, threads):
    """Many small parts, a ragged last block, and a Jacobian's outputs at strides."""
    from exprcompiler import compile_jacobian
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
    monkeypatch.setattr(c_backend, "PART", 4)
    exprs = ["sin(x*y) + exp(-z**2) * x", "x / (1 + y**2) - cos(z * x)"]
    c = compile_jacobian(exprs, wrt=["x", "y", "z"], backend="c", threads=threads)
    assert c_split.UNIT_MARK in c.source and "_part3(" in c.source
    ref = compile_jacobian(exprs, wrt=["x", "y", "z"])
    rng = np.random.default_rng(2)
    x, y, z = (rng.uniform(-2, 2, 2 * c_backend.BLOCK + 5) for _ in range(3))
    got, want = c(x, y, z), ref(x, y, z)
    for a, b in zip(np.atleast_1d(got[0]), np.atleast_1d(want[0])):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-13, atol=1e-300)


def test_units_are_compiled_in_parallel_and_linked(monkeypatch, tmp_path):
    """Each part is its own compiler run, at most compile_jobs() at once; the joined
    text compiles as one unit too (what `exprc export` writes) and gives the same numbers."""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 20)
    monkeypatch.setattr(c_backend, "PART", 10)
    runs, real = [], subprocess.run

    def counting(args, **kw):
        runs.append(list(args))
        return real(args, **kw)

    monkeypatch.setattr(c_build.subprocess, "run", counting)
    program = random_program(40, n_vars=3, seed=7)
    g = compile_grad(program, backend="c")
    units = c_split.split_units(g.source)
    compiles = [a for a in runs if "-c" in a]
    assert len(units) > 3 and len(compiles) == len(units)
    assert sum("kernel.so" in a for a in runs if "-c" not in a) == 1  # one link
    assert all("-shared" not in a for a in compiles)
    # the joined source as one unit, compiled by hand
    src = tmp_path / "joined.c"
    src.write_text(g.source)
    lib = tmp_path / "joined.so"
    done = real([c_build.find_compiler()[0], "-O1", "-std=c99", "-fPIC", "-shared", "-o", str(lib),
                 str(src), "-lm"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_compile_jobs_is_the_affinity_mask(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's threads, not the build's
    if hasattr(c_build.os, "sched_getaffinity"):
        monkeypatch.setattr(c_build.os, "sched_getaffinity", lambda pid: {0, 1, 2})
        assert c_build.compile_jobs() == 3


def test_a_unit_the_compiler_refuses_keeps_the_whole_source(monkeypatch, tmp_path):
    from exprcompiler.errors import CompileError
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    source = "/* prelude */\n" + c_split.UNIT_MARK + "\nint ok(void) { return 0; }\n" + \
        c_split.UNIT_MARK + "\nint broken( {\n"
    with pytest.raises(CompileError, match="source kept at") as err:
        c_build.build(source)
    kept = str(err.value).split("source kept at ")[1].split(")")[0]
    assert open(kept).read() == source


@pytest.mark.slow
def test_a_ten_thousand_operation_gradient_builds_in_linear_time(monkeypatch, tmp_path):
    """The scaling suite's 10⁴-operation random DAG (27k statements in its gradient):
    a cold build well within the minute it took as one unit of -O2 parts (3.5 s wall,
    6.4 s CPU on this project's 2-core machine), matching NumPy."""
    import time
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    program = random_program(int(10_000 / 2.1), seed=1)
    t = time.perf_counter()
    g = compile_grad(program, backend="c")
    rng = np.random.default_rng(3)
    x = [rng.uniform(0.2, 0.9, 300) for _ in g.inputs]
    v, grads = g(*x)
    assert time.perf_counter() - t < 40
    rv, rgrads = compile_grad(program)(*x)
    np.testing.assert_allclose(v, rv, rtol=1e-12)
    for a, b in zip(grads, rgrads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
