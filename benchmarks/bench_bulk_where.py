"""The bulk reverse sweep against the per-instruction sweep on where-union and power formulas.

grad_reverse sweeps a trace of passes/reverse._BULK_FROM instructions or more in bulk
(passes/reverse_bulk*.py) where that sweep covers it, else per instruction
(passes/reverse.py, ~2x slower an instruction at 10^4-10^5). Two common shapes of
large formulas were declined or slow there (issue 14):

  unions    chained piecewise models: blocks of 20 statements t_k = where(cond on
            earlier t's, f(...), g(...)), each block on its own 3 variables, summed;
            from about the 10th statement a value is read in the branches of more
            than reverse_masks._NESTED wheres, a union masked by one flag "any holds"
            (the bulk sweep declined the whole trace: reverse_bulk_masks.py)
  powers    fitted models c·a**e + d·b**f with every exponent its own non-integer
            (x**1.37, y**2.71): pow's partial holds e − 1, so a kind and a template
            recorded (~60 µs) per exponent (reverse_bulk_generic.py)
  maskedpow piecewise power laws where(x_i > c, a·x_i**e, b·exp(d·x_i)): the powers
            under a where's mask (their masked templates keyed by value, one per
            exponent, before; one now)
  text      the bench's random DAG (benchmarks/bench_frontend.py): a trace the bulk
            sweep always took, for scale

Each row: the primal's instructions, grad_reverse with the bulk sweep asked first
(reverse._BULK_FROM = 0: where it declines, its asking and then the per-instruction
sweep, as a user's call pays) and per instruction (math.inf), CPU ms
(time.process_time), medians of --rounds alternating rounds in one process, their
ratio (bulk / per-instruction), and whether the bulk sweep took the trace. With --old
PATH (a checkout, e.g. `git worktree add /tmp/old HEAD`) the same table for the code
at PATH, in child processes alternating with this tree's.

    python benchmarks/bench_bulk_where.py --sizes 3000 30000 300000 --rounds 3
    python benchmarks/bench_bulk_where.py --sizes 3000 30000 --old /tmp/old
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time

FAMILIES = ("unions", "powers", "maskedpow", "text")


def piecewise_block(rng: random.Random, xs: list, statements: int = 20) -> tuple:
    """(lines, the block's last three names): a chained piecewise model on inputs `xs`."""
    names = list(xs)
    lines = []
    tag = xs[0]
    for k in range(statements):
        a = rng.choice(names[-4:])
        b = rng.choice([x for x in xs if x != a])   # (no x·x: its two edges' G·x are one instruction)
        c, d = round(rng.uniform(-1, 1), 3), round(rng.uniform(0.5, 2), 3)
        form = rng.randrange(3)
        if form == 0:
            e = f"where({a} > {c}, {d}*{a}*{b}, {a} - {c})"
        elif form == 1:
            e = f"where({b} < {c}, sqrt(exp({a}) + {d}), {a}*{d})"
        else:
            e = f"where({a}*{b} > {c}, log(1 + exp({a}))*{d}, {b} - {a})"
        name = f"{tag}_t{k}"
        lines.append(f"{name} = {e}")
        names.append(name)
    return lines, names[-3:]


def unions(n_ops: int, seed: int = 1) -> str:
    """Blocks of chained piecewise statements (~96 instructions a block), summed."""
    rng = random.Random(seed)
    lines, outs = [], []
    for blk in range(max(1, n_ops // 96)):
        block, last = piecewise_block(rng, [f"x{blk}", f"y{blk}", f"z{blk}"])
        lines += block
        outs.append(f"({' + '.join(last)}) * {1 + blk / 64}")
    lines.append(" + ".join(outs))
    return "\n".join(lines)


def powers(n_ops: int, seed: int = 1) -> str:
    """Statements c·a**e + d·b**f over 8 inputs and recent statements, every exponent
    and coefficient its own random float (~6 instructions a statement)."""
    rng = random.Random(seed)
    names = [f"x{i}" for i in range(1, 9)]
    lines = []
    k = 0
    while 6 * k < n_ops:
        k += 1
        a, b = rng.choice(names), rng.choice(names)
        e = (f"{rng.uniform(0.1, 3):.4f}*{a}**{rng.uniform(0.3, 3):.4f} + "
             f"{rng.uniform(0.1, 3):.4f}*{b}**{rng.uniform(0.3, 3):.4f}")
        lines.append(f"t{k} = {e}")
        names.append(f"t{k}")
        if len(names) > 40:   # (a window of recent statements: a DAG, not a chain)
            names.pop(8)
    lines.append(" + ".join(f"t{j}" for j in range(max(1, k - 30), k + 1)))
    return "\n".join(lines)


def masked_powers(n_ops: int, seed: int = 1) -> str:
    """where(x_i > c, a·x_i**e, b·exp(d·x_i)) over 20 inputs, every constant its own
    random float (~13 instructions a term)."""
    rng = random.Random(seed)
    terms = []
    for _ in range(max(1, n_ops // 13)):
        i = rng.randrange(20)
        power = f"{rng.uniform(0.1, 3):.4f}*x{i}**{rng.uniform(0.3, 3):.4f}"
        terms.append(f"where(x{i} > {rng.uniform(0.1, 2):.4f}, {power}, "
                     f"{rng.uniform(0.1, 3):.4f}*exp({rng.uniform(0.1, 1):.4f}*x{i}))")
    return " + ".join(terms)


def formula(family: str, n_ops: int) -> str:
    if family == "text":
        from exprcompiler.bench.suite_scaling import random_dag
        return random_dag(n_ops)
    return {"unions": unions, "powers": powers, "maskedpow": masked_powers}[family](n_ops)


def measure(families, sizes, rounds: int) -> list:
    """[(family, size, instructions, bulk ms, per-instruction ms, taken)], medians of
    `rounds` alternating rounds."""
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import reverse, reverse_bulk
    from exprcompiler.passes.reverse import grad_reverse
    rows = []
    for family in families:
        for size in sizes:
            trace = to_trace(formula(family, size))
            taken = reverse_bulk.grad_reverse_bulk(trace) is not None
            times = {0: [], math.inf: []}
            for _ in range(rounds):
                for at in times:
                    reverse._BULK_FROM = at
                    gc.collect()
                    t0 = time.process_time()
                    grad_reverse(trace)
                    times[at].append((time.process_time() - t0) * 1e3)
            reverse._BULK_FROM = 3000
            rows.append((family, size, len(trace), statistics.median(times[0]), statistics.median(times[math.inf]),
                         taken))
    return rows


def _child(path: str, families, sizes, rounds: int) -> list:
    env = dict(os.environ, PYTHONPATH=path)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--families", *families,
                          "--sizes", *map(str, sizes), "--rounds", str(rounds)],
                         env=env, cwd=path, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", help="a checkout of the old code: its table beside, alternating processes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.families, args.sizes, args.rounds)))
        return
    print(f"load {os.getloadavg()[0]:.1f}")
    yes = {True: "yes", False: "no"}
    if args.old is None:
        rows = measure(args.families, args.sizes, args.rounds)
        print(f"{'family':7} {'ops':>8} {'instrs':>8} {'bulk ms':>9} {'per-instr ms':>13} {'ratio':>6} {'taken':>6}")
        for family, size, n, bulk, per, taken in rows:
            print(f"{family:7} {size:>8,} {n:>8,} {bulk:>9.1f} {per:>13.1f} {bulk / per:>6.2f} {yes[taken]:>6}")
        print(f"load {os.getloadavg()[0]:.1f}")
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs: dict = {"old": [], "new": []}
    for _ in range(3):   # (alternating child processes, each its own medians)
        for key, path in (("old", args.old), ("new", here)):
            runs[key].append(_child(path, args.families, args.sizes, args.rounds))
    print(f"{'family':7} {'ops':>8} {'instrs':>8} {'old bulk':>9} {'old per':>8} {'old ratio':>9} {'taken':>5} "
          f"{'new bulk':>9} {'new per':>8} {'new ratio':>9} {'taken':>5} {'bulk new/old':>12}")
    for k, (family, size, n, _, _, _) in enumerate(runs["new"][0]):
        med = {key: [statistics.median(r[k][c] for r in runs[key]) for c in (3, 4)] for key in runs}
        (ob, op), (nb, np_) = med["old"], med["new"]
        print(f"{family:7} {size:>8,} {n:>8,} {ob:>9.1f} {op:>8.1f} {ob / op:>9.2f} {yes[runs['old'][0][k][5]]:>5} "
              f"{nb:>9.1f} {np_:>8.1f} {nb / np_:>9.2f} {yes[runs['new'][0][k][5]]:>5} {nb / ob:>12.2f}")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
