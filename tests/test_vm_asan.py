"""The tape VM (backends/vm_*.py) built with AddressSanitizer and UBSan: programs run
at batch sizes around its block and its vector width, with broadcast inputs, outputs
at strides (a Jacobian's columns), two threads, one point at a time, and corrupted
programs, which the VM must refuse with an error code before touching memory, a
loaded program whose arrays change after, and the encoder's register allocation on
arrays out of range. Every result is checked against the NumPy backend. The harness
is test_asan's (a subprocess with the sanitizer runtime preloaded and -fsanitize on
every build).
"""

from __future__ import annotations

import pytest

from test_asan import _sanitized

SCRIPT = r'''
import numpy as np
from exprcompiler import compile_grad, compile_jacobian
from exprcompiler.backends import c_build, vm_backend, vm_source
from exprcompiler.frontend import to_trace
from exprcompiler.randexpr import random_program

assert "-fsanitize=address,undefined" in " ".join(c_build.extra_flags())
calls = 0


def flat(r):
    return [x for item in r for x in flat(item)] if isinstance(r, (list, tuple)) else [np.asarray(r, float)]


def same(got, want):
    for a, b in zip(flat(got), flat(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


program = random_program(60, n_vars=4, seed=3)
g_vm, g_np = compile_grad(program, backend="vm", threads=1), compile_grad(program)
k = len(g_vm.inputs)
for n in (0, 1, 2, 3, 4, 5, 63, 64, 65, 129, 1001):
    xs = [np.linspace(-1, 1, n) + 0.1 * i for i in range(k)]
    for _ in range(2):   # the general path, then the call plan of arrays (call_plan.batch_plan)
        same(g_vm(*xs), g_np(*xs))
    xs[1] = 0.25   # broadcast (stride 0)
    for _ in range(2):
        same(g_vm(*xs), g_np(*xs))
    calls += 4
g2 = compile_grad(program, backend="vm", threads=2)
xs = [np.linspace(-1, 1, 1001) + 0.1 * i for i in range(k)]
same(g2(*xs), g_np(*xs))
point = [0.1 * i - 0.3 for i in range(k)]
same(g_vm(*point), g_np(*point))
same(g_vm.at(np.array(point)), g_np.at(np.array(point)))
calls += 3

# a Jacobian: outputs stored at strides into (n, m, n) blocks, and out=
J_vm = compile_jacobian(["x*y + exp(z/4)", "sin(x) - y*y", "x"], wrt=["w", "z", "x", "y"], backend="vm")
J_np = compile_jacobian(["x*y + exp(z/4)", "sin(x) - y*y", "x"], wrt=["w", "z", "x", "y"])
for n in (1, 3, 65):
    args = [np.linspace(-1, 1, n) + i for i in range(4)]
    same(J_vm(*args), J_np(*args))
    out = tuple(np.empty_like(a) for a in J_np(*args))
    J_vm(*args, out=out)
    same(out, J_np(*args))
    calls += 2

# corrupted programs: refused by the VM's own check (-2), nothing run
p = vm_backend.encode(to_trace("sin(x) * y + 2.5"))
x, y = np.linspace(-1, 1, 70), np.linspace(0, 2, 70)
for field, value in ((0, 10**6), (1, p.nregs), (2, -1), (2, 10**6), (3, 10**6), (4, 7)):
    for row in range(len(p.code)):
        code = p.code.copy()
        code[row, field] = value
        rc, _ = vm_backend.run_raw(code, p.consts, p.nregs, [x, y], p.n_out)
        assert rc == -2, (row, field, value, rc)
        calls += 1
rc, _ = vm_backend.run_raw(p.code, p.consts, p.nregs, [x, y], p.n_out)
assert rc == 0

# a loaded program: the VM's copy (the arrays changed after cannot reach a run), and
# calls with sizes that do not fit it refused
code = p.code.copy()
runner = vm_backend.Runner(p._replace(code=code))
code[:, 1:] = 10**6
out = np.empty(70)
ffi, lib = runner.ffi, runner.lib
cd = [ffi.from_buffer("double[]", a) for a in (x, y, out)]
assert runner.kernel(70, 1, cd[0], 1, cd[1], 1, cd[2], 1) == 0
np.testing.assert_allclose(out, np.sin(x) * y + 2.5, rtol=1e-14)
ins, st = ffi.new("double *[]", cd[:2]), ffi.new("ptrdiff_t[]", [1, 1])
outs, os_ = ffi.new("double *[]", cd[2:]), ffi.new("ptrdiff_t[]", [1])
for n, n_in, n_out in ((-1, 2, 1), (70, 3, 1), (70, 2, 2)):
    assert lib.xc_vm_run(runner._handle, n, 64, 1, n_in, ins, st, n_out, outs, os_) == -3
assert lib.xc_vm_point(ffi.NULL, 2, cd[0], 1, cd[2]) == -3
calls += 5

# the encoder's register allocation on arrays out of range: refused
mul = vm_source.NUMBER[("mul", "rr")]
good = dict(number=[-1, -1, mul], alt=[-1] * 3, args=[[-1] * 3, [-1] * 3, [0, 1, -1]], where=[-1] * 3,
            last=[2, 2, -1], input_index=[0, 1, -1], ostart=[0, 0, 0, 1], order=[0], cap=4)
assert vm_backend._allocate(3, **good)[0].shape == (4, 5)
for key, value in (("args", [[-1] * 3, [-1] * 3, [0, 2, -1]]), ("number", [-1, -1, 10**6]),
                   ("input_index", [-1, 1, -1]), ("ostart", [0, 0, 0, 2]), ("order", [2**40]), ("cap", 3)):
    try:
        vm_backend._allocate(3, **{**good, key: value})
        raise AssertionError(key)
    except vm_backend.VmError:
        calls += 1
print(f"SANITIZED VM OK: {calls} calls")
'''


@pytest.mark.slow
def test_the_vm_is_clean_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    _sanitized(tmp_path, SCRIPT, "SANITIZED VM OK")
