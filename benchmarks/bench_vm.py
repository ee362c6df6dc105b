"""The tape VM (backend="vm") against generated C and generated NumPy: build time and speed.

    python benchmarks/bench_vm.py [--ops 10000] [--links 6 10 20] [--points 10000]
                                  [--rounds 21] [--builds 3] [--c-builds 1] [--blocks | --blocks-only]
                                  [--phases]

Cases: the gradient of a random program of --ops operations (randexpr.random_program, the
scaling suite's family, as benchmarks/bench_c_split.py) and the Jacobian of the n-link
pendulum's forcing with respect to every state (bench/mechanics.py), from the expression
in hand (text, or SymPy expressions) to a callable:

- build s: compile_* wall seconds, min / median. C: --c-builds cold builds, each in a
  fresh cache (gcc's time is most of it; parts compiled on the machine's cores); VM and
  NumPy: --builds builds, the VM's library already in the cache. The VM library's own
  one-time build (a cold cache, once per machine) is printed first. --c-builds 0: no C
  (at 10^5 operations a cold C build takes minutes).
- batch ms: one call on --points points, thread CPU time, 1 thread, min / median of
  --rounds rounds in which the three take turns.
- point us: one call with Python floats (g(*floats)), wall time, min / median of
  --rounds rounds of 20 calls, the three taking turns.
- max rel: the largest difference from the NumPy backend's results, relative to 1 + |value|;
  =C: whether the batch's results are the C kernel's bit for bit.

--blocks: the VM's batch time for several block sizes (xc_vm_run's `block`) on the same
cases, beside vm_backend.block_size's choice.
--phases: the parts of a VM build after the trace (c_backend.squares, vm_backend's
encoding, its listing, of which naming.assign_names, and loading the program into the
VM), thread CPU ms and ns per trace instruction, min / median of --builds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import compile_grad, compile_jacobian  # noqa: E402
from exprcompiler.backends import vm_backend, vm_source  # noqa: E402
from exprcompiler.randexpr import random_program  # noqa: E402
from bench_c_split import kernel_ms as batch_ms  # noqa: E402  (this folder's: interleaved rounds)

BACKENDS = ("vm", "c", "numpy")


def in_fresh_cache(build):
    """(wall s, result) of build() with EXPRCOMPILER_CACHE a new empty folder (removed
    after: a loaded library stays mapped)."""
    old = os.environ.get("EXPRCOMPILER_CACHE")
    folder = os.environ["EXPRCOMPILER_CACHE"] = tempfile.mkdtemp(prefix="exprc-vm-bench-")
    try:
        t0 = time.perf_counter()
        result = build()
        return time.perf_counter() - t0, result
    finally:
        if old is None:
            os.environ.pop("EXPRCOMPILER_CACHE", None)
        else:
            os.environ["EXPRCOMPILER_CACHE"] = old
        shutil.rmtree(folder, ignore_errors=True)


def timed(build):
    t0 = time.perf_counter()
    result = build()
    return time.perf_counter() - t0, result


def leaves(v) -> list:
    return [x for item in v for x in leaves(item)] if isinstance(v, (list, tuple)) else [np.asarray(v, float)]


def worst(a, b) -> float:
    return max(float(np.max(np.abs(x - y) / (1 + np.abs(y)), initial=0.0)) for x, y in zip(leaves(a), leaves(b)))


def cases(ops: list, links: list, points: int):
    """(label, build(backend) -> callable, batch arguments, one point's floats)"""
    rng = np.random.default_rng(3)
    for n in ops:
        program = random_program(int(n / 2.1), seed=1)  # as bench/suite_scaling.py
        k = len(compile_grad(program).inputs)
        args = [rng.uniform(0.2, 0.9, points) for _ in range(k)]
        yield (f"random gradient, {n} ops",
               lambda backend, p=program: compile_grad(p, backend=backend, threads=None if backend == "numpy" else 1),
               args, [float(a[0]) for a in args])
    for n in links:
        from exprcompiler.bench.mechanics import pendulum, random_states
        model = pendulum(n)
        X = random_states(n, points)
        args = [X[:, k] for k in range(X.shape[1])]
        yield (f"pendulum Jacobian, {n} links",
               lambda backend, m=model: compile_jacobian(list(m.exprs), wrt=m.names, backend=backend,
                                                         threads=None if backend == "numpy" else 1),
               args, [float(a[0]) for a in args])


def point_us(built: dict, point, rounds: int, calls: int = 20) -> dict:
    times: dict = {k: [] for k in built}
    for f in built.values():
        f(*point)
        f(*point)  # the second call with numbers learns the fast path
    for _ in range(rounds):
        for k, f in built.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                f(*point)
            times[k].append((time.perf_counter() - t0) / calls)
    return {k: (1e6 * min(v), 1e6 * statistics.median(v)) for k, v in times.items()}


def vm_library_build() -> float:
    """Wall seconds of the VM library's build in a fresh cache (what one machine pays once)."""
    saved = list(vm_backend._LIBRARY)
    vm_backend._LIBRARY.clear()
    try:
        return in_fresh_cache(vm_backend.library)[0]
    finally:
        vm_backend._LIBRARY[:] = saved


def blocks(opts) -> None:
    """The VM's batch time by block size, and vm_backend.block_size's choice."""
    sizes = (16, 32, 64, 128, 256, 512)
    print(f"\nVM batch ms by block size ({opts.points} points, 1 thread, min/median of {opts.rounds} rounds, "
          f"the sizes taking turns)")
    for label, build, args, _ in cases(opts.ops, opts.links, opts.points):
        program = vm_backend.encode(build("vm").trace)
        runner = vm_backend.Runner(program)   # loaded once, as a kernel is
        outs = [np.empty(opts.points) for _ in range(program.n_out)]  # no page faults in the times
        arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in args] + outs
        pointers = [x for a in arrays for x in (runner.ffi.from_buffer("double[]", a), 1)]
        times: dict = {s: [] for s in sizes}
        for _ in range(opts.rounds):
            for size in sizes:
                runner.block = size
                t0 = time.thread_time()
                rc = runner.kernel(opts.points, 1, *pointers)
                times[size].append(time.thread_time() - t0)
                assert rc == 0
        print(f"{label:28} regs {program.nregs:5d} (chosen {vm_backend.block_size(program.nregs):3d})  " + "  ".join(
            f"{s}: {1e3 * min(v):.2f}/{1e3 * statistics.median(v):.2f}" for s, v in times.items()), flush=True)


def phases(opts) -> None:
    """The VM build's parts, per trace instruction."""
    from exprcompiler.backends.c_backend import squares
    from exprcompiler.backends.naming import assign_names
    from exprcompiler.backends.reserved import C_RESERVED
    print(f"\nVM build by part (thread CPU ms, min/median of {opts.builds}; ns per trace instruction, min)")
    for label, build, _, _ in cases(opts.ops, opts.links, 1):
        trace = build("vm").trace
        parts: dict = {k: [] for k in ("squares", "encode", "listing", "names", "load")}
        for _ in range(opts.builds):
            t0 = time.thread_time()
            squared = squares(trace)
            t1 = time.thread_time()
            program = vm_backend.encode(squared)
            t2 = time.thread_time()
            vm_backend.listing(squared, program, label, squared=True)
            t3 = time.thread_time()
            assign_names(squared, [ins.op != "const" for ins in squared.instrs], set(C_RESERVED))
            t4 = time.thread_time()
            vm_backend.Runner(program)
            t5 = time.thread_time()
            for k, t in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                parts[k].append(t)
        m = len(trace.instrs)
        print(f"{label:28} {m:8d} instrs  " + "  ".join(
            f"{k} {1e3 * min(v):.1f}/{1e3 * statistics.median(v):.1f} ({1e9 * min(v) / m:.0f} ns)"
            for k, v in parts.items()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, nargs="*", default=[10_000])
    ap.add_argument("--links", type=int, nargs="*", default=[6, 10, 20])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--c-builds", type=int, default=1)
    ap.add_argument("--blocks", action="store_true")
    ap.add_argument("--blocks-only", action="store_true", help="only the block sizes' table")
    ap.add_argument("--phases", action="store_true", help="the VM build's parts per instruction")
    opts = ap.parse_args()
    if opts.blocks_only:
        return blocks(opts)
    print(f"VM library, one-time build in a fresh cache: {vm_library_build():.2f} s "
          f"({len(vm_source.OPCODES)} opcodes)")
    vm_backend.library()  # in the current cache: the VM builds below are warm
    backends = BACKENDS if opts.c_builds else tuple(b for b in BACKENDS if b != "c")
    print(f"{'case':28} {'backend':7} {'build s':>13} {'batch ms':>15} {'point us':>17} {'max rel':>8} {'=C':>3}")
    for label, build, args, point in cases(opts.ops, opts.links, opts.points):
        builds: dict = {b: [] for b in backends}
        built: dict = {}
        for _ in range(opts.c_builds):
            seconds, built["c"] = in_fresh_cache(lambda: build("c"))
            builds["c"].append(seconds)
        for _ in range(opts.builds):
            for b in ("vm", "numpy"):
                seconds, built[b] = timed(lambda b=b: build(b))
                builds[b].append(seconds)
        built = {b: built[b] for b in backends}
        batch = batch_ms(built, args, opts.rounds)
        point_t = point_us(built, point, opts.rounds)
        want, c = built["numpy"](*args), leaves(built["c"](*args)) if "c" in built else None
        for b in backends:
            s, got = builds[b], built[b](*args)
            same = c is not None and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(leaves(got), c))
            print(f"{label:28} {b:7} {min(s):6.2f}/{statistics.median(s):6.2f} "
                  f"{batch[b][0]:7.2f}/{batch[b][1]:7.2f} {point_t[b][0]:8.1f}/{point_t[b][1]:8.1f} "
                  f"{worst(got, want):8.1e} {'-' if c is None else 'yes' if same else 'no':>3}", flush=True)
    print(f"build: min/median wall s (C cold: {opts.c_builds}, VM warm and NumPy: {opts.builds}); batch: "
          f"{opts.points} points, 1 thread, thread CPU; point: g(*floats); {opts.rounds} interleaved rounds; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    if opts.blocks:
        blocks(opts)
    if opts.phases:
        phases(opts)


if __name__ == "__main__":
    main()
