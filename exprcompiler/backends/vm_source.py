"""The tape VM, source half: one C interpreter for every scalar trace, generated from
the op table.

Where it sits: under the "vm" backend (vm_backend.py), which encodes a scalar trace
as an array of instructions and runs it through this program; the program itself is
compiled once, through c_build's cache like any kernel, and then serves every trace
(no compiler run per function: the way CasADi's SX functions run). Its source holds
only the op table's C spellings and c_backend's helpers: no user text ever reaches it.

An instruction is five int32s: (opcode, dst, a, b, c). The opcodes are, in order,
the four moves (LOAD an input into a register, STORE a register or a constant into an
output, CONST: a constant into a register), then every elementwise op of the table
that c_backend renders, once for each way its arguments may come: each either a
register (a row of the block's points) or a constant (an index into the constant
table, read once before the loop: `x * 0.5` and xc_pow(x, 3.0) are loops over one
row with the constant in a register, which gcc unswitches and vectorizes as the C
kernel does with the literal). An op whose arguments are all constants never reaches
the VM as such (the encoder loads one into a register first).

Each opcode's work is a loop over a block of points in its own function, its rows
`restrict` (the encoder never gives an instruction's result the row of one of its
arguments) and the loop `omp simd`, so gcc vectorizes it with libmvec's vector
variants as it does the C kernels (c_backend.math_prelude's declarations). The right-hand
side is the op table's spelling rendered by trace/render.format_op with the C
backend's Spelling (c_backend.SPELLING): the same C expression as the C kernel's, so
both give the same bits where both run the same (vector or scalar) variant of libm.

One point (xc_vm_point, a call with numbers) runs through a second switch with each
case's scalar expression inline, registers single doubles: the bits of the loops'
scalar ends, and of the C kernel's one-point entry.

What each field of an instruction is, per opcode (register, constant, input, output
or unused: field_kinds), is a table in the source (xc_vm_kinds), and both entries
check every field of every instruction against its bound before they run anything
(-2 if one is out of range, or an instruction's result is one of its argument rows;
-3 for sizes out of range, -1 when the registers cannot be allocated).
"""

from __future__ import annotations

from itertools import product
from typing import NamedTuple

from .. import ops as _ops
from ..ops import PREC_ATOM
from ..trace.render import format_op
from .c_backend import SPELLING, math_prelude

# Field kinds: what bounds a field of an instruction (UNUSED: must be 0).
UNUSED, REG, CONST, INPUT, OUTPUT = range(5)
WIDTH = 5           # int32s per instruction: opcode, dst, a, b, c
MAX_BLOCK = 4096    # points per block at most (a call's block: vm_backend.block_size)
POINT_REGS = 512    # registers of a one-point call on the stack (more: malloc)
# Points per vector of the C kernels' loops (gcc's choice for doubles with -march=native
# on x86-64: 256-bit vectors, AVX-512 machines included). A C kernel's loop computes
# all but the batch's last n % LANES points with libmvec's vector variants, those last
# ones with glibc's scalar functions, which may differ in the last bit; so do the VM's
# loops (blocks are multiples of LANES), and the VM gives the C kernel's bits.
LANES = 4
# The moves, opcodes 0..3: (name, kind of field a); dst is an output for the stores, else a register
MOVES = (("load", INPUT), ("store", REG), ("store_const", CONST), ("const", CONST))
LOAD, STORE, STORE_CONST, LOAD_CONST = range(4)
ERRORS = {-1: "out of memory for its registers", -2: "an invalid instruction",
          -3: "invalid sizes (negative, or a register file too large to allocate)"}


class Opcode(NamedTuple):
    number: int
    op: str                 # the op table's name ("" for the moves: see `move`)
    kinds: str              # per argument: "r" register, "k" constant
    move: str = ""          # LOAD, STORE, ... by name


def vm_ops() -> list[str]:
    """The ops the VM runs: the table's elementwise ops with a C spelling (those
    c_backend renders), in table order."""
    return [name for name, op in _ops.OPS.items()
            if op.elementwise and op.arity > 0 and op.c and name != "copy"]


def opcodes() -> list[Opcode]:
    table = [Opcode(k, "", "", move) for k, (move, _) in enumerate(MOVES)]
    for name in vm_ops():
        for kinds in product("rk", repeat=_ops.OPS[name].arity):
            if "r" in kinds:
                table.append(Opcode(len(table), name, "".join(kinds)))
    return table


OPCODES = opcodes()
NUMBER = {(c.op, c.kinds): c.number for c in OPCODES if c.op}


def field_kinds(code: Opcode) -> tuple[int, int, int, int]:
    """The kinds of the fields dst, a, b, c of an opcode's instructions."""
    if code.move:
        dst = OUTPUT if code.move.startswith("store") else REG
        return (dst, dict(MOVES)[code.move], UNUSED, UNUSED)
    args = [REG if k == "r" else CONST for k in code.kinds]
    return tuple([REG] + args + [UNUSED] * (3 - len(args)))


def _case_function(code: Opcode) -> list[str]:
    """The loop of one opcode over m points, as a function of its rows and constants:
    a vector loop over whole vectors of XC_LANES points, the rest one point at a time
    through a function the compiler cannot vectorize (see LANES)."""
    op = _ops.OPS[code.op]
    params, operands, at_params, at_args = ["ptrdiff_t m", "double *restrict r"], [], [], []
    for k, kind in enumerate(code.kinds):
        name = "abc"[k]
        if kind == "r":
            params.append(f"const double *restrict {name}")
            at_args.append(f"{name}[i]")
        else:
            params.append(f"const double k{name}")
            at_args.append(f"k{name}")
        at_params.append(f"const double {name}")
        operands.append((name, PREC_ATOM))
    rhs, _ = format_op(op, operands, SPELLING)
    vector, _ = format_op(op, [(a, PREC_ATOM) for a in at_args], SPELLING)
    return [f"/* {code.op} ({code.kinds}) */",
            f"static XC_SCALAR double xc_vm_{code.number}_at({', '.join(at_params)}) {{ return {rhs}; }}",
            f"static XC_CASE void xc_vm_{code.number}({', '.join(params)})", "{",
            "    const ptrdiff_t v = m / XC_LANES * XC_LANES;",
            "    #pragma omp simd", "    for (ptrdiff_t i = 0; i < v; ++i)", f"        r[i] = {vector};",
            "    for (ptrdiff_t i = v; i < m; ++i)", f"        r[i] = xc_vm_{code.number}_at({', '.join(at_args)});",
            "}", ""]


def _case(code: Opcode) -> str:
    if code.move:
        body = {"load": "xc_vm_load(b, R + c[1] * rs, in[c[2]] + i0 * st[c[2]], st[c[2]]);",
                "store": "xc_vm_store(b, out[c[1]] + i0 * os[c[1]], os[c[1]], R + c[2] * rs);",
                "store_const": "xc_vm_fill(b, out[c[1]] + i0 * os[c[1]], os[c[1]], K[c[2]]);",
                "const": "xc_vm_fill(b, R + c[1] * rs, 1, K[c[2]]);"}[code.move]
        return f"        case {code.number}: {body} break;"
    args = [f"R + c[{k + 2}] * rs" if kind == "r" else f"K[c[{k + 2}]]" for k, kind in enumerate(code.kinds)]
    return f"        case {code.number}: xc_vm_{code.number}(b, R + c[1] * rs, {', '.join(args)}); break;"


def _scalar_case(code: Opcode) -> str:
    """One opcode on one point (xc_vm_scalar): its `_at` function's expression, inline."""
    if code.move:
        body = {"load": "R[c[1]] = in[c[2]];", "store": "out[c[1]] = R[c[2]];",
                "store_const": "out[c[1]] = K[c[2]];", "const": "R[c[1]] = K[c[2]];"}[code.move]
        return f"        case {code.number}: {body} break;"
    args = [(f"R[c[{k + 2}]]" if kind == "r" else f"K[c[{k + 2}]]", PREC_ATOM) for k, kind in enumerate(code.kinds)]
    return f"        case {code.number}: R[c[1]] = {format_op(_ops.OPS[code.op], args, SPELLING)[0]}; break;"


def _kinds_table() -> str:
    rows = [", ".join(map(str, field_kinds(c))) for c in OPCODES]
    return ",\n".join(f"    {{{r}}}" for r in rows)


ENTRY = "xc_vm_run"
POINT = "xc_vm_point"
DECL = (f"int {ENTRY}(const int *code, ptrdiff_t ncode, const double *consts, ptrdiff_t nconst, ptrdiff_t nregs, "
        "ptrdiff_t n, ptrdiff_t block, int threads, ptrdiff_t nin, double **in, ptrdiff_t *st, "
        "ptrdiff_t nout, double **out, ptrdiff_t *os);\n"
        f"int {POINT}(const int *code, ptrdiff_t ncode, const double *consts, ptrdiff_t nconst, ptrdiff_t nregs, "
        "ptrdiff_t nin, const double *in, ptrdiff_t nout, double *out);")


_RUNTIME = r"""
/* input k of point i is in[k][i * st[k]]: a stride 0 broadcasts */
static void xc_vm_load(ptrdiff_t b, double *restrict y, const double *restrict x, ptrdiff_t s)
{
    if (s == 1) {
        for (ptrdiff_t i = 0; i < b; ++i) y[i] = x[i];
    } else {
        for (ptrdiff_t i = 0; i < b; ++i) y[i] = x[i * s];
    }
}

static void xc_vm_store(ptrdiff_t b, double *restrict y, ptrdiff_t s, const double *restrict x)
{
    if (s == 1) {
        for (ptrdiff_t i = 0; i < b; ++i) y[i] = x[i];
    } else {
        for (ptrdiff_t i = 0; i < b; ++i) y[i * s] = x[i];
    }
}

static void xc_vm_fill(ptrdiff_t b, double *restrict y, ptrdiff_t s, double v)
{
    for (ptrdiff_t i = 0; i < b; ++i) y[i * s] = v;
}

/* 0 if every field of every instruction is within its bound (xc_vm_kinds) and no
   instruction writes a row it reads; -2 otherwise. Without a branch per field (a
   negative field is a huge size_t): it costs about what running one point does. */
static int xc_vm_check(const int *code, ptrdiff_t ncode, ptrdiff_t nconst, ptrdiff_t nregs,
                       ptrdiff_t nin, ptrdiff_t nout)
{
    const size_t limit[5] = {1, (size_t)nregs, (size_t)nconst, (size_t)nin, (size_t)nout};
    int bad = 0;
    for (ptrdiff_t p = 0; p < ncode; ++p) {
        const int *c = code + XC_WIDTH * p;
        const size_t op = (size_t)(ptrdiff_t)c[0];
        bad |= op >= XC_OPCODES;
        const unsigned char *kind = xc_vm_kinds[op < XC_OPCODES ? op : 0];
        const int reg = kind[0] == XC_REG;
        for (int f = 0; f < 4; ++f)
            bad |= (size_t)(ptrdiff_t)c[f + 1] >= limit[kind[f]];
        for (int f = 1; f < 4; ++f)
            bad |= reg & (kind[f] == XC_REG) & (c[f + 1] == c[1]);
    }
    return bad ? -2 : 0;
}

/* points i0 .. i0 + b - 1 through the whole program; R: nregs rows of rs doubles */
static void xc_vm_block(const int *code, ptrdiff_t ncode, const double *K, double *R, ptrdiff_t rs,
                        ptrdiff_t b, ptrdiff_t i0, double *const *in, const ptrdiff_t *st,
                        double *const *out, const ptrdiff_t *os)
{
    for (ptrdiff_t p = 0; p < ncode; ++p) {
        const int *c = code + XC_WIDTH * p;
        switch (c[0]) {
%CASES%
        }
    }
}

static int xc_vm_sizes(ptrdiff_t ncode, ptrdiff_t nconst, ptrdiff_t nregs, ptrdiff_t n, ptrdiff_t nin,
                       ptrdiff_t nout, ptrdiff_t rs)
{
    if (ncode < 0 || nconst < 0 || nregs < 0 || n < 0 || nin < 0 || nout < 0) return -3;
    if (nregs > PTRDIFF_MAX / (ptrdiff_t)sizeof(double) / rs) return -3;
    return 0;
}

int xc_vm_run(const int *code, ptrdiff_t ncode, const double *consts, ptrdiff_t nconst, ptrdiff_t nregs,
              ptrdiff_t n, ptrdiff_t block, int threads, ptrdiff_t nin, double **in, ptrdiff_t *st,
              ptrdiff_t nout, double **out, ptrdiff_t *os)
{
    if (block < 1 || block > XC_MAX_BLOCK || block % XC_LANES) return -3;
    const ptrdiff_t bs = n < block ? n : block;
    /* rows start on 64-byte lines, and a line more apart than they need from 32 points
       on, so that rows of 2^k bytes do not put an instruction's loads and stores a
       multiple of 4 KiB apart (a guess, not measured to matter; vm_backend.block_size's
       table was measured with it) */
    const ptrdiff_t rs = (bs + 7) / 8 * 8 + (bs >= 32 ? 8 : 0);
    if (xc_vm_sizes(ncode, nconst, nregs, n, nin, nout, rs > 0 ? rs : 8)) return -3;
    if (xc_vm_check(code, ncode, nconst, nregs, nin, nout)) return -2;
    if (n == 0) return 0;
    int failed = 0;
    (void)threads;  /* unused in a build without OpenMP */
    #pragma omp parallel num_threads(threads) if(threads > 1) reduction(|: failed)
    {
        double *R = malloc(sizeof(double) * (size_t)(nregs > 0 ? nregs : 1) * (size_t)rs);
        failed = R == NULL;
        #pragma omp for schedule(static)
        for (ptrdiff_t i0 = 0; i0 < n; i0 += block) {
            if (R == NULL) continue;
            xc_vm_block(code, ncode, consts, R, rs, n - i0 < block ? n - i0 : block, i0, in, st, out, os);
        }
        free(R);
    }
    return failed ? -1 : 0;
}

/* one point through the program: registers are single doubles, every op the scalar
   function of its case (the loops' last points), inline */
static void xc_vm_scalar(const int *code, ptrdiff_t ncode, const double *K, double *R,
                         const double *in, double *out)
{
    for (ptrdiff_t p = 0; p < ncode; ++p) {
        const int *c = code + XC_WIDTH * p;
        switch (c[0]) {
%SCALAR%
        }
    }
}

/* one point: input k in in[k], output k to out[k] */
int xc_vm_point(const int *code, ptrdiff_t ncode, const double *consts, ptrdiff_t nconst, ptrdiff_t nregs,
                ptrdiff_t nin, const double *in, ptrdiff_t nout, double *out)
{
    if (xc_vm_sizes(ncode, nconst, nregs, 1, nin, nout, 1)) return -3;
    if (xc_vm_check(code, ncode, nconst, nregs, nin, nout)) return -2;
    double local[XC_POINT_REGS];   /* most programs: no malloc */
    double *R = nregs <= XC_POINT_REGS ? local : malloc(sizeof(double) * (size_t)nregs);
    if (R == NULL) return -1;
    xc_vm_scalar(code, ncode, consts, R, in, out);
    if (R != local) free(R);
    return 0;
}
"""


def generate() -> str:
    """The VM's C source (deterministic: the cache keys it by its bytes)."""
    from ..version import __version__
    spelled = {_ops.OPS[c.op].c for c in OPCODES if c.op}
    lines = [f"/* Generated by exprcompiler {__version__}. Do not edit. */",
             "/* The tape VM: every scalar trace encoded as instructions (see exprcompiler/backends/vm_source.py) */",
             "#include <math.h>", "#include <stddef.h>", "#include <stdint.h>", "#include <stdlib.h>", ""]
    lines += math_prelude(spelled)
    lines += ["#if defined(__GNUC__)", "#define XC_CASE __attribute__((noinline))",
              "#define XC_SCALAR __attribute__((noinline, noclone))", "#else", "#define XC_CASE",
              "#define XC_SCALAR", "#endif", f"#define XC_WIDTH {WIDTH}", f"#define XC_MAX_BLOCK {MAX_BLOCK}",
              f"#define XC_LANES {LANES}", f"#define XC_OPCODES {len(OPCODES)}", f"#define XC_REG {REG}",
              f"#define XC_POINT_REGS {POINT_REGS}", "",
              "/* per opcode, the kinds of its fields dst, a, b, c: 0 unused (must be 0), 1 register,",
              "   2 constant, 3 input, 4 output */",
              f"static const unsigned char xc_vm_kinds[{len(OPCODES)}][4] = {{", _kinds_table(), "};", ""]
    for code in OPCODES:
        if code.op:
            lines += _case_function(code)
    cases = "\n".join(_case(c) for c in OPCODES)
    scalar = "\n".join(_scalar_case(c) for c in OPCODES)
    return "\n".join(lines) + _RUNTIME.replace("%CASES%", cases).replace("%SCALAR%", scalar)


__all__ = ["OPCODES", "NUMBER", "generate", "DECL", "MAX_BLOCK", "LANES", "field_kinds", "ERRORS"]
