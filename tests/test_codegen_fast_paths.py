"""The NumPy code generator's fast paths give what their general forms give.

trace/render.Renderer spells the commonest ops (an infix operator on two operands, a
call of one, a prefix operator, a copy) in its loop instead of through format_op, and
can build each line whole (rhs_all="    "); backends/naming.assign_names, given the
use counts, decides most reuses of a name without last_reads' scan of every argument.
Each is checked against the general form on random programs and their derivatives
(tangents, adjoints, Hessians: labels with tags), and against the name assignment as
it was written before the fast paths (_reference_names, kept here as the oracle, with
last_reads as it was written in Python, _reference_last_reads).
"""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exprcompiler import passes, to_trace
from exprcompiler.backends import name_reads, numpy_backend
from exprcompiler.backends.name_reads import last_reads
from exprcompiler.backends.naming import assign_names, identifier, preferred_name
from exprcompiler.randexpr import random_program
from exprcompiler.trace.ir import Instr, Label, Trace
from exprcompiler.trace.render import Renderer, format_op, named_vars, use_counts, use_counts_and_reads

NO_LABEL = (None, -1, None, None)


def _traces():
    for seed in range(6):
        primal = to_trace(random_program(40, n_vars=4, seed=seed))
        yield f"value-{seed}", primal
        yield f"grad-{seed}", passes.grad_reverse(primal)
        yield f"jvp-{seed}", passes.jvp(primal)
        if seed < 2:
            yield f"hessian-{seed}", passes.hessian(primal)
    # an adjoint whose previous version is read by a statement other than the one that
    # rebinds it (a copy), by an inlined temporary, and after the rebinding
    yield "reads", passes.grad_reverse(to_trace("a = sin(x) * y; b = a * a + x; c = exp(-b) + a * y; c * b + a"))
    yield "sums", passes.grad_reverse(to_trace("x * x * x + x ** 3 + x ** 2 * y + sin(x) * cos(x) * x"))


def _made(kind: str):
    """Traces made by hand where one label's variable comes again (a v̄_5 rebound) and
    its previous version is read by another statement: before the rebinding ("copy": the
    name is reused), by an inlined temporary whose statement comes after it ("inlined":
    not reused), or, for each of three, only as an output, each scan going over the whole
    trace ("budget": the scans' budget runs out, last_reads decides the rest)."""
    x = Instr("input", (), (("name", "x"),))
    sin, cos = Instr("sin", (0,)), Instr("cos", (0,))
    bar5 = Label("bar", 5)
    if kind == "copy":
        instrs = [x, sin, Instr("copy", (1,)), cos]
        labels = [Label("v", 0, "x"), bar5, Label("v", 7), bar5]
        return Trace(instrs, labels, [("a", 2), ("b", 3)])
    if kind == "inlined":
        instrs = [x, sin, Instr("mul", (1, 0)), cos, Instr("add", (2, 3))]
        labels = [Label("v", 0, "x"), bar5, None, bar5, Label("v", 9)]
        return Trace(instrs, labels, [("a", 4)])
    if kind == "inlined-before":   # the inlined reader's statement (exp) comes before the rebinding: reused
        instrs = [x, sin, Instr("mul", (1, 0)), Instr("neg", (2,)), Instr("exp", (3,)), Instr("add", (1, 0))]
        labels = [Label("v", 0, "x"), bar5, None, None, Label("v", 9), bar5]
        return Trace(instrs, labels, [("a", 4), ("b", 5)])
    instrs, labels = [x], [Label("v", 0, "x")]
    for k in range(3):
        instrs.append(Instr("sin", (0,)))
        labels.append(Label("bar", k + 1))
    for k in range(20):
        instrs.append(Instr("exp", (len(instrs) - 1,)))
        labels.append(Label("v", k + 10))
    for k in range(3):
        instrs.append(Instr("cos", (k + 1,)))
        labels.append(Label("bar", k + 1))
    return Trace(instrs, labels, [(f"o{k}", k + 1) for k in range(3)] + [("z", len(instrs) - 1)])


TRACES = list(_traces()) + [(kind, _made(kind)) for kind in ("copy", "inlined", "inlined-before", "budget")]


def _reference_last_reads(trace, named):
    """name_reads.last_reads as it was written in Python, before NumPy: each variable's last
    consumer, an inlined variable's statement that of its consumer (n: none)."""
    instrs = trace.instrs
    n = len(instrs)
    consumer = [n] * n
    for i, ins in enumerate(instrs):
        for a in ins.args:
            consumer[a] = i
    pos = list(range(n))
    inlined = [i for i, ins in enumerate(instrs) if not named[i] and ins.op != "const"]
    for i in reversed(inlined):
        c = consumer[i]
        pos[i] = pos[c] if c < n else n
    pos.append(-1)
    last_read = [pos[c] for c in consumer]
    for i in inlined:
        for a in instrs[i].args:
            last_read[a] = max(last_read[a], pos[i])
    for _, v in trace.outputs:
        last_read[v] = n + 1
    return last_read


def _reference_names(trace, named, reserved):
    """assign_names as written before its fast paths: every candidate reuse decided from
    last_reads (what each variable's last reading statement is)."""
    instrs, labels = trace.instrs, trace.labels
    last_read = _reference_last_reads(trace, named)
    names = [None] * len(instrs)
    holder = {}
    temps = 0
    for i, label in enumerate(labels):
        if not named[i]:
            continue
        is_input = instrs[i].op == "input"
        pref = preferred_name(label, reserved, is_input)
        if is_input and pref is None:
            pref = identifier(instrs[i].name, reserved)
        if pref is None:
            temps += 1
            pref = f"t{temps}"
        name, k = pref, 0
        while name in holder or name in reserved:
            prev = holder.get(name)
            if prev is not None and instrs[prev].op != "input" and labels[prev] == label \
                    and last_read[prev] <= i:
                break
            k += 1
            name = f"{pref}_{k}"
        holder[name] = i
        names[i] = name
    return names


@pytest.mark.parametrize("what, trace", TRACES, ids=[w for w, _ in TRACES])
@pytest.mark.parametrize("reserved", [numpy_backend.RESERVED | {"f"}, {"v3", "v2_bar", "v1_bar_1", "x1"}],
                         ids=["backend", "numbered"])
def test_names_as_before(what, trace, reserved):
    uses = use_counts(trace)
    named = named_vars(trace, uses)
    want = _reference_names(trace, named, reserved)
    assert assign_names(trace, named, reserved, uses) == want
    assert assign_names(trace, named, reserved) == want   # (no use counts: last_reads decides)
    counts, reads = use_counts_and_reads(trace)   # (as generate gives them)
    assert counts.tolist() == uses
    assert assign_names(trace, named, reserved, uses, None, reads) == want


@pytest.mark.parametrize("what, trace", TRACES, ids=[w for w, _ in TRACES])
def test_last_reads_as_before(what, trace):
    """last_reads (NumPy) gives what its Python loops gave, for the renderer's `named`,
    for every variable named, and with every third one inlined."""
    for named in (named_vars(trace), [True] * len(trace.instrs),
                  [ins.op != "const" and i % 3 != 1 for i, ins in enumerate(trace.instrs)]):
        assert last_reads(trace, named).tolist() == _reference_last_reads(trace, named)
        assert last_reads(trace, named, use_counts_and_reads(trace)[1]).tolist() \
            == _reference_last_reads(trace, named)


@pytest.mark.parametrize("kind, reused", [("copy", True), ("inlined", False), ("inlined-before", True)])
def test_inlined_readers_need_no_scan(monkeypatch, kind, reused):
    """A previous version read by an inlined temporary is reused or not as that
    temporary's statement comes before the rebinding or after it, found from the
    readers (the temporary's consumer looked up ahead), without last_reads."""
    trace = _made(kind)
    uses = use_counts(trace)
    named = named_vars(trace, uses)
    want = _reference_names(trace, named, set())
    monkeypatch.setattr(name_reads, "last_reads", _refuse)
    names = assign_names(trace, named, set(), uses)
    assert names == want
    assert (names.count("v5_bar") == 2) == reused


@pytest.mark.parametrize("given", [False, True])
def test_long_scans_give_way_to_last_reads(monkeypatch, given):
    """Where the readers are further apart than both scans' budgets (the instruction
    scans': a 64th of the trace's length, here without the 10⁴ instructions more; the
    flat scans': here none), the rest is decided by last_reads, once, from the
    arguments' flat array (the one given, or the one the flat scans made)."""
    monkeypatch.setattr(name_reads, "_SCANNED", 0)
    monkeypatch.setattr(name_reads, "_FLAT_SCANS", 0)
    trace = _made("budget")
    counts, reads = use_counts_and_reads(trace)
    uses = counts.tolist()
    named = named_vars(trace, uses)
    calls = []
    monkeypatch.setattr(name_reads, "last_reads", lambda *a: calls.append(a) or last_reads(*a))
    assert assign_names(trace, named, set(), uses, None, reads if given else None) \
        == _reference_names(trace, named, set())
    assert len(calls) == 1 and (calls[0][2] is reads if given else calls[0][2].tolist() == reads.tolist())


@pytest.mark.parametrize("what, trace", [(w, t) for w, t in TRACES if not w.startswith("value")] + [
    ("x*x", passes.grad_reverse(to_trace("a = x * x; b = a * a + a; sin(b) * a + b * x")))],
    ids=[w for w, _ in TRACES if not w.startswith("value")] + ["x*x"])
@pytest.mark.parametrize("given", [False, True])
def test_flat_scans_decide_without_last_reads(monkeypatch, what, trace, given):
    """With no budget for the instruction scans, the flat scans (readers found in the
    arguments' flat array, given or made) decide every question the use counts leave,
    inlined readers and readers of an argument twice (x * x) too, without last_reads,
    and give the oracle's names."""
    monkeypatch.setattr(name_reads, "_SCANNED", 0)
    counts, reads = use_counts_and_reads(trace)
    uses = counts.tolist()
    asked = []
    monkeypatch.setattr(name_reads.LastRead, "_flat_readers", _recording(name_reads.LastRead._flat_readers, asked))
    for named in (named_vars(trace, uses),
                  [ins.op != "const" and (i % 3 != 1 or ins.op == "input") for i, ins in enumerate(trace.instrs)]):
        want = _reference_names(trace, named, set())
        monkeypatch.setattr(name_reads, "last_reads", _refuse)
        assert assign_names(trace, named, set(), uses, None, reads if given else None) == want
    if what in ("inlined", "inlined-before", "budget"):
        assert asked   # (these ask questions that need readers)


def test_a_spent_budget_stops_the_flat_search_for_a_statement():
    """An inlined reader's statement is looked for no further once the budget is spent
    (the flat scans charge theirs slice by slice, so it can end below zero): None, for
    last_reads to decide."""
    trace = _made("inlined")
    counts, reads = use_counts_and_reads(trace)
    uses = counts.tolist()
    named = named_vars(trace, uses)
    assert not named[2]   # (the mul, inlined into the add)
    last = name_reads.LastRead(trace, named, uses, reads)
    last._flat()
    assert last._statement(2) == 4
    last.budget = -100
    assert last._statement(2) is None


@pytest.mark.parametrize("reserved", [set(), {"v3", "v7_bar", f"v{10 ** 12}", "v2_bar_1"}])
def test_indices_out_of_the_lists_are_held_by_text(reserved):
    """Labels whose index the per-kind lists do not hold (past the trace's length, not
    an int, negative) and reserved names of v12's form past it get the oracle's names,
    reuses included."""
    x = Instr("input", (), (("name", "x"),))
    big = 10 ** 12
    instrs, labels = [x], [Label("v", 0, "x")]
    for index in (big, 2.5, -3, 3, 7, big, 2.5, -3, 3, 7):   # (each twice: the second reads the first)
        instrs.append(Instr("sin", (len(instrs) - 1,)))
        labels.append(Label("bar", index) if index != 3 else Label("v", index))
    trace = Trace(instrs, labels, [("z", len(instrs) - 1)])
    uses = use_counts(trace)
    named = named_vars(trace, uses)
    want = _reference_names(trace, named, reserved)
    assert assign_names(trace, named, reserved, uses) == want
    assert f"v{big}_bar" in want and "v2.5_bar" in want


def _recording(method, calls):
    def recorded(self, *args):
        calls.append(args)
        return method(self, *args)
    return recorded


@pytest.mark.parametrize("slice_", [1, 3, 4096])
def test_flat_readers_are_the_instruction_readers(monkeypatch, slice_):
    """LastRead's two ways of finding readers give the same instructions, in order,
    once each, over any range (slices of the flat array that cut an instruction's
    arguments anywhere, and one slice for all)."""
    monkeypatch.setattr(name_reads, "_FLAT_SLICE", slice_)
    trace = passes.grad_reverse(to_trace(random_program(400, n_vars=3, seed=11)))
    counts, reads = use_counts_and_reads(trace)
    uses = counts.tolist()
    named = named_vars(trace, uses)
    n = len(trace.instrs)
    assert any(len(set(ins.args)) < len(ins.args) for ins in trace.instrs)   # (an x * x)
    scans = name_reads.LastRead(trace, named, uses, reads)
    flat = name_reads.LastRead(trace, named, uses, reads)
    flat._flat()
    for v in range(0, n, 7):
        for start, stop in ((v + 1, n), (v + 1, min(n, v + 40)), (0, n)):
            assert list(flat._readers(v, start, stop)) == list(scans._readers(v, start, stop))


def _refuse(*args):
    raise AssertionError("last_reads called")


def test_accumulated_adjoints_need_no_scan(monkeypatch):
    """A gradient's names come from the use counts: last_reads, a scan of every argument
    of the trace (a third of assign_names' time at 10⁵ operations), is not called."""
    trace = passes.grad_reverse(to_trace(random_program(300, seed=7)))
    uses = use_counts(trace)
    named = named_vars(trace, uses)
    want = assign_names(trace, named, set())

    monkeypatch.setattr(name_reads, "last_reads", _refuse)
    assert assign_names(trace, named, set(), uses) == want


class _General(Renderer):
    """Renderer with every variable spelled by Renderer._format, i.e. format_op."""

    def _format(self, i):
        return Renderer._format(self, i)


@pytest.mark.parametrize("what, trace", TRACES, ids=[w for w, _ in TRACES])
def test_renderer_spells_as_format_op(what, trace):
    named = named_vars(trace)
    names = [f"n{i}" if k else None for i, k in enumerate(named)]
    spell = numpy_backend.SPELLING
    fast = Renderer(trace, spell, names.__getitem__, named=named, rhs_all=True)
    lines = Renderer(trace, spell, names.__getitem__, named=named, rhs_all="  ")
    general = _General(trace, spell, lambda i: names[i], named=named)
    for i, ins in enumerate(trace.instrs):
        assert fast.expr(i) == general.expr(i)
        if named[i] and ins.op != "input":
            want = format_op(general._generic(ins.op)[0], [general.expr(a) for a in ins.args], spell, ins.attrs)[0]
            assert fast.rhs_texts[i] == general.rhs(i) == fast.rhs(i) == want
            assert lines.rhs_texts[i] == f"  {names[i]} = {want}"
            assert lines.rhs(i) == want


def test_numbered_function_name_is_renamed():
    # a reserved name of a numbered label's form (the function's own) moves that label's variable
    source, params = numpy_backend.generate(passes.grad_reverse(to_trace("sin(x) * x + cos(x)")), func_name="v1")
    assert "def v1(" in source and "    v1 =" not in source
    f = numpy_backend.load(source, "v1")
    assert f(0.5) == pytest.approx(numpy_backend.load(numpy_backend.generate(
        passes.grad_reverse(to_trace("sin(x) * x + cos(x)")))[0], "f")(0.5))


_COLLIDING = {"x1": "v3", "x2": "v1_bar", "x3": "v0", "x4": "v2_dot"}   # inputs named as the numbering names


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), size=st.integers(5, 120), kind=st.sampled_from(["value", "grad", "jvp", "hessian"]),
       colliding=st.booleans(), reserved=st.sampled_from([set(), {"v3", "v2_bar", "v1_bar_1", "x1", "v0_dot", "t2"}]),
       scanned=st.sampled_from([None, 0, 3]), flat=st.sampled_from([None, (0, 4096), (1, 1), (1, 3)]),
       inline=st.booleans())
def test_names_as_the_oracle_on_random_traces(seed, size, kind, colliding, reserved, scanned, flat, inline):
    """assign_names (its integer-keyed holders, its scans, flat scans and their
    budgets, the use counts' shortcut) gives the oracle's names on random programs and
    their derivatives, with inputs and reserved names that take the numbering's own
    names (v3, v1_bar, v0), under the renderer's `named` and one that inlines every
    third variable."""
    text = random_program(size, n_vars=4, seed=seed)
    if colliding:
        for old, new in _COLLIDING.items():
            text = text.replace(old, new)
    primal = to_trace(text)
    trace = {"value": lambda: primal, "grad": lambda: passes.grad_reverse(primal),
             "jvp": lambda: passes.jvp(primal), "hessian": lambda: passes.hessian(primal)}[kind]()
    uses = use_counts(trace)
    named = named_vars(trace, uses) if not inline else \
        [ins.op != "const" and (i % 3 != 1 or ins.op == "input") for i, ins in enumerate(trace.instrs)]
    want = _reference_names(trace, named, reserved)
    old = name_reads._SCANNED, name_reads._FLAT_SCANS, name_reads._FLAT_SLICE
    try:
        if scanned is not None:
            name_reads._SCANNED = scanned
        if flat is not None:   # (the flat scans' budget per instruction, their slices: budgets that run out mid-scan)
            name_reads._FLAT_SCANS, name_reads._FLAT_SLICE = flat
        assert assign_names(trace, named, reserved, uses) == want
        assert assign_names(trace, named, reserved) == want
    finally:
        name_reads._SCANNED, name_reads._FLAT_SCANS, name_reads._FLAT_SLICE = old


def test_flat_starts_from_the_op_codes(monkeypatch):
    """The flat scans' start of each instruction's arguments comes from its op's arity
    where the op codes are given (no read of every instruction, a cache miss each at
    10⁶ operations): the same starts as the instructions' own counts, the same names;
    without codes, or where an op takes a varying number (stack), they are counted."""
    from exprcompiler.trace.render_bulk import arities, op_codes
    trace = passes.grad_reverse(to_trace(random_program(400, n_vars=3, seed=11)))
    counts, reads = use_counts_and_reads(trace)
    uses = counts.tolist()
    named = named_vars(trace, uses)
    codes = op_codes([ins.op for ins in trace.instrs])
    by_codes = name_reads.LastRead(trace, named, uses, reads, codes)
    monkeypatch.setattr(name_reads, "np", _NoCounting(name_reads.np))   # (refuses fromiter: no read of lengths)
    by_codes._flat()
    monkeypatch.undo()
    read = name_reads.LastRead(trace, named, uses, reads)
    read._flat()
    assert by_codes.starts.tolist() == read.starts.tolist() == \
        [0] + list(itertools.accumulate(len(ins.args) for ins in trace.instrs))
    monkeypatch.setattr(name_reads, "_SCANNED", 0)
    monkeypatch.setattr(name_reads, "last_reads", _refuse)
    want = assign_names(trace, named, set(), uses, None, reads)
    assert assign_names(trace, named, set(), uses, None, reads, codes=codes) == want
    # (arities that do not add up to the arguments, or of a variadic op: none)
    assert arities(codes, len(reads) + 1) is None
    stacked = op_codes(["input", "input", "stack"])
    assert arities(stacked, 2) is None


class _NoCounting:
    """numpy, but its fromiter refuses (a test's stand-in for the module)."""

    def __init__(self, np):
        self._np = np

    def __getattr__(self, name):
        if name == "fromiter":
            raise AssertionError("read every instruction's arguments")
        return getattr(self._np, name)
