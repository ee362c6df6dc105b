"""Rendering a trace's instructions as expressions: shared by the table printer and
the code generators.

Which variables get a line of their own: every labelled variable (v_3, v̇_3, v̄_3),
every input, and every temporary used more than once. Constants and single-use
temporaries (the inner terms of a derivative rule, e.g. cos(v_1) in
v̄_1 = v̄_1 + v̄_2 · cos(v_1)) are inlined into their one use, with the minimal
parentheses the precedence table requires. Everything here is a loop over the
trace in order: no recursion, whatever the depth.

How a target spells one operation (`Spelling`, `format_op`) is spelling.py; the use
counts and which variables are named (`named_vars`), uses.py; the trace-at-once
keys, render_bulk.py. This module is the `Renderer`.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from itertools import chain, compress, repeat
from operator import is_not
from typing import Callable, Optional, Union

import numpy as np

from .. import ops as _ops
from ..ops import PREC_ATOM
from .ir import Trace
from .render_bulk import BulkKeys, OpCodes, bulk_keys
from .spelling import Spelling, _fast_form, _text, const_prec, format_op, op_form, target_spelling
from .uses import named_array, named_vars, use_count_array, use_counts, use_counts_and_reads, uses_of

# (the spelling and the use counts live in spelling.py and uses.py; their names are
# importable from here, as before they moved)
__all__ = ["HOLE", "Numbers", "Renderer", "Spelling", "const_prec", "format_op", "named_array", "named_vars",
           "op_form", "target_spelling", "use_count_array", "use_counts", "use_counts_and_reads", "uses_of"]

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


class Renderer:
    """Renders every variable once, in trace order.

    `name_of(i)` gives the name of a named variable; `expr(i)` the (text, prec) by
    which a use refers to variable i; `rhs(i)` the right-hand side of i's line."""

    def __init__(self, trace: Trace, spell: Spelling, name_of: Callable[[int], str],
                 named: Optional[list[bool]] = None, rhs_all: Union[bool, str] = False,
                 slots: Union[list[int], np.ndarray, None] = None, reads: Optional[np.ndarray] = None,
                 codes: Optional[OpCodes] = None):
        """`rhs_all`: render every named variable's right-hand side (but inputs') in the
        same pass, for a caller that takes them all: `rhs_texts`, by variable (None for
        inputs and inlined variables), which rhs(i) then looks up. A string instead:
        `rhs_texts` holds each of those variables' whole statement, that string (an
        indentation), its name, " = " and its right-hand side, built at once (a
        function body's lines: a copy of every right-hand side fewer).

        `slots` (ints, a list or an array; with a string `rhs_all`; `named` may then be
        an array of bools): render keys instead of texts, the texts with
        `{}` for every named variable and constant (a str.format string: other braces
        doubled), and carry along the slots of those holes, in the text's order
        (`slots[v]` for variable v: numpy_backend's statement program). Then `expr(i)`
        is i's key, `holes[i]` the slots of its holes ((slots[i],) for a named variable),
        `line_holes[i]` those of i's statement (its target's, then its right-hand
        side's), and `constants` the constants' texts, by variable; `rhs_texts` holds
        the number of each statement's key in `keys` (numbered at first sight: a
        string per statement held until the end was a tenth of the peak memory at 10⁵
        operations). A statement's text is its key formatted with the texts of its
        holes (numpy_backend.generate). Where it can, the keys are made for the whole
        trace at once (render_bulk.bulk_keys: `reads`, use_counts_and_reads' array,
        saves it a pass); then rhs_texts, line_holes and holes are views made when
        read, and `statements()` gives the statements' keys and slots as made."""
        self.trace = trace
        self.spell = spell
        self.named = named = named if named is not None else named_vars(trace)
        self._forms: dict[str, tuple] = {}   # op name -> (OpDef, op_form, fast form)
        self._own = self._own_formats()
        n = len(trace.instrs)
        self._statements = rhs_all if isinstance(rhs_all, str) else None
        self.holes: Optional[_Holes] = None
        self.line_holes: Optional[list] = None
        self.constants: dict[int, str] = {}
        self.keys = Numbers()
        self._keyed = slots is not None
        self._bulk: Optional[BulkKeys] = None
        if slots is not None:
            if self._statements is None:
                raise ValueError("Renderer: slots (keys) need a string rhs_all (whole statements)")
            if self._own == set() and self._bulk_keys(slots, reads, codes):
                return
            if type(slots) is np.ndarray:   # (the per-variable renderer indexes lists)
                slots = slots.tolist()
            if type(self.named) is np.ndarray:
                self.named = self.named.tolist()
        self.rhs_texts: Optional[list] = [None] * n if rhs_all else None
        # expr(i) is (texts[i], precs[i]): two lists, not a tuple per variable
        self._precs: list[int] = [PREC_ATOM] * n
        if slots is not None:
            self._texts: list = [HOLE] * n   # every named variable's and constant's key
            self._render_keys(slots)
            return
        names = getattr(name_of, "__self__", None)
        if type(names) is list and len(names) == n and name_of == names.__getitem__:
            self._texts = names.copy()   # a names list's entries, in one copy
            name_of = None
        else:
            self._texts = [None] * n
        self._render_texts(name_of)

    def _render_texts(self, name_of: Optional[Callable[[int], str]]) -> None:
        """Every variable's text (and its right-hand side or statement, as rhs_all
        asks), once, in trace order: Renderer._format without its frame, nor
        _render's, and format_op's commonest cases (_fast_form) without its frame
        either. `name_of`: None where the texts already hold the names."""
        trace, named, spell = self.trace, self.named, self.spell
        texts, precs, rhs, indent = self._texts, self._precs, self.rhs_texts, self._statements
        own = self._own
        if own is None:
            own = range(len(trace.instrs))   # all
        format_own, forms, const = self._format, self._forms, spell.const
        for i, ins in enumerate(trace.instrs):
            op, args, attrs, _ = ins
            if op == "const":
                text = texts[i] = const(ins.value)
                precs[i] = const_prec(text)
                continue
            is_named = named[i]
            if is_named:
                if name_of is not None:
                    texts[i] = name_of(i)
                if rhs is None or op == "input":
                    continue
            line = None   # a whole statement, where a fast form writes it in one piece
            if own and i in own:
                text, prec = format_own(i)
            else:
                opdef, form, fast = forms.get(op) or self._generic(op)
                kind = fast[0] if not attrs else None
                if kind == "infix2":
                    _, sym, prec, lcut, rcut = fast
                    a, b = args
                    lt, rt = texts[a], texts[b]
                    if precs[a] < lcut:
                        lt = f"({lt})"
                    if precs[b] < rcut:
                        rt = f"({rt})"
                    if is_named and indent is not None:   # (the commonest statement, in one piece)
                        line = f"{indent}{texts[i]} = {lt} {sym} {rt}"
                    else:
                        text = f"{lt} {sym} {rt}"
                elif kind == "call1":
                    if is_named and indent is not None:
                        line = f"{indent}{texts[i]} = {fast[1]}{texts[args[0]]})"
                    else:
                        text = f"{fast[1]}{texts[args[0]]})"
                        prec = PREC_ATOM
                elif kind == "copy":
                    a = args[0]
                    text, prec = texts[a], precs[a]
                elif kind == "infix1":
                    _, sym, prec = fast
                    a = args[0]
                    text = f"{sym}({texts[a]})" if precs[a] <= prec else sym + texts[a]
                else:
                    text, prec = format_op(opdef, [(texts[a], precs[a]) for a in args], spell, attrs, form)
            if line is None:
                if not is_named:
                    texts[i] = text
                    precs[i] = prec
                    continue
                if indent is None:
                    rhs[i] = text
                    continue
                line = f"{indent}{texts[i]} = {text}"
            rhs[i] = line

    def _bulk_keys(self, slots, reads: Optional[np.ndarray], codes: Optional[OpCodes]) -> bool:
        """The keys of every variable at once (render_bulk.bulk_keys), if it can:
        rhs_texts, line_holes, holes and expr then read its arrays."""
        bulk = bulk_keys(self.trace.instrs, self.named, np.asarray(slots), self._fast_of, self._fast_text,
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
        statement keys: each is made once, and found again by that (op, keys,
        precedences) shape; the other forms, and the variables a subclass spells
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
        inlined_as: dict[tuple, tuple] = {}   # shape -> an inlined variable's (key, prec, leaves) (() : not fast)
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
                        known = stated_as[shape] = learn(i, True)
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
        two, without attrs), worked out from i: for a named variable (statement key
        number, leaves), else (key, prec, leaves); () where the op has no fast form."""
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
            return self.keys[f"{self._statements}{HOLE} = {text}"], leaves
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

    def _format_generic(self, i: int) -> tuple[str, int]:
        return Renderer._format(self, i)

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

    def _own_formats(self) -> Optional[set[int]]:
        """The variables that a subclass's _format spells itself (None: all of them,
        the default for a subclass that overrides it); the others are spelled as
        Renderer._format does, without its frame."""
        return None if type(self)._format is not Renderer._format else set()

    def _generic(self, op_name: str) -> tuple:
        op = _ops.OPS[op_name]
        form = op_form(op, self.spell)
        fast = _fast_form(op, form)
        if self._keyed and any(("{" in part or "}" in part) for part in fast[1:2]):
            fast = ("format_op",)   # (_with_holes doubles a key's own braces)
        forms = self._forms[op_name] = (op, form, fast)
        return forms

    def _render(self, i: int) -> tuple[str, int]:
        own = self._own
        return self._format(i) if own is None or i in own else Renderer._format(self, i)

    def _format(self, i: int) -> tuple[str, int]:
        ins = self.trace.instrs[i]
        generic = self._forms.get(ins.op) or self._generic(ins.op)
        return format_op(generic[0], list(map(self.expr, ins.args)), self.spell, ins.attrs, generic[1])

    def expr(self, i: int) -> tuple[str, int]:
        return self._texts[i], self._precs[i]

    def rhs(self, i: int) -> str:
        done = self._statements is None and self.rhs_texts and self.rhs_texts[i]
        return done or self._render(i)[0]

    def operands_inline(self, i: int) -> bool:
        """True when every argument of i is a named variable or a constant, so that
        substituting values for names gives the one-step arithmetic of the table."""
        return all(self.named[a] or self.trace.instrs[a].op == "const"
                   for a in self.trace.instrs[i].args)
