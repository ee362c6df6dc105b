"""Jacobians by vertex elimination (passes/elimination.py) against the tangent and
adjoint sweeps, and against symengine, side by side.

    python benchmarks/bench_elimination.py [--links 3 6 10 20] [--call-links 10 20]
                                           [--rounds 15] [--programs 8] [--points 10000]

1. Size of each Jacobian trace (operations: not inputs, constants or copies) and the
   time the pass takes to build it (median of 3), for the n-link pendulum
   (bench/mechanics.py: forcing vector, Jacobian wrt all states): forward, reverse,
   elimination (the smallest of its orders, then each order alone), and the count of
   symengine's `cse` of the expressions and their `jacobian` (n-ary Add/Mul counted as
   n-1 binary operations, so comparable with a trace's count) when importable.
2. The same counts on random multi-output programs (exprcompiler/randexpr.py, the
   outputs drawn from the second half of the statements; every lecture seed of
   bench/seeds.py has one output, so none of them has an m × n Jacobian to accumulate),
   and on the two shapes of tests/test_second_order.py (tall m=50 n=2, wide m=2 n=50).
3. Generated C (threads=1) of the reverse sweeps (the lecture's rule on the pendulum:
   n = 2m > m) and the elimination trace (what mode="auto" compiles there: see
   benchmarks/bench_jacobian_modes.py), against symengine's
   `Lambdify(backend="llvm", cse=True)`: one point through `J.at(x)` and
   `J(**floats)` (symengine: L(x)), the kernel's packed entry alone (cffi pointers
   made once: the kernel without the call layer), and --points states
   (`J(**arrays)`; symengine: L(X)). Each round times every row over a fixed number
   of calls, the rows in turn, rotated each round; the table gives the median and
   minimum over the rounds of the wall time and of this thread's CPU time
   (time.thread_time: other processes on a shared machine inflate it less), per
   call, and each CPU median over symengine's. Every result is checked against
   SymPy's exact Jacobian.
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

from exprcompiler import compile_jacobian, passes, randexpr, to_trace  # noqa: E402
from exprcompiler.api import with_wrt  # noqa: E402
from exprcompiler.bench import mechanics_peers as peers  # noqa: E402
from exprcompiler.bench.competitors import installed  # noqa: E402
from exprcompiler.bench.mechanics import exact, pendulum, random_states  # noqa: E402
from exprcompiler.jacobians import choose_mode, operations  # noqa: E402
from exprcompiler.passes.elimination import ORDERS  # noqa: E402

MODES = ("forward", "reverse", "elimination")


def timed(fn, repeat: int = 3):
    """(result, median seconds of `repeat` calls)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def symengine_ops(model) -> str:
    """Operations of symengine's cse of the values and Jacobian, as a string."""
    if not installed("symengine"):
        return "-"
    import symengine
    exprs = [symengine.sympify(e) for e in model.exprs]
    jac = symengine.DenseMatrix(exprs).jacobian(symengine.DenseMatrix([symengine.sympify(s) for s in model.states]))
    reps, reduced = symengine.cse([*exprs, *jac])
    count, stack = 0, [e for _, e in reps] + list(reduced)
    while stack:
        e = stack.pop()
        if e.is_Add or e.is_Mul:
            count += len(e.args) - 1
        elif e.args:   # a power or a function
            count += 1
        stack.extend(e.args)
    return str(count)


def sizes_table(links: list) -> None:
    print("1. The pendulum's Jacobian traces: operations (pass time, ms)")
    orders = [o for o in ORDERS if o != "best"]
    head = ["n", "m x n", "primal", *MODES, *(f"elim {o}" for o in orders), "symengine cse"]
    print("  " + "  ".join(f"{h:>14}" for h in head))
    for n in links:
        model = pendulum(n)
        primal, wrt = with_wrt(to_trace(list(model.exprs)), model.names)
        cells = [str(n), f"{len(primal.outputs)} x {len(wrt)}", str(operations(primal))]
        for mode in MODES:
            trace, s = timed(lambda mode=mode: passes.jacobian(primal, wrt, mode))
            cells.append(f"{operations(trace)} ({s * 1e3:.0f})")
        for order in orders:
            trace, s = timed(lambda order=order: passes.jacobian(primal, wrt, "elimination", order=order))
            cells.append(f"{operations(trace)} ({s * 1e3:.0f})")
        cells.append(symengine_ops(model))
        print("  " + "  ".join(f"{c:>14}" for c in cells), flush=True)


def program(statements: int, outputs: int, seed: int) -> str:
    """randexpr's program over x1..x6, ending in `outputs` values of its second half."""
    lines = randexpr.random_program(statements, 6, seed).splitlines()[:-1]
    names = [line.split(" = ")[0] for line in lines]
    picks = np.random.default_rng(seed).choice(len(names) // 2, outputs, replace=False) + len(names) // 2
    return "\n".join(lines + [", ".join(names[k] for k in sorted(picks))])


def programs_table(count: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_second_order import TALL, WIDE
    print("\n2. Random programs (sums over", count, "seeds) and the tall/wide shapes: operations, pass ms")
    head = ["case", "primal", *MODES, "rule's sweep", "elim/rule", "elim smaller"]
    print("  " + "  ".join(f"{h:>14}" for h in head))
    cases = [(f"{s} stmts, m={m}", [program(s, m, seed) for seed in range(count)])
             for s, m in ((20, 2), (100, 6), (300, 8), (1000, 12), (3000, 4))]
    cases += [("tall m=50 n=2", [TALL]), ("wide m=2 n=50", [WIDE])]
    for name, texts in cases:
        total = dict.fromkeys(("primal", *MODES, "auto"), 0)
        ms = dict.fromkeys(MODES, 0.0)
        wins = 0
        for text in texts:
            primal = to_trace(text)
            total["primal"] += operations(primal)
            got = {}
            for mode in MODES:
                trace, s = timed(lambda mode=mode: passes.jacobian(primal, None, mode), repeat=1)
                got[mode] = operations(trace)
                total[mode] += got[mode]
                ms[mode] += s * 1e3
            auto = got[choose_mode(len(primal.inputs), len(primal.outputs))]
            total["auto"] += auto
            wins += got["elimination"] < auto
        cells = [name, str(total["primal"]), *(f"{total[m]} ({ms[m]:.0f})" for m in MODES), str(total["auto"]),
                 f"{total['elimination'] / total['auto']:.3f}", f"{wins}/{len(texts)}"]
        print("  " + "  ".join(f"{c:>14}" for c in cells), flush=True)


def check(J, n, x, floats, cols, want, want_batch, label):
    """J's values at one point (J.at, J(**floats)) and on three states against SymPy's."""
    for got in (J.at(x), J(**floats)):
        flat = np.concatenate([np.ravel(got[0]), np.ravel(got[1])])
        assert np.allclose(flat, want, rtol=1e-9, atol=1e-9), f"n={n} {label}: C differs from SymPy"
    values, jac = J(**cols)
    flat = np.hstack([values[:3], jac[:3].reshape(3, -1)])
    assert np.allclose(flat, want_batch, rtol=1e-9, atol=1e-9), f"n={n} {label}: batch differs from SymPy"


def interleaved(rows: dict, rounds: int) -> dict:
    """{label: (wall µs, thread-CPU µs) per call, a list each}: every row `(fn, size)`
    timed in each of `rounds` rounds, the rows' order rotated round by round, each row
    one warm-up call and then max(3, 2000 // size) calls."""
    times = {label: ([], []) for label in rows}
    labels = list(rows)
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            fn, size = rows[label]
            calls = max(3, 2000 // size)
            fn()
            w0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(calls):
                fn()
            times[label][0].append((time.perf_counter() - w0) / calls * 1e6)
            times[label][1].append((time.thread_time() - c0) / calls * 1e6)
    return times


def calls_table(links: list, rounds: int, points: int) -> None:
    print(f"\n3. Generated C (threads=1) against symengine LLVM: µs per call, {rounds} interleaved rounds")
    for n in links:
        model = pendulum(n)
        x = random_states(n, 1)[0]
        X = random_states(n, points)
        floats = {name: float(v) for name, v in zip(model.names, x)}
        cols = {name: np.ascontiguousarray(X[:, k]) for k, name in enumerate(model.names)}
        want, want_batch = exact(n, x[None])[0], exact(n, X[:3])
        rows, builds = {}, {}
        for mode in ("reverse", "elimination"):
            t0 = time.perf_counter()
            J = compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1, mode=mode)
            builds[mode] = time.perf_counter() - t0
            check(J, n, x, floats, cols, want, want_batch, mode)
            try:   # the packed entry alone, cffi pointers made once (as bench_dense_point.py)
                fn, from_buffer, array = J._run_packed.c_entry
                buf, out = np.array([floats[name] for name in J.inputs]), np.empty(len(J.trace.outputs))
                pointers = from_buffer(array, buf), from_buffer(array, out)
                rows[f"{mode[:4]} kernel"] = (lambda fn=fn, pointers=pointers: fn(*pointers), 1)
            except (AttributeError, TypeError, ValueError):
                pass   # no packed entry here: the rows below still compare the calls
            rows[f"{mode[:4]} J.at(x)"] = (lambda J=J: J.at(x), 1)
            rows[f"{mode[:4]} J(**floats)"] = (lambda J=J: J(**floats), 1)
            rows[f"{mode[:4]} J(**{points})"] = (lambda J=J: J(**cols), points)
        ops = {m: operations(passes.jacobian(with_wrt(to_trace(list(model.exprs)), model.names)[0], model.names, m))
               for m in ("reverse", "elimination")}
        if installed("symengine"):
            L = peers.build_symengine(model)
            assert np.allclose(L(x), want, rtol=1e-9, atol=1e-9)
            rows["symengine L(x)"] = (lambda: L(x), 1)
            rows[f"symengine L(X{points})"] = (lambda: L(X), points)
        times = interleaved(rows, rounds)
        labels = list(rows)
        load = os.getloadavg()[0]
        print(f"  n = {n} links: trace ops reverse {ops['reverse']}, elimination {ops['elimination']}; "
              f"C build s (this cache): reverse {builds['reverse']:.1f}, elimination {builds['elimination']:.1f}; "
              f"load {load:.1f}")
        print(f"    {'row':26} {'wall med':>10} {'wall min':>10} {'cpu med':>10} {'cpu min':>10} {'cpu/symeng':>10}")
        for label in labels:
            wall, cpu = times[label]
            peer = f"symengine L(X{points})" if str(points) in label else "symengine L(x)"
            ratio = (f"{statistics.median(cpu) / statistics.median(times[peer][1]):.2f}"
                     if peer in times else "-")
            print(f"    {label:26} {statistics.median(wall):10.2f} {min(wall):10.2f} "
                  f"{statistics.median(cpu):10.2f} {min(cpu):10.2f} {ratio:>10}", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, nargs="+", default=[3, 6, 10, 20])
    ap.add_argument("--call-links", type=int, nargs="*", default=[10, 20])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--programs", type=int, default=8)
    ap.add_argument("--points", type=int, default=10_000)
    args = ap.parse_args(argv)
    print(f"one thread; load average {os.getloadavg()[0]:.1f}")
    sizes_table(args.links)
    if args.programs:
        programs_table(args.programs)
    if args.call_links:
        calls_table(args.call_links, args.rounds, args.points)


if __name__ == "__main__":
    main()
