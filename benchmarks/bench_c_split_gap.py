"""The split kernel against one unsplit kernel of the same trace: kernel speed from C,
CPU time of interleaved rounds and callgrind's counts.

    python benchmarks/bench_c_split_gap.py --cases pend10 pend20 rand1000 \
        --variant split '{}' --variant unsplit '{"SPLIT_FROM": 1000000000000}' [--callgrind]

Cases: pendN (the N-link pendulum's Jacobian, bench/mechanics.py) and randN (the
gradient of the random DAG of about N operations, suite_scaling.FAMILIES). A variant
sets constants of c_split or c_backend for its build (bench_c_variants.applied), or of
c_build or c_driver with their prefix ("c_build.SIZED_FLAGS": {"true": []} builds an
unsplit kernel at the build's -O3 rather than -O1 by size; "c_driver.DRIVER":
"@/tmp/old_driver.c" another driver's text), or {"tree": DIR} is the kernel as another
checkout builds it (`git worktree add DIR HEAD`: the code before a change); its
library comes from the cache (EXPRCOMPILER_CACHE), built there on a miss. A small C
program generated per case (the kernel's exact signature) dlopens every variant's
library and calls each kernel on --points points (inputs from random states, outputs
in the layout the call layer uses), one thread, the variants taking turns over --rounds
rounds: thread-CPU ms of one call, min / median. --callgrind: each variant's one call
counted by valgrind's callgrind (instructions, data reads + writes, simulated L1 misses
and last-level misses), per point. `same`: the outputs' bytes those of the first variant.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from exprcompiler import compile_grad, compile_jacobian  # noqa: E402
from exprcompiler.backends import c_build, c_driver  # noqa: E402

import bench_c_variants  # noqa: E402
from callgrind import run as callgrind_run, totals  # noqa: E402

WORK = Path(tempfile.gettempdir()) / "exprc_split_gap"

DRIVER = r"""
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/callgrind.h>
typedef int (*kernel_t)(%(types)s);
static double cpu(void)
{ struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b)
{ double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
/* driver POINTS ROUNDS INPUTS_FILE COUNTED LIB... (COUNTED >= 0: that library's one call under callgrind) */
int main(int argc, char **argv) {
    const ptrdiff_t n = atol(argv[1]);
    const int rounds = atoi(argv[2]), counted = atoi(argv[4]), libs = argc - 5;
    double *in = malloc(sizeof(double) * %(n_in)d * n), *out = malloc(sizeof(double) * %(n_out)d * n + 8);
    FILE *f = fopen(argv[3], "rb");
    if (!f || fread(in, sizeof(double), (size_t)%(n_in)d * n, f) != (size_t)%(n_in)d * n) return 1;
    fclose(f);
    kernel_t *fn = malloc(sizeof(kernel_t) * libs);
    for (int v = 0; v < libs; ++v) {
        void *lib = dlopen(argv[5 + v], RTLD_NOW | RTLD_LOCAL);
        if (!lib) { fprintf(stderr, "%%s\n", dlerror()); return 1; }
        fn[v] = (kernel_t)dlsym(lib, "%(name)s");
        if (!fn[v]) return 1;
    }
#define CALL(v) fn[v](%(args)s)
    if (counted >= 0) {
        CALL(counted);
        CALLGRIND_TOGGLE_COLLECT;
        CALL(counted);
        CALLGRIND_TOGGLE_COLLECT;
        return 0;
    }
    double *t = malloc(sizeof(double) * libs * rounds);
    for (int v = 0; v < libs; ++v) {
        memset(out, 0xff, sizeof(double) * %(n_out)d * n);  /* NaNs: a variant that stores nothing differs */
        CALL(v);
        uint64_t h = 1469598103934665603ull;
        const unsigned char *b = (const unsigned char *)out;
        for (size_t k = 0; k < sizeof(double) * %(n_out)d * n; ++k) h = (h ^ b[k]) * 1099511628211ull;
        printf("hash %%d %%016llx\n", v, (unsigned long long)h);
    }
    for (int r = 0; r < rounds; ++r)
        for (int v0 = 0; v0 < libs; ++v0) {
            int v = (v0 + r) %% libs;
            double t0 = cpu();
            CALL(v);
            t[v * rounds + r] = cpu() - t0;
        }
    for (int v = 0; v < libs; ++v) {
        qsort(t + v * rounds, rounds, sizeof(double), cmp);
        printf("time %%d %%.4f %%.4f\n", v, 1e3 * t[v * rounds], 1e3 * t[v * rounds + rounds / 2]);
    }
    return 0;
}
"""


MODULES = {"c_build": c_build, "c_driver": c_driver}


def setting(value):
    """A constant's value from JSON: a list as a tuple, {"true": [...]} as c_build's
    SIZED_FLAGS, "@path" as the text of that file (an older c_driver.DRIVER)."""
    if isinstance(value, dict):
        return {False: (), True: ()} | {s == "true": tuple(f) for s, f in value.items()}
    if isinstance(value, str) and value.startswith("@"):
        return Path(value[1:]).read_text()
    return tuple(value) if isinstance(value, list) else value


def model_of(links: int):
    """The n-link pendulum (SymPy's minute at 20 links: pickled in WORK)."""
    from exprcompiler.bench.mechanics import pendulum
    path = WORK / f"pendulum{links}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    model = pendulum(links)
    path.write_bytes(pickle.dumps(model))
    return model


def case(name: str, points: int):
    """(build, the inputs (n_in, points))."""
    if name.startswith("pend"):
        from exprcompiler.bench.mechanics import random_states
        links = int(name[4:])
        model = model_of(links)
        return (lambda: compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1),
                np.ascontiguousarray(random_states(links, points).T))
    from exprcompiler.bench.suite_scaling import FAMILIES
    program = FAMILIES["random DAG"](int(name[4:]))
    rng = np.random.default_rng(3)
    g = compile_grad(program)
    return (lambda: compile_grad(program, backend="c", threads=1),
            rng.uniform(0.2, 0.9, (len(g.inputs), points)))


_DECL = re.compile(r"^(?:XC_DRIVER )?int (\w+)\((ptrdiff_t n, int threads, const double \*in0[^)]*)\)$", re.M)


def driver_for(source: str, work: Path) -> tuple[Path, int, int]:
    """(the compiled C program, inputs, outputs) for the kernel of `source`."""
    name, params = _DECL.search(source).groups()
    n_in, n_out = params.count("const double *in"), params.count("double *out")
    columns = f"{name}_batch" in source
    types = ", ".join(["ptrdiff_t", "int"] + ["const double *", "ptrdiff_t"] * n_in + ["double *", "ptrdiff_t"] * n_out)
    args = ["n", "1"] + [f"in + {k} * n, 1" for k in range(n_in)]
    # a Jacobian's outputs side by side per point (the call layer's block), else rows
    args += [f"out + {k}, {n_out}" if columns else f"out + {k} * n, 1" for k in range(n_out)]
    text = DRIVER % {"types": types, "n_in": n_in, "n_out": n_out, "name": name, "args": ", ".join(args)}
    c, exe = work / "driver.c", work / "driver"
    c.write_text(text)
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(c), "-ldl"], check=True)
    return exe, n_in, n_out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="*", default=["pend10"])
    ap.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), default=[])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--callgrind-points", type=int, default=1000)
    ap.add_argument("--lib-of", help=argparse.SUPPRESS)  # (a --variant's "tree": print that case's library)
    opts = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    if opts.lib_of:
        print(c_build.build(case(opts.lib_of, opts.points)[0]().source))
        return
    variants = {name: json.loads(text) for name, text in opts.variant}
    print(f"{'case':10} {'variant':14} {'parts':>5} {'ms min/med':>15} {'Ir/pt':>9} {'D/pt':>8} {'D1miss/pt':>9} "
          f"{'LLmiss/pt':>9} same")
    for name in opts.cases:
        build, X = case(name, opts.points)
        work = WORK / name
        work.mkdir(exist_ok=True)
        libs, parts = [], []
        for v, settings in variants.items():
            if "tree" in settings:  # another checkout's build (git worktree add DIR REV)
                libs.append(subprocess.run(
                    [sys.executable, __file__, "--lib-of", name, "--points", str(opts.points)],
                    env={**os.environ, "PYTHONPATH": settings["tree"]}, cwd=settings["tree"],
                    check=True, capture_output=True, text=True).stdout.split()[-1])
                parts.append(-1)
                continue
            restore = bench_c_variants.applied({k: x for k, x in settings.items() if "." not in k})
            saved = {k: getattr(MODULES[k.split(".")[0]], k.split(".")[1]) for k in settings if "." in k}
            for k in saved:
                setattr(MODULES[k.split(".")[0]], k.split(".")[1], setting(settings[k]))
            try:
                source = build().source
                libs.append(str(c_build.build(source)))
            finally:
                restore()
                for k, value in saved.items():
                    setattr(MODULES[k.split(".")[0]], k.split(".")[1], value)
            parts.append(source.count("XC_PART void ") // 2)
        exe, n_in, _ = driver_for(source, work)
        assert X.shape[0] == n_in, (X.shape, n_in)
        data = work / "in.bin"
        X.tofile(data)
        out = subprocess.run([str(exe), str(opts.points), str(opts.rounds), str(data), "-1", *libs],
                             check=True, capture_output=True, text=True).stdout.split("\n")
        hashes = [ln.split()[2] for ln in out if ln.startswith("hash")]
        times = [ln.split()[2:] for ln in out if ln.startswith("time")]
        counts = [None] * len(libs)
        if opts.callgrind:
            small = work / "in_small.bin"
            np.ascontiguousarray(X[:, :opts.callgrind_points]).tofile(small)
            for k in range(len(libs)):
                dump = work / f"callgrind.{k}.out"
                callgrind_run([str(exe), str(opts.callgrind_points), "1", str(small), str(k), *libs], dump,
                              cache_sim=True)
                got = totals(dump)
                p = opts.callgrind_points
                counts[k] = (got["Ir"] / p, (got["Dr"] + got["Dw"]) / p, (got["D1mr"] + got["D1mw"]) / p,
                             (got.get("DLmr", 0) + got.get("DLmw", 0)) / p)
        for k, v in enumerate(variants):
            cg = ("{:9.0f} {:8.0f} {:9.1f} {:9.2f}".format(*counts[k]) if counts[k] else " " * 38)
            print(f"{name:10} {v:14} {parts[k]:5d} {times[k][0]:>7}/{times[k][1]:>7} {cg} "
                  f"{'yes' if hashes[k] == hashes[0] else 'NO'}", flush=True)
    print(f"{opts.points} points, 1 thread, {opts.rounds} interleaved rounds (thread CPU); callgrind: one call on "
          f"{opts.callgrind_points} points; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
