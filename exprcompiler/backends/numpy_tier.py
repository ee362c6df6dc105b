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
price grow with the number of lines, so they are counted per line. On larger arrays
the program runs on about half the slots the compiled function's names hold, and is
mostly the faster of the two: a call that takes CHEAP_US a line or more pays no rent,
and a function only ever called so stays the program.

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

# Measured with benchmarks/bench_numpy_tier.py --parts constants --points 1 30 100 300 1000
# 3000 (CPU time, one thread, load average ~1.9; text, deep and SymPy gradients of 16 to
# 3,006 operations, 19 to 2,346 lines): COMPILE_US, the tier-up's cost a line (the text
# formatted from the program and compile()d), 4.5-5.3 µs at 246-2,346 lines (9-12 at
# 25-36; 6.5-6.9 in an earlier run at load ~1.5). The program's
# excess over the compiled function, a line a call, is ~0.1 µs (0.06-0.15) wherever the
# program's call takes under ~1 µs a line, at 1 to 300 points. Above, on larger arrays,
# the program is mostly the faster of the two, as it runs on about half the slots (its
# arrays stay in cache and are reused): at 1000 points 0.64-0.85x the compiled time for
# gradients of 289 operations and more (-0.4 to -1.0 µs a line a call, 1.6-2.4 µs a
# line), at 3000 points 0.68-0.84x from 300 operations; it is slower only in smaller
# ones (19-306 operations at 1000 points, 1.2-1.7 µs a line: excess 0.05-0.24 µs, at
# most 1.18x; at 3000 points up to 1.06x). So only a call of under CHEAP_US a line
# pays rent, DELTA_US a line (SHARE of its time on top: 0, the excess does not grow with
# the call's time there): a function called on small arrays tiers up after ~70 calls
# (the ski rental's bound holds), one called on large arrays stays the program, which
# costs at most ~1.2x the compiled function there and mostly 0.65-0.9x. The one-point
# variant (Python floats, math's functions) costs less a line, and so does its
# program's excess: DELTA_POINT_US, from benchmarks/bench_numpy_program.py (0.087 µs a
# line at 2,312 lines, 0.10 at 6,995): it tiers up after ~70 calls.
COMPILE_US = 7.0
DELTA_US = 0.1
DELTA_POINT_US = 0.1
SHARE = 0.0
CHEAP_US = 1.5


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
    cheap = CHEAP_US * 1e-6 * max(1, lines)   # s a call: above, the program is not the slower

    def counted(given: dict):
        nonlocal left
        start = perf_counter()
        out = run(given)
        spent = perf_counter() - start
        if spent >= cheap:
            return out
        left -= per_call + share * spent
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


__all__ = ["compile_on_use", "tiered", "COMPILE_US", "DELTA_US", "DELTA_POINT_US", "SHARE", "CHEAP_US"]
