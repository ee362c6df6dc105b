"""Benchmark of second order: `exprc bench hvp` with the whole process pinned to one CPU.

    python benchmarks/bench_hvp.py [--repeat 9] [--quick] [--json PATH]

The suite (exprcompiler/bench/suite_hvp.py) times the chained Rosenbrock function in
n = 10, 100, 1000 variables at one point through `Compiled.at`: value, value +
gradient, and value + gradient + HVP, for generated C and NumPy, the hand-written
NumPy (exprcompiler/bench/rosenbrock.py) and JAX when importable. What this script
adds is the pinning: the main process (and so the JAX worker) runs on the first CPU
it may use, so every competitor shares one core.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from exprcompiler.bench.__main__ import one_cpu  # noqa: E402


def main() -> int:
    return one_cpu("hvp", __doc__.splitlines()[0], quick_help="n = 10 and 100 only", repeat=9)


if __name__ == "__main__":
    sys.exit(main())
