"""The C backend's benchmark: `exprc bench seeds`, then compile times in fresh processes.

    python benchmarks/bench_c.py [--threads 1|2|all] [--repeat 11] [--compile-repeat 3]

The timing of generated C against hand-written C (exprcompiler/bench/seeds_ref.c,
scalar and vectorized builds), NumPy, SymPy and JAX is `exprc bench seeds`
(exprcompiler/bench/). What is left here is the compile time of
compile_grad(expr, backend="c") on each seed function, each measured in a fresh
process and counting only the call: cold (a new, empty EXPRCOMPILER_CACHE) and warm
(the same cache again).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler.bench.__main__ import main as bench_main  # noqa: E402
from exprcompiler.bench.seeds import SEEDS  # noqa: E402

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", help="as exprc bench --threads (default: 1, then all)")
    ap.add_argument("--repeat", type=int, default=11, help="interleaved rounds")
    ap.add_argument("--compile-repeat", type=int, default=3)
    args = ap.parse_args()
    status = bench_main(["seeds", "--repeat", str(args.repeat)]
                        + (["--threads", args.threads] if args.threads else []))
    if status == 0:
        bench_compile(args.compile_repeat)
    return status


if __name__ == "__main__":
    sys.exit(main())
