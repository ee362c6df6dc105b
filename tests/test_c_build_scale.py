"""Split kernels (c_split): parts as separate translation units compiled in parallel,
each a vectorized loop over a block, a tape whose slots are reused, and the joined
source still one valid unit."""

import subprocess
from concurrent.futures import ThreadPoolExecutor

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
    # the input in slot 0 (the driver gathers it), output 0 in slot 1 (the driver scatters it)
    assert loads[0] == {"x": 0} and stores[2] == {"out0": 1}
    assert set(stores[0]) == {"a", "b"} and set(loads[1]) == {"a"}
    assert set(stores[1]) == {"a"} and set(loads[2]) == {"a", "b"}
    # the first a's slot is free when chunk 1 stores the second a: two slots, not three
    assert slots == 4 and stores[1]["a"] == stores[0]["a"] == loads[1]["a"]
    assert loads[2] == {"a": stores[1]["a"], "b": stores[0]["b"]}


@pytest.mark.parametrize("threads, vector", [(1, True), (2, True), (2, False)])
def test_split_kernel_matches_numpy_with_strided_outputs(monkeypatch, tmp_path, threads, vector):
    """Many small parts, a ragged last block, and a Jacobian's outputs at strides;
    `omp simd` parts, and the vector-extension ones of a kernel above VECTOR_UP_TO."""
    from exprcompiler import compile_jacobian
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
    monkeypatch.setattr(c_backend, "PART", 4)
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 10**9 if vector else 0)
    exprs = ["sin(x*y) + exp(-z**2) * x", "x / (1 + y**2) - cos(z * x) + (1 + z**2)**0.5 * x**3"]
    c = compile_jacobian(exprs, wrt=["x", "y", "z"], backend="c", threads=threads)
    assert c_split.UNIT_MARK in c.source and "_part3(" in c.source
    # the parts' own loops vectorized by gcc, or in the vector extension (lane wrappers)
    assert ("for (ptrdiff_t j = 0; j < XC_VL; ++j)" in c.source) == vector
    assert ("xc_lanes_sin(" in c.source) != vector
    ref = compile_jacobian(exprs, wrt=["x", "y", "z"])
    rng = np.random.default_rng(2)
    x, y, z = (rng.uniform(-2, 2, 2 * c_backend.BLOCK + 5) for _ in range(3))
    got, want = c(x, y, z), ref(x, y, z)
    # vector sin/cos (libmvec) may differ from NumPy's in the last bit, and an entry that
    # cancels to 1e-3 shows that as 1e-13 relative: an absolute floor at the inputs' scale
    for a, b in zip(np.atleast_1d(got[0]), np.atleast_1d(want[0])):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-13, atol=1e-14)
    # one point through the split kernel's own entry (c_driver.xc_split_point): by name,
    # in order and packed, at points where a last bit counts as above
    assert "_packed(const double *in, double *out)\n{\n    return xc_split_point(" in c.source
    assert "mem = pthread_getspecific(xc_tape_key);" in c.source  # the thread's kept tape
    for k in range(3):
        point = {"x": x[k], "y": y[k], "z": z[k]}
        for got, want in [(c(**point), ref(**point)), (c(x[k], y[k], z[k]), ref(x[k], y[k], z[k])),
                          (c.at(np.array([x[k], y[k], z[k]])), ref.at(np.array([x[k], y[k], z[k]])))]:
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    # threads at once in the packed entry (cffi releases the GIL), each on its own tape:
    # nothing shared between calls
    fn, from_buffer, array = c._run_packed.c_entry
    columns = {"x": x, "y": y, "z": z}

    def run(k):
        buf, out = np.array([columns[nm][k] for nm in c.inputs]), np.empty(len(c.trace.outputs))
        args = from_buffer(array, buf), from_buffer(array, out)
        want = ref.at(np.array([x[k], y[k], z[k]]))
        assert fn(*args) == 0
        np.testing.assert_allclose(out, np.concatenate([np.ravel(want[0]), np.ravel(want[1])]),
                                   rtol=1e-13, atol=1e-14)
        first = out.tobytes()
        for _ in range(2000):  # a shared tape would hold other threads' points in some of these
            assert fn(*args) == 0 and out.tobytes() == first

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, range(8)))


def compiler_runs(monkeypatch) -> list:
    """The argument lists of every compiler (and linker) run c_build makes from now on."""
    runs, real = [], subprocess.run

    def counting(args, **kw):
        runs.append(list(args))
        return real(args, **kw)

    monkeypatch.setattr(c_build.subprocess, "run", counting)
    return runs


def test_units_are_compiled_in_parallel_and_linked(monkeypatch, tmp_path):
    """Each part is its own compiler run, at most compile_jobs() at once; the joined
    text compiles as one unit too (what `exprc export` writes) and gives the same numbers."""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 20)
    monkeypatch.setattr(c_backend, "PART", 10)
    real = subprocess.run   # (compiler_runs wraps it)
    runs = compiler_runs(monkeypatch)
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


def test_plain_copies_are_read_as_their_source_only_where_the_value_is_the_same():
    stmts = [("a", "x * 2.0", {"x"}),
             ("b", "a", {"a"}),            # b is a from here on: dropped, read as a
             ("c", "b", {"b"}),            # a chain: c is a too
             ("d", "sin(b) + c", {"b", "c"}),
             ("e", "d", {"d"}),            # d is assigned again before e's last read: kept
             ("d", "d + 1e5", {"d"}),
             ("f", "a", {"a"}),            # f is assigned again (an adjoint): kept
             ("f", "f + e", {"f", "e"}),
             ("out0", "f", {"f"}),         # an output: kept
             ("out1", "c * e", {"c", "e"})]
    got = c_backend.without_copies(stmts)
    assert [t for t, _, _ in got] == ["a", "d", "e", "d", "f", "f", "out0", "out1"]
    assert got[1] == ("d", "sin(a) + a", {"a"}) and got[-1] == ("out1", "a * e", {"a", "e"})
    assert got[3] == ("d", "d + 1e5", {"d"})  # a number's exponent is not a name


def test_split_kernels_below_half_parts_from_take_vector_extension_parts_of_whole_cost(monkeypatch):
    """Above c_split.VECTOR_UP_TO and up to HALF_PARTS_FROM statements (the 10- and
    20-link pendulums' Jacobians), parts in the vector extension cut at the whole PART
    budget; above HALF_PARTS_FROM at LANES_PART of it."""
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 0)
    stmts = [(f"v{k}", f"x * {k}.0", {"x"}) for k in range(40)] + [("out0", "v39", {"v39"})]
    def parts(source):
        return source.count("XC_PART void f_part") // 2
    src = c_split.split_kernel(stmts, {"x": 0}, "f", "int f(ptrdiff_t n)", [], 1, 1, 10, 64, c_backend._table,
                               c_backend.packed_decl("f"))
    assert "xc_v v0 = " in src and parts(src) == 5
    monkeypatch.setattr(c_split, "HALF_PARTS_FROM", 20)
    src = c_split.split_kernel(stmts, {"x": 0}, "f", "int f(ptrdiff_t n)", [], 1, 1, 10, 64, c_backend._table,
                               c_backend.packed_decl("f"))
    assert parts(src) == 9


def test_parts_are_cut_by_cost_and_a_call_counts_more():
    stmts = [("a", "x * 2.0", {"x"}), ("b", "sin(a) + xc_square(a)", {"a"}), ("c", "a + b", {"a", "b"}),
             ("d", "c * c", {"c"})]
    assert [c_split.cost(rhs) for _, rhs, _ in stmts] == [1, 1 + c_split.CALL_COST, 1, 1]
    # the call above the budget makes a part of its own; plain statements share one
    chunks = c_split.chunked(stmts, 3)
    assert [[t for t, _, _ in ch] for ch in chunks] == [["a"], ["b"], ["c", "d"]]
    assert [len(ch) for ch in c_split.chunked(stmts, c_split.CALL_COST + 3)] == [3, 1]


def test_the_cache_key_changes_with_the_flags_of_the_parts(monkeypatch):
    key = c_build.cache_key("int f(void) { return 0; }")
    monkeypatch.setattr(c_split, "UNIT_FLAGS", ("-O2",))
    assert c_build.cache_key("int f(void) { return 0; }") != key


def test_one_function_kernels_get_their_optimisation_level_by_size(monkeypatch):
    """c_build.SIZED_FROM: -O1 above it, -O3 below, without vector epilogues (gcc's
    --param) under both; only the per-point kernel (its mark), only with OpenMP's simd
    loops; the rule is part of the cache key."""
    openmp, plain = c_build.BUILDS[0][0], c_build.BUILDS[-1][0]
    assert "-fopenmp" not in plain
    body = c_build.POINT_MARK + "f(void)\n{\n" + "    x = 1;\n" * (c_build.SIZED_FROM + 1) + "}\n"
    small = c_build.POINT_MARK + "f(void)\n{\n    x = 1;\n}\n"
    nomask = c_build.SIZED_GCC_FLAGS
    assert c_build.sized_flags(body, openmp, True) == ("-O1", *nomask)
    assert c_build.sized_flags(small, openmp, True) == nomask  # -O3, the build's own
    assert c_build.sized_flags(body, openmp, False) == ("-O1",)  # clang: no gcc --param
    assert c_build.sized_flags(body, plain, True) == ()  # no omp simd: -O3 vectorizes
    assert c_build.sized_flags(body.replace("one point", "a loop"), openmp, True) == ()  # tensor kernels
    key = c_build.cache_key(body)
    monkeypatch.setattr(c_build, "SIZED_FROM", 10**6)
    assert c_build.cache_key(body) != key


def test_a_kernel_above_sized_from_is_built_at_its_level(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    runs = compiler_runs(monkeypatch)
    program = random_program(40, n_vars=3, seed=7)
    g = compile_grad(program, backend="c")
    assert c_split.UNIT_MARK not in g.source and g.source.count(";\n") > c_build.SIZED_FROM
    built = [a for a in runs if "kernel.c" in a]
    assert len(built) == 1 and "-O1" in built[0] and built[0].index("-O1") > built[0].index("-O3")  # the last -O wins
    rng = np.random.default_rng(6)
    x = [rng.uniform(0.2, 0.9, 37) for _ in g.inputs]
    v, grads = g(*x)
    rv, rgrads = compile_grad(program)(*x)
    np.testing.assert_allclose(v, rv, rtol=1e-12)
    for a, b in zip(grads, rgrads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("vector", [True, False])
def test_vector_extension_units_get_their_flags_and_blocks_of_whole_vectors(monkeypatch, vector):
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 10**9 if vector else 0)
    stmts = [("a", "sin(x)", {"x"}), ("b", "a * x", {"a", "x"}), ("out0", "a + b", {"a", "b"})]
    src = c_split.split_kernel(stmts, {"x": 0}, "f", "int f(ptrdiff_t n)", [], 1, 1, 1, 64, c_backend._table,
                               c_backend.packed_decl("f"))
    units = c_split.split_units(src)
    assert len(units) > 2 and c_split.is_driver(units[-1])  # the driver: c_build.driver_object's flags
    units = units[:-1]
    lanes, simd = c_split.UNIT_FLAGS + c_split.LANES_FLAGS, c_split.UNIT_FLAGS + c_split.SIMD_FLAGS
    assert all(c_split.unit_flags(u) == (simd if vector else lanes) for u in units)
    assert all(c_split.unit_flags(u, gnu=False) == c_split.UNIT_FLAGS for u in units)  # clang
    assert (f"#define XC_BLOCK (XC_VL * {c_split.LANES_VECTORS})" in src) != vector
    key = c_build.cache_key(src)
    monkeypatch.setattr(c_split, "LANES_FLAGS", ())
    assert c_build.cache_key(src) != key
    key = c_build.cache_key(src)
    monkeypatch.setattr(c_split, "SIMD_FLAGS", ())
    assert c_build.cache_key(src) != key


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
def test_a_ten_thousand_operation_gradient_builds_as_vector_parts_sharing_units(monkeypatch, tmp_path):
    """The scaling suite's 10⁴-operation random DAG (27k statements in its gradient),
    built cold as parts in parallel, matching NumPy over a ragged last block. (Its
    build time is measured by bench/suite_scaling.py, not asserted here.)"""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    program = random_program(int(10_000 / 2.1), seed=1)
    g = compile_grad(program, backend="c")
    parts = g.source.count("XC_PART void f_grad_part") // 2  # declared, then defined
    assert parts > 20 and c_split.MIN_UNITS <= len(c_split.split_units(g.source)) < parts
    assert "xc_lanes_sin(" in g.source  # above VECTOR_UP_TO: vector-extension parts
    rng = np.random.default_rng(3)
    x = [rng.uniform(0.2, 0.9, 300) for _ in g.inputs]
    v, grads = g(*x)
    rv, rgrads = compile_grad(program)(*x)
    np.testing.assert_allclose(v, rv, rtol=1e-12)
    for a, b in zip(grads, rgrads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_vector_extension_parts_in_float32(monkeypatch, tmp_path, threads):
    """Parts in the vector extension (above VECTOR_UP_TO) through dtypes' float rewrite:
    XC_VL floats a vector, float lane wrappers; over a ragged block, an input broadcast
    at stride 0, and one point."""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 20)
    monkeypatch.setattr(c_backend, "PART", 60)
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 0)
    program = random_program(40, n_vars=3, seed=5)
    g32 = compile_grad(program, backend="c", dtype="float32", threads=threads)
    assert "xc_lanes_" in g32.source and "double" not in g32.source.split("*/", 1)[1]
    g64 = compile_grad(program)
    rng = np.random.default_rng(4)
    n = 2 * c_backend.BLOCK + 3
    for args in ([rng.uniform(-2, 2, n), 0.7, rng.uniform(-2, 2, n)], [0.3, -1.1, 0.9]):
        got, want = g32(*args), g64(*args)
        for a, b in zip([got[0], *got[1]], [want[0], *want[1]]):
            assert np.ndim(a) == 0 or a.dtype == np.float32  # one point: Python floats
            np.testing.assert_allclose(np.asarray(a, float), b, rtol=2e-4, atol=2e-4)


def test_declarations_are_typed_without_the_c_parser(tmp_path, monkeypatch):
    """c_build.load types the generated declarations itself (functions_of; ffi.cdef
    took 60 ms on the 10-link pendulum's): the same function types and addresses as
    ffi.cdef + ffi.dlopen give, for a scalar and a tensor kernel; a declaration of
    another form is left to ffi.cdef."""
    import cffi
    from exprcompiler.backends import c_source
    from exprcompiler.dtypes import c_source_float
    from exprcompiler.frontend import to_trace
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    for trace in (to_trace("x * y + sin(x)"), to_trace("sum(x * y)", {"x": ("n",), "y": ("n",)})):
        gen = c_source.generate(trace, func_name="f", columns=True)
        ffi, lib = c_build.load(gen.text, gen.decl)
        assert isinstance(lib, c_build.Library)
        ref = cffi.FFI()
        ref.cdef(gen.decl)
        ref_lib = ref.dlopen(str(c_build.build(gen.text)))
        names = [name for name, _, _ in c_build.functions_of(gen.decl)]
        assert len(names) == gen.decl.count(";") >= 2
        for name in names:
            assert ffi.typeof(getattr(lib, name)) is ref.typeof(getattr(ref_lib, name))
            assert int(ffi.cast("uintptr_t", getattr(lib, name))) == int(ref.cast("uintptr_t", getattr(ref_lib, name)))
    decl = c_source_float(c_source.generate(to_trace("x * y"), func_name="g").decl)
    assert c_build.functions_of(decl) == [
        ("g", "int", ["ptrdiff_t", "int", "float *", "ptrdiff_t", "float *", "ptrdiff_t", "float *", "ptrdiff_t"]),
        ("g_packed", "int", ["float *", "float *"])]
    for other in ["int f(void);", "int f(struct s *p);", "int f(double a[3]);", "int f(int (*g)(int));",
                  "int f(int a); junk", "typedef int t; int f(t a);", "unsigned f(int a);"]:
        assert c_build.functions_of(other) is None, other


def test_units_group_consecutive_parts_of_about_equal_weight(monkeypatch):
    monkeypatch.setattr(c_split, "MIN_UNITS", 1)
    assert c_split.units_of([5, 1, 1, 1, 1, 5, 1, 1, 1, 1], 9) == [0, 5]
    assert c_split.units_of([5, 1, 1, 1, 1, 5, 1, 1, 1, 1], 100) == [0]
    monkeypatch.setattr(c_split, "MIN_UNITS", 4)
    assert len(c_split.units_of([1] * 10, 100)) == 4 and c_split.units_of([3], 1) == [0]
    # vector-extension parts by their lines (calls are cheap there), `omp simd` ones by cost
    monkeypatch.setattr(c_split, "MIN_UNITS", 2)
    monkeypatch.setattr(c_split, "VECTOR_UP_TO", 0)
    stmts = [(f"a{k}", "sin(x)", {"x"}) for k in range(30)] + \
        [(f"b{k}", f"a{k} * x", {f"a{k}", "x"}) for k in range(30)] + [("out0", "b29 + a0", {"b29", "a0"})]
    units = c_split.split_units(c_split.split_kernel(stmts, {"x": 0}, "f", "int f(ptrdiff_t n)", [], 1, 1,
                                                      2 * c_split.CALL_COST, 64, c_backend._table,
                                                      c_backend.packed_decl("f")))[:-1]
    lines = [u.split(c_split.UNIT_MARK)[-1].count(";\n") for u in units]
    assert len(units) == 2 and abs(lines[0] - lines[1]) < 0.2 * sum(lines), lines
