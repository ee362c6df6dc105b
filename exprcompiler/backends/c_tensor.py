"""C backend for tensor traces: loops whose sizes come from the shapes.

    int f_grad(const ptrdiff_t *dims, int threads, const double *in0, ..., double *out0, ...)

`dims` holds the sizes of the named dimensions (D0, D1, ... in the source, in the
order of their names); inputs are contiguous float64 arrays of their declared
shapes and outputs contiguous arrays the caller allocates (a scalar output: one
double). The Python wrapper binds `dims` with shape_binding.ShapeBinder, whose checks
keep every constant index, slice and derived size ("D0 - 3") in range and every
reduction without an identity non-empty; the kernel repeats them on entry and returns
-2 (for C callers of an exported kernel). The body is one loop nest per op in trace
order (see c_tensor_ops): an elementwise variable is one loop over its shape with
its single-use elementwise temporaries inlined into the expression, as in the
scalar backend; transpose,
broadcast_to, constant indexing and reshape are views (strides, no code); matrix
products are loops that read memory in order. Scalars are local doubles.

Temporaries live in one block, `work`, of f_grad_work(dims) doubles, given to
f_grad_ws(dims, threads, work, in0, ..., out0, ...); f_grad itself (for C callers)
mallocs it and frees it, returning -1 when it cannot. The Python wrapper keeps the
block between calls instead (`Workspace`, one per thread): a fresh block above
glibc's mmap threshold (128 KB, and never raised where MALLOC_TRIM_THRESHOLD_ is set,
as Dask's nanny does) costs a page fault per 4 KB page at every call. Measured on one
thread, the kernel alone, malloc'd block against kept block: the sparse Broyden
Jacobian at n = 10^5 (67 MB of temporaries, mmap'd whatever the threshold) 68 ms and
16 000 faults a call against 8 ms and none; the logistic-loss gradient at X 10^5 x 10
(7 MB) with MALLOC_TRIM_THRESHOLD_ set, 6.0 ms against 1.5 ms
(`python -m exprcompiler.bench.workspace`).

Spellings, helpers and libmvec declarations are the scalar backend's (c_backend);
compiling and caching are c_build's.

A scalar trace (no tensor anywhere) does not come here: c_backend's per-point
kernel over a batch stays the fast path for elementwise work.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
import time

import numpy as np

from .. import ops as _ops
from ..ops import PREC_ATOM
from ..errors import CompileError, ShapeError
from .. import dtypes
from ..shape_binding import ShapeBinder
from ..trace.ir import Trace
from ..trace.printer import table_spelling
from ..trace.render import const_prec, format_op, named_vars
from . import c_build, c_run
from .c_backend import C_KEYWORDS, HELPERS, SPELLING, VECTOR_MATH, math_prelude, opening_comment
from .c_forms import squares
from .c_tensor_loops import VIEWS, Loops, View, is_literal
from .c_tensor_ops import EMITTERS
from .naming import assign_names, comment_text, param_alias

TABLE = table_spelling(ascii=True)  # how the comments spell ops

# Identifiers of the generated function body that no variable may take.
LOCALS = {"dims", "threads", "work", "acc", "i", "j", "k", "malloc", "free", "isfinite",
          "INFINITY"} | {f"{v}{k}" for v in ("i", "a", "acc") for k in range(32)}


def dim_names(trace: Trace) -> list[str]:
    """The named dimensions, sorted: "n" for both "n" and "n-1"."""
    names = {d.partition("-")[0] for ins in trace.instrs for d in ins.shape if isinstance(d, str)}
    return sorted(names)


def _inline(trace: Trace, named: list[bool]) -> list[bool]:
    """Single-use elementwise temporaries computed inside their consumer's loop: the
    consumer is elementwise and of the same shape (so nothing is recomputed)."""
    consumer = [-1] * len(trace.instrs)
    for i, ins in enumerate(trace.instrs):
        for a in ins.args:
            consumer[a] = i
    out = []
    for i, ins in enumerate(trace.instrs):
        c = consumer[i]
        out.append(not named[i] and ins.op not in ("const", "input", "copy") and _ops.OPS[ins.op].elementwise
                   and c >= 0 and trace.instrs[c].op != "copy" and _ops.OPS[trace.instrs[c].op].elementwise
                   and trace.instrs[c].shape == ins.shape)
    return out


class _Kernel:
    """One pass over the trace: each variable's view, the loops that compute it."""

    def __init__(self, trace: Trace, func_name: str):
        self.trace = trace
        n_in, n_out = len(trace.inputs), len(trace.outputs)
        self.dim_names = dim_names(trace)
        reserved = set(C_KEYWORDS) | LOCALS | {op.c for op in _ops.OPS.values() if op.c} | set(HELPERS)
        reserved |= {func_name, f"{func_name}_work", f"{func_name}_ws"}
        reserved |= {f"in{k}" for k in range(n_in)} | {f"out{k}" for k in range(n_out)}
        reserved |= {f"D{k}" for k in range(len(self.dim_names))} | set(VECTOR_MATH)
        named = named_vars(trace)
        self.names = assign_names(trace, named, reserved)
        self.taken = reserved | {n for n in self.names if n is not None}
        self.inline = _inline(trace, named)
        self.e = Loops(self.dim_c, self.fresh)
        self.views: list = [None] * len(trace.instrs)
        self.used_ops: set[str] = set()
        self.cnames: set[str] = set()
        self.aliases: list[str] = []     # inputs and outputs by their names
        self.written: dict[int, str] = {}  # output k -> the buffer computed in place
        # output k is written in place by the variable it is, the first time it appears
        self.out_of: dict[int, int] = {}
        for k, (_, v) in enumerate(trace.outputs):
            self.out_of.setdefault(v, k)

    def dim_c(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        name, _, minus = d.partition("-")
        base = f"D{self.dim_names.index(name)}"
        return f"{base} - {minus}" if minus else base

    def fresh(self, stem: str) -> str:
        """An unused identifier: t1, t2, ... for temporaries; `stem`, stem_1, ... otherwise."""
        if stem == "t":
            names = (f"t{k}" for k in itertools.count(1))
        else:
            names = itertools.chain([stem], (f"{stem}_{k}" for k in itertools.count(1)))
        name = next(n for n in names if n not in self.taken)
        self.taken.add(name)
        return name

    def cname(self, i: int) -> str:
        """A variable's own C name: its generated name, unless an earlier variable has
        it (an adjoint accumulated in several steps: each step gets its own)."""
        name = self.names[i]
        if name is None:
            return self.fresh("t")
        if name in self.cnames:
            return self.fresh(name)
        self.cnames.add(name)
        return name

    def dst(self, i: int) -> View:
        shape = self.trace.instrs[i].shape
        if not shape:
            return View((), text=self.cname(i))
        k = self.out_of.pop(i, None)
        name = self.cname(i)
        if k is not None:
            self.aliases.append(f"double *const {name} = out{k};")
            self.written[k] = name
        else:
            self.e.add_temp(name, shape)
        return self.e.buffer(name, shape)

    def expression(self, i: int, rd) -> str:
        """Variable i as one C expression: its inlined temporaries expanded, every other
        argument read through `rd(view)`."""
        trace = self.trace
        tree, stack = {i}, [i]
        while stack:
            for a in trace.instrs[stack.pop()].args:
                if self.inline[a] and a not in tree:
                    tree.add(a)
                    stack.append(a)
        texts: dict[int, tuple[str, int]] = {}
        for j in sorted(tree):
            ins = trace.instrs[j]
            self.used_ops.add(ins.op)
            args = []
            for a in ins.args:
                if a in texts:
                    args.append(texts[a])
                else:
                    v = self.views[a]
                    t = rd(v)
                    args.append((t, const_prec(t) if not v.ptr else PREC_ATOM))
            texts[j] = format_op(_ops.OPS[ins.op], args, SPELLING, ins.attrs)
        return texts[i][0]

    def comment(self, i: int) -> str:
        """`/* v1 = X @ w */`: what the loops below it compute, in the table's spelling."""
        args = [(TABLE.const(self.trace.instrs[a].value) if self.trace.instrs[a].op == "const"
                 else self.label(a), PREC_ATOM) for a in self.trace.instrs[i].args]
        ins = self.trace.instrs[i]
        text = format_op(_ops.OPS[ins.op], args, TABLE, ins.attrs)[0]
        return f"/* {comment_text(self.label(i) + ' = ' + text, 200, c=True)} */"

    def label(self, i: int) -> str:
        v = self.views[i]
        if v is not None and v.contiguous and v.off == "0":
            return v.ptr
        if v is not None and not v.ptr and not v.shape:
            return v.text
        return self.names[i] or f"({self.trace.instrs[i].op})"

    def run(self) -> None:
        e = self.e
        for i, ins in enumerate(self.trace.instrs):
            args = [self.views[a] for a in ins.args]
            if ins.op == "input":
                k = [v for _, v in self.trace.inputs].index(i)
                name = self.cname(i)
                self.aliases.append(f"const double *const {name} = in{k};")
                self.views[i] = e.buffer(name, ins.shape)
            elif ins.op == "const":
                self.views[i] = View(ins.shape, text=SPELLING.const(ins.value))
            elif ins.op == "copy":
                self.views[i] = args[0]
            elif self.inline[i]:
                continue
            elif ins.op in VIEWS:
                self.views[i] = VIEWS[ins.op](e, ins, args)
            elif _ops.OPS[ins.op].elementwise:
                dst = self.views[i] = self.dst(i)
                e.assign(dst, lambda rd, i=i: self.expression(i, rd))
            else:
                dst = self.views[i] = self.dst(i)
                e.emit([self.comment(i)])
                EMITTERS[ins.op](e, ins, args, dst)
        for k, (_, v) in enumerate(self.trace.outputs):
            src = self.views[v]
            if self.written.get(k) != src.ptr or not src.ptr:
                e.assign(e.buffer(f"out{k}", src.shape) if src.shape else View((), ptr=f"out{k}"),
                         lambda rd, src=src: rd(src))


def _header(trace: Trace, description: str, dims: list[str]) -> list[str]:
    head = opening_comment(trace, description, shapes=True)
    if dims:
        head.append(" * dimensions: " + ", ".join(f"D{k} = {comment_text(n, 40, c=True)}"
                                                  for k, n in enumerate(dims)))
    return head + [" */", "#include <math.h>", "#include <stddef.h>", "#include <stdlib.h>", ""]


def generate_c_tensor(trace: Trace, *, func_name: str = "f", description: str = "") -> tuple[str, str]:
    """(C source, declaration) of the tensor kernel `func_name` for `trace`."""
    missing = sorted({ins.op for ins in trace.instrs if not _ops.OPS[ins.op].elementwise
                      and ins.op not in EMITTERS and ins.op not in VIEWS})
    if missing:
        raise CompileError(f"the C backend has no loops for {', '.join(missing)} yet; "
                           f"use backend=\"numpy\"")
    trace = squares(trace)
    kernel = _Kernel(trace, func_name)
    kernel.run()
    e = kernel.e
    n_in, n_out = len(trace.inputs), len(trace.outputs)
    ins, outs = [f"in{k}" for k in range(n_in)], [f"out{k}" for k in range(n_out)]
    params = ["const ptrdiff_t *dims", "int threads"] + [f"const double *{a}" for a in ins]
    params += [f"double *{a}" for a in outs]
    decl = f"int {func_name}({', '.join(params)})"
    work_decl = f"ptrdiff_t {func_name}_work(const ptrdiff_t *dims)"
    ws_decl = f"int {func_name}_ws({', '.join(params[:2] + ['double *work'] + params[2:])})"

    spelled = {_ops.OPS[op].c for op in kernel.used_ops}
    prologue = [f"    const ptrdiff_t D{k} = dims[{k}];" for k in range(len(kernel.dim_names))] or ["    (void)dims;"]
    prologue += _size_checks(trace, kernel)
    sizes = " + ".join(size for _, size in e.temps) or "0"
    lines = _header(trace, description, kernel.dim_names) + math_prelude(spelled | e.helpers, e.libm)
    lines += [f"/* the doubles {func_name}_ws needs in `work`; -2 if the sizes are refused */",
              work_decl, "{", *prologue, f"    return {sizes};", "}", "",
              "/* the kernel, its temporaries in `work` (the Python side keeps one block per thread */",
              "/* and reuses it: a fresh one costs a page fault per 4 KB once malloc maps it) */",
              ws_decl, "{", "    (void)threads;  /* unused where no matrix product splits its rows over threads */",
              *([] if e.temps else ["    (void)work;"]), *prologue, *("    " + a for a in kernel.aliases)]
    prev = "work"
    for name, size in e.temps:
        lines.append(f"    double *const {name} = {prev};")
        prev = f"{name} + {size}" if size.isdigit() or size.isidentifier() else f"{name} + ({size})"
    lines += e.lines + ["    return 0;", "}", "",
                        "/* the kernel with its temporaries in a block of its own (for C callers) */",
                        decl, "{",
                        f"    const ptrdiff_t need = {func_name}_work(dims);",
                        "    if (need < 0) return -2;",
                        "    double *const work = malloc(sizeof(double) * (size_t)(need + 1));  /* never malloc(0) */",
                        "    if (work == NULL) return -1;",
                        "    const int status = "
                        f"{func_name}_ws({', '.join(['dims', 'threads', 'work', *ins, *outs])});",
                        "    free(work);",
                        "    return status;",
                        "}"]
    return "\n".join(lines) + "\n", "\n".join(d + ";" for d in (decl, work_decl, ws_decl))


def _size_checks(trace: Trace, kernel: _Kernel) -> list[str]:
    """The kernel's own check of the sizes it is given, the same needs the Python side
    checks before every call (shape_binding.ShapeBinder): a C caller of an exported
    kernel that passes too small a size gets -2, not an access out of range."""
    binder = ShapeBinder(trace, trace.input_names)
    lines = [f"    if ({' || '.join(f'D{k} < 0' for k in range(len(kernel.dim_names)))}) return -2;"] \
        if kernel.dim_names else []
    for need, text in zip(binder.needs, binder.describe()):
        test = "1" if need.name is None else f"D{kernel.dim_names.index(need.name)} < {need.total}"
        lines.append(f"    if ({test}) return -2;  /* {comment_text(text, 100, c=True)} */")
    return lines + _extent_check(kernel.e.extents)


# Elements of temporaries past which sizes are refused: their bytes, and the pointer
# offsets into the block, stay far inside ptrdiff_t and size_t.
MAX_WORK = 2 ** 59


def _extent_check(extents: list) -> list[str]:
    """The check that the temporaries (each a list of its sizes, C expressions) fit in
    memory at all. Each array of the call is a size NumPy accepted, but a temporary
    can combine the sizes of several: A of shape (n, 0) and B of (0, m), both empty,
    make A @ B of n * m elements, which wraps around in ptrdiff_t for n = m = 2**32 (a
    block of 0 doubles, then 2**64 writes). So the sizes are added up in double, each
    taken as at least 1 so that no partial product in the kernel's integer arithmetic
    can exceed the bound either."""
    terms = []
    for dims in extents:
        named = [d for d in dims if not is_literal(d)]
        if named:
            fixed = math.prod(max(int(d), 1) for d in dims if is_literal(d))
            terms.append(" * ".join(([f"{fixed}.0"] if fixed > 1 else [])
                                    + [f"({d} > 1 ? (double)({d}) : 1.0)" for d in named]))
    if not terms:
        return []
    return [f"    if ({' + '.join(terms)} > {float(MAX_WORK)!r})",
            "        return -2;  /* temporaries past any memory */"]


class Workspace:
    """The temporaries' blocks of one kernel, kept between calls, per thread (so
    threads never share one; a thread's blocks go when it ends, all of them with the
    kernel). Each block is exactly the size a call needs, so AddressSanitizer sees
    its end, and a thread keeps the blocks of its last KEEP sizes: an optimizer's
    steps or a Dask worker's equal chunks (and the shorter last one) reuse theirs.
    `extra`: elements after the temporaries (the kernel's scalar outputs)."""

    KEEP = 2

    def __init__(self, ffi, dtype=np.float64, extra: int = 0):
        self.ffi, self.local, self.dtype = ffi, threading.local(), np.dtype(dtype)
        self.ctype = dtypes.c_type(self.dtype) + "[]"  # the kernel's element type
        self.extra = extra

    def take(self, need: int):
        """A pointer to `need` (+ extra) elements, for this thread's call (NULL for none)."""
        return self.block(need)[0]

    def block(self, need: int) -> tuple:
        """(the pointer of take(need), the pointer to its `extra` elements, a tuple of
        a pointer to each of them): this thread's last block is found first (an
        optimizer's every call), then its others."""
        local = self.local
        last = getattr(local, "last", None)
        if last is not None and last[0] == need:
            return last[1]
        held = local.__dict__.setdefault("held", {})  # size -> block, last used last
        block = held.pop(need, None)
        if block is None:
            if len(held) >= self.KEEP:
                del held[next(iter(held))]
            total = need + self.extra
            ptr = self.ffi.NULL if total == 0 else \
                self.ffi.from_buffer(self.ctype, np.empty(total, self.dtype), require_writable=True)  # keeps it
            block = (ptr, ptr + need if self.extra else None, tuple(ptr + (need + j) for j in range(self.extra)))
        held[need] = block
        local.last = (need, block)
        return block


def compile_c_tensor(trace: Trace, *, func_name: str, description: str = "", threads=None, generated=None,
                     signature=None, dtype=None):
    """(fn, source, parameter names): fn(*arrays) takes float64 arrays of the declared
    shapes and returns a flat tuple of the outputs (arrays, floats for scalars), as the
    generated NumPy function does. `generated`: its (source, declaration), if made;
    `signature`: the compiled function's (signature.py), whose cached binding of the
    shapes fn shares (else fn keeps its own). `dtype`: float32 for a kernel whose
    source was made float (exprcompiler.dtypes): float32 arrays in and out. A float64
    fn has fn.run_bound(binding, arrays): the same call for arrays its caller has
    checked and bound (the call plan, call_plan.py)."""
    source, decl = generated or generate_c_tensor(trace, func_name=func_name, description=description)
    real = dtypes.real(dtype)
    array = dtypes.c_type(dtype) + "[]"
    ffi, lib = c_build.load(source, decl)
    kernel, work_size = getattr(lib, f"{func_name}_ws"), getattr(lib, f"{func_name}_work")
    scalar = [trace.instrs[v].shape == () for _, v in trace.outputs]
    n_scalar = sum(scalar)
    workspace = Workspace(ffi, real, extra=n_scalar)
    dims = dim_names(trace)
    params = list(map(param_alias, trace.input_names))
    choice = c_run.ThreadChoice() if threads is None else None
    if signature is None:
        from ..signature import Signature
        signature = Signature(trace, trace, inputs=params)

    cell = ffi.typeof(array)  # parsed once (from_buffer by its text parses it per call)
    arrays_out = [k for k, s in enumerate(scalar) if not s]
    # the outputs' pointers as the kernel takes them: the scalars' (in the work block's
    # last n_scalar elements) first is a gradient's order; else put in order per call
    in_order = scalar == sorted(scalar, reverse=True)
    # cffi's backend functions themselves: ffi.from_buffer and ffi.unpack are Python
    # methods around them (a frame and an isinstance per array: 6.4k of the 33k
    # instructions run_bound added to the least-squares kernel, counted by callgrind)
    cells, fb, unpack = itertools.repeat(cell), ffi._backend.from_buffer, ffi._backend.unpack
    empty = functools.partial(np.empty, dtype=real) if real != np.float64 else np.empty

    def remember(bound, arrays) -> tuple:
        """What run_bound needs of a binding, kept with it: the sizes as the kernel's
        argument, its temporaries' size, the thread count (None: ThreadChoice's, per
        call), the array outputs' shapes."""
        sizes = [bound.dims[d] for d in dims]
        dims_arg = ffi.new("ptrdiff_t[]", sizes) if sizes else ffi.NULL
        need = work_size(dims_arg)
        if need < 0:  # the binder refuses sizes too small first: these are too large
            raise ShapeError(f"the sizes {dict(zip(dims, dims_arg))} are too large for {func_name}: its "
                             f"temporaries would hold more than {MAX_WORK:.3g} numbers")
        size = max((a.size for a in arrays), default=0)
        nt = threads if choice is None else (choice.pick(size) if size < c_run.PARALLEL_FROM else None)
        memo = bound.memo["c"] = (dims_arg, need, nt, size, tuple(bound.shapes[k] for k in arrays_out))
        return memo

    def run_bound(bound, arrays):
        """The kernel on `arrays`, of its dtype, whose shapes `bound` is the binding of:
        the caller has checked both (fn below, or the call plan, call_plan.py, which
        compares the shapes of the last binding). The kernel trusts `dims`: the binding's
        checks are what keep its every access in range. An array that is not C-contiguous
        (from_buffer refuses it) or not aligned (from_buffer takes it: a misaligned
        pointer is undefined behaviour in C) is copied. Scalar outputs go to the end of
        this thread's work block and are read back as floats: no 0-d array per call.
        Per call: one from_buffer per array (~1k instructions each, most of it NumPy's
        buffer export) and one read of its flags (~50 ns)."""
        dims_arg, need, nt, size, out_shapes = bound.memo.get("c") or remember(bound, arrays)
        try:
            work, tail, tails = workspace.block(need)
        except MemoryError:
            raise MemoryError(f"the C kernel {func_name} could not allocate its temporaries "
                              f"({need * workspace.dtype.itemsize / 1e6:.0f} MB)") from None
        ins = None
        for a in arrays:  # (a loop: 60% of all(map(attrgetter("flags.aligned"), arrays))'s time)
            if not a.flags.aligned:
                break
        else:
            try:
                ins = list(map(fb, cells, arrays))
            except ValueError:
                pass
        if ins is None:
            ins = [fb(cell, c_run.c_array(a)) for a in arrays]
        news = list(map(empty, out_shapes))
        outs = list(map(fb, cells, news))
        if n_scalar:
            outs[:0] = tails
            if not in_order:
                # (not a comprehension: it would make `outs` a cell, allocated per call)
                outs = list(map(outs.__getitem__, order))
        if nt is not None:
            status = kernel(dims_arg, nt, work, *ins, *outs)
        else:
            nt = choice.pick(size)
            start = time.perf_counter()
            status = kernel(dims_arg, nt, work, *ins, *outs)
            choice.record(nt, time.perf_counter() - start, size)
        if status != 0:  # -2, as its _work said above: never reached
            raise _refused(func_name, dims, dims_arg)
        if not n_scalar:
            return tuple(news)
        if in_order:
            return (*unpack(tail, n_scalar), *news)
        return tuple(map((unpack(tail, n_scalar) + news).__getitem__, order))

    # out-of-order outputs: where each output is among the scalars-first pointers and results
    first = [k for k, s in enumerate(scalar) if s] + arrays_out
    order = [first.index(k) for k in range(len(scalar))]

    def fn(*arrays):
        """The binding's checks run here, not only in the caller's (Compiled.function
        skips those)."""
        arrays = [np.asarray(a, dtype=real, order="C") for a in arrays]  # 0-d stays 0-d
        return run_bound(signature.bind(arrays), arrays)

    fn.__name__ = func_name
    fn.workspace = workspace  # (the tests look at its blocks)
    if real == np.float64:  # the call plan's arrays are float64: of this kernel's dtype
        fn.run_bound = run_bound
    return fn, source, params


def _refused(func_name: str, dims: list, dims_arg) -> ShapeError:
    return ShapeError(f"the C kernel {func_name} refused the sizes {dict(zip(dims, dims_arg))}")


__all__ = ["compile_c_tensor", "dim_names", "generate_c_tensor"]
