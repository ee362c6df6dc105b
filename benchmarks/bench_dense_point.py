"""One-point calls of the pendulum Jacobians (bench/mechanics.py), side by side: the
generated C through `J(**floats)`, `J(*floats)` and `J.at(x)`; the kernel's packed entry
alone (cffi pointers made once); the general packed path that dense_point.py's `at`
bypasses (packed.PackedCall, which checks and copies; a call by name now goes through
the C extension's entry as a call in order does, so it has no general row of its own);
and symengine's `Lambdify(backend="llvm", cse=True)` called on the state vector, as
the mechanics suite calls it.

    python benchmarks/bench_dense_point.py [--links 3 6 10] [--rounds 15] [--calls 2000]

One thread; CPU time of this thread (time.thread_time: a shared machine's other
processes inflate it less than the wall time). Each round times every row over
--calls calls, the rows in turn (rotated each round), so load falls on all of them
alike; the table gives the median and the minimum over the rounds, in µs per call,
and each row's median over symengine's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import compile_jacobian  # noqa: E402
from exprcompiler.packed import PackedCall  # noqa: E402
from exprcompiler.bench import mechanics_peers as peers  # noqa: E402
from exprcompiler.bench.mechanics import exact, pendulum, random_states  # noqa: E402


def rows_of(n: int) -> dict:
    model = pendulum(n)
    J = compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1)
    L = peers.build_symengine(model)
    x = random_states(n, 1)[0]
    floats = {name: float(v) for name, v in zip(model.names, x)}
    ordered = [floats[name] for name in J.inputs]
    fn, from_buffer, array = J._run_packed.c_entry
    buf, out = np.array(ordered), np.empty(len(J.trace.outputs))
    pointers = from_buffer(array, buf), from_buffer(array, out)
    want = exact(n, x[None])[0]
    for got in (J(**floats), J(*ordered), J.at(x), J(**floats), J(*ordered), J.at(x)):
        flat = np.concatenate([np.ravel(got[0]), np.ravel(got[1])])
        assert np.allclose(flat, want, rtol=1e-9, atol=1e-9), f"n={n}: generated C differs from SymPy"
    general = PackedCall(J, J._run_packed)  # what J.at was before dense_point (its inputs not in wrt order)
    return {"C J(**floats)": lambda: J(**floats), "C J(*floats)": lambda: J(*ordered),
            "C J.at(x)": lambda: J.at(x), "C packed kernel": lambda: fn(*pointers),
            "  general at(x)": lambda: general(x),
            "symengine L(x)": lambda: L(x)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, nargs="+", default=[3, 6, 10])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args(argv)
    for n in args.links:
        rows = rows_of(n)
        times: dict = {label: [] for label in rows}
        labels = list(rows)
        for r in range(args.rounds):
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                call = rows[label]
                t0 = time.thread_time()
                for _ in range(args.calls):
                    call()
                times[label].append((time.thread_time() - t0) / args.calls * 1e6)
        base = statistics.median(times["symengine L(x)"])
        print(f"{n}-link pendulum, Jacobian {n + 1}x{2 * (n + 1)}: µs per call, {args.rounds} rounds "
              f"of {args.calls} calls, one thread")
        for label in labels:
            med = statistics.median(times[label])
            print(f"  {label:16s} median {med:7.2f}  min {min(times[label]):7.2f}  {med / base:5.2f}x symengine")


if __name__ == "__main__":
    main()
