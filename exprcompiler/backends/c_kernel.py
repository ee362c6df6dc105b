"""The C backend's one-function kernel: the layout around its statements' lines. One
inlined function of a point, a range function with the `omp simd` loop over the
points lo to hi - 1 (a second copy for contiguous inputs, tiles of inner points where
c_tiles says so), the batch entry that runs it on one thread or on each thread's share
(_on_threads), the entry for outputs at other strides (_strided_outputs) and the
packed one-point entry.

Where it sits: c_backend.generate_c calls _single_kernel with c_statements' lines for
a trace of at most c_backend.SPLIT_FROM statements (a larger one's parts: c_split,
which takes _table from here through generate_c).
"""

from __future__ import annotations

from . import c_driver, c_tiles
from .c_statements import _body


# Up to this many inputs, the kernel has a second copy of its loop for the case of
# every input an array: contiguous loads vectorize into plain vector loads, where
# strided ones are assembled lane by lane (about 8% slower on the seed functions).
# With many inputs the copy doubles a long vectorized compile for little gain.
CONTIGUOUS_UP_TO = 8
# Output k goes to out_k[i * os_k]. A Jacobian's or Hessian's kernel (`columns`) is
# called with each point's entries side by side, in the final layout (batch..., m, n):
# its loop stores at the strides it is given (on a 6-link pendulum's Jacobian, 7x14
# at 10^4 points, as fast as storing into 105 separate arrays). Other kernels are
# called with separate arrays: their loop stores contiguously, which vectorizes, and
# other strides (from C callers of an exported kernel) go through a tile of XC_TILE
# points that the contiguous loop fills — no second inlined copy of the body to compile.
TILE = 64


def _single_kernel(stmts, inputs: dict, func_name: str, decl: str, n_out: int, columns: bool,
                   inner=None, wide: bool = False) -> list[str]:
    """The kernel as one function of a point, inlined into the loop over a range of
    the batch (two loops for few inputs: see CONTIGUOUS_UP_TO), which the kernel runs
    whole on one thread or split over a team (see _on_threads), and called once by the packed
    one-point entry. `inner`: c_tiles.inner_tests' tests and inputs, and the statements
    of the body in INNER's forms, if the loop runs tiles of inner points. `wide`: the
    body calls no libmvec function, and its plain loop runs c_tiles.WIDE_LANES lanes."""
    point, run = f"{func_name}_point", f"{func_name}_range"
    params = [f"const double {nm}" for nm in inputs] + [f"double *restrict out{k}" for k in range(n_out)]
    lines = ["#if defined(__GNUC__)", "#define XC_INLINE static inline __attribute__((always_inline))",
             "#define XC_RANGE static __attribute__((noinline))",
             "#else", "#define XC_INLINE static inline", "#define XC_RANGE static", "#endif",
             *c_driver.CLEAN_UPPER, "",
             "/* one point */", f"XC_INLINE void {point}({', '.join(params) or 'void'})", "{"]
    lines += _body(stmts) + ["}", ""]
    if inner:
        tests, reads, inner_stmts = inner
        lines += c_tiles.inner_point(point, params, _body(inner_stmts), tests, reads)
    if n_out and not columns:
        lines += _strided_outputs(func_name, decl, len(inputs), n_out)

    def loop(index_of, pad: str) -> list[str]:
        store = (lambda k: f"&out{k}[i * os{k}]") if columns else (lambda k: f"&out{k}[i]")
        args = [f"in{k}[{index_of(k)}]" for k in inputs.values()] + [store(k) for k in range(n_out)]
        if inner:
            return c_tiles.tiles(pad, point, ", ".join(args), ", ".join(f"in{inputs[nm]}[{index_of(inputs[nm])}]"
                                                                 for nm in inner[1]))
        lanes = f" simdlen({c_tiles.WIDE_LANES})" if wide else ""
        return [f"{pad}#pragma omp simd{lanes}", f"{pad}for (ptrdiff_t i = lo; i < hi; ++i)",
                f"{pad}    {point}({', '.join(args)});"]

    ins = [f"in{k}, st{k}" for k in inputs.values()]
    outs = [f"out{k}, os{k}" if columns else f"out{k}" for k in range(n_out)]
    lines += ["/* the points lo to hi - 1: the batch, or a thread's share of it (c_backend._on_threads) */",
              f"XC_RANGE void {run}(" + ", ".join(
                  ["ptrdiff_t lo", "ptrdiff_t hi"] + [f"const double *in{k}, ptrdiff_t st{k}" for k in inputs.values()]
                  + [f"double *out{k}, ptrdiff_t os{k}" if columns else f"double *out{k}" for k in range(n_out)])
              + ")", "{"]
    if 0 < len(inputs) <= CONTIGUOUS_UP_TO:
        all_arrays = " && ".join(f"st{k} == 1" for k in inputs.values())
        lines += [f"    if ({all_arrays}) {{  /* every input an array */", *loop(lambda k: "i", " " * 8),
                  "    } else {", *loop(lambda k: f"i * st{k}", " " * 8), "    }"]
    else:
        lines += loop(lambda k: f"i * st{k}", " " * 4)
    lines += ["}", "", decl, "{", "    (void)threads;  /* unused in a build without OpenMP */"]
    if n_out and not columns:
        lines += [f"    const ptrdiff_t os[] = {{{_table([f'os{k}' for k in range(n_out)])}}};",
                  f"    for (int k = 0; k < {n_out}; ++k)",
                  f"        if (os[k] != 1) return {func_name}_strided({_call_args(func_name, inputs, n_out)});"]
    lines += _on_threads(lambda bounds: f"{run}({', '.join([bounds] + ins + outs)});")
    lines += ["    XC_CLEAN_UPPER();  /* see c_driver.CLEAN_UPPER */", "    return 0;", "}"]
    return lines


def _on_threads(call) -> list[str]:
    """The kernel's lines that run its range function (`call(bounds)`: the call's
    statement): on the whole batch where it has one thread, else from an OpenMP team
    on each thread's share of whole tiles of XC_TILE points (the share a `parallel for
    schedule(static)` over the tiles would give). Whole tiles, tiled kernel or not: a
    share of points that ended between multiples of the vector length ran its last
    points in the loop's scalar epilogue (scalar libm, not libmvec), so a point's bits
    depended on the thread count (sin(x) on 3 threads: 3 of 1,000 points 1-2 ulps off
    one thread's); a tile starts every vector at the same point on any number of
    threads, so the bits are those of one thread (tests/test_c_tiles.py). The range
    function is never inlined, so the body is compiled once. An `if(threads > 1)`
    clause on the pragma would not do: gcc 12 makes it num_threads(1) and still enters
    a parallel region (GOMP_parallel) every call, as c_tensor_ops._parallel found.
    One thread, the kernel called through cffi (value and gradient of exp(x) - 1 and
    log(1 - exp(x)) stable, x*y + sin(x), sigmoid(x)(1 - sigmoid(x)); min of 21
    interleaved rounds, load 6 on 2 cores): 0.33-0.62 µs less a call, 0.50-0.62x the
    time on 1 and 10 points, 0.62-0.72x on 100, 0.78-0.96x on 10^3; on 10^6
    0.93-1.00x (thread CPU time, min of 31). Each tile of a kernel with outputs at
    other strides paid it too (_strided_outputs calls the kernel with one thread)."""
    return ["#ifdef _OPENMP", "    if (threads > 1) {", "        #pragma omp parallel num_threads(threads)",
            "        {  /* schedule(static)'s share of the tiles */",
            "            const ptrdiff_t units = (n + XC_TILE - 1) / XC_TILE, t = omp_get_num_threads(),"
            " k = omp_get_thread_num();",
            "            ptrdiff_t q = units / t, r = units % t, lo, hi;",
            "            if (k < r) { q += 1; r = 0; }",
            "            lo = q * k + r, hi = lo + q;",
            f"            {call('lo * XC_TILE, hi * XC_TILE < n ? hi * XC_TILE : n')}", "        }",
            "    } else", "#endif", f"    {call('0, n')}"]


def _table(items) -> str:
    rows = [", ".join(items[k:k + 8]) for k in range(0, len(items), 8)] or ["0"]
    return ",\n        ".join(rows)


def _call_args(func_name: str, inputs: dict, n_out: int) -> str:
    return ", ".join(["n", "threads"] + [f"in{k}, st{k}" for k in inputs.values()]
                     + [f"out{k}, os{k}" for k in range(n_out)])


def _strided_outputs(func_name: str, decl: str, n_in: int, n_out: int) -> list[str]:
    """The kernel for outputs at strides other than 1 (see TILE): blocks of points
    computed by the kernel itself into a contiguous tile, then stored point by point."""
    tile_args = ["m", "1"] + [f"in{k} + i0 * st{k}, st{k}" for k in range(n_in)] + \
        [f"tile + {k} * XC_TILE, 1" for k in range(n_out)]
    rows = [", ".join(tile_args[k:k + 8]) for k in range(0, len(tile_args), 8)]
    call = f"{func_name}("
    return [decl + ";", "", "/* outputs at other strides than 1: see the kernel's first lines */",
            "static " + decl.replace(f" {func_name}(", f" {func_name}_strided(", 1), "{",
            f"    double *const outs[] = {{{_table([f'out{k}' for k in range(n_out)])}}};",
            f"    const ptrdiff_t osts[] = {{{_table([f'os{k}' for k in range(n_out)])}}};",
            "    int failed = 0;",
            "    (void)threads;  /* unused in a build without OpenMP */",
            "    #pragma omp parallel num_threads(threads) if(threads > 1) reduction(|: failed)",
            "    {",
            f"        double *tile = malloc(sizeof(double) * XC_TILE * {n_out});",
            "        failed = tile == NULL;",
            "        #pragma omp for schedule(static)",
            "        for (ptrdiff_t i0 = 0; i0 < n; i0 += XC_TILE) {",
            "            ptrdiff_t m = n - i0 < XC_TILE ? n - i0 : XC_TILE;",
            "            if (tile == NULL) continue;",
            f"            {call}" + (",\n" + " " * (12 + len(call))).join(rows) + ");",
            f"            for (int k = 0; k < {n_out}; ++k) {{",
            "                double *o = outs[k] + i0 * osts[k];",
            "                const ptrdiff_t s = osts[k];",
            "                for (ptrdiff_t j = 0; j < m; ++j)",
            "                    o[j * s] = tile[k * XC_TILE + j];",
            "            }",
            "        }",
            "        free(tile);",
            "    }",
            "    XC_CLEAN_UPPER();",
            "    return failed ? -1 : 0;",
            "}", ""]


def _packed(func_name: str, n_in: int, n_out: int) -> list[str]:
    """One point with inputs and outputs packed in arrays: one pointer each to pass, so
    a call with a thousand variables costs one call (api's Compiled.at). It calls the
    one-point function directly (a loop of length 1 costs more than the arithmetic on
    small kernels). A split kernel's: c_driver.xc_split_point."""
    args = [f"in[{k}]" for k in range(n_in)] + [f"out + {k}" for k in range(n_out)]
    call = f"{func_name}_point("
    rows = [", ".join(args[k:k + 8]) for k in range(0, len(args), 8)] or [""]
    body = [f"    {call}" + (",\n" + " " * (4 + len(call))).join(rows) + ");", "    XC_CLEAN_UPPER();", "    return 0;"]
    return ["", "/* one point: input k in in[k], output k to out[k] */", packed_decl(func_name), "{", *body, "}"]


def packed_decl(func_name: str) -> str:
    """The one-point entry's declaration (both layouts)."""
    return f"int {func_name}_packed(const double *in, double *out)"


__all__ = ["TILE", "packed_decl"]
