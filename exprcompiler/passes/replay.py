"""Replaying a trace into a builder: the first step of every pass.

Replaying re-applies each instruction through `Builder.apply`, so the builder's
hash-consing, constant folding and identities run again (that *is* the simplify
pass), and labels carry over so derivative passes keep the Griewank names. Into
an empty builder, a trace that the replay would rebuild as it is (nearly every
trace a derivative pass starts from) is loaded in bulk instead (trace/builder_load.py),
a front end's small trace from the tables of the builder that built it (adopt).
"""

from __future__ import annotations

from itertools import compress, repeat
from operator import itemgetter, ne
from typing import Callable, Mapping, Optional, Sequence

from ..errors import ShapeError
from ..shapes import show
from ..trace.builder_load import load
from ..trace.ir import _LEAF_OR_COPY, Builder, Label, Trace, _new_tuple
from ..trace.ir_trace import instructions
from ..trace.labels import KINDS, NONE, ODD, Labels


def derived(label: Optional[Label], suffix: str, tag: Optional[str] = None,
            taken: Optional[set] = None) -> Optional[Label]:
    """The label of a tangent ("dot") or adjoint ("bar") of a labelled variable:
    v_3 -> v̇_3; v̄_3 -> v̄̇_3 (second order); unlabelled temporaries stay unlabelled.
    A label in `taken` (see `labels_of`) gets the tag "2": differentiating a gradient
    trace again in reverse mode must not print its new v̄_1 like the trace's own."""
    if label is None:
        return None
    kind = suffix if label.kind == "v" else f"{label.kind}_{suffix}"
    base = label.base if label.index is not None and label.index <= 0 else None
    tag = tag or label.tag
    if taken and (kind, label.index, tag) in taken:
        tag = f"{tag},2" if tag else "2"
    return _new_tuple(Label, (kind, label.index, base, tag))   # Label(...), without its Python __new__


def derived_labels(labels: Sequence[Optional[Label]], suffix: str, tag: Optional[str] = None,
                   taken: Optional[set] = None) -> list[Optional[Label]]:
    """[derived(label, suffix, tag, taken) for label in labels], for a whole sweep at
    once: a primal operation's label v_k (kind "v", k > 0, untagged), the case of
    nearly every variable, gives (suffix, k) without a call when no derived label is
    taken."""
    if taken:
        return [derived(label, suffix, tag, taken) for label in labels]
    if isinstance(labels, Labels):   # (columns: no primal Label made on the way)
        return labels.derived(suffix, tag or None, derived)
    new, tag = _new_tuple, tag or None
    return [None if label is None
            else new(Label, (suffix, label[1], None, tag)) if label[0] == "v" and label[3] is None and label[1] > 0
            else derived(label, suffix, tag, taken) for label in labels]


def labels_of(trace: Trace) -> set:
    """The (kind, index, tag) of every label in `trace` that a derived label could
    take, for `derived(taken=...)`: all but the primal ones (kind "v"), which no
    tangent or adjoint is named (none, in a primal trace)."""
    if isinstance(trace.labels, Labels):
        if not trace.labels.kinds.translate(None, _PRIMAL_KINDS):
            # no label but v's and odd ones (a primal's): the odd ones, without
            # kind_index_tags' NumPy per kind (~25 µs, a gradient's fixed cost)
            return {(lab[0], lab[1], lab[3]) for lab in trace.labels.odd.values() if lab[0] != "v"}
        return trace.labels.kind_index_tags("v")
    labels = list(filter(None, trace.labels))   # (a Label is never empty)
    return set(map(_KIND_INDEX_TAG, compress(labels, map(ne, map(_KIND, labels), repeat("v")))))


_KIND, _KIND_INDEX_TAG = itemgetter(0), itemgetter(0, 1, 3)   # a Label's kind; (kind, index, tag)
_PRIMAL_KINDS = bytes((NONE, KINDS.index("v"), ODD))   # the kind codes of a primal trace's labels


def replay_instr(b: Builder, trace: Trace, i: int, vmap,
                 env: Optional[Mapping[str, int]] = None) -> int:
    """Append instruction i of `trace` to `b` (arguments mapped through `vmap`, a list
    or a dict from trace var to builder var);
    an input named in `env` is replaced by the given builder variable."""
    ins, label = trace.instrs[i], trace.labels[i]
    if ins.op == "input":
        if env and ins.name in env:
            return env[ins.name]
        var = b.input(ins.name, ins.shape)
        if b.labels[var] is None:
            b.labels[var] = label
        return var
    if ins.op == "const":
        return b.const(ins.value, ins.shape)
    if ins.op == "copy":
        return b.name(vmap[ins.args[0]], label)
    mark = len(b.instrs)   # b.mark(), without the call: this runs once per instruction
    if ins.attrs:
        var = b.apply(ins.op, *[vmap[a] for a in ins.args], **dict(ins.attrs))
    else:
        var = b.apply(ins.op, *[vmap[a] for a in ins.args])
    return var if label is None else b.name(var, label, since=mark)


def replay(b: Builder, trace: Trace, env: Optional[Mapping[str, int]] = None,
           stop: Optional[int] = None, rewrite: Optional[Mapping[int, Optional[Callable]]] = None) -> list:
    """Append `trace` (its first `stop` instructions) to `b`; returns the map
    trace var -> builder var. `rewrite` maps trace vars to how they are built
    instead: f(var, map so far) -> builder var, or None for a var not built at all
    (mapped to None)."""
    if stop is None and not env and not rewrite and load(b, trace):
        return list(range(len(trace.instrs)))   # what the replay would give (builder_load)
    vmap: list[int] = []
    append, get = vmap.append, vmap.__getitem__
    instrs, labels, name, built, built_labels = trace.instrs, trace.labels, b.name, b.instrs, b.labels
    calls: dict = {}   # op name -> Builder.op_call(op name), once per op kind
    for i, (op, args, attrs, _), label in zip(range(len(instrs) if stop is None else stop), instrs, labels):
        if rewrite and i in rewrite:
            how = rewrite[i]
            append(None if how is None else how(i, vmap))
            continue
        if attrs or op in _LEAF_OR_COPY:
            append(replay_instr(b, trace, i, vmap, env))
            continue
        # replay_instr's last step, inline: most instructions take it
        call = calls.get(op)
        if call is None:
            call = calls[op] = b.op_call(op)
        mark = len(built)
        var = call(b, *map(get, args))
        if label is not None:
            if var >= mark and built_labels[var] is None and built[var].op not in _LEAF_OR_COPY:
                built_labels[var] = label   # b.name(var, label, since=mark) of a fresh variable
            else:
                var = name(var, label, mark)
        append(var)
    return vmap


def zeros_like(b: Builder, trace: Trace, var: int, vmap) -> int:
    """A structural zero shaped like `var` of `trace` (replayed as vmap[var])."""
    if trace.instrs[var].shape == ():
        return b.const(0.0)
    return b.broadcast_to(b.const(0.0), vmap[var])


def seed_input(b: Builder, trace: Trace, name: str, v: int, kind: str,
               taken: Optional[set] = None) -> int:
    """A new input `name.kind` (a tangent or cotangent seed) for trace variable `v`,
    labelled as v's tangent/adjoint so tables print `v̄_6 = ȳ`."""
    input_name = f"{name}.{kind}"
    while input_name in b._inputs:  # a derivative trace may already have x.bar
        input_name += f".{kind}"
    seed = b.input(input_name, trace.instrs[v].shape)
    label = derived(trace.labels[v], kind, taken=taken)
    b.labels[seed] = Label(label.kind if label else kind, label.index if label else None, base=name)
    return seed


def fresh_name(name: str, taken: set) -> str:
    """`x.bar`, or `x.bar.bar` when an output already has that name (second order)."""
    while name in taken:
        name += "." + name.rsplit(".", 1)[-1]
    taken.add(name)
    return name


def scalar_output(trace: Trace, what: str = "a gradient") -> tuple[str, int]:
    """(name, var) of the one output of a trace whose gradient is asked for. Several
    outputs, or a vector or matrix output, have a Jacobian instead: refused, rather
    than a sum over entries (the seed 1 broadcast) that nobody asked for."""
    if len(trace.outputs) != 1:
        raise ShapeError(f"{what} needs a single-output expression; this one has "
                         f"{len(trace.outputs)} outputs (use compile_jacobian, compile_vjp or compile_jvp)")
    (name, v), = trace.outputs
    shape = instructions(trace)[v].shape   # (one item: a trace held as columns makes no tuple)
    if shape != ():
        raise ShapeError(f"{what} needs a scalar output; {name} has shape {show(shape)} (use "
                         f"compile_jacobian for its Jacobian, compile_vjp for uᵀJ, or reduce it, e.g. sum(...))")
    return name, v


def wrt_vars(trace: Trace, wrt: Optional[Sequence[str]]) -> list[tuple[str, int]]:
    """(name, var) of the inputs to differentiate with respect to (default: all)."""
    inputs = dict(trace.inputs)
    return [(name, inputs[name]) for name in (list(inputs) if wrt is None else wrt)]
