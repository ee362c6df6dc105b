"""The rows and the report of the `mechanics` suite (bench/suite_mechanics.py): the
label of every implementation, in the order the table shows them, and the table, the
notes and the legend made from the timings, with a MISMATCH above the table for any
row whose results differ from SymPy's exact Jacobian by more than TOL.
"""

from __future__ import annotations

import math
import re
from typing import Optional

from ..jacobians import operations
from .machine import version
from .report import SuiteResult, err, ms, ratio, span, us
from .runner import Timing

CHECKS = 5                  # the first states of the batch, checked against the exact Jacobian
TOL = 1e-9                  # relative, denominator floored at 1
# A build of a few ms (NumPy, symengine at 3 links) varies by 2x between single runs on a
# shared machine: within a round each builder but C's cold one runs again for up to
# CHEAP_BUILD seconds, at most CHEAP_REPEATS more times, so its median is over many samples.
CHEAP_BUILD, CHEAP_REPEATS = 0.25, 8

C_COLD = "generated C, cold cache"
# not a row: the C compiler's CPU seconds in the cold build, in the sizes note
C_CPU = "C compiler CPU"
C_CALL = "generated C, J(**inputs)"
C_AT = "generated C, J.at(x)"
C_OUT = "generated C, J(**inputs, out=)"
C_BARE = "generated C, J.function (kernel)"
C_BARE_NEW = "generated C, J.function, new outputs"
NP_CALL = "generated NumPy, J(**inputs)"
NP_BARE = "generated NumPy, J.function"
SYMPY = "SymPy jacobian + lambdify(cse)"
SYMENGINE = "symengine jacobian + Lambdify(llvm)"
CASADI = "CasADi SX jacobian + Function"
JAX = "JAX jit(jacfwd), vmap"
ORDER = (C_COLD, C_CALL, C_AT, C_OUT, C_BARE, C_BARE_NEW, NP_CALL, NP_BARE, SYMPY, SYMENGINE, CASADI, JAX)
REFERENCE = C_CALL          # the ratios' denominator, at the same thread count

def sizes_note(model, built: dict) -> str:
    """What the n-link model is, in SymPy's and in exprcompiler's terms."""
    import sympy
    m, s = model.shape
    text = (f"n = {model.n}: {m} outputs, {s} states; SymPy derived it in {model.derive_s:.2f} s; "
            f"the forcing has {sum(sympy.count_ops(e) for e in model.exprs):,} SymPy operations")
    for label in (C_CALL, NP_CALL):
        J = built.get(label)
        if J is not None and not isinstance(J, str):
            text += (f"; exprcompiler's Jacobian ({J.mode} mode): {operations(J.primal):,} "
                     f"-> {operations(J.trace):,} trace operations")
            break
    J = built.get(C_CALL)
    if J is not None and not isinstance(J, str):
        # the C backend splits a long kernel into parts (c_split): worth seeing beside
        # the times, which change with it
        parts = len(re.findall(r"\bvoid \w+_part\d+\(", J.source))
        text += (f"; C source {len(J.source.splitlines()):,} lines"
                 + (f", split into {parts} parts" if parts else ", one kernel loop"))
    if isinstance(built.get(C_CPU), float):
        text += f"; C compiler CPU in the cold build {built[C_CPU]:.2f} s (median)"
    return text


def _goals(models, builds, median) -> list[str]:
    """Issue 14's goals against symengine, per n, as ratios of medians (below 1: ahead):
    generated C's one-point calls and 10⁴ states (1 thread), its cold build (goal ≤ 5
    at 6 links) and the NumPy backend's build (goal ≤ 1)."""
    def over(a, b):
        return f"{a / b:.2f}" if a and b else "–"
    parts = []
    for n in models:
        se_point, se_batch = median(n, SYMENGINE, "1", "point"), median(n, SYMENGINE, "1", "batch")
        se_build = builds[n].get(SYMENGINE)
        se_build = Timing.of(se_build).median if se_build else None
        cold, numpy = builds[n].get(C_COLD), builds[n].get(NP_CALL)
        parts.append(f"n = {n}: one point J(**inputs) {over(median(n, C_CALL, '1', 'point'), se_point)}, "
                     f"J.at {over(median(n, C_AT, '1', 'point'), se_point)}; states "
                     f"{over(median(n, C_CALL, '1', 'batch'), se_batch)}; cold build "
                     f"{over(cold and Timing.of(cold).median, se_build)}; NumPy build "
                     f"{over(numpy and Timing.of(numpy).median, se_build)}")
    return ["issue 14, generated C / symengine (goals: below 1 for the calls, cold build ≤ 5 at n = 6, "
            "NumPy build ≤ 1): " + "; ".join(parts)] if parts else []


def _worse(a: Optional[float], b: float) -> float:
    """The larger error; NaN (a failed comparison) wins over every number."""
    if a is None:
        return b
    return float("nan") if math.isnan(a) or math.isnan(b) else max(a, b)


def result(models, builds, whys, info, cands, timings, errors, threads, repeat, points,
           build_rounds, targets, jax_info, jax_cpus) -> SuiteResult:
    """The suite's SuiteResult: one row per (n, label, threads) in ORDER, with the
    build time, the one-point and batch times, their ratios to REFERENCE and the
    largest error against the exact Jacobian; the notes and the legend."""
    # rows: (n, label, threads) in ORDER; each holds a point and/or a batch candidate
    rows: dict = {}
    for n, c, kind in cands:
        rows.setdefault((n, c.label, c.threads), {})[kind] = c
    for n in models:
        rows.setdefault((n, C_COLD, "1"), {})
        for label in builds[n]:
            rows.setdefault((n, label, "1"), {})
    keyed = sorted(rows, key=lambda k: (k[0], ORDER.index(k[1]), int(k[2])))

    def median(n, label, thr, kind):
        c = rows.get((n, label, thr), {}).get(kind)
        return timings[id(c)].median if c is not None and id(c) in timings else None

    records, table, bars, loud, overhead = [], [], [], [], []
    for n, label, thr in keyed:
        got = rows[n, label, thr]
        rec = {"n": n, "outputs": models[n].shape[0], "states": models[n].shape[1],
               "implementation": label, "threads": thr, "missing": ""}
        build = builds[n].get(label) if thr == "1" else None
        if build:
            rec["build"] = Timing.of(build).as_dict()
        missing = [c.missing for c in got.values() if c.missing]
        if len(missing) == len(got) and not build:  # nothing of this row ran
            rec["missing"] = missing[0] if missing else whys[n].get(label, "not run")
            records.append(rec)
            table.append([str(n), label, thr, rec["missing"]])
            continue
        cells = [str(n), label, thr, f"{Timing.of(build).median:.3f}" if build else "–"]
        worst = None
        for kind, unit in (("point", us), ("batch", ms)):
            c = got.get(kind)
            if c is None or id(c) not in timings:
                cells += ["–", "–"] if kind == "point" else ["–", "–", "–"]
                continue
            t = timings[id(c)]
            ref = median(n, REFERENCE, thr, kind)
            r = t.median / ref if ref else None
            rec[kind] = {"time": t.as_dict(), "ratio_to_reference": r,
                         "max_rel_error": errors[id(c)]}
            worst = _worse(worst, errors[id(c)])
            cells += [unit(t.median), ratio(r)] if kind == "point" else [unit(t.median), span(t), ratio(r)]
            if r and label != REFERENCE:
                bars.append((f"n={n} {'1 point' if kind == 'point' else f'{points:,} states'}: "
                             f"{label} ({thr} thr)", r))
        bad = worst is not None and not worst <= TOL
        cells.append("–" if worst is None else err(worst) + (" MISMATCH" if bad else ""))
        if bad:
            loud.append(f"MISMATCH: n = {n}, {label} ({thr} thr): max rel err {err(worst)} > {TOL:g} "
                        "against SymPy's exact Jacobian")
        rec["max_rel_error"] = worst
        records.append(rec)
        table.append(cells)
        if label == C_CALL and got.get("batch") is not None:
            call = median(n, C_CALL, thr, "batch")
            kernel, fresh = median(n, C_BARE, thr, "batch"), median(n, C_BARE_NEW, thr, "batch")
            into = median(n, C_OUT, thr, "batch")
            if call and kernel:
                rec["call_over_kernel"] = call / kernel
                rec["call_over_kernel_new_outputs"] = call / fresh if fresh else None
                rec["out_call_over_kernel"] = into / kernel if into else None
                overhead.append(f"n = {n}, {thr} thr: {call / kernel:.2f}"
                                + (f" ({call / fresh:.2f} against the kernel writing new outputs)"
                                   if fresh else "")
                                + (f"; with out= {into / kernel:.2f}" if into else ""))
    cold6 = builds.get(6, {}).get(C_COLD)
    notes = [
        *loud,
        "the n-link pendulum on a cart (sympy.physics.mechanics, Kane's method): kane.forcing "
        "(n + 1 outputs) and its Jacobian with respect to all 2(n + 1) states q0…qn, u0…un; "
        "parameters substituted (l = 1/n, m = 1/(100 n), g = 9.81, f = 1/2)",
        *(info[n] for n in models),
        f"build: median of {build_rounds} interleaved round(s), in seconds (a build under "
        f"{CHEAP_BUILD:g} s runs up to {CHEAP_REPEATS + 1} times a round, each a sample); calls: median of "
        f"{repeat} interleaved rounds after a warm-up, each round a batch of calls filling "
        f"~{1e3 * targets[0]:g} ms (one point) or ~{1e3 * targets[1]:g} ms ({points:,} states); "
        "the machine is shared, so only medians of interleaved rounds are comparable",
        "threads: one point, every row 1 thread; {:,} states: generated C at each of {} thread(s) "
        "(compile_jacobian(threads=t), the kernel's OpenMP loop; J.function is given the same t), "
        "CasADi map 'serial' (1) or 'thread' (t); generated NumPy, SymPy's NumPy code and "
        "symengine's LLVM code on 1 thread; JAX in a worker pinned to {} CPU"
        .format(points, ", ".join(map(str, threads)), jax_cpus),
        f"symengine {version('symengine')}, CasADi {version('casadi')}; {jax_info}",
    ]
    if overhead:
        notes.append("call layer, issue 13 (goal ≤ 1.2): J(**inputs) / J.function over "
                     f"{points:,} states: " + "; ".join(overhead))
    if cold6:
        notes.append(f"issue 14 (goal ≤ 0.5 s): the 6-link Jacobian built cold in C in "
                     f"{Timing.of(cold6).median:.2f} s (median)")
    notes += _goals(models, builds, median)
    legend = [
        f"build s: SymPy expressions -> callable (values and Jacobian). {C_COLD}: compile_jacobian "
        f"with a fresh, empty EXPRCOMPILER_CACHE (C compiler included); {C_CALL}: the same call "
        "again (warm: found in the cache, already loaded); NumPy: compile_jacobian(backend='numpy'); "
        "SymPy: Matrix.jacobian + lambdify(cse=True); symengine: sympify + jacobian + "
        "Lambdify(llvm, cse=True); CasADi: lambdify onto SX + jacobian + Function; JAX: lambdify "
        "to jax.numpy + jit(jacfwd) trace + XLA compile (its first call, one round)",
        "1 point µs: one call with one state (floats; one array for J.at, symengine, CasADi, "
        f"JAX), to its results as NumPy arrays / Python floats; {points:,} states ms: one call on "
        "arrays of every state; min–max of the latter",
        f"×: that time / {REFERENCE}'s at the same thread count (above 1: slower)",
        f"{C_OUT}: the call with out= arrays made once (what {C_BARE} does); "
        f"{C_BARE}: the generated C function alone, cffi pointers made once, outputs into one "
        "block reused by every call; '…, new outputs': the same with a new np.empty block each "
        "call, as the call layer must allocate the arrays it returns (first-touch page faults "
        "included)",
        "each row stops at its own natural result: exprcompiler (values (N, m), Jacobian "
        "(N, m, n)); SymPy a list of m + m·n arrays (constant entries as numbers); symengine "
        "(N, m + m·n); CasADi a DM, converted with .full(); JAX a device array, np.asarray",
        f"max rel err: largest |result − exact| / max(1, |exact|) over the values and the "
        f"Jacobian, at the first state (one point) and the first {CHECKS} states (batch); "
        "exact: SymPy's Matrix.jacobian lambdified without cse to the math module",
    ]
    return SuiteResult("mechanics", notes,
                       ["n", "implementation", "thr", "build s", "1 point µs", "×",
                        f"{points:,} states ms", "min–max", "×", "max rel err"],
                       table, records, legend, bars)
