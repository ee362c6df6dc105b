"""The NumPy build of the pendulum's Jacobian, stage by stage, against symengine's
build (tracker issue 14: "the NumPy backend's build no slower than symengine's").

    python benchmarks/bench_jacobian_build.py [--links 3 6 10] [--rounds 41] [--base REV]

The build is compile_jacobian(exprs, wrt=states, backend="numpy") from the SymPy
expressions of bench/mechanics.py; symengine's is mechanics_peers.build_symengine
(sympify + jacobian + Lambdify(llvm, cse=True)). Each round times, in an order
rotated round by round: compile_jacobian whole; the same build in its stages (the
front end to_trace, with_wrt, the Jacobian passes of mode="auto", the Signature,
the backend's generate and load, the compiled object, as api._build runs them: the
source is checked to be compile_jacobian's); symengine's build; and with --base,
compile_jacobian of the git revision REV (its `exprcompiler` extracted to a
temporary directory and imported as `exprcompiler_base`), for an A/B of a change in
the same rounds. Times are CPU (time.process_time: a shared machine's other
processes inflate it less than the wall time, shown beside it); medians over rounds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from exprcompiler import api, compile_jacobian, to_trace  # noqa: E402
from exprcompiler.backends.registry import BACKENDS  # noqa: E402
from exprcompiler.bench import mechanics_peers as peers  # noqa: E402
from exprcompiler.bench.mechanics import pendulum  # noqa: E402
from exprcompiler.dense_point import PointCompiled  # noqa: E402
from exprcompiler.jacobians import auto_jacobian  # noqa: E402
from exprcompiler.signature import Signature  # noqa: E402


def staged(model) -> tuple[dict, str]:
    """({stage: CPU seconds}, the generated source): compile_jacobian's steps for a
    list of SymPy expressions (no stability rewrites, float64), one by one."""
    times, clock = {}, time.process_time
    t = clock()
    trace = to_trace(list(model.exprs))
    times["front end (to_trace)"], t = clock() - t, clock()
    primal, wrt = api.with_wrt(trace, model.names)
    times["with_wrt"], t = clock() - t, clock()
    mode, jac = auto_jacobian(primal, wrt)
    times[f"Jacobian passes ({mode})"], t = clock() - t, clock()
    signature = Signature(jac, primal, wrt)
    times["Signature"], t = clock() - t, clock()
    backend = BACKENDS["numpy"]
    artifact = backend.generate(jac, func_name="f_jacobian", description=api.describe(
        f"values and Jacobian ({mode} mode)", primal), columns=True)
    times["generate (source text)"], t = clock() - t, clock()
    kernel = backend.load(artifact, signature)
    times["load (compile)"], t = clock() - t, clock()
    m, n = len(primal.outputs), len(wrt)
    cls = PointCompiled if PointCompiled.fits(kernel, signature, None) else api.Compiled
    cls(kernel, signature, kind="jacobian", primal=primal, n_values=m, backend="numpy", mode=mode,
        layout=(((m,), (m, n)), tuple))
    times["compiled object"] = clock() - t
    return times, artifact.source


def base_package(rev: str):
    """compile_jacobian of git revision `rev`: its package extracted and imported as
    exprcompiler_base (the package imports itself relatively)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "exprcompiler"], check=True,
                             capture_output=True).stdout
    where = tempfile.mkdtemp(prefix="bench_jacobian_build_")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(where)
    os.rename(os.path.join(where, "exprcompiler"), os.path.join(where, "exprcompiler_base"))
    sys.path.insert(0, where)
    return importlib.import_module("exprcompiler_base").compile_jacobian


def run(n: int, rounds: int, base=None) -> None:
    model = pendulum(n)
    rows = {"compile_jacobian": lambda: compile_jacobian(list(model.exprs), wrt=model.names, backend="numpy"),
            "stages": lambda: staged(model),
            "symengine": lambda: peers.build_symengine(model)}
    if base is not None:
        rows["compile_jacobian at --base"] = lambda: base(list(model.exprs), wrt=model.names, backend="numpy")
    whole = rows["compile_jacobian"]()
    if staged(model)[1] != whole.source:
        raise SystemExit("the stages do not build compile_jacobian's source: bench out of date with api._build")
    cpu = {label: [] for label in rows}
    wall = {label: [] for label in rows}
    stages: dict = {}
    labels = list(rows)
    for fn in rows.values():
        fn()   # warm-up: imports, caches
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            c0, w0 = time.process_time(), time.perf_counter()
            out = rows[label]()
            cpu[label].append(time.process_time() - c0)
            wall[label].append(time.perf_counter() - w0)
            if label == "stages":
                for stage, s in out[0].items():
                    stages.setdefault(stage, []).append(s)
    med = {label: statistics.median(v) * 1e3 for label, v in cpu.items()}
    ref = med["symengine"]
    print(f"\nn = {n} links: {rounds} rounds, ms CPU (median; wall beside), x symengine's CPU")
    for label in labels:
        print(f"  {label:30s} {med[label]:8.2f}  (wall {statistics.median(wall[label]) * 1e3:8.2f})"
              f"  {med[label] / ref:6.3f}x")
    for stage, v in stages.items():
        print(f"    {stage:28s} {statistics.median(v) * 1e3:8.2f}")
    print(f"  load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--links", type=int, nargs="+", default=[3, 6, 10])
    ap.add_argument("--rounds", type=int, default=41)
    ap.add_argument("--base", help="a git revision whose compile_jacobian is timed in the same rounds")
    args = ap.parse_args()
    base = base_package(args.base) if args.base else None
    for n in args.links:
        run(n, args.rounds, base)


if __name__ == "__main__":
    main()
