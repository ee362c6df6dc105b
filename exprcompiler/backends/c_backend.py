"""C backend, source half: a scalar trace becomes a C99 kernel over a batch of points.

    int f_grad(ptrdiff_t n, int threads, const double *in0, ptrdiff_t st0, ..., double *out0, ...)

One loop over the n points (split over `threads` OpenMP threads when built with
OpenMP, vectorized with `omp simd`); inside it one straight-line statement per named
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
from . import c_driver, c_entry, c_exp, c_nary, c_special, c_split
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


# A small kernel whose only calls of INNER's helpers (e^x - 1 and e^x; log1mexp, tanh
# and sech2 by e^y - 1 and e^y of y <= 0; hypot3, c_nary.INNER) are of its inputs, or
# of one operation on inputs (SIMPLE), runs tile by tile (XC_TILE points): a tile whose points all pass the
# helpers' tests of their arguments (that operation computed again) runs a second copy
# of the body with those helpers' inner forms, the same bits without the steps that
# only the edges need (-0.0, subnormals, |x| > 690, NaN, inf); any other tile runs the
# body as it is, so a point's bits never depend on its neighbours. Issue 18 asks a
# rewrite to cost at most 10% over the naive form where that was accurate. Value and
# gradient on x in [1, 10], 4096 points in cache, ns a
# point (medians of 5, load 5): exp(x) - 1 1.25 -> 1.01 (on libmvec's exp: 0.96),
# 1 - exp(x) 1.33 -> 1.06 (1.00); where each tile has a -0.0 (the test, then the body
# as it is) 1.19 -> 1.36. (libmvec's exp(x) - 1 where |x| >= ln 2, the naive form per
# vector, was tried: gcc's `omp simd` loops cannot branch by vector, a vector variant
# of our own cost 1.12x the naive form's call alone, and the naive form is up to 4.4
# ulps off there, against 1.) c_special.INNER's measurements are there.
# Up to INNER_UP_TO statements, for the body is compiled twice: at 59 statements the
# build took 0.28-0.40 -> 0.47-0.53 s, at 19 no longer within the noise.
INNER_UP_TO = 32
INNER = {**c_exp.INNER, **c_special.INNER, **c_nary.INNER}
_INNER_CALL = re.compile(r"\b(" + "|".join(sorted(INNER)) + r")\(")
# One operation of two names or numbers, or a negation (sech2(x/2) of sigmoid's slope): a
# single rounding, which the test computes again to the same bits (no contraction)
_OPERAND = r"(?:[A-Za-z_]\w*|-?\d+(?:\.\d*)?(?:e[+-]?\d+)?|\(-\d+(?:\.\d*)?(?:e[+-]?\d+)?\))"
SIMPLE = re.compile(rf"\s*(?:{_OPERAND}\s*[-+*/]\s*{_OPERAND}|-\s*[A-Za-z_]\w*)\s*")


def _of_inputs(name: str, stmts, inputs: dict):
    """`name`'s value as a C expression of inputs (see SIMPLE), or None."""
    if name in inputs:
        return name
    rhs = [rhs for target, rhs, _ in stmts if target == name]
    if len(rhs) != 1 or not SIMPLE.fullmatch(rhs[0]) or not set(_NAME.findall(rhs[0])) <= inputs.keys():
        return None
    return rhs[0]


def _inner_tests(stmts, inputs: dict):
    """(the tests of the arguments of the statements' calls of INNER's helpers, the
    inputs they read) where the kernel runs tiles of inner points (see INNER_UP_TO),
    else None."""
    if len(stmts) > INNER_UP_TO:
        return None
    tests: list = []
    read: set = set()
    for _, rhs, _ in stmts:
        for m in _INNER_CALL.finditer(rhs):
            args = re.match(r"\s*(\w+(?:\s*,\s*\w+)*)\s*\)", rhs[m.end():])
            values = [_of_inputs(a.strip(), stmts, inputs) for a in args.group(1).split(",")] if args else [None]
            if None in values:
                return None
            if (test := f"{INNER[m.group(1)][1]}({', '.join(values)})") not in tests:
                tests.append(test)
                read.update(nm for value in values for nm in _NAME.findall(value))
    return (tests, [nm for nm in inputs if nm in read]) if tests else None


def _inner_point(stmts, point: str, params: list, tests: list, reads: list) -> list[str]:
    """The one-point function with INNER's forms, and the test of its points."""
    body = [(target, _INNER_CALL.sub(lambda m: INNER[m.group(1)][0] + "(", rhs), reads_)
            for target, rhs, reads_ in stmts]
    return [f"/* one point where {point}_at: {point}'s bits (see c_backend.INNER_UP_TO) */",
            f"XC_INLINE void {point}_inner({', '.join(params)})", "{", *_body(body), "}",
            f"XC_INLINE int {point}_at({', '.join(f'const double {nm}' for nm in reads)})",
            "{", f"    return {' & '.join(tests)};", "}", ""]


def _single_kernel(stmts, inputs: dict, func_name: str, decl: str, n_out: int, columns: bool,
                   inner=None) -> list[str]:
    """The kernel as one function of a point, inlined into the loop over the batch
    (two loops for few inputs: see CONTIGUOUS_UP_TO), and called once by the packed
    one-point entry. `inner`: _inner_tests' tests and inputs, if the loop runs tiles of
    inner points."""
    point = f"{func_name}_point"
    params = [f"const double {nm}" for nm in inputs] + [f"double *restrict out{k}" for k in range(n_out)]
    lines = ["#if defined(__GNUC__)", "#define XC_INLINE static inline __attribute__((always_inline))",
             "#else", "#define XC_INLINE static inline", "#endif", *c_driver.CLEAN_UPPER, "",
             "/* one point */", f"XC_INLINE void {point}({', '.join(params) or 'void'})", "{"]
    lines += _body(stmts) + ["}", ""]
    if inner:
        lines += _inner_point(stmts, point, params, *inner)
    if n_out and not columns:
        lines += _strided_outputs(func_name, decl, len(inputs), n_out)
    lines += [decl, "{", "    (void)threads;  /* unused in a build without OpenMP */"]

    def loop(index_of, pad: str) -> list[str]:
        store = (lambda k: f"&out{k}[i * os{k}]") if columns else (lambda k: f"&out{k}[i]")
        args = [f"in{k}[{index_of(k)}]" for k in inputs.values()] + [store(k) for k in range(n_out)]
        if inner:
            return _tiles(pad, point, ", ".join(args), ", ".join(f"in{inputs[nm]}[{index_of(inputs[nm])}]"
                                                                 for nm in inner[1]))
        # `if(parallel: ...)`, not a bare `if`: a bare one also turns off the simd part.
        return [f"{pad}#pragma omp parallel for simd num_threads(threads) schedule(static) "
                "if(parallel: threads > 1)", f"{pad}for (ptrdiff_t i = 0; i < n; ++i)",
                f"{pad}    {point}({', '.join(args)});"]

    if n_out and not columns:
        lines += [f"    const ptrdiff_t os[] = {{{_table([f'os{k}' for k in range(n_out)])}}};",
                  f"    for (int k = 0; k < {n_out}; ++k)",
                  f"        if (os[k] != 1) return {func_name}_strided({_call_args(func_name, inputs, n_out)});"]
    if 0 < len(inputs) <= CONTIGUOUS_UP_TO:
        all_arrays = " && ".join(f"st{k} == 1" for k in inputs.values())
        lines += [f"    if ({all_arrays}) {{  /* every input an array */", *loop(lambda k: "i", " " * 8),
                  "    } else {", *loop(lambda k: f"i * st{k}", " " * 8), "    }"]
    else:
        lines += loop(lambda k: f"i * st{k}", " " * 4)
    return lines + ["    XC_CLEAN_UPPER();  /* see c_driver.CLEAN_UPPER */", "    return 0;", "}"]


def _tiles(pad: str, point: str, args: str, at_args: str) -> list[str]:
    """The loop over the batch by tiles of XC_TILE points (see INNER_UP_TO). Tiles start at
    multiples of XC_TILE, so only the batch's last n % XC_VL points run scalar, as in the
    plain loop."""
    def simd(call: str) -> list[str]:
        return [f"{pad}        #pragma omp simd", f"{pad}        for (ptrdiff_t i = i0; i < end; ++i)",
                f"{pad}            {call}({args});"]
    return [f"{pad}#pragma omp parallel for num_threads(threads) schedule(static) if(threads > 1)",
            f"{pad}for (ptrdiff_t i0 = 0; i0 < n; i0 += XC_TILE) {{",
            f"{pad}    const ptrdiff_t end = n - i0 < XC_TILE ? n : i0 + XC_TILE;",
            f"{pad}    int inner = 1;",
            f"{pad}    #pragma omp simd reduction(&: inner)",
            f"{pad}    for (ptrdiff_t i = i0; i < end; ++i)",
            f"{pad}        inner &= {point}_at({at_args});",
            f"{pad}    if (inner) {{", *simd(f"{point}_inner"),
            f"{pad}    }} else {{", *simd(point), f"{pad}    }}", f"{pad}}}"]


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
                 f"{func_name}_point_inner", f"{func_name}_point_at"}
    reserved |= set(VECTOR_MATH)  # libm functions the helpers call
    named = named_vars(trace)
    split = sum(1 for i, ins in enumerate(trace.instrs) if named[i] and ins.op != "input") + n_out > SPLIT_FROM
    if not split:  # (a split kernel's parts: see SelectRenderer)
        named = conditions_inlined(trace, named)
    names = assign_names(trace, named, reserved)
    inputs = {names[v]: k for k, (_, v) in enumerate(trace.inputs)}
    renderer = Renderer if split else SelectRenderer
    stmts = _statements(trace, names, renderer(trace, SPELLING, lambda i: names[i], named=named))

    in_params = [f"const double *in{k}, ptrdiff_t st{k}" for k in range(n_in)]
    out_params = [f"double *out{k}, ptrdiff_t os{k}" for k in range(n_out)]
    decl = f"int {func_name}({', '.join(['ptrdiff_t n', 'int threads'] + in_params + out_params)})"
    decls = f"{decl};\n{packed_decl(func_name)};"
    # a Jacobian's or Hessian's: the batch with its pointers in arrays (c_entry.run_entry's call)
    batch, batch_decl = c_entry.batch_entry(func_name, n_in, n_out) if columns else ([], "")
    decls += "\n" * bool(batch_decl) + batch_decl

    spelled = {_ops.OPS[ins.op].c for ins in trace.instrs}
    inner = None if split else _inner_tests(stmts, inputs)
    if inner:
        spelled |= {form for f in spelled & INNER.keys() for form in INNER[f]}
    head = opening_comment(trace, description) + [" */", "#include <math.h>", "#include <stddef.h>",
                                                  "#include <stdlib.h>", ""] + math_prelude(spelled)
    if not split:
        return "\n".join(head + [f"#define XC_TILE {TILE}", ""]
                         + _single_kernel(stmts, inputs, func_name, decl, n_out, columns, inner)
                         + _packed(func_name, n_in, n_out) + batch) + "\n", decls
    text = c_split.split_kernel(without_copies(stmts), inputs, func_name, decl, head, n_in, n_out, PART, BLOCK, _table,
                                packed_decl(func_name), batch_decl=batch_decl, mvec=VECTOR_MATH)
    return text + "\n", decls


__all__ = ["generate_c", "squares", "c_forms", "SPELLING"]

