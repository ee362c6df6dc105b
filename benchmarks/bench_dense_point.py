"""One-point calls of the pendulum Jacobians (bench/mechanics.py), side by side: the
generated C through `J(**floats)`, `J(*floats)` and `J.at(x)`; the same two calls
through a Python method that hands them to c_entry's run, as PointCompiled.__call__
did before its class's __call__ became the C entry (`via Python __call__`); the
kernel's packed entry alone (cffi pointers made once); the general packed path that
dense_point.py's `at` bypasses (packed.PackedCall, which checks and copies); and
symengine's `Lambdify(backend="llvm", cse=True)` called on the state vector, as the
mechanics suite calls it. Every row is called from a lambda (one frame each, alike).

    python benchmarks/bench_dense_point.py [--links 3 6 10 20] [--rounds 15] [--calls 2000]
        [--callgrind]

One thread; CPU time of this thread (time.thread_time: a shared machine's other
processes inflate it less than the wall time). Each round times every row over
--calls calls, the rows in turn (rotated each round), so load falls on all of them
alike; the table gives the median and the minimum over the rounds, in µs per call,
and each row's median over symengine's.

--callgrind: instead, each row's instructions per call (Ir, deterministic: no load
noise), counted by valgrind's callgrind in a child process run under it, which loads
J (pickled: by its recipe, the kernel from the cache) and symengine's L (pickled), and
counts --calls calls of each row between client requests (a small library built with
valgrind/callgrind.h), less an empty loop's count.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import compile_jacobian  # noqa: E402
from exprcompiler.packed import PackedCall  # noqa: E402
from exprcompiler.bench import mechanics_peers as peers  # noqa: E402
from exprcompiler.bench.mechanics import exact, pendulum, random_states  # noqa: E402
from callgrind import run as callgrind_run, totals  # noqa: E402


def built(n: int) -> tuple:
    """(J, L, the states' names, one state x) of the n-link model."""
    model = pendulum(n)
    J = compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1)
    return J, peers.build_symengine(model), model.names, random_states(n, 1)[0]


def rows_of(n: int, J, L, names, x, check: bool = True) -> dict:
    """Each row's call, J's results checked against SymPy's exact Jacobian (`check`;
    under callgrind that would derive the model again)."""
    floats = {name: float(v) for name, v in zip(names, x)}
    ordered = [floats[name] for name in J.inputs]
    fn, from_buffer, array = J._run_packed.c_entry
    buf, out = np.array(ordered), np.empty(len(J.trace.outputs))
    pointers = from_buffer(array, buf), from_buffer(array, out)
    want = exact(n, x[None])[0] if check else None
    for got in (J(**floats), J(*ordered), J.at(x), J(**floats), J(*ordered), J.at(x)):
        flat = np.concatenate([np.ravel(got[0]), np.ravel(got[1])])
        assert want is None or np.allclose(flat, want, rtol=1e-9, atol=1e-9), f"n={n}: C differs from SymPy"
    general = PackedCall(J, J._run_packed)  # what J.at was before dense_point (its inputs not in wrt order)
    before = _python_call(J)
    return {"C J(**floats)": lambda: J(**floats), "  via Python __call__": lambda: before(**floats),
            "C J(*floats)": lambda: J(*ordered), "  via Python __call__ ": lambda: before(*ordered),
            "C J.at(x)": lambda: J.at(x), "C packed kernel": lambda: fn(*pointers),
            "  general at(x)": lambda: general(x),
            "symengine L(x)": lambda: L(x)}


def _python_call(J):
    """J's call as PointCompiled.__call__ made it before: a Python method handing its
    arguments on to c_entry's run (J._entry), the general path for the rest."""
    from exprcompiler import api
    run = J._entry
    assert run, "the extension did not load: no C entry to compare with"

    def call(*args, out=None, **kwargs):
        result = run(out, *args, **kwargs)
        return api.Compiled.__call__(J, *args, out=out, **kwargs) if result is NotImplemented else result
    return call


TOGGLE = r"""
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_TOGGLE_COLLECT; }
void cg_stop(const char *name) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT(name); }
"""


def counted(work: str, calls: int) -> None:
    """The child under callgrind: every row's loop between client requests, one dump
    each (named by its row's index), and an empty loop's (-1)."""
    import ctypes
    cg = ctypes.CDLL(os.path.join(work, "toggle.so"))
    with open(os.path.join(work, "built.pkl"), "rb") as f:
        n, made = pickle.load(f)
    rows = rows_of(n, *made, check=False)
    for call in rows.values():  # learnt (the second call on), warm
        call(), call(), call()
    r = range(calls)
    cg.cg_start()
    for _ in r:
        pass
    cg.cg_stop(b"row-1")
    for k, call in enumerate(rows.values()):
        cg.cg_start()
        for _ in r:
            call()
        cg.cg_stop(f"row{k}".encode())


def callgrind_table(n: int, calls: int) -> None:
    from exprcompiler.backends import c_build
    made = built(n)
    labels = list(rows_of(n, *made))
    with tempfile.TemporaryDirectory() as work:
        Path(work, "toggle.c").write_text(TOGGLE)
        compiler, _ = c_build.find_compiler()
        subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", "toggle.so", "toggle.c"], cwd=work, check=True)
        with open(os.path.join(work, "built.pkl"), "wb") as f:
            pickle.dump((n, made), f)
        callgrind_run([sys.executable, __file__, "--counted", work, "--calls", str(calls)],
                      Path(work, "cg.out"), env={**os.environ, "PYTHONHASHSEED": "0"})
        counts = {}
        for path in Path(work).glob("cg.out.*"):
            row = int(path.read_text().split("Client Request: row", 1)[1].split()[0])
            counts[row] = totals(path)["Ir"] / calls
    print(f"{n}-link pendulum, Jacobian {n + 1}x{2 * (n + 1)}: instructions per call (callgrind Ir, "
          f"less an empty loop's {counts[-1]:.0f}), {calls} calls")
    base = counts[labels.index("symengine L(x)")] - counts[-1]
    for k, label in enumerate(labels):
        ir = counts[k] - counts[-1]
        print(f"  {label:22s} {ir:9.0f}  {ir / base:5.2f}x symengine")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, nargs="+", default=[3, 6, 10, 20])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--counted", help=argparse.SUPPRESS)  # the child under callgrind: its work folder
    args = ap.parse_args(argv)
    if args.counted:
        return counted(args.counted, args.calls)
    for n in args.links:
        if args.callgrind:
            callgrind_table(n, args.calls)
            continue
        rows = rows_of(n, *built(n))
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
        print(f"{n}-link pendulum, Jacobian {n + 1}x{2 * (n + 1)}: µs per call (thread CPU), {args.rounds} "
              f"rounds of {args.calls} calls, one thread, load {os.getloadavg()[0]:.1f}")
        for label in labels:
            med = statistics.median(times[label])
            print(f"  {label:22s} median {med:7.2f}  min {min(times[label]):7.2f}  {med / base:5.2f}x symengine")


if __name__ == "__main__":
    main()
