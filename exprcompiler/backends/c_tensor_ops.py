"""C backend for tensor traces, the ops: one emitter per op that computes (views are
in c_tensor_loops). Each gets the loops being written, the instruction, its
arguments' views and its destination: a contiguous buffer, or for a scalar result a
View whose text is the name of the double to declare.
"""

from __future__ import annotations

from typing import Callable

from ..tensor_rules import shape_index
from .c_tensor_loops import SIMD, Loops, View, is_literal, paren, at, read, view_diagonal, view_index, wrap_loop

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


def _elements(x: View):
    return lambda idx: read(x, x.shape, idx)


def emit_reduction(e: Loops, ins, args, dst: View) -> None:
    x, = args
    axes = _axes(ins, len(x.shape))
    e.reduce({"sum": "+", "mean": "+", "max": "max", "min": "min"}[ins.op], x.shape, _elements(x), axes, dst)
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
    if a == len(x.shape) - 1:
        _softmax_rows(e, x, dst, m)
        return
    e.assign(dst, lambda rd: f"exp({rd(x)} - {rd(m)})")
    e.reduce("+", x.shape, _elements(dst), (a,), m)  # the maxima are no longer needed
    e.assign(dst, lambda rd: f"{rd(dst)} / {rd(m)}")


def _each_row(e: Loops, x: View, row) -> None:
    """row(idx)'s lines for each slice of x along its innermost axis (idx: the leading
    indices), in a block of its own where x is a vector (its locals scoped there)."""
    lead = x.shape[:-1]
    e.emit(e.nest(lead, row, "") if lead else ["{", *("    " + ln for ln in row([])), "}"])


def _softmax_rows(e: Loops, x: View, dst: View, m: View) -> None:
    """emit_softmax along the innermost axis, each slice a row, its maximum m held in a
    local: read from the temporary inside the exp loop, it kept gcc from vectorizing
    that loop ("latch block not empty"), so exp ran on scalar glibc (softmax of 10^5
    elements, one thread: 399 us, where logsumexp's vectorized loop took 110). The sum
    is the same loop over the same terms as before; exp is libmvec's (within its ulp of
    glibc's, as in every other vectorized loop here)."""
    n = e.dim_c(x.shape[-1])
    cm, total = e.fresh("sm_c"), e.fresh("sm_sum")

    def row(idx):
        def el(j):
            return read(x, x.shape, idx + [j])

        def out(j):
            return at(dst, idx + [j])
        return [f"const double {cm} = {read(m, x.shape, idx + ['0'])};",
                *wrap_loop("j", n, [f"{out('j')} = exp({el('j')} - {cm});"], SIMD),
                f"double {total} = 0.0;",
                *wrap_loop("j", n, [f"{total} += {out('j')};"], f"{SIMD} reduction(+:{total})"),
                *wrap_loop("j", n, [f"{out('j')} = {out('j')} / {total};"], SIMD)]
    _each_row(e, x, row)


def emit_log_softmax(e: Loops, ins, args, dst: View) -> None:
    """(x - c) - log1p(T) along the axis, c the maximum, T the sum of exp(x - c) over
    the others, as runtime.log_softmax: where one element attains c, its x - c and its
    term of T are 0 (single +inf: 0 there, the limit); at ties each keeps its own and T
    is their sum less 1 (exactly: at least 2). Along the innermost axis,
    _log_softmax_rows; along another, four passes over the argument: the maximum, how
    many attain it, T, the result (per slice 1 where it is attained once, then
    log1p(T)), each vectorized across the slices, as they were."""
    x, = args
    a = ins.attr("axis")
    e.libm.add("exp")
    e.helpers.add("xc_log1p")
    kept = [1 if k == a else d for k, d in enumerate(x.shape)]
    if a == len(x.shape) - 1:
        return _log_softmax_rows(e, x, dst, kept)
    c, once = e.temp(kept, "lsm_max"), e.temp(kept, "lsm_once")
    e.reduce("max", x.shape, _elements(x), (a,), c)
    e.reduce("+", x.shape, lambda idx: f"({read(x, x.shape, idx)} == {read(c, x.shape, idx)})", (a,), once)
    e.assign(once, lambda rd: f"({rd(once)} == 1.0)")

    def alone(idx) -> str:   # x here is the slice's maximum, attained here only
        return f"({read(x, x.shape, idx)} == {read(c, x.shape, idx)}) & ({read(once, x.shape, idx)} != 0.0)"
    t = e.temp(kept, "lsm_log1p")
    e.reduce("+", x.shape, lambda idx: f"({alone(idx)}) ? 0.0 : exp({read(x, x.shape, idx)} - "
                                       f"{read(c, x.shape, idx)})", (a,), t)
    e.assign(t, lambda rd: f"xc_log1p({rd(t)} + ({rd(once)} - 1.0))")
    e.emit(e.nest(dst.shape, lambda idx: [
        f"{at(dst, idx)} = (({alone(idx)}) ? 0.0 : {read(x, x.shape, idx)} - {read(c, x.shape, idx)})"
        f" - {read(t, x.shape, idx)};"]))


def _log_softmax_rows(e: Loops, x: View, dst: View, kept) -> None:
    """emit_log_softmax along the innermost axis, each slice a row: the maximum
    (vectorized: Loops.extreme_row), then one loop for T and for how many attain the
    maximum, then the result. The loops of T and of the result select by a bit mask
    (xc_select), where a branch kept the result's loop scalar (gcc vectorizes no loop
    with a branch and a libm call, and this one not even without the call). T has the
    old kernel's bits: the sum of the same terms in the same vectorized loop, 0 at the
    single maximum; where it is not single (ties, NaN) a second loop sums exp(x - c)
    over all, as the old kernel did there, less 1. Three passes where there were four,
    the rows' scalars held in locals (a temporary read in the loop kept gcc from
    vectorizing softmax's)."""
    e.helpers.add("xc_select")
    c = e.temp(kept, "lsm_max")
    e.reduce("max", x.shape, _elements(x), (len(x.shape) - 1,), c)
    n = e.dim_c(x.shape[-1])
    cm, tt, kk, cq, lg = (e.fresh(s) for s in ("lsm_c", "lsm_t", "lsm_k", "lsm_cq", "lsm_log1p"))

    def row(idx):
        def el(j):
            return read(x, x.shape, idx + [j])
        return [f"const double {cm} = {read(c, x.shape, idx + ['0'])};",
                f"double {tt} = 0.0, {kk} = 0.0;",
                *wrap_loop("j", n, [f"{tt} += xc_select({el('j')} == {cm}, 0.0, exp({el('j')} - {cm}));",
                                    f"{kk} += ({el('j')} == {cm});"], f"{SIMD} reduction(+:{tt}, {kk})"),
                f"if ({kk} != 1.0) {{   /* ties or NaN: every term, then less 1 */",
                f"    {tt} = 0.0;",
                *("    " + ln for ln in wrap_loop("j", n, [f"{tt} += exp({el('j')} - {cm});"],
                                                    f"{SIMD} reduction(+:{tt})")),
                "}",
                f"const double {lg} = xc_log1p({tt} + (({kk} == 1.0) - 1.0));",
                f"const double {cq} = {kk} == 1.0 ? {cm} : NAN;   /* the single maximum, else none */",
                *wrap_loop("j", n, [f"{at(dst, idx + ['j'])} = xc_select({el('j')} == {cq}, 0.0, "
                                    f"{el('j')} - {cm}) - {lg};"], SIMD)]
    _each_row(e, x, row)


def emit_log_softmax_vjp(e: Loops, ins, args, dst: View) -> None:
    """runtime.log_softmax_vjp: a = g - s·G, s = exp(x - c)/S, G = sum(g), c the
    maximum, S the sum of exp(x - c); s from its limit relu(o + 1) where S is NaN; where
    some s exceeds 1/2 (S < 2, or that limit), those elements minus the sum of the
    others' a. Along the innermost axis: the maximum, one loop for exp(x - c) (kept in
    dst), S and G, one for the result (two where S < 2); along another axis the same
    steps as loops over the whole argument."""
    x, o, g = args
    a = ins.attr("axis")
    e.libm.add("exp")
    e.helpers |= {"xc_select", "xc_relu"}
    kept = [1 if k == a else d for k, d in enumerate(x.shape)]
    c = e.temp(kept, "lsv_max")
    e.reduce("max", x.shape, _elements(x), (a,), c)
    if a != len(x.shape) - 1:
        e.assign(dst, lambda rd: f"exp({rd(x)} - {rd(c)})")
        total, gsum, others = e.temp(kept, "lsv_sum"), e.temp(kept, "lsv_g"), e.temp(kept, "lsv_others")
        e.reduce("+", x.shape, _elements(dst), (a,), total)
        e.reduce("+", x.shape, _elements(g), (a,), gsum)
        e.assign(dst, lambda rd: f"({rd(total)} == {rd(total)}) ? {rd(dst)} / {rd(total)} : xc_relu({rd(o)} + 1.0)")

        def adj(idx) -> str:
            s = read(dst, x.shape, idx)
            return f"{read(g, x.shape, idx)} - {s} * {read(gsum, x.shape, idx)}"
        e.reduce("+", x.shape, lambda idx: f"xc_select({read(dst, x.shape, idx)} > 0.5, 0.0, {adj(idx)})", (a,), others)
        e.emit(e.nest(dst.shape, lambda idx: [
            f"{at(dst, idx)} = xc_select({at(dst, idx)} > 0.5, -{read(others, x.shape, idx)}, {adj(idx)});"]))
        return
    n = e.dim_c(x.shape[-1])
    cm, S, G, A, ej, sj, half = (e.fresh(t) for t in ("lsv_c", "lsv_sum", "lsv_g", "lsv_others", "lsv_e", "lsv_q",
                                                      "lsv_half"))

    def row(idx):
        def el(v, j="j"):
            return read(v, x.shape, idx + [j])
        out = at(dst, idx + ["j"])
        return [f"const double {cm} = {read(c, x.shape, idx + ['0'])};",
                f"double {S} = 0.0, {G} = 0.0;",
                *wrap_loop("j", n, [f"const double {ej} = exp({el(x)} - {cm});", f"{out} = {ej};",
                                    f"{S} += {ej};", f"{G} += {el(g)};"], f"{SIMD} reduction(+:{S}, {G})"),
                f"if ({S} != {S}) {{   /* every s NaN: their limit, relu(o + 1) */",
                *("    " + ln for ln in wrap_loop("j", n, [f"{out} = xc_relu({el(o)} + 1.0);"])),
                f"    {S} = 1.0;",
                "}",
                f"const double {sj} = {G} / {S};   /* s·G as e·(G/S): no division an element */",
                f"if ({S} < 2.0) {{   /* an s may exceed 1/2 (each is at most 1/S) */",
                f"    const double {half} = 0.5 * {S};   /* s > 1/2 as e > S/2 (S/2 exact) */",
                f"    double {A} = 0.0;",
                *("    " + ln for ln in wrap_loop("j", n, [
                    f"{A} += xc_select({out} > {half}, 0.0, {el(g)} - {out} * {sj});"], f"{SIMD} reduction(+:{A})")),
                *("    " + ln for ln in wrap_loop("j", n, [
                    f"{out} = xc_select({out} > {half}, -{A}, {el(g)} - {out} * {sj});"], SIMD)),
                "} else {",
                *("    " + ln for ln in wrap_loop("j", n, [f"{out} = {el(g)} - {out} * {sj};"], SIMD)),
                "}"]
    _each_row(e, x, row)


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
    "logsumexp": emit_logsumexp, "softmax": emit_softmax, "log_softmax": emit_log_softmax,
    "log_softmax_vjp": emit_log_softmax_vjp, "norm": emit_norm,
    "sum_to": emit_sum_to, "size_ratio": emit_size_ratio, "matmul": emit_matmul, "outer": emit_outer, "scatter": emit_scatter,
    "stack": emit_stack, "concatenate": emit_concatenate, "diag": emit_diag,
}
