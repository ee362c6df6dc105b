"""Calls of a dense Jacobian or Hessian compiled to C with nothing between the caller
and the kernel: one point (`J(**floats)`, `J(*floats)`, `J.at(x)`) through the
kernel's packed entry, and a batch of float64 arrays (`J(**arrays)`, with or without
`out=`) through its batch entry, the result arrays made or checked in C.

Where it sits: jacobians.compile_jacobian / compile_hessian ask api._build for a
PointCompiled, which it makes where `PointCompiled.fits` the kernel (C, float64, a
scalar trace, with the packed entry of doubles), else an api.Compiled. Every call
these entries do not take (lists, other dtypes, broadcasting that adds dimensions,
misaligned arrays, out= arrays that are not exactly float64 ndarrays of the result's
shape, C-contiguous, aligned, writable and apart from the inputs, threads=None above
c_run.PARALLEL_FROM points)
takes api.Compiled's path, which gives each refusal its message.

The call itself: from the second call on, where the extension loads, the object has
a class of its own (compiled_call._planned, as NumPy's) whose __call__ is c_entry's
method_entry, a C function: CPython hands it the caller's argument tuple and keyword
dict, with no Python frame and no copy of the keywords but the one CPython makes for
`**floats`; it calls c_entry's run, and api.Compiled's general path for what run
refuses. Measured by callgrind (instructions per call, deterministic: a loop of 2,000
calls between client requests, less an empty loop) on the 20-link pendulum's 21x42
Jacobian (42 inputs), the code before and after side by side: J(**floats) 66.4k
before, 38.3k now; J(*floats) 32.8k, now 28.2k; J.at(x) 28.3k, the kernel through
cffi 22.6k, symengine's Lambdify(llvm) L(x) 45.3k. What J(**floats) has left over
J(*floats), ~10k, is CPython's copy of the dict (~1.5k) and the 42 name lookups
(~8.5k; iterating the dict against a table of the names' hashes instead saved 0.6k:
not kept). `benchmarks/bench_dense_point.py --links 20 --callgrind --calls 1000`
counts the same, the earlier call as a Python method into c_entry's run, each row
from a lambda: by name 36.0k (63.8k through the method), in order 28.8k (32.9k),
symengine 45.8k. Without --callgrind it times them (thread CPU medians of 21
interleaved rounds, load 2.5; x symengine's L(x)), 3 / 6 / 10 / 20 links: J(**floats)
0.45 / 0.61 / 0.83 / 1.28x through a Python method, 0.25 / 0.34 / 0.49 / 0.73x now;
J(*floats) 0.27 / 0.37 / 0.51 / 0.70x, now 0.19 / 0.27 / 0.41 / 0.65x.

Batches: from the second call on (as for numbers: one call never loads c_entry), a
call is c_entry's run (run_entry), which binds the arrays by position or name, checks
them and the out= arrays as api.Compiled's general path does (call_args._check_out),
allocates the results where there is no out=, and calls the kernel's batch entry once
(c_entry.batch_entry). The general path spent about 50 µs a call before the kernel
ran (see c_entry's docstring); measured with benchmarks/bench_jacobian_call.py at 10⁴
states, one thread, thread CPU medians of 21 interleaved rounds over the kernel's
own time into the same arrays (cffi, pointers made once), load 2.7, 3 / 6 / 10 links:
J(**inputs) 1.33 / 1.18 / 1.10x through the general path, 1.02 / 1.03 / 1.01x now;
J(**inputs, out=) 1.26 / 1.15 / 1.08x, now 1.03 / 1.04 / 0.99x (a second run of 41
rounds, 3 / 6 links: 1.02 / 0.97x and 1.00 / 0.98x). What is left is fixed, about
2-3 µs: the buffers' export and checks, np.empty, the kernel's OpenMP region (libgomp
makes a futex call even for a team of one); this class's __call__ frame (~1 µs then)
is gone (see the call itself, above).

Why: the general one-point path converts the numbers through cffi, gets the outputs
back as a list of floats and builds the arrays from it (for the 6-link pendulum's
7x14 Jacobian, 105 floats); `at` copied the values and the Jacobian out of the
buffer, and did not take the C entry at all when the inputs' order is not the `wrt`
order (the front end orders a SymPy vector's symbols its own way, and the pendulum's
forcing reads q0 and u0 nowhere, so with_wrt appends them). Here, from the second
call with numbers on (api.Compiled learns its direct call then, so one call never
loads c_entry), a call by position or by name goes into c_entry's entry (now the
class's own __call__, above), which reads the numbers (keywords by the inputs'
names), runs the kernel and returns new arrays of its outputs (`results`: blocks
made in C, no views made in Python); `at` is c_entry's `at`, which reorders x into
the kernel's inputs itself. Measured with benchmarks/bench_dense_point.py
(thread CPU, medians of 21 interleaved rounds, load 5-7; × symengine's Lambdify(llvm) on the state
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

from . import api, compiled_call
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
        self._entry = None   # c_entry's run(out, *inputs, **inputs), learnt at the second call
        self._called = False

    def __call__(self, /, *args, out=None, **kwargs):
        """See api.Compiled.__call__. From the second call on (where the extension
        loads), the object's class is its own, whose __call__ is c_entry's method_entry:
        a point given as numbers and a batch of float64 arrays, with or without out=, go
        from the caller straight to the kernel (see the module docstring); every other
        call, and any it does not take, to api.Compiled's general path, which says what
        is wrong. This method stays the general path (and learns at the second call)."""
        if self._entry is None:
            if self._called:
                self._learn_direct()
            self._called = True
        return api.Compiled.__call__(self, *args, out=out, **kwargs)

    def at(self, x, seed=None, /, **data):
        """One point with the `wrt` variables packed in the vector `x`: see api.Compiled.at."""
        if self._direct is None:
            self._learn_direct()
        return self.at(x, seed, **data)  # the instance's own `at`, set by _learn_direct

    def _learn_direct(self) -> None:
        """The direct call (c_entry's, by position or name, checking its arguments;
        none without the extension), the run of numbers or arrays (c_entry's run_entry)
        and `at` (instance attributes: `at` looked up later is the entry itself)."""
        if self._entry is not None:
            return  # learnt (api.Compiled's call with numbers and ours both ask)
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
            self._entry = native.run_entry(address, n_in, n_out, fn, code, tuple(self.inputs), np.empty, blocks,
                                           self._batch_symbol(), np.ndarray, self._suffixes, *self._threads())
            import inspect
            self.__signature__ = inspect.signature(self)  # what inspect finds no more on a C __call__
            entry = native.method_entry(self._entry, api.Compiled.__call__, self)
            self.__class__ = compiled_call._planned(type(self), entry)
            code, blocks = c_entry.spec_code(results(self.kind, m, n, True), n_out)
            at = native.at_entry(address, n_in, n_out, fn, general, np.empty, code, blocks,
                                 None if order is None else tuple(order.tolist()))
        else:
            self._direct = self._entry = False  # api.Compiled's paths, through cffi
            at = _cffi_at(fn, from_buffer, array, general, assembler(self.kind, m, n, True), order)
        self.at = at if general.x_is_input or order is not None else general

    def _batch_symbol(self):
        """The kernel's batch entry (c_entry.batch_entry), where the arrays come back as
        a tuple (api.Compiled's layout of a Jacobian or Hessian); else None."""
        return c_entry.batch_symbol(self.source) if self._nest is tuple else None

    def _threads(self) -> tuple[int, int]:
        """(threads, parallel_from) for run_entry: the count compiled with, or (0, from)
        for threads=None, whose calls of c_run.PARALLEL_FROM points or more take the
        general path (its ThreadChoice)."""
        from .backends.c_run import PARALLEL_FROM
        if not hasattr(self, "_recipe"):  # not made by a compile_*: every batch to the general path
            return 0, 0
        threads = self._recipe[2].get("threads")
        return (0, PARALLEL_FROM) if threads is None else (threads, 0)


def _cffi_at(fn, from_buffer, array, general, assemble, order):
    """c_entry's `at` in Python over cffi, where the extension does not load: a
    float64 vector of the n variables (the kernel's inputs, or them in `order`), else
    general(x, seed, **data)."""
    n_in, n_out, empty, ndarray = general.n_in, general.n_out, np.empty, np.ndarray

    def at(x, seed=None, /, **data):
        """One point, the variables packed in x (see exprcompiler.packed)."""
        if seed is not None or data or type(x) is not ndarray or x.shape != (n_in,) or x.dtype is not F64 \
                or not (flags := x.flags).c_contiguous or not flags.aligned:
            return general(x, seed, **data)
        buf = x if order is None else x.take(order)
        out = empty(n_out)
        if fn(from_buffer(array, buf), from_buffer(array, out)):
            raise MemoryError("the C kernel could not allocate its tape")
        return assemble(out)
    return at


__all__ = ["PointCompiled", "results", "assembler"]
