"""Front end, passes and NumPy code generation, stage by stage, in µs per operation.

From an expression (text, or a SymPy DAG with shared subexpressions) to a callable
NumPy gradient: the path of `compile_grad(expr)` without the call layer, i.e.
to_trace -> grad_reverse -> numpy_backend.generate -> numpy_backend.load. Tracker
issue 14's goal: at most 10 µs and 1 KB per operation of the function's trace,
linear from 10² to 10⁶ operations.

"Callable" is what load returns: a function of more than numpy_backend.TIER_FROM
named variables is a statement program until its calls have paid for compile()
(backends/numpy_tier.py: after ~70 calls on small arrays, never on large ones,
where the program is the faster), so that compile() is not in these
figures; benchmarks/bench_numpy_tier.py measures the total over N calls.

Each (family, size) runs in its own process, so peak memory is that process's
ru_maxrss less its value before the pipeline (after the input was made). Stage
times are exclusive: the pipeline's functions are wrapped in timers through their
modules' globals (nothing in exprcompiler changes), and a wrapped call's time is
taken out of its caller's, so a column sums to the total. Times are the process's
CPU time (time.process_time), which a shared machine inflates far less than wall
time; the wall time of the whole pipeline is shown below the total, and the
system part of the total with the minor page faults (at 10^6 operations the
kernel's share moves from run to run: transparent huge pages' compaction where
NumPy asks for them).

Families: the random DAG and deep composition of `exprc bench scaling`
(exprcompiler/bench/suite_scaling.py), and a SymPy DAG: the random DAG's trace as
a SymPy expression (trace.to_sympy, unevaluated: binary Add and Mul), whose shared
subexpressions are shared Python objects, as a model built in SymPy has them.

    python benchmarks/bench_frontend.py                   # 10³, 10⁴, 10⁵
    python benchmarks/bench_frontend.py --sizes 1000000 --families text
    python benchmarks/bench_frontend.py --profile 100000 --families text   # cProfile, top 30
    python benchmarks/bench_frontend.py --sizes 100 1000 --warm   # a second formula per process
    python benchmarks/bench_frontend.py --sizes 10 30 100 300 1000 --warm   # and a fit: fixed + per op

A fresh process pays first-use costs (plans, templates and regexes compiled, modules'
first calls); --warm times a second formula of the same family and size after a first,
as a notebook's later cells see it (no memory figure then: the first reached the peak).

Single-threaded (the pipeline is pure Python); the digest column is the generated
source's SHA-1, to check that a change keeps the code identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import time

FAMILIES = ("text", "deep", "sympy")


def make_input(family: str, n_ops: int, other: bool = False):
    """The family's input of about `n_ops` operations; `other`: a different one of the
    same family and size (the warm-up of --warm)."""
    from exprcompiler.bench.suite_scaling import deep_program, random_dag
    if family == "deep":
        return re.sub(r"\bx\b", "w", deep_program(n_ops)) if other else deep_program(n_ops)
    dag = random_dag(n_ops, seed=2 if other else 1)
    if family == "text":
        return dag
    from exprcompiler.frontend import to_trace
    from exprcompiler.trace.to_sympy import to_sympy
    # unevaluated: SymPy's automatic evaluation of this DAG took minutes at 10³ ops
    expr, = to_sympy(to_trace(dag), evaluate=False)
    return expr


class Timers:
    """Exclusive time per stage path ("grad/adjoint sweep"), through wrapped callables."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.system: dict[str, float] = {}   # a top-level stage's system time, its callees' included
        self.stack: list = []   # [path, start, time in wrapped callees]

    def run(self, name: str, fn, *args, **kwargs):
        path = f"{self.stack[-1][0]}/{name}" if self.stack else name
        top = not self.stack
        sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime if top else 0.0
        frame = [path, time.process_time(), 0.0]
        self.stack.append(frame)
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.process_time() - frame[1]
            self.stack.pop()
            self.totals[path] = self.totals.get(path, 0.0) + elapsed - frame[2]
            if self.stack:
                self.stack[-1][2] += elapsed
            else:
                self.system[path] = (self.system.get(path, 0.0)
                                     + resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0)

    def wrap(self, owner, attr: str, name: str) -> None:
        fn = getattr(owner, attr)
        timers = self

        def timed(*args, **kwargs):
            return timers.run(name, fn, *args, **kwargs)
        setattr(owner, attr, timed)


def instrument(t: Timers) -> None:
    import builtins

    import exprcompiler.frontend as frontend
    import exprcompiler.parse as parse_pkg
    import exprcompiler.parse.from_sympy as from_sympy_mod
    import exprcompiler.passes.reverse as reverse
    import exprcompiler.passes.reverse_bulk as reverse_bulk
    from exprcompiler.backends import numpy_backend as nb
    from exprcompiler.backends import numpy_program, numpy_runner, numpy_templates
    from exprcompiler.trace import ir

    t.wrap(parse_pkg, "parse", "parse")
    t.wrap(from_sympy_mod, "from_sympy", "from_sympy")
    t.wrap(frontend, "share_sums", "share_sums")
    t.wrap(reverse, "replay", "forward replay")
    t.wrap(reverse, "adjoint_sweep", "adjoint sweep")
    t.wrap(reverse_bulk, "grad_reverse_bulk", "bulk sweep")   # (grad_reverse's from reverse._BULK_FROM)
    t.wrap(ir.Builder, "finish", "finish")
    for helper in ("_small_powers", "_static_sums", "_dots"):
        t.wrap(nb, helper, "prep")
    t.wrap(nb, "named_vars", "named_vars")
    t.wrap(nb, "named_array", "named_vars")
    t.wrap(nb, "op_codes", "named_vars")
    t.wrap(nb, "assign_names", "assign_names")
    t.wrap(nb, "NumpyRenderer", "renderer")
    # builtins shadowed by module globals: load's compile() and exec(), and the
    # statement program's (of its header, stub and templates: numpy_program, numpy_runner)
    for module in (nb, numpy_program, numpy_runner, numpy_templates):
        module.compile = lambda *a, **k: t.run("compile()", builtins.compile, *a, **k)
        module.exec = lambda *a, **k: t.run("exec", builtins.exec, *a, **k)
    t.wrap(nb, "load_program", "statement program")
    t.wrap(nb, "load_statements", "statement program")


def pipeline(expr, t: Timers):
    from exprcompiler.backends import numpy_backend
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import grad_reverse
    primal = t.run("front", to_trace, expr)
    grad = t.run("grad", grad_reverse, primal)
    source, _, program = t.run("generate", numpy_backend.generated, grad, func_name="f_grad", keep=[])   # (as compile_grad)
    fn = t.run("load", numpy_backend.load, source, "f_grad", program=program)
    return primal, grad, source, fn


def _file_kb() -> int:
    """The process's file-backed resident KB (Linux's /proc/self/status RssFile; 0
    elsewhere): shared libraries' pages, mapped in at a first use of their code (NumPy's
    _multiarray_umath: 1.1-1.8 MB in a pipeline of 10³-10⁵ operations), shared with
    other processes and given back under pressure, not memory the pipeline holds."""
    try:
        with open("/proc/self/status") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith("RssFile:")), 0)
    except OSError:
        return 0


def one(family: str, n_ops: int, profile: bool, warm: bool = False) -> dict:
    import gc

    import numpy as np
    expr = make_input(family, n_ops)
    if warm:   # another formula of the family and size first, as a notebook's second cell
        pipeline(make_input(family, n_ops, other=True), Timers())
    t = Timers()
    if not profile:   # (before rss0: its import of from_sympy loads SymPy, 34 MB the text pipeline never loads)
        instrument(t)
    gc.collect()
    rss0, file0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _file_kb()
    if profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        primal, grad, source, fn = pipeline(expr, t)
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    else:
        t0, w0, u0 = time.process_time(), time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        primal, grad, source, fn = pipeline(expr, t)
        t.totals["total"] = time.process_time() - t0
        t.totals["wall"] = time.perf_counter() - w0
        u1 = resource.getrusage(resource.RUSAGE_SELF)
        # (the kernel's share: page faults, transparent huge pages' compaction where NumPy
        # asks for them; it moves from run to run at 10^6 where user time does not)
        t.totals["sys"] = u1.ru_stime - u0.ru_stime
        t.totals["minor faults"] = u1.ru_minflt - u0.ru_minflt
    rss1, file1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _file_kb()
    source = str(source)   # (a long function's text is made when asked for: after the peak and the times)
    point = np.random.default_rng(3).uniform(0.2, 0.9, len(grad.input_names))
    value = fn(*point)[0]
    return {"family": family, "target": n_ops, "ops": primal.size, "grad_ops": grad.size,
            "lines": source.count("\n"), "stages": t.totals, "system": t.system,
            # (after a warm-up of the same size the high-water mark has been reached already)
            "peak_kb": None if warm else rss1 - rss0, "file_kb": file1 - file0,
            "digest": hashlib.sha1(source.encode()).hexdigest()[:10], "value": float(value)}


ORDER = ["front", "front/parse", "front/parse/finish", "front/from_sympy", "front/from_sympy/finish",
         "front/share_sums", "front/share_sums/finish",
         "grad", "grad/forward replay", "grad/adjoint sweep", "grad/finish", "grad/bulk sweep",
         "generate", "generate/prep", "generate/named_vars", "generate/assign_names",
         "generate/renderer", "load", "load/compile()", "load/exec", "load/statement program",
         "load/statement program/compile()", "load/statement program/exec", "total"]
LABELS = {"front": "front end (rest)", "grad": "grad_reverse (rest)", "generate": "generate (rest: emit lines)",
          "load": "load (rest)"}


def affine_fit(rs: list) -> tuple[float, float]:
    """(a, b) in µs, least squares of total CPU time = a + b * ops over the sizes: a
    formula's fixed cost and the cost of one operation more, which the per-operation
    column mixes at small sizes."""
    import numpy as np
    ops = np.array([r["ops"] for r in rs], dtype=float)
    total = np.array([1e6 * r["stages"]["total"] for r in rs])
    slope, fixed = np.polyfit(ops, total, 1)
    return float(fixed), float(slope)


def table(results: list) -> str:
    rows = []
    by_family: dict = {}
    for r in results:
        by_family.setdefault(r["family"], []).append(r)
    for family, rs in by_family.items():
        head = [f"{family} µs/op"] + [f"{r['ops']:,} ops" for r in rs]
        rows.append(head)
        keys = [k for k in ORDER if any(k in r["stages"] for r in rs)]
        keys += sorted({k for r in rs for k in r["stages"]} - set(keys) - {"wall", "sys", "minor faults"})
        for k in keys:
            name = LABELS.get(k, "  " * k.count("/") + k.rsplit("/", 1)[-1])
            rows.append([name] + [f"{1e6 * r['stages'].get(k, 0.0) / r['ops']:.2f}" for r in rs])
        rows.append(["total CPU s"] + [f"{r['stages']['total']:.2f}" for r in rs])
        rows.append(["wall s"] + [f"{r['stages']['wall']:.2f}" for r in rs])
        rows.append(["of the total: system µs/op"] + [f"{1e6 * r['stages'].get('sys', 0.0) / r['ops']:.2f}" for r in rs])
        for stage in ("front", "grad", "generate", "load"):
            rows.append([f"  of {stage}"] + [f"{1e6 * r['system'].get(stage, 0.0) / r['ops']:.2f}" for r in rs])
        rows.append(["minor page faults / op"] + [f"{r['stages'].get('minor faults', 0) / r['ops']:.3f}" for r in rs])
        rows.append(["grad ops / ops"] + [f"{r['grad_ops'] / r['ops']:.2f}" for r in rs])
        rows.append(["source lines"] + [f"{r['lines']:,}" for r in rs])
        rows.append(["peak MB (maxrss delta)"] + ["-" if r["peak_kb"] is None else f"{r['peak_kb'] / 1024:.0f}"
                                                  for r in rs])
        rows.append(["bytes/op"] + ["-" if r["peak_kb"] is None else f"{1024 * r['peak_kb'] / r['ops']:.0f}"
                                    for r in rs])
        rows.append(["  of which code pages (file)"] + ["-" if r["peak_kb"] is None else
                                                     f"{1024 * r['file_kb'] / r['ops']:.0f}" for r in rs])
        rows.append(["source sha1"] + [r["digest"] for r in rs])
        if len(rs) >= 3:
            fixed, slope = affine_fit(rs)
            rows.append([f"fit: {fixed / 1e3:.2f} ms + {slope:.2f} µs/op"])
        rows.append([])
    widths = [max(len(r[c]) for r in rows if len(r) > c) for c in range(max(map(len, rows)))]
    return "\n".join("  ".join(cell.ljust(w) if c == 0 else cell.rjust(w)
                               for c, (cell, w) in enumerate(zip(r, widths))) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--profile", type=int, help="cProfile the pipeline at this size instead")
    ap.add_argument("--warm", action="store_true",
                    help="time a second formula of the same family and size in each process "
                         "(first-use costs paid; no memory figure)")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), False, args.warm)))
        return
    if args.profile:
        for family in args.families:
            r = one(family, args.profile, True)
            print(f"{family}: {r['ops']} ops, {r['grad_ops']} grad ops", file=sys.stderr)
        return
    print(f"python {sys.version.split()[0]}, one thread, load average {os.getloadavg()[0]:.2f}"
          + (", warm processes (a second formula of each size)" if args.warm else ""))
    results = []
    for family in args.families:
        for size in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--one", family, str(size)]
                                 + ["--warm"] * args.warm,
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"{family} {size}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
