"""C backend for tensor traces, the ops: one emitter per op that computes (views are
in c_tensor_loops; softmax, log_softmax and their internal ops in c_tensor_softmax). Each gets the loops being written, the instruction, its
arguments' views and its destination: a contiguous buffer, or for a scalar result a
View whose text is the name of the double to declare.
"""

from __future__ import annotations

from typing import Callable

from ..tensor_rules import shape_index
from .c_tensor_loops import SIMD, Loops, View, at, elements, is_literal, paren, read, view_diagonal, view_index, wrap_loop
from .c_tensor_softmax import SOFTMAX_EMITTERS

# Row loops of matrix products split over threads (a no-op in a build without OpenMP).
PARALLEL = "#pragma omp parallel for num_threads(threads) schedule(static)"


def _parallel(loop: list[str]) -> list[str]:
    """`loop` split over threads when there are several, run as it is on one. An
    `if(threads > 1)` clause would not do: gcc 12 makes it num_threads(1) and still
    enters a parallel region (GOMP_parallel) every call. The least-squares gradient's
    kernel (one such loop), one thread, side by side at load 5 on 2 cores: X 4x3 2.2 µs
    with the clause, 1.1 µs with this branch; X 500x100 21.8 against 18.8 µs."""
    return ["if (threads > 1) {", "    " + PARALLEL, *("    " + ln for ln in loop),
            "} else {", *("    " + ln for ln in loop), "}"]


# -- ops that compute: (loops, instruction, argument views, destination) ---------------------
def _axes(ins, ndim: int) -> tuple:
    axis = ins.attr("axis")
    return tuple(range(ndim)) if axis is None else axis


def emit_reduction(e: Loops, ins, args, dst: View) -> None:
    x, = args
    axes = _axes(ins, len(x.shape))
    e.reduce({"sum": "+", "mean": "+", "max": "max", "min": "min"}[ins.op], x.shape, elements(x), axes, dst)
    if ins.op == "mean":
        count = e.size([x.shape[a] for a in axes])
        count = f"{count}.0" if is_literal(count) else f"(double)({count})"
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
        e.reduce("max", x.shape, elements(x), axes, m)
        e.emit([f"{m.text} = isfinite({m.text}) ? {m.text} : 0.0;"])
        e.reduce("+", x.shape, lambda idx: f"exp({read(x, x.shape, idx)} - {m.text})", axes, s)
        e.emit([f"double {dst.text} = log({s.text}) + {m.text};"])
        return
    e.reduce("max", x.shape, elements(x), axes, dst)
    e.assign(dst, lambda rd: f"isfinite({rd(dst)}) ? {rd(dst)} : 0.0")
    m = e.buffer(dst.ptr, [1 if k in axes else d for k, d in enumerate(x.shape)])
    s = e.temp(dst.shape)
    e.reduce("+", x.shape, lambda idx: f"exp({read(x, x.shape, idx)} - {read(m, x.shape, idx)})", axes, s)
    e.assign(dst, lambda rd: f"log({rd(s)}) + {rd(dst)}")


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
    e.reduce("+", c.shape, elements(c), axes, dst)


def emit_size_ratio(e: Loops, ins, args, dst: View) -> None:
    x, out = args
    nx, nout = e.size(x.shape), e.size(out.shape)
    e.emit([f"double {dst.text} = (double)({nx}) / (double)({nout} > 0 ? {nout} : 1);"])


# Matrix products take four rows at a time: four independent sums (a dot product with
# one accumulator waits on each addition), or four rows added into the result per
# pass over it (a quarter of its loads and stores). The least-squares gradient at X
# 500x100, one thread: 25 µs one row at a time, 20 µs four at a time (OpenBLAS through
# NumPy: 17 µs); at 5000x1000 all three read X twice from memory and take the same time.
# Each loop alone, in C against OpenBLAS's dgemv at X 500x100: dot products 0.94x, rows
# added 0.85x its time. Eight at a time: the same at 500x100, 2% faster at 5000x1000,
# but matrix·matrix 64x64 @ 64x32 went from 93 to 110 µs (load 4-5 on 2 cores).
UNROLL = 4


def _blocked(index: str, count: str, body: Callable[[list[str]], list[str]], parallel: bool = False) -> list[str]:
    """`index` over [0, count): body(indices) on UNROLL of them at a time, then the rest
    one by one; `parallel`: the first of these loops split over threads."""
    rows = [index] + [f"{index} + {r}" for r in range(1, UNROLL)]
    split = _parallel if parallel else (lambda loop: loop)
    if not is_literal(count):
        return (split(wrap_loop(index, f"{count} - {UNROLL - 1}", body(rows), step=UNROLL))
                + wrap_loop(index, count, body([index]), start=f"{paren(count)} - {paren(count)} % {UNROLL}"))
    n = int(count)
    rest = n - n % UNROLL   # a known size: only the loops that run
    if not rest:   # fewer than UNROLL: not worth a thread
        return wrap_loop(index, count, body([index])) if n else []
    return (split(wrap_loop(index, str(rest), body(rows), step=UNROLL))
            + (wrap_loop(index, count, body([index]), start=str(rest)) if rest < n else []))


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
            e.emit(_blocked("i", M, _dots(K, lambda i, k: at(A, [i, k]), lambda i, k: at(B, [k]), out), True))
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
    e.emit(_parallel(wrap_loop("i", M, row)))


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


def emit_diag(e: Loops, ins, args, dst: View) -> None:
    """The square matrix with the vector on its diagonal: zeros, then the diagonal."""
    v, = args
    _zero(e, dst)
    e.assign(view_diagonal(e, dst, v.shape), lambda rd: rd(v))


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
    "logsumexp": emit_logsumexp, **SOFTMAX_EMITTERS, "norm": emit_norm,
    "sum_to": emit_sum_to, "size_ratio": emit_size_ratio, "matmul": emit_matmul, "outer": emit_outer, "scatter": emit_scatter,
    "stack": emit_stack, "concatenate": emit_concatenate, "diag": emit_diag,
}
