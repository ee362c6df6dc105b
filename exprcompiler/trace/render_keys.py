"""The keys renderer: a trace's statements as str.format keys with `{}` holes and the
slots of those holes, each key made once per shape (KeyedRendering, a base of
render.Renderer; the trace-at-once path is render_bulk.bulk_keys).

Where it sits: inside trace/render.py's Renderer, for the NumPy backend's long
functions (numpy_backend.generated with `slots`: the statement program's templates
and arguments); the texts renderer (Renderer._render_texts) is render.py's.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from itertools import chain, compress, repeat
from operator import is_not
from typing import Callable, Optional

import numpy as np

from ..ops import PREC_ATOM
from .ir_trace import instructions
from .render_bulk import OpCodes, bulk_keys
from .spelling import _text, const_prec

HOLE = "{}"   # a named variable's or a constant's key (see Renderer)
_MARKER = re.compile("\x01([0-9]+)\x02")   # a variable's text while _with_holes renders


class _Holes:
    """A keys renderer's holes by variable, each a tuple of slots (`raw`: each variable's
    an int where it is one slot, see Renderer._render_keys)."""
    __slots__ = ("raw",)

    def __init__(self, raw: list):
        self.raw = raw

    def __getitem__(self, v: int) -> tuple:
        h = self.raw[v]
        return (h,) if type(h) is int else h

    def __len__(self) -> int:
        return len(self.raw)


class _ByStatement(Sequence):
    """A bulk renderer's per-statement values (render_bulk.BulkKeys) by variable,
    None where a variable has no statement: Renderer.rhs_texts and line_holes, as
    the per-variable renderer has them (for tests and readers; generate takes
    Renderer.statements())."""

    def __init__(self, bulk, values):
        self.bulk, self.values = bulk, values

    def __len__(self) -> int:
        return len(self.bulk.hole)

    def __getitem__(self, v):
        if not 0 <= v < len(self):
            raise IndexError(v)
        k = int(np.searchsorted(self.bulk.statements, v))
        return self.values[k] if k < len(self.bulk.statements) and self.bulk.statements[k] == v else None


class _BulkHoles:
    """A bulk renderer's holes by variable (as _Holes gives them)."""
    __slots__ = ("bulk",)

    def __init__(self, bulk):
        self.bulk = bulk

    def __getitem__(self, v: int) -> tuple:
        return self.bulk.holes_of(v)

    def __len__(self) -> int:
        return len(self.bulk.hole)


class Numbers(dict):
    """key -> its number, given on first sight."""
    __slots__ = ()

    def __missing__(self, key):
        number = self[key] = len(self)
        return number


class KeyedRendering:
    """Renderer's keys (see Renderer.__init__'s `slots`): the trace at once
    (_bulk_keys), else per variable (_render_keys), and the statements they give."""

    def _bulk_keys(self, slots, reads: Optional[np.ndarray], codes: Optional[OpCodes]) -> bool:
        """The keys of every variable at once (render_bulk.bulk_keys), if it can:
        rhs_texts, line_holes, holes and expr then read its arrays."""
        bulk = bulk_keys(instructions(self.trace), self.named, np.asarray(slots), self._fast_of, self._fast_text,
                         self.spell.const, self._statements, self.keys, reads, codes)
        if bulk is None:
            self.keys.clear()   # (numbered at first sight: the per-variable renderer starts again)
            return False
        self._bulk = bulk
        self.constants = bulk.constants
        self.rhs_texts = _ByStatement(bulk, bulk.numbered)
        self.line_holes = _ByStatement(bulk, bulk.slots)
        self.holes = _BulkHoles(bulk)
        ids, texts, precs = bulk.ids, bulk.texts, bulk.precs

        def expr(i: int) -> tuple[str, int]:
            k = ids[i]
            return texts[k], precs[k]
        self.expr = expr
        return True

    def _fast_of(self, op: str) -> tuple:
        return (self._forms.get(op) or self._generic(op))[2]

    def statements(self, flat: bool = False) -> tuple:
        """With `slots`: per statement (a named variable's line, but an input's), in
        order, its key's number in `keys` (an array('i')) and its slots (a list of
        tuples), for the caller to keep. `flat`: the bulk path's slots as they are
        made (render_bulk.FlatSlots: its tuples() makes that list), for a caller that
        makes the tuples once this renderer is gone."""
        if self._bulk is not None:
            slots = self._bulk.slots
            return self._bulk.numbered, slots if flat else slots.tuples()
        rhs = self.rhs_texts
        lines = bytes(map(is_not, rhs, repeat(None)))   # (a byte a variable, not a pointer's 8)
        return array("i", compress(rhs, lines)), list(compress(self.line_holes, lines))

    def _render_keys(self, slots: list[int]) -> None:
        """_render_texts with keys for texts (see __init__'s `slots`, a list of ints).

        A fast form's key depends only on its op and its operands' keys and
        precedences, and a function of 10⁵ operations has some 70 different
        statement keys: each is made once (in a process: _shapes_of), and found
        again by that (op, keys, precedences) shape; the other forms, and the variables a subclass spells
        itself, go through _with_holes. A key that is one hole, "{}" (a named
        variable's, a constant's, an inlined copy of one), has its slot as its holes
        (an int, not a 1-tuple: no tuple per variable); any other, a tuple of slots.
        So the shape tells which operands are one slot, and a statement of named
        operands (most) takes its holes as one new tuple."""
        trace, named = self.trace, self.named
        instrs = trace.instrs
        texts, precs, rhs, indent = self._texts, self._precs, self.rhs_texts, self._statements
        holes = slots.copy()   # (an int, or a tuple of ints; see above)
        self.holes = _Holes(holes)
        line_holes = self.line_holes = [None] * len(instrs)
        constants, const = self.constants, self.spell.const
        own = self._own
        memoized = own is not None   # (None: a subclass spells every variable itself)
        own = own or ()
        learn = self._learn_shape
        # shape -> an inlined variable's (key, prec, leaves) (() : not fast); shape -> a
        # named variable's (statement text, leaves), both the process's (_shapes_of)
        inlined_as, stated_text = _shapes_of(self)
        stated_as: dict[tuple, tuple] = {}    # shape -> a named variable's (statement key number, leaves)
        # leaves: 0-3 for two operands, bit 0 (1) the first's holes an int, bit 1 (2) the
        # second's; 4/5 for one, an int / a tuple; 6 an inlined copy (its operand's holes)
        for i, ins in enumerate(instrs):
            op, args, attrs, _ = ins
            if op == "const":
                text = constants[i] = const(ins.value)
                precs[i] = const_prec(text)
                continue
            is_named = named[i]
            if is_named and op == "input":
                continue
            if memoized and not attrs and i not in own:
                if len(args) == 2:
                    a, b = args
                    shape = (op, texts[a], precs[a], texts[b], precs[b])
                elif len(args) == 1:
                    a = b = args[0]
                    shape = (op, texts[a], precs[a])
                else:
                    shape = None
                if shape is None:
                    pass
                elif is_named:
                    known = stated_as.get(shape)
                    if known is None:
                        made = stated_text.get(shape)
                        if made is None:
                            made = stated_text[shape] = learn(i, True)
                        known = stated_as[shape] = (self.keys[made[0]], made[1]) if made else ()
                    if known:
                        rhs[i], leaves = known
                        if leaves == 3:
                            line_holes[i] = (holes[i], holes[a], holes[b])
                        elif leaves == 4:
                            line_holes[i] = (holes[i], holes[a])
                        elif leaves == 5:
                            line_holes[i] = (holes[i],) + holes[a]
                        else:
                            line_holes[i] = (holes[i],) + ((holes[a],) if leaves & 1 else holes[a]) \
                                + ((holes[b],) if leaves & 2 else holes[b])
                        continue
                else:
                    known = inlined_as.get(shape)
                    if known is None:
                        known = inlined_as[shape] = learn(i, False)
                    if known:
                        texts[i], precs[i], leaves = known
                        if leaves == 3:
                            holes[i] = (holes[a], holes[b])
                        elif leaves >= 5:
                            holes[i] = holes[a]
                        elif leaves == 4:
                            holes[i] = (holes[a],)
                        else:
                            holes[i] = ((holes[a],) if leaves & 1 else holes[a]) \
                                + ((holes[b],) if leaves & 2 else holes[b])
                        continue
            # the other forms: format_op's, or a subclass's own
            text, prec, h = self._with_holes(i, self._format if not memoized or i in own else self._format_generic)
            if not is_named:
                texts[i], precs[i] = text, prec
                holes[i] = h[0] if text == HOLE else h
                continue
            rhs[i] = self.keys[f"{indent}{HOLE} = {text}"]
            line_holes[i] = (holes[i],) + h

    def _learn_shape(self, i: int, is_named: bool) -> tuple:
        """_render_keys' entry for the shape of variable i (its op and operands, one or
        two, without attrs), worked out from i: for a named variable (statement text,
        leaves), else (key, prec, leaves); () where the op has no fast form. (What the
        operands' holes are, ints or tuples, follows from their keys: an int's is HOLE.)"""
        args = self.trace.instrs[i].args
        op = self.trace.instrs[i].op
        texts, precs = self._texts, self._precs
        made = self._fast_text(op, [(texts[a], precs[a]) for a in args])
        if made is None:
            return ()
        text, prec = made
        holes = self.holes.raw
        if len(args) == 2:
            leaves = (type(holes[args[0]]) is int) | (type(holes[args[1]]) is int) << 1
        elif not is_named and self._forms[op][2][0] == "copy":
            leaves = 6
        else:
            leaves = 4 if type(holes[args[0]]) is int else 5
        if is_named:
            return f"{self._statements}{HOLE} = {text}", leaves
        return text, prec, leaves

    def _fast_text(self, op: str, operands: list) -> Optional[tuple[str, int]]:
        """(text, prec) of `op` in its fast form (None: it has none) on operands of
        these (text, prec): what _render_texts' loop writes in place (there once per
        variable, without a call; here once per shape)."""
        fast = (self._forms.get(op) or self._generic(op))[2]
        kind = fast[0]
        if kind == "infix2":
            _, sym, prec, lcut, rcut = fast
            (lt, lp), (rt, rp) = operands
            return f"{f'({lt})' if lp < lcut else lt} {sym} {f'({rt})' if rp < rcut else rt}", prec
        if kind == "call1" or kind == "callN":   # (format_op's call, without attrs)
            return f"{fast[1]}{', '.join(map(_text, operands))})", PREC_ATOM
        if kind == "copy":
            return operands[0]
        if kind == "infix1":
            _, sym, prec = fast
            text, p = operands[0]
            return (f"{sym}({text})" if p <= prec else sym + text), prec
        return None

    def _with_holes(self, i: int, render: Callable[[int], tuple[str, int]]) -> tuple[str, int, tuple]:
        """(key, prec, holes) of i's right-hand side as `render(i)` spells it from its
        arguments' texts (and from theirs: NumpyRenderer's masks re-spell a comparison
        from its operands). Those texts are markers while it runs; the markers found in
        its text, in order, give the holes, and each is replaced by that variable's key
        (the text's own braces doubled first)."""
        texts, instrs = self._texts, self.trace.instrs
        near = {}
        for a in instrs[i].args:
            near[a] = None
            near.update(dict.fromkeys(instrs[a].args))
        saved = {v: texts[v] for v in near}
        for v in near:
            texts[v] = f"\x01{v}\x02"
        try:
            text, prec = render(i)
        finally:
            for v, key in saved.items():
                texts[v] = key
        order = list(map(int, _MARKER.findall(text)))
        key = _MARKER.sub(lambda m: saved[int(m.group(1))], text.replace("{", "{{").replace("}", "}}"))
        return key, prec, tuple(chain.from_iterable(map(self.holes.__getitem__, order)))


# A shape's entries depend only on the renderer's class (its _fast_text), spelling and
# indentation, not on the trace: a process's later renderers of keys (a notebook's
# next formula) find most of their shapes made (the second formula of 10² operations,
# text: ~50 shapes, ~2 µs each). Kept with the renderer's forms (render._kept_forms),
# at most _SHAPES_KEPT shapes per indentation (then begun again).
_SHAPES_KEPT = 4_096


def _shapes_of(r: KeyedRendering) -> tuple[dict, dict]:
    """The process's (inlined, stated) shape entries of renderers such as `r`."""
    kept = r._shapes.get(r._statements)
    if kept is None or len(kept[0]) + len(kept[1]) > _SHAPES_KEPT:
        kept = r._shapes[r._statements] = ({}, {})
    return kept


__all__ = ["HOLE", "KeyedRendering", "Numbers"]
