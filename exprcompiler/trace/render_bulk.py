"""The Renderer's keys of a whole trace at once, in NumPy: per op KIND, not per instruction.

Where it sits: trace.render.Renderer with `slots` (numpy_backend's statement program
of a long function) asks `bulk_keys` first, and renders keys variable by variable
(Renderer._render_keys) only where this declines (returns None): an op that a
subclass spells itself, an op with no fast form (transpose, index), a call with
attributes, an inlined variable read twice, a variadic op, inlined terms nested
deeper than MAX_DEPTH. `op_codes` (the trace's ops as an array) serves generate's
other stages too.

What it computes is _render_keys' result: a variable's key depends only on its op and
its operands' keys and precedences (its "shape"), so each variable gets a shape id:
1 for a hole ("{}": a named variable, a constant), 2 for a negative constant's (its
precedence is a sign's); an inlined variable's id is interned from (op, its
operands' ids) as one int, level by level (operands first), through a table (or
np.unique where the ints are too many for one); the key text of a new shape is made
once, by the Renderer's `make` (its _fast_text). A statement (a named variable's
line) is interned the same way into its key's number, numbered at first sight. A
statement's slots, its target's then its right-hand side's holes in the text's
order, are the holes of its inlined tree from left to right: each operand's start
after its left siblings' holes (their number is known per shape), a level of terms
at a time from the statements down, each hole's slot placed in one flat array
(FlatSlots: what numpy_backend's statement program takes). No Python
loop runs per instruction: a gradient of 10⁵ operations renders in about half the
time of the per-variable loop (numpy_backend's "renderer" stage, 2.2 -> 1.0 µs an
operation), and at 10⁴ as at 10⁵.
"""

from __future__ import annotations

from array import array
from itertools import chain, compress
from operator import itemgetter
from typing import Callable, NamedTuple, Optional

import numpy as np

from .. import ops as _ops
from ..ops import PREC_ATOM, PREC_NEG

MAX_ARITY = 3        # where's; a variadic op (stack, concatenate) declines
MAX_DEPTH = 64       # levels of inlined terms (a gradient's: 3 or 4)


class OpCodes(NamedTuple):
    """A trace's ops as an array (op_codes): each instruction's op as an index into
    `names`, for the stages that need only that (generate's named variables, slots,
    keys) without reading every instruction again."""
    names: list          # code -> op name (sorted)
    code: np.ndarray     # per instruction: its op's code (int16)

    def among(self, *names: str) -> np.ndarray:
        """Per instruction: whether its op is one of `names`."""
        table = np.zeros(len(self.names), bool)
        table[[k for k, name in enumerate(self.names) if name in names]] = True
        return table[self.code]


def op_codes(kinds: list) -> OpCodes:
    """OpCodes of the instructions whose op names are `kinds`."""
    code_of = {name: k for k, name in enumerate(sorted(set(kinds)))}
    return OpCodes(list(code_of), np.fromiter(map(code_of.__getitem__, kinds), np.int16, len(kinds)))


class BulkKeys(NamedTuple):
    """bulk_keys' answer: the statements (named variables but inputs), in trace
    order, their keys' numbers (in the Renderer's `keys`) and slots; every variable's
    shape id, the shapes' texts and precedences, and what a variable's holes are
    found from (holes_of)."""
    statements: np.ndarray   # variables with a line, in order
    numbered: array          # per statement: its key's number ('i')
    slots: "FlatSlots"       # per statement: its slots, its target's first
    ids: np.ndarray          # per variable: its shape id (and 0 for the "no operand" index n)
    texts: list              # per shape id: its key text
    precs: list              # per shape id: its precedence
    columns: list            # per operand position: each variable's operand there, n where none
    hole: np.ndarray         # per variable: its key is one hole
    slot_of: np.ndarray      # per variable: its slot
    constants: dict          # constant variable -> its text

    def holes_of(self, v: int) -> tuple:
        """The slots of v's key's holes, left to right (walked, not stored: wanted
        for the outputs only)."""
        found, stack, n = [], [v], len(self.slot_of)
        while stack:
            u = stack.pop()
            if self.hole[u]:
                found.append(int(self.slot_of[u]))
            else:
                stack.extend(a for a in (int(c[u]) for c in reversed(self.columns)) if a < n)
        return tuple(found)


def bulk_keys(instrs, named: list, slots: np.ndarray, fast_of: Callable[[str], tuple],
              make: Callable[[str, list], Optional[tuple]], const: Callable[[float], str], indent: str,
              keys, reads: Optional[np.ndarray] = None, codes: Optional[OpCodes] = None) -> Optional[BulkKeys]:
    """The keys of every statement of `instrs` (see the module docstring), or None
    where the per-variable renderer must do it. `named`: per variable, whether it
    has a line; `slots`: per variable its slot; `fast_of(op)`: the op's fast form
    (Renderer._generic's); `make(op, [(key, prec), ...])`: a shape's (key, prec);
    `const`: a constant's text; `keys`: the Renderer's Numbers of statement keys,
    which numbers them here at first sight in trace order, as _render_keys does.
    `reads`, `codes`: every instruction's arguments in one flat array and
    op_codes(the instructions' ops), if known."""
    n = len(instrs)
    op_names, code = codes if codes is not None else op_codes(list(map(itemgetter(0), instrs)))
    code_of = {name: k for k, name in enumerate(op_names)}
    calls = []   # codes of the ops written as calls
    for k, name in enumerate(op_names):
        if name in ("input", "const"):
            continue
        fast = fast_of(name)
        if _ops.OPS[name].arity not in range(1, MAX_ARITY + 1) or fast[0] == "format_op":
            return None
        if fast[0] in ("call1", "callN"):
            calls.append(k)
    arity = np.array([0 if name in ("input", "const") else _ops.OPS[name].arity for name in op_names])[code]
    if reads is None:
        reads = np.fromiter(chain.from_iterable(map(itemgetter(1), instrs)), np.intp)
    if int(arity.sum()) != len(reads):   # (an instruction with other arguments than its op's)
        return None
    # a call's attributes are keywords of its text (the infix forms ignore them)
    if calls and any(map(itemgetter(2), compress(instrs, np.isin(code, calls).view(np.uint8).tobytes()))):
        return None
    # operands by position, index n (a variable of none) where an op takes fewer
    starts = np.cumsum(arity) - arity
    columns = []
    for k in range(int(arity.max()) if n else 0):
        column = np.full(n + 1, n, np.int32)   # (int32 here and below: generate's peak of memory)
        has = np.flatnonzero(arity > k)
        column[has] = reads[starts[has] + k]
        columns.append(column)
    del starts, arity

    named_arr = np.asarray(named, dtype=bool)
    is_const = code == code_of.get("const", -1)
    is_input = code == code_of.get("input", -1)
    if not named_arr[is_input].all():
        return None
    hole = np.append(named_arr | is_const, False)
    inlined = ~hole
    inlined[n] = False
    inlined[:n] &= ~is_input
    # an inlined term is written where it is read: once (else a parent's offset is not one)
    if inlined.any() and np.bincount(reads, minlength=n + 1)[inlined].max() > 1:
        return None

    # shape ids: 0 none, 1 a hole, 2 a hole of a negative constant (its precedence a sign's)
    texts, precs, leaves = [None, "{}", "{}"], [None, PREC_ATOM, PREC_NEG], [0, 1, 1]
    ids = hole.astype(np.int32)
    constants = {}
    for i in np.flatnonzero(is_const).tolist():
        text = constants[i] = const(instrs[i].value)
        if text.startswith(("-", "−")):
            ids[i] = 2
    n_codes = len(op_names)

    def shapes(nodes: np.ndarray, first: bool) -> Optional[tuple]:
        """Each node's index among the distinct (op, operand ids) of `nodes`, and
        those, each as (k, op name, [(key, prec) of its operands], its operands'
        ids), in order of first sight where `first` is asked; None where the ids
        are too many for an int64."""
        radix = len(texts)
        if n_codes * radix ** len(columns) >= 1 << 62:
            return None
        combined = code[nodes].astype(np.int64)
        for column in columns:
            combined = combined * radix + ids[column[nodes]]
        space = n_codes * radix ** len(columns)
        if space <= max(1 << 16, 4 * len(nodes)):   # a table, not a sort
            seen = np.zeros(space, bool)
            seen[combined] = True
            distinct = np.flatnonzero(seen)
            index = np.empty(space, np.intp)
            index[distinct] = np.arange(len(distinct))
            where = index[combined]
        else:
            distinct, where = np.unique(combined, return_inverse=True)
        order = range(len(distinct))
        if first:
            at = np.full(len(distinct), len(nodes), np.intp)
            np.minimum.at(at, where, np.arange(len(nodes)))
            order = np.argsort(at, kind="stable").tolist()
        found = []
        for k in order:
            u, operand_ids = int(distinct[k]), []
            for _ in columns:
                u, i = divmod(u, radix)
                operand_ids.append(i)
            operand_ids = [i for i in reversed(operand_ids) if i]
            found.append((k, op_names[u], [(texts[i], precs[i]) for i in operand_ids], operand_ids))
        return where, found

    def shaped(nodes: np.ndarray, first: bool) -> Optional[tuple]:
        """shapes(nodes, first) and the texts of its new shapes (make(op, operands)
        of each), or None where either declines (then so does the bulk path)."""
        known = shapes(nodes, first)
        if known is None:
            return None
        made = [make(op, operands) for _, op, operands, _ in known[1]]
        return None if any(m is None for m in made) else (*known, made)

    # inlined terms, a level at a time (a term after its operands)
    done = ~inlined
    pending = np.flatnonzero(inlined)
    for _ in range(MAX_DEPTH):
        if not len(pending):
            break
        ready = np.ones(len(pending), bool)
        for column in columns:
            ready &= done[column[pending]]
        nodes, pending = pending[ready], pending[~ready]
        if not len(nodes):
            return None
        known = shaped(nodes, False)
        if known is None:
            return None
        where, found, made = known
        new = np.empty(len(found), np.int32)
        for (k, _, _, operand_ids), (text, prec, *_) in zip(found, made):
            new[k] = len(texts)
            texts.append(text)
            precs.append(prec)
            leaves.append(sum(map(leaves.__getitem__, operand_ids)))
        ids[nodes] = new[where]
        done[nodes] = True
    else:
        if len(pending):
            return None

    del done, pending
    # the statements' keys, numbered at first sight in trace order
    statements = np.flatnonzero(named_arr & ~is_const & ~is_input).astype(np.int32)
    del named_arr, is_const, is_input
    if len(statements):
        known = shaped(statements, True)
        if known is None:
            return None
        where, found, made = known
        number = np.empty(len(found), np.int32)
        for (k, *_), (text, *_) in zip(found, made):
            number[k] = keys[f"{indent}{{}} = {text}"]
        numbered = array("i", number[where].tobytes())
    else:
        numbered = array("i")
    code = None   # (freed: shapes() above is done with it)

    # each statement's slots: its target's, then its operands' holes, top-down
    n_leaves = np.array(leaves, np.int32)
    slot_of = np.zeros(n + 1, np.int32)   # (the "no operand" index n: never placed)
    slot_of[:n] = slots
    length = np.ones(len(statements), np.int32)
    for column in columns:
        length += n_leaves[ids[column[statements]]]
    begin = np.cumsum(length, dtype=np.int64)
    if len(begin) and begin[-1] >= 1 << 31:
        return None
    flat = np.empty(int(begin[-1]) if len(begin) else 0, np.int32)
    begin = (begin - length).astype(np.int32)
    flat[begin] = slot_of[statements]
    if not _place(flat, statements, begin + 1, columns, hole, inlined, n_leaves[ids], slot_of):
        return None
    del inlined
    return BulkKeys(statements, numbered, FlatSlots(flat, begin), ids, texts, precs, columns, hole[:n], slots,
                    constants)


def _place(flat: np.ndarray, parents: np.ndarray, base: np.ndarray, columns: list, hole: np.ndarray,
           inlined: np.ndarray, width: np.ndarray, slot_of: np.ndarray) -> bool:
    """Each hole's slot into `flat`, a level of terms at a time from the statements
    (`parents`, their right-hand side's first hole at `base`): an operand's holes
    start after its left siblings' (`width`: each variable's number of holes);
    False where the terms nest deeper than MAX_DEPTH."""
    for _ in range(MAX_DEPTH + 2):   # (the statements' level, then the terms')
        if not len(parents):
            return True
        terms, bases = [], []
        for k, column in enumerate(columns):
            a = column[parents]
            leaf = hole[a]
            flat[base[leaf]] = slot_of[a[leaf]]
            inner = inlined[a]
            terms.append(a[inner])
            bases.append(base[inner])
            if k + 1 < len(columns):
                base = base + width[a]
        parents, base = np.concatenate(terms), np.concatenate(bases)
    return not len(parents)


class FlatSlots:
    """The statements' slots in one array (`flat`: each statement's, its target's
    first, one statement after another; `begin`: where each starts), int32: what a
    statement program runs (numpy_backend.generated makes them a list of ints once
    the renderer's arrays are gone: Renderer.statements(flat=True)), or a tuple per
    statement (`tuples()`, the per-variable renderer's form)."""
    __slots__ = ("flat", "begin")

    def __init__(self, flat: np.ndarray, begin: np.ndarray):
        self.flat, self.begin = flat, begin

    def __len__(self) -> int:
        return len(self.begin)

    def __getitem__(self, k: int) -> tuple:
        """Statement k's slots (for a reader of one statement: Renderer.line_holes)."""
        end = int(self.begin[k + 1]) if k + 1 < len(self.begin) else len(self.flat)
        return tuple(self.flat[int(self.begin[k]):end].tolist())

    def tuples(self) -> list:
        """A tuple per statement of its slots, its ints one object per slot (not one
        per hole): a chunk's statements of each length at once, zip making their
        tuples in C (a third faster than a slice of one tuple each)."""
        flat, begin = self.flat, self.begin
        length = np.diff(begin, append=len(flat)).astype(np.int32)
        ints = np.arange(int(flat.max()) + 1 if len(flat) else 0).astype(object)
        out: list = []
        for start in range(0, len(begin), _CHUNK):
            lengths, starts = length[start:start + _CHUNK], begin[start:start + _CHUNK]
            cut = np.empty(len(lengths), object)
            for k in np.flatnonzero(np.bincount(lengths)).tolist():   # (np.unique's first call imports numpy.ma: 8 ms)
                these = np.flatnonzero(lengths == k)
                objects = ints[flat[(starts[these, None] + np.arange(k)).ravel()]].tolist()
                cut[these] = np.fromiter(zip(*[iter(objects)] * k), object, len(these))
            out += cut.tolist()
        return out


_CHUNK = 1 << 15   # statements made into tuples at a time (what it holds besides them: a few MB at most)


__all__ = ["BulkKeys", "FlatSlots", "MAX_DEPTH", "OpCodes", "bulk_keys", "op_codes"]
