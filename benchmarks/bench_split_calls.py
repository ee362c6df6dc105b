"""The pendulum Jacobian's split C kernel through the calls users make, variant against
variant in one process: J(**states) (new outputs), J(**states, out=) (arrays made once)
and J.at(x) (the one-point entry, 2,000 calls a sample).

    python benchmarks/bench_split_calls.py --links 10 20 \
        --variant old '{"c_driver.DRIVER": "@/tmp/old_driver.c"}' --variant new '{}'

A variant sets constants as bench_c_split_gap.py's --variant does (c_split and
c_backend by name, c_build and c_driver with their prefix, "@path" a file's text);
each is built once (EXPRCOMPILER_CACHE), its results checked bit for bit against the
first's, and the variants take turns round by round: thread CPU, median and min.
bench_c_split_gap.py times the kernel alone from C, with one output block; this is the
call layer's layout (the values and the Jacobian in two arrays).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_c_split_gap import MODULES, model_of, setting  # noqa: E402
import bench_c_variants  # noqa: E402
from exprcompiler import compile_jacobian  # noqa: E402
from exprcompiler.bench.mechanics import random_states  # noqa: E402

CALLS_AT = 2000


def built(model, settings: dict):
    """The Jacobian compiled with the variant's constants set, then restored."""
    restore = bench_c_variants.applied({k: x for k, x in settings.items() if "." not in k})
    saved = {k: getattr(MODULES[k.split(".")[0]], k.split(".")[1]) for k in settings if "." in k}
    for k in saved:
        setattr(MODULES[k.split(".")[0]], k.split(".")[1], setting(settings[k]))
    try:
        return compile_jacobian(list(model.exprs), wrt=model.names, backend="c", threads=1)
    finally:
        restore()
        for k, value in saved.items():
            setattr(MODULES[k.split(".")[0]], k.split(".")[1], value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--links", type=int, nargs="*", default=[10, 20])
    ap.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), default=[])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--points", type=int, default=10_000)
    opts = ap.parse_args()
    variants = {name: json.loads(text) for name, text in opts.variant} or {"current": {}}
    clock = time.thread_time
    for links in opts.links:
        model = model_of(links)
        Js = {v: built(model, settings) for v, settings in variants.items()}
        X = random_states(links, opts.points)
        states = {nm: np.ascontiguousarray(X[:, k]) for k, nm in enumerate(model.names)}
        first = next(iter(Js.values()))
        want, want_at = first(**states), first.at(X[0])
        outs = {}
        for v, J in Js.items():
            same = all(np.array_equal(a, b) for a, b in zip(J(**states), want))
            same &= all(np.array_equal(a, b) for a, b in zip(J.at(X[0]), want_at))
            if not same:
                print(f"{links} links, {v}: results differ from {next(iter(Js))}'s")
            outs[v] = tuple(np.empty_like(a) for a in want)
        times: dict = {(v, k): [] for v in Js for k in ("new", "out", "at")}
        names = list(Js)
        for r in range(opts.rounds):
            for v in names[r % len(names):] + names[:r % len(names)]:
                J = Js[v]
                t0 = clock()
                J(**states)
                times[v, "new"].append(clock() - t0)
                t0 = clock()
                J(**states, out=outs[v])
                times[v, "out"].append(clock() - t0)
                t0 = clock()
                for _ in range(CALLS_AT):
                    J.at(X[0])
                times[v, "at"].append((clock() - t0) / CALLS_AT)
        print(f"{links} links, {opts.points} states, 1 thread, {opts.rounds} rounds (thread CPU, median / min); "
              f"load {os.getloadavg()[0]:.1f}")
        for v in Js:
            row = [f"{1e3 * statistics.median(times[v, k]):7.2f} / {1e3 * min(times[v, k]):6.2f} ms"
                   for k in ("new", "out")]
            row.append(f"{1e6 * statistics.median(times[v, 'at']):5.2f} / {1e6 * min(times[v, 'at']):5.2f} us")
            print(f"  {v:12} J(**states) {row[0]}   out= {row[1]}   J.at {row[2]}")


if __name__ == "__main__":
    main()
