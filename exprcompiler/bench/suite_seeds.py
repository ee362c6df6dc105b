"""The `seeds` suite: the lecture's functions at 10⁶ points (10⁴ with --quick), value
alone and value + gradient, every competitor of competitors.COMPETITORS on every
thread count asked for, interleaved."""

from __future__ import annotations

from .competitors import AGREEMENT, COMPETITORS, REFERENCE, Context, Task, candidate
from .reference import ReferenceError, load_reference
from .report import SuiteResult, err, ms, ratio, span
from .runner import labelled, run_interleaved
from .seeds import SEEDS

KINDS = ("value", "grad")


def run(threads: list[int], repeat: int, quick: bool) -> SuiteResult:
    points = 10_000 if quick else 1_000_000
    context = Context(points)
    try:
        context.refs = load_reference()
    except ReferenceError as e:
        context.refs_missing = str(e)
    cells = {}  # (seed, label, threads, kind) -> Candidate
    groups = []
    try:
        for name, seed in SEEDS.items():
            xs = seed.points(points)
            for kind in KINDS:
                group = []
                for t in threads:
                    for comp in COMPETITORS:
                        if comp.threaded or t == threads[0]:
                            c = candidate(comp, Task(seed, kind, xs, t, context))
                            cells[name, comp.label, str(t) if comp.threaded else "1", kind] = c
                            group.append(c)
                groups.append(group)
        times, errors = run_interleaved(groups, repeat, labelled(AGREEMENT))
    finally:
        context.close()
    return _result(cells, times, errors, points, repeat, threads, context)


def _result(cells, times, errors, points, repeat, threads, context) -> SuiteResult:
    def median(key):
        c = cells.get(key)
        return times[id(c)].median if c is not None and id(c) in times else None

    records, table, bars = [], [], []
    rows = dict.fromkeys(key[:3] for key in cells)  # (seed, label, threads), in order
    for name, label, thr in rows:
        value, grad = (cells[name, label, thr, k] for k in KINDS)
        rec = {"function": name, "expr": SEEDS[name].expr, "implementation": label,
               "threads": grad.threads, "points": points, "missing": grad.missing or value.missing}
        if rec["missing"]:
            records.append(rec)
            table.append([name, label, grad.threads, rec["missing"]])
            continue
        ref = median((name, REFERENCE[grad.family], thr if grad.family == "C" else "1", "grad"))
        g, v = times[id(grad)], times[id(value)]
        rec.update(value=v.as_dict(), grad=g.as_dict(),
                   ratio_to_reference=g.median / ref if ref else None,
                   reference=REFERENCE[grad.family], grad_over_value=g.median / v.median,
                   max_rel_error=max(errors[id(grad)], errors[id(value)]))
        records.append(rec)
        table.append([name, label, grad.threads, ms(v.median), ms(g.median), span(g),
                      ratio(rec["ratio_to_reference"]), ratio(rec["grad_over_value"]),
                      err(rec["max_rel_error"])])
        if rec["ratio_to_reference"]:
            bars.append((f"{name}: {label} ({grad.threads} thr)", rec["ratio_to_reference"]))
    tools = [f"{tool} on {t} CPU(s): {info}" for (tool, t), info in context.info.items()]
    refs = context.refs
    notes = [f"{points:,} points; median and min–max of {repeat} interleaved rounds after a "
             f"warm-up; threads: {', '.join(map(str, threads))}",
             "hand-written C: " + ("; ".join(f"{r.name} {' '.join(r.flags)}" for r in refs.values())
                                   if refs else context.refs_missing),
             *tools]
    legend = [
        "value ms, value+grad ms: medians; min–max: of value+grad",
        f"× ref: value+grad time / the hand-written reference's at the same threads "
        f"(C, JAX, PyTorch rows: '{REFERENCE['C']}'; NumPy and SymPy rows: '{REFERENCE['NumPy']}')",
        "(v+g)/v: value+grad time / value time of the same implementation",
        f"max rel err: largest |result − {AGREEMENT}| / max(1, |{AGREEMENT}|), over value and gradient",
        "thr: OpenMP threads for C, CPUs the worker is pinned to for JAX and PyTorch "
        "(also torch.set_num_threads); NumPy and SymPy's lambdified NumPy run on 1",
    ]
    return SuiteResult("seeds", notes, ["function", "implementation", "thr", "value ms",
                                        "value+grad ms", "min–max", "× ref", "(v+g)/v",
                                        "max rel err"],
                       table, records, legend, bars)
