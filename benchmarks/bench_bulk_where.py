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

import random

from bench_bulk_consts import main, window_program   # (the harness: measure, the children, the tables)

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


def _powers_term(rng, names) -> tuple:
    a, b = rng.choice(names), rng.choice(names)
    return (f"{rng.uniform(0.1, 3):.4f}*{a}**{rng.uniform(0.3, 3):.4f} + "
            f"{rng.uniform(0.1, 3):.4f}*{b}**{rng.uniform(0.3, 3):.4f}"), 6


def powers(n_ops: int, seed: int = 1) -> str:
    """Statements c·a**e + d·b**f over 8 inputs and recent statements, every exponent
    and coefficient its own random float (~6 instructions a statement)."""
    return window_program(n_ops, seed, _powers_term)


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


if __name__ == "__main__":
    main(FAMILIES, formula, __file__, rounds=3, description=__doc__)
