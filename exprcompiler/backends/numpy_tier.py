"""A short generated NumPy function: run as its statement program first, compiled on use.

Where it sits: numpy_backend.generated makes a function of plain lines (`name =
expression`) of more than TIER_FROM named variables as a statement program
(numpy_program.Program, its text a program_text.LazySource, not made) whatever its
length: the batch function, and the one-point variant (registry._MathPoint, made at
the first one-point call), which then has no `try` of its own (load_point guards it
from outside). numpy_backend.load runs one of at most PROGRAM_ABOVE lines as that
program (load_statements) and hands it to `compile_on_use`, which compiles its text
once its calls have cost about what the compile costs, and swaps the compiled code
into the same function object (`fn.__code__`): every holder of the function (the
kernel, its blocked runner, the one-point variant's fallback and guard) runs the
compiled code from then on, with no layer in between.

Why: Python's compile() of the text costs ~7 µs a line (a line is ~2.3 of a
gradient's operations: 15-20 µs an operation, at 10³ operations half of text ->
callable gradient, and 8 KB of memory an operation), the program's load 1-2 µs. The
program runs the same expressions in the same order on the same values (the
compiled function's results bit for bit: numpy_program's docstring), but each
statement costs a Python call and a few subscripts more. Compiling is a ski rental:
run the program (rent: its excess over the compiled function, estimated per call)
until the rent paid reaches the compile's cost (the price of buying), then compile.
The total is then at most about twice what the better of the two would have cost
had the number of calls been known, and a function called a few times (a test, a
script, a one-off evaluation) never pays compile() at all. Both the rent and the
price grow with the number of lines, so they are counted per line.

Thread safety: the swap is one attribute store. A call in flight keeps the code it
started with (the program's runner stays in the namespace for it); two threads that
reach the price at the same moment may both compile (the first sets the rent
to infinity before it compiles: the others run the program meanwhile), and a
second store puts equal code.
"""

from __future__ import annotations

from time import perf_counter
from types import CodeType

from .numpy_program import _RUNNER
from .program_text import lines_in

# Measured with benchmarks/bench_numpy_tier.py --parts constants (CPU time, one thread,
# load average ~1.5; text family's gradients of 8 to 3,072 operations, 25 to 6,995 lines):
# COMPILE_US, the tier-up's cost a line: the text formatted from the program and
# compile()d, 6.5-6.9 µs (9.6 at 25 lines). The program's excess over the compiled
# function, a line a call: 0.17-0.25 µs at one point (arrays of one), 0.24-0.48 at
# 1000 points, 0.6-1.8 at 16,384 (numpy_runner's largest block): DELTA_US a line a call
# and SHARE of the call's own time (0.1 µs a line at one point, 6 at 1000 points, 93
# at 16,384). So a function tiers up after ~35 calls at one point, ~19-27 at 1000 points
# (the true break-even: ~15-19), ~6 at 16,384 (~7). The one-point variant (Python
# floats, math's functions) costs less a line, and so does its program's excess:
# DELTA_POINT_US, from benchmarks/bench_numpy_program.py (0.087 µs a line at 2,312
# lines, 0.10 at 6,995): it tiers up after ~70 calls.
COMPILE_US = 7.0
DELTA_US = 0.2
DELTA_POINT_US = 0.1
SHARE = 0.01


def compile_on_use(fn, source, filename: str, namespace: dict, point: bool = False) -> None:
    """Charge each call of `fn`, a statement program's stub (numpy_program._stub) in
    `namespace`, its rent, and once it reaches COMPILE_US a line compile its text
    (`source`: a str or a LazySource) under `filename` (the name linecache holds its
    lines under: tracebacks and inspect show the same lines after the swap) and make
    it fn's code. `point`: fn is a one-point variant (DELTA_POINT_US)."""
    run = namespace[_RUNNER]
    stub = fn.__code__
    lines = lines_in(source)
    left = COMPILE_US   # µs a line
    per_call, share = DELTA_POINT_US if point else DELTA_US, SHARE * 1e6 / max(1, lines)

    def counted(given: dict):
        nonlocal left
        start = perf_counter()
        out = run(given)
        left -= per_call + share * (perf_counter() - start)
        if left <= 0 and fn.__code__ is stub:
            # paid once: the threads still calling meanwhile run the program; if the text
            # does not compile the program stays, and gives the same results
            left = float("inf")
            _tier_up(fn, source, filename)
        return out

    counted.templates = run.templates   # (benchmarks/bench_numpy_program.py)
    counted.tiered = lambda: fn.__code__ is not stub
    namespace[_RUNNER] = counted


def _tier_up(fn, source, filename: str) -> bool:
    """Compile `source` and make its function's code fn's (False if it does not compile)."""
    try:
        # (a LazySource's text formatted for this compile only: kept, it would live as
        # long as the function beside its program and its code)
        text = source if type(source) is str else source.once()
        module = compile(text, filename, "exec")   # our generated source, never user text
    except (SyntaxError, RecursionError, MemoryError):
        return False
    code = next((c for c in module.co_consts if type(c) is CodeType and c.co_name == fn.__name__), None)
    if code is None or code.co_freevars:
        return False
    fn.__code__ = code
    return True


def tiered(fn) -> bool:
    """Whether `fn` (numpy_backend.load's) is compiled on use and has been compiled."""
    counted = fn.__globals__.get(_RUNNER)
    return getattr(counted, "tiered", lambda: False)()


__all__ = ["compile_on_use", "tiered", "COMPILE_US", "DELTA_US", "DELTA_POINT_US", "SHARE"]
