"""The stability catalogue, measured: `python -m exprcompiler.bench.stability`.

For each formula of exprcompiler/stability/catalogue.py, on the input range where
its naive float64 evaluation fails: the worst relative error of the value and of the
gradient against mpmath (accuracy.py), naive (stable=False) and rewritten
(stable=True), over both backends; then, for the scalar entries, the time of value +
gradient on 10⁶ points of that range, naive against rewritten, on NumPy and on C (one
thread), the minimum of --repeat rounds in which the two take turns (CPU time: see
best_times), with the ratio; then the same on catalogue.SAFE's ranges, where the naive
forms are accurate (what a rewrite costs when it was not needed), with the worst errors
of both forms there: a naive error above the goal is marked "!" and makes the exit
status 1 (the range is wrong, and its row's ratio no measure of an unneeded rewrite).
The README's "Numerical stability" tables are this script's output (`--markdown`).

Options: --points N (accuracy points per entry, default 200), --size N (timing
points, default 10⁶), --repeat N (default 5), --only NAME (substring of an entry
name; repeatable; filters both speed tables), --no-speed, --safe-only (only the SAFE
table; with --no-speed, its errors alone), --markdown, --quick (60 points, 10⁵, 3 repeats),
--pad MB (glibc's M_TOP_PAD: freed memory kept for the next call, so that the fresh
output and temporary arrays of a call at 10⁶ points take no page faults: 1,000-1,700 a
call otherwise, which cost both forms alike and move from run to run; with them gone,
the ratios are those of the computation itself, and higher).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np

from ..stability import accuracy as A
from ..stability.catalogue import CATALOGUE, SAFE

GOAL = 1e-13
BACKENDS = ("numpy", "c")


def _fmt(e: float) -> str:
    if math.isnan(e):
        return "-"
    if math.isinf(e):
        return "inf/NaN"
    return "0" if e == 0 else f"{e:.1e}"


def on_range(entry, sampler):
    """The entry with `sampler` for every input (the entry itself for None)."""
    return entry if sampler is None else dataclasses.replace(entry, ranges={n: sampler for n in entry.ranges})


def accuracy_row(entry, n: int, seed: int = 0, sampler=None) -> dict:
    """Worst errors over both backends: {(stable, 'value'|'grad'): error}, on the
    entry's range (or on `sampler`'s, for every input)."""
    entry = on_range(entry, sampler)
    pts = A.points(entry, n, seed)
    refs = A.references(entry, pts)
    out = {}
    for stable in (False, True):
        v_worst, g_worst = [], []
        for backend in BACKENDS:
            kw = {"threads": 1} if backend == "c" else {}
            v, g = A.errors(A.compile_entry(entry, backend, stable, **kw), pts, refs)
            v_worst.append(A.worst(v))
            g_worst.append(A.worst(g))
        out[(stable, "value")] = max(v_worst)
        out[(stable, "grad")] = max(g_worst)
    return out


def best_times(fs: dict, args, repeat: int, burst: int = 2) -> dict:
    """{key: the least CPU time of the process over `repeat` rounds of fs[key]}: the
    functions take turns (naive, stable, naive, ...), so that a quiet moment of the
    machine falls to each, each called `burst` times in a row, so that one is timed in
    its own steady state: on 10⁶ points a call's cost depends on how much of its memory
    the allocator still holds from the call before (the page faults of fresh memory
    cost as much as a pass over it), and that depends on which function came before.
    Every backend runs on one thread here, where CPU time is the wall time of an idle
    machine, and on a shared machine it does not count other processes' turns (wall
    time then varied by ±50% from run to run, CPU time by about ±10% at load 1-2, ±30%
    at load 5-8 on 2 cores)."""
    times = {k: [] for k in fs}
    for _ in range(repeat):
        for k, f in fs.items():
            for _ in range(burst):
                t = time.process_time()
                f(*args)
                times[k].append(time.process_time() - t)
    return {k: min(v) for k, v in times.items()}


def speed_row(entry, size: int, repeat: int, sampler=None) -> dict:
    """{(backend, stable): seconds} for value + gradient at `size` points of the
    entry's range (or of `sampler`'s, for every input)."""
    pts = A.points(on_range(entry, sampler), size, seed=1)
    args = list(pts.values())
    out = {}
    with np.errstate(all="ignore"):
        for backend in BACKENDS:
            kw = {"threads": 1} if backend == "c" else {}
            gs = {s: A.compile_entry(entry, backend, s, **kw) for s in (False, True)}
            for s, g in gs.items():
                g(*args)  # warm
            for s, t in best_times(gs, args, repeat).items():
                out[(backend, s)] = t
    return out


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(header)]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m exprcompiler.bench.stability", description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=200)
    p.add_argument("--size", type=int, default=10 ** 6)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--safe-only", action="store_true")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--pad", type=int, default=0, metavar="MB")
    a = p.parse_args(argv)
    if a.pad:
        _top_pad(a.pad)
    if a.quick:
        a.points, a.size, a.repeat = 60, 10 ** 5, 3
    entries = [e for e in CATALOGUE if not a.only or any(s in e.name for s in a.only)]
    scalar = [e for e in entries if not e.shapes]
    if a.safe_only:
        return _safe(scalar, a)
    acc_rows, naive_wrong, failures = [], {}, []
    for e in entries:
        r = accuracy_row(e, a.points)
        naive_wrong[e.name] = not (r[(False, "value")] <= GOAL and r[(False, "grad")] <= GOAL)
        after = max(r[(True, "value")], r[(True, "grad")])
        if not after <= GOAL:
            failures.append(e.name)
        acc_rows.append([f"`{e.expr}`" if a.markdown else e.expr, e.shown,
                         _fmt(r[(False, "value")]), _fmt(r[(True, "value")]),
                         _fmt(r[(False, "grad")]), _fmt(r[(True, "grad")]), ", ".join(e.rules)])
    print(f"Worst relative error against mpmath (50+ digits), {a.points} points per range, "
          f"worst of the NumPy and C backends:")
    print(_table(["formula", "range", "value naive", "value stable", "gradient naive", "gradient stable", "rules"],
                 acc_rows, a.markdown))
    print(f"\n{len(entries) - len(failures)} of {len(entries)} entries within {GOAL:g} after the rewrites"
          + (f"; not: {', '.join(failures)}" if failures else ""))
    if a.no_speed:
        return 1 if failures else 0
    print(f"\nValue + gradient on {a.size:.0e} points of the range, ms (minimum of {a.repeat}); C on one thread "
          f"(the scalar entries):")
    print(_speed_table(scalar, a, lambda e: (None, ["yes" if naive_wrong[e.name] else "no"]), ["naive wrong here"]))
    return 1 if _safe(scalar, a) or failures else 0


def _top_pad(mb: int) -> None:
    """glibc's mallopt(M_TOP_PAD, mb MiB) and M_MMAP_THRESHOLD at its largest, so that
    arrays freed go back to the heap (not to the system) and are reused: no page faults
    for the next call's arrays. A note on stderr where there is no glibc."""
    import ctypes
    import sys
    try:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(-2, mb << 20) and libc.mallopt(-3, 32 << 20)   # M_TOP_PAD, M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        ok = False
    if not ok:
        print("--pad: mallopt not available here; page faults stay in the times", file=sys.stderr)


def _safe(scalar, a) -> int:
    """The speed table on SAFE's ranges, with both forms' worst errors there: 1 if a
    naive error is above the goal (the range is then not one where the naive form is
    accurate), else 0."""
    safe = [e for e in scalar if e.name in SAFE]
    if not safe:
        return 0
    wrong = []

    def where(e):
        sampler, shown = SAFE[e.name]
        r = accuracy_row(e, a.points, sampler=sampler)
        naive, stable = (max(r[(s, "value")], r[(s, "grad")]) for s in (False, True))
        if not naive <= GOAL:
            wrong.append(e.name)
        return sampler, [shown, _fmt(naive) + ("" if naive <= GOAL else " !"), _fmt(stable)]

    print(f"\nThe same where the naive form is accurate (within {GOAL:g}): what a rewrite costs when not needed; "
          f"the worst errors there, value or gradient, {a.points} points:")
    print(_speed_table(safe, a, where, ["range", "error naive", "error stable"]))
    if wrong:
        print(f"\n! the naive form is not within {GOAL:g} on the range of: {', '.join(wrong)}")
    return 1 if wrong else 0


def _speed_table(entries, a, where, last: list) -> str:
    """One row per entry: naive and stable times and their ratio on both backends, then
    the cells where(entry) gives with the sampler to time on (None: the entry's own)."""
    rows = []
    for e in entries:
        sampler, notes = where(e)
        cells = [f"`{e.expr}`" if a.markdown else e.expr]
        if a.no_speed:   # (--safe-only --no-speed: the errors alone)
            cells += ["-"] * 3 * len(BACKENDS)
        else:
            t = speed_row(e, a.size, a.repeat, sampler)
            for backend in BACKENDS:
                n, s = t[(backend, False)], t[(backend, True)]
                cells += [f"{n * 1e3:.2f}", f"{s * 1e3:.2f}", f"{s / n:.2f}x"]
        rows.append(cells + notes)
    shown = {"numpy": "NumPy", "c": "C"}
    timed = [c for b in BACKENDS for c in (f"{shown[b]} naive", f"{shown[b]} stable", "ratio")]
    return _table(["formula", *timed, *last], rows, a.markdown)


if __name__ == "__main__":
    raise SystemExit(main())
