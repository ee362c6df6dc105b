"""One point of a dense Jacobian or Hessian compiled to C: `J(**floats)`, `J(*floats)`
and `J.at(x)` straight to the kernel's packed entry, the results views of the one
buffer it fills.

Where it sits: jacobians.compile_jacobian / compile_hessian make their api.Compiled
a PointCompiled when the kernel is C, float64 and of a scalar trace. Every other call
(arrays, a batch, `out=`, anything not plain numbers) takes api.Compiled's path.

Why: the general one-point path converts the numbers through cffi, gets the outputs
back as a list of floats and builds the arrays from it (for the 6-link pendulum's
7x14 Jacobian, 105 floats); `at` copied the values and the Jacobian out of the
buffer, and did not take the C entry at all when the inputs' order is not the `wrt`
order (the front end orders a SymPy vector's symbols its own way, and the pendulum's
forcing reads q0 and u0 nowhere, so with_wrt appends them). Here a call is: the
numbers in input order (type-checked, so that a batch of arrays is never copied into
one array on the way to being refused), one float64 array of them, c_entry's `at` —
a new output buffer, the kernel, and the results as views of that buffer. Measured
with benchmarks/bench_dense_point.py (thread CPU, medians of 21 interleaved rounds, a
busy machine), 3 / 6 / 10 links: J(**floats) 8.7 / 19.0 / 33.4 µs before, 3.4 / 7.1 /
10.3 µs now; J.at(x) 6.2 / 10.4 / 11.9 µs before, 2.1 / 4.5 / 5.8 µs now, of which
the kernel's packed entry is 0.4 / 2.5 / 3.8 µs.
"""

from __future__ import annotations

import operator

import numpy as np

from . import api
from .backends import c_entry
from .dtypes import F64

# What a number may be on the quick path; anything else (an int, a bool, an array)
# takes api.Compiled's path, which accepts what it accepts.
_FLOATS = frozenset((float, np.float64))
_SECOND = 2  # the quick path is made at the second call with floats: one call never loads c_entry


def assembler(kind: str, m: int, n: int, packed: bool):
    """out -> the results as views of `out`, for a call (layout (m,), (m, n); a
    Hessian's (), (n,), (n, n)) or for `at` (`packed`: a single value a float, as
    packed.PackedCall returns it)."""
    if kind == "hessian":
        return lambda out: (float(out[0]), out[1:1 + n], out[1 + n:].reshape(n, n))
    if packed and m == 1:
        return lambda out: (float(out[0]), out[1:].reshape(1, n))
    return lambda out: (out[:m], out[m:].reshape(m, n))


class PointCompiled(api.Compiled):
    """api.Compiled with the quick one-point paths of the module docstring."""

    _numbers_seen = 0
    _quick_call = None

    def __call__(self, /, *args, out=None, **kwargs):
        run = self._quick_call
        if run is not None and out is None:
            values = args
            if kwargs:
                values = None
                if not args and len(kwargs) == self._n_in:
                    try:
                        values = self._by_name(kwargs)
                    except KeyError:
                        pass  # a mangled name or a mistake: the general path says which
            if values is not None and len(values) == self._n_in and _FLOATS.issuperset(map(type, values)):
                return run(np.array(values, dtype=F64))
        elif out is None and self._numbers_seen < _SECOND and (args or kwargs) and \
                _FLOATS.issuperset(map(type, kwargs.values() if kwargs else args)):
            self._numbers_seen += 1
            if self._numbers_seen == _SECOND:
                self._make_quick()
        return api.Compiled.__call__(self, *args, out=out, **kwargs)

    def at(self, x, seed=None, /, **data):
        """One point with the `wrt` variables packed in the vector `x`: see api.Compiled.at."""
        if self._quick_call is None:
            self._make_quick()
        return self.at(x, seed, **data)  # the instance's own `at`, set by _make_quick

    def _make_quick(self) -> None:
        """The quick call and `at` (instance attributes; `at` looked up later is the entry)."""
        from .packed import PackedCall
        general = PackedCall(self, self._run_packed)  # checks and copies: every other `at` call
        m, n = general.m, general.n
        self._n_in = general.n_in
        names = self.inputs  # kwargs -> the values in input order, in one C call
        self._by_name = operator.itemgetter(*names) if len(names) > 1 else (lambda kw, k=names[0]: (kw[k],))
        run, at_run = (self._entry(general, assembler(self.kind, m, n, packed)) for packed in (False, True))
        order = np.empty(general.n_in, dtype=np.intp)  # x (wrt order) -> the kernel's inputs
        order[general.x_pos] = np.arange(general.n)
        if general.x_is_input:
            at = at_run
        elif len(general.seed_pos) or general.data_pos:
            at = general
        else:
            shape, ndarray = (n,), np.ndarray

            def at(x, seed=None, /, **data):
                """One point, the variables packed in x (see exprcompiler.packed)."""
                if seed is None and not data and type(x) is ndarray and x.shape == shape and x.dtype is F64:
                    return at_run(x.take(order))
                return general(x, seed, **data)
        self.at = at
        self._quick_call = run

    def _entry(self, general, assemble):
        """buffer of the inputs (float64, in order) -> the assembled results: c_entry's
        `at` where the extension loads, else cffi."""
        fn, from_buffer, array = self._run_packed.c_entry
        n_in, n_out = general.n_in, general.n_out
        native = c_entry.load()
        if native is not None:
            return native.at_entry(self._run_packed.c_address, n_in, n_out, fn, general, np.empty, 0, assemble)
        empty = np.empty

        def run(buf, seed=None, /, **data):
            if seed is not None or data or type(buf) is not np.ndarray or buf.shape != (n_in,) \
                    or buf.dtype is not F64 or not buf.flags.c_contiguous:
                return general(buf, seed, **data)
            out = empty(n_out)
            if fn(from_buffer(array, buf), from_buffer(array, out)):
                raise MemoryError("the C kernel could not allocate its tape")
            return assemble(out)
        return run


def with_point_path(compiled: api.Compiled) -> api.Compiled:
    """`compiled` (a dense Jacobian or Hessian) as a PointCompiled where its kernel has
    the packed C entry of doubles; else itself."""
    if compiled.backend == "c" and not compiled.tensor and compiled._dtype is None and compiled.inputs and \
            getattr(compiled._run_packed, "c_entry", None) is not None:
        compiled.__class__ = PointCompiled  # the same object and state; only the call paths differ
    return compiled


__all__ = ["PointCompiled", "with_point_path", "assembler"]
