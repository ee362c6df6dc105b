"""C backend, call half: a small CPython extension that calls a kernel's packed
one-point entry `f_packed(in, out)`, and a dense Jacobian's or Hessian's batch entry
`f_batch` (batch_entry), with nothing between the caller and the kernel.

Where it sits: beside c_build. A scalar kernel is plain C loaded through cffi in ABI
mode (no Python headers needed); a cffi call with its `ffi.new` / `ffi.from_buffer`
conversions costs about 1 µs, several times a Griewank gradient's own time. This
module builds, once per Python and compiler (cached as a kernel is, through
c_build's cache), one generic extension — the same for every kernel, so no kernel
compiles twice — whose functions hold the address of one kernel's packed entry
(c_entry.c; the batch entry run_entry in c_batch.c, which c_entry.c includes):

    call_entry(address, n_in, n_out, keep, result, names=None, empty=None, blocks=())
            -> f(*numbers, **numbers)
        the first arguments by position, the rest by the inputs' `names` (a tuple of
        distinct str, handed in from Python: user text never enters C source), every
        input once and a real number (a float, np.float64, an int within ±2**53);
        anything else gives NotImplemented, so the caller takes its general path,
        which says what is wrong
    at_entry(address, n_in, n_out, keep, general, empty, result, blocks=(), order=None)
            -> at(x, seed=None, /, **data)
        x a 1-D buffer of n_in C doubles, contiguous and aligned (a float64 NumPy vector), the
        kernel's inputs in order, or in the order `order` says (input k is x[order[k]]);
        any other call goes to general(x, seed, **data)

    run_entry(address, n_in, n_out, keep, result, names, empty, blocks, symbol, ndarray,
              suffixes, threads, parallel_from) -> run(out, *inputs, **inputs)
        call_entry's call when `out` is None and every input is a number; else a batch
        through the kernel's batch entry `symbol` (batch_entry: found by dlsym in the
        library that holds `address`), every input a number or a float64 array of
        exactly the type `ndarray` and aligned, the results new arrays of shape batch + suffix
        (one per tuple in `suffixes`) or the caller's `out` (a tuple or list of such
        arrays, C-contiguous, aligned, writable, overlapping neither each other nor an input
        unless they are that input), returned as a tuple; anything else NotImplemented
        before anything is written (dense_point.PointCompiled's general path then
        answers). `threads` 0: one thread below `parallel_from` points, NotImplemented
        from there (c_run.ThreadChoice decides those).
    method_entry(run, general, owner) -> __call__(*inputs, out=None, **inputs)
        run's call with out= a keyword (an input named "out" is then taken by position
        only, as a Python signature binds it), and general(owner, *args, **kwargs) for
        every call run refuses: a class's __call__ of one object (dense_point), called
        by CPython with the caller's own argument tuple and keyword dict (a C function
        is no descriptor). `owner` is held by a weak reference (object -> class -> this
        function: a strong one would be a cycle the collector cannot see).

What call_entry and at_entry return, `result`: a spec of the outputs (spec_code:
floats, new float64 arrays made with `empty` holding runs of the outputs, nested in
tuples), or a callable assemble(array of all the outputs).

Why the batch goes through C too: api.Compiled's general path (binding, broadcast,
_check_out, then c_run.runner making a cffi pointer per output — 36 for the 3-link
pendulum's 4 values and 4x8 Jacobian — and a cffi call of 90 arguments) cost about
50 µs a call, fixed (3-link pendulum at 16 states, thread CPU, load 3.4: 56 µs, with
out= 67 µs, against 7 µs for the kernel through cffi with its pointers made once; now
4.3 and 4.1 µs). That was the J(**inputs, out=) / kernel gap at 10⁴ states (issue
13): the kernel writing into the caller's out= arrays costs what it costs writing
into one reused block (out= arrays at offsets 0/16/64/512/1024/2048 mod 4096 and
np.empty_like's: within noise; no page faults after the first call).

Every buffer is checked (format, item size, dimensions, length, strides) before the
kernel reads it; the kernel is the same machine code as the cffi path's, so NaN,
inf and edge points give the same bits. `keep` (the cffi function) keeps the
library loaded. Where there are no Python headers, no compiler or the extension
will not load, `load()` is None and the callers keep the cffi path.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import sys
import sysconfig
from pathlib import Path
from typing import NamedTuple, Optional

from ..errors import CompileError
from ..version import __version__

NAME = "_xc_entry"
FLAGS = ("-O2", "-fPIC", "-shared", "-fno-strict-aliasing")

# The extension's C source, package data (pyproject.toml): one translation unit,
# c_entry.c, which includes the batch entry c_batch.c. Every part is written beside
# c_entry.c to compile and is part of the cache key.
PARTS = {name: Path(__file__).with_name(name).read_text() for name in ("c_entry.c", "c_batch.c")}
SOURCE = PARTS["c_entry.c"]


def _include() -> Optional[str]:
    """The folder of Python.h, or None when this Python has no headers installed."""
    folder = sysconfig.get_paths().get("include")
    return folder if folder and os.path.isfile(os.path.join(folder, "Python.h")) else None


def cache_key(include: str) -> str:
    """What the extension's binary depends on: every source file (name and text) and
    the flags, the compiler, and this Python — version, ABI tag, headers — beside
    c_build's own parts."""
    from . import c_build
    compiler, version = c_build.find_compiler()
    h = hashlib.sha256()
    sources = [f"{name}\0{text}" for name, text in sorted(PARTS.items())]
    for part in (*sources, compiler, version, repr(FLAGS), repr(c_build.extra_flags()), __version__,
                 sys.version, sys.implementation.cache_tag, str(sysconfig.get_config_var("SOABI")),
                 include, platform.machine(), platform.system()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()  # named as a kernel is (c_cache): `exprc cache clear` removes it too


def _compile(include: str):
    """c_build's compile step for the extension (`make` of c_build._build)."""
    from . import c_build

    def make(source: str, tmp: Path, kept: Path) -> Path:
        del source  # PARTS["c_entry.c"], which needs the other parts beside it
        for name, text in PARTS.items():
            (tmp / name).write_text(text)
        compiler, _ = c_build.find_compiler()
        why = c_build._run([compiler, *FLAGS, f"-I{include}", *c_build.extra_flags(), "-o", "entry.so",
                            "c_entry.c"], tmp)
        if why:
            raise CompileError(f"the one-point entry did not compile: {why}")
        return tmp / "entry.so"
    return make


def _import(path: Path):
    import importlib.machinery
    import importlib.util
    name = f"exprcompiler.backends.{NAME}"
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


_WHY_NOT: list = []


@functools.lru_cache(maxsize=None)
def _load(extra: tuple):
    del extra  # part of the lru key: a test changing EXPRCOMPILER_EXTRA_CFLAGS gets its own build
    from . import c_build
    include = _include()
    if include is None:
        _WHY_NOT.append("no Python headers (Python.h) for this interpreter")
        return None
    try:
        key = cache_key(include)
        path, fresh = c_build._build(SOURCE, key=key, make=_compile(include))
        try:
            return _import(path)
        except ImportError:
            if fresh:
                raise
            path, _ = c_build._build(SOURCE, force=True, key=key, make=_compile(include))
            return _import(path)
    except (CompileError, ImportError, OSError) as err:
        _WHY_NOT.append(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return None


def load():
    """The extension module, built or found in the cache on first use; None where it
    cannot be had (the reason: `why_not()`), and then every caller keeps cffi."""
    from . import c_build
    try:
        extra = c_build.extra_flags()
    except CompileError:
        return None
    return _load(extra)


def why_not() -> str:
    """Why `load()` gave None ("" if it did not)."""
    return _WHY_NOT[-1] if _WHY_NOT else ""


def address(ffi, fn) -> int:
    """The address of a cffi function (the kernel's packed entry)."""
    return int(ffi.cast("uintptr_t", fn))


class Block(NamedTuple):
    """In a result spec: a new float64 array of `shape` holding the outputs from
    `start` on, in C order (a Jacobian's (m, n) block)."""
    start: int
    shape: tuple


def spec_code(returns, n_out: int = 0) -> tuple[tuple, tuple]:
    """(prefix code, blocks) of a `returns` nesting — output positions (a float each),
    Blocks of a kernel of `n_out` outputs, nested tuples — for call_entry and at_entry:
    k >= 0 is float(out[k]), -1 - m a tuple of the next m items, n_out + j block j."""
    code, blocks, stack = [], [], [returns]
    while stack:
        item = stack.pop()
        if isinstance(item, Block):
            code.append(n_out + len(blocks))
            blocks.append((int(item.start), tuple(int(d) for d in item.shape)))
        elif isinstance(item, tuple):
            code.append(-1 - len(item))
            stack.extend(reversed(item))
        else:
            code.append(int(item))
    return tuple(code), tuple(blocks)


_BATCH = re.compile(r"^int ([A-Za-z_]\w*_batch)\(ptrdiff_t n, int threads, const double \*const \*in, ", re.M)


def batch_symbol(source: str) -> Optional[str]:
    """The name of the batch entry (batch_entry) that a kernel's C source defines, or None."""
    found = _BATCH.search(source)
    return found.group(1) if found else None


def batch_entry(func_name: str, n_in: int, n_out: int) -> tuple[list[str], str]:
    """(source lines, declaration) of a kernel's batch entry for the extension's array
    calls: the batch function's pointers and strides packed in four arrays, so one
    generic caller (run_entry) calls any kernel, whatever its number of parameters.

        int f_batch(ptrdiff_t n, int threads, const double *const *in, const ptrdiff_t *st,
                    double *const *out, const ptrdiff_t *os)

    It only forwards: the kernel `func_name` itself runs the points."""
    decl = (f"int {func_name}_batch(ptrdiff_t n, int threads, const double *const *in, const ptrdiff_t *st, "
            "double *const *out, const ptrdiff_t *os)")
    args = ["n", "threads"] + [f"in[{k}], st[{k}]" for k in range(n_in)] + [f"out[{k}], os[{k}]" for k in range(n_out)]
    call = f"    return {func_name}("
    rows = [", ".join(args[k:k + 8]) for k in range(0, len(args), 8)]
    return (["", "/* the batch, every pointer and stride in an array (backends/c_entry.py's run_entry) */",
             decl, "{", call + (",\n" + " " * len(call)).join(rows) + ");", "}"], decl + ";")


__all__ = ["load", "why_not", "address", "spec_code", "Block", "batch_entry", "batch_symbol"]
