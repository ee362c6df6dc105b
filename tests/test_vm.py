"""The tape VM backend (backend="vm", exprcompiler/backends/vm_*.py): scalar traces
encoded as programs of one C interpreter compiled once per cache.

Checked against the reference interpreter, and bit for bit against the C backend's
one-function kernels (same C expressions, same libm and libmvec variants at the same
points), on random programs and on every op of the op table at edge points; gradients
against central differences and SymPy; the 3-link pendulum's Jacobian against the
NumPy backend's; bad input and corrupted programs refused (by Python, and by the VM's
own check of every field, which returns an error code instead of running).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprcompiler import compile_expr, compile_grad, compile_jacobian
from exprcompiler import ops as _ops
from exprcompiler.backends import c_backend, c_build, vm_backend, vm_source
from exprcompiler.frontend import to_trace
from exprcompiler.randexpr import random_program
from exprcompiler.trace import interpret
from exprcompiler.trace.ir import Instr, Trace

from conftest import examples, in_threads

HAVE_CC = c_build.shutil.which("cc") is not None or c_build.shutil.which("gcc") is not None
if not HAVE_CC:
    pytest.skip("no C compiler on this machine: the VM is compiled once, with it", allow_module_level=True)

EDGES = (0.0, -0.0, math.inf, -math.inf, math.nan, 1e308, -1e308, 5e-324, -5e-324, 1e-300, 1.0, -1.0)
# Against the interpreter (NumPy's loops, not libmvec): without the huge values, whose
# terms cancel in a gradient and turn a last-bit difference of sin(1e308) into any value.
MODERATE = tuple(e for e in EDGES if not 1e300 < abs(e) < math.inf)


def same_bits(a, b) -> bool:
    """Equal as IEEE doubles: NaN where the other has NaN, and every other value with its
    sign (of zeros too)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    nan = np.isnan(a)
    return a.shape == b.shape and np.array_equal(nan, np.isnan(b)) and \
        np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64))


def close(a, b, rtol=1e-12) -> bool:
    """As the interpreter: inf and NaN exactly where it has them, finite values to rtol."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    finite = np.isfinite(b)
    return np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~finite & ~np.isnan(b)],
                                                                       b[~finite & ~np.isnan(b)]) and \
        np.allclose(a[finite], b[finite], rtol=rtol, atol=rtol * (1 + np.max(np.abs(b[finite]), initial=0)))


def flat(result) -> list:
    return [x for item in result for x in flat(item)] if isinstance(result, (list, tuple)) else [result]


def batch(n_inputs: int, n: int, seed: int, edges=EDGES) -> list:
    """Inputs over n points: normal values, and every edge value in some of them."""
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-2, 2, n) for _ in range(n_inputs)]
    for k, x in enumerate(xs):
        x[k % 3::3][:len(edges)] = edges[:len(x[k % 3::3])]
    return xs


# -- random programs ---------------------------------------------------------------

@settings(max_examples=examples(25), deadline=None)
@given(seed=st.integers(0, 10**6), size=st.integers(1, 40), n=st.sampled_from([1, 3, 64, 67, 130]))
def test_random_gradients_match_the_interpreter(seed, size, n):
    g = compile_grad(random_program(size, n_vars=3, seed=seed), backend="vm")
    xs = batch(len(g.inputs), n, seed, MODERATE)
    got = flat(g(*xs))
    want = interpret(g.trace, dict(zip(g.inputs, xs)))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert close(a, np.broadcast_to(b, a.shape)), (a, b)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_gradients_are_the_c_kernels_bits(seed):
    """One-function C kernels (small traces): the same bits at every batch size (the
    last n % LANES points through scalar libm in both), for one point given as numbers,
    and with a scalar broadcast."""
    program = random_program(25, n_vars=4, seed=seed)
    g_vm, g_c = compile_grad(program, backend="vm"), compile_grad(program, backend="c")
    k = len(g_vm.inputs)
    assert k >= 3
    for n in (1, 2, 5, 64, 67, 1001):
        xs = batch(k, n, seed + n)
        for a, b in zip(flat(g_vm(*xs)), flat(g_c(*xs))):
            assert same_bits(a, b), n
    xs = batch(k, 99, seed)
    xs[1] = np.float64(0.5)
    assert all(same_bits(a, b) for a, b in zip(flat(g_vm(*xs)), flat(g_c(*xs))))
    point = [0.3, -0.7, 1.1, 2.0][:k]
    assert all(same_bits(a, b) for a, b in zip(flat(g_vm(*point)), flat(g_c(*point))))
    assert all(same_bits(a, b) for a, b in zip(flat(g_vm.at(np.array(point))), flat(g_c.at(np.array(point)))))


def test_threads_and_concurrent_calls_give_the_same_bits():
    program = random_program(30, n_vars=3, seed=5)
    one, two = compile_grad(program, backend="vm", threads=1), compile_grad(program, backend="vm", threads=2)
    xs = batch(len(one.inputs), 1001, 5)
    want = flat(one(*xs))
    assert all(same_bits(a, b) for a, b in zip(flat(two(*xs)), want))
    failures = []

    def work(k):
        for _ in range(20):
            if not all(same_bits(a, b) for a, b in zip(flat(one(*xs)), want)):
                failures.append(k)
    in_threads(work)
    assert not failures


# -- every op of the table ---------------------------------------------------------

def every_op_trace() -> tuple[Trace, list]:
    """A raw trace (no builder: no folding or identities) with every VM opcode: each op
    on its own inputs, and with each non-empty set of its arguments constants (all
    constants included: the encoder loads one into a register). Also an input that is
    an output, a constant output and a copy. Returns the trace and the inputs' domains."""
    instrs, labels, outputs, domains = [], [], [], []

    def add(ins, label=None) -> int:
        instrs.append(ins)
        labels.append(label)
        return len(instrs) - 1

    from itertools import product
    for name in vm_source.vm_ops():
        op = _ops.OPS[name]
        for kinds in product("rk", repeat=op.arity):
            args = []
            for j, kind in enumerate(kinds):
                lo, hi = op.domain[j]
                if kind == "r":
                    args.append(add(Instr("input", (), (("name", f"{name}_{''.join(kinds)}_{j}"),))))
                    domains.append((lo, hi))
                else:
                    args.append(add(Instr("const", (), (("value", (lo + hi) / 2 + 0.125 * (lo != hi)),))))
            outputs.append((f"{name}_{''.join(kinds)}", add(Instr(name, tuple(args)))))
    x = add(Instr("input", (), (("name", "x"),)))
    domains.append((-3.0, 3.0))
    outputs += [("x_again", x), ("three", add(Instr("const", (), (("value", 3.0),)))),
                ("copied", add(Instr("copy", (outputs[0][1],))))]
    return Trace(instrs, labels, outputs), domains


def op_inputs(trace: Trace, domains, n: int) -> list:
    """Per input: points of its op's domain and every edge value (its op's own edges too)."""
    rng = np.random.default_rng(1)
    xs = []
    for k, (lo, hi) in enumerate(domains):
        x = rng.uniform(lo, hi, n)
        x[k % 5: k % 5 + len(EDGES)] = EDGES
        xs.append(x)
    return xs


@pytest.mark.slow   # (several seconds: run with the slow tests, in CI too)
def test_every_op_against_the_interpreter_and_the_c_kernels_bits(monkeypatch):
    """Every opcode over a batch against the interpreter; at each of its points, one point
    at a time, the C kernel's bits. (Over a batch the C kernel of all ops is one loop,
    which gcc leaves scalar when one op has no vector form, digamma's say, where each VM
    op is its own loop; the batch's bits are the random programs' test above. Outputs
    of constants only are left out of the bits: gcc folds tgamma(0.125) at compile time.)"""
    trace, domains = every_op_trace()
    f_vm = compile_expr(trace, backend="vm")
    program = vm_backend.encode(trace)
    assert set(program.code[:, 0].tolist()) == set(range(len(vm_source.OPCODES)))  # every opcode runs
    xs = op_inputs(trace, domains, len(EDGES) + 7)
    want = interpret(trace, dict(zip(f_vm.inputs, xs)))
    for (name, _), a, w in zip(trace.outputs, flat(f_vm(*xs)), want):
        # NumPy's loops against libm's and libmvec's last bits; polygamma near its poles
        assert close(a, np.broadcast_to(w, a.shape), rtol=1e-9), (name, a, w)
    # one kernel, not parts (above c_backend.SPLIT_FROM statements, which every op's
    # outputs are): a part's loops take libmvec's vector exp, another last bit
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10 ** 6)
    f_c = compile_expr(trace, backend="c")
    folded = {name for name, v in trace.outputs
              if trace.instrs[v].op != "const" and all(trace.instrs[a].op == "const" for a in trace.instrs[v].args)}
    for i in range(len(xs[0])):
        point = [float(x[i]) for x in xs]
        for (name, _), a, b in zip(trace.outputs, f_vm(*point), f_c(*point)):
            assert name in folded or same_bits(a, b), (name, point, a, b)


def test_the_vm_source_is_the_op_tables():
    """Every elementwise op the C backend renders is a VM op, spelled as c_backend spells it."""
    ops = vm_source.vm_ops()
    assert {n for n, op in _ops.OPS.items() if op.elementwise and op.c and op.arity > 0} == set(ops)
    source = vm_source.generate()
    assert source == vm_source.generate()  # one cache entry
    for name in ops:
        spelled = _ops.OPS[name].c
        assert spelled in source, name
    assert "xc_pow(a[i], kb)" in source and "a[i] * kb" in source


# -- derivatives -------------------------------------------------------------------

@pytest.mark.parametrize("seed", [2, 3])
def test_gradients_against_finite_differences_and_sympy(seed):
    import sympy as sp
    from exprcompiler.trace.to_sympy import to_sympy
    program = random_program(12, n_vars=3, seed=seed)
    g = compile_grad(program, backend="vm")
    rng = np.random.default_rng(seed)
    k = len(g.inputs)
    point = rng.uniform(-1, 1, k)
    value, grad = g(*point)
    h = 1e-6
    for j in range(k):
        up, down = point.copy(), point.copy()
        up[j] += h
        down[j] -= h
        assert abs(grad[j] - (g(*up)[0] - g(*down)[0]) / (2 * h)) < 1e-6 * (1 + abs(grad[j]))
    expr = to_sympy(to_trace(program))[0]
    by_name = {s.name: s for s in expr.free_symbols}
    symbols = [by_name.get(nm, sp.Symbol(nm)) for nm in g.inputs]
    at = dict(zip(symbols, point.tolist()))
    assert abs(float(expr.evalf(subs=at)) - value) < 1e-12 * (1 + abs(value))
    for j, s in enumerate(symbols):
        exact = float(sp.diff(expr, s).evalf(subs=at))
        assert abs(grad[j] - exact) < 1e-11 * (1 + abs(exact)), (j, grad[j], exact)


def test_three_link_pendulum_jacobian_matches_numpy():
    from exprcompiler.bench.mechanics import exact, pendulum, random_states
    model = pendulum(3)
    X = random_states(3, 67)
    J_vm = compile_jacobian(list(model.exprs), wrt=model.names, backend="vm")
    J_np = compile_jacobian(list(model.exprs), wrt=model.names)
    arrays = {name: X[:, k] for k, name in enumerate(model.names)}
    for a, b in zip(J_vm(**arrays), J_np(**arrays)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    values, jac = J_vm(**arrays)
    np.testing.assert_allclose(np.hstack([values, jac.reshape(len(X), -1)]), exact(3, X), rtol=1e-11, atol=1e-13)
    one = J_vm(**{name: float(X[5, k]) for k, name in enumerate(model.names)})
    np.testing.assert_allclose(one[1], jac[5], rtol=1e-13, atol=1e-16)  # scalar libm against libmvec
    out = (np.empty_like(values), np.empty_like(jac))
    assert J_vm(**arrays, out=out)[1] is out[1] and np.array_equal(out[1], jac)


# -- what it refuses ---------------------------------------------------------------

def test_bad_input_is_refused_with_clear_errors():
    g = compile_grad("x * sin(y)", backend="vm")
    with pytest.raises(ValueError, match="broadcast"):
        g(np.ones(3), np.ones(4))
    with pytest.raises((TypeError, ValueError), match="y"):
        g(np.ones(3), np.array(["a", "b", "c"]))
    with pytest.raises(TypeError, match="missing"):
        g(np.ones(3))
    with pytest.raises(ValueError, match="backend 'vm'.*shape"):
        compile_grad("sum(x * x)", shapes={"x": (3,)}, backend="vm")
    with pytest.raises(ValueError, match="backend 'vm'.*float64"):
        compile_grad("x * y", backend="vm", dtype="float32")
    with pytest.raises(ValueError, match="threads"):
        compile_grad("x * y", backend="numpy", threads=2)


def test_a_corrupted_program_gets_an_error_code_not_a_crash():
    trace = to_trace("sin(x) * y + 2.5")
    program = vm_backend.encode(trace)
    x, y = np.linspace(-1, 1, 70), np.linspace(0, 2, 70)
    rc, outs = vm_backend.run_raw(program.code, program.consts, program.nregs, [x, y], program.n_out)
    assert rc == 0 and np.allclose(outs[0], np.sin(x) * y + 2.5)
    reg_op = next(k for k, row in enumerate(program.code) if vm_source.field_kinds(vm_source.OPCODES[row[0]])[1] == 1
                  and vm_source.OPCODES[row[0]].op)
    store = next(k for k, row in enumerate(program.code) if row[0] == vm_source.STORE)
    load = next(k for k, row in enumerate(program.code) if row[0] == vm_source.LOAD)
    with_const = next(k for k, row in enumerate(program.code) if "k" in vm_source.OPCODES[row[0]].kinds)
    const_field = 2 + vm_source.OPCODES[program.code[with_const, 0]].kinds.index("k")
    corruptions = [(0, 0, len(vm_source.OPCODES)), (0, 0, -1), (reg_op, 1, program.nregs), (reg_op, 2, -5),
                   (reg_op, 2, 2**31 - 1), (reg_op, 1, int(program.code[reg_op, 2])), (reg_op, 4, 1),
                   (store, 1, program.n_out), (load, 2, 2), (with_const, const_field, len(program.consts)),
                   (with_const, const_field, -1)]
    for k, field, value in corruptions:
        code = program.code.copy()
        code[k, field] = value
        rc, _ = vm_backend.run_raw(code, program.consts, program.nregs, [x, y], program.n_out)
        assert rc == -2, (k, field, value)
        with pytest.raises(vm_backend.VmError, match="instruction"):
            vm_backend.Runner(program._replace(code=code))
    rc, _ = vm_backend.run_raw(program.code, program.consts, program.nregs, [x], program.n_out)   # one input short
    assert rc == -2
    rc, _ = vm_backend.run_raw(program.code, program.consts, -1, [x, y], program.n_out)
    assert rc == -3
    with pytest.raises(ValueError, match="shape"):
        vm_backend.run_raw(program.code.reshape(-1), program.consts, program.nregs, [x, y], 1)


def test_a_loaded_program_is_the_vms_copy_and_the_run_entries_take_nothing_else():
    """The VM checks a program once, when it loads it (xc_vm_new), and keeps a copy:
    changing the arrays after cannot reach the run, another buffer is refused as a
    program, and a call's sizes are still checked on every call."""
    program = vm_backend.encode(to_trace("sin(x) * y + 2.5"))
    assert not program.code.flags.writeable and not program.consts.flags.writeable
    code, consts = program.code.copy(), program.consts.copy()
    runner = vm_backend.Runner(program._replace(code=code, consts=consts))
    point = runner.point_entry()
    code[:, 1:] = 10**6      # what a run would read out of bounds, were it not a copy
    consts[:] = np.nan
    x = np.linspace(-1, 1, 70)
    y = np.full(70, 0.5)
    out = np.empty(70)
    ffi, lib = runner.ffi, runner.lib
    cd = [ffi.from_buffer("double[]", a) for a in (x, y, out)]
    assert runner.kernel(70, 1, cd[0], 1, cd[1], 1, cd[2], 1) == 0
    assert np.allclose(out, np.sin(x) * 0.5 + 2.5, rtol=1e-14, atol=0)   # libmvec's sin: to the last bit
    assert point([0.5, 2.0]) == [math.sin(0.5) * 2.0 + 2.5]
    # the run entries take a loaded program only: not its arrays, not another buffer
    ins, st = ffi.new("double *[]", cd[:2]), ffi.new("ptrdiff_t[]", [1, 1])
    outs, os_ = ffi.new("double *[]", cd[2:]), ffi.new("ptrdiff_t[]", [1])
    for fake in (ffi.from_buffer("int[]", program.code), cd[0], ffi.new("char[]", 64)):
        with pytest.raises(TypeError):
            lib.xc_vm_run(fake, 70, 64, 1, 2, ins, st, 1, outs, os_)
        with pytest.raises(TypeError):
            lib.xc_vm_point(fake, 2, cd[0], 1, cd[2])
    handle = runner._handle
    assert lib.xc_vm_run(ffi.NULL, 70, 64, 1, 2, ins, st, 1, outs, os_) == -3
    assert lib.xc_vm_point(ffi.NULL, 2, cd[0], 1, cd[2]) == -3
    for n, block, n_in, n_out in ((-1, 64, 2, 1), (70, 0, 2, 1), (70, 63, 2, 1), (70, 8192, 2, 1),
                                  (70, 64, 1, 1), (70, 64, 3, 1), (70, 64, 2, 2)):
        assert lib.xc_vm_run(handle, n, block, 1, n_in, ins, st, n_out, outs, os_) == -3, (n, block, n_in, n_out)
    assert lib.xc_vm_point(handle, 1, cd[0], 1, cd[2]) == -3
    with pytest.raises(ValueError, match="expected 2 numbers"):
        point([1.0])


def test_one_point_with_many_outputs_gives_floats():
    """A point entry with 128 outputs or more unpacks them through NumPy: the same floats."""
    expr = " + ".join(f"sin(x{k}) * x{k + 1}" for k in range(140))
    g_vm, g_np = compile_grad(expr, backend="vm"), compile_grad(expr)
    point = [0.01 * k - 0.5 for k in range(141)]
    (v, grad), (w, want) = g_vm(*point), g_np(*point)
    assert type(v) is float and all(type(d) is float for d in grad) and len(grad) == 141
    assert math.isclose(v, w, rel_tol=1e-14) and np.allclose(grad, want, rtol=1e-14, atol=0)


def test_the_encoders_register_allocation_refuses_arrays_out_of_range():
    """vm_backend._allocate (the VM library's xc_vm_encode) on x0 * x1, then on arrays
    with one entry out of range: an error, nothing read or written out of bounds."""
    mul = vm_source.NUMBER[("mul", "rr")]
    good = dict(number=[-1, -1, mul], alt=[-1] * 3, args=[[-1] * 3, [-1] * 3, [0, 1, -1]], where=[-1] * 3,
                last=[2, 2, -1], input_index=[0, 1, -1], ostart=[0, 0, 0, 1], order=[0], cap=4)
    code, trace_of, nregs, top = vm_backend._allocate(3, **good)
    assert code.tolist() == [[vm_source.LOAD, 0, 0, 0, 0], [vm_source.LOAD, 1, 1, 0, 0], [mul, 2, 0, 1, 0],
                             [vm_source.STORE, 0, 2, 0, 0]]
    assert trace_of.tolist() == [-1, -1, 2, -1] and nregs == 3 and top == 1
    bad = [("args", [[-1] * 3, [-1] * 3, [0, 2, -1]]), ("args", [[-1] * 3, [-1] * 3, [-2, 1, -1]]),
           ("number", [-1, -1, len(vm_source.OPCODES)]), ("alt", [-1, -1, -7]), ("input_index", [-1, 1, -1]),
           ("ostart", [0, 0, 0, 2]), ("ostart", [0, 1, 0, 1]), ("order", [2**40]), ("cap", 3), ("where", [-1] * 2)]
    for key, value in bad:
        with pytest.raises(vm_backend.VmError, match="encoder"):
            vm_backend._allocate(3, **{**good, key: value})


def test_source_is_a_listing_with_escaped_names():
    import sympy as sp
    g = compile_grad("sin(x) * y", backend="vm")
    assert "# inputs:  in0 = x, in1 = y" in g.source and " sin " in g.source
    assert g.source.count("\n") == len(vm_backend.encode(g.trace).code) + 4
    odd = sp.Symbol("a*/b\nc\\")
    f = compile_expr(sp.sin(odd) * 2, backend="vm")
    assert "*/" not in f.source and "\nc" not in f.source and "\\" not in f.source
    assert f(0.5) == compile_expr(sp.sin(odd) * 2)(0.5)
