"""The stability rewriter: Trace -> Trace with the rules of rules.py applied.

Where it sits: api.kind_trace runs it on the primal trace before the derivative
sweeps (stage "primal": derivatives then come from the stable primitives' own
rules) and on the trace the sweeps made (stage "derivative": differentiation makes
its own cancellations, 1 - tanh(x)², sigmoid(x)·(1 - sigmoid(x))). Like every pass
it replays the trace into a Builder (passes/replay.py); at an instruction some rule
matches it builds the replacement instead, and it records each firing: the rule,
its reason, the lines removed from the old trace and the lines added to the new one
(explain prints them as a small diff). A trace no rule matches is returned as it is
(a dry run over the trace decides, without rebuilding it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..passes.replay import replay_instr
from ..trace.ir import Builder, Trace, gc_paused, primal_labels
from ..trace.printer import label_text, table_spelling
from ..trace.render import Renderer
from .match import TraceView
from .rules import RULES, rules_by_op
from .softmax_forms import SHARE_REASON, pick_groups, share_picks

STAGES = ("primal", "derivative")
_LEAVES = ("input", "const", "copy")


@dataclass(frozen=True)
class Firing:
    """One rewrite: `rule` fired in `stage` at instruction `at` of the trace it was
    given; `removed` are the old trace's lines that went away (the pattern), `added`
    the new trace's lines that replace them, each as (index, text)."""
    rule: str
    reason: str
    stage: str
    at: int
    removed: tuple
    added: tuple

    def diff(self) -> list[str]:
        added = [f"+ {text}" for _, text in self.added] or ["  (its result is rewritten again by a later rule)"]
        return [f"- {text}" for _, text in self.removed] + added

    def __str__(self) -> str:
        return f"{self.rule} ({self.stage}): {self.reason}"


def _matches_anywhere(trace: Trace, by_op: dict) -> bool:
    view = TraceView(trace)
    for ins in trace.instrs:
        for rule in by_op.get(ins.op, ()):
            found = rule.pattern(view, ins.args, dict(ins.attrs))
            if found is not None and (rule.guard is None or rule.guard(view, *found)):
                return True
    return False


@gc_paused()
def stabilize(trace: Trace, stage: str = "primal", rules: Optional[Sequence] = None) -> tuple[Trace, tuple]:
    """(the trace with the stability rules of `stage` applied, the firings)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    by_op = rules_by_op(RULES if rules is None else rules, stage)
    if not _matches_anywhere(trace, by_op):
        return trace, ()
    b = Builder()
    vmap: list[int] = []
    fired = []   # (rule, old index, builder var, mark)
    for i, ins in enumerate(trace.instrs):
        var = None
        if ins.op not in _LEAVES:
            var = _try_rules(b, trace, i, [vmap[a] for a in ins.args], by_op.get(ins.op, ()), fired)
        vmap.append(var if var is not None else replay_instr(b, trace, i, vmap))
    outputs = [(n, vmap[v]) for n, v in trace.outputs]
    numbered = trace.labels == primal_labels(trace.instrs)
    new = b.finish(outputs, input_order=list(trace.input_names), number=numbered, source=trace.source)
    firings = tuple(_firings(trace, new, b, vmap, outputs, fired, stage))
    if stage == "primal":   # several picks of one vector: one pass for all of them
        shared = share_picks(new)
        if shared is not new:
            firings += tuple(_shared_firings(new, shared))
            new = shared
    return new, firings


def _shared_firings(old: Trace, new: Trace):
    """share_picks' firings, one per vector: its picks' lines in `old` (the trace the
    rules made) and the shared pick with its elements in `new`."""
    old_line, new_line = _lines(old), _lines(new)
    readers: dict = {}
    for i, ins in enumerate(new.instrs):
        for a in ins.args:
            readers.setdefault(a, []).append(i)
    shared = {}   # the new parts ops by key, in trace order (the vectors' order in both)
    for i, ins in enumerate(new.instrs):
        if ins.op == "log_softmax_at_parts":
            shared.setdefault(dict(ins.attrs)["key"], []).append(i)
    for picks in pick_groups(old).values():
        removed = sorted(j for P, at, _ in picks for j in (P, at))
        P = shared[tuple(sorted(k for _, _, k in picks))].pop(0)
        at = next(r for r in readers[P] if new.instrs[r].op == "log_softmax_at")
        added = [P, at] + sorted(r for r in readers.get(at, ()) if new.instrs[r].op == "index")
        yield Firing("share_picks", SHARE_REASON, "primal", removed[0],
                     tuple((j, old_line(j)) for j in removed), tuple((k, new_line(k)) for k in added))


def _try_rules(b: Builder, trace: Trace, i: int, args: list, rules, fired: list) -> Optional[int]:
    ins = trace.instrs[i]
    attrs = dict(ins.attrs)
    for rule in rules:
        found = rule.pattern(b, args, attrs)
        if found is None or (rule.guard is not None and not rule.guard(b, *found)):
            continue
        mark = b.mark()
        var = rule.build(b, *found)
        if b.shape(var) != ins.shape:   # a constant of another shape took part: not the same value
            continue
        fired.append((rule, i, var, mark))
        return b.name(var, trace.labels[i], since=mark)
    return None


def _live(b: Builder, outputs) -> bytearray:
    live = bytearray(len(b.instrs))
    for _, v in outputs:
        live[v] = 1
    for i in range(len(b.instrs) - 1, -1, -1):
        if live[i]:
            for a in b.instrs[i].args:
                live[a] = 1
    return live


def _new_index(b: Builder, live: bytearray, input_names) -> list[int]:
    """Builder variable -> index in the finished trace (as Builder.finish orders them)."""
    order = [b._inputs[n] for n in input_names if n in b._inputs]
    order += [i for i, ins in enumerate(b.instrs) if live[i] and ins.op != "input"]
    index = [-1] * len(b.instrs)
    for new, old in enumerate(order):
        index[old] = new
    return index


def _lines(trace: Trace):
    """index -> 'name = rhs' in the printed tables' notation, every line named."""
    temps: dict = {}

    def name_of(i: int) -> str:
        label = trace.labels[i]
        if label is not None:
            try:
                return label_text(label)
            except KeyError:   # a kind with no mark (the sparse sweeps' dot0, bar1): spelled out
                return label_text(label, ascii=True)
        return temps.setdefault(i, f"t_{len(temps) + 1}")

    r = Renderer(trace, table_spelling(False), name_of, named=[True] * len(trace.instrs))
    return lambda i: f"{r.expr(i)[0]} = {r.rhs(i)}"


def _firings(old: Trace, new: Trace, b: Builder, vmap, outputs, fired, stage):
    live = _live(b, outputs)
    index = _new_index(b, live, new.input_names)
    roots = {i for _, i, _, _ in fired}
    replayed = {vmap[j] for j in range(len(vmap)) if j not in roots}   # the old trace's own lines
    old_line, new_line = _lines(old), _lines(new)
    for rule, i, var, _ in fired:
        removed, stack, seen = [i], list(old.instrs[i].args), set()
        while stack:   # the pattern: old lines under i whose values are no longer computed
            j = stack.pop()
            if j in seen or old.instrs[j].op in ("input", "const") or live[vmap[j]]:
                continue
            seen.add(j)
            removed.append(j)
            stack += old.instrs[j].args
        added, stack, seen = [], [var], set()
        while stack:   # the replacement: live lines rules built (this one or one it builds on)
            w = stack.pop()
            if w in seen or w in replayed or not live[w] or b.instrs[w].op in ("input", "const"):
                continue
            seen.add(w)
            added.append(w)
            stack += b.instrs[w].args
        added_new = sorted(index[w] for w in added if b.instrs[w].op != "const")
        if live[vmap[i]] and index[vmap[i]] not in added_new:   # renamed through a copy
            added_new.append(index[vmap[i]])
        yield Firing(rule.name, rule.reason, stage, i,
                     tuple((j, old_line(j)) for j in sorted(removed)),
                     tuple((k, new_line(k)) for k in sorted(added_new)))


__all__ = ["Firing", "stabilize", "STAGES"]
