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

One point (xc_vm_point, a call with numbers) runs through a second dispatch with each
case's scalar expression inline, registers single doubles: the bits of the loops'
scalar ends, and of the C kernel's one-point entry. With GNU C it jumps from each
case straight to the next (labels as values; a switch elsewhere): the 20-link
pendulum Jacobian's 5,857 instructions took 21 us instead of 32 (the min of 41
interleaved rounds, same bits; bench_vm.py's point column is a whole call).

What each field of an instruction is, per opcode (register, constant, input, output
or unused: field_kinds), is a table in the source (xc_vm_kinds). A program is checked
once, when it is loaded: xc_vm_new checks every field of every instruction against its
bound and copies the code and constants into memory of its own, whose address Python
only holds as an opaque `xc_vm_program *` (returning -2 if a field is out of range or
an instruction's result is one of its argument rows, -3 for sizes out of range, -1 for
no memory). The run entries take only such a program, so a call checks just what
changes per call (the numbers of points, inputs and outputs; the arrays are c_build's);
at 20 pendulum links that check was over half of a one-point call.
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


def _scalar_body(code: Opcode) -> str:
    """One opcode on one point (xc_vm_scalar): its `_at` function's expression, inline."""
    if code.move:
        return {"load": "R[c[1]] = in[c[2]];", "store": "out[c[1]] = R[c[2]];",
                "store_const": "out[c[1]] = K[c[2]];", "const": "R[c[1]] = K[c[2]];"}[code.move]
    args = [(f"R[c[{k + 2}]]" if kind == "r" else f"K[c[{k + 2}]]", PREC_ATOM) for k, kind in enumerate(code.kinds)]
    return f"R[c[1]] = {format_op(_ops.OPS[code.op], args, SPELLING)[0]};"


def _scalar_cases() -> tuple[str, str]:
    """xc_vm_scalar's two forms of dispatch: with GNU C's labels as values, a jump
    from each opcode's end straight to the next one's (the branch predictor then
    learns per opcode what tends to follow it), else a switch in a loop."""
    labels = ", ".join(f"&&xc_op_{c.number}" for c in OPCODES)
    threaded = [f"    static const void *const xc_op[XC_OPCODES] = {{{labels}}};",
                "    const int *c = code;", "    const int *const end = code + XC_WIDTH * ncode;",
                "    if (c == end) return;", "    goto *xc_op[c[0]];"]
    threaded += [f"xc_op_{c.number}: {_scalar_body(c)} if ((c += XC_WIDTH) == end) return; goto *xc_op[c[0]];"
                 for c in OPCODES]
    switch = [f"        case {c.number}: {_scalar_body(c)} break;" for c in OPCODES]
    return "\n".join(threaded), "\n".join(switch)


def _kinds_table() -> str:
    rows = [", ".join(map(str, field_kinds(c))) for c in OPCODES]
    return ",\n".join(f"    {{{r}}}" for r in rows)


ENTRY = "xc_vm_run"
POINT = "xc_vm_point"
# A program lives in memory of the VM's own (xc_vm_new copies and checks it once), its
# type opaque to Python: the run entries take only such a program (cffi refuses any other
# pointer as one), so no caller can hand them fields that were not checked.
DECL = ("typedef struct xc_vm_program xc_vm_program;\n"
        "xc_vm_program *xc_vm_new(const int *code, ptrdiff_t ncode, const double *consts, ptrdiff_t nconst, "
        "ptrdiff_t nregs, ptrdiff_t nin, ptrdiff_t nout, int *rc);\n"
        "void xc_vm_free(xc_vm_program *p);\n"
        f"int {ENTRY}(const xc_vm_program *p, ptrdiff_t n, ptrdiff_t block, int threads, ptrdiff_t nin, "
        "double **in, ptrdiff_t *st, ptrdiff_t nout, double **out, ptrdiff_t *os);\n"
        f"int {POINT}(const xc_vm_program *p, ptrdiff_t nin, const double *in, ptrdiff_t nout, double *out);\n"
        "ptrdiff_t xc_vm_encode(ptrdiff_t n, const int64_t *op, const int64_t *alt, const int64_t *arg, "
        "const int64_t *where, const int64_t *last, const int64_t *input, const int64_t *ostart, "
        "const int64_t *ok, ptrdiff_t nk, int *code, int64_t *trace_of, ptrdiff_t cap, int64_t *work, "
        "int64_t *regs);")


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

/* A checked program: its code and constants copied into memory only the VM points to,
   so nothing changes them after xc_vm_check has passed them. */
#define XC_VM_MAGIC 0x7863766d70726f67u   /* "xcvmprog" */
typedef struct xc_vm_program xc_vm_program;
struct xc_vm_program {
    uint64_t magic;
    ptrdiff_t ncode, nconst, nregs, nin, nout;
    int *code;
    double *consts;
};

/* A program checked once (its sizes, then every field: xc_vm_check) and copied; NULL
   with *rc -3 (sizes), -2 (a field) or -1 (no memory). */
xc_vm_program *xc_vm_new(const int *code, ptrdiff_t ncode, const double *consts, ptrdiff_t nconst,
                         ptrdiff_t nregs, ptrdiff_t nin, ptrdiff_t nout, int *rc)
{
    if (ncode < 0 || nconst < 0 || nregs < 0 || nin < 0 || nout < 0 || (ncode && code == NULL)
        || (nconst && consts == NULL) || ncode > PTRDIFF_MAX / XC_WIDTH / (ptrdiff_t)sizeof(int)
        || nconst > PTRDIFF_MAX / (ptrdiff_t)sizeof(double)
        /* the largest register file a run allocates: nregs rows of XC_MAX_BLOCK + 8 points */
        || nregs > PTRDIFF_MAX / (ptrdiff_t)sizeof(double) / (XC_MAX_BLOCK + 8)) {
        *rc = -3;
        return NULL;
    }
    if (xc_vm_check(code, ncode, nconst, nregs, nin, nout)) {
        *rc = -2;
        return NULL;
    }
    xc_vm_program *p = malloc(sizeof *p);
    int *c = malloc(sizeof(int) * (size_t)(ncode > 0 ? XC_WIDTH * ncode : 1));
    double *k = malloc(sizeof(double) * (size_t)(nconst > 0 ? nconst : 1));
    if (p == NULL || c == NULL || k == NULL) {
        free(p), free(c), free(k);
        *rc = -1;
        return NULL;
    }
    if (ncode) memcpy(c, code, sizeof(int) * (size_t)(XC_WIDTH * ncode));
    if (nconst) memcpy(k, consts, sizeof(double) * (size_t)nconst);
    *p = (xc_vm_program){XC_VM_MAGIC, ncode, nconst, nregs, nin, nout, c, k};
    *rc = 0;
    return p;
}

void xc_vm_free(xc_vm_program *p)
{
    if (p == NULL) return;
    free(p->code), free(p->consts);
    p->magic = 0;
    free(p);
}

/* what a call must agree with: the program (not NULL) and its numbers of inputs and outputs */
static int xc_vm_usable(const xc_vm_program *p, ptrdiff_t nin, ptrdiff_t nout)
{
    return p != NULL && p->magic == XC_VM_MAGIC && nin == p->nin && nout == p->nout;
}

/* n points: input k of point i at in[k][i * st[k]], output k to out[k][i * os[k]] */
int xc_vm_run(const xc_vm_program *p, ptrdiff_t n, ptrdiff_t block, int threads, ptrdiff_t nin, double **in,
              ptrdiff_t *st, ptrdiff_t nout, double **out, ptrdiff_t *os)
{
    if (!xc_vm_usable(p, nin, nout) || n < 0 || block < 1 || block > XC_MAX_BLOCK || block % XC_LANES)
        return -3;
    if ((nin && (in == NULL || st == NULL)) || (nout && (out == NULL || os == NULL))) return -3;
    if (n == 0) return 0;
    const ptrdiff_t bs = n < block ? n : block;
    /* rows start on 64-byte lines, and a line more apart than they need from 32 points
       on, so that rows of 2^k bytes do not put an instruction's loads and stores a
       multiple of 4 KiB apart (a guess, not measured to matter; vm_backend.block_size's
       table was measured with it) */
    const ptrdiff_t rs = (bs + 7) / 8 * 8 + (bs >= 32 ? 8 : 0);
    const ptrdiff_t nregs = p->nregs, ncode = p->ncode;
    const int *code = p->code;
    const double *consts = p->consts;
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

/* The register allocation of vm_backend._encode (its one sequential part; the
   comments there say what each step is for), over the arrays it works out, per value
   v < n: op[v] its instruction's opcode (-1: nothing to run), alt[v] the opcode with
   the first argument in a register (an instruction of constants only), arg[3v + j]
   its arguments (-1: none; each an earlier value), where[v] a constant's index (-1:
   not a constant), last[v] its last reader, input[v] (-1: not an input), and the
   outputs it is: ok[ostart[v] .. ostart[v + 1] - 1] (nk of them). Writes at most cap instructions
   to code (XC_WIDTH ints each) and trace_of; work: 6n + 1 int64s. Returns the number
   written, regs[0] the registers used and regs[1] the top of the free rows (-1: none);
   -3 for arrays out of range, -4 for cap too small. Whatever it writes, xc_vm_new
   checks again before anything runs it. */
ptrdiff_t xc_vm_encode(ptrdiff_t n, const int64_t *op, const int64_t *alt, const int64_t *arg,
                       const int64_t *where0, const int64_t *last, const int64_t *input, const int64_t *ostart,
                       const int64_t *ok, ptrdiff_t nk, int *code, int64_t *trace_of, ptrdiff_t cap,
                       int64_t *work, int64_t *regs)
{
    if (n < 0 || cap < 0 || n > PTRDIFF_MAX / 8 || ostart[0] != 0 || ostart[n] != nk) return -3;
    for (ptrdiff_t v = 0; v < n; ++v) {
        for (int j = 0; j < 3; ++j)
            if (arg[3 * v + j] < -1 || arg[3 * v + j] >= v) return -3;
        if (op[v] < -1 || op[v] >= XC_OPCODES || alt[v] < -1 || alt[v] >= XC_OPCODES || where0[v] < -1
            || where0[v] > INT_MAX || input[v] < -1 || input[v] > INT_MAX || ostart[v + 1] < ostart[v])
            return -3;
    }
    for (int64_t k = 0; k < ostart[n]; ++k)
        if (ok[k] < 0 || ok[k] > INT_MAX) return -3;
    int64_t *where = work, *stack = work + n;   /* the free rows: at most 5n (a push per allocation) */
    const ptrdiff_t depth = 5 * n + 1;
    ptrdiff_t top = 0, m = 0;
    int64_t nregs = 0;
    for (ptrdiff_t v = 0; v < n; ++v) where[v] = where0[v];
#define XC_EMIT(o, d, a, b, c, t) do { if (m >= cap) return -4; int *w_ = code + XC_WIDTH * m; \
    w_[0] = (int)(o), w_[1] = (int)(d), w_[2] = (int)(a), w_[3] = (int)(b), w_[4] = (int)(c); \
    trace_of[m++] = (t); } while (0)
#define XC_ROW(r) do { if (top) (r) = stack[--top]; else if (nregs < INT_MAX) (r) = nregs++; else return -3; } while (0)
#define XC_FREE(r) do { if (top >= depth) return -3; stack[top++] = (r); } while (0)
    for (ptrdiff_t i = 0; i < n; ++i) {
        int64_t number = op[i], f[3] = {0, 0, 0}, row, temporary = -1;
        if (number < 0) continue;
        const int64_t *a = arg + 3 * i;
        for (int j = 0; j < 3 && a[j] >= 0; ++j) {
            if (where[a[j]] < 0) {   /* an input, first used here */
                if (input[a[j]] < 0) return -3;
                XC_ROW(where[a[j]]);
                XC_EMIT(XC_LOAD, where[a[j]], input[a[j]], 0, 0, -1);
            }
            f[j] = where[a[j]];
        }
        if (alt[i] >= 0) {   /* constants only: the first into a row */
            XC_ROW(temporary);
            XC_EMIT(XC_LOAD_CONST, temporary, f[0], 0, 0, -1);
            f[0] = temporary;
            number = alt[i];
        }
        XC_ROW(row);
        where[i] = row;
        XC_EMIT(number, row, f[0], f[1], f[2], i);
        for (int64_t k = ostart[i]; k < ostart[i + 1]; ++k)
            XC_EMIT(XC_STORE, ok[k], row, 0, 0, -1);
        if (last[i] <= i) XC_FREE(row);
        for (int j = 0; j < 3 && a[j] >= 0; ++j)
            if (last[a[j]] == i && where0[a[j]] < 0 && (j < 1 || a[0] != a[j]) && (j < 2 || a[1] != a[j]))
                XC_FREE(where[a[j]]);
        if (temporary >= 0) XC_FREE(temporary);
    }
#undef XC_EMIT
#undef XC_ROW
#undef XC_FREE
    regs[0] = nregs;
    regs[1] = top ? stack[top - 1] : -1;
    return m;
}

/* one point through the program: registers are single doubles, every op the scalar
   function of its case (the loops' last points), inline */
static void xc_vm_scalar(const int *code, ptrdiff_t ncode, const double *K, double *R,
                         const double *in, double *out)
{
#if defined(__GNUC__)
%THREADED%
#else
    for (ptrdiff_t p = 0; p < ncode; ++p) {
        const int *c = code + XC_WIDTH * p;
        switch (c[0]) {
%SCALAR%
        }
    }
#endif
}

/* one point: input k in in[k], output k to out[k] */
int xc_vm_point(const xc_vm_program *p, ptrdiff_t nin, const double *in, ptrdiff_t nout, double *out)
{
    if (!xc_vm_usable(p, nin, nout) || (nin && in == NULL) || (nout && out == NULL)) return -3;
    double local[XC_POINT_REGS];   /* most programs: no malloc */
    double *R = p->nregs <= XC_POINT_REGS ? local : malloc(sizeof(double) * (size_t)p->nregs);
    if (R == NULL) return -1;
    xc_vm_scalar(p->code, p->ncode, p->consts, R, in, out);
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
             "#include <limits.h>", "#include <math.h>", "#include <stddef.h>", "#include <stdint.h>",
             "#include <stdlib.h>", "#include <string.h>", ""]
    lines += math_prelude(spelled)
    lines += ["#if defined(__GNUC__)", "#define XC_CASE __attribute__((noinline))",
              "#define XC_SCALAR __attribute__((noinline, noclone))", "#else", "#define XC_CASE",
              "#define XC_SCALAR", "#endif", f"#define XC_WIDTH {WIDTH}", f"#define XC_MAX_BLOCK {MAX_BLOCK}",
              f"#define XC_LANES {LANES}", f"#define XC_OPCODES {len(OPCODES)}", f"#define XC_REG {REG}",
              f"#define XC_POINT_REGS {POINT_REGS}", f"#define XC_LOAD {LOAD}", f"#define XC_STORE {STORE}",
              f"#define XC_LOAD_CONST {LOAD_CONST}", "",
              "/* per opcode, the kinds of its fields dst, a, b, c: 0 unused (must be 0), 1 register,",
              "   2 constant, 3 input, 4 output */",
              f"static const unsigned char xc_vm_kinds[{len(OPCODES)}][4] = {{", _kinds_table(), "};", ""]
    for code in OPCODES:
        if code.op:
            lines += _case_function(code)
    cases = "\n".join(_case(c) for c in OPCODES)
    threaded, scalar = _scalar_cases()
    return "\n".join(lines) + _RUNTIME.replace("%CASES%", cases).replace("%THREADED%", threaded).replace(
        "%SCALAR%", scalar)


__all__ = ["OPCODES", "NUMBER", "generate", "DECL", "MAX_BLOCK", "LANES", "field_kinds", "ERRORS"]
