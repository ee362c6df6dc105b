"""Misaligned float64 arrays never reach a C kernel as a pointer.

np.frombuffer at an odd offset (or a view of bytes) makes an array that is
C-contiguous but not aligned for its type; np.ascontiguousarray leaves it so, and
cffi's from_buffer takes it. A misaligned double * is undefined behaviour in C. Every
call path that hands an array to C must copy such an input (the results are those of
an aligned copy) and refuse such an out= array (as it refuses a strided one).

The pointers are watched where they are made: cffi's from_buffer is replaced by a
spy that records each pointer's offset from its type's alignment (installed before
the functions are compiled: c_tensor keeps the function it finds then). The
one-point extension (backends/c_entry.py) makes its pointers in C, so its test calls
it with a `general` of its own, to which it must hand a misaligned vector.
"""

from __future__ import annotations

import _cffi_backend
import cffi
import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_hessian, compile_jacobian
from exprcompiler.backends import c_entry, vm_backend

_FFI = cffi.FFI()


def unaligned(values, dtype=np.float64) -> np.ndarray:
    """A writable C-contiguous copy of `values` one byte off its type's alignment."""
    a = np.ascontiguousarray(values, dtype)
    raw = np.zeros(a.nbytes + a.itemsize, np.uint8)
    x = raw[1:1 + a.nbytes].view(dtype).reshape(a.shape)
    x[...] = a
    assert x.flags.c_contiguous and not x.flags.aligned
    return x


class Spy:
    """Every pointer cffi's from_buffer made since the last clear(): (its address
    modulo its item's size) — 0 for an aligned one."""

    def __init__(self, real):
        self.real, self.offsets = real, []

    def __call__(self, cdecl, buffer, require_writable=False):
        p = self.real(cdecl, buffer, require_writable)
        self.offsets.append(int(_FFI.cast("uintptr_t", p)) % _FFI.sizeof(cdecl.item))
        return p

    def check(self):
        assert self.offsets, "no pointer was made through from_buffer"
        assert not any(self.offsets), f"misaligned pointers reached C: offsets {self.offsets}"
        self.offsets.clear()


@pytest.fixture
def spy(monkeypatch):
    s = Spy(_cffi_backend.from_buffer)
    monkeypatch.setattr(_cffi_backend, "from_buffer", s)
    return s


def same(got, want):
    if isinstance(got, tuple):
        assert isinstance(want, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            same(g, w)
    else:
        assert np.array_equal(np.asarray(got), np.asarray(want)), (got, want)


EXPR = "sin(x) * y + x**2 / (1 + y**2) + 0.3125"


@pytest.mark.parametrize("backend", ["c", "vm"])
def test_scalar_kernels_copy_misaligned_inputs(spy, backend):
    g = compile_grad(EXPR, backend=backend)
    x, y = np.linspace(-1, 1, 7), np.linspace(0.5, 2, 7)
    want = g(x, y)
    spy.offsets.clear()
    # as they are, a size-1 array (stride 0), and one that broadcasts to a contiguous view
    for args in [(unaligned(x), unaligned(y)), (unaligned(x), y), (x, unaligned(y))]:
        same(g(*args), want)
        spy.check()
    same(g(unaligned(x), unaligned([y[3]])), g(x, y[3]))
    spy.check()
    same(g(unaligned(x), unaligned(y[3])), g(x, y[3]))  # 0-d
    spy.check()
    same(g(unaligned(x), unaligned(y.reshape(1, 7))), g(x, y.reshape(1, 7)))  # x's view of (1, 7) is contiguous
    spy.check()


def test_float32_kernels_copy_misaligned_inputs(spy):
    f = compile_expr(EXPR, backend="c", dtype="float32")
    x, y = np.linspace(-1, 1, 9, dtype=np.float32), np.float32(0.75)
    want = f(x, y)
    spy.offsets.clear()
    same(f(unaligned(x, np.float32), y), want)
    spy.check()


@pytest.mark.parametrize("backend", ["c", "vm", "numpy"])
def test_misaligned_out_is_refused_naming_it(backend):
    g = compile_grad(EXPR, backend=backend)
    x = np.linspace(-1, 1, 5)
    outs = (np.empty(5), (np.empty(5), unaligned(np.zeros(5))))
    with pytest.raises(ValueError, match=r"out= array 2: must be aligned"):
        g(x, 0.5, out=outs)
    assert not outs[1][1].any()  # nothing written
    good = (np.empty(5), (np.empty(5), np.empty(5)))
    same(g(x, 0.5, out=good), g(x, 0.5))


def test_packed_at_copies_a_misaligned_vector(spy):
    g = compile_grad(EXPR.replace("0.3125", "0.4375"), backend="c")
    x = np.array([0.3, 0.7])
    want = g.at(x)
    for _ in range(3):  # the first call, then the entry it learns (the extension's, or cffi's)
        same(g.at(unaligned(x)), want)
        spy.check()


def test_the_extensions_at_hands_a_misaligned_vector_to_the_general_path():
    native = c_entry.load()
    if native is None:
        pytest.skip(f"no one-point extension here: {c_entry.why_not()}")
    g = compile_expr("x * y + 0.5625", backend="c")
    run = g._run_packed
    fn = run.c_entry[0]
    handed = []

    def general(x, seed=None, /, **data):
        handed.append(x)
        return "general"
    at = native.at_entry(run.c_address, 2, 1, fn, general, np.empty, lambda out: float(out[0]), ())
    assert at(np.array([2.0, 3.0])) == 6.5625 and not handed
    x = unaligned([2.0, 3.0])
    assert at(x) == "general" and handed == [x]


def test_dense_jacobian_and_hessian_paths(spy):
    wrt = ["w", "z", "x", "y"]  # not the inputs' order: `at` reorders x
    J = compile_jacobian(["x*y + exp(z/4) + 0.0625", "sin(x) - y*w"], wrt=wrt, backend="c")
    H = compile_hessian("x**2 * y + sin(y) * x + 0.1875", backend="c")
    point = np.array([5.0, 2.1, 0.7, -1.3])
    want_at = J.at(point)
    arrays = {k: np.linspace(-1, 1, 6) + j for j, k in enumerate(J.inputs)}
    want = J(**arrays)
    hx, hy = np.linspace(-1, 1, 6), np.linspace(0, 2, 6)
    want_h = H(hx, hy)
    for _ in range(3):  # the first call, then the entries learnt at the second
        spy.offsets.clear()
        same(J.at(unaligned(point)), want_at)
        spy.check()
        same(J(**{k: unaligned(v) for k, v in arrays.items()}), want)
        spy.check()
        same(H(unaligned(hx), hy), want_h)
        spy.check()
    outs = (np.empty(6), np.empty((6, 2)), unaligned(np.zeros((6, 2, 2))))
    with pytest.raises(ValueError, match=r"out= array 2: must be aligned"):
        H(hx, hy, out=outs)


TENSOR = "0.5 * sum((X @ w - y)**2) + 0.015625 * sum(w**2)"
SHAPES = {"X": ("n", "p"), "w": ("p",), "y": ("n",)}


def test_tensor_kernels_copy_misaligned_inputs(spy):
    g = compile_grad(TENSOR, shapes=SHAPES, wrt=["w"], backend="c")
    rng = np.random.default_rng(4)
    X, w, y = rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=6)
    want = g(X, w, y)
    for _ in range(3):  # the general path, then the call plan (run_bound)
        spy.offsets.clear()
        same(g(unaligned(X), w, unaligned(y)), want)
        spy.check()
    want_at = g.at(w, X=X, y=y)
    spy.offsets.clear()
    same(g.at(unaligned(w), X=unaligned(X), y=y), want_at)
    spy.check()


def test_tensor_at_refuses_a_2d_vector_as_the_scalar_at_does():
    g = compile_grad(TENSOR, shapes=SHAPES, wrt=["w"], backend="c")
    X, y, w = np.ones((4, 3)), np.ones(4), np.array([0.5, 1.0, 2.0])
    g.at(w, X=X, y=y)
    with pytest.raises(ValueError, match=r"at\(\): x must be a vector of the 3 numbers of w; got shape \(1, 3\)"):
        g.at(w.reshape(1, 3), X=X, y=y)
    s = compile_grad("x * y")  # the scalar at(), for comparison: the same kind of refusal
    with pytest.raises(ValueError, match=r"at\(\): x must hold .*got shape \(1, 2\)"):
        s.at(np.ones((1, 2)))


def test_vm_run_raw_and_hand_made_programs(spy):
    g = compile_grad(EXPR, backend="vm")
    program = vm_backend.generate(g.trace, func_name="f").program
    x, y = np.linspace(-1, 1, 5), np.linspace(1, 2, 5)
    rc, want = vm_backend.run_raw(program.code, program.consts, program.nregs, [x, y], program.n_out)
    assert rc == 0
    spy.offsets.clear()
    code = unaligned(program.code, np.int32)
    rc, got = vm_backend.run_raw(code, unaligned(program.consts), program.nregs, [unaligned(x), y], program.n_out)
    assert rc == 0
    same(tuple(got), tuple(want))
    spy.check()
    with pytest.raises(ValueError, match="aligned"):
        vm_backend.run_raw(program.code, program.consts, program.nregs, [x, y], program.n_out,
                           outs=[np.empty(5)] * (program.n_out - 1) + [unaligned(np.zeros(5))])
    # a Program whose arrays are misaligned runs as it does (copied, not read in place);
    # one whose code is not int32 is refused before C reads len(code) rows of it
    point = vm_backend.Runner(program).point_entry()
    spy.offsets.clear()
    moved = program._replace(code=unaligned(program.code, np.int32), consts=unaligned(program.consts))
    assert vm_backend.Runner(moved).point_entry()([0.3, 0.7]) == point([0.3, 0.7])
    spy.check()
    with pytest.raises(vm_backend.VmError, match="expected int32 code"):
        vm_backend.Runner(program._replace(code=program.code.astype(np.int16)))


# The same paths with every kernel (and the one-point extension) built with the
# sanitizers (test_asan's subprocess): UBSan reports a load through a misaligned
# double *, so the old paths fail it, whatever the results.
SANITIZED = r'''
import numpy as np
from exprcompiler import compile_grad, compile_jacobian
from exprcompiler.backends import c_build, c_entry
assert "-fsanitize=address,undefined" in " ".join(c_build.extra_flags())
assert c_entry.load() is not None, c_entry.why_not()


def unaligned(values):
    a = np.ascontiguousarray(values, np.float64)
    raw = np.zeros(a.nbytes + 8, np.uint8)
    x = raw[1:1 + a.nbytes].view(np.float64).reshape(a.shape)
    x[...] = a
    assert not x.flags.aligned
    return x


def same(got, want):
    if isinstance(got, tuple):
        for g, w in zip(got, want):
            same(g, w)
    else:
        assert np.array_equal(np.asarray(got), np.asarray(want)), (got, want)


x, y = np.linspace(-1, 1, 7), np.linspace(0.5, 2, 7)
for backend in ("c", "vm"):
    g = compile_grad("sin(x) * y + x**2", backend=backend)
    for _ in range(3):
        same(g(unaligned(x), unaligned(y)), g(x, y))
        same(g(unaligned(x), unaligned(y[:1])), g(x, y[:1]))
        same(g.at(unaligned(x[:2])), g.at(x[:2]))
J = compile_jacobian(["x*y + exp(z/4)", "sin(x) - y*w"], wrt=["w", "z", "x", "y"], backend="c")
point = np.array([5.0, 2.1, 0.7, -1.3])
arrays = {k: np.linspace(-1, 1, 6) + j for j, k in enumerate(J.inputs)}
for _ in range(3):
    same(J.at(unaligned(point)), J.at(point))
    same(J(**{k: unaligned(v) for k, v in arrays.items()}), J(**arrays))
t = compile_grad("0.5 * sum((X @ w - y)**2)", shapes={"X": ("n", "p"), "w": ("p",), "y": ("n",)}, wrt=["w"],
                 backend="c")
X, w, yy = np.linspace(-1, 1, 18).reshape(6, 3), np.linspace(0, 1, 3), np.linspace(2, 3, 6)
for _ in range(3):
    same(t(unaligned(X), unaligned(w), unaligned(yy)), t(X, w, yy))
    same(t.at(unaligned(w), X=unaligned(X), y=yy), t.at(w, X=X, y=yy))
print("SANITIZED UNALIGNED OK")
'''


@pytest.mark.slow  # (kernels and the VM built with the sanitizers: about a minute)
def test_misaligned_inputs_are_clean_under_the_sanitizers(tmp_path):
    from test_asan import _sanitized
    _sanitized(tmp_path, SANITIZED, "SANITIZED UNALIGNED OK")
