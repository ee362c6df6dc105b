"""grad_reverse against the bulk sweep (passes/reverse_bulk.py) on the bench families.

CPU time (time.process_time), the median of alternating rounds (old, new, old,
new...) in one process, so a shared machine's load hits both alike. Both sides
are the whole gradient pass: grad_reverse, held to the per-instruction sweep
(grad_reverse itself takes the bulk sweep from reverse._BULK_FROM instructions),
is replay + adjoint sweep + finish;
grad_reverse_bulk is its edges, layout and trace. The bulk trace is grad_reverse's
on the deep family, not yet on text and SymPy (the module docstring says what is
left): its size is printed beside.

    python benchmarks/bench_reverse_bulk.py --sizes 10000 100000 --rounds 5
    python benchmarks/bench_reverse_bulk.py --sizes 100000 --memory   # tracemalloc peaks (slow)
    python benchmarks/bench_reverse_bulk.py --sizes 10000 --why       # what the bulk sweep leaves out

--why counts, in grad_reverse's own sweep, the builder calls that are not built as
written (a fold, an identity, a hash-consing hit) by what their arguments are
(flags: a constant, a negation, a copy), where in the sweep they fall, and what
the adjoints are at its end: what an identical bulk sweep has to reproduce.
"""

from __future__ import annotations

import argparse
import collections
import gc
import math
import statistics
import time
import tracemalloc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--families", nargs="+", default=["random DAG", "deep"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="traced peak memory of each pass instead of time")
    parser.add_argument("--why", action="store_true", help="grad_reverse's calls not built as written")
    args = parser.parse_args()
    from exprcompiler.bench.suite_scaling import FAMILIES
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import reverse
    from exprcompiler.passes.reverse import grad_reverse
    from exprcompiler.passes.reverse_bulk import grad_reverse_bulk
    # grad_reverse here is the per-instruction sweep, whatever the size (it takes the
    # bulk sweep from reverse._BULK_FROM instructions)
    reverse._BULK_FROM = math.inf
    if not args.why:
        unit = "B/op" if args.memory else "us/op"
        print(f"{'family':12} {'ops':>9} {'grad_reverse ' + unit:>19} {'bulk ' + unit:>11} {'ratio':>6} "
              f"{'instrs':>9} {'bulk instrs':>12}")
    for family in args.families:
        for size in args.sizes:
            trace = to_trace(FAMILIES[family](size))
            if args.why:
                why(family, trace)
                continue
            n_ops = trace.size
            figures = {"old": [], "new": []}
            sizes = {}
            for _ in range(1 if args.memory else args.rounds):
                for key, fn in (("old", grad_reverse), ("new", grad_reverse_bulk)):
                    gc.collect()
                    if args.memory:
                        tracemalloc.start()
                    t0 = time.process_time()
                    out = fn(trace)
                    figures[key].append(tracemalloc.get_traced_memory()[1] if args.memory
                                        else (time.process_time() - t0) * 1e6)
                    tracemalloc.stop()
                    sizes[key] = len(out.instrs) if out is not None else None
                    del out
            old, new = (statistics.median(figures[k]) / n_ops for k in ("old", "new"))
            print(f"{family:12} {n_ops:>9,} {old:>19.2f} {new:>11.2f} {old / new:>6.2f} "
                  f"{sizes['old']:>9,} {sizes['new'] or 0:>12,}")


def why(family: str, trace) -> None:
    """--why: grad_reverse's sweep, each builder op method of its builder wrapped."""
    from exprcompiler.passes import reverse
    from exprcompiler.trace.builder_ops import _op_methods
    from exprcompiler.trace.identities import CONST, COPY, NEG
    n = len(trace.instrs)
    calls, where, adjoints = collections.Counter(), collections.Counter(), collections.Counter()
    depth = [0]   # (calls an identity makes itself are its own business)
    flag_names = ((CONST, "const"), (NEG, "neg"), (COPY, "copy"))

    def wrapped(b, op, method):
        def call(*args):
            if depth[0]:
                return method(*args)
            before = len(b.instrs)
            flags = 0
            for a in args:
                flags |= b._flags[a] if type(a) is int else CONST
            depth[0] += 1
            try:
                var = method(*args)
            finally:
                depth[0] -= 1
            sources = [b._copies.get(a, a) for a in args]
            if var == before and len(b.instrs) == before + 1 and b.instrs[var].op == op:
                outcome = "built as written"
            elif len(b.instrs) == before and b.instrs[var].op == op and list(b.instrs[var].args) in (
                    list(args), sources, sources[::-1]):
                outcome = "hash-consing hit, primal" if var < n else "hash-consing hit, sweep"
            else:
                outcome = "identity or fold"
            calls[outcome, "+".join(name for bit, name in flag_names if flags & bit) or "plain"] += 1
            if outcome != "built as written":
                where[min(9, 10 * (before - n) // max(1, 2 * n))] += 1
            return var
        return call
    sweep = reverse.adjoint_sweep

    def instrumented(b, *rest, **options):
        for op in _op_methods():
            setattr(b, op, wrapped(b, op, getattr(b, op)))
        adj = sweep(b, *rest, **options)
        for v in (v for v in adj if v is not None):
            flags = b._flags[v]
            adjoints["constant" if flags & CONST else "negation" if flags & NEG else
                     "copy" if flags & COPY else "fresh"] += 1
        return adj
    reverse.adjoint_sweep = instrumented
    try:
        grad = reverse.grad_reverse(trace)
    finally:
        reverse.adjoint_sweep = sweep
    total = sum(calls.values())
    print(f"{family}, {trace.size:,} ops: {total:,} builder calls in grad_reverse's sweep, "
          f"{len(grad.instrs):,} instructions")
    for (outcome, flags), count in calls.most_common():
        print(f"  {outcome:26} arguments {flags:15} {count:>9,} {100 * count / total:5.1f}%")
    print("  not built as written, by tenth of the sweep:", [where[k] for k in range(10)])
    print("  adjoints at the sweep's end:", dict(adjoints))


if __name__ == "__main__":
    main()
