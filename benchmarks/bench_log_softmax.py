"""What the log_softmax op costs against the naive forms it replaces (issue 18's budget).

Under stable=True the stability rules rewrite log(softmax(z)), z - logsumexp(z),
log(exp(z[k])/sum(exp(z))), ... into log_softmax (runtime.log_softmax for NumPy,
c_tensor_ops.emit_log_softmax for C; derivatives tensor_rules.*_log_softmax). Issue
18: a rewrite may cost at most 10% more than the naive form where the naive form was
accurate. Each row: one spelling's value and gradient (compile_grad; --mode jvp: value
and tangent, compile_jvp; --mode hvp: value, gradient and Hessian-vector product,
compile_hvp), naive (stable=False) and stable (stable=True), NumPy and C on one thread,
at n elements;
µs a call, medians of --rounds rounds that alternate the two forms in one process
(each round calls a form for about --ms ms), and their ratio stable / naive. With
--old PATH (a checkout, e.g. `git worktree add /tmp/old HEAD`) the stable form of the
code at PATH too, in child processes alternating with this tree's: old / new ratios.

    python benchmarks/bench_log_softmax.py --sizes 10 1000 100000 --rounds 7
    python benchmarks/bench_log_softmax.py --old /tmp/old --backends c
    python benchmarks/bench_log_softmax.py --old /tmp/old --mode hvp --spellings quotient xent
    python benchmarks/bench_log_softmax.py --old /tmp/old --spellings picks1 picks2 picks3 picks5 lsm3
    python benchmarks/bench_log_softmax.py --unshared --spellings picks2 picks3 picks5 --rounds 9

--unshared (several picks of z, softmax_forms.share_picks): a third form beside the two,
the picks each with its own P as before share_picks, alternating in this one process
(the ratio shared / unshared holds up at high load better than --old's processes do).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

# name -> (expression, inputs besides z)
SPELLINGS = {
    "quotient": ("log(exp(z[3])/sum(exp(z)))", ()),
    "lse": ("(z - logsumexp(z))[3]", ()),
    "xent": ("-sum(y*log(softmax(z)))", ("y",)),
}
# several picks of one vector (softmax_forms.share_picks): the sum of m quotient picks,
# and for comparison m picks of log_softmax(z) as written (the op, then index: a merge
# back to it was the other way to share)
_KEYS = (3, 1, 7, 0, 5)
for _m in (1, 2, 3, 5):
    SPELLINGS[f"picks{_m}"] = (" + ".join(f"log(exp(z[{k}])/sum(exp(z)))" for k in _KEYS[:_m]), ())
    SPELLINGS[f"lsm{_m}"] = (" + ".join(f"log_softmax(z)[{k}]" for k in _KEYS[:_m]), ())


def _inputs(spelling: str, n: int, mode: str = "grad") -> dict:
    """z ~ N(0, 2) (the naive forms are accurate there), a probability vector y, and for
    --mode jvp or hvp a direction z_dot."""
    import numpy as np
    rng = np.random.default_rng(n)
    args = {"z": rng.normal(scale=2.0, size=n)}
    if mode != "grad":
        args["z_dot"] = rng.normal(size=n)
    if "y" in SPELLINGS[spelling][1]:
        y = rng.uniform(size=n)
        args["y"] = y / y.sum()
    return args


def _compile(spelling: str, n: int, backend: str, stable: bool, mode: str = "grad", shared: bool = True):
    """`shared` False: several picks of z as the rules write each, one P apiece
    (softmax_forms.SHARED_FROM out of reach), as the code before share_picks."""
    import exprcompiler
    from exprcompiler.stability import softmax_forms
    expr, others = SPELLINGS[spelling]
    shapes = {"z": (n,), **{v: (n,) for v in others}}
    kw = {"threads": 1} if backend == "c" else {}
    make = getattr(exprcompiler, f"compile_{mode}")
    before = getattr(softmax_forms, "SHARED_FROM", None)
    if not shared and before is not None:
        softmax_forms.SHARED_FROM = 1 << 30
    try:
        return make(expr, wrt=["z"], shapes=shapes, backend=backend, stable=stable, **kw)
    finally:
        if before is not None:
            softmax_forms.SHARED_FROM = before


def _per_call(f, args: dict, ms: float) -> float:
    """µs a call: calls for about `ms` ms (at least 3), their mean."""
    calls, t0 = 0, time.perf_counter()
    while True:
        f(**args)
        calls += 1
        spent = time.perf_counter() - t0
        if calls >= 3 and spent * 1e3 >= ms:
            return spent / calls * 1e6


def measure(spellings, sizes, backends, rounds: int, ms: float, forms=("naive", "stable"), mode: str = "grad") -> list:
    """[(spelling, backend, n, {form: median µs})]."""
    rows = []
    for spelling in spellings:
        for backend in backends:
            for n in sizes:
                args = _inputs(spelling, n, mode)
                fs = {form: _compile(spelling, n, backend, form != "naive", mode, form != "unshared")
                      for form in forms}
                for f in fs.values():   # (warm: the first call builds the call plan)
                    f(**args)
                times: dict = {form: [] for form in forms}
                for r in range(rounds):
                    order = forms if r % 2 == 0 else forms[::-1]
                    for form in order:
                        gc.collect()
                        times[form].append(_per_call(fs[form], args, ms))
                rows.append((spelling, backend, n, {form: statistics.median(t) for form, t in times.items()}))
    return rows


def _child(path: str, args) -> list:
    env = dict(os.environ, PYTHONPATH=path)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--spellings", *args.spellings,
           "--sizes", *map(str, args.sizes), "--backends", *args.backends, "--rounds", str(args.rounds),
           "--ms", str(args.ms), "--mode", args.mode]
    out = subprocess.run(cmd, env=env, cwd=path, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 100000])
    parser.add_argument("--spellings", nargs="+", default=["quotient", "lse", "xent"], choices=list(SPELLINGS))
    parser.add_argument("--backends", nargs="+", default=["numpy", "c"], choices=["numpy", "c"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ms", type=float, default=20.0, help="ms a form is called for in a round")
    parser.add_argument("--mode", default="grad", choices=["grad", "jvp", "hvp"],
                        help="what is compiled: value and gradient, value and tangent, or an HVP too")
    parser.add_argument("--unshared", action="store_true",
                        help="several picks: each with its own P too (share_picks off), in this process")
    parser.add_argument("--old", help="a checkout of the old code: its stable form beside, alternating processes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.spellings, args.sizes, args.backends, args.rounds, args.ms, mode=args.mode)))
        return
    print(f"load {os.getloadavg()[0]:.1f}; mode {args.mode}")
    for s in args.spellings:
        print(f"  {s:9} {SPELLINGS[s][0]}")
    if args.old is None and args.unshared:
        rows = measure(args.spellings, args.sizes, args.backends, args.rounds, args.ms,
                       forms=("naive", "unshared", "stable"), mode=args.mode)
        print(f"{'spelling':9} {'backend':7} {'n':>7} {'naive µs':>9} {'unshared':>9} {'shared':>9} "
              f"{'unsh/naive':>10} {'sh/naive':>9} {'sh/unsh':>8}")
        for spelling, backend, n, t in rows:
            print(f"{spelling:9} {backend:7} {n:>7} {t['naive']:>9.1f} {t['unshared']:>9.1f} {t['stable']:>9.1f} "
                  f"{t['unshared'] / t['naive']:>10.2f} {t['stable'] / t['naive']:>9.2f} "
                  f"{t['stable'] / t['unshared']:>8.2f}")
        print(f"load {os.getloadavg()[0]:.1f}")
        return
    if args.old is None:
        rows = measure(args.spellings, args.sizes, args.backends, args.rounds, args.ms, mode=args.mode)
        print(f"{'spelling':9} {'backend':7} {'n':>7} {'naive µs':>10} {'stable µs':>10} {'stable/naive':>12}")
        for spelling, backend, n, t in rows:
            print(f"{spelling:9} {backend:7} {n:>7} {t['naive']:>10.1f} {t['stable']:>10.1f} "
                  f"{t['stable'] / t['naive']:>12.2f}")
        print(f"load {os.getloadavg()[0]:.1f}")
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs: dict = {"old": [], "new": []}
    for _ in range(3):   # alternating child processes, each with its own medians
        for key, path in (("old", args.old), ("new", here)):
            runs[key].append(_child(path, args))
    print(f"{'spelling':9} {'backend':7} {'n':>7} {'naive µs':>9} {'old µs':>9} {'new µs':>9} "
          f"{'old/naive':>9} {'new/naive':>9} {'new/old':>8}")
    for k, (spelling, backend, n, _) in enumerate(runs["new"][0]):
        med = {key: {form: statistics.median(r[k][3][form] for r in runs[key]) for form in ("naive", "stable")}
               for key in runs}   # (each tree's ratio to the naive form timed beside it)
        naive, old, new = med["new"]["naive"], med["old"]["stable"], med["new"]["stable"]
        print(f"{spelling:9} {backend:7} {n:>7} {naive:>9.1f} {old:>9.1f} {new:>9.1f} "
              f"{old / med['old']['naive']:>9.2f} {new / naive:>9.2f} {new / old:>8.2f}")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
