"""The `sparse` suite (issue 16): sparse Jacobians and Hessians by coloring, against the
dense forward-mode Jacobian / dense Hessian and against CasADi's `jacobian` / `hessian`
on SX.

Cases, written as tensor programs of one vector (sparse_problems.py), generated C:
Broyden banded (MGH 31, 7 colors) and the discrete boundary value problem (MGH 28,
3 colors) at n = 10³, 10⁴ (10⁵ on request: `python -m exprcompiler.bench.suite_sparse
1000 10000 100000`), and the chained Rosenbrock Hessian (star coloring, 3 colors).

- **sparse**: `compile_jacobian(..., sparse=True, backend="c")` called at one point,
  giving (values, scipy.sparse.csr_matrix): one kernel running the k seed sweeps, then
  the gather into CSR.
- **dense**: the dense forward-mode Jacobian, n JVP sweeps of the same compiled JVP
  kernel with unit seeds (what `compile_jacobian(..., shapes=)` runs); the dense
  Hessian, n HVPs. Up to FULL columns it is timed whole; above, a sample of SAMPLE
  sweeps is timed and scaled by n / SAMPLE (the (n, n) result alone would be 800 MB
  at n = 10⁴), and the table says so.
- **CasADi**: `Function([x], [F, jacobian(F, x)])` on SX, called at the same point
  (results as CasADi DM, no conversion timed), one thread.

Calls run interleaved, each candidate once per round; the table shows medians, in ms.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from .. import compile_hessian, compile_hvp, compile_jacobian, compile_jvp
from . import sparse_casadi
from . import sparse_problems as P
from .report import SuiteResult, ratio

SIZES, QUICK_SIZES = (1000, 10000), (1000,)
HESSIAN_SIZES, QUICK_HESSIAN_SIZES = (10000,), (1000,)
FULL = 1000     # dense Jacobians up to this n are timed whole
SAMPLE = 100    # dense sweeps timed above FULL, then scaled by n / SAMPLE


def _sweeps(kernel, x, data, n: int, count: int, hvp: bool) -> float:
    """Seconds for `count` unit-seed sweeps (JVP or HVP) of `kernel`, scaled to n."""
    e = np.zeros(n)
    t0 = time.perf_counter()
    for j in range(count):
        e[j - 1] = 0.0
        e[j] = 1.0
        kernel(x, e) if hvp else kernel(x=x, x_dot=e, **data)
    return (time.perf_counter() - t0) * n / count


def _interleaved(calls: dict, repeat: int) -> dict:
    """{label: median seconds} over `repeat` rounds, each call once per round, rotated."""
    for f in calls.values():  # warm-up
        f()
    times: dict = {k: [] for k in calls}
    labels = list(calls)
    for r in range(repeat):
        for k in labels[r % len(labels):] + labels[:r % len(labels)]:
            t0 = time.perf_counter()
            scaled = calls[k]()
            times[k].append(scaled if isinstance(scaled, float) else time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _timed(make):
    t0 = time.perf_counter()
    obj = make()
    return obj, time.perf_counter() - t0


def jacobian_case(name: str, n: int, threads: int, repeat: int) -> dict:
    text, shapes, wrt, data = P.PROBLEMS[name](n)
    x = P.start(name, n)
    J, build = _timed(lambda: compile_jacobian(text, wrt=wrt, shapes=shapes, sparse=True, backend="c",
                                               threads=threads))
    jvp = compile_jvp(text, wrt=wrt, shapes=shapes, backend="c", threads=threads)
    _, jac = J(x=x, **data)
    calls = {"sparse": lambda: J(x=x, **data)}
    if n <= FULL:
        dense = compile_jacobian(text, wrt=wrt, shapes=shapes, mode="forward", backend="c", threads=threads)
        calls["dense"] = lambda: dense(x=x, **data)
        err_dense = float(np.max(np.abs(jac.toarray() - dense(x=x, **data)[1])))
    else:
        calls["dense"] = lambda: _sweeps(jvp, x, data, n, SAMPLE, hvp=False)
        err_dense = None
    peer = sparse_casadi.jacobian(name, n)
    err_casadi = None
    if peer is not None:
        casadi_build, fun = peer
        calls["casadi"] = lambda: fun(x)
        err_casadi = float(abs(sparse_casadi.as_scipy(fun(x)[1]) - jac).max())
    times = _interleaved(calls, repeat)
    return dict(case=f"{name} J", n=n, nnz=J.nnz, colors=f"{J.colors.count} {J.colors.mode}", threads=threads,
                build=build, sparse=times["sparse"], dense=times["dense"],
                dense_how="whole" if n <= FULL else f"{SAMPLE} sweeps x n/{SAMPLE}",
                casadi_build=peer[0] if peer else None, casadi=times.get("casadi"),
                err_dense=err_dense, err_casadi=err_casadi)


def hessian_case(n: int, threads: int, repeat: int) -> dict:
    text, shapes, _, _ = P.chained_rosenbrock(n)
    x = P.start("chained_rosenbrock", n)
    H, build = _timed(lambda: compile_hessian(text, shapes=shapes, sparse=True, backend="c", threads=threads))
    hvp = compile_hvp(text, shapes=shapes, backend="c", threads=threads)
    hess = H(x)[2]
    count = min(n, SAMPLE)
    calls = {"sparse": lambda: H(x), "dense": lambda: _sweeps(hvp.at, x, {}, n, count, hvp=True)}
    peer = sparse_casadi.rosenbrock_hessian(n)
    err_casadi = None
    if peer is not None:
        calls["casadi"] = lambda: peer[1](x)
        err_casadi = float(abs(sparse_casadi.as_scipy(peer[1](x)[2]) - hess).max())
    times = _interleaved(calls, repeat)
    return dict(case="chained Rosenbrock H", n=n, nnz=H.nnz, colors=f"{H.colors.count} star", threads=threads,
                build=build, sparse=times["sparse"], dense=times["dense"],
                dense_how="whole" if count == n else f"{count} HVPs x n/{count}",
                casadi_build=peer[0] if peer else None, casadi=times.get("casadi"),
                err_dense=None, err_casadi=err_casadi)


HEADERS = ["case", "n", "nnz", "colors", "threads", "build s", "sparse ms", "dense ms", "dense timed",
           "CasADi build s", "CasADi ms", "dense/sparse", "CasADi/sparse", "max |Δ| CasADi"]


def _row(r: dict) -> list:
    def f(x, digits=3):
        return "—" if x is None else f"{x:.{digits}g}"
    return [r["case"], str(r["n"]), str(r["nnz"]), r["colors"], str(r["threads"]), f(r["build"]),
            f(r["sparse"] * 1e3), f(r["dense"] * 1e3, 4), r["dense_how"], f(r["casadi_build"]),
            f(r["casadi"] and r["casadi"] * 1e3), ratio(r["dense"] / r["sparse"], 0),
            ratio(r["casadi"] / r["sparse"]) if r["casadi"] else "—", f(r["err_casadi"], 2)]


def run(threads, repeat: int, quick: bool = False, sizes=None, hessian_sizes=None) -> SuiteResult:
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    hessian_sizes = hessian_sizes or (QUICK_HESSIAN_SIZES if quick else HESSIAN_SIZES)
    records = []
    for t in threads:
        for name in P.PROBLEMS:
            for n in sizes:
                records.append(jacobian_case(name, n, t, repeat))
        for n in hessian_sizes:
            records.append(hessian_case(n, t, repeat))
    notes = ["sparse: compile_jacobian/compile_hessian(..., sparse=True, backend='c') at one point, "
             "CSR result included; dense: n unit-seed JVP (HVP) sweeps of the same compiled kernel",
             f"dense above n = {FULL} is a timed sample of {SAMPLE} sweeps scaled by n/{SAMPLE} (the dense "
             "matrix alone would not fit); CasADi: jacobian/hessian on SX, its VM, one thread",
             "build: compile time of the sparse object (pattern, coloring, trace, C) — a rerun finds "
             "the C kernel in the cache"]
    return SuiteResult("sparse", notes, HEADERS, [_row(r) for r in records], records,
                       legend=["ratios > 1: the sparse kernel is that many times faster"],
                       ratios=[(f"{r['case']} n={r['n']} t={r['threads']}", r["dense"] / r["sparse"])
                               for r in records])


def main(argv=None) -> None:
    args = [int(a) for a in (argv if argv is not None else sys.argv[1:])]
    from .worker import cpu_set
    threads = sorted({1, len(cpu_set(None)) or 1})
    print(run(threads, 7, sizes=tuple(args) or None).text())


if __name__ == "__main__":
    main()
