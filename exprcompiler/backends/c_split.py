"""C backend, the split kernel: a scalar trace too large for one function
(c_backend.SPLIT_FROM statements) becomes parts of c_backend.PART statements, each
in its own translation unit, that c_build compiles in parallel and links into one
library. c_backend.generate_c calls `split_kernel` with the statements it rendered.

Each part is a straight-line function of one point: its inputs read from the input
arrays, the values it needs from earlier parts loaded from that point's row of a
per-thread tape, the values later parts need stored back. The kernel runs the parts
in turn over blocks of points (the code of one part stays in the instruction cache
over its block). Measured on this project's gradients (gcc 12, see
tests/test_c_build_scale.py and the README's "Large expressions"): the old layout, a
loop over the block inside every part with the tape at t[slot * bs + j], gave gcc one
induction variable per tape slot, and its induction-variable optimisation and
register allocation took half the compile time; a row per point (t[slot], one base
pointer) compiles in about half the time at the same speed. Tape slots are reused
once the last part that reads a value has run, which keeps the tape small enough to
stay in cache.

The units are joined into one source text, each after a line UNIT_MARK; the text as
a whole is also one valid translation unit (the shared prelude is guarded), which is
what `exprc export` writes and what a compiler without the split sees.
"""

from __future__ import annotations

UNIT_MARK = "/* exprcompiler: translation unit */"
# Budget of the tape per thread, in doubles: 32k doubles = 256 KB, within L2. A
# kernel with many slots runs fewer points per block.
TAPE_DOUBLES = 32 * 1024


def split_units(source: str) -> list[str]:
    """The translation units of a source: one, or those after each UNIT_MARK line,
    each preceded by the text before the first mark (the shared prelude)."""
    pieces = source.split("\n" + UNIT_MARK + "\n")
    if len(pieces) == 1:
        return [source]
    head = pieces[0]
    return [head + "\n" + p for p in pieces[1:]]


def plan(stmts, inputs: dict, part: int) -> tuple[list, list, list, int]:
    """(statement lists, tape loads, tape stores, slots): chunks of `part` statements.
    A name read in a chunk before the chunk writes it comes from the tape, stored there
    by the last earlier chunk that wrote it (adjoints are written more than once:
    v4_bar = v4_bar + ...). A slot is free again from the start of the last chunk that
    loads its value (loads happen at a part's start, stores at its end)."""
    chunks = [stmts[k:k + part] for k in range(0, len(stmts), part)]
    ins = set(inputs)
    last_writer: dict = {}
    loaded: list = []        # per chunk: [(name, writing chunk)]
    until: dict = {}         # (name, writing chunk) -> last chunk that loads it
    for c, chunk in enumerate(chunks):
        written: set = set()
        first: dict = {}
        for target, _, rd in chunk:
            for nm in rd:
                if nm not in ins and nm not in written and nm not in first:
                    first[nm] = last_writer[nm]
            written.add(target)
        for nm, w in first.items():
            until[(nm, w)] = c
        loaded.append(sorted(first.items()))
        for nm in written:
            last_writer[nm] = c
    stored: list = [[] for _ in chunks]
    expires: list = [[] for _ in chunks]
    for (nm, w), c in until.items():
        stored[w].append(nm)
        expires[c].append((nm, w))
    slot: dict = {}
    free: list = []
    n_slots = 0
    stores: list = []
    for c in range(len(chunks)):
        free += [slot[v] for v in expires[c]]
        free.sort(reverse=True)  # lowest slot first: deterministic, and dense
        here = {}
        for nm in sorted(stored[c]):
            if free:
                s = free.pop()
            else:
                s, n_slots = n_slots, n_slots + 1
            slot[(nm, c)] = here[nm] = s
        stores.append(here)
    loads = [{nm: slot[(nm, w)] for nm, w in pairs} for pairs in loaded]
    return chunks, loads, stores, n_slots


def part_body(stmts, inputs: dict, loads: dict, stores: dict) -> list[str]:
    """The lines of one part: inputs of point i where read, tape row t, outputs."""
    read = set().union(*(rd for _, _, rd in stmts)) if stmts else set()
    lines = [f"    const double {nm} = ins[{k}][i * sts[{k}]];" for nm, k in inputs.items() if nm in read]
    lines += [f"    double {nm} = t[{s}];" for nm, s in loads.items()]
    declared = set(inputs) | set(loads)
    for target, rhs, _ in stmts:
        if target.startswith("out") and target[3:].isdigit():
            k = target[3:]
            lines.append(f"    outs[{k}][i * osts[{k}]] = {rhs};")
        else:  # adjoints are assigned more than once
            lines.append(f"    {'' if target in declared else 'double '}{target} = {rhs};")
            declared.add(target)
    lines += [f"    t[{s}] = {nm};" for nm, s in stores.items()]
    return lines


PART_PARAMS = ("double *restrict t, ptrdiff_t i, const double *const *ins, const ptrdiff_t *sts, "
               "double *const *outs, const ptrdiff_t *osts")


def split_kernel(stmts, inputs: dict, func_name: str, decl: str, head: list[str],
                 n_in: int, n_out: int, part: int, block: int, table) -> str:
    """The source of the split kernel: the prelude `head` (guarded, so the joined text
    is one valid unit too), one unit per part, and the unit of the kernel itself."""
    chunks, loads, stores, slots = plan(stmts, inputs, part)
    width = max(1, slots)
    bs = max(1, min(block, TAPE_DOUBLES // width))
    guard = f"XC_PRELUDE_{func_name.upper()}"
    lines = [f"#ifndef {guard}", f"#define {guard}", *head,
             # Separate units have no interprocedural view anyway; in the joined text
             # noipa keeps gcc from inlining the parts back into one huge function.
             # Levels measured with gcc 12 (CPU seconds, see the module docstring):
             # parts at O1 take 20-25% less than at O3 or at O2 without SLP, at the same
             # speed within this machine's noise (straight-line scalar code: O3's loop
             # passes have nothing to do, SLP finds little); the driver only calls the
             # parts, but at O3 gcc spent 3 s on it for the 20-link pendulum (1,806
             # pointer and stride parameters copied into tables), 0.05 s at O0.
             "#if defined(__GNUC__) && !defined(__clang__)",
             '#define XC_PART __attribute__((noipa, visibility("hidden"), optimize("O1")))',
             '#define XC_DRIVER __attribute__((optimize("O0")))',
             "#elif defined(__GNUC__)",
             '#define XC_PART __attribute__((noipa, visibility("hidden")))',
             "#define XC_DRIVER",
             "#else", "#define XC_PART", "#define XC_DRIVER", "#endif",
             *[f"XC_PART void {func_name}_part{c}({PART_PARAMS});" for c in range(len(chunks))],
             "#endif", ""]
    for c, chunk in enumerate(chunks):
        lines += [UNIT_MARK, f"XC_PART void {func_name}_part{c}({PART_PARAMS})", "{"]
        lines += part_body(chunk, inputs, loads[c], stores[c]) + ["}", ""]
    lines += [UNIT_MARK, f"#define XC_BLOCK {bs}", "XC_DRIVER " + decl, "{",
              f"    const double *const ins[] = {{{table([f'in{k}' for k in range(n_in)])}}};",
              f"    const ptrdiff_t sts[] = {{{table([f'st{k}' for k in range(n_in)])}}};",
              f"    double *const outs[] = {{{table([f'out{k}' for k in range(n_out)])}}};",
              f"    const ptrdiff_t osts[] = {{{table([f'os{k}' for k in range(n_out)])}}};",
              "    int failed = 0;",
              "    if (n <= 0) return 0;",
              "    (void)threads;  /* unused in a build without OpenMP */",
              "    #pragma omp parallel num_threads(threads) if(threads > 1) reduction(|: failed)",
              "    {",
              f"        /* the tape: a row of {width} values per point of a block, handed from part to part */",
              f"        double *t = malloc(sizeof(double) * XC_BLOCK * {width});",
              "        failed = t == NULL;",
              "        #pragma omp for schedule(static)",
              "        for (ptrdiff_t i0 = 0; i0 < n; i0 += XC_BLOCK) {",
              "            ptrdiff_t m = n - i0 < XC_BLOCK ? n - i0 : XC_BLOCK;",
              "            if (t == NULL) continue;"]
    for c in range(len(chunks)):
        lines.append(f"            for (ptrdiff_t j = 0; j < m; ++j) "
                     f"{func_name}_part{c}(t + j * {width}, i0 + j, ins, sts, outs, osts);")
    lines += ["        }", "        free(t);", "    }", "    return failed ? -1 : 0;", "}"]
    return "\n".join(lines)
