"""C backend, tiles of inner points: which small per-point kernels run their batch tile by
tile, with a second copy of the body on the points away from the edges (c_backend's
_single_kernel writes the loops; this module decides, from the trace, and writes the
pieces). Read from the trace after c_forms, with c_backend's names and renderer:
the calls of INNER's helpers, and their arguments as instructions, never the C text.

A small kernel whose only calls of INNER's helpers (e^x - 1 and e^x; log1mexp, its
slope and its slope's expm1 by e^x; tanh, sech2, softplus and sigmoid by e^y - 1 and
e^y of y <= 0; hypot3, c_nary.INNER) are of its inputs, or
of one operation on inputs (see _of_inputs), runs tile by tile (XC_TILE points): a tile
whose points all pass the helpers' tests of their arguments (that operation computed
again) runs a second copy of the body with those helpers' inner forms, the same bits
without the steps that only the edges need (-0.0, subnormals, |x| > 690, NaN, inf); any
other tile runs the body as it is, so a point's bits never depend on its neighbours.
A copy of the body that calls no libmvec function runs WIDE_LANES lanes (see there).
Issue 18 asks a rewrite to cost at most 10% over the naive form where that was
accurate. Value and gradient on x in [1, 10], 4096 points in cache, ns a point
(medians of 5, load 5): exp(x) - 1 1.25 -> 1.01 (on libmvec's exp: 0.96), 1 - exp(x)
1.33 -> 1.06 (1.00); where each tile has a -0.0 (the test, then the body as it is)
1.19 -> 1.36. (libmvec's exp(x) - 1 where |x| >= ln 2, the naive form per vector, was
tried: gcc's `omp simd` loops cannot branch by vector, a vector variant of our own
cost 1.12x the naive form's call alone, and the naive form is up to 4.4 ulps off
there, against 1.) c_special.INNER's measurements are there.
"""

from __future__ import annotations

import functools
import math
import re

from .. import ops as _ops
from ..trace.ir import Trace
from ..trace.spelling import Spelling
from . import c_exp, c_helpers, c_nary, c_special

# The tiles ahead of the one tested whose inputs the loop asks the cache for (see tiles).
PREFETCH_AHEAD = 4

# Up to INNER_UP_TO statements, for the body is compiled twice: at 59 statements the
# build took 0.28-0.40 -> 0.47-0.53 s, at 19 no longer within the noise.
INNER_UP_TO = 32
# helper -> (its form on the points where the test holds, the test of its arguments)
INNER = {**c_exp.INNER, **c_special.INNER, **c_nary.INNER}

# The one operation an argument may be (see _of_inputs): a single rounding, which the
# test computes again to the same bits (no contraction), of inputs and finite constants
# (sech2(x/2) of sigmoid's slope), or the negation of an input.
ONE_OPERATION = ("add", "sub", "mul", "div")


@functools.lru_cache(maxsize=None)
def inner_spelling(spell: Spelling) -> Spelling:
    """`spell` with INNER's helpers spelled as their inner forms: the inner copy of the
    body is the same trace rendered with it. (One object per spelling, so that the
    renderers' kept forms, trace/render._kept_forms, are found again.)"""
    def call(op) -> str:
        name = spell.call(op)
        return INNER[name][0] if name in INNER else name
    return Spelling(symbol=spell.symbol, call=call, const=spell.const, as_call=spell.as_call, target=spell.target)


# The lanes of the inner copy's loop where no point of it calls libmvec: 8 doubles (gcc's
# own choice is 4, in 256-bit vectors on AVX-512 machines too: c_driver, vm_source.LANES).
# Without a libmvec call the body is exact operations and selections, whose bits are the
# same at any vector length (no contraction: -std=c99), scalar ones included; a libmvec
# call would take another variant (_ZGVeN8v_log against _ZGVdN4v_log: log(1 - exp(x))'s
# inner copy gave 310 of 16,384 values other bits), so those kernels keep gcc's lanes.
# A float kernel (its text rewritten) runs 8 lanes either way. Value and gradient, one
# thread, 16,384 points in cache, ratio to the naive form (load 4.3-4.7):
# sigmoid(x)(1 - sigmoid(x)) 1.17-1.26 -> 0.96-1.04, e^x - 1 0.96-1.04 -> 0.78-0.81,
# 1 - e^x 1.00 -> 0.83, 1 - tanh(x)^2 1.06 -> 0.95. (At 8 lanes the naive form would
# gain too, 0.83-0.85x its 4-lane time, but its libmvec calls would change their bits.)
# A vector of 8 doubles is a cache line: where the arrays do not start on one (NumPy's
# large arrays sit 16 bytes past a page), every load and store of 10^6 points took two
# lines, e^x - 1 1.06-1.18x the naive form (0.92-1.02 on 64-byte aligned arrays). So
# where both copies are wide the first tile ends where the first output's next cache
# line starts (XC_SKEW_*: 0 to 7 points), and the others start there, a shift that
# changes no bit (no lane or epilogue of a libmvec call to move): 1.00-0.89x, in cache
# unchanged (0.79x). Elsewhere tiles start at multiples of XC_TILE (see tiles), and so in
# a float kernel (sizeof 4), whose helpers call libm (expm1f: their float lines). Not
# for the kernels whose only INNER calls are c_exp's (e^x - 1, e^x: the lightest, ~1 ns
# a point): on 10^6 points their wide loops measured 1.09-1.48x the naive form in the
# benches (HEAD 0.88-1.06; a ctypes loop of the same kernels 0.96-1.04; load 10-13),
# against 0.80-0.88 (0.85-1.09) in cache: left as they were until measured at low load.
WIDE_LANES = 8


@functools.lru_cache(maxsize=None)
def _calls_libmvec(name: str) -> bool:
    """Whether C spelling `name` (a function, a helper, an operator) calls a libm
    function that libmvec has in vector form, in a double kernel: the vector math
    itself, or a helper whose definition (or one it uses) calls one outside its float
    kernel's lines (`if (sizeof(double) == 4) ...`, a line or a block: dead code in a
    double kernel)."""
    if name in c_helpers.VECTOR_MATH:
        return True
    if name not in c_helpers.HELPERS:
        return False   # an operator, fabs, sqrt, or a scalar libm call (no vector loop)
    code = re.sub(r"/\*.*?\*/", "", "\n".join(c_helpers.helpers_for({name})), flags=re.S)
    code = re.sub(r"if \(sizeof\(double\) == 4\) \{.*?\n\s*\}", "", code, flags=re.S)   # a float kernel's block
    code = "\n".join(line for line in code.splitlines() if "sizeof(double) == 4" not in line)
    return any(re.search(rf"\b{f}\(", code) for f in c_helpers.VECTOR_MATH)


def calls_libmvec(trace: Trace, inner: bool = False) -> bool:
    """Whether the kernel of `trace` calls a libmvec function (for its body, or for its
    inner copy: INNER's forms of its calls). A kernel that does not may run its loops on
    WIDE_LANES lanes at the same bits."""
    return any(_calls_libmvec(INNER[c][0] if inner and c in INNER else c)
               for c in {_ops.OPS[ins.op].c for ins in trace.instrs})


class InnerTests(list):
    """inner_tests' tests (a list of C expressions), with `wide`: which copies' loops
    run WIDE_LANES lanes (those without a libmvec call: "inner", "body" or both)."""
    wide: frozenset = frozenset()


def _calls(trace: Trace, named, op_c) -> list[int]:
    """The instructions that call INNER's helpers, in the order their calls appear in
    the kernel's statements (c_backend._statements): a named variable's statement, then
    the outputs, each by its inlined operands (arguments in order, a call before its
    operands, unnamed copies passed through)."""
    instrs = trace.instrs
    order: list[int] = []

    def walk(root: int) -> None:
        stack = [root]
        while stack:
            i = stack.pop()
            if op_c[i] in INNER:
                order.append(i)
            stack.extend(a for a in reversed(instrs[i].args) if not named[a] and instrs[a].op != "const")

    for i, ins in enumerate(instrs):
        if named[i] and ins.op not in ("input", "const"):
            walk(i)
    for _, v in trace.outputs:
        if not named[v] and instrs[v].op != "const":
            walk(v)
    return order


def _of_inputs(trace: Trace, named, names, rhs, statements: dict, a: int):
    """(argument `a`'s value as a C expression of inputs, the inputs it reads), or None:
    an input's name, or the right-hand side of a named variable assigned once whose
    instruction is one operation (ONE_OPERATION) on inputs and finite constants, or the
    negation of an input, named or inlined. None for anything else, and for an argument
    the call does not read by a name (a constant, another inlined expression)."""
    instrs = trace.instrs

    def plain(b: int) -> int:  # what an unnamed copy shows: its argument
        while not named[b] and instrs[b].op == "copy":
            b = instrs[b].args[0]
        return b

    def is_input(b: int) -> bool:
        return named[b] and instrs[b].op == "input"

    a = plain(a)
    if not named[a]:   # inlined: only the negation of an input (sigmoid(-x) of sigmoid's slope)
        b = plain(instrs[a].args[0]) if instrs[a].op == "neg" else a
        return (f"-{names[b]}", [b]) if b != a and is_input(b) else None
    if instrs[a].op == "input":
        return names[a], [a]
    ins = instrs[a]
    if statements.get(names[a]) != 1:  # an adjoint assigned more than once
        return None
    operands = [plain(b) for b in ins.args]
    if ins.op == "neg":
        fits = is_input(operands[0])
    elif ins.op in ONE_OPERATION:
        fits = all(is_input(b) or (not named[b] and instrs[b].op == "const" and math.isfinite(instrs[b].value))
                   for b in operands)
    else:
        fits = False
    return (rhs(a), [b for b in operands if instrs[b].op == "input"]) if fits else None


def inner_tests(trace: Trace, named, names, rhs, n_statements: int):
    """(the tests of the arguments of the kernel's calls of INNER's helpers, in the
    order of the calls, each once; the inputs they read, by name) where the kernel runs
    tiles of inner points, else None. `named` and `names` as c_backend's renderer
    (`rhs(i)`: named variable i's right-hand side) has them; `n_statements` the
    kernel's statements, outputs' included."""
    if n_statements > INNER_UP_TO:
        return None
    instrs = trace.instrs
    op_c = [_ops.OPS[ins.op].c for ins in instrs]
    statements: dict = {}
    for i, ins in enumerate(instrs):
        if named[i] and ins.op != "input":
            statements[names[i]] = statements.get(names[i], 0) + 1
    tests: list = []
    read: set = set()
    for c in _calls(trace, named, op_c):
        values = [_of_inputs(trace, named, names, rhs, statements, a) for a in instrs[c].args]
        if None in values:
            return None
        if (test := f"{INNER[op_c[c]][1]}({', '.join(text for text, _ in values)})") not in tests:
            tests.append(test)
            read.update(names[b] for _, atoms in values for b in atoms)
    inputs = [names[v] for _, v in trace.inputs]
    if not tests:
        return None
    tests = InnerTests(tests)
    if not all(op_c[c] in c_exp.INNER for c in _calls(trace, named, op_c)):   # (see WIDE_LANES)
        tests.wide = frozenset(copy for copy, inner in (("body", False), ("inner", True))
                               if not calls_libmvec(trace, inner))
    return tests, [nm for nm in inputs if nm in read]


def inner_point(point: str, params: list, body: list, tests: list, reads: list) -> list[str]:
    """The one-point function with INNER's forms (`body`: its lines), the test of
    its points, and the clauses of the two copies' loops (`tests.wide`: see WIDE_LANES)."""
    wide = getattr(tests, "wide", frozenset())
    lanes = [f"#define XC_LANES_{point}{end}" + (f" simdlen({WIDE_LANES})" if copy in wide else "")
             for copy, end in (("body", ""), ("inner", "_inner"))]
    skew = "(sizeof((p)[0]) == 8 ? (ptrdiff_t)((64 - ((size_t)(p) & 63)) & 63) / 8 : 0)" if len(wide) == 2 else "0"
    return [*PREFETCH, "/* the lanes of the loops of the body and of its inner copy, and the points before the",
            "   first tile that starts on a 64-byte boundary of p (c_tiles.WIDE_LANES) */", *lanes,
            f"#define XC_SKEW_{point}(p) {skew}",
            f"/* one point where {point}_at: {point}'s bits (see c_backend.INNER_UP_TO) */",
            f"XC_INLINE void {point}_inner({', '.join(params)})", "{", *body, "}",
            f"XC_INLINE int {point}_at({', '.join(f'const double {nm}' for nm in reads)})",
            "{", f"    return {' & '.join(tests)};", "}", ""]


# a hint to the cache, nothing where the compiler has no __builtin_prefetch
PREFETCH = ["#ifndef XC_PREFETCH", "#if defined(__GNUC__)", "#define XC_PREFETCH(p) __builtin_prefetch(p)", "#else",
            "#define XC_PREFETCH(p) ((void)0)", "#endif", "#endif"]


def _prefetch(pad: str, at_args: str) -> list[str]:
    """The lines that ask for the cache lines of the contiguous inputs of the test
    (`at_args`' in0[i], ...) PREFETCH_AHEAD tiles ahead. The address is computed as a
    number (no pointer past an array's end); a prefetch never faults."""
    arrays = sorted(set(re.findall(r"\b(in\d+)\[i\]", at_args)), key=at_args.index)
    if not arrays:
        return []
    ahead = f"{PREFETCH_AHEAD} * XC_TILE"
    return [f"{pad}    for (int k = 0; k < XC_TILE; k += 8) {{  /* 8 doubles a cache line (a float kernel: 2 asks a line) */",
            *(f"{pad}        XC_PREFETCH((const void *)((size_t)({a} + i0) + ({ahead} + k) * sizeof({a}[0])));"
              for a in arrays), f"{pad}    }}"]


def tiles(pad: str, point: str, args: str, at_args: str) -> list[str]:
    """The loop over the points lo to hi - 1 by tiles of XC_TILE points. Tiles start at
    multiples of XC_TILE (lo is one), so only the batch's last n % XC_VL points run
    scalar, as in the plain loop (in a kernel whose copies are both wide, after a first
    tile that ends on a cache line of the first output: see WIDE_LANES).
    The test of a tile is an OR of 64-bit lanes (whether
    a point is an edge point): as an AND of the int tests, gcc packed each pair of
    vectors of 64-bit masks into one of 32-bit ints first (vpermt2d and two vpands more
    for 8 points), and the pass cost 15-20% of a short kernel (value and gradient of
    sigmoid(x)(1 - sigmoid(x)) stable, 16,384 points in cache: 1.62-1.63 -> 1.47-1.56 ns
    a point; with no test at all 1.34-1.39, the naive form 1.21-1.25). Running the inner
    forms first and the test within their loop (a tile redone where it failed) saved no
    more, and an output may be the very array of an input. The test is the first to read
    a tile's inputs, with nothing to do while they come: the loop asks for those of the
    tile PREFETCH_AHEAD tiles ahead. Value and gradient, one thread, ratio to the naive
    form, without -> with (three rounds alternated, load 4.4-4.9; 2 or 8 tiles ahead no
    better): 16,384 points, sigmoid(x)(1 - sigmoid(x)) 1.21-1.32 -> 1.20-1.28, log(1 -
    exp(x)) 1.17-1.20 -> 1.15-1.18, e^x - 1 1.06-1.08 -> 1.03-1.04, 1 - e^x 1.06-1.09 ->
    1.03-1.06; 10^6 points 1.15-1.32 -> 1.14-1.21, 1.16-1.24 -> 1.14-1.20, 0.94-0.96 ->
    0.88-0.89, 0.97-1.00 -> 0.92-0.97. (Tiles of 256 points: no better.)"""
    def simd(call: str) -> list[str]:
        return [f"{pad}        #pragma omp simd XC_LANES_{call}", f"{pad}        for (ptrdiff_t i = i0; i < end; ++i)",
                f"{pad}            {call}({args});"]
    out = re.search(r"&(out\d+)\[i\]", args)
    skew = f"XC_SKEW_{point}({out.group(1)} + lo)" if out else "0"
    return [f"{pad}const ptrdiff_t skew = {skew};   /* a first tile of other length: see WIDE_LANES */",
            f"{pad}for (ptrdiff_t i0 = lo, next = lo + (skew ? skew : XC_TILE); i0 < hi;"
            f" i0 = next, next += XC_TILE) {{",
            f"{pad}    const ptrdiff_t end = hi < next ? hi : next;", *_prefetch(pad, at_args),
            f"{pad}    long long edge = 0;",
            f"{pad}    #pragma omp simd reduction(|: edge)",
            f"{pad}    for (ptrdiff_t i = i0; i < end; ++i)",
            f"{pad}        edge |= {point}_at({at_args}) ? 0 : 1;",
            f"{pad}    if (!edge) {{", *simd(f"{point}_inner"),
            f"{pad}    }} else {{", *simd(point), f"{pad}    }}", f"{pad}}}"]


__all__ = ["INNER", "INNER_UP_TO", "InnerTests", "PREFETCH", "PREFETCH_AHEAD", "WIDE_LANES", "calls_libmvec",
           "inner_spelling", "inner_tests", "inner_point", "tiles"]
