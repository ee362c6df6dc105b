"""C backend, the split kernel: a scalar trace too large for one function
(c_backend.SPLIT_FROM statements) becomes parts of at most c_backend.PART cost (see
`cost`), each in its own translation unit, that c_build compiles in parallel at
UNIT_FLAGS (-O1) and links into one library. c_backend.generate_c calls
`split_kernel` with the statements it rendered.

The kernel runs over blocks of XC_BLOCK points. A per-thread tape holds one row of
XC_PITCH doubles per slot: the driver gathers the block's inputs into the first rows
(padding the last block to whole vectors by repeating its last point), each part is
a loop over the block whose inner `omp simd` loop of XC_VL points (the width of the
target's vectors) gcc turns into one vector iteration with no scalar remainder —
loads from the rows it needs, stores the rows later parts or the outputs need — and
the driver copies the outputs' rows to the caller's arrays. Tape slots are reused
once the last part that reads a value has run.

Measured with gcc 12 on this project's 2-core AMD EPYC (AVX2), median CPU seconds of
the compiler (user + sys of its processes), kernel thread-CPU time at 10^4 points on
one thread; the machine was shared, so wall times ran 1.2-3x the CPU times:
- The layout before this one, a scalar function of one point per part, called point by
  point, was scalar: the 10-link pendulum's Jacobian took 18.6 ms, 8.3 ms in this one
  (the unsplit -O3 kernel: 7.2 ms; the random 10^4-operation gradient: 863 ms, 228 ms).
- Rows one cache line longer than a block: with 512-byte rows (XC_BLOCK 64) a
  Jacobian's hundred output rows fall into 8 of L1's 64 sets; the 6-link kernel took
  4.4 ms instead of 1.9 ms.
- A part's loop with a runtime trip count gets a vector body, a vector epilogue and a
  scalar one: 2.8x the compile time of the nest used here. Parts at -O1 run as fast
  as at -O2 or -O3 (straight-line code; the 6-link Jacobian: 1.95, 1.95, 2.02 ms; a
  random 10^3-operation gradient 27, 27 ms at -O1, -O2) and compile in 0.6-0.75x
  their time. The one -O3 kernel, with its vector epilogues and its scalar one-point
  copy, took 3.2 s for that Jacobian; as parts 0.4 s.
- gcc's time per statement grows with the part (register allocation; a call spills
  every live vector register, hence CALL_COST): on the random programs, parts of 200
  statements cost 0.25 s each, of 500 0.65 s, of 1000 1.7 s. Every unit also costs
  about 0.05 s to start and parse, and values live across parts cost tape loads and
  stores (the pendulum Jacobians hold many), so small kernels take few parts.
- -fno-math-errno (c_build.FLAGS): with errno, sqrt is a branch to a call and no loop
  that calls it vectorizes.

The units are joined into one source text, each after a line UNIT_MARK; the text as
a whole is also one valid translation unit (the shared prelude is guarded), which is
what `exprc export` writes and what a compiler without the split sees.
"""

from __future__ import annotations

import re

UNIT_MARK = "/* exprcompiler: translation unit */"
# Added after the build's flags for each unit of a split kernel (the last -O wins); part
# of the cache key. (gcc's optimize("O1") attribute on the parts instead keeps gcc 12
# from vectorizing them.)
UNIT_FLAGS = ("-O1",)
# Budget of the tape per thread, in doubles: 32k doubles = 256 KB, within L2. A
# kernel with many slots runs fewer points per block.
TAPE_DOUBLES = 32 * 1024
# The most lanes of any target's vector of doubles (AVX-512): blocks are whole vectors.
VL_MAX = 8


def split_units(source: str) -> list[str]:
    """The translation units of a source: one, or those after each UNIT_MARK line,
    each preceded by the text before the first mark (the shared prelude)."""
    pieces = source.split("\n" + UNIT_MARK + "\n")
    if len(pieces) == 1:
        return [source]
    head = pieces[0]
    return [head + "\n" + p for p in pieces[1:]]


# A statement that calls a function costs gcc about CALL_COST plain ones: around a call
# every live vector register is spilled. Fitted to two measurements: a part of 1,000
# pendulum statements with 14 calls and one of 200 random-program statements with 74
# calls both took gcc 0.25 s.
CALL_COST = 13
_CALL = re.compile(r"\b(?!xc_square\()[A-Za-z_][A-Za-z0-9_]*\(")


def cost(rhs: str) -> int:
    """gcc's work on a statement, in plain statements (see CALL_COST)."""
    return 1 + CALL_COST * len(_CALL.findall(rhs))


def chunked(stmts, part: int) -> list:
    """The statements in runs of at most `part` cost each (at least one statement)."""
    chunks, run, spent = [], [], 0
    for st in stmts:
        c = cost(st[1])
        if run and spent + c > part:
            chunks.append(run)
            run, spent = [], 0
        run.append(st)
        spent += c
    return chunks + [run] if run else chunks


def plan(stmts, inputs: dict, part: int) -> tuple[list, list, list, int]:
    """(statement lists, tape loads, tape stores, slots): chunks of at most `part` cost.
    Input k has slot k (the driver gathers it), output k slot len(inputs) + k (the
    driver copies it out); other values get the slots after those. A name read in a
    chunk before the chunk writes it comes from the tape, stored there by the last
    earlier chunk that wrote it (adjoints are written more than once: v4_bar = v4_bar
    + ...). A slot is free again from the start of the last chunk that loads its value
    (loads happen at a part's start, stores at its end)."""
    chunks = chunked(stmts, part)
    last_writer: dict = dict.fromkeys(inputs, -1)
    loaded: list = []        # per chunk: [(name, writing chunk)]
    until: dict = {}         # (name, writing chunk) -> last chunk that loads it
    for c, chunk in enumerate(chunks):
        written: set = set()
        first: dict = {}
        for target, _, rd in chunk:
            for nm in rd:
                if nm not in written and nm not in first:
                    first[nm] = last_writer[nm]
            written.add(target)
        for nm, w in first.items():
            until[(nm, w)] = c
        loaded.append(sorted(first.items()))
        for nm in written:
            last_writer[nm] = c
    fixed = dict(inputs)
    outputs = sorted((t for ch in chunks for t, _, _ in ch if _is_output(t)), key=lambda nm: int(nm[3:]))
    fixed.update({nm: len(inputs) + int(nm[3:]) for nm in outputs})
    stored: list = [[] for _ in chunks]
    expires: list = [[] for _ in chunks]
    for (nm, w), c in until.items():
        if nm in inputs and w == -1:
            continue
        stored[w].append(nm)
        expires[c].append((nm, w))
    slot: dict = {(nm, -1): k for nm, k in inputs.items()}
    free: list = []
    n_slots = len(inputs) + len(outputs)
    stores: list = []
    for c, chunk in enumerate(chunks):
        free += [slot[v] for v in expires[c] if v[0] not in fixed]
        free.sort(reverse=True)  # lowest slot first: deterministic, and dense
        here = {t: fixed[t] for t, _, _ in chunk if _is_output(t)}
        for nm in sorted(stored[c]):
            if free:
                s = free.pop()
            else:
                s, n_slots = n_slots, n_slots + 1
            slot[(nm, c)] = here[nm] = s
        stores.append(here)
    loads = [{nm: slot[(nm, w)] for nm, w in pairs} for pairs in loaded]
    return chunks, loads, stores, n_slots


def _is_output(name: str) -> bool:
    return name.startswith("out") and name[3:].isdigit()


def part_body(stmts, loads: dict, stores: dict, pad: str) -> list[str]:
    """The lines of one part for point j of the block: values from the tape, values to it."""
    lines = [f"{pad}double {nm} = t[{s} * XC_PITCH + j];" for nm, s in loads.items()]
    declared = set(loads)
    for target, rhs, _ in stmts:
        if _is_output(target):
            lines.append(f"{pad}t[{stores[target]} * XC_PITCH + j] = {rhs};")
        else:  # adjoints are assigned more than once
            lines.append(f"{pad}{'' if target in declared else 'double '}{target} = {rhs};")
            declared.add(target)
    lines += [f"{pad}t[{s} * XC_PITCH + j] = {nm};" for nm, s in stores.items() if not _is_output(nm)]
    return lines


# A part: its loop over the block's points j < m (m a multiple of XC_VL), vectorized,
# or, in a kernel of more than VECTOR_UP_TO statements, the scalar code of point j,
# called point by point: gcc compiles that in about half the time (the loop costs it
# induction variables, vectorization and the register pressure of vector calls), and
# the 10^4-operation random gradient's 27k statements took 30.7 s of CPU as vector
# parts against 13.6 s as scalar ones (kernel: 226 ms against 835 ms at 10^4 points).
VECTOR_UP_TO = 20_000
PART_PARAMS = {True: "double *restrict t, ptrdiff_t m", False: "double *restrict t, ptrdiff_t j"}

# The driver's unit: the copies between the caller's arrays and the tape (at the unit's
# -O1), and the driver itself at -O0 under gcc: it only calls them and the parts, and at
# -O1 gcc took 2.8 s of CPU over the tables of the 20-link pendulum's 1,806 pointer
# and stride parameters (0.05 s at -O0).
_COPIES = [
    "#include <stdint.h>",
    "#if defined(__GNUC__) && !defined(__clang__)",
    '#define XC_DRIVER __attribute__((optimize("O0")))',
    "#else", "#define XC_DRIVER", "#endif", "",
    "/* points i0 ... i0 + m - 1 of every input into the tape's first rows; the lanes",
    "   m ... bs - 1 repeat point m - 1 (values the parts compute and nobody stores) */",
    "static void xc_gather(double *restrict t, const double *const *ins, const ptrdiff_t *sts,",
    "                      int n_in, ptrdiff_t i0, ptrdiff_t m, ptrdiff_t bs)",
    "{",
    "    for (int k = 0; k < n_in; ++k) {",
    "        const double *p = ins[k] + i0 * sts[k];",
    "        const ptrdiff_t s = sts[k];",
    "        double *row = t + k * XC_PITCH;",
    "        for (ptrdiff_t j = 0; j < m; ++j)",
    "            row[j] = p[j * s];",
    "        for (ptrdiff_t j = m; j < bs; ++j)",
    "            row[j] = row[m - 1];",
    "    }",
    "}", "",
    "/* the outputs' rows of the tape to the m points from i0: a run of outputs side by",
    "   side in memory at one stride (a Jacobian's block) is stored point by point */",
    "static void xc_scatter(const double *restrict t, double *const *outs, const ptrdiff_t *osts,",
    "                       int n_out, ptrdiff_t i0, ptrdiff_t m)",
    "{",
    "    for (int k = 0; k < n_out; ) {",
    "        int r = 1;",
    "        while (k + r < n_out && osts[k + r] == osts[k]",
    "               && (uintptr_t)outs[k + r] == (uintptr_t)outs[k] + r * sizeof(double))",
    "            ++r;",
    "        const double *row = t + k * XC_PITCH;",
    "        double *o = outs[k] + i0 * osts[k];",
    "        const ptrdiff_t s = osts[k];",
    "        if (r == 1 && s == 1)",
    "            for (ptrdiff_t j = 0; j < m; ++j) o[j] = row[j];",
    "        else",
    "            for (ptrdiff_t j = 0; j < m; ++j)",
    "                for (int q = 0; q < r; ++q)",
    "                    o[j * s + q] = row[q * XC_PITCH + j];",
    "        k += r;",
    "    }",
    "}", ""]


def split_kernel(stmts, inputs: dict, func_name: str, decl: str, head: list[str],
                 n_in: int, n_out: int, part: int, block: int, table) -> str:
    """The source of the split kernel: the prelude `head` (guarded, so the joined text
    is one valid unit too), one unit per part, and the unit of the kernel itself."""
    chunks, loads, stores, slots = plan(stmts, inputs, part)
    vector = len(stmts) <= VECTOR_UP_TO
    width = max(1, slots)
    bs = max(VL_MAX, min(block, TAPE_DOUBLES // width) // VL_MAX * VL_MAX)
    guard = f"XC_PRELUDE_{func_name.upper()}"
    lines = [f"#ifndef {guard}", f"#define {guard}", *head,
             f"#define XC_BLOCK {bs}",
             # rows of the tape one cache line longer than a block: at 512 bytes a
             # Jacobian's hundred rows fall into 8 of L1's 64 sets and evict each other
             f"#define XC_PITCH {bs + VL_MAX}",
             # the lanes of the target's vectors of doubles: a part's inner loop of
             # XC_VL points becomes one vector iteration, with no scalar remainder
             "#if defined(__AVX512F__)", "#define XC_VL 8", "#elif defined(__AVX__)", "#define XC_VL 4",
             "#else", "#define XC_VL 2", "#endif",
             # Separate units have no interprocedural view anyway; in the joined text
             # noipa keeps gcc from inlining the parts back into one huge function.
             "#if defined(__GNUC__)",
             '#define XC_PART __attribute__((noipa, visibility("hidden")))',
             "#else", "#define XC_PART", "#endif",
             *[f"XC_PART void {func_name}_part{c}({PART_PARAMS[vector]});" for c in range(len(chunks))],
             "#endif", ""]
    loop = ["    for (ptrdiff_t i = 0; i < m; i += XC_VL) {", "        #pragma omp simd",
            "        for (ptrdiff_t j = i; j < i + XC_VL; ++j) {"] if vector else ["    {", "        {"]
    for c, chunk in enumerate(chunks):
        lines += [UNIT_MARK, f"XC_PART void {func_name}_part{c}({PART_PARAMS[vector]})", "{", *loop]
        lines += part_body(chunk, loads[c], stores[c], " " * 12) + ["        }", "    }", "}", ""]
    lines += [UNIT_MARK, *_COPIES, "XC_DRIVER " + decl, "{",
              f"    const double *const ins[] = {{{table([f'in{k}' for k in range(n_in)])}}};",
              f"    const ptrdiff_t sts[] = {{{table([f'st{k}' for k in range(n_in)])}}};",
              f"    double *const outs[] = {{{table([f'out{k}' for k in range(n_out)])}}};",
              f"    const ptrdiff_t osts[] = {{{table([f'os{k}' for k in range(n_out)])}}};",
              "    int failed = 0;",
              "    if (n <= 0) return 0;",
              "    (void)threads;  /* unused in a build without OpenMP */",
              "    #pragma omp parallel num_threads(threads) if(threads > 1) reduction(|: failed)",
              "    {",
              f"        /* the tape: {width} rows of XC_PITCH values, handed from part to part */",
              f"        double *t = malloc(sizeof(double) * XC_PITCH * {width});",
              "        failed = t == NULL;",
              "        #pragma omp for schedule(static)",
              "        for (ptrdiff_t i0 = 0; i0 < n; i0 += XC_BLOCK) {",
              "            const ptrdiff_t m = n - i0 < XC_BLOCK ? n - i0 : XC_BLOCK;",
              "            /* m rounded up to whole vectors: the lanes past m repeat point m - 1 */",
              "            const ptrdiff_t bs = (m + XC_VL - 1) / XC_VL * XC_VL;",
              "            if (t == NULL) continue;",
              f"            xc_gather(t, ins, sts, {n_in}, i0, m, bs);",
              *[f"            {func_name}_part{c}(t, bs);" if vector else
                f"            for (ptrdiff_t j = 0; j < m; ++j) {func_name}_part{c}(t, j);"
                for c in range(len(chunks))],
              f"            xc_scatter(t + {n_in} * XC_PITCH, outs, osts, {n_out}, i0, m);",
              "        }", "        free(t);", "    }", "    return failed ? -1 : 0;", "}"]
    return "\n".join(lines)
