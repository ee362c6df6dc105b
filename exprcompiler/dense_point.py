"""One point of a dense Jacobian or Hessian compiled to C: `J(**floats)`, `J(*floats)`
and `J.at(x)` straight to the kernel's packed entry, the result arrays made by that
entry.

Where it sits: jacobians.compile_jacobian / compile_hessian ask api._build for a
PointCompiled, which it makes where `PointCompiled.fits` the kernel (C, float64, a
scalar trace, with the packed entry of doubles), else an api.Compiled. Every other
call (arrays, a batch, `out=`, anything not plain numbers) takes api.Compiled's path.

Why: the general one-point path converts the numbers through cffi, gets the outputs
back as a list of floats and builds the arrays from it (for the 6-link pendulum's
7x14 Jacobian, 105 floats); `at` copied the values and the Jacobian out of the
buffer, and did not take the C entry at all when the inputs' order is not the `wrt`
order (the front end orders a SymPy vector's symbols its own way, and the pendulum's
forcing reads q0 and u0 nowhere, so with_wrt appends them). Here, from the second
call with numbers on (api.Compiled learns its direct call then, so one call never
loads c_entry), a call by position or by name is api.Compiled's direct call into
c_entry's entry, which reads the numbers (keywords by the inputs' names), runs the
kernel and returns new arrays of its outputs (`results`: blocks made in C, no
views made in Python); `at` is c_entry's `at`, which reorders x into the kernel's
inputs itself. Measured with benchmarks/bench_dense_point.py (thread CPU, medians
of 21 interleaved rounds, load 5-7; × symengine's Lambdify(llvm) on the state
vector in the same run), 3 / 6 / 10 links: J(**floats) 0.78 / 1.29 / 1.68x before,
0.44 / 0.59 / 0.94x now (2.1 / 4.3 / 8.3 µs; the rest of the gap to J(*floats) is
CPython's own cost of **kwargs, 22 names at 10 links); J(*floats) 0.60 / 0.99 /
1.33x before, 0.27 / 0.33 / 0.55x now; J.at(x) 0.46 / 0.73 / 0.86x before, 0.18 /
0.26 / 0.46x now (0.86 / 1.9 / 4.1 µs), of which the kernel's packed entry is 0.41
/ 1.38 / 2.93 µs (the split kernels' own entry: c_split.point_entry).
"""

from __future__ import annotations

import math

import numpy as np

from . import api
from .backends import c_entry
from .dtypes import F64


def results(kind: str, m: int, n: int, packed: bool):
    """How a call returns the outputs (c_entry.spec_code's nesting of floats and
    blocks): a Jacobian (values (m,), (m, n)), a Hessian (value, (n,), (n, n)); with
    `packed` (for `at`) a single value a float, as packed.PackedCall returns it."""
    Block = c_entry.Block
    if kind == "hessian":
        return 0, Block(1, (n,)), Block(1 + n, (n, n))
    if packed and m == 1:
        return 0, Block(1, (1, n))
    return Block(0, (m,)), Block(m, (m, n))


def assembler(kind: str, m: int, n: int, packed: bool):
    """out -> the results of `results(kind, m, n, packed)` as views of the array `out`
    (the cffi path, without the extension)."""
    spec = results(kind, m, n, packed)

    def build(item, out):
        if isinstance(item, c_entry.Block):
            return out[item.start:item.start + math.prod(item.shape)].reshape(item.shape)
        if isinstance(item, tuple):
            return tuple(build(i, out) for i in item)
        return float(out[item])
    return lambda out: build(spec, out)


class PointCompiled(api.Compiled):
    """api.Compiled with the quick one-point paths of the module docstring."""

    @staticmethod
    def fits(kernel, signature, dtype) -> bool:
        """Whether the kernel has the packed C entry of doubles these paths call."""
        return dtype is None and not signature.tensor and bool(signature.inputs) and \
            getattr(kernel.packed, "c_entry", None) is not None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._direct = None  # api.Compiled has none for a layout: ours, learnt as its own is

    def at(self, x, seed=None, /, **data):
        """One point with the `wrt` variables packed in the vector `x`: see api.Compiled.at."""
        if self._direct is None:
            self._learn_direct()
        return self.at(x, seed, **data)  # the instance's own `at`, set by _learn_direct

    def _learn_direct(self) -> None:
        """The direct call (c_entry's, by position or name, checking its arguments;
        none without the extension) and `at` (instance attributes: `at` looked up later
        is the entry itself)."""
        from .packed import PackedCall
        general = PackedCall(self, self._run_packed)  # checks and copies: every other `at` call
        m, n = general.m, general.n
        fn, from_buffer, array = self._run_packed.c_entry
        address, n_in, n_out = self._run_packed.c_address, general.n_in, general.n_out
        # x (wrt order) -> the kernel's inputs, where every input is a variable
        order = None
        if not general.x_is_input and not len(general.seed_pos) and not general.data_pos:
            order = np.empty(n_in, dtype=np.intp)
            order[general.x_pos] = np.arange(n)
        native = c_entry.load()
        if native is not None:
            code, blocks = c_entry.spec_code(results(self.kind, m, n, False), n_out)
            self._direct = native.call_entry(address, n_in, n_out, fn, code, tuple(self.inputs), np.empty, blocks)
            self._direct_checks = True
            code, blocks = c_entry.spec_code(results(self.kind, m, n, True), n_out)
            at = native.at_entry(address, n_in, n_out, fn, general, np.empty, code, blocks,
                                 None if order is None else tuple(order.tolist()))
        else:
            self._direct = False  # api.Compiled's point path, through cffi
            at = _cffi_at(fn, from_buffer, array, general, assembler(self.kind, m, n, True), order)
        self.at = at if general.x_is_input or order is not None else general


def _cffi_at(fn, from_buffer, array, general, assemble, order):
    """c_entry's `at` in Python over cffi, where the extension does not load: a
    float64 vector of the n variables (the kernel's inputs, or them in `order`), else
    general(x, seed, **data)."""
    n_in, n_out, empty, ndarray = general.n_in, general.n_out, np.empty, np.ndarray

    def at(x, seed=None, /, **data):
        """One point, the variables packed in x (see exprcompiler.packed)."""
        if seed is not None or data or type(x) is not ndarray or x.shape != (n_in,) or x.dtype is not F64 \
                or not x.flags.c_contiguous:
            return general(x, seed, **data)
        buf = x if order is None else x.take(order)
        out = empty(n_out)
        if fn(from_buffer(array, buf), from_buffer(array, out)):
            raise MemoryError("the C kernel could not allocate its tape")
        return assemble(out)
    return at


__all__ = ["PointCompiled", "results", "assembler"]
