"""Benchmark of the C backend against hand-written C, NumPy and JAX on the seed functions.

    python build_scripts/build_reference.py        # optional: the benchmark builds it too
    python benchmarks/bench_c.py [--points 1000000] [--repeat 11] [--compile-repeat 3]

For each seed function (build_scripts/build_reference.py: SEEDS), value alone and
value + gradient at --points points, on 1 and 2 threads where the candidate has
threads:

- generated C: compile_expr / compile_grad(expr, backend="c", threads=t), called as
  f(a, b), and f(a, b, out=...) with preallocated outputs when out= is accepted;
- hand-written C (benchmarks/reference/seeds_ref.c), vectorized build (the generated
  C's flags) on t threads, and scalar build (serial), each with fresh and with
  preallocated outputs;
- generated NumPy (compile_expr / compile_grad, blocked call) and hand-written NumPy,
  one thread;
- JAX jit(vmap(value_and_grad)), float64, when `import jax` works. JAX sizes its own
  thread pools and XLA_FLAGS do not keep it on one core, so it runs in two worker
  processes, one pinned to one CPU (as taskset -c would) and one on two CPUs; the
  main process asks a worker to time one call per round, so JAX is interleaved too.

Every round runs every candidate once (A B C ... repeated, the order rotated by one
each round) after a warm-up; medians and minima are printed, then the ratios the C backend is held to. Results are
checked against the hand-written scalar C (max relative difference, denominator
floored at 1). Last, compile times: a cold compile (fresh EXPRCOMPILER_CACHE, fresh
process) and a warm load (same cache, another fresh process), timing the
compile_grad call itself, not the interpreter's start-up or the package import.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "build_scripts"), str(HERE)]

import build_reference  # noqa: E402
from bench_spine import griewank_grad as griewank_np_grad  # noqa: E402
from bench_spine import griewank_value as griewank_np_value  # noqa: E402
from build_reference import SEEDS  # noqa: E402
from exprcompiler import compile_expr, compile_grad  # noqa: E402
from exprcompiler.backends import c_build  # noqa: E402

THREADS = (1, 2)
KINDS = ("value", "grad")


# ---- hand-written NumPy (whole arrays, one thread) ----

def _griewank_np_grad(a, b):
    y, g1, g2 = griewank_np_grad(a, b)
    return y, (g1, g2)


def _logsin_np_value(x1, x2):
    return np.log(x1) + x1 * x2 - np.sin(x2)


def _logsin_np_grad(x1, x2):
    return np.log(x1) + x1 * x2 - np.sin(x2), (1.0 / x1 + x2, x1 - np.cos(x2))


def _explog_np_value(x, z):
    p = x * z
    L = np.log(x)
    return np.exp(p) + p / L + np.sin(L) / p


def _explog_np_grad(x, z):
    """p = xz, L = log x: dy/dp = E + 1/L - sin(L)/p², dy/dL = cos(L)/p - p/L²."""
    p = x * z
    L = np.log(x)
    E = np.exp(p)
    iL = 1.0 / L
    ip = 1.0 / p
    u = p * iL
    w = np.sin(L) * ip
    gp = E + iL - w * ip
    gL = np.cos(L) * ip - u * iL
    return E + u + w, (gp * z + gL / x, gp * x)


HAND_NUMPY = {
    "griewank": (griewank_np_value, _griewank_np_grad),
    "logsin": (_logsin_np_value, _logsin_np_grad),
    "explog": (_explog_np_value, _explog_np_grad),
}


# ---- JAX, in worker processes ----

def _jax_functions(jnp):
    return {
        "griewank": lambda a, b: (jnp.sin(a / b) + a / b - jnp.exp(b)) * (a / b - jnp.exp(b)),
        "logsin": lambda a, b: jnp.log(a) + a * b - jnp.sin(b),
        "explog": lambda a, b: jnp.exp(a * b) + a * b / jnp.log(a) + jnp.sin(jnp.log(a)) / (a * b),
    }


def jax_worker(conn, cpus: int, points: int) -> None:
    """Serve JAX timings: pinned to `cpus` CPUs before JAX starts its threads."""
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cpus])
    try:
        import jax
        import jax.numpy as jnp
    except Exception as err:  # noqa: BLE001 - any import failure means "no JAX"
        conn.send(("error", f"{type(err).__name__}: {err}".splitlines()[0]))
        return
    jax.config.update("jax_enable_x64", True)
    fns = {}
    for name, f in _jax_functions(jnp).items():
        fns[(name, "value")] = jax.jit(jax.vmap(f))
        fns[(name, "grad")] = jax.jit(jax.vmap(jax.value_and_grad(f, argnums=(0, 1))))
    data = {name: [jax.device_put(a) for a in SEEDS[name].points(points)] for name in SEEDS}
    conn.send(("ready", f"jax {jax.__version__}, {jax.devices()[0].platform}, "
                        f"{len(os.sched_getaffinity(0))} CPU(s), "
                        f"{len(os.listdir('/proc/self/task'))} OS threads"))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        op, name, kind = msg
        fn, args = fns[(name, kind)], data[name]
        t0 = time.perf_counter()
        res = jax.block_until_ready(fn(*args))
        dt = time.perf_counter() - t0
        if op == "result":
            y, g = (res, ()) if kind == "value" else res
            conn.send([np.asarray(y), *[np.asarray(x) for x in g]])
        else:
            conn.send(dt)


class JaxWorker:
    def __init__(self, cpus: int, points: int):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=jax_worker, args=(child, cpus, points), daemon=True)
        self.proc.start()
        status, self.info = self.conn.recv()
        if status != "ready":
            self.close()
            raise RuntimeError(self.info)

    def timed(self, name: str, kind: str) -> float:
        self.conn.send(("time", name, kind))
        return self.conn.recv()

    def result(self, name: str, kind: str) -> list:
        self.conn.send(("result", name, kind))
        return self.conn.recv()

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()


# ---- candidates ----

class Candidate:
    """`run()` -> seconds of one call; `result()` -> flat list [y, g_a, g_b] for the check."""

    def __init__(self, label: str, threads: str, fn=None, args=(), kwargs=None, worker=None,
                 key=None):
        self.label, self.threads = label, threads
        self.fn, self.args, self.kwargs = fn, args, kwargs or {}
        self.worker, self.key = worker, key

    def run(self) -> float:
        if self.worker is not None:
            return self.worker.timed(*self.key)
        t0 = time.perf_counter()
        self.fn(*self.args, **self.kwargs)
        return time.perf_counter() - t0

    def result(self) -> list:
        if self.worker is not None:
            return self.worker.result(*self.key)
        res = self.fn(*self.args, **self.kwargs)
        if isinstance(res, tuple):
            y, g = res
            return [np.array(y), *[np.array(x) for x in g]]
        return [np.array(res)]


def _out_for(kind: str, n: int):
    return np.empty(n) if kind == "value" else (np.empty(n), (np.empty(n), np.empty(n)))


def _accepts_out(f, a, b, kind) -> bool:
    try:
        f(a[:4], b[:4], out=_out_for(kind, 4))
        return True
    except TypeError:
        return False


def candidates(name: str, kind: str, points: int, refs, jax_workers) -> list[Candidate]:
    seed = SEEDS[name]
    a, b = seed.points(points)
    compile_ = compile_expr if kind == "value" else compile_grad
    cands = []
    for t in THREADS:
        f = compile_(seed.expr, backend="c", threads=t)
        cands.append(Candidate("generated C", str(t), f, (a, b)))
        if _accepts_out(f, a, b, kind):
            cands.append(Candidate("generated C, out=", str(t), f, (a, b),
                                   {"out": _out_for(kind, points)}))
    k = getattr(refs["vectorized"][name], kind)
    for t in THREADS if refs["vectorized"].threaded else (1,):
        cands.append(Candidate("hand-written C, vectorized", str(t), k, (a, b), {"threads": t}))
        cands.append(Candidate("hand-written C, vectorized, prealloc", str(t), k, (a, b),
                               {"threads": t, "out": _out_for(kind, points)}))
    k = getattr(refs["scalar"][name], kind)
    cands.append(Candidate("hand-written C, scalar", "1", k, (a, b)))
    cands.append(Candidate("hand-written C, scalar, prealloc", "1", k, (a, b),
                           {"out": _out_for(kind, points)}))
    cands.append(Candidate("generated NumPy (compile_* call)", "1", compile_(seed.expr), (a, b)))
    hand_np = HAND_NUMPY[name][0 if kind == "value" else 1]
    cands.append(Candidate("hand-written NumPy", "1", hand_np, (a, b)))
    for cpus, w in jax_workers.items():
        cands.append(Candidate("JAX jit(vmap)", f"{cpus} CPU", worker=w, key=(name, kind)))
    return cands


def _cpu_seconds(worker_pids) -> tuple[float, float, float]:
    """(wall clock, CPU seconds of this process and the JAX workers, CPU seconds
    of the whole machine), to report how busy the shared machine was."""
    tick = os.sysconf("SC_CLK_TCK")
    t = os.times()
    ours = t.user + t.system
    for pid in worker_pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ours += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    with open("/proc/stat") as fh:
        cpu = [int(x) for x in fh.readline().split()[1:]]
    busy = (sum(cpu[:8]) - cpu[3] - cpu[4]) / tick  # all but idle and iowait
    return time.perf_counter(), ours, busy


def rel_diff(got: list, want: list) -> float:
    return max(float(np.max(np.abs(g - w) / np.maximum(1.0, np.abs(w)))) for g, w in zip(got, want))


# ---- compile times ----

_COMPILE_JOB = """
import json, sys, time
t0 = time.perf_counter()
import exprcompiler
t1 = time.perf_counter()
exprcompiler.compile_grad(sys.argv[1], backend="c")
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "call": t2 - t1}))
"""


def _compile_job(expr: str, cache: str) -> dict:
    env = dict(os.environ, EXPRCOMPILER_CACHE=cache)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", _COMPILE_JOB, expr], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def bench_compile(repeat: int) -> None:
    print(f"\nCompile times of compile_grad(expr, backend=\"c\") in a fresh Python process, "
          f"the call alone (median of {repeat}, each with a new empty cache)")
    print(f"{'function':10s} {'cold (cache miss) ms':>21s} {'warm (cache hit) ms':>20s}"
          f" {'package import ms':>18s}")
    for name, seed in SEEDS.items():
        cold, warm, imp = [], [], []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(prefix="exprc-bench-") as cache:
                c = _compile_job(seed.expr, cache)
                w = _compile_job(seed.expr, cache)
            cold.append(c["call"])
            warm.append(w["call"])
            imp.append(w["import"])
        print(f"{name:10s} {1e3 * statistics.median(cold):21.1f} "
              f"{1e3 * statistics.median(warm):20.1f} {1e3 * statistics.median(imp):18.1f}")
    print("goals: cold < 2000 ms, warm < 50 ms")


# ---- main ----

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=11, help="interleaved rounds (median of these)")
    ap.add_argument("--compile-repeat", type=int, default=3)
    ap.add_argument("--no-jax", action="store_true")
    args = ap.parse_args()
    if args.repeat < 5:
        ap.error("--repeat must be at least 5")

    try:
        refs = build_reference.load_reference()
    except build_reference.ReferenceError as err:
        sys.exit(f"bench_c: error: {err}")
    jax_workers: dict = {}
    jax_note = "JAX: not run (--no-jax)" if args.no_jax else ""
    if not args.no_jax:
        try:
            for cpus in THREADS:
                jax_workers[cpus] = JaxWorker(cpus, args.points)
            jax_note = "; ".join(f"JAX worker {c}: {w.info}" for c, w in jax_workers.items())
        except RuntimeError as err:
            for w in jax_workers.values():
                w.close()
            jax_workers = {}
            jax_note = f"JAX: not importable ({err})"

    compiler, version = c_build.find_compiler()
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs available; "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"compiler: {version}")
    print(f"hand-written C, vectorized: {' '.join(refs['vectorized'].flags)}")
    print(f"hand-written C, scalar:     {' '.join(refs['scalar'].flags)} (serial)")
    print("threads: generated C and vectorized hand-written C as in the 'thr' column "
          "(OpenMP num_threads); scalar C, NumPy and the compile_* NumPy call on 1 thread; "
          "JAX on the CPUs its worker is pinned to")
    print(jax_note)

    groups = {(name, kind): candidates(name, kind, args.points, refs, jax_workers)
              for name in SEEDS for kind in KINDS}
    diffs = {}
    for key, cands in groups.items():  # warm-up, and the agreement check
        ref = next(c for c in cands if c.label == "hand-written C, scalar").result()
        for c in cands:
            diffs[id(c)] = rel_diff(c.result(), ref)
    times = {id(c): [] for cands in groups.values() for c in cands}
    pids = [w.proc.pid for w in jax_workers.values()]
    before = _cpu_seconds(pids)
    for r in range(args.repeat):
        for cands in groups.values():
            # rotated each round: what runs just before a candidate (heap state after a
            # free, which data is still in cache) changes its time by up to 1.5 ms
            for c in cands[r % len(cands):] + cands[:r % len(cands)]:
                times[id(c)].append(c.run())
    after = _cpu_seconds(pids)
    for w in jax_workers.values():
        w.close()

    med = {k: statistics.median(v) for k, v in times.items()}
    wall, ours, busy = (a - b for a, b in zip(after, before))
    print(f"\n{args.points:,} points, median and min of {args.repeat} interleaved rounds; "
          f"'diff' = max relative difference from hand-written scalar C (denominator >= 1)")
    print(f"during the rounds ({wall:.1f} s) other processes kept {max(0.0, busy - ours) / wall:.2f} "
          f"of the {os.cpu_count()} CPUs busy (2-thread rows suffer most when this is high)")
    print(f"{'function':9s} {'kind':10s} {'candidate':37s} {'thr':>5s} {'median ms':>9s} "
          f"{'min ms':>7s} {'diff':>8s}")
    for (name, kind), cands in groups.items():
        for c in cands:
            print(f"{name:9s} {'value' if kind == 'value' else 'value+grad':10s} {c.label:37s} "
                  f"{c.threads:>5s} {1e3 * med[id(c)]:9.2f} {1e3 * min(times[id(c)]):7.2f} "
                  f"{diffs[id(c)]:8.1e}")
        print()

    def m(name, kind, label, threads):
        for c in groups[(name, kind)]:
            if c.label == label and c.threads == threads:
                return med[id(c)]
        return None

    print("Ratios of medians (goal in brackets)")
    print(f"{'function':9s} {'thr':>3s} {'gen C / hand vec C':>19s} {'gen C out= / hand vec prealloc':>31s}"
          f" {'JAX / gen C':>12s} {'gen C (v+g)/v':>14s} {'hand vec C (v+g)/v':>19s}"
          f" {'alloc share, hand vec C v+g':>28s}")
    print(f"{'':9s} {'':3s} {'[<= 1.1, v+g]':>19s} {'[v+g]':>31s} {'[>= 10, 1 thr]':>12s}"
          f" {'[<= 2.5]':>14s} {'':>19s} {'(1 - prealloc/fresh)':>28s}")
    for name in SEEDS:
        for t in THREADS:
            s = str(t)
            gen = m(name, "grad", "generated C", s)
            vec = m(name, "grad", "hand-written C, vectorized", s)
            gen_out = m(name, "grad", "generated C, out=", s)
            vec_pre = m(name, "grad", "hand-written C, vectorized, prealloc", s)
            jax = m(name, "grad", "JAX jit(vmap)", f"{t} CPU")
            out_ratio = f"{gen_out / vec_pre:.2f}" if gen_out and vec_pre else "-"
            jax_ratio = f"{jax / gen:.1f}" if jax else "-"
            print(f"{name:9s} {t:3d} {gen / vec:19.2f} {out_ratio:>31s} {jax_ratio:>12s} "
                  f"{gen / m(name, 'value', 'generated C', s):14.2f} "
                  f"{vec / m(name, 'value', 'hand-written C, vectorized', s):19.2f} "
                  f"{1 - vec_pre / vec:28.0%}")

    bench_compile(args.compile_repeat)


if __name__ == "__main__":
    main()
