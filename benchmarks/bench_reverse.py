"""grad_reverse stage by stage (forward replay, adjoint sweep, finish, rest), in µs per
operation of the primal trace: this checkout against another one, alternated.

Where it sits: the "grad" rows of bench_frontend.py, alone, for A/B comparisons on a
shared machine. The primal trace of each (family, size) is made once (by this
checkout) and pickled; then each round runs grad_reverse on it in a subprocess per
checkout, base and new in turn (the order flips each round), and the table shows the
median over rounds of the process's CPU time (time.process_time) per stage. The
digest is the SHA-1 of the gradient trace (instructions, labels, outputs): a pure
speed change leaves it unchanged.

    git worktree add /tmp/base HEAD       # the code to compare against
    python benchmarks/bench_reverse.py --base /tmp/base --sizes 10000 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("replay", "sweep", "finish", "rest", "total")


def make_primal(family: str, n_ops: int, path: str) -> None:
    sys.path.insert(0, os.path.join(HERE, "benchmarks"))
    from bench_frontend import make_input

    from exprcompiler.frontend import to_trace
    with open(path, "wb") as fh:
        pickle.dump(to_trace(make_input(family, n_ops)), fh)


def child(path: str, reps: int) -> dict:
    """grad_reverse `reps` times on the pickled trace, exclusive CPU time per stage."""
    import gc
    import hashlib
    import time

    import exprcompiler.passes.reverse as reverse
    from exprcompiler.trace import ir
    with open(path, "rb") as fh:
        trace = pickle.load(fh)
    totals: dict = {}
    stack: list = []

    def wrap(owner, attr, name):
        fn = getattr(owner, attr)

        def timed(*args, **kwargs):
            frame = [time.process_time(), 0.0]
            stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.process_time() - frame[0]
                stack.pop()
                totals[name] = totals.get(name, 0.0) + elapsed - frame[1]
                if stack:
                    stack[-1][1] += elapsed
        setattr(owner, attr, timed)

    wrap(reverse, "replay", "replay")
    wrap(reverse, "adjoint_sweep", "sweep")
    wrap(ir.Builder, "finish", "finish")
    runs = []
    for _ in range(reps):
        gc.collect()
        totals.clear()
        t0 = time.process_time()
        grad = reverse.grad_reverse(trace)
        totals["total"] = time.process_time() - t0
        totals["rest"] = totals["total"] - totals["replay"] - totals["sweep"] - totals["finish"]
        runs.append({k: 1e6 * v / trace.size for k, v in totals.items()})
    digest = hashlib.sha1(repr((grad.instrs, grad.labels, grad.outputs)).encode()).hexdigest()[:10]
    return {"runs": runs, "digest": digest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="the other checkout (a git worktree)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--families", nargs="+", default=["text", "deep", "sympy"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    trees = {"base": os.path.abspath(args.base), "new": HERE}
    print(f"python {sys.version.split()[0]}, CPU µs per primal operation, median of {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'':18}" + "".join(f"{s:>9}" for s in STAGES) + "  digest")
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            for size in args.sizes:
                path = os.path.join(tmp, f"{family}_{size}.pkl")
                make_primal(family, size, path)
                runs: dict = {k: [] for k in trees}
                digests = {}
                for r in range(args.rounds):
                    for k in (("base", "new") if r % 2 == 0 else ("new", "base")):
                        env = dict(os.environ, PYTHONPATH=trees[k])
                        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--base", args.base,
                                              "--child", path, "2"], capture_output=True, text=True, env=env)
                        if out.returncode:
                            sys.exit(f"{k} {family} {size}: failed\n{out.stderr[-2000:]}")
                        result = json.loads(out.stdout.strip().splitlines()[-1])
                        runs[k] += result["runs"][1:]   # the first run of a process warms it up
                        digests[k] = result["digest"]
                for k in trees:
                    cells = "".join(f"{statistics.median(run[s] for run in runs[k]):9.2f}" for s in STAGES)
                    print(f"{f'{family} {size}':<13}{k:<5}" + cells + f"  {digests[k]}")


if __name__ == "__main__":
    main()
