"""Benchmark of least squares: `exprc bench lsq` on one thread, BLAS included.

    python benchmarks/bench_lsq.py [--repeat 11] [--quick] [--json PATH]

The suite (exprcompiler/bench/suite_lsq.py) times the gradient of ½‖Xw − y‖² at X
500×100 and 5000×1000 (200×50 with --quick): hand-written NumPy `X.T @ (X @ w - y)`
(the reference) and with the value, the generated NumPy and C gradients of
compile_grad(..., shapes=...), the generated functions alone (without the call's
argument binding and shape checks), JAX jit(value_and_grad) and PyTorch autograd when
importable; and 500 gradient-descent steps, generated against hand-written. What this
script adds: the BLAS thread variables are set to 1 before NumPy is imported (the
suite also sets the count through threadpoolctl when it is installed) and the process
is pinned to the first CPU it may use, so every competitor shares one core.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from exprcompiler.bench.__main__ import one_cpu  # noqa: E402


def main() -> int:
    return one_cpu("lsq", __doc__.splitlines()[0], quick_help="X 200×50 only", repeat=11)


if __name__ == "__main__":
    sys.exit(main())
