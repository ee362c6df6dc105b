"""C backend, tiles of inner points: which small per-point kernels run their batch tile by
tile, with a second copy of the body on the points away from the edges (c_backend's
_single_kernel writes the loops; this module decides, from the trace, and writes the
pieces). Read from the trace after c_forms, with c_backend's names and renderer:
the calls of INNER's helpers, and their arguments as instructions, never the C text.

A small kernel whose only calls of INNER's helpers (e^x - 1 and e^x; log1mexp, its
slope and its slope's expm1 by e^x; tanh and sech2 by e^y - 1 and e^y of y <= 0;
hypot3, c_nary.INNER) are of its inputs, or
of one operation on inputs (see _of_inputs), runs tile by tile (XC_TILE points): a tile
whose points all pass the helpers' tests of their arguments (that operation computed
again) runs a second copy of the body with those helpers' inner forms, the same bits
without the steps that only the edges need (-0.0, subnormals, |x| > 690, NaN, inf); any
other tile runs the body as it is, so a point's bits never depend on its neighbours.
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
from . import c_exp, c_nary, c_special

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
    negation of an input. None for anything else, and for an argument the call does not
    read by a name (a constant, an inlined expression)."""
    instrs = trace.instrs

    def plain(b: int) -> int:  # what an unnamed copy shows: its argument
        while not named[b] and instrs[b].op == "copy":
            b = instrs[b].args[0]
        return b

    def is_input(b: int) -> bool:
        return named[b] and instrs[b].op == "input"

    a = plain(a)
    if not named[a]:
        return None
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
    return (tests, [nm for nm in inputs if nm in read]) if tests else None


def inner_point(point: str, params: list, body: list, tests: list, reads: list) -> list[str]:
    """The one-point function with INNER's forms (`body`: its lines), and the test of
    its points."""
    return [*PREFETCH, f"/* one point where {point}_at: {point}'s bits (see c_backend.INNER_UP_TO) */",
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
    scalar, as in the plain loop. The test of a tile is an OR of 64-bit lanes (whether
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
        return [f"{pad}        #pragma omp simd", f"{pad}        for (ptrdiff_t i = i0; i < end; ++i)",
                f"{pad}            {call}({args});"]
    return [f"{pad}for (ptrdiff_t i0 = lo; i0 < hi; i0 += XC_TILE) {{",
            f"{pad}    const ptrdiff_t end = hi - i0 < XC_TILE ? hi : i0 + XC_TILE;", *_prefetch(pad, at_args),
            f"{pad}    long long edge = 0;",
            f"{pad}    #pragma omp simd reduction(|: edge)",
            f"{pad}    for (ptrdiff_t i = i0; i < end; ++i)",
            f"{pad}        edge |= {point}_at({at_args}) ? 0 : 1;",
            f"{pad}    if (!edge) {{", *simd(f"{point}_inner"),
            f"{pad}    }} else {{", *simd(point), f"{pad}    }}", f"{pad}}}"]


__all__ = ["INNER", "INNER_UP_TO", "PREFETCH", "PREFETCH_AHEAD", "inner_spelling", "inner_tests", "inner_point", "tiles"]
