"""`Compiled.at`: one point, with the variables packed in one vector — the calling
convention of optimizers (Newton, L-BFGS, SciPy) and of functions of many variables.

    value, grad = g.at(x)                 x: the `wrt` variables, in order
    value, grad, hv = hvp.at(x, v)        v: the direction (JVP / HVP), or the output
                                          cotangents (VJP)
    value, grad, hess = H.at(x, a=2.0)    other inputs by name

The C backend calls the kernel's one-point entry `f_packed(in, out)` with one
pointer each way, so the cost of a call does not grow with the number of variables
beyond copying them: through the small extension of backends/c_entry.py where it
can be built (a few hundred ns a call), else through cffi (about 1 µs more); the
NumPy backend calls the generated function with scalars. A vector the kernel cannot
take as it is (strided, misaligned, another dtype) is copied into the kernel's own.
Results: the value a float (several values an (m,) array), derivative blocks arrays
shaped (n,), (m,), (n, n) or (m, n).
"""

from __future__ import annotations

import numpy as np

from .backends import c_entry
from .call_args import _as_array, not_real
from .dtypes import F64


class PackedCall:
    def __init__(self, compiled, run_packed):
        self.kind = compiled.kind
        self.run = run_packed          # run(in_buffer, out_buffer) for one point
        trace, primal = compiled.trace, compiled.primal
        names = list(trace.input_names)
        self.n_in, self.n_out = len(names), len(trace.outputs)
        # a value takes every input as a variable; derivatives their `wrt`
        wrt = tuple(compiled.wrt) if compiled.kind != "value" else tuple(primal.input_names)
        self.m, self.n = len(primal.outputs), len(wrt)
        position = {name: k for k, name in enumerate(names)}
        x_pos = [position[x] for x in wrt]
        # the usual layout, every input a variable in order, is a slice (faster than indices)
        self.x_pos = (slice(x_pos[0], x_pos[-1] + 1) if x_pos and x_pos == list(range(x_pos[0], x_pos[-1] + 1))
                      else np.array(x_pos, dtype=np.intp))
        primal_names = set(primal.input_names)
        self.seed_pos = np.array([k for k, name in enumerate(names) if name not in primal_names],
                                 dtype=np.intp)
        self.data_pos = {name: position[name] for name in primal.input_names if name not in wrt}
        self.wrt = wrt
        # every input a variable, in order: x itself is the kernel's input buffer
        self.x_is_input = x_pos == list(range(self.n_in))
        if self.kind == "grad" and self.m == 1:  # the optimizer's call, without the dispatch
            self._assemble = _value_and_gradient

    def __call__(self, x, seed=None, /, **data):
        if self.x_is_input and seed is None and not data and type(x) is np.ndarray and \
                x.shape == (self.n,) and x.dtype == np.float64 and x.flags.aligned:
            out = np.empty(self.n_out)  # the optimizer's call: no copy, no checks to make
            try:
                self.run(x, out)  # (cffi refuses a strided x: then it is copied, below)
                return self._assemble(out)
            except ValueError:
                if x.flags.c_contiguous:
                    raise
        buf = np.empty(self.n_in)
        buf[self.x_pos] = _vector(x, self.n, "x", f"the {self.n} variables {', '.join(self.wrt)}")
        if len(self.seed_pos):
            if seed is None:
                what = "direction v" if self.kind in ("jvp", "hvp") else "output cotangents u"
                raise TypeError(f"at(): missing the {what} ({len(self.seed_pos)} numbers)")
            buf[self.seed_pos] = _vector(seed, len(self.seed_pos), "the second argument", "seeds")
        elif seed is not None:
            raise TypeError(f"at(): a {self.kind} takes no second vector")
        unknown = [k for k in data if k not in self.data_pos]
        missing = [k for k in self.data_pos if k not in data]
        if unknown or missing:
            raise TypeError(f"at(): {'unexpected ' + ', '.join(unknown) if unknown else ''}"
                            f"{'; ' if unknown and missing else ''}"
                            f"{'missing ' + ', '.join(missing) if missing else ''} "
                            f"(other inputs: {', '.join(self.data_pos) or 'none'}, by name)")
        for name, k in self.data_pos.items():
            value = _as_array(name, data[name])
            if value.shape != ():
                raise TypeError(f"at(): input {name!r} must be one number, got shape {value.shape}")
            buf[k] = value
        out = np.empty(self.n_out)
        self.run(buf, out)
        return self._assemble(out)

    def entry(self, direct=None):
        """What `Compiled.at` becomes after its first call: for a C kernel whose inputs
        are exactly the variables, one function that makes the optimizer's call — x a
        float64 vector of the n variables, nothing else — with nothing between it and
        the kernel (a third of a Griewank call's time went to the layers in between); any
        other call goes to __call__, which checks and copies. Otherwise __call__.
        The function is c_entry's `at` where the extension loads, else Python over cffi.
        `direct`: NumPy's one-point variant returning (value, gradient tuple), or None."""
        entry = getattr(self.run, "c_entry", None)
        point = getattr(self.run, "point", None)
        if point is not None and self.x_is_input and self._assemble is _value_and_gradient:
            return _numpy_gradient_at(direct, point, self, (self.n,))
        if entry is None or not self.x_is_input:
            return self
        fn, from_buffer, array = entry
        general, assemble, n_out, shape = self, self._assemble, self.n_out, (self.n,)
        gradient = assemble is _value_and_gradient
        native = c_entry.load()
        if native is not None:  # a gradient: its value a float, the gradient an array
            result = c_entry.spec_code((0, c_entry.Block(1, (n_out - 1,))), n_out) if gradient else (assemble, ())
            return native.at_entry(self.run.c_address, self.n_in, n_out, fn, general, np.empty, *result)
        empty, ndarray = np.empty, np.ndarray

        def at(x, seed=None, /, **data):
            """One point, the variables packed in x (see exprcompiler.packed)."""
            if seed is None and not data and type(x) is ndarray and x.shape == shape \
                    and (x.dtype is F64 or x.dtype == F64) and x.flags.aligned:
                out = empty(n_out)
                try:
                    failed = fn(from_buffer(array, x), from_buffer(array, out))
                except ValueError:  # cffi refuses a strided x: __call__ copies it
                    if x.flags.c_contiguous:
                        raise
                    return general(x)
                if failed:
                    raise MemoryError("the C kernel could not allocate its tape")
                return (float(out[0]), out[1:]) if gradient else assemble(out)
            return general(x, seed, **data)
        return at

    def _assemble(self, out):
        m, n = self.m, self.n
        value = float(out[0]) if m == 1 else out[:m].copy()
        kind = self.kind
        if kind == "value":
            return value
        if kind == "grad":
            return value, out[1:]  # a view of this call's own buffer
        if kind in ("hvp", "hessian"):
            grad = out[1:1 + n].copy()
            rest = out[1 + n:].copy()
            return value, grad, (rest if kind == "hvp" else rest.reshape(n, n))
        rest = out[m:].copy()
        if kind == "jvp":
            return value, (float(rest[0]) if m == 1 else rest)
        if kind == "jacobian":
            return value, rest.reshape(m, n)
        return value, rest  # vjp: (n,)


def _value_and_gradient(out):
    return float(out[0]), out[1:]  # the gradient a view of this call's own buffer


def _vector(x, n: int, what: str, holds: str) -> np.ndarray:
    if type(x) is np.ndarray and x.shape == (n,) and x.dtype == np.float64:
        return x  # the common case, checked cheaply
    why = not_real(x)
    if why:
        raise TypeError(f"at(): {what}: {why}")
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"at(): {what} must be an array of numbers ({holds})") from None
    if arr.ndim > 1 or arr.size != n:
        raise ValueError(f"at(): {what} must hold {holds}; got shape {arr.shape}")
    return arr.reshape(n)


def _numpy_gradient_at(direct, point, general, shape):
    """PackedCall.entry of a NumPy gradient of one output whose inputs are exactly the
    variables: the optimizer's call (x a float64 vector of the n variables) straight to
    the one-point variant `direct` on x's numbers, as floats — no buffers, no layer in
    between (callgrind, instructions a call: Griewank 12.4k -> 10.4k, of which 2.2k
    make the gradient's array; Rosenbrock n = 10 34.0k -> 32.0k) — or where there is no
    variant (`direct` None), to the one-point run; both answer as NumPy does where math
    refuses (backends/registry.py). Any other call goes to `general`, which checks and
    copies."""
    ndarray, array = np.ndarray, np.array

    def at(x, seed=None, /, **data):
        """One point, the variables packed in x (see exprcompiler.packed)."""
        if seed is None and not data and type(x) is ndarray and x.shape == shape \
                and (x.dtype is F64 or x.dtype == F64):
            if direct:
                value, grad = direct(*x.tolist())
                return value, array(grad)
            r = point(x.tolist())
            return r[0], array(r[1:])
        return general(x, seed, **data)
    return at


def numpy_packed(point):
    """run(in, out) for a NumPy kernel, from its one-point run (backends/registry.py)."""
    def run(buf, out):
        out[:] = point(buf.tolist())
    run.point = point   # for PackedCall.entry
    return run


def c_point(ffi, fn, n_out: int, n_in: int = -1, ctype: str = "double", names=None):
    """run(values) -> the outputs as floats, through the kernel's one-point entry
    (`ctype` "float" for a float32 kernel: the values rounded as an array call rounds
    them); given `n_in` (double kernels: c_entry's extension is for doubles), `run.nested(returns)` is c_entry's f(*numbers) returning the outputs
    nested as `returns` says (api.Compiled's quick call; given the inputs' `names`,
    f(**numbers) too), or None. Until nested() is
    first asked for — the second call with numbers, so one call never loads the
    extension — run goes through cffi (about 1 µs a conversion); then through the
    extension too, its outputs a flat tuple."""
    array, new, unpack = ffi.typeof(f"{ctype}[]"), ffi.new, ffi.unpack  # looked up once: ~1 us a call
    flat = []  # c_entry's f(*numbers) -> (out0, out1, ...), once loaded

    def run(values):
        if flat:
            result = flat[0](*values)
            if result is not NotImplemented:
                return result
        out = new(array, n_out)
        if fn(new(array, values), out):
            raise MemoryError("the C kernel could not allocate its tape")
        return unpack(out, n_out)

    def nested(returns):
        native = c_entry.load()
        if native is None or n_in < 0:
            return None
        address = c_entry.address(ffi, fn)
        if not flat:
            flat.append(native.call_entry(address, n_in, n_out, fn, c_entry.spec_code(tuple(range(n_out)))[0]))
        return native.call_entry(address, n_in, n_out, fn, c_entry.spec_code(returns)[0], names)
    run.nested = nested
    run.checks_numbers = True  # what nested() makes takes names, and returns NotImplemented for what it does not take
    return run


def c_packed(ffi, fn):
    """run(in, out) through the kernel's one-point entry."""
    array, from_buffer = ffi.typeof("double[]"), ffi.from_buffer  # looked up once

    def run(buf, out):  # `out`: PackedCall's own new array
        if fn(from_buffer(array, buf), from_buffer(array, out)):
            raise MemoryError("the C kernel could not allocate its tape")
    run.c_entry = (fn, from_buffer, array)  # for PackedCall.entry, which calls fn itself
    run.c_address = c_entry.address(ffi, fn)
    return run


__all__ = ["PackedCall", "numpy_packed", "c_packed", "c_point"]
