"""C backend for tensor traces, the loops: how each op reads and writes arrays.

A value is a `View`: its element (i_0, ..., i_{r-1}) is ptr[off + Σ i_k·strides[k]]
(offset and strides are C expressions), or one scalar C expression for every
element. Views make transpose, broadcast_to, constant indexing and the reshape of a
contiguous array free: no loop, no copy. Every op that computes writes a contiguous
buffer and reads its arguments through their views; broadcasting is a stride of 0.

`Loops` holds the primitives (an elementwise assignment, a reduction, a loop nest)
and the state the kernel's function body needs (lines, temporaries, helpers); the
per-op emitters below are written with them. The innermost loop of every nest
carries `#pragma omp simd` where its iterations are independent (or a `+`
reduction), so gcc vectorizes it, libm calls included (see c_backend.VECTOR_MATH).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..tensor_rules import shape_index

SIMD = "#pragma omp simd"
# Row loops of matrix products split over threads (a no-op with one thread, or in a
# build without OpenMP).
PARALLEL = "#pragma omp parallel for num_threads(threads) schedule(static) if(threads > 1)"


@dataclass(frozen=True)
class View:
    shape: tuple                 # trace dimensions: ints and names ("n", "n-1")
    ptr: str = ""                # "": the scalar expression `text` at every index
    off: str = "0"
    strides: tuple = ()
    text: str = ""
    contiguous: bool = False


# -- C integer arithmetic on expressions, folding literals ------------------------------------
def _is_int(t: str) -> bool:
    return t.lstrip("-").isdigit()


def _par(t: str) -> str:
    return f"({t})" if any(c in t[1:] for c in "+-") or t.startswith("-") else t


def c_mul(a: str, b: str) -> str:
    if a == "0" or b == "0":
        return "0"
    if a == "1":
        return b
    if b == "1":
        return a
    if _is_int(a) and _is_int(b):
        return str(int(a) * int(b))
    return f"{_par(a)} * {_par(b)}"


def c_add(a: str, b: str) -> str:
    if a == "0":
        return b
    if b == "0":
        return a
    if _is_int(a) and _is_int(b):
        return str(int(a) + int(b))
    return f"{a} + {b}"


def c_prod(items: Sequence[str]) -> str:
    out = "1"
    for t in items:
        out = c_mul(out, t)
    return out


def row_major(dims: Sequence[str]) -> tuple:
    strides, acc = [], "1"
    for d in reversed(dims):
        strides.append(acc)
        acc = c_mul(acc, d)
    return tuple(reversed(strides))


def at(v: View, idx: Sequence) -> str:
    """v's element at one index per dimension (None: index 0)."""
    if not v.ptr:
        return v.text
    terms = [] if v.off == "0" else [v.off]
    terms += [c_mul(i, st) for i, st in zip(idx, v.strides) if i is not None and st != "0"]
    return f"{v.ptr}[{' + '.join(terms) or '0'}]"


def read(v: View, loop: tuple, idx: Sequence[str]) -> str:
    """v broadcast against a loop over the shape `loop` with indices `idx`."""
    if not v.ptr:
        return v.text
    lead = len(loop) - len(v.shape)
    return at(v, [None if d == 1 and loop[lead + k] != 1 else idx[lead + k] for k, d in enumerate(v.shape)])


def wrap_loop(index: str, count: str, body: list[str], pragma: str = "", start: str = "0",
              step: int = 1) -> list[str]:
    advance = f"++{index}" if step == 1 else f"{index} += {step}"
    head = ([pragma] if pragma else []) + [f"for (ptrdiff_t {index} = {start}; {index} < {count}; {advance})"]
    if len(body) == 1:
        return head + ["    " + body[0]]
    return head[:-1] + [head[-1] + " {"] + ["    " + ln for ln in body] + ["}"]


class Loops:
    """The function body being written: lines, temporaries, helpers and libm calls used."""

    def __init__(self, dim_c: Callable, fresh: Callable[[str], str]):
        self.dim_c = dim_c             # trace dimension -> C expression
        self.fresh = fresh             # a new identifier from a stem
        self.lines: list[str] = []
        self.temps: list[tuple[str, str]] = []   # (pointer name, size) in the arena
        self.helpers: set[str] = set()
        self.libm: set[str] = set()

    def emit(self, lines: list[str]) -> None:
        self.lines += ["    " + ln for ln in lines]

    def dims(self, shape) -> list[str]:
        return [self.dim_c(d) for d in shape]

    def size(self, shape) -> str:
        return c_prod(self.dims(shape))

    def buffer(self, ptr: str, shape) -> View:
        return View(tuple(shape), ptr, "0", row_major(self.dims(shape)), contiguous=True)

    def temp(self, shape, stem: str = "t") -> View:
        name = self.fresh(stem)
        self.temps.append((name, self.size(shape)))
        return self.buffer(name, shape)

    def nest(self, shape, body: Callable[[list[str]], list[str]], pragma: str = SIMD) -> list[str]:
        """Loops over `shape` (indices i0, i1, ...) around body(indices); `pragma` on the innermost."""
        idx = [f"i{k}" for k in range(len(shape))]
        lines = body(idx)
        for k in range(len(shape) - 1, -1, -1):
            lines = wrap_loop(idx[k], self.dim_c(shape[k]), lines, pragma if k == len(shape) - 1 else "")
        return lines

    def assign(self, dst: View, expr: Callable[[Callable[[View], str]], str]) -> None:
        """dst[...] = expr(read) over dst's shape: `read(view)` gives an argument's
        element. One flat loop when dst and every argument are contiguous of dst's
        shape (or scalars), nested loops with strides otherwise."""
        if not dst.shape:
            self.emit([f"{at(dst, [])} = {expr(lambda v: at(v, []))};" if dst.ptr else
                       f"double {dst.text} = {expr(lambda v: at(v, []))};"])
            return
        leaves: list[View] = []
        expr(lambda v: leaves.append(v) or "")
        if dst.contiguous and all(not v.ptr or (v.contiguous and v.shape == dst.shape) for v in leaves):
            def flat(v: View) -> str:
                return v.text if not v.ptr else f"{v.ptr}[{c_add(v.off, 'i')}]"
            self.emit(wrap_loop("i", self.size(dst.shape), [f"{flat(dst)} = {expr(flat)};"], SIMD))
            return
        self.emit(self.nest(dst.shape, lambda idx: [f"{at(dst, idx)} = {expr(lambda v: read(v, dst.shape, idx))};"]))

    def reduce(self, kind: str, shape, element: Callable[[list[str]], str], axes, dst: View) -> None:
        """dst = the reduction ("+", "max" or "min") of element(indices) over `axes` of
        a loop over `shape`. dst is contiguous over the kept dimensions, or a scalar
        (dst.text, declared here). Row-major over the argument, so reducing a leading
        axis streams through memory too."""
        init = {"+": "0.0", "max": "-INFINITY", "min": "INFINITY"}[kind]
        if kind != "+":
            self.helpers.add(f"xc_{kind}imum")

        def update(acc: str, x: str) -> str:
            return f"{acc} += {x};" if kind == "+" else f"{acc} = xc_{kind}imum({acc}, {x});"
        axes = set(axes)
        if not dst.ptr:
            name = dst.text
            self.emit([f"double {name} = {init};"])
            pragma = f"{SIMD} reduction(+:{name})" if kind == "+" else ""
            self.emit(self.nest(shape, lambda idx: [update(name, element(idx))], pragma))
            return
        self.assign(dst, lambda rd: init)
        kept = [k for k in range(len(shape)) if k not in axes]
        kstrides = row_major(self.dims([shape[k] for k in kept]))

        def out(idx) -> str:
            return at(View(dst.shape, dst.ptr, "0", kstrides), [idx[k] for k in kept])
        if shape and len(shape) - 1 in axes:   # innermost axis reduced: a scalar accumulator
            last = len(shape) - 1

            def body(idx):
                idx = idx + [f"i{last}"]
                inner = wrap_loop(idx[last], self.dim_c(shape[last]), [update("acc", element(idx))],
                                  f"{SIMD} reduction(+:acc)" if kind == "+" else "")
                return [f"double acc = {out(idx)};", *inner, f"{out(idx)} = acc;"]
            lines = ["{", *("    " + ln for ln in body([])), "}"] if last == 0 else self.nest(shape[:-1], body, "")
            self.emit(lines)
        else:
            self.emit(self.nest(shape, lambda idx: [update(out(idx), element(idx))]))


# -- views: no code ------------------------------------------------------------------------
def _view(e: Loops, shape, ptr, off, strides) -> View:
    strides = tuple(strides)
    return View(tuple(shape), ptr, off, strides, contiguous=strides == row_major(e.dims(shape)))


def view_transpose(e: Loops, ins, args) -> View:
    v, = args
    return _view(e, ins.shape, v.ptr, v.off, reversed(v.strides)) if v.ptr else View(ins.shape, text=v.text)


def view_broadcast(e: Loops, v: View, shape, axis=None) -> View:
    """v broadcast to `shape`, after inserting size-1 dimensions at `axis`."""
    if not v.ptr:
        return View(tuple(shape), text=v.text)
    dims = list(zip(v.shape, v.strides))
    if axis:
        it = iter(dims)
        dims = [(1, "0") if k in axis else next(it) for k in range(len(shape))]
    lead = len(shape) - len(dims)
    strides = ["0"] * lead + ["0" if d == 1 and shape[lead + k] != 1 else s for k, (d, s) in enumerate(dims)]
    return _view(e, shape, v.ptr, v.off, strides)


def view_broadcast_to(e: Loops, ins, args) -> View:
    axis = ins.attr("axis")
    return view_broadcast(e, args[0], ins.shape, (axis,) if isinstance(axis, int) else axis)


def view_index(e: Loops, v: View, key, shape) -> View:
    """v[key] for constant integers and (start, stop, step) slices."""
    if not v.ptr:
        return View(tuple(shape), text=v.text)
    off, strides = v.off, []
    for k, dim in enumerate(v.shape):
        item = key[k] if k < len(key) else (None, None, None)
        st = v.strides[k]
        if isinstance(item, int):
            if item >= 0 or isinstance(dim, int):
                start = str(item % dim if isinstance(dim, int) else item)
            else:
                start = f"{e.dim_c(dim)} - {-item}"
            off = c_add(off, c_mul(start, st))
            continue
        start, stop, step = item
        if isinstance(dim, int):
            start, _, step = slice(start, stop, step).indices(dim)
        else:  # the shape rule allows x[k:], x[:-k] on named dimensions
            start, step = start or 0, 1
        off = c_add(off, c_mul(str(start), st))
        strides.append(c_mul(str(step), st))
    return _view(e, shape, v.ptr, off, strides)


def view_reshape(e: Loops, ins, args) -> View:
    v, = args
    if not v.ptr:
        return View(ins.shape, text=v.text)
    if not v.contiguous:  # a strided view is copied into a contiguous temporary first
        t = e.temp(v.shape)
        e.assign(t, lambda rd: rd(v))
        v = t
    return View(ins.shape, v.ptr, v.off, row_major(e.dims(ins.shape)), contiguous=True)


VIEWS = {
    "transpose": view_transpose,
    "broadcast_to": view_broadcast_to,
    "index": lambda e, ins, args: view_index(e, args[0], ins.attr("key"), ins.shape),
    "reshape": view_reshape,
}


# -- ops that compute: (loops, instruction, argument views, destination) ---------------------
def _axes(ins, ndim: int) -> tuple:
    axis = ins.attr("axis")
    return tuple(range(ndim)) if axis is None else axis


def _elements(x: View):
    return lambda idx: read(x, x.shape, idx)


def emit_reduction(e: Loops, ins, args, dst: View) -> None:
    x, = args
    axes = _axes(ins, len(x.shape))
    e.reduce({"sum": "+", "mean": "+", "max": "max", "min": "min"}[ins.op], x.shape, _elements(x), axes, dst)
    if ins.op == "mean":
        count = e.size([x.shape[a] for a in axes])
        count = f"{count}.0" if _is_int(count) else f"(double)({count})"
        if dst.ptr:
            e.assign(dst, lambda rd: f"{rd(dst)} / {count}")
        else:
            e.emit([f"{dst.text} = {dst.text} / {count};"])


def emit_logsumexp(e: Loops, ins, args, dst: View) -> None:
    """log(sum(exp(x - m))) + m with m the maximum (0 where it is not finite), as
    runtime.logsumexp computes it."""
    x, = args
    axes = _axes(ins, len(x.shape))
    e.libm |= {"exp", "log"}
    if not dst.ptr:
        m, s = View((), text=e.fresh(f"{dst.text}_max")), View((), text=e.fresh(f"{dst.text}_sum"))
        e.reduce("max", x.shape, _elements(x), axes, m)
        e.emit([f"{m.text} = isfinite({m.text}) ? {m.text} : 0.0;"])
        e.reduce("+", x.shape, lambda idx: f"exp({read(x, x.shape, idx)} - {m.text})", axes, s)
        e.emit([f"double {dst.text} = log({s.text}) + {m.text};"])
        return
    e.reduce("max", x.shape, _elements(x), axes, dst)
    e.assign(dst, lambda rd: f"isfinite({rd(dst)}) ? {rd(dst)} : 0.0")
    m = e.buffer(dst.ptr, [1 if k in axes else d for k, d in enumerate(x.shape)])
    s = e.temp(dst.shape)
    e.reduce("+", x.shape, lambda idx: f"exp({read(x, x.shape, idx)} - {read(m, x.shape, idx)})", axes, s)
    e.assign(dst, lambda rd: f"log({rd(s)}) + {rd(dst)}")


def emit_softmax(e: Loops, ins, args, dst: View) -> None:
    """exp(x - max) / sum(exp(x - max)) along the axis, as runtime.softmax."""
    x, = args
    a = ins.attr("axis")
    e.libm.add("exp")
    m = e.temp([1 if k == a else d for k, d in enumerate(x.shape)])
    e.reduce("max", x.shape, _elements(x), (a,), m)
    e.assign(dst, lambda rd: f"exp({rd(x)} - {rd(m)})")
    e.reduce("+", x.shape, _elements(dst), (a,), m)  # the maxima are no longer needed
    e.assign(dst, lambda rd: f"{rd(dst)} / {rd(m)}")


def emit_norm(e: Loops, ins, args, dst: View) -> None:
    x, = args
    e.reduce("+", x.shape, lambda idx: f"{read(x, x.shape, idx)} * {read(x, x.shape, idx)}",
             range(len(x.shape)), dst)
    e.emit([f"{dst.text} = sqrt({dst.text});"])


def emit_sum_to(e: Loops, ins, args, dst: View) -> None:
    """The adjoint of broadcasting: sum over the leading axes and those the reference
    has as 1 (with `axis`, the axes the reference lacks, re-inserted as 1s)."""
    c, ref = args
    axis = ins.attr("axis")
    axis = (axis,) if isinstance(axis, int) else axis or ()
    it = iter(ref.shape)
    target = [1 if k in axis else next(it) for k in range(len(ref.shape) + len(axis))]
    lead = len(c.shape) - len(target)
    axes = [k for k in range(len(c.shape)) if k < lead or (target[k - lead] == 1 and c.shape[k] != 1)]
    e.reduce("+", c.shape, _elements(c), axes, dst)


def emit_size_ratio(e: Loops, ins, args, dst: View) -> None:
    x, out = args
    nx, nout = e.size(x.shape), e.size(out.shape)
    e.emit([f"double {dst.text} = (double)({nx}) / (double)({nout} > 0 ? {nout} : 1);"])


# Matrix products take four rows at a time: four independent sums (a dot product with
# one accumulator waits on each addition), or four rows added into the result per
# pass over it (a quarter of its loads and stores). The least-squares gradient at X
# 500x100, one thread: 25 µs one row at a time, 20 µs four at a time (OpenBLAS through
# NumPy: 17 µs); at 5000x1000 all three read X twice from memory and take the same time.
UNROLL = 4


def _blocked(index: str, count: str, body: Callable[[list[str]], list[str]], pragma: str = "") -> list[str]:
    """`index` over [0, count): body(indices) on UNROLL of them at a time, then the rest one by one."""
    rows = [index] + [f"{index} + {r}" for r in range(1, UNROLL)]
    if _is_int(count):
        stop, rest = str(int(count) - UNROLL + 1), str(int(count) - int(count) % UNROLL)
    else:
        stop, rest = f"{count} - {UNROLL - 1}", f"{_par(count)} - {_par(count)} % {UNROLL}"
    return (wrap_loop(index, stop, body(rows), pragma, step=UNROLL)
            + wrap_loop(index, count, body([index]), start=rest))


def _dots(K: str, a, b, store) -> Callable[[list[str]], list[str]]:
    """The body of a _blocked loop over rows: store(row) = Σ_k a(row, k)·b(row, k)."""
    def body(rows):
        accs = [f"acc{r}" for r in range(len(rows))]
        return [f"double {' = 0.0, '.join(accs)} = 0.0;",
                *wrap_loop("k", K, [f"{acc} += {a(row, 'k')} * {b(row, 'k')};" for acc, row in zip(accs, rows)],
                           f"{SIMD} reduction(+:{', '.join(accs)})"),
                *(f"{store(row)} = {acc};" for acc, row in zip(accs, rows))]
    return body


def _axpys(K: str, coef, row, target, N: str) -> list[str]:
    """target(j) += Σ_k coef(k)·row(k, j) for j in [0, N), k in [0, K)."""
    def body(ks):
        cs = [f"a{r}" for r in range(len(ks))]
        terms = " + ".join(f"{c} * {row(k, 'j')}" for c, k in zip(cs, ks))
        return [*(f"const double {c} = {coef(k)};" for c, k in zip(cs, ks)),
                *wrap_loop("j", N, [f"{target('j')} += {terms};"], SIMD)]
    return _blocked("k", K, body)


def emit_matmul(e: Loops, ins, args, dst: View) -> None:
    """Loops that read memory in order: row dot products for matrix·vector, rows
    accumulated for vector·matrix, i-k-j for matrix·matrix; when a view is transposed,
    the other order (dot products over its contiguous axis)."""
    A, B = args

    def rows_contiguous(v: View) -> bool:  # a matrix whose rows are contiguous (or a scalar)
        return not v.ptr or v.strides[1] == "1" or v.strides[0] != "1"

    def out(*idx) -> str:
        return at(dst, idx)
    K = e.dim_c(A.shape[-1])
    if len(A.shape) == 1 and len(B.shape) == 1:
        e.emit([f"double {dst.text} = 0.0;",
                *wrap_loop("k", K, [f"{dst.text} += {at(A, ['k'])} * {at(B, ['k'])};"],
                           f"{SIMD} reduction(+:{dst.text})")])
        return
    if len(B.shape) == 1:                                 # y[i] = A[i, :] · v
        M = e.dim_c(A.shape[0])
        if rows_contiguous(A):
            e.emit(_blocked("i", M, _dots(K, lambda i, k: at(A, [i, k]), lambda i, k: at(B, [k]), out), PARALLEL))
        else:                                             # A is a transposed view: its rows accumulated
            e.assign(dst, lambda rd: "0.0")
            e.emit(_axpys(K, lambda k: at(B, [k]), lambda k, j: at(A, [j, k]), out, M))
        return
    N = e.dim_c(B.shape[-1])
    if len(A.shape) == 1:                                 # y[j] = Σ_k v[k] B[k, j]
        if rows_contiguous(B):
            e.assign(dst, lambda rd: "0.0")
            e.emit(_axpys(K, lambda k: at(A, [k]), lambda k, j: at(B, [k, j]), out, N))
        else:
            e.emit(_blocked("j", N, _dots(K, lambda j, k: at(A, [k]), lambda j, k: at(B, [k, j]), out)))
        return
    M = e.dim_c(A.shape[0])
    if rows_contiguous(B):                                # C[i, :] += A[i, k] B[k, :]
        row = [*wrap_loop("j", N, [f"{out('i', 'j')} = 0.0;"], SIMD),
               *_axpys(K, lambda k: at(A, ["i", k]), lambda k, j: at(B, [k, j]), lambda j: out("i", j), N)]
    else:                                                 # B is a transposed view: dot products
        row = _blocked("j", N, _dots(K, lambda j, k: at(A, ["i", k]), lambda j, k: at(B, [k, j]),
                                     lambda j: out("i", j)))
    e.emit([PARALLEL] + wrap_loop("i", M, row))


def emit_outer(e: Loops, ins, args, dst: View) -> None:
    u, v = args
    e.emit(e.nest(dst.shape, lambda idx: [f"{at(dst, idx)} = {at(u, idx[:1])} * {at(v, idx[1:])};"]))


def _zero(e: Loops, dst: View) -> None:
    e.assign(dst, lambda rd: "0.0")


def emit_scatter(e: Loops, ins, args, dst: View) -> None:
    g, _ = args
    key = ins.attr("key")
    _zero(e, dst)
    part = view_index(e, dst, key, shape_index([dst.shape], {"key": key}))
    e.assign(part, lambda rd: rd(g))


def emit_stack(e: Loops, ins, args, dst: View) -> None:
    a = ins.attr("axis")
    for j, x in enumerate(args):
        part = view_index(e, dst, ((None, None, None),) * a + (j,), x.shape)
        e.assign(part, lambda rd, x=x: rd(x))


def emit_concatenate(e: Loops, ins, args, dst: View) -> None:
    a = ins.attr("axis")
    start = 0
    for x in args:
        stop = start + x.shape[a]
        part = view_index(e, dst, ((None, None, None),) * a + ((start, stop, None),), x.shape)
        e.assign(part, lambda rd, x=x: rd(x))
        start = stop


EMITTERS = {
    "sum": emit_reduction, "mean": emit_reduction, "max": emit_reduction, "min": emit_reduction,
    "logsumexp": emit_logsumexp, "softmax": emit_softmax, "norm": emit_norm, "sum_to": emit_sum_to,
    "size_ratio": emit_size_ratio, "matmul": emit_matmul, "outer": emit_outer, "scatter": emit_scatter,
    "stack": emit_stack, "concatenate": emit_concatenate,
}
