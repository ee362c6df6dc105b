"""Random straight-line programs (expression DAGs with shared subexpressions), for
the scale tests and the benchmarks. Values stay bounded for inputs in [-2, 2]:
every statement squashes or averages, so a 10⁵-op program has finite values."""

from __future__ import annotations

import random

_UNARY = ("sin({a})", "cos({a})", "tanh({a})", "arctan({a})", "sigmoid({a})", "exp(-({a})**2)")
_BINARY = ("({a} + {b}) * 0.5", "{a} * {b}", "{a} - {b}", "{a} / (1 + {b}**2)",
           "sqrt(1 + {a}**2) * {b}", "log(2 + sin({a})) * {b}")


def random_program(n_statements: int, n_vars: int = 6, seed: int = 0) -> str:
    """A program of `n_statements` assignments over inputs x1..x{n_vars}, ending in
    the sum of every value no statement used."""
    rng = random.Random(seed)
    names = [f"x{i + 1}" for i in range(n_vars)]
    unused = set()
    lines = []
    for k in range(n_statements):
        def pick():
            # mostly recent values (depth), sometimes any earlier one (sharing)
            if rng.random() < 0.7:
                name = names[-1 - min(int(rng.expovariate(0.5)), len(names) - 1)]
            else:
                name = rng.choice(names)
            unused.discard(name)
            return name
        if rng.random() < 0.4:
            rhs = rng.choice(_UNARY).format(a=pick())
        else:
            rhs = rng.choice(_BINARY).format(a=pick(), b=pick())
        name = f"t{k + 1}"
        lines.append(f"{name} = {rhs}")
        names.append(name)
        unused.add(name)
    # every value nobody used feeds the output, so no statement is dead code
    tail = [n for n in names if n in unused] or names[-1:]
    lines.append(" + ".join(tail))
    return "\n".join(lines)


def deep_expression(depth: int, var: str = "x") -> str:
    """sin(sin(...sin(x)...)) nested `depth` deep: a test of recursion-free passes."""
    return "sin(" * depth + var + ")" * depth
