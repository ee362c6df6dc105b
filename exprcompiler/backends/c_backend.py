"""C backend, source half: a scalar trace becomes a C99 kernel over a batch of points.

    int f_grad(ptrdiff_t n, int threads, const double *in0, ptrdiff_t st0, ..., double *out0, ...)

One loop over the n points, vectorized with `omp simd`, in a function of a range of
them that the kernel calls on the whole batch, or when it has several `threads` (and
was built with OpenMP) on each thread's share; inside it one straight-line statement per named
trace variable, SSA values as local doubles. A large trace is split into parts that
run in turn over blocks of points, passing values on through a per-thread tape
(the only case that allocates memory; the function returns -1 if it cannot). Input k of point i is
in{k}[i * st{k}], so a stride of 0 broadcasts a scalar against arrays. Spellings
come from the op table's `c` field; ops without a libm function get small
helpers that reproduce NumPy's semantics (NaN propagation of maximum, the
one-exp softplus/sigmoid, selections without branches, so loops that call libm still
vectorize). User names become identifiers through naming.identifier (injective,
never a keyword or a header's macro) and reach the source otherwise only in
comments escaped by naming.comment_text.
"""

from __future__ import annotations

import re

from ..version import __version__
from .. import ops as _ops
from ..shapes import show
from ..trace.ir import Trace
from ..trace.render import Renderer, named_vars, target_spelling
from . import c_driver, c_entry, c_nary, c_special, c_split, c_tiles
from .c_forms import c_forms, squares  # noqa: F401 (c_tensor and the VM take them from here too)
from .naming import assign_names, comment_text
from .reserved import C_RESERVED

# Names no variable may take in a kernel: C's and the headers' (see reserved.py), and
# the kernel's own (loop variables, parameters, macros, libm calls).
C_KEYWORDS = C_RESERVED | set("""n i t m j i0 bs in out ins sts outs osts failed threads malloc free
XC_INLINE XC_BLOCK XC_PART XC_DRIVER XC_TILE XC_SHARED XC_UNITS XC_CLEAN_UPPER
xc_part_fn xc_split_run xc_split_point""".split())

# name -> (C definition, helpers it uses)
HELPERS = {
    "xc_square": ("static inline double xc_square(double x) { return x * x; }", ()),
    # Selections without a branch: gcc 12 vectorizes no loop that has both a call (exp,
    # log: libmvec's vector variants) and a branch, and a ternary is a branch to it. The
    # comparisons, where, maximum, the sign and the stable forms below select with this.
    "xc_select": ("/* a if c, else b, by a bit mask */\n"
                  "static inline double xc_select(int c, double a, double b)\n{\n"
                  "    union { double d; unsigned long long u; } x = {a}, y = {b};\n"
                  "    const unsigned long long m = -(unsigned long long)(c != 0);\n"
                  "    x.u = (x.u & m) | (y.u & ~m);\n"
                  "    return x.d;\n}", ()),
    # np.sign: +0.0 for either zero (not x itself, which keeps -0.0), NaN for NaN.
    "xc_sign": ("static inline double xc_sign(double x) "
                "{ return xc_select(x > 0, 1.0, xc_select(x < 0, -1.0, xc_select(x == 0, 0.0, x))); }",
                ("xc_select",)),
    # softplus = max(x, 0) + log1p(exp(-|x|)) and sigmoid = (1 or e) / (1 + e) with
    # e = exp(-|x|): one exp each (gcc computes it once for both: -fno-math-errno), no
    # overflow, no branch (the values of NumPy's logaddexp(0, x) within an ulp or two;
    # runtime.sigmoid's E/(1 + E), E = exp(x), differ by an ulp or two). log1p as
    # c_special's xc_log1p_unit: libmvec's log1p made softplus and its gradient 1.38x
    # log(1 + exp(x)) and its gradient. x >= 0 as the sigmoid's (one comparison for both).
    "xc_softplus": ("static inline double xc_softplus(double x) "
                    "{ return xc_select(x >= 0, x, 0.0) + xc_log1p_unit(exp(-fabs(x))); }",
                    ("xc_select", "xc_log1p_unit")),
    "xc_sigmoid": ("static inline double xc_sigmoid(double x) "
                   "{ const double e = exp(-fabs(x)); return xc_select(x >= 0, 1.0, e) / (1.0 + e); }",
                   ("xc_select",)),
    # np.maximum/np.minimum: NaN from either side, and at a tie the second argument,
    # which decides the sign of max(-0.0, 0.0) (NumPy's x86 loops, as SSE's maxpd/minpd).
    "xc_maximum": ("static inline double xc_maximum(double a, double b) "
                   "{ return xc_select((a > b) | isnan(a), a, b); }", ("xc_select",)),
    "xc_minimum": ("static inline double xc_minimum(double a, double b) "
                   "{ return xc_select((a < b) | isnan(a), a, b); }", ("xc_select",)),
    "xc_relu": ("static inline double xc_relu(double x) { return xc_maximum(x, 0.0); }", ("xc_maximum",)),
    "xc_heaviside": ("static inline double xc_heaviside(double x, double h0) "
                     "{ return xc_select(x < 0, 0.0, xc_select(x > 0, 1.0, xc_select(x == x, h0, x))); }",
                     ("xc_select",)),
    # Comparisons give 0/1 doubles, as in the NumPy backend; NaN compares false (!= true).
    **{f"xc_{name}": (f"static inline double xc_{name}(double a, double b) "
                      f"{{ return xc_select(a {op} b, 1.0, 0.0); }}", ("xc_select",))
       for name, op in (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="), ("ne", "!="))},
    "xc_where": ("static inline double xc_where(double c, double a, double b) { return xc_select(c != 0, a, b); }",
                 ("xc_select",)),
    # Constant exponents reach the call inlined, so the compiler keeps only one branch:
    # x**3 becomes two multiplications instead of a call to pow (8x faster for x**3 - 3x).
    # y == 0.5 as sqrt with pow's answers (+0.0 at -0.0, inf at -inf): gcc 12 miscompiles
    # pow(x, 0.5) in an `omp simd` loop of constant trip count (stores dropped:
    # sum(tanh(X) ** 0.5) at X of shape (4, 3) came out 4.0 instead of 11.85).
    "xc_pow": ("static inline double xc_pow(double x, double y)\n{\n"
               "    if (y == 2.0) return x * x;\n"
               "    if (y == 3.0) return x * x * x;\n"
               "    if (y == 0.5) return x == -INFINITY ? INFINITY : sqrt(x) + 0.0;\n"
               "    return pow(x, y);\n}", ()),
    "xc_xlogy": ("static inline double xc_xlogy(double x, double y) "
                 "{ const double l = log(y); return xc_select(x == 0, 0.0, x * l); }", ("xc_select",)),
    **c_special.HELPERS,  # digamma, polygamma, frac, sinc
    **c_nary.HELPERS,  # hypot3, logaddexp3
}


# libm functions that glibc's libmvec provides in vector form (2.35+ for all but
# sin/cos/exp/log/pow). Declaring them `omp declare simd` lets gcc vectorize the loop
# with calls to the vector variants; without -fopenmp-simd the pragmas are ignored.
VECTOR_MATH = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
               "exp", "expm1", "log", "log1p", "pow") + c_special.VECTOR_MATH


SPELLING = target_spelling("c", nan="NAN", inf="INFINITY")

# The comparison ops, as C's operators.
COMPARISONS = {name: _ops.OPS[name].infix for name in ("lt", "le", "gt", "ge", "eq", "ne")}


class SelectRenderer(Renderer):
    """The C renderer, but a `where` whose condition is an inlined comparison selects on
    the comparison itself: xc_select(a == b, p, q), not xc_where(xc_eq(a, b), p, q),
    which makes a 1.0/0.0 double of the mask and compares that with 0 again (gcc keeps
    both: an `and` and a second comparison a where). The same value: a NaN compares
    false either way. Derivative rules write such wheres (maximum's tie, hypot's zero,
    the stable forms' branches): value and gradient in cache, 0.87-0.96x the time of
    sqrt(1 + x**2), hypot3, maximum(x, 0) * y + minimum(x, y), 0.97-0.99x that of
    logaddexp, x*log(x), maximum. Not
    for a split kernel's parts: those in the vector extension (c_lanes) call helpers
    on xc_v values, which a mask is not."""

    def __init__(self, trace: Trace, *args, **kw):
        instrs, named = trace.instrs, kw["named"]
        self._selects = {i for i, ins in enumerate(instrs)
                         if ins.op == "where" and instrs[ins.args[0]].op in COMPARISONS and not named[ins.args[0]]}
        super().__init__(trace, *args, **kw)

    def _own_formats(self) -> set:
        return self._selects

    def _format(self, i: int) -> tuple[str, int]:
        if i not in self._selects:
            return Renderer._format(self, i)
        c, p, q = self.trace.instrs[i].args
        cmp = self.trace.instrs[c]
        a, b = (text if prec > _ops.PREC_CMP else f"({text})" for text, prec in map(self.expr, cmp.args))
        return f"xc_select({a} {COMPARISONS[cmp.op]} {b}, {self.expr(p)[0]}, {self.expr(q)[0]})", _ops.PREC_ATOM


def conditions_inlined(trace: Trace, named: list) -> list:
    """`named`, but a temporary comparison that only wheres read, as their condition,
    and whose operands are named or constants, inlined into each (maximum's tie a == b,
    read by both partials): each where then selects on the comparison (SelectRenderer),
    which gcc computes once. Its statement's reads go to its first reader only (only a
    split kernel's parts look at them, and they keep the comparison named)."""
    instrs, labels = trace.instrs, trace.labels
    shared = {i for i, ins in enumerate(instrs)
              if named[i] and ins.op in COMPARISONS and labels[i] is None
              and all(named[a] or instrs[a].op == "const" for a in ins.args)}
    shared -= {v for _, v in trace.outputs}
    for ins in instrs if shared else ():
        for k, a in enumerate(ins.args):
            if a in shared and (k or ins.op != "where"):
                shared.discard(a)
    if not shared:
        return named
    named = list(named)
    for i in shared:
        named[i] = False
    return named


def _helpers_for(names: set[str]) -> list[str]:
    """The definitions of these helpers and of those they use, each once, dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in HELPERS[name][1]:
            visit(dep)
        order.append(name)

    for name in sorted(names):
        visit(name)
    return [HELPERS[n][0] for n in order]


# What a helper marks XC_ALWAYS is inlined whatever the level: at -O1 (large kernels,
# split units: c_build.SIZED_FLAGS) gcc inlines only small functions, and one call left
# in an `omp simd` loop keeps the whole loop scalar (scalar libm for every other
# function of the kernel, and bits that differ from the VM's vector loops).
ALWAYS_INLINE = ["/* inlined at every optimisation level (an omp simd loop with a call stays scalar) */",
                 "#ifndef XC_ALWAYS", "#if defined(__GNUC__)", "#define XC_ALWAYS __attribute__((always_inline))",
                 "#else", "#define XC_ALWAYS", "#endif", "#endif"]


def math_prelude(spelled: set[str], libm: set[str] = frozenset()) -> list[str]:
    """The lines between a kernel's #includes and its code: the libmvec declarations of
    the vectorizable libm functions it calls (those `spelled` or in `libm`, and those
    its helpers call: xc_softplus calls exp and log), then the helpers among
    `spelled` and those they use."""
    helpers = _helpers_for(spelled & set(HELPERS))
    code = re.sub(r"/\*.*?\*/", "", "\n".join(helpers), flags=re.S)
    called = spelled | libm | {f for f in VECTOR_MATH if re.search(rf"\b{f}\(", code)}
    lines = []
    vector = [f for f in VECTOR_MATH if f in called]
    if vector:
        lines.append("/* vector variants from libmvec (used when built with -fopenmp-simd) */")
        for f in vector:
            args = "double, double" if f in c_special.VECTOR_MATH_BINARY else "double"
            lines += ["#pragma omp declare simd notinbranch", f"double {f}({args});"]
        lines.append("")
    if helpers:
        lines += (ALWAYS_INLINE if "XC_ALWAYS" in code else []) + helpers + [""]
    return lines


# A trace with more than SPLIT_FROM statements is split into parts of at most PART
# cost (c_split.cost: a call counts as c_split.CALL_COST statements), a few to a
# translation unit at -O1, compiled in parallel (c_split, c_build), each a vectorized
# loop over a block of points (in the vector extension above c_split.VECTOR_UP_TO
# statements). gcc's
# time on one straight-line function grows faster than linearly (register
# allocation): the 6-link pendulum's Jacobian (1,000 statements) took 3.2 s of CPU as
# one -O3 kernel (its loop, the loop's vector epilogues and the one-point copy), 0.4 s
# as parts, and runs faster; see c_split for the measurements. The price: copies to
# and from the tape, which a small kernel feels: the 3-link Jacobian (290 statements)
# as parts ran 0.6-0.8 ms at 10^4 points against 0.3 ms as one kernel, built in 0.25 s
# of CPU against 1.2 s; kernels that small stay one kernel.
SPLIT_FROM = 400
PART = 1200
BLOCK = 64


def _statements(trace: Trace, names: list, r: Renderer) -> list[tuple[str, str, set]]:
    """(target, right-hand side, names read) per statement in order; the target of an
    output is "out{k}"."""
    inline_reads: list = [None] * len(trace.instrs)

    def reads_of(args) -> set:
        parts = []
        for a in args:
            if r.named[a]:
                parts.append({names[a]})
            elif inline_reads[a] is not None:  # a temporary with one use: move its set
                parts.append(inline_reads[a])
                inline_reads[a] = None
        if not parts:
            return set()
        parts.sort(key=len)
        merged = parts.pop()  # merge small into large: n log n on long inlined chains
        for p in parts:
            merged |= p
        return merged

    stmts = []
    for i, ins in enumerate(trace.instrs):
        if ins.op == "input":
            continue
        if r.named[i]:
            stmts.append((names[i], r.rhs(i), reads_of(ins.args)))
        elif ins.op != "const":
            inline_reads[i] = reads_of(ins.args)
    for k, (_, v) in enumerate(trace.outputs):
        stmts.append((f"out{k}", r.expr(v)[0], reads_of([v]) if r.named[v] else set(inline_reads[v] or ())))
    return stmts


_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def without_copies(stmts: list) -> list:
    """The statements with each plain copy `a = b` dropped and a read as b after it,
    where that is the same value: a is not assigned again, and b not before a's last
    read (an adjoint is assigned more than once: v4_bar = v4_bar + ...). The reverse
    sweep passes an adjoint on unchanged through +, - and copies (v3 = 2 + v2 gives
    v2_bar = v3_bar): 3,561 of the 10^4-operation random gradient's 23,183 statements
    are copies (2,960 dropped here), 274 of the 6-link pendulum Jacobian's 945 (260).
    gcc hardly notices the copies themselves (the 10^4-operation gradient: 5.09 /
    5.20 s of compiler CPU with them, 5.14 / 5.30 without, min / median of 2), but
    between parts of a split kernel each takes a tape slot: the 10-link Jacobian
    went from 4 units to 3 and its kernel from 5.81 to 4.38 ms at 10^4 points (min
    of 4 interleaved rounds, load 4-5). Names only: the same operations on the same
    values, bit for bit. Split kernels only: a one-function kernel, the one people
    read, keeps the sweep's own names."""
    writes: dict = {}
    last_read: dict = {}
    for k, (target, _, reads) in enumerate(stmts):
        writes.setdefault(target, []).append(k)
        for nm in reads:
            last_read[nm] = k
    renamed: dict = {}
    out = []

    def source(m) -> str:
        return renamed.get(m.group(0), m.group(0))

    for k, (target, rhs, reads) in enumerate(stmts):
        if not renamed.keys().isdisjoint(reads):  # (reads & renamed.keys() walks every key)
            rhs = _NAME.sub(source, rhs)
            reads = {renamed.get(nm, nm) for nm in reads}
        if len(reads) == 1 and rhs in reads and writes[target][-1] == k \
                and not (target.startswith("out") and target[3:].isdigit()):
            later = [w for w in writes.get(rhs, ()) if w > k]
            if not later or later[0] >= last_read.get(target, k):
                renamed[target] = rhs
                continue
        out.append((target, rhs, reads))
    return out


def _body(stmts, pad: str = " " * 4) -> list[str]:
    """The one-point function's statement lines: inputs are its parameters, output k
    goes to *out{k}. (A split kernel's parts: c_split.part_body.)"""
    lines, declared = [], set()
    for target, rhs, _ in stmts:
        if target.startswith("out") and target[3:].isdigit():
            lines.append(f"{pad}*{target} = {rhs};")
        else:  # adjoints are assigned more than once
            lines.append(f"{pad}{'' if target in declared else 'double '}{target} = {rhs};")
            declared.add(target)
    return lines


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


# Small kernels that call INNER's helpers (e^x - 1, log1mexp, tanh, ...) only on inputs
# or one operation on them run tiles of inner points: see c_tiles.
INNER_UP_TO, INNER = c_tiles.INNER_UP_TO, c_tiles.INNER


def _single_kernel(stmts, inputs: dict, func_name: str, decl: str, n_out: int, columns: bool,
                   inner=None) -> list[str]:
    """The kernel as one function of a point, inlined into the loop over a range of
    the batch (two loops for few inputs: see CONTIGUOUS_UP_TO), which the kernel runs
    whole on one thread or split over a team (see _on_threads), and called once by the packed
    one-point entry. `inner`: c_tiles.inner_tests' tests and inputs, and the statements
    of the body in INNER's forms, if the loop runs tiles of inner points."""
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
        return [f"{pad}#pragma omp simd", f"{pad}for (ptrdiff_t i = lo; i < hi; ++i)",
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


def opening_comment(trace: Trace, description: str, *, shapes: bool = False) -> list[str]:
    """A kernel's first comments: the version, the description, and which parameter is
    which variable (in0 = x, ...; with `shapes`, four to a line with their shapes),
    left open for the caller to add to and close."""
    per_line = 4 if shapes else 8

    def item(what: str, k: int, name: str, v: int) -> str:
        shown = f"{what}{k} = {comment_text(name, 40, c=True)}"
        return f"{shown} {comment_text(show(trace.instrs[v].shape), 60, c=True)}" if shapes else shown

    def listing(what: str, pairs) -> list[str]:
        items = [item(what, k, nm, v) for k, (nm, v) in enumerate(pairs)]
        return [" * " + ", ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)] or [" * none"]
    head = [f"/* Generated by exprcompiler {__version__}. Do not edit. */"]
    if description:
        head.append(f"/* {comment_text(description, 160, c=True)} */")
    return head + ["/* inputs:", *listing("in", trace.inputs), " * outputs:", *listing("out", trace.outputs)]


def generate_c(trace: Trace, *, func_name: str = "f", description: str = "",
               columns: bool = False) -> tuple[str, str]:
    """(C source, the declarations of its two entry points) of `trace`: the batch
    kernel `func_name` and the one-point `func_name_packed`. `columns`: the kernel of
    a Jacobian or Hessian, whose outputs are stored at strides (see TILE)."""
    for ins in trace.instrs:
        if ins.shape != ():
            raise NotImplementedError("generate_c is the per-point kernel of scalar traces; "
                                      "tensor traces go through c_tensor.generate_c_tensor")
    trace = c_forms(trace)
    n_in, n_out = len(trace.inputs), len(trace.outputs)
    reserved = C_KEYWORDS | {op.c for op in _ops.OPS.values() if op.c} | set(HELPERS) | {func_name}
    reserved |= {f"in{k}" for k in range(n_in)} | {f"st{k}" for k in range(n_in)}
    reserved |= {f"out{k}" for k in range(n_out)} | {f"os{k}" for k in range(n_out)}
    reserved |= {f"{func_name}_point", f"{func_name}_packed", f"{func_name}_batch", f"{func_name}_parts",
                 f"{func_name}_range",
                 f"{func_name}_point_inner", f"{func_name}_point_at"}
    reserved |= set(VECTOR_MATH)  # libm functions the helpers call
    named = named_vars(trace)
    split = sum(1 for i, ins in enumerate(trace.instrs) if named[i] and ins.op != "input") + n_out > SPLIT_FROM
    if not split:  # (a split kernel's parts: see SelectRenderer)
        named = conditions_inlined(trace, named)
    names = assign_names(trace, named, reserved)
    inputs = {names[v]: k for k, (_, v) in enumerate(trace.inputs)}
    renderer = Renderer if split else SelectRenderer
    r = renderer(trace, SPELLING, lambda i: names[i], named=named)
    stmts = _statements(trace, names, r)

    in_params = [f"const double *in{k}, ptrdiff_t st{k}" for k in range(n_in)]
    out_params = [f"double *out{k}, ptrdiff_t os{k}" for k in range(n_out)]
    decl = f"int {func_name}({', '.join(['ptrdiff_t n', 'int threads'] + in_params + out_params)})"
    decls = f"{decl};\n{packed_decl(func_name)};"
    # a Jacobian's or Hessian's: the batch with its pointers in arrays (c_entry.run_entry's call)
    batch, batch_decl = c_entry.batch_entry(func_name, n_in, n_out) if columns else ([], "")
    decls += "\n" * bool(batch_decl) + batch_decl

    spelled = {_ops.OPS[ins.op].c for ins in trace.instrs}
    inner = None if split else c_tiles.inner_tests(trace, named, names, r.rhs, len(stmts))
    if inner:  # the body again, with INNER's forms of its calls
        inner = (*inner, _statements(trace, names, renderer(trace, c_tiles.inner_spelling(SPELLING),
                                                              lambda i: names[i], named=named)))
        spelled |= {form for f in spelled & INNER.keys() for form in INNER[f]}
    head = opening_comment(trace, description) + [" */", "#include <math.h>", "#include <stddef.h>",
                                                  "#include <stdlib.h>"]
    head += ([] if split else ["#ifdef _OPENMP", "#include <omp.h>", "#endif"]) + [""] + math_prelude(spelled)
    if not split:
        return "\n".join(head + [f"#define XC_TILE {TILE}", ""]
                         + _single_kernel(stmts, inputs, func_name, decl, n_out, columns, inner)
                         + _packed(func_name, n_in, n_out) + batch) + "\n", decls
    text = c_split.split_kernel(without_copies(stmts), inputs, func_name, decl, head, n_in, n_out, PART, BLOCK, _table,
                                packed_decl(func_name), batch_decl=batch_decl, mvec=VECTOR_MATH)
    return text + "\n", decls


__all__ = ["generate_c", "squares", "c_forms", "SPELLING"]

