"""The bulk reverse sweep against the per-instruction sweep on formulas with many distinct constants.

grad_reverse sweeps a trace of passes/reverse._BULK_FROM instructions or more in bulk
(passes/reverse_bulk*.py); a constant argument's value told kinds apart, so a formula
whose constants are all distinct (rate constants, fitted coefficients) had about a
kind, a template recording and a layout group per instruction (issue 14:
reverse_bulk_generic.py keys such constants by class). Families:

  text      the bench's random DAG (benchmarks/bench_frontend.py): few constants
  fitted    random statements c1·a·b + c2·exp(−c3·d), c·sin(c'·a + c''), a·b/(c + d²),
            every constant its own random float
  kinetics  mass-action rates r_j = k_j·x_a·x_b·exp(−e_j·u) of 20 species, each
            species' net rate a sum of ±r_j, the output Σ w_s·(net rate)²: every k_j,
            e_j, w_s distinct

Each row: the primal's instructions, grad_reverse in bulk (reverse._BULK_FROM = 0)
and per instruction (math.inf), CPU ms (time.process_time), medians of --rounds
alternating rounds in one process, and their ratio (bulk / per-instruction).
With --old PATH (a checkout, e.g. `git worktree add /tmp/old HEAD`) the same table
for the code at PATH, in child processes alternating with this tree's (a process
cannot hold both packages).

    python benchmarks/bench_bulk_consts.py --sizes 3000 30000 300000 --rounds 5
    python benchmarks/bench_bulk_consts.py --sizes 3000 30000 --old /tmp/old
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

FAMILIES = ("text", "fitted", "kinetics")


def window_program(n_ops: int, seed: int, term) -> str:
    """Statements over 8 inputs and a window of the recent statements (a DAG, not a
    chain), each term(rng, names) -> (text, its operations), until about n_ops
    operations; the output the sum of the last 31 (bench_bulk_where's families too)."""
    rng = random.Random(seed)
    names = [f"x{i}" for i in range(1, 9)]
    lines, ops, k = [], 0, 0
    while ops < n_ops:
        k += 1
        e, m = term(rng, names)
        ops += m
        lines.append(f"t{k} = {e}")
        names.append(f"t{k}")
        if len(names) > 40:
            names.pop(8)
    lines.append(" + ".join(f"t{j}" for j in range(max(1, k - 30), k + 1)))
    return "\n".join(lines)


def _fitted_term(rng, names) -> tuple:
    def c() -> str:
        return f"{rng.uniform(0.01, 3):.4f}"
    a, b, d = rng.choice(names), rng.choice(names), rng.choice(names)
    form = rng.randrange(4)
    if form == 0:
        return f"{c()}*{a}*{b} + {c()}*exp(-{c()}*{d})", 7
    if form == 1:
        return f"{c()}*{a} - {c()}*{b}*{d}", 5
    if form == 2:
        return f"{c()}*sin({c()}*{a} + {c()})", 5
    return f"{a}*{b}/({c()} + {d}**2)", 5


def fitted(n_ops: int, seed: int = 1) -> str:
    """Random statements over 8 inputs, each constant a random float (about n_ops operations)."""
    return window_program(n_ops, seed, _fitted_term)


def kinetics(n_ops: int, seed: int = 1, species: int = 20) -> str:
    """Mass-action rates of `species` species and a least-squares-like output (about
    n_ops operations: ~7 a reaction)."""
    rng = random.Random(seed)
    reactions = max(1, n_ops // 7)
    lines = []
    net = [[] for _ in range(species)]
    for j in range(reactions):
        a, b = rng.randrange(species), rng.randrange(species)
        lines.append(f"r{j} = {rng.uniform(0.1, 50):.6g}*x{a}*x{b}*exp(-{rng.uniform(0.5, 20):.6g}*u)")
        for s, sign in ((a, "-"), (b, "-"), (rng.randrange(species), "+")):
            net[s].append(f"{sign} r{j}")
    terms = []
    for s, parts in enumerate(net):
        if parts:
            lines.append(f"d{s} = {' '.join(parts).lstrip('+ ')}")
            terms.append(f"{rng.uniform(0.5, 2):.6g}*d{s}**2")
    lines.append(" + ".join(terms))
    return "\n".join(lines)


def formula(family: str, n_ops: int) -> str:
    if family == "text":
        from exprcompiler.bench.suite_scaling import random_dag
        return random_dag(n_ops)
    return fitted(n_ops) if family == "fitted" else kinetics(n_ops)


def measure(families, sizes, rounds: int, formula=formula) -> list:
    """[(family, size, instructions, bulk ms, per-instruction ms, taken)], medians of
    `rounds` alternating rounds; taken: whether the bulk sweep took the trace."""
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


def _child(script: str, path: str, families, sizes, rounds: int) -> list:
    env = dict(os.environ, PYTHONPATH=path)
    out = subprocess.run([sys.executable, script, "--child", "--families", *families,
                          "--sizes", *map(str, sizes), "--rounds", str(rounds)],
                         env=env, cwd=path, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main(families=FAMILIES, formula=formula, script: str = __file__, rounds: int = 5,
         description: str = __doc__) -> None:
    """The command line of this bench and of those that time other families
    (benchmarks/bench_bulk_where.py): their `formula` and the script the children run."""
    script = os.path.abspath(script)
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--families", nargs="+", default=list(families), choices=families)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--old", help="a checkout of the old code: its table beside, alternating processes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.families, args.sizes, args.rounds, formula)))
        return
    print(f"load {os.getloadavg()[0]:.1f}")
    yes = {True: "yes", False: "no"}
    if args.old is None:
        rows = measure(args.families, args.sizes, args.rounds, formula)
        print(f"{'family':9} {'ops':>8} {'instrs':>8} {'bulk ms':>9} {'per-instr ms':>13} {'ratio':>6} {'taken':>6}")
        for family, size, n, bulk, per, taken in rows:
            print(f"{family:9} {size:>8,} {n:>8,} {bulk:>9.1f} {per:>13.1f} {bulk / per:>6.2f} {yes[taken]:>6}")
        print(f"load {os.getloadavg()[0]:.1f}")
        return
    here = os.path.dirname(os.path.dirname(script))
    runs: dict = {"old": [], "new": []}
    for _ in range(3):   # (alternating child processes, each its own medians)
        for key, path in (("old", args.old), ("new", here)):
            runs[key].append(_child(script, path, args.families, args.sizes, args.rounds))
    print(f"{'family':9} {'ops':>8} {'instrs':>8} {'old bulk':>9} {'old per':>8} {'old ratio':>9} {'taken':>5} "
          f"{'new bulk':>9} {'new per':>8} {'new ratio':>9} {'taken':>5} {'bulk new/old':>12}")
    for k, (family, size, n, _, _, _) in enumerate(runs["new"][0]):
        med = {key: [statistics.median(r[k][c] for r in runs[key]) for c in (3, 4)] for key in runs}
        (ob, op), (nb, np_) = med["old"], med["new"]
        print(f"{family:9} {size:>8,} {n:>8,} {ob:>9.1f} {op:>8.1f} {ob / op:>9.2f} {yes[runs['old'][0][k][5]]:>5} "
              f"{nb:>9.1f} {np_:>8.1f} {nb / np_:>9.2f} {yes[runs['new'][0][k][5]]:>5} {nb / ob:>12.2f}")
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
