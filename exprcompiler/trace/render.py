"""Rendering a trace's instructions as expressions: shared by the table printer and
the code generators.

Which variables get a line of their own: every labelled variable (v_3, v̇_3, v̄_3),
every input, and every temporary used more than once. Constants and single-use
temporaries (the inner terms of a derivative rule, e.g. cos(v_1) in
v̄_1 = v̄_1 + v̄_2 · cos(v_1)) are inlined into their one use, with the minimal
parentheses the precedence table requires. Everything here is a loop over the
trace in order: no recursion, whatever the depth.

How a target spells one operation (`Spelling`, `format_op`) is spelling.py; the use
counts and which variables are named (`named_vars`), uses.py; the keys (a long
function's statements with holes), render_keys.py, and the trace-at-once keys,
render_bulk.py. This module is the `Renderer` and its texts. What a renderer works out
that does not depend on its trace (each op's form, the keys' shapes) is kept for the
process's later renderers (_kept_forms).
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from .. import ops as _ops
from ..ops import PREC_ATOM
from .ir import Trace
from .ir_trace import instructions
from .render_bulk import BulkKeys, OpCodes
from .render_keys import HOLE, KeyedRendering, Numbers, _Holes
from .spelling import Spelling, _fast_form, const_prec, format_op, op_form, target_spelling
from .uses import named_array, named_vars, use_count_array, use_counts, use_counts_and_reads, uses_of

# (the spelling, the use counts and the keys live in spelling.py, uses.py and
# render_keys.py; their names are importable from here, as before they moved)
__all__ = ["HOLE", "Numbers", "Renderer", "Spelling", "const_prec", "format_op", "named_array", "named_vars",
           "op_form", "target_spelling", "use_count_array", "use_counts", "use_counts_and_reads", "uses_of"]


class Renderer(KeyedRendering):
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
        self._keyed = slots is not None
        # op name -> (OpDef, op_form, fast form); the keys' shapes (render_keys): the process's
        self._forms, self._shapes = _kept_forms(self)
        self._own = self._own_formats()
        n = len(instructions(trace))
        self._statements = rhs_all if isinstance(rhs_all, str) else None
        self.holes: Optional[_Holes] = None
        self.line_holes: Optional[list] = None
        self.constants: dict[int, str] = {}
        self.keys = Numbers()
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

    def _format_generic(self, i: int) -> tuple[str, int]:
        return Renderer._format(self, i)

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


# The forms of ops (Renderer._generic: ~2 µs an op, some 15 ops a gradient) depend on
# the renderer's class, spelling and keys, not on the trace, and so do the keys' shapes
# (render_keys._shapes_of): kept for the process's later renderers (a notebook's next
# formula), as long as the op table holds the same definitions (a test may swap one).
_FORMS: dict[tuple, tuple[dict, dict]] = {}


def _kept_forms(r: Renderer) -> tuple[dict, dict]:
    """The (forms, shapes) that renderers such as `r` share: op name -> _generic's
    entry, and indentation -> render_keys' shapes."""
    cls = type(r)
    key = (cls, cls._generic, cls._fast_text, r.spell, r._keyed)
    try:
        kept = _FORMS.get(key)
    except TypeError:   # (a spelling that is not hashable: its own)
        return {}, {}
    ops = _ops.OPS
    if kept is None or not all(ops.get(name) is entry[0] for name, entry in kept[0].items()):
        if len(_FORMS) >= 32:
            _FORMS.clear()
        kept = _FORMS[key] = ({}, {})
    return kept
