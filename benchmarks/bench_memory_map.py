"""Where bench_frontend's peak RSS goes, stage by stage: Python's small-object arenas,
malloc's heap (NumPy's arrays, large lists and dicts) and mmapped blocks, each as
bytes per operation above the pipeline's start, in use and held.

bench_frontend reports one figure per run, the peak RSS delta; it moves in steps of
~50 bytes an operation from run to run of the same code, because address-space
randomisation and str hashing change where blocks land. Here each (family, size) runs
in a fresh process with neither (`setarch -R`, PYTHONHASHSEED), so a run is
repeatable to the byte and two trees can be compared on the same seeds; several
seeds show the spread that allocation order alone gives.

Per stage (front end, gradient, then generate's steps, load), in bytes an operation:
  rss, hwm   the process's resident set and its high-water mark (bench_frontend's peak)
  pymA/pymU  pymalloc's arenas (1 MiB each, never returned while any block lives)
             and the bytes of the blocks in them in use
  heap/hUse  malloc's main heap (what mallinfo2 calls arena) and the bytes in use
  mmap       blocks malloc mapped on their own (above its mmap threshold)
A stage's RSS growth is pymalloc arenas + heap + mmap growth; what it frees stays
resident (holes in arenas, free heap) until a later stage reuses it.

    python benchmarks/bench_memory_map.py                          # text and deep, 10⁵, seed 0
    python benchmarks/bench_memory_map.py --sizes 100000 --families text --seeds 0 1 2

Linux (glibc) only: it reads /proc/self/status and mallinfo2, and re-executes itself
under setarch (util-linux).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import re
import subprocess
import sys

STEPS = ("_prepared_codes", "use_counts_and_reads", "named_array", "assign_names", "_slots", "_keyed_lines",
         "_slot_list")   # numpy_backend's, in the order generated() calls them
COLUMNS = ("rss", "hwm", "pymA", "pymU", "heap", "hUse", "mmap")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t)
                for f in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def _pymalloc() -> tuple[int, int]:
    """pymalloc's arena bytes and in-use block bytes (sys._debugmallocstats writes to
    the C stderr: read through a pipe)."""
    r, w = os.pipe()
    saved = os.dup(2)
    os.dup2(w, 2)
    os.close(w)
    try:
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    os.set_blocking(r, False)
    chunks = []
    try:
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    os.close(r)
    text = b"".join(chunks).decode()

    def number(label: str) -> int:
        return int(re.search(label + r"\s*=\s*([\d,]+)", text).group(1).replace(",", ""))
    return number("# arenas allocated current") << 20, number("# bytes in allocated blocks")


def one(family: str, n_ops: int) -> list:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_frontend import Timers, instrument, make_input   # (the same input and imports as its runs)

    expr = make_input(family, n_ops)
    instrument(Timers())
    from exprcompiler.backends import numpy_backend as nb
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import grad_reverse

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    rows = []

    def mark(name: str) -> None:
        status = {line.split(":")[0]: int(line.split()[1]) << 10 for line in open("/proc/self/status")
                  if line.startswith(("VmRSS", "VmHWM"))}
        arenas, used = _pymalloc()
        m = libc.mallinfo2()
        rows.append((name, status["VmRSS"], status["VmHWM"], arenas, used, m.arena, m.uordblks, m.hblkhd))

    for step in STEPS:   # (functions only: wrapping a class would change what load sees)
        fn = getattr(nb, step)

        def marked(*args, _fn=fn, _step=step, **kwargs):
            out = _fn(*args, **kwargs)
            mark("  generate: " + _step)
            return out
        setattr(nb, step, marked)
    gc.collect()
    mark("start")
    primal = to_trace(expr)
    mark("front end")
    grad = grad_reverse(primal)
    mark("gradient")
    source, _, program = nb.generated(grad, func_name="f_grad")
    mark("generate")
    fn = nb.load(source, "f_grad", program=program)
    mark("load")
    del fn
    base = rows[0]
    return [[name, *((x - b) / primal.size for x, b in zip(row, base[1:]))] for name, *row in rows] + [primal.size]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--families", nargs="+", default=["text", "deep"], choices=["text", "deep", "sympy"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="PYTHONHASHSEED of each run")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    for family in args.families:
        for size in args.sizes:
            for seed in args.seeds:
                env = dict(os.environ, PYTHONHASHSEED=str(seed))
                out = subprocess.run(["setarch", platform.machine(), "-R", sys.executable, __file__, "--one", family,
                                      str(size)], capture_output=True, text=True, env=env)
                if out.returncode:
                    print(f"{family} {size} seed {seed}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                    continue
                *rows, ops = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{family}, {ops:,} ops, hash seed {seed}: bytes an operation above the start")
                print(f"  {'stage':32s}" + "".join(f"{c:>7s}" for c in COLUMNS))
                for name, *values in rows:
                    print(f"  {name:32s}" + "".join(f"{v:7.0f}" for v in values))
                print()


if __name__ == "__main__":
    main()
