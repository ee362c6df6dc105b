"""Benchmark (not registered in the suite): what keeping a tensor kernel's temporaries
between calls saves. Each case calls the same compiled C library two ways, interleaved,
on one thread, outputs preallocated: `f`, which mallocs its temporaries and frees them
at every call (what every call did before c_tensor.Workspace), and `f_ws` with the
block Workspace keeps. Minor page faults per call come from getrusage.

    python -m exprcompiler.bench.workspace
    MALLOC_TRIM_THRESHOLD_=65536 python -m exprcompiler.bench.workspace   # as on a Dask worker

Setting MALLOC_TRIM_THRESHOLD_ (Dask's nanny does) pins glibc's mmap threshold at
128 KB, so every block above it is mapped afresh and faulted in page by page; without
it glibc raises the threshold after the first free, up to 32 MB, so only blocks above
that (the Broyden Jacobian's 67 MB) fault at every call.
"""

from __future__ import annotations

import os
import resource
import statistics
import time

import numpy as np


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def compare(label: str, compiled, arrays: list, repeat: int) -> None:
    """One line: the malloc'd and the kept workspace, median ms and faults per call."""
    from ..backends import c_build
    from ..backends.c_tensor import Workspace, dim_names, generate_c_tensor
    trace = compiled.signature.trace
    name = next(line for line in compiled.source.splitlines() if "_ws(" in line).split("_ws(")[0].split()[-1]
    ffi, lib = c_build.load(compiled.source, generate_c_tensor(trace, func_name=name)[1])
    bound = compiled.signature.bind(arrays)
    dims = ffi.new("ptrdiff_t[]", [bound.dims[d] for d in dim_names(trace)] or [0])
    args = [ffi.from_buffer("double[]", np.ascontiguousarray(a)) for a in arrays]
    args += [ffi.from_buffer("double[]", np.empty(s), require_writable=True) for s in bound.shapes]
    need, workspace = getattr(lib, f"{name}_work")(dims), Workspace(ffi)
    fresh, kept = getattr(lib, name), getattr(lib, f"{name}_ws")
    calls = {"malloc": lambda: fresh(dims, 1, *args), "kept": lambda: kept(dims, 1, workspace.take(need), *args)}
    times: dict = {k: [] for k in calls}
    faults: dict = {k: [] for k in calls}
    for call in calls.values():  # warm-up
        call()
    for _ in range(repeat):
        for k, call in calls.items():
            f0, t0 = _faults(), time.perf_counter()
            if call() != 0:
                raise RuntimeError(f"{label}: the kernel refused the call")
            times[k].append(time.perf_counter() - t0)
            faults[k].append(_faults() - f0)
    before, after = (statistics.median(times[k]) for k in calls)
    print(f"  {label:<40} {need * 8 / 1e6:6.1f} MB   malloc'd {before * 1e3:8.3f} ms "
          f"{statistics.median(faults['malloc']):6.0f} faults   kept {after * 1e3:8.3f} ms "
          f"{statistics.median(faults['kept']):6.0f} faults   {before / after:5.2f}x")


def main(repeat: int = 15) -> int:
    from .. import compile_grad, compile_jacobian
    from . import sparse_problems as P
    load = os.getloadavg()
    print(f"tensor kernel temporaries, malloc'd each call against kept (one thread, median of {repeat} "
          f"interleaved); MALLOC_TRIM_THRESHOLD_={os.environ.get('MALLOC_TRIM_THRESHOLD_')}; load average "
          f"{load[0]:.2f} on {os.cpu_count()} cores")
    n = 100_000
    text, shapes, wrt, _ = P.broyden_banded(n)
    J = compile_jacobian(text, wrt=wrt, shapes=shapes, sparse=True, backend="c", threads=1)
    compare(f"Broyden banded sparse J, n = {n}", J._kernel, [P.start("broyden_banded", n), *J._seeds], repeat)
    rng = np.random.default_rng(0)
    for loss, rows, cols in (("0.5*sum((X@w - y)**2)", 100_000, 10), ("0.5*sum((X@w - y)**2)", 125_000, 100),
                             ("sum(log(1 + exp(-y*(X@w))))", 100_000, 10)):
        g = compile_grad(loss, ["w"], shapes={"X": ("n", cols), "y": ("n",), "w": (cols,)}, backend="c", threads=1)
        data = {"X": rng.normal(size=(rows, cols)), "y": np.sign(rng.normal(size=rows)), "w": np.full(cols, 0.1)}
        what = "least squares" if "X@w - y" in loss else "logistic"
        compare(f"{what} gradient, X {rows} x {cols}", g, [data[k] for k in g.inputs], repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
