"""where()-heavy gradients: reverse_masks.where_exits and the whole gradient pass.

Where it sits: measures passes/reverse_masks.py (the region analysis that masks the
adjoint edges leaving a where()'s branch) inside passes/reverse.grad_reverse (the
bulk sweep, reverse_bulk.py, from reverse._BULK_FROM instructions; the
per-instruction sweep below it or where the bulk sweep declines).

Formulas (`formula`): sums of where-heavy terms over n/3 variables x_k, five kinds
in turn: where(x_i > 0, sqrt(x_i)·x_j + c, x_j − c); a nested where with a log
branch; a value sqrt(x_g·x_g + c) shared by the branches of `--share` wheres of
different conditions (a union of regions: more than reverse_masks._NESTED of them
is a flag "any holds"); an arcsin branch; a log branch beside a nested sqrt one.
The same formula without masks: each where(c, a, b) written (a) + (b), the same
branches with no where (no region, no mask): what a gradient of that size costs.

Each (formula, size, code) is timed in a fresh process (CPU time, time.process_time;
`--rounds` processes each, old and new taking turns), median reported:
`exits` where_exits alone on the formula's trace (warm: the median of 3 calls in
the process), `grad` grad_reverse (first call in the process: the gradient a user
asks for), and for the unmasked formula `grad` only. Load inflates and compresses
ratios: the table prints `uptime`'s load before and after.

    python benchmarks/bench_where.py                          # this tree
    python benchmarks/bench_where.py --old /tmp/WE_old        # against a worktree of HEAD
    python benchmarks/bench_where.py --sizes 100 1000 10000 --rounds 5 --share 5
    python benchmarks/bench_where.py --sweep per-instruction   # both formulas on one sweep

The two formulas may take different sweeps under grad_reverse's choice (the bulk
sweep from 1,000 instructions for a trace of few op kinds, 3,000 otherwise; it
declines a union of more than reverse_masks._NESTED regions): --sweep holds both
to one. The bulk sweep is slow on these formulas (a kind per distinct constant
argument: each term has its own constants), masked or not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def formula(n_terms: int, seed: int = 0, masked: bool = True, share: int = 5) -> str:
    """A sum of n_terms where-heavy terms (see the module's docstring); masked=False:
    the same with each where(c, a, b) written (a) + (b)."""
    rnd = random.Random(seed)
    nv = max(3, n_terms // 3)
    xs = [f"x{k}" for k in range(nv)]
    shared: dict = {}
    terms = []
    for k in range(n_terms):
        i = rnd.randrange(nv)
        j = (i + 1 + rnd.randrange(nv - 1)) % nv
        xi, xj = xs[i], xs[j]
        c = round(rnd.uniform(0.5, 2), 2)
        kind = k % 5
        if kind == 0:
            t = f"where({xi} > 0, sqrt({xi}) * {xj} + {c}, {xj} - {c})"
        elif kind == 1:
            t = f"where({xi} > {xj}, log({xi} - {xj}) * {c}, where({xj} > 0, sqrt({xj}), {xi} * {c}))"
        elif kind == 2:
            # (one value in the branches of `share` wheres of different conditions)
            g = k // (5 * share)
            s = shared.setdefault(g, f"sqrt({xs[g % nv]} * {xs[g % nv]} + {c})")
            t = f"where({xi} > {c}, {s} * {xj}, {xj})"
        elif kind == 3:
            t = f"where({xi} * {xi} < 1, arcsin({xi}) + {xj}, {c} * {xj})"
        else:
            t = f"where({xi} < 0, log(-{xi}) * {xj}, where({xj} > {xi}, sqrt({xj} - {xi}), {c}))"
        terms.append(f"({t}) * {1 + k / 64}")
    out = " + ".join(terms)
    return out if masked else unmasked(out)


def unmasked(expr: str) -> str:
    """where(c, a, b) -> ((a) + (b)), innermost first."""
    while "where(" in expr:
        k = expr.rindex("where(")
        depth, parts, start, end = 0, [], k + 6, None
        for p in range(k + 6, len(expr)):
            ch = expr[p]
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    parts.append(expr[start:p])
                    end = p
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(expr[start:p])
                start = p + 1
        expr = f"{expr[:k]}(({parts[1]}) + ({parts[2]})){expr[end + 1:]}"
    return expr


def _one(size: int, share: int, masked: bool, sweep: str) -> dict:
    """In this process: the figures of one formula (see the module's docstring)."""
    import math
    import time

    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import reverse
    if sweep != "auto":
        reverse._BULK_FROM = math.inf if sweep == "per-instruction" else 0
    from exprcompiler.passes.replay import scalar_output, wrt_vars
    from exprcompiler.passes.reverse import active_set, grad_reverse
    from exprcompiler.passes.reverse_masks import where_exits
    trace = to_trace(formula(size, masked=masked, share=share))
    out = {"instrs": len(trace.instrs)}
    t = time.process_time()
    grad = grad_reverse(trace)
    out["grad"] = time.process_time() - t
    out["grad_instrs"] = len(grad.instrs)
    if masked:
        o = scalar_output(trace)[1]
        active = active_set(trace, [v for _, v in wrt_vars(trace, None)])
        times = []
        for _ in range(3):
            t = time.process_time()
            where_exits(trace.instrs, active, (o,))
            times.append(time.process_time() - t)
        out["exits"] = statistics.median(times)
    return out


def _run(root: str, size: int, share: int, masked: bool, sweep: str) -> dict:
    env = dict(os.environ, PYTHONPATH=root)
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", str(size), str(share),
                           str(int(masked)), sweep], env=env, capture_output=True, text=True, cwd=root, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000, 10000],
                        help="number of where terms (~9.5 instructions each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--share", type=int, default=5, help="branches sharing one value")
    parser.add_argument("--old", help="a worktree of the old code (git worktree add PATH HEAD)")
    parser.add_argument("--sweep", choices=["auto", "per-instruction", "bulk"], default="auto",
                        help="grad_reverse as it chooses, or held to one sweep (reverse._BULK_FROM)")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        size, share, masked = map(int, args.one[:3])
        print(json.dumps(_one(size, share, bool(masked), args.one[3])))
        return
    codes = [("new", _HERE)] + ([("old", os.path.abspath(args.old))] if args.old else [])
    print("load before:", os.getloadavg())
    print(f"{'terms':>6} {'instrs':>7} {'code':>4} {'exits ms':>9} {'grad ms':>9} {'unmasked ms':>12} "
          f"{'masked/unmasked':>16} {'grad instrs':>12}")
    for size in args.sizes:
        figures: dict = {name: {"exits": [], "grad": [], "plain": []} for name, _ in codes}
        info: dict = {}
        for _ in range(args.rounds):
            for name, root in codes:   # (old and new take turns)
                got = _run(root, size, args.share, True, args.sweep)
                plain = _run(root, size, args.share, False, args.sweep)
                figures[name]["exits"].append(got["exits"])
                figures[name]["grad"].append(got["grad"])
                figures[name]["plain"].append(plain["grad"])
                info[name] = got
        med = {name: {k: statistics.median(v) * 1e3 for k, v in f.items()} for name, f in figures.items()}
        for name, _ in codes:
            m = med[name]
            print(f"{size:>6} {info[name]['instrs']:>7} {name:>4} {m['exits']:>9.1f} {m['grad']:>9.1f} "
                  f"{m['plain']:>12.1f} {m['grad'] / m['plain']:>16.2f} {info[name]['grad_instrs']:>12}")
        if args.old:
            print(f"{'':>6} {'':>7} {'new/old':>8} exits {med['new']['exits'] / med['old']['exits']:.2f}, "
                  f"grad {med['new']['grad'] / med['old']['grad']:.2f}")
    print("load after:", os.getloadavg())


if __name__ == "__main__":
    main()
