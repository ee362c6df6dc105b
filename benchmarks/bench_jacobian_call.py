"""The pendulum Jacobian's call against its own kernel (tracker issue 13: J(**inputs)
and J(**inputs, out=) at most 1.2x the kernel over 10⁴ states), side by side:

- `J(**inputs)`, `J(**inputs, out=)`: the call as a user makes it (from the second call
  on, dense_point's run of c_entry: the arrays checked in C, the kernel's batch entry);
- `general ...`: the same calls through api.Compiled.__call__, the path every call took
  before (binding, _check_out, the cffi runner building a pointer per output);
- `kernel, reused arrays`: the generated function alone through cffi, its pointers made
  once, writing into the same two arrays as the out= call — the floor;
- `kernel, new arrays`: the same with new arrays each call (np.empty, pointers made
  per call), what a call that returns new arrays must at least do;
- one point: `J(**floats)` and its general path, for the one-point entry's cost.

    python benchmarks/bench_jacobian_call.py [--links 3 6] [--points 10000] [--rounds 21] [--seconds 0.02]

One thread (compiled with threads=1). Each round times every row for about --seconds
(calls per row fixed after a calibration), the rows in turn, rotated each round; the
table gives the minimum and median over rounds of the thread's CPU time per call
(time.thread_time: a shared machine's other processes inflate it less than the wall
time) and of the wall time, and each row's median over the kernel's with reused arrays.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import api, compile_jacobian  # noqa: E402
from exprcompiler.bench.mechanics import exact, pendulum, random_states  # noqa: E402

FLOOR = "kernel, reused arrays"


def cffi_kernel(J, cols: dict, outs: tuple, fresh: bool):
    """() -> J.function on `cols`, storing into `outs` (values (P, m), Jacobian (P, m, n))
    or, with `fresh`, into new arrays of their shapes made at each call."""
    import cffi
    ffi = cffi.FFI()
    fn = J.function
    args: list = [len(next(iter(cols.values()))), 1]
    for name in J.inputs:
        args += [ffi.from_buffer("double[]", cols[name]), 1]

    def pointers(arrays) -> list:
        found = []
        for a in arrays:
            base, w = a.__array_interface__["data"][0], a[0].size
            found += [x for j in range(w) for x in (ffi.cast("double *", base + 8 * j), w)]
        return found
    fixed = args + pointers(outs)
    shapes = [o.shape for o in outs]

    def reused():
        if fn(*fixed):
            raise MemoryError

    def new():
        arrays = [np.empty(s) for s in shapes]
        if fn(*args, *pointers(arrays)):
            raise MemoryError
        return arrays
    return new if fresh else reused


def rows_of(n: int, points: int) -> dict:
    model = pendulum(n)
    J = compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1)
    X = random_states(n, points)
    cols = {name: np.ascontiguousarray(X[:, k]) for k, name in enumerate(model.names)}
    floats = {name: float(v) for name, v in zip(model.names, X[0])}
    general = api.Compiled.__call__
    for _ in range(3):  # the entries are learnt at the second call
        values, jac = J(**cols)
        J(**floats)
    outs = (np.empty_like(values), np.empty_like(jac))
    want = exact(n, X[:3])
    for got in (J(**cols), J(**cols, out=outs), general(J, **cols), general(J, **cols, out=outs)):
        flat = np.hstack([got[0][:3], got[1][:3].reshape(3, -1)])
        assert np.allclose(flat, want, rtol=1e-9, atol=1e-9), f"n={n}: generated C differs from SymPy"
    mine, theirs = J(**cols), general(J, **cols)
    assert all(np.array_equal(a, b) for a, b in zip(mine, theirs)), "the two paths differ"
    return {"J(**inputs)": lambda: J(**cols),
            "J(**inputs, out=)": lambda: J(**cols, out=outs),
            "general J(**inputs)": lambda: general(J, **cols),
            "general J(**inputs, out=)": lambda: general(J, **cols, out=outs),
            FLOOR: cffi_kernel(J, cols, outs, False),
            "kernel, new arrays": cffi_kernel(J, cols, outs, True),
            "one point J(**floats)": lambda: J(**floats),
            "one point general": lambda: general(J, **floats)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, nargs="+", default=[3, 6])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--seconds", type=float, default=0.02)
    args = ap.parse_args(argv)
    for n in args.links:
        rows = rows_of(n, args.points)
        calls = {}
        for label, call in rows.items():  # calls per sample: about --seconds each
            t0, k = time.perf_counter(), 0
            while time.perf_counter() - t0 < args.seconds / 4:
                call()
                k += 1
            calls[label] = max(1, int(4 * k))
        cpu: dict = {label: [] for label in rows}
        wall: dict = {label: [] for label in rows}
        labels = list(rows)
        for r in range(args.rounds):
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                call, k = rows[label], calls[label]
                t0, c0 = time.perf_counter(), time.thread_time()
                for _ in range(k):
                    call()
                cpu[label].append((time.thread_time() - c0) / k * 1e6)
                wall[label].append((time.perf_counter() - t0) / k * 1e6)
        base = statistics.median(cpu[FLOOR])
        print(f"{n}-link pendulum, Jacobian {n + 1}x{2 * (n + 1)} at {args.points} states: µs per call, "
              f"{args.rounds} rounds, one thread, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"  {'':26s} {'CPU min':>9s} {'CPU median':>11s} {'wall min':>9s} {'wall median':>12s}  "
              f"CPU median / kernel's")
        for label in labels:
            med = statistics.median(cpu[label])
            ratio = f"{med / base:5.2f}x" if not label.startswith("one point") else ""
            print(f"  {label:26s} {min(cpu[label]):9.2f} {med:11.2f} {min(wall[label]):9.2f} "
                  f"{statistics.median(wall[label]):12.2f}  {ratio}")


if __name__ == "__main__":
    main()
