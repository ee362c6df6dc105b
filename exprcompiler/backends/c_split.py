"""C backend, the split kernel: a scalar trace too large for one function
(c_backend.SPLIT_FROM statements) becomes parts of at most c_backend.PART cost (see
`cost`), a few to a translation unit (`units_of`), that c_build compiles in parallel
at UNIT_FLAGS (-O1) and links into one library with the driver that every split
kernel shares (c_driver: the batch's OpenMP loop over blocks, the copies between the
caller's arrays and the tape, the one-point entry), compiled once per flag set.
c_backend.generate_c calls `split_kernel` with the statements it rendered.

The kernel runs over blocks of XC_BLOCK points. A per-thread tape holds, for each
vector of XC_VL points of the block, a frame of XC_W slots, each slot one vector (the
frames follow each other, the slots of a frame too): the driver gathers the block's
inputs into the first slots (padding the last block to whole vectors by repeating its
last point), each part loads the slots it needs, each just before the first statement
that reads it, and stores the slots later parts or the outputs need, and the driver
copies the outputs' slots to the caller's arrays (see ROWS, removed, for why not the
parts themselves). Tape slots are reused once the last part that reads a value has
run. (Before, the tape was one row of XC_BLOCK points and a cache line per slot: the
20-link pendulum's Jacobian, 2,190 slots, ran blocks of 8 points in rows of 16, half
padding, and its one-point entry touched a line per slot, 280 KB; see point_entry for
what frames gave.) Two layouts of a part, both vector code with no scalar remainder:
- up to VECTOR_UP_TO statements, a loop over the block whose inner `omp simd` loop of
  XC_VL points (the width of the target's vectors) gcc turns into one vector iteration;
- above, the code of XC_VL points written in GCC's vector extension (c_lanes),
  called vector by vector (above HALF_PARTS_FROM statements in parts of half the
  cost): no vectorizer to run on the parts, only on one small wrapper per function
  called, in each unit.

Measured with gcc 12 on this project's 2-core AMD EPYC (AVX2), CPU seconds of the
compiler (user + sys of its processes), kernel thread-CPU time at 10^4 points on one
thread, median of 7; the machine was shared (load 5-9 on 2 cores in the last round,
so wall times ran 2-3x the CPU times; figures from one round agree within about 15%):
- The random 10^4-operation gradient (randexpr.random_program(4761, seed=1); 23k
  statements, 65 parts before): one part to a unit, loads at the part's start: scalar
  parts called point by point 17.4-18.1 s, kernel 840 ms; `omp simd` parts 32.6 s,
  kernel 187 ms. The one -O3 kernel did not finish in 900 s. Loads at first use:
  `omp simd` 27.4 s, vector-extension parts 14.3 s (16.9 s with loads at the start):
  a reverse-sweep part loaded ~500 values at its start, all live at once, and gcc's
  register allocation, combine, post-reload CSE and dead-store passes grow faster
  than linearly with that (one part 0.64 s, 0.28 s with loads at first use). Eight
  parts to a unit: 11.8 s. Parts of 300, 600, 1200, 2400 cost: 9.6, 10.3, 11.8, 12.7 s
  (kernel 218, 203, 196, 204 ms). This layout (600, units of about 4,800): 10.2 s and
  200-230 ms, against 17.7 s and 840 ms for the scalar parts in the same minute.
- The 10^5-operation gradient in this layout (1,285 parts in 162 units): 104.5 s, so
  gcc's time stays linear (10^4: 9.9 s), but its kernel took 3.7-4.6 s at 10^4 points
  (10^4: 195 ms). Not the tape's reuse: 59,665 slots, and at most 59,708 values are
  live between two statements of the trace (reverse mode keeps the forward values
  for the sweep back), so no allocation of slots makes the tape smaller. Not the
  block either (the same parts linked with drivers of 1, 2, 4, 8, 16 vectors a
  block, load 6-11: 7.0, 4.8-5.6, 4.7-5.0, 4.7, 3.7-4.6 s): from 2 vectors on, the
  tape's 1.5 MB of loads and stores per point come from L3 whatever the block, and
  the code (5.7 MB, 0.57 MB at 10^4) from L2 no more. Rows aligned to a cache line
  rather than malloc's 16 bytes (vectors straddling two lines), same parts, blocks of
  2, 4, 16 vectors: 4.8, 5.0, 3.7 s against 6.6-6.9, 5.8-6.7, 4.9 s.
- gcc -ftime-report on a vector-extension unit at -O1: parsing 28%, the RTL passes
  58% spread thin (combine 6%, LRA 6%, FRE 5%, IRA 4%, ...), IPA 11%. LANES_FLAGS
  (FRE, DOM, PTA, DSE and the IPA analyses off) on four units of the 10^4-operation
  gradient, medians of 3: 1.97 s against 2.77 s; on the whole kernel, two rounds: 6.8
  and 7.9 s against 10.9 and 11.0 s, kernel 186-203 ms against 210-230 ms. -O0: 6.1 s,
  kernel 1.2 s; -Og: 8.4 s, kernel 3.1 s.
- The same parts at -O0: 5.3 s, kernel 535 ms; -Og: 0.8x -O1's time. -O1 with its
  costly passes off one at a time (-fno-dse -fno-tree-dse: 0.9x; -fno-tree-pta,
  -fno-tree-fre, -fno-tree-ccp, -fno-tree-ter, ...: 1.0-1.3x) gains little; together
  (LANES_FLAGS, below) 0.7-0.8x.
- A loop over the block inside a vector-extension part: 1.5 s instead of 0.9 s for a
  unit (gcc's CCP over the loop's PHIs); lane wrappers inlined into the parts: 15.4 s
  instead of 11.0 s for the whole kernel.
- The layout before the `omp simd` one, a scalar function of one point per part,
  called point by point: the 10-link pendulum's Jacobian took 18.6 ms, 8.3 ms in the
  `omp simd` one (the unsplit -O3 kernel: 7.2 ms).
- (The row layout, before the frames.) Rows one cache line longer than a block: with
  512-byte rows (XC_BLOCK 64) a Jacobian's hundred output rows fall into 8 of L1's 64
  sets; the 6-link kernel took 4.4 ms instead of 1.9 ms. Frames hold a vector's slots
  side by side: no such strides. Their block size hardly matters (TAPE_DOUBLES 16K,
  32K, 64K, 128K: the 10-link kernel 3.99, 3.83, 4.08, 4.11 ms at 10^4 points, the
  20-link one, blocks of 8 to 56 points, 22.7, 23.1, 23.5, 25.3 ms; min of 11, load 4).
- An `omp simd` loop with a runtime trip count gets a vector body, a vector epilogue
  and a scalar one: 2.8x the compile time of the nest used here. Such parts at -O1 run
  as fast as at -O2 or -O3 (straight-line code; the 6-link Jacobian: 1.95, 1.95, 2.02
  ms) and compile in 0.6-0.75x their time. The one -O3 kernel of that Jacobian, with
  its vector epilogues and its scalar one-point copy, took 3.2 s; as parts 0.4 s.
- gcc's time per statement grows with an `omp simd` part (register allocation; a call
  spills every live vector register, hence CALL_COST): parts of 200 statements cost
  0.25 s each, of 500 0.65 s, of 1000 1.7 s. Values live across parts cost tape loads
  and stores (the pendulum Jacobians hold many), so small kernels take few parts.
- -fno-math-errno (c_build.FLAGS): with errno, sqrt is a branch to a call and no loop
  that calls it vectorizes.
Reproduce with benchmarks/bench_c_split.py.

The units are joined into one source text, each after a line UNIT_MARK; the text as
a whole is also one valid translation unit (the shared prelude is guarded), which is
what `exprc export` writes and what a compiler without the split sees.
"""

from __future__ import annotations

import re

from . import c_driver
from .c_lanes import lanes_prelude, lanes_rhs

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
# A vector-extension kernel (above VECTOR_UP_TO) runs blocks of LANES_VECTORS vectors:
# each part is called vector by vector over the block, so its code, fetched once a
# block, serves them all. At 10^5 operations (5.7 MB of code, 59,665 slots) one vector
# a block took 7.0 s, two to sixteen 3.7-4.8 s with no trend (see the top).
LANES_VECTORS = 4
# gcc's passes that find nothing in straight-line vector-extension parts (the front
# end's values are already shared, the tape's stores all live); see the top.
LANES_FLAGS = ("-fno-tree-pta", "-fno-tree-fre", "-fno-tree-dominator-opts", "-fno-ipa-pure-const",
               "-fno-ipa-reference", "-fno-ipa-modref", "-fno-dse", "-fno-tree-dse")
# The same for `omp simd` parts, and CCP, whose propagation over the loop's PHIs finds
# no constant the front end left: the 6-link pendulum's Jacobian (one part and the
# driver's unit), 7 interleaved cold builds, compiler CPU min / median 0.375 / 0.433 s
# at UNIT_FLAGS alone, 0.328 / 0.388 with LANES_FLAGS, 0.257 / 0.334 with these; the
# kernel as fast (10^4 points, min of 21 calls: 1.82, 1.92, 1.77 ms) and bit for bit the
# same (load 5-7). On vector-extension units -fno-tree-ccp changes nothing (the 10^4-
# operation gradient: 5.11 / 5.15 against 5.08 / 5.09 s, 3 builds each).
SIMD_FLAGS = LANES_FLAGS + ("-fno-tree-ccp",)
_LANES_MARK = "#define XC_LD(p) "  # in the prelude of a vector-extension kernel


def unit_flags(unit: str, gnu: bool = True) -> tuple[str, ...]:
    """The flags added for one translation unit of a split kernel (c_build); LANES_FLAGS
    and SIMD_FLAGS are gcc's (`gnu`: the compiler is gcc, not clang)."""
    if not gnu:
        return UNIT_FLAGS
    return UNIT_FLAGS + (LANES_FLAGS if _LANES_MARK in unit else SIMD_FLAGS)


# Each unit of a split kernel compiled on its own starts with this line; the joined
# text lacks it, and there the driver's functions are static (c_driver.API).
UNITS_DEFINE = "#define XC_UNITS 1"


def split_units(source: str) -> list[str]:
    """The translation units of a source: one, or those after each UNIT_MARK line,
    each preceded by UNITS_DEFINE and the text before the first mark (the shared
    prelude); the driver that ends a split kernel (a unit whose first line is
    c_driver.DRIVER_MARK) is the last, without the prelude: the same text for every
    kernel (is_driver)."""
    body, mark, driver = source.partition(f"\n{UNIT_MARK}\n{c_driver.DRIVER_MARK}\n")
    pieces = body.split("\n" + UNIT_MARK + "\n")
    if len(pieces) == 1 and not mark:
        return [source]
    units = [f"{UNITS_DEFINE}\n{pieces[0]}\n{p}" for p in pieces[1:]]
    return units + [f"{UNITS_DEFINE}\n{c_driver.DRIVER_MARK}\n{driver}"] * bool(mark)


def is_driver(unit: str) -> bool:
    """Whether a unit of split_units is the driver."""
    return unit.startswith(f"{UNITS_DEFINE}\n{c_driver.DRIVER_MARK}\n")


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
        here = {t: fixed[t] for t, _, _ in chunk if t in fixed and _is_output(t)}
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


# A value later parts need is stored to the tape right after its last assignment in
# the part (or after the load of the slot's old value, where plan() reuses a slot the
# part loads), not at the part's end, where every such value stayed live through the
# part. Same results bit for bit; at the part's end, against here (gcc's CPU of a cold
# build; kernel on 10^4 points, thread CPU, min of 11 interleaved rounds, load 5.3):
# the 20-link pendulum's Jacobian 10.7 -> 9.8 s, 26.8 -> 20.3 ms; the 10-link one
# 5.2 -> 4.5 ms; the random 10^4-operation gradient (vector-extension parts) 6.3 ->
# 5.4 s, 154 -> 149 ms.


def part_body(stmts, loads: dict, stores: dict, pad: str, lanes: bool = False) -> list[str]:
    """The lines of one part for point j of the block (for the XC_VL points from j, as
    vectors, with `lanes`): each value from the tape loaded just before the first
    statement that reads it (all loads first kept them all live: see the top), each
    value later parts need stored just after the part's last statement that assigns
    it (see the comment above)."""
    real, load = ("xc_v", "XC_LD(xc_f + {s} * XC_VL)") if lanes else ("double", "xc_f[{s} * XC_VL + j]")
    store = "XC_ST(xc_f + {s} * XC_VL, {nm});" if lanes else "xc_f[{s} * XC_VL + j] = {nm};"
    after: dict = {}   # statement index -> the stores just after it
    last = {target: k for k, (target, _, _) in enumerate(stmts)}
    first: dict = {}
    for k, (_, _, rd) in enumerate(stmts):
        for nm in rd:
            first.setdefault(nm, k)
    # a slot that plan() freed in this part is stored to only after its old value is
    # loaded (just before the first statement that reads it)
    loaded_at = {slot: first[nm] for nm, slot in loads.items()}
    at = {nm: max(last[nm], loaded_at.get(slot, -1)) for nm, slot in stores.items()}
    for nm, slot in stores.items():
        if not _is_output(nm):
            after.setdefault(at[nm], []).append(pad + store.format(s=slot, nm=nm))
    lines, declared, pending = [], set(), dict(loads)
    for k, (target, rhs, rd) in enumerate(stmts):
        for nm in sorted(nm for nm in rd if nm in pending):  # (rd & pending.keys() walks every key)
            lines.append(f"{pad}{real} {nm} = {load.format(s=pending.pop(nm))};")
            declared.add(nm)
        if lanes:
            rhs = lanes_rhs(rhs, rd)
        if _is_output(target):
            slot = stores[target]
            lines.append(f"{pad}XC_ST(xc_f + {slot} * XC_VL, {rhs});" if lanes else
                         f"{pad}xc_f[{slot} * XC_VL + j] = {rhs};")
        else:  # adjoints are assigned more than once
            lines.append(f"{pad}{'' if target in declared else real + ' '}{target} = {rhs};")
            declared.add(target)
        lines += after.get(k, ())
    return lines + after.get(len(stmts), [])


# ROWS, removed: vector-extension parts stored output k's lanes straight to their
# points' rows (a noipa xc_out per output, the rows' pointers in the frame's last
# slots; its four stores written into the parts ran as fast but tripled gcc's time on
# a unit of 767 outputs), where the outputs were side by side in one block, else to
# scratch rows the driver copied out. From C, one block for all the outputs reused by every call, the
# 20-link Jacobian's kernel ran faster (10^4 points, thread CPU, median of 31 rounds:
# 12.96 against 15.93 ms with the tape). But the call layer passes the values and the
# Jacobian as two arrays, so every user call took the scratch rows, and the one-point
# entry made 903 calls of xc_out. Measured as benchmarks/bench_split_calls.py does
# (ROWS_FROM None against 0; 15 rounds, 10 links 21, thread CPU medians, load 1.5):
#                   J(**states)     J(**states, out=)   J.at(x)
#   20 links tape   19.57 ms        16.08 ms            4.41 us
#            rows   23.73           19.09               5.27
#   10 links tape    4.51            4.45               1.66
#            rows    6.51            6.40               1.99
# The parts are the build's cost, so both layouts in one library (a choice per call)
# would double it. What the rows won from C was time in the driver's scatter (half the
# 20-link kernel's time in perf, its stores to the caller's block missing the cache),
# which now stores four outputs at once for every call (c_driver's xc_scatter_vector).
# Kernel thread-CPU ms at 10^4 points, one thread, min of 31 interleaved rounds (load
# 4.4; benchmarks/bench_c_split_gap.py), lane wrappers / c_lanes.MVEC / one -O1 function
# (c_build's sized flags), all bit for bit equal (the 20-link and 10^4-op rows with
# ROWS, then; the 10-link row's gap was where the driver's scatter loop fell in a
# cache line, not libmvec: see c_build.DRIVER_GCC_FLAGS):
#   10-link Jacobian            4.02 /  4.26 /  4.20    (61 rounds: 4.07 / 4.29 / 4.31)
#   20-link Jacobian           16.10 / 14.03 / 14.14
#   10^3-op gradient           12.12 / 11.59 / 11.32
#   10^4-op gradient          128.1 / 120.6 / (no build in 900 s)
# gcc's CPU on cold builds (min / median of 3, interleaved): 10-link 0.32 / 0.32 s ->
# 0.33 / 0.33 s, 10^3-op 0.39 / 0.41 -> 0.38 / 0.40, 20-link 1.36 / 1.50 -> 1.13 / 1.16.


# Up to VECTOR_UP_TO statements a part is a loop over the block's points j < m (m a
# multiple of XC_VL) that gcc vectorizes (`omp simd`); above, it is the code of the
# XC_VL points from j in the vector extension (see lanes_rhs), and above
# HALF_PARTS_FROM statements in parts of LANES_PART times the cost: the vectorizer's
# time on `omp simd` parts is what made the 10^4-operation gradient cost 27-33 s of
# CPU, against 10 s (measured at the top). Its time grows with a loop's memory
# references (tape loads and stores) faster than linearly (its dependence analysis
# pairs them, presumably): the 6-link pendulum's Jacobian cut in two `omp simd`
# parts took 0.17 + 0.21 s of gcc's CPU, as one part 0.18 s (min of 3, load 2.7).
# The pendulum Jacobians (bench/mechanics.py) in both layouts, VECTOR_UP_TO and
# LANES_PART patched as benchmarks/bench_c_split.py does, builds and calls interleaved
# round by round (cold builds in fresh caches, compiler CPU s min / median of 5 (6,
# 10 links) or 2 (20); kernel thread-CPU ms at 10^4 points, min; J.at(x) us, median
# of 2,000 calls; results bit for bit the same; load 2.5-7 on 2 cores):
#   links  omp simd (before)                 vector ext., whole parts   halves (0.5)
#   6      0.40 / 0.43, 1.56 ms, 1.28 us      0.29 / 0.33, 1.70, 1.64    0.35 / 0.37, 1.68, 1.99
#   10     1.99 / 2.38, 6.94 ms, 4.02 us      0.73 / 0.82, 5.79, 3.47    0.78 / 0.84, 6.74, 3.64
#   20     9.96 / 10.06, 33.4 ms, 11.4 us     2.22 / 2.49, 26.5, 10.9    2.25 / 2.48, 26.7, 7.0
# Whole parts (PART's cost) up to HALF_PARTS_FROM: at 6 links one part instead of two,
# whose unit is the longest compiler run of the build. But the 6-link kernel in the
# vector extension ran 10^4 points 1.4x slower (the two built once, 41 interleaved
# rounds, load 6.4: 2.94 / 3.33 ms min / median against 2.06 / 2.17; J.at 2.20 /
# 2.63 us against 2.06 / 2.48), the 10-link one as fast (3.98 / 5.63 against 3.95 /
# 5.21 ms). So `omp simd` parts up to VECTOR_UP_TO statements (after without_copies:
# the 6-link Jacobian has 685, the 10-link one 1,927), the vector extension above.
# Since then (libmvec called by name, blocks of LANES_VECTORS vectors, the driver's
# loops aligned) the gap closed, and every split kernel is in the vector extension:
# the 6-link kernel's unit took gcc 107 / 114 ms as `omp simd` against 80 / 85 ms
# (compiler CPU min / median of 9 interleaved runs, load 7), and ran 10^4 points in
# 1.23 ms against 1.18 (omp simd) and 1.41 (one unsplit -O3 kernel), medians of 21
# interleaved rounds, bit for bit the same; callgrind 879 / 812 / 633 instructions a
# point (benchmarks/bench_c_split_gap.py --cases pend6, load 5.7). The `omp simd`
# layout stays for VECTOR_UP_TO raised (the tests hold both layouts to the same bits).
VECTOR_UP_TO = 0
LANES_PART = 0.5
HALF_PARTS_FROM = 20_000
# A vector-extension part is the code of the XC_VL points from j, called vector by
# vector: inside a loop over the block, gcc's constant propagation over the loop's
# PHIs took a third of its time on those parts (1.5 s against 0.9 s for 4,800 cost).
PART_PARAMS = {True: "double *restrict t, ptrdiff_t m", False: "double *restrict t, ptrdiff_t j"}
# Parts share a unit up to UNIT_COST (each unit costs gcc a start and the prelude, about
# 0.03 s), in at least MIN_UNITS units (compiled in parallel).
UNIT_COST = 4800
MIN_UNITS = 4
# Vector-extension parts share a unit up to UNIT_LINES lines of their code (tape loads
# and stores included) instead: gcc's time on them follows their lines, not `cost`
# (a call there is one to a lane wrapper). The random 10^4-operation gradient's units
# grouped by cost: 11 of the forward sweep, 1,500-2,200 lines and 0.15-0.23 s of gcc's
# CPU each, 5 of the reverse sweep, 4,100-4,900 lines and 0.46-0.52 s (about 0.1 ms a
# line both; load 3); a unit's start and prelude alone 38-40 ms. Whole builds
# (benchmarks/bench_c_variants.py --ops 10000, compiler CPU s min / median, 3 + 4
# interleaved rounds, load 4.5-4.8, kernels bit for bit the same and as fast):
#   by cost (16 units)            4.93 / 4.96    5.09 / 5.34
#   UNIT_LINES 2400 (17 units)    4.58 / 5.18
#   UNIT_LINES 4800 (9 units)     4.28 / 4.75    4.39 / 4.89
#   UNIT_LINES 9600 (5 units)     4.30 / 4.70    4.20 / 4.52
# 4800 keeps units for more cores than this machine's two.
UNIT_LINES = 4800


def units_of(weights, per_unit: int) -> list[int]:
    """The first part of each unit: consecutive parts of about equal total weight, at
    most `per_unit` a unit, at least MIN_UNITS units."""
    total = sum(weights)
    n = min(len(weights), max(MIN_UNITS, -(-total // max(1, per_unit))))
    starts, spent = [0], 0
    for c, k in enumerate(weights[:-1]):
        spent += k
        if spent * n >= total * len(starts):
            starts.append(c + 1)
    return starts


def split_kernel(stmts, inputs: dict, func_name: str, decl: str, head: list[str],
                 n_in: int, n_out: int, part: int, block: int, table, packed_decl: str,
                 batch_decl: str = "", mvec=()) -> str:
    """The source of the split kernel: the prelude `head` (guarded, so the joined text
    is one valid unit too), the parts a few to a unit, the last unit ending with the
    kernel `decl`, its one-point entry `packed_decl` and its batch entry `batch_decl`
    where given (c_driver.entries), then the driver that every split kernel shares
    (c_driver.DRIVER).
    `mvec`: the libm functions with vector variants in libmvec (see c_lanes.MVEC)."""
    vector = len(stmts) <= VECTOR_UP_TO
    halves = not vector and len(stmts) > HALF_PARTS_FROM
    chunks, loads, stores, slots = plan(stmts, inputs, max(1, int(part * LANES_PART)) if halves else part)
    width = max(1, slots)
    if vector:
        block_c = str(max(VL_MAX, min(block, TAPE_DOUBLES // width) // VL_MAX * VL_MAX))
    else:  # whole vectors on every target
        block_c = f"(XC_VL * {LANES_VECTORS})"
    guard = f"XC_PRELUDE_{func_name.upper()}"
    lines = [f"#ifndef {guard}", f"#define {guard}", *head,
             f"#define XC_BLOCK {block_c}",
             # the tape's slots: a frame of XC_W vectors for each vector of points
             f"#define XC_W {width}",
             # XC_VL, the lanes of the target's vectors of doubles: a part's inner loop
             # of XC_VL points becomes one vector iteration, with no scalar remainder;
             # and the driver's functions (c_driver)
             *c_driver.API,
             # Separate units have no interprocedural view anyway; in the joined text
             # noipa keeps gcc from inlining the parts back into one huge function.
             "#if defined(__GNUC__)",
             '#define XC_PART __attribute__((noipa, visibility("hidden")))',
             "#else", "#define XC_PART", "#endif",
             # the kernel's entries only fill tables for the driver (c_driver.entries)
             "#if defined(__GNUC__) && !defined(__clang__)", '#define XC_DRIVER __attribute__((optimize("O0")))',
             "#else", "#define XC_DRIVER", "#endif",
             *([] if vector else lanes_prelude(stmts, mvec)),
             *[f"XC_PART void {func_name}_part{c}({PART_PARAMS[vector]});" for c in range(len(chunks))],
             "#endif", ""]
    loop = ["    for (ptrdiff_t i = 0; i < m; i += XC_VL) {",
            "        double *restrict xc_f = t + i * XC_W;  /* the frame of the points i ... */",
            "        #pragma omp simd",
            "        for (ptrdiff_t j = 0; j < XC_VL; ++j) {"] if vector else \
        ["    {", "        double *restrict xc_f = t + j * XC_W;  /* the frame of the points j ... */", "        {"]
    bodies = [part_body(chunk, loads[c], stores[c], " " * 12, lanes=not vector)
              for c, chunk in enumerate(chunks)]
    if vector or not UNIT_LINES:
        starts = set(units_of([sum(cost(st[1]) for st in ch) for ch in chunks], UNIT_COST))
    else:
        starts = set(units_of([len(b) for b in bodies], UNIT_LINES))
    for c, body in enumerate(bodies):
        lines += [UNIT_MARK] if c in starts else []
        lines += [f"XC_PART void {func_name}_part{c}({PART_PARAMS[vector]})", "{", *loop, *body,
                  "        }", "    }", "}", ""]
    lines += c_driver.entries(func_name, decl, packed_decl, n_in, n_out, len(chunks), vector, table, batch_decl)
    return "\n".join([*lines, UNIT_MARK, c_driver.DRIVER])


# point_entry: the one-point entry (input k in in[k], output k to out[k]; now
# c_driver.xc_split_point, which each kernel's entry calls with its parts): the
# parts called once each, on one vector of points in one frame of the tape, with
# none of the kernel's OpenMP region, gather and scatter loops. Every lane holds the
# point (garbage in the others could be subnormal, and slow). It calls only the
# parts, which are noipa. (An entry that called the kernel with n = 1, beside it, made gcc inline a
# pointer and a stride per input and output, 1,806 arguments on the 20-link
# pendulum's Jacobian, and take 3 s.) A unit of its own (before c_driver) cost
# 0.03-0.07 s more of a cold build at 6 links (gcc's start and headers: median of 5
# interleaved cold builds, load 1.6, 0.58 s against 0.51 s), nothing measurable at 10.
# Measured (the packed entry through cffi, thread CPU, medians of 21 interleaved
# rounds, load 5-7): the 6-link pendulum's Jacobian 3.19 µs through the kernel with
# n = 1 (its OpenMP region, gather and scatter), 1.38 µs here, and in one process
# 1.39 µs against 1.12 µs for the same trace built unsplit (min 0.96 / 0.98); the
# 10-link one 4.85 -> 2.93 µs (benchmarks/bench_dense_point.py). Its tape is one
# frame (XC_W vectors: 15 KB at 6 links, 19 KB at 10, 70 KB at 20), kept per thread
# (c_driver's kept tape). Rows of a block's points in a cache line each had made it 68, 267 and
# 280 KB. Same traces in one process (thread CPU, min / median of 11 interleaved
# rounds, load 5.4; benchmarks/bench_split_tape.py, against 73d46af): 6 links
# 1.06 / 1.56 µs before, 1.31 / 1.39 µs with frames and the kept tape; 10 links 2.69
# / 3.48 -> 1.73 / 2.65 µs; 20 links 14.7 / 17.1 -> 6.4 / 11.7 µs (the kernel on
# 10^4 points: 1.89 -> 1.82, 7.39 -> 4.68, 41.4 -> 29.8 ms, min). The kept tape alone,
# frames both ways (21 rounds of 2,000 calls, load 5): 0.84 / 1.30 against 0.96 /
# 1.51 µs malloc'd per call at 6 links, 1.38 / 2.34 against 1.57 / 2.55 at 10, 6.26 /
# 8.79 against 6.71 / 9.68 at 20. The 20-link Jacobian built as one -O1 function
# (133 s of build, against 15 s as parts) ran the entry in 4.1-6.7 µs and 10^4 points
# in 11-16 ms: the parts' tape traffic (about 3,000 loads and 3,400 stores a point,
# from a 70 KB frame, against gcc's own spills) is the rest of the gap. Larger
# parts do not close it: PART 600 / 1200 / 2400 ran 10^4 points in 30.0 / 29.8 /
# 44.4 ms (min of 9, load 5).
# Before the frames, the lanes cost more than the tape at 20 links: the same units
# with XC_VL 1 and no `omp simd` (scalar parts), timed from C, ran the entry in
# 10.1 µs against 14.4 µs, but a scalar copy of the parts would add 7.9 s of gcc's
# CPU to the build's 12 s.
