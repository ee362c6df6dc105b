"""assign_names' names decided in NumPy (naming._first_holders: each common label's
first variable, and the chain of its next versions that the use-count test lets
reuse the name) against the loop alone (FIRSTS_FROM above the trace's size: every
named variable in order, as before), on gradients, tangents, Hessians (tagged
labels), reserved names of the v12 form, odd labels that ask for a v12 name first
(the loop's _TakenEarlier, then the loop alone), the odd labels' names (an input's
adjoint x_bar accumulated many times, inputs of no label, reserved names, an input's
name that collides with a generated one, two labels of one name: random traces of
such labels too), and every form of the arguments generate and the C backends pass
(uses as a list or an array or none, reads and op codes or none, named as a list or
an array; codes or strings)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from exprcompiler import passes, to_trace
from exprcompiler.backends import name_firsts, naming, numpy_backend
from exprcompiler.backends.naming import assign_names, identifier, preferred_name
from exprcompiler.bench.suite_scaling import deep_program
from exprcompiler.randexpr import random_program
from exprcompiler.trace.ir import Instr, Label, Trace
from exprcompiler.trace.labels import as_labels
from exprcompiler.trace.render import use_counts_and_reads
from exprcompiler.trace.render_bulk import op_codes
from exprcompiler.trace.uses import named_array


def _traces():
    for seed in range(3):
        primal = to_trace(random_program(150, n_vars=4, seed=seed))
        yield f"grad-{seed}", passes.grad_reverse(primal)
        yield f"jvp-{seed}", passes.jvp(primal)
        if seed < 2:
            yield f"hessian-{seed}", passes.hessian(primal)
    yield "grad-large", passes.grad_reverse(to_trace(random_program(1500, seed=7)))
    yield "inputs", passes.grad_reverse(to_trace("int * v1 + sin(x_bar) * lambda_ + exp(int) * v1 * v1"))
    yield "deep", passes.grad_reverse(to_trace("x * (x * (x * (x * y))) + y * (y * sin(x * y))"))
    yield "deep-long", passes.grad_reverse(to_trace(deep_program(600)))   # (x_bar accumulated 100 times)
    yield "inputs-collide", passes.grad_reverse(to_trace(   # (inputs spelled as generated names)
        "v1 * x_bar + t1 * sin(x_1) + v2_bar * exp(v1) + x_1 * t1 * x_bar * v2_bar"))


def _read_between():
    """An accumulation v̄_1 (sin x, then + x) read by another line before its next
    version: the use-count test breaks the chain there, and the loop's last-read test
    reuses the name, from the chain's last holder (its alias: the first)."""
    instrs = [Instr("input", (), (("name", "x"),)), Instr("sin", (0,)), Instr("add", (1, 0)), Instr("cos", (2,)),
              Instr("add", (2, 3))]
    labels = [Label("v", 0, "x"), Label("bar", 1), Label("bar", 1), Label("v", 1), Label("bar", 1)]
    return Trace(instrs, labels, [("f", 4)])


TRACES = dict(_traces())
TRACES["read-between"] = _read_between()


def _names(trace, named, reserved, *, firsts: bool, coded: bool, uses, reads, codes, monkeypatch, into=dict):
    monkeypatch.setattr(naming, "FIRSTS_FROM", 0 if firsts else 1 << 60)
    monkeypatch.setattr(naming, "ODD_FROM", 0)
    aliases = into()
    out = assign_names(trace, named, reserved, uses, aliases, reads, coded=coded, codes=codes)
    return (out.list() if coded else out), aliases if type(aliases) is dict else dict(aliases.items())


@pytest.mark.parametrize("form", ["generate", "lists", "bare"])
@pytest.mark.parametrize("coded", [True, False])
@pytest.mark.parametrize("name", list(TRACES))
def test_the_names_decided_at_once_are_the_loops(name, coded, form, monkeypatch):
    trace = TRACES[name]
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    flags = named_array(trace, use_array, codes)
    if form == "generate":   # (as numpy_backend.generated passes them)
        named, uses = flags, use_array
    elif form == "lists":
        named, uses, codes = flags.tolist(), use_array.tolist(), None
    else:   # (as the C backends: no use counts)
        named, uses, reads, codes = flags.tolist(), None, None, None
    for reserved in (numpy_backend.RESERVED | {"f"}, {"v3", "v2_bar", "v1_bar", "x_bar", "v0"},
                     {"x", "y_bar", "x_bar_", "v1_", "t1_"}):
        want = _names(trace, named, reserved, firsts=False, coded=coded, uses=uses, reads=reads, codes=codes,
                      monkeypatch=monkeypatch)
        got = _names(trace, named, reserved, firsts=True, coded=coded, uses=uses, reads=reads, codes=codes,
                     monkeypatch=monkeypatch)
        assert got == want


@pytest.mark.parametrize("name", list(TRACES))
def test_aliases_as_arrays_are_the_dicts(name, monkeypatch):
    """name_firsts.Aliases (the firsts' chains kept as arrays, the loop's in a dict,
    what generate passes) holds the same aliases as a dict, and answers the loop's
    get() of a chain's last holder from its arrays."""
    trace = TRACES[name]
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    flags = named_array(trace, use_array, codes)
    asked = []
    original_get = name_firsts.Aliases.get

    def get(self, key, default=None):
        found = original_get(self, key, default)
        asked.append(key not in self.more and found is not default)
        return found
    monkeypatch.setattr(name_firsts.Aliases, "get", get)
    for reserved in (numpy_backend.RESERVED | {"f"}, {"v3", "v2_bar", "v1_bar", "x_bar", "v0"}):
        for firsts in (True, False):
            args = dict(firsts=firsts, coded=True, uses=use_array, reads=reads, codes=codes, monkeypatch=monkeypatch)
            assert _names(trace, flags, reserved, **args, into=name_firsts.Aliases) \
                == _names(trace, flags, reserved, **args)
    if name == "read-between":   # (the loop reuses a name whose previous holder a chain took: from the arrays)
        assert any(asked)


def test_aliases_read_as_a_dict():
    aliases = name_firsts.Aliases()
    assert not aliases and aliases.get(3, 3) == 3
    aliases.set_arrays(np.array([9, 4, 7], np.int32), np.array([2, 1, 2], np.int32))
    aliases[12] = 2
    assert len(aliases) == 4 and aliases
    assert [aliases.get(k, -1) for k in (4, 7, 9, 12, 5, 0, 13)] == [1, 2, 2, 2, -1, -1, -1]
    assert dict(aliases.items()) == {9: 2, 4: 1, 7: 2, 12: 2}
    assert list(aliases.keys()) == [9, 4, 7, 12] and list(aliases.values()) == [2, 1, 2, 2]
    keys, values = aliases.arrays()
    assert keys.tolist() == [9, 4, 7, 12] and values.tolist() == [2, 1, 2, 2]
    aliases.clear()
    assert not aliases and aliases.get(4) is None and aliases.arrays()[0].tolist() == []


def test_most_names_are_decided_before_the_loop():
    trace = TRACES["grad-large"]
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    flags = named_array(trace, use_array, codes)
    firsts = name_firsts.first_holders(as_labels(trace.labels), flags, len(trace.instrs) + 1, set(), use_array,
                                       reads, codes, [v for _, v in trace.inputs])
    assert len(firsts.aliased) > 0   # (accumulations: chains decided)
    assert len(firsts.others) < 0.05 * int(flags.sum())


def _odd_first():
    """v2 asked for by an odd label (a base and an index of 2, not an input) before
    the common label v2 comes; then v2's next version, an accumulation."""
    instrs = [Instr("input", (), (("name", "x"),)), Instr("sin", (0,)), Instr("cos", (0,)),
              Instr("mul", (1, 2)), Instr("add", (3, 0)), Instr("add", (4, 3))]
    labels = [Label("v", 0, "x"), Label("v", 2, "w"), Label("v", 2), Label("v", 3), Label("v", 2), Label("v", 2)]
    return Trace(instrs, labels, [("f", 5)])


@pytest.mark.parametrize("coded", [True, False])
def test_an_odd_label_that_asks_first_gets_the_loops_answer(coded, monkeypatch):
    trace = _odd_first()
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    named = [True] * len(trace.instrs)
    raised = []
    original = naming._TakenEarlier

    class Spy(original):
        def __init__(self, *args):
            raised.append(True)
            super().__init__(*args)
    monkeypatch.setattr(naming, "_TakenEarlier", Spy)
    want = _names(trace, named, set(), firsts=False, coded=coded, uses=use_array, reads=reads, codes=codes,
                  monkeypatch=monkeypatch)
    assert not raised
    got = _names(trace, named, set(), firsts=True, coded=coded, uses=use_array, reads=reads, codes=codes,
                 monkeypatch=monkeypatch)
    assert raised and got == want
    assert want[0][1:3] == ["v2", "v2_1"]


def test_a_chain_stops_where_a_previous_version_is_read_later(monkeypatch):
    """v1 = x*x; v1 = v1 + x; y = v1 * 2 (reads the second version after the third
    is made); v1 = v1 + 1: the third cannot reuse the name, the loop decides it."""
    instrs = [Instr("input", (), (("name", "x"),)), Instr("mul", (0, 0)), Instr("add", (1, 0)),
              Instr("const", (), (("value", 1.0),)), Instr("add", (2, 3)), Instr("mul", (2, 4))]
    labels = [Label("v", 0, "x"), Label("v", 1), Label("v", 1), None, Label("v", 1), Label("v", 5)]
    trace = Trace(instrs, labels, [("f", 5)])
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    named = named_array(trace, use_array, codes)
    firsts = name_firsts.first_holders(as_labels(trace.labels), named, len(instrs) + 1, set(), use_array, reads,
                                       codes, [0])
    assert firsts.aliased.tolist() == [2] and 4 in firsts.others
    for coded in (True, False):
        want = _names(trace, named, set(), firsts=False, coded=coded, uses=use_array, reads=reads, codes=codes,
                      monkeypatch=monkeypatch)
        got = _names(trace, named, set(), firsts=True, coded=coded, uses=use_array, reads=reads, codes=codes,
                     monkeypatch=monkeypatch)
        assert got == want and want[0][4] == "v1_1"


def test_an_input_of_a_common_label_keeps_its_name(monkeypatch):
    """An input labelled v1 (no base) and a later v1 that reads it once: the input's
    name is never reused (the loop's `prev in inputs`), so no chain from it."""
    instrs = [Instr("input", (), (("name", "x"),)), Instr("sin", (0,)), Instr("mul", (1, 1))]
    trace = Trace(instrs, [Label("v", 1), Label("v", 1), Label("v", 2)], [("f", 2)])
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    named = named_array(trace, use_array, codes)
    for coded in (True, False):
        want = _names(trace, named, set(), firsts=False, coded=coded, uses=use_array, reads=reads, codes=codes,
                      monkeypatch=monkeypatch)
        got = _names(trace, named, set(), firsts=True, coded=coded, uses=use_array, reads=reads, codes=codes,
                     monkeypatch=monkeypatch)
        assert got == want and want[0][:2] == ["v1", "v1_1"]


# Labels for random traces: common ones (vm2_bar: the loop's), odd ones of an input's
# base (x_bar, and one spelled the same by a tag), tagged common ones, names of the
# loop's forms asked for by odd labels too (v2_bar: its _TakenEarlier; v3_bar, vm2_bar;
# x_1 and x_bar_1, a suffixed x's and x_bar's), none (a temporary)
_POOL = [Label("v", 1), Label("v", 2), Label("bar", 1), Label("bar", 2), Label("bar", -2), Label("bar", -1, "x"),
         Label("bar", 0, "y"), Label("v", 0, "x", "bar"), Label("bar", 3, None, "h"), Label("v", -2, None, "h"),
         Label("bar", 2, "w"), Label("bar", -1, "x", "1"), Label("bar", -1, "x_1"), Label("v", 3, None, "bar"),
         Label("v", -2, None, "bar"), Label("v", 0, "x"), Label("v", -3, "x_1"), Label("v", 0, "x", "bar_1"), None]
_INPUT_NAMES = ["x", "y", "x_bar", "v1", "t1", "x_1", "h", "y_bar"]


def _random_trace(rng: random.Random, size: int) -> Trace:
    """Inputs (some of an odd label, some of none), then sums and products whose labels
    come from _POOL, most of them accumulations of an earlier variable of their label
    (v̄ = v̄ + ...), some of whose previous versions are read again later."""
    names = rng.sample(_INPUT_NAMES, rng.randint(1, 4))
    instrs = [Instr("input", (), (("name", name),)) for name in names]
    labels = [rng.choice([None, Label("v", 0, name), Label("v", -1, name), Label("bar", -1, "x")]) for name in names]
    latest: dict = {}   # label -> its last variable
    for i in range(len(names), size):
        label = rng.choice(_POOL)
        if label in latest and rng.random() < 0.7:
            args = (latest[label], rng.randrange(i))
        else:
            args = (rng.randrange(i), rng.randrange(i))
        instrs.append(Instr(rng.choice(["add", "mul"]), args))
        labels.append(label)
        latest[label] = i
    outputs = [("f", size - 1)] + [(f"g{k}", v) for k, v in enumerate(rng.sample(range(size), 2))]
    return Trace(instrs, labels, outputs)


@pytest.mark.parametrize("seed", range(40))
def test_odd_labels_names_decided_at_once_are_the_loops(seed, monkeypatch):
    rng = random.Random(seed)
    trace = _random_trace(rng, rng.randint(8, 80))
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    flags = named_array(trace, use_array, codes)
    if seed % 3 == 0:   # (more variables named than labelled)
        flags |= np.array([rng.random() < 0.5 for _ in trace.instrs])
    reserved = set(rng.sample(["x_bar", "y_bar", "x", "v1_bar", "v2", "f", "h", "x_bar_h"], rng.randint(0, 3)))
    for coded in (True, False):
        for named, uses, reads_, codes_ in ((flags, use_array, reads, codes), (flags.tolist(), None, None, None)):
            want = _names(trace, named, reserved, firsts=False, coded=coded, uses=uses, reads=reads_, codes=codes_,
                          monkeypatch=monkeypatch)
            got = _names(trace, named, reserved, firsts=True, coded=coded, uses=uses, reads=reads_, codes=codes_,
                         monkeypatch=monkeypatch)
            assert got == want


def _prefer(trace, reserved):
    return lambda label, is_input, i: preferred_name(label, reserved, is_input) or identifier(
        trace.instrs[i].name, reserved)


def test_an_inputs_adjoint_is_decided_before_the_loop():
    """The deep composition's x_bar, accumulated at each use of x: its first and its
    chain are first_holders', none left to the loop."""
    trace = TRACES["deep-long"]
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    flags = named_array(trace, use_array, codes)
    labels = as_labels(trace.labels)
    odd = [i for i in labels.odd if flags[i]]
    assert sum(labels[i] == Label("bar", -1, "x") for i in odd) > 50
    inputs = [v for _, v in trace.inputs]
    firsts = name_firsts.first_holders(labels, flags, len(trace.instrs) + 1, set(), use_array, reads, codes,
                                       inputs, _prefer(trace, set()))
    assert not set(odd) & set(firsts.others)
    assert {"x_bar", "y_bar", "x", "y"} <= set(firsts.texts)
    # reserved: x_bar's variables are the loop's, the others' not
    firsts = name_firsts.first_holders(labels, flags, len(trace.instrs) + 1, {"x_bar"}, use_array, reads, codes,
                                       inputs, _prefer(trace, {"x_bar"}))
    left = set(firsts.others)
    assert all((i in left) == (labels[i] == Label("bar", -1, "x")) for i in odd)


def test_two_labels_of_one_name_chain_only_while_equal(monkeypatch):
    """x_bar asked for by Label(bar, -1, x) and Label(v, 0, x, tag bar): the second
    reads the first once, but is another label: the loop's v̄-reuse test fails (x_bar_1)."""
    instrs = [Instr("input", (), (("name", "x"),)), Instr("sin", (0,)), Instr("add", (1, 0)),
              Instr("add", (2, 0)), Instr("mul", (3, 3))]
    labels = [Label("v", 0, "x"), Label("bar", -1, "x"), Label("bar", -1, "x"), Label("v", 0, "x", "bar"),
              Label("v", 4)]
    trace = Trace(instrs, labels, [("f", 4)])
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    named = named_array(trace, use_array, codes)
    firsts = name_firsts.first_holders(as_labels(labels), named, len(instrs) + 1, set(), use_array, reads, codes,
                                       [0], _prefer(trace, set()))
    assert firsts.aliased.tolist() == [2] and firsts.others == [3]
    for coded in (True, False):
        want = _names(trace, named, set(), firsts=False, coded=coded, uses=use_array, reads=reads, codes=codes,
                      monkeypatch=monkeypatch)
        got = _names(trace, named, set(), firsts=True, coded=coded, uses=use_array, reads=reads, codes=codes,
                     monkeypatch=monkeypatch)
        assert got == want and want[0][:4] == ["x", "x_bar", "x_bar", "x_bar_1"]


def test_names_of_the_loops_forms_are_left_to_it():
    """odd_groups keeps an odd label's name only where no other variable can ask for it:
    not reserved, and of none of the forms the loop gives (a common label's at any
    index, a temporary's, a suffixed one)."""
    spelled = ["v3", "v3_bar", "vm2", "vm2_dot_bar", "t4", "x_1", "x_bar_12", "x_bar", "vx", "x_bar_h", "res"]
    labels = as_labels([Label("v", -1, f"n{k}") for k in range(len(spelled))])
    flags = np.ones(len(spelled), bool)
    groups = name_firsts.odd_groups(labels, flags, [], {"res"}, lambda label, is_input, i: spelled[int(label.base[1:])])
    assert groups.names == ["x_bar", "vx", "x_bar_h"]
    assert groups.at.tolist() == [7, 8, 9] and groups.group.tolist() == [0, 1, 2]


def test_generated_source_with_the_odd_groups_is_the_loops(monkeypatch):
    """A deep composition's gradient as generate makes it (the thresholds as they are:
    x_bar's 500 versions decided at once) against the loop alone."""
    trace = passes.grad_reverse(to_trace(deep_program(3000)))
    assert len(as_labels(trace.labels).odd) >= naming.ODD_FROM and len(trace.instrs) >= naming.FIRSTS_FROM
    got = str(numpy_backend.generated(trace, func_name="g")[0])
    monkeypatch.setattr(naming, "FIRSTS_FROM", 1 << 60)
    assert got == str(numpy_backend.generated(trace, func_name="g")[0])


@pytest.mark.parametrize("layout", ["int32", "strided"])
def test_use_counts_of_any_array_layout_give_the_lists_names(layout, monkeypatch):
    # (assign_names reads an array's counts through a memoryview, strided or of any
    # int type: the names are those of the counts as a list)
    trace = TRACES["grad-large"]
    use_array, reads = use_counts_and_reads(trace)
    codes = op_codes([ins.op for ins in trace.instrs])
    flags = named_array(trace, use_array, codes)
    if layout == "int32":
        uses = use_array.astype(np.int32)
    else:
        uses = np.repeat(use_array, 2)[::2]
        assert not uses.flags.c_contiguous
    for firsts in (True, False):
        want = _names(trace, flags, set(), firsts=firsts, coded=True, uses=use_array.tolist(), reads=reads,
                      codes=codes, monkeypatch=monkeypatch)
        got = _names(trace, flags, set(), firsts=firsts, coded=True, uses=uses, reads=reads, codes=codes,
                     monkeypatch=monkeypatch)
        assert got == want
