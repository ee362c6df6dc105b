"""C backend for tensor traces, the softmax family's ops: softmax, log_softmax and the
internal ops of their derivatives and of a vector's log_softmax(x)[k]
(tensor_rules_softmax: log_softmax_vjp, log_softmax_jvp, log_softmax_at_parts,
log_softmax_at, log_softmax_at_vjp, log_softmax_at_jvp).

Where it sits: beside c_tensor_ops (the other ops' emitters; its EMITTERS table holds
these too), written with c_tensor_loops' primitives. Each emitter gets the loops being
written, the instruction, its arguments' views and its destination. Along the innermost
axis each slice is a row, its scalars held in locals (a temporary read inside the loop
kept gcc from vectorizing it); along another axis, loops over the whole argument.
"""

from __future__ import annotations

from .c_tensor_loops import SIMD, Loops, View, at, elements, read, wrap_loop


def emit_softmax(e: Loops, ins, args, dst: View) -> None:
    """exp(x - max) / sum(exp(x - max)) along the axis, as runtime.softmax."""
    x, = args
    a = ins.attr("axis")
    e.libm.add("exp")
    m = e.temp([1 if k == a else d for k, d in enumerate(x.shape)])
    e.reduce("max", x.shape, elements(x), (a,), m)
    if a == len(x.shape) - 1:
        _softmax_rows(e, x, dst, m)
        return
    e.assign(dst, lambda rd: f"exp({rd(x)} - {rd(m)})")
    e.reduce("+", x.shape, elements(dst), (a,), m)  # the maxima are no longer needed
    e.assign(dst, lambda rd: f"{rd(dst)} / {rd(m)}")


def _each_row(e: Loops, x: View, row) -> None:
    """row(idx)'s lines for each slice of x along its innermost axis (idx: the leading
    indices), in a block of its own where x is a vector (its locals scoped there)."""
    lead = x.shape[:-1]
    e.emit(e.nest(lead, row, "") if lead else ["{", *("    " + ln for ln in row([])), "}"])


def _softmax_rows(e: Loops, x: View, dst: View, m: View) -> None:
    """emit_softmax along the innermost axis, each slice a row, its maximum m held in a
    local: read from the temporary inside the exp loop, it kept gcc from vectorizing
    that loop ("latch block not empty"), so exp ran on scalar glibc (softmax of 10^5
    elements, one thread: 399 us, where logsumexp's vectorized loop took 110). The sum
    is the same loop over the same terms as before; exp is libmvec's (within its ulp of
    glibc's, as in every other vectorized loop here)."""
    n = e.dim_c(x.shape[-1])
    cm, total = e.fresh("sm_c"), e.fresh("sm_sum")

    def row(idx):
        def el(j):
            return read(x, x.shape, idx + [j])

        def out(j):
            return at(dst, idx + [j])
        return [f"const double {cm} = {read(m, x.shape, idx + ['0'])};",
                *wrap_loop("j", n, [f"{out('j')} = exp({el('j')} - {cm});"], SIMD),
                f"double {total} = 0.0;",
                *wrap_loop("j", n, [f"{total} += {out('j')};"], f"{SIMD} reduction(+:{total})"),
                *wrap_loop("j", n, [f"{out('j')} = {out('j')} / {total};"], SIMD)]
    _each_row(e, x, row)


def emit_log_softmax(e: Loops, ins, args, dst: View) -> None:
    """(x - c) - log1p(T) along the axis, c the maximum, T the sum of exp(x - c) over
    the others, as runtime.log_softmax: where one element attains c, its x - c and its
    term of T are 0 (single +inf: 0 there, the limit); at ties each keeps its own and T
    is their sum less 1 (exactly: at least 2). Along the innermost axis,
    _log_softmax_rows; along another, four passes over the argument: the maximum, how
    many attain it, T, the result (per slice 1 where it is attained once, then
    log1p(T)), each vectorized across the slices, as they were."""
    x, = args
    a = ins.attr("axis")
    e.libm.add("exp")
    e.helpers.add("xc_log1p")
    kept = [1 if k == a else d for k, d in enumerate(x.shape)]
    if a == len(x.shape) - 1:
        return _log_softmax_rows(e, x, dst, kept)
    c, once = e.temp(kept, "lsm_max"), e.temp(kept, "lsm_once")
    e.reduce("max", x.shape, elements(x), (a,), c)
    e.reduce("+", x.shape, lambda idx: f"({read(x, x.shape, idx)} == {read(c, x.shape, idx)})", (a,), once)
    e.assign(once, lambda rd: f"({rd(once)} == 1.0)")

    def alone(idx) -> str:   # x here is the slice's maximum, attained here only
        return f"({read(x, x.shape, idx)} == {read(c, x.shape, idx)}) & ({read(once, x.shape, idx)} != 0.0)"
    t = e.temp(kept, "lsm_log1p")
    e.reduce("+", x.shape, lambda idx: f"({alone(idx)}) ? 0.0 : exp({read(x, x.shape, idx)} - "
                                       f"{read(c, x.shape, idx)})", (a,), t)
    e.assign(t, lambda rd: f"xc_log1p({rd(t)} + ({rd(once)} - 1.0))")
    e.emit(e.nest(dst.shape, lambda idx: [
        f"{at(dst, idx)} = (({alone(idx)}) ? 0.0 : {read(x, x.shape, idx)} - {read(c, x.shape, idx)})"
        f" - {read(t, x.shape, idx)};"]))


def _log_softmax_rows(e: Loops, x: View, dst: View, kept) -> None:
    """emit_log_softmax along the innermost axis, each slice a row: the maximum
    (vectorized: Loops.extreme_row), then one loop for T and for how many attain the
    maximum, then the result. The loops of T and of the result select by a bit mask
    (xc_select), where a branch kept the result's loop scalar (gcc vectorizes no loop
    with a branch and a libm call, and this one not even without the call). T has the
    old kernel's bits: the sum of the same terms in the same vectorized loop, 0 at the
    single maximum; where it is not single (ties, NaN) a second loop sums exp(x - c)
    over all, as the old kernel did there, less 1. Three passes where there were four,
    the rows' scalars held in locals (a temporary read in the loop kept gcc from
    vectorizing softmax's)."""
    e.helpers.add("xc_select")
    c = e.temp(kept, "lsm_max")
    e.reduce("max", x.shape, elements(x), (len(x.shape) - 1,), c)
    n = e.dim_c(x.shape[-1])
    cm, tt, kk, cq, lg = (e.fresh(s) for s in ("lsm_c", "lsm_t", "lsm_k", "lsm_cq", "lsm_log1p"))

    def row(idx):
        def el(j):
            return read(x, x.shape, idx + [j])
        return [f"const double {cm} = {read(c, x.shape, idx + ['0'])};",
                f"double {tt} = 0.0, {kk} = 0.0;",
                *wrap_loop("j", n, [f"{tt} += xc_select({el('j')} == {cm}, 0.0, exp({el('j')} - {cm}));",
                                    f"{kk} += ({el('j')} == {cm});"], f"{SIMD} reduction(+:{tt}, {kk})"),
                f"if ({kk} != 1.0) {{   /* ties or NaN: every term, then less 1 */",
                f"    {tt} = 0.0;",
                *("    " + ln for ln in wrap_loop("j", n, [f"{tt} += exp({el('j')} - {cm});"],
                                                    f"{SIMD} reduction(+:{tt})")),
                "}",
                f"const double {lg} = xc_log1p({tt} + (({kk} == 1.0) - 1.0));",
                f"const double {cq} = {kk} == 1.0 ? {cm} : NAN;   /* the single maximum, else none */",
                *wrap_loop("j", n, [f"{at(dst, idx + ['j'])} = xc_select({el('j')} == {cq}, 0.0, "
                                    f"{el('j')} - {cm}) - {lg};"], SIMD)]
    _each_row(e, x, row)


def _prologue(e: Loops, ins, x: View, dst: View, prefix: str, names: tuple):
    """What log_softmax's adjoint and tangent ops share (emit_log_softmax_vjp, _jvp): the
    axis a, and the maxima c along it; along an axis other than the innermost also the
    temporaries `names` (the first the sums S, summed here) with exp(x - c) in dst, which
    each op then divides by S (_normalize) where it needs s; None for them along the
    innermost axis, whose rows the ops write themselves (one generator, so that the two
    do not drift apart: a copied prologue once carried a wrong index)."""
    a = ins.attr("axis")
    e.libm.add("exp")
    e.helpers |= {"xc_select", "xc_relu"}
    kept = [1 if k == a else d for k, d in enumerate(x.shape)]
    c = e.temp(kept, f"{prefix}_max")
    e.reduce("max", x.shape, elements(x), (a,), c)
    if a == len(x.shape) - 1:
        return a, c, None
    e.assign(dst, lambda rd: f"exp({rd(x)} - {rd(c)})")
    temps = [e.temp(kept, f"{prefix}_{name}") for name in names]
    e.reduce("+", x.shape, elements(dst), (a,), temps[0])
    return a, c, temps


def _normalize(e: Loops, dst: View, total: View, o: View) -> None:
    """dst = s = exp(x - c)/S in place, its limit relu(o + 1) where S is NaN."""
    e.assign(dst, lambda rd: f"({rd(total)} == {rd(total)}) ? {rd(dst)} / {rd(total)} : xc_relu({rd(o)} + 1.0)")


def _rows(e: Loops, x: View, o: View, dst: View, c: View, stem: str, sums, tail) -> None:
    """The rows of log_softmax's adjoint and tangent ops along the innermost axis
    (emit_log_softmax_vjp, _jvp; one generator, so that the two do not drift apart):
    each row's maximum in a local, one loop for e = exp(x - c) (kept in dst), its sum S
    and the op's own sums, where S is NaN s's limit relu(o + 1) in dst (S then 1), then
    tail(el, out, S)'s lines. `sums`: (name, term, of_e) each,
    name += term(el, v) in the exp loop with v = e_j, and where of_e again with v the
    limit (el(v) reads v's element j of the row; out is dst's)."""
    n = e.dim_c(x.shape[-1])
    cm, S, ej = (e.fresh(f"{stem}_{v}") for v in ("c", "sum", "e"))

    def row(idx):
        def el(v, j="j"):
            return read(v, x.shape, idx + [j])
        out = at(dst, idx + ["j"])
        names = [S] + [name for name, _, _ in sums]
        again = [(name, term) for name, term, of_e in sums if of_e]
        return [f"const double {cm} = {read(c, x.shape, idx + ['0'])};",
                f"double {' = 0.0, '.join(names)} = 0.0;",
                *wrap_loop("j", n, [f"const double {ej} = exp({el(x)} - {cm});", f"{out} = {ej};",
                                    f"{S} += {ej};", *(f"{name} += {term(el, ej)};" for name, term, _ in sums)],
                           f"{SIMD} reduction(+:{', '.join(names)})"),
                f"if ({S} != {S}) {{   /* every s NaN: their limit, relu(o + 1) */",
                *(f"    {name} = 0.0;" for name, _ in again),
                *("    " + ln for ln in wrap_loop("j", n, [f"{out} = xc_relu({el(o)} + 1.0);",
                                                           *(f"{name} += {term(el, out)};" for name, term in again)])),
                f"    {S} = 1.0;",
                "}",
                *tail(el, out, S)]
    _each_row(e, x, row)


def emit_log_softmax_vjp(e: Loops, ins, args, dst: View) -> None:
    """runtime.log_softmax_vjp: a = g - s·G, s = exp(x - c)/S, G = sum(g), c the
    maximum, S the sum of exp(x - c); s from its limit relu(o + 1) where S is NaN; where
    some s exceeds 1/2 (S < 2, or that limit), those elements minus the sum of the
    others' a. Along the innermost axis: the maximum, one loop for exp(x - c) (kept in
    dst), S and G, one for the result (two where S < 2); along another axis the same
    steps as loops over the whole argument."""
    x, o, g = args
    a, c, temps = _prologue(e, ins, x, dst, "lsv", ("sum", "g", "others"))
    if temps is not None:
        total, gsum, others = temps
        e.reduce("+", x.shape, elements(g), (a,), gsum)
        _normalize(e, dst, total, o)

        def adj(idx) -> str:
            s = read(dst, x.shape, idx)
            return f"{read(g, x.shape, idx)} - {s} * {read(gsum, x.shape, idx)}"
        e.reduce("+", x.shape, lambda idx: f"xc_select({read(dst, x.shape, idx)} > 0.5, 0.0, {adj(idx)})", (a,), others)
        e.emit(e.nest(dst.shape, lambda idx: [
            f"{at(dst, idx)} = xc_select({at(dst, idx)} > 0.5, -{read(others, x.shape, idx)}, {adj(idx)});"]))
        return
    n = e.dim_c(x.shape[-1])
    G, A, sj, half = (e.fresh(t) for t in ("lsv_g", "lsv_others", "lsv_q", "lsv_half"))

    def tail(el, out, S):
        return [f"const double {sj} = {G} / {S};   /* s·G as e·(G/S): no division an element */",
                f"if ({S} < 2.0) {{   /* an s may exceed 1/2 (each is at most 1/S) */",
                f"    const double {half} = 0.5 * {S};   /* s > 1/2 as e > S/2 (S/2 exact) */",
                f"    double {A} = 0.0;",
                *("    " + ln for ln in wrap_loop("j", n, [
                    f"{A} += xc_select({out} > {half}, 0.0, {el(g)} - {out} * {sj});"], f"{SIMD} reduction(+:{A})")),
                *("    " + ln for ln in wrap_loop("j", n, [
                    f"{out} = xc_select({out} > {half}, -{A}, {el(g)} - {out} * {sj});"], SIMD)),
                "} else {",
                *("    " + ln for ln in wrap_loop("j", n, [f"{out} = {el(g)} - {out} * {sj};"], SIMD)),
                "}"]
    _rows(e, x, o, dst, c, "lsv", [(G, lambda el, v: el(g), False)], tail)


def emit_log_softmax_jvp(e: Loops, ins, args, dst: View) -> None:
    """runtime.log_softmax_jvp: F = d - sum(s·d), d = t - t_top where some s exceeds 1/2
    (S < 2), else t; s = exp(x - c)/S, its limit relu(o + 1) where S is NaN. Along the
    innermost axis: the maximum, one loop for e = exp(x - c) (kept in dst), S and
    sum(e·t), one for the result (three where S < 2: t_top, then sum(e·d)); along
    another axis the same steps as loops over the whole argument, s kept in dst."""
    x, o, t = args
    a, c, temps = _prologue(e, ins, x, dst, "lsj", ("sum", "top", "dot"))
    if temps is not None:
        total, top, dot = temps
        _normalize(e, dst, total, o)
        e.reduce("+", x.shape, lambda idx: f"xc_select({read(dst, x.shape, idx)} > 0.5, {read(t, x.shape, idx)}, 0.0)",
                 (a,), top)

        def d(idx) -> str:
            return f"({read(t, x.shape, idx)} - {read(top, x.shape, idx)})"
        e.reduce("+", x.shape, lambda idx: f"{read(dst, x.shape, idx)} * {d(idx)}", (a,), dot)
        e.emit(e.nest(dst.shape, lambda idx: [f"{at(dst, idx)} = {d(idx)} - {read(dot, x.shape, idx)};"]))
        return
    n = e.dim_c(x.shape[-1])
    D, tp, half = (e.fresh(v) for v in ("lsj_dot", "lsj_top", "lsj_half"))

    def tail(el, out, S):
        return [f"double {tp} = 0.0;",
                f"if ({S} < 2.0) {{   /* an s may exceed 1/2 (each is at most 1/S): d = t - t_top */",
                f"    const double {half} = 0.5 * {S};   /* s > 1/2 as e > S/2 (S/2 exact) */",
                *("    " + ln for ln in wrap_loop("j", n, [f"{tp} += xc_select({out} > {half}, {el(t)}, 0.0);"],
                                                    f"{SIMD} reduction(+:{tp})")),
                f"    {D} = 0.0;",
                *("    " + ln for ln in wrap_loop("j", n, [f"{D} += {out} * ({el(t)} - {tp});"],
                                                    f"{SIMD} reduction(+:{D})")),
                "}",
                f"{D} = {D} / {S};",
                f"if (!({D} - {D} == 0.0)) {{   /* sum(e·d) overflowed (|d| ~ 1e308), or d holds an inf or NaN:",
                "    sum(s·d), s = e/S, as along another axis (runtime.log_softmax_jvp alike) */",
                f"    {D} = 0.0;",
                *("    " + ln for ln in wrap_loop("j", n, [f"{D} += ({out} / {S}) * ({el(t)} - {tp});"],
                                                    f"{SIMD} reduction(+:{D})")),
                "}",
                *wrap_loop("j", n, [f"{out} = ({el(t)} - {tp}) - {D};"], SIMD)]
    _rows(e, x, o, dst, c, "lsj", [(D, lambda el, v: f"{v} * {el(t)}", True)], tail)


def _picks(ins) -> list[str]:
    """The C indices of the vector elements the key picks (each >= 0:
    softmax_forms._vector_pick), in its order."""
    return [str(k) for k in ins.attr("key")]


def emit_log_softmax_at_parts(e: Loops, ins, args, dst: View) -> None:
    """runtime.log_softmax_at_parts on a vector: _log_softmax_rows' maximum and T, from
    the same terms in one loop that also keeps e = exp(x - c) in dst (at a single +inf,
    exp(inf - inf): then a pass sets its limit, 1; a select in the loop cost 5%); then
    dst·(1/S), S the sum of all of e (1 + T where the maximum is single), and each key's
    element set to log_softmax's value there (its bits)."""
    x, = args
    e.libm.add("exp")
    e.helpers |= {"xc_select", "xc_log1p"}
    c = e.temp([1], "lsp_max")
    e.reduce("max", x.shape, elements(x), (0,), c)
    n = e.dim_c(x.shape[0])
    cm, tt, kk, cq, lg, ej, r = (e.fresh(v) for v in ("lsp_c", "lsp_t", "lsp_k", "lsp_cq", "lsp_log1p", "lsp_e",
                                                      "lsp_recip"))

    def el(j):
        return at(x, [j])
    e.emit(["{", *("    " + ln for ln in [
        f"const double {cm} = {at(c, ['0'])};",
        f"double {tt} = 0.0, {kk} = 0.0;",
        *wrap_loop("j", n, [f"const double {ej} = exp({el('j')} - {cm});", f"{at(dst, ['j'])} = {ej};",
                            f"{tt} += xc_select({el('j')} == {cm}, 0.0, {ej});",
                            f"{kk} += ({el('j')} == {cm});"], f"{SIMD} reduction(+:{tt}, {kk})"),
        f"if ({kk} != 1.0) {{   /* ties or NaN: every term, then less 1 */",
        f"    {tt} = 0.0;",
        *("    " + ln for ln in wrap_loop("j", n, [f"{tt} += exp({el('j')} - {cm});"], f"{SIMD} reduction(+:{tt})")),
        "}",
        f"if ({cm} == INFINITY && {kk} == 1.0)   /* a single +inf: exp(inf - inf) there, its limit 1 */",
        *("    " + ln for ln in wrap_loop("j", n, [f"{at(dst, ['j'])} = xc_select({el('j')} == {cm}, 1.0, "
                                                    f"{at(dst, ['j'])});"], SIMD)),
        f"const double {lg} = xc_log1p({tt} + (({kk} == 1.0) - 1.0));",
        f"const double {cq} = {kk} == 1.0 ? {cm} : NAN;   /* the single maximum, else none */",
        f"const double {r} = 1.0 / ({tt} + ({kk} == 1.0));   /* (a division an element took 0.6 ns) */",
        *wrap_loop("j", n, [f"{at(dst, ['j'])} = {at(dst, ['j'])} * {r};"], SIMD),
        *(f"{at(dst, [k])} = xc_select({el(k)} == {cq}, 0.0, {el(k)} - {cm}) - {lg};" for k in _picks(ins))]),
        "}"])


def emit_log_softmax_at(e: Loops, ins, args, dst: View) -> None:
    """runtime.log_softmax_at: element k of log_softmax_at_parts (x is not read); the
    vector of them for several keys."""
    _, P = args
    ks = _picks(ins)
    if len(ks) == 1:
        e.emit([f"double {dst.text} = {at(P, ks)};"])
        return
    e.emit([f"{at(dst, [str(i)])} = {at(P, [k])};" for i, k in enumerate(ks)])


def _key_sum(g: View, count: int) -> str:
    """G, the sum of one adjoint (or tangent) per key, left to right (runtime's
    np.add.reduce of so few is that order)."""
    return " + ".join(at(g, [str(i)]) for i in range(count))


def emit_log_softmax_at_vjp(e: Loops, ins, args, dst: View) -> None:
    """runtime.log_softmax_at_vjp: 0 - G·s_j off the keys, at k 0 - g·expm1(v), v = P[k]
    the value, less (G - g)·exp(v) for several keys (one pass over P, then the keys)."""
    P, g = args
    ks = _picks(ins)
    e.libm.add("expm1")
    q = e.fresh("lsa_g")
    if len(ks) == 1:
        total, keys = read(g, (), []), [f"{at(dst, ks)} = 0.0 - {q} * expm1({at(P, ks)});"]
    else:
        e.libm.add("exp")
        total = _key_sum(g, len(ks))
        keys = [f"{at(dst, [k])} = (0.0 - {at(g, [str(i)])} * expm1({at(P, [k])})) - ({q} - {at(g, [str(i)])}) * "
                f"exp({at(P, [k])});" for i, k in enumerate(ks)]
    e.emit(["{", *("    " + ln for ln in [
        f"const double {q} = {total};",
        *wrap_loop("j", e.dim_c(P.shape[0]), [f"{at(dst, ['j'])} = 0.0 - {at(P, ['j'])} * {q};"], SIMD),
        *keys]), "}"])


def emit_log_softmax_at_jvp(e: Loops, ins, args, dst: View) -> None:
    """runtime.log_softmax_at_jvp: D = sum(P·t) over the elements off the keys (a loop
    per stretch between them, one pass in all), then at each key -expm1(v)·t_k - D, less
    the other keys' exp(v)·t for several."""
    P, t = args
    ks = [int(k) for k in _picks(ins)]
    e.libm.add("expm1")
    n = e.dim_c(P.shape[0])
    D = e.fresh("lsj_off")

    def tj(j):
        return read(t, P.shape, [j])
    lines, start = [f"double {D} = 0.0;"], "0"
    for k in ks + [None]:
        stop = n if k is None else str(k)
        if k is None or k > int(start):
            lines += wrap_loop("j", stop, [f"{D} += {at(P, ['j'])} * {tj('j')};"], f"{SIMD} reduction(+:{D})",
                               start=start)
        start = None if k is None else str(k + 1)
    if len(ks) == 1:
        k = str(ks[0])
        e.emit(lines)   # (at function scope: dst, a number, is declared there)
        e.emit([f"double {dst.text} = (0.0 - expm1({at(P, [k])}) * {tj(k)}) - {D};"])
        return
    e.libm.add("exp")
    q = [e.fresh("lsj_q") for _ in ks]
    lines += [f"const double {qi} = exp({at(P, [str(k)])}) * {tj(str(k))};" for qi, k in zip(q, ks)]
    qsum = " + ".join(q)
    lines += [f"{at(dst, [str(i)])} = (0.0 - expm1({at(P, [str(k)])}) * {tj(str(k))}) - ({D} + (({qsum}) - {qi}));"
              for i, (k, qi) in enumerate(zip(ks, q))]
    e.emit(["{", *("    " + ln for ln in lines), "}"])


SOFTMAX_EMITTERS = {
    "softmax": emit_softmax, "log_softmax": emit_log_softmax, "log_softmax_vjp": emit_log_softmax_vjp,
    "log_softmax_jvp": emit_log_softmax_jvp, "log_softmax_at_parts": emit_log_softmax_at_parts,
    "log_softmax_at": emit_log_softmax_at, "log_softmax_at_vjp": emit_log_softmax_at_vjp,
    "log_softmax_at_jvp": emit_log_softmax_at_jvp,
}
