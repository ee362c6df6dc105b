"""What each way to a Jacobian costs in the compiled kernel, and what mode="auto" picks:
the n-link pendulum's Jacobian (bench/mechanics.py: forcing vector, wrt all states)
built by the tangent sweeps, the adjoint sweeps and vertex elimination in each order,
compiled to C (threads=1), side by side with symengine's Lambdify(llvm).

    python benchmarks/bench_jacobian_modes.py [--links 3 6 10 20] [--rounds 15]
        [--points 10000] [--callgrind] [--scaling 300 1000 3000 10000]

1. For each number of links and each variant: the trace's operations (not inputs,
   constants or copies), the pass's time (median of 3), the C build's time (this
   process's cache: cold the first time), then per call, CPU time of this thread
   (time.thread_time) over --rounds interleaved rounds (every row in turn, the order
   rotated each round; median and minimum): the packed one-point entry alone (cffi
   pointers made once), `J(**floats)`, `J.at(x)`, and --points states (`J(**arrays)`,
   per point). symengine's L(x) and L(X) are timed in the same rounds, and the last
   column is each median over symengine's. Every result is checked against SymPy's
   exact Jacobian. The variant mode="auto" picks is marked *.
2. --callgrind: the same kernels' instructions, counted by valgrind's callgrind with
   its cache simulation (deterministic: no load noise), from a small C driver that
   dlopens the kernel's library and counts only its calls (client requests around
   the loop, after a warm-up call): the one-point entry (per call, 200 calls) and the
   batch entry (per point, 1,000 points). Ir instructions, Dr + Dw data reads and
   writes, D1 misses (reads and writes, callgrind's simulated 32 KB L1).
3. --scaling: the pass on random programs (randexpr, 6 inputs, outputs drawn from the
   second half of the statements, as bench_elimination.py): operations and pass time
   of the cheaper-by-rule sweep and of elimination in forward and Markowitz order, to
   see how elimination grows with the trace.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import api, passes, to_trace  # noqa: E402
from exprcompiler.bench import mechanics_peers as peers  # noqa: E402
from exprcompiler.bench.competitors import installed  # noqa: E402
from exprcompiler.bench.mechanics import exact, pendulum, random_states  # noqa: E402
from exprcompiler.dense_point import PointCompiled  # noqa: E402
from exprcompiler.jacobians import auto_jacobian, operations  # noqa: E402
from bench_elimination import check, interleaved, program, timed  # noqa: E402
from callgrind import run as callgrind_run, totals  # noqa: E402

VARIANTS = {"forward": ("forward", None), "reverse": ("reverse", None),
            "elim markowitz": ("elimination", "markowitz"), "elim forward": ("elimination", "forward"),
            "elim reverse": ("elimination", "reverse")}

DRIVER = r"""
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <valgrind/callgrind.h>
typedef int (*packed_t)(const double *, double *);
typedef int (*batch_t)(ptrdiff_t, int, const double *const *, const ptrdiff_t *, double *const *, const ptrdiff_t *);
/* driver LIB FUNC N_IN N_OUT point|batch COUNT POINTS_FILE: the inputs as N_IN columns of COUNT */
int main(int argc, char **argv) {
    if (argc != 8) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    char name[256];
    int n_in = atoi(argv[3]), n_out = atoi(argv[4]), count = atoi(argv[6]), batch = argv[5][0] == 'b';
    snprintf(name, sizeof name, batch ? "%s_batch" : "%s_packed", argv[2]);
    void *fn = dlsym(lib, name);
    if (!fn) { fprintf(stderr, "no %s\n", name); return 1; }
    double *in = malloc(sizeof(double) * n_in * count), *out = malloc(sizeof(double) * n_out * count);
    FILE *f = fopen(argv[7], "rb");
    if (!f || fread(in, sizeof(double), (size_t)n_in * count, f) != (size_t)n_in * count) return 1;
    fclose(f);
    if (!batch) {
        double *x = malloc(sizeof(double) * n_in);
        for (int k = 0; k < n_in; ++k) x[k] = in[(size_t)k * count];
        ((packed_t)fn)(x, out);   /* warm-up: the kept tape's malloc */
        CALLGRIND_TOGGLE_COLLECT;
        for (int r = 0; r < count; ++r) ((packed_t)fn)(x, out);
        CALLGRIND_TOGGLE_COLLECT;
    } else {
        const double **ip = malloc(sizeof(double *) * n_in);
        double **op = malloc(sizeof(double *) * n_out);
        ptrdiff_t *st = malloc(sizeof(ptrdiff_t) * (n_in + n_out));
        for (int k = 0; k < n_in; ++k) { ip[k] = in + (size_t)k * count; st[k] = 1; }
        /* the outputs as rows of points (out[i * n_out + k]), as J(**arrays) stores them */
        for (int k = 0; k < n_out; ++k) { op[k] = out + k; st[n_in + k] = n_out; }
        ((batch_t)fn)(8, 1, ip, st, op, st + n_in);
        CALLGRIND_TOGGLE_COLLECT;
        ((batch_t)fn)(count, 1, ip, st, op, st + n_in);
        CALLGRIND_TOGGLE_COLLECT;
    }
    printf("%.17g\n", out[0]);
    return 0;
}
"""


def mapped_libraries() -> set:
    """The shared objects this process has mapped (to find the kernel's library)."""
    with open("/proc/self/maps") as maps:
        return {line.split()[-1] for line in maps if line.rstrip().endswith(".so")}


def build(primal, wrt, label):
    """(J, pass seconds, build seconds, library path or None) of one variant (or "auto")."""
    m, n = len(primal.outputs), len(wrt)
    if label == "auto":
        (mode, trace), pass_s = timed(lambda: auto_jacobian(primal, wrt))
    else:
        mode, order = VARIANTS[label]
        kw = {"order": order} if order else {}
        trace, pass_s = timed(lambda: passes.jacobian(primal, wrt, mode, **kw))
    before = mapped_libraries()
    t0 = time.perf_counter()
    J = api._build("jacobian", primal, trace, backend="c", wrt=wrt, mode=mode, func_name="f_jacobian",
                   what=f"values and Jacobian ({label})", threads=1, layout=(((m,), (m, n)), tuple),
                   cls=PointCompiled)
    build_s = time.perf_counter() - t0
    new = [lib for lib in mapped_libraries() - before if re.fullmatch(r"[0-9a-f]{64}\.so", Path(lib).name)]
    return J, pass_s, build_s, (new[0] if len(new) == 1 else None)   # None: loaded before


def callgrind(driver: Path, lib: str, n_in: int, n_out: int, X: np.ndarray, work: Path) -> dict:
    """{point: (Ir, Dr+Dw, D1 misses) per call, batch: the same per point}."""
    result = {}
    for what, count in (("point", 200), ("batch", 1000)):
        data = work / f"in{count}.bin"
        np.ascontiguousarray(X[:count].T).tofile(data)
        out = work / "callgrind.out"
        callgrind_run([str(driver), lib, "f_jacobian", str(n_in), str(n_out), what, str(count), str(data)],
                      out, cache_sim=True)
        got = totals(out)
        per = count
        result[what] = (got["Ir"] / per, (got["Dr"] + got["Dw"]) / per, (got["D1mr"] + got["D1mw"]) / per)
    return result


def kernel_table(n: int, rounds: int, points: int, driver, work) -> None:
    model = pendulum(n)
    primal, wrt = api.with_wrt(to_trace(list(model.exprs)), model.names)
    x, X = random_states(n, 1)[0], random_states(n, max(points, 1000))
    floats = {name: float(v) for name, v in zip(model.names, x)}
    cols = {name: np.ascontiguousarray(X[:points, k]) for k, name in enumerate(model.names)}
    want, want_batch = exact(n, x[None])[0], exact(n, X[:3])
    auto_mode, auto_trace = auto_jacobian(primal, wrt)
    info, rows = {}, {}
    for label in VARIANTS:
        J, pass_s, build_s, lib = build(primal, wrt, label)
        check(J, n, x, floats, cols, want, want_batch, label)
        ops = operations(J.trace)
        star = "*" if str(J.trace) == str(auto_trace) else ""
        info[label] = [f"{label}{star}", ops, f"{pass_s * 1e3:.0f}", f"{build_s:.2f}"]
        if driver is not None and lib is not None:
            cg = callgrind(driver, lib, len(J.trace.inputs), len(J.trace.outputs), X, work)
            info[label] += [f"{cg['point'][0]:.0f}", f"{cg['point'][1]:.0f}", f"{cg['point'][2]:.0f}",
                            f"{cg['batch'][0]:.0f}", f"{cg['batch'][1]:.0f}", f"{cg['batch'][2]:.1f}"]
        fn, from_buffer, array = J._run_packed.c_entry
        buf, out = np.array([floats[name] for name in J.inputs]), np.empty(len(J.trace.outputs))
        pointers = from_buffer(array, buf), from_buffer(array, out)
        rows[label, "kernel"] = (lambda fn=fn, pointers=pointers: fn(*pointers), 1)
        rows[label, "J(**floats)"] = (lambda J=J: J(**floats), 1)
        rows[label, "J.at(x)"] = (lambda J=J: J.at(x), 1)
        rows[label, "batch"] = (lambda J=J: J(**cols), points)
    if installed("symengine"):
        L = peers.build_symengine(model)
        assert np.allclose(L(x), want, rtol=1e-9, atol=1e-9)
        XL = X[:points]
        rows["symengine", "L(x)"] = (lambda: L(x), 1)
        rows["symengine", "batch"] = (lambda: L(XL), points)
    times = {key: [cpu / rows[key][1] for cpu in both[1]] for key, both in interleaved(rows, rounds).items()}
    print(f"\nn = {n} links (m x n = {len(primal.outputs)} x {len(wrt)}, primal {operations(primal)} operations); "
          f"auto picks {auto_mode}; load {os.getloadavg()[0]:.1f}")
    head = ["variant", "ops", "pass ms", "build s"]
    if driver is not None:
        head += ["pt Ir", "pt Dr+Dw", "pt D1miss", "bat Ir/pt", "bat D+W/pt", "bat D1m/pt"]
    print("  " + "".join(f"{h:>15}" for h in head))
    for label in VARIANTS:
        print("  " + "".join(f"{c!s:>15}" for c in info[label]))
    print(f"  CPU µs per call (batch: per point, {points} points), median / min of {rounds} rounds; "
          f"median over symengine's")
    sym = {"kernel": ("symengine", "L(x)"), "J(**floats)": ("symengine", "L(x)"), "J.at(x)": ("symengine", "L(x)"),
           "batch": ("symengine", "batch")}
    for what in ("kernel", "J(**floats)", "J.at(x)", "batch"):
        cells = []
        for label in VARIANTS:
            t = times[label, what]
            peer = times.get(sym[what])
            ratio = f" {statistics.median(t) / statistics.median(peer):.2f}x" if peer else ""
            cells.append(f"{statistics.median(t):.3f}/{min(t):.3f}{ratio}")
        print(f"    {what:12}" + "  ".join(f"{label}: {c}" for label, c in zip(VARIANTS, cells)))
    for key in (("symengine", "L(x)"), ("symengine", "batch")):
        if key in times:
            print(f"    symengine {key[1]:6} {statistics.median(times[key]):.3f}/{min(times[key]):.3f}")


def scaling_table(statements: list, seeds: int = 2) -> None:
    print(f"\n3. The pass on random programs (6 inputs; sums over {seeds} seeds): operations (pass ms)")
    head = ["statements", "m", "primal", "rule's sweep", "elim forward", "elim markowitz", "auto"]
    print("  " + "".join(f"{h:>18}" for h in head))
    for s in statements:
        m = max(2, min(12, s // 100))
        total = {k: [0, 0.0] for k in ("primal", "sweep", "forward", "markowitz", "auto")}
        for seed in range(seeds):
            primal = to_trace(program(s, m, seed))
            total["primal"][0] += operations(primal)
            rule = "forward" if len(primal.inputs) <= len(primal.outputs) else "reverse"
            for key, call in (("sweep", lambda: passes.jacobian(primal, None, rule)),
                              ("forward", lambda: passes.jacobian(primal, None, "elimination", order="forward")),
                              ("markowitz", lambda: passes.jacobian(primal, None, "elimination", order="markowitz")),
                              ("auto", lambda: auto_jacobian(primal, primal.input_names)[1])):
                trace, sec = timed(call, repeat=1)
                total[key][0] += operations(trace)
                total[key][1] += sec * 1e3
        cells = [str(s), str(m), str(total["primal"][0])]
        cells += [f"{total[k][0]} ({total[k][1]:.0f})" for k in ("sweep", "forward", "markowitz", "auto")]
        print("  " + "".join(f"{c:>18}" for c in cells), flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, nargs="*", default=[3, 6, 10, 20])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--scaling", type=int, nargs="*", default=[])
    args = ap.parse_args(argv)
    print(f"one thread; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        work, driver = Path(tmp), None
        if args.callgrind:
            driver = work / "driver"
            (work / "driver.c").write_text(DRIVER)
            subprocess.run(["gcc", "-O1", "-o", str(driver), str(work / "driver.c"), "-ldl"], check=True)
        for n in args.links:
            kernel_table(n, args.rounds, args.points, driver, work)
    if args.scaling:
        scaling_table(args.scaling)


if __name__ == "__main__":
    main()
