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

Memory: this was generate's peak (at 10⁵ operations RSS rose 100-140 bytes an
operation here, in arrays that NumPy takes from malloc, where the Python objects
freed before leave no room). Now every array of a variable or a statement is int32
or narrower (shape ids a byte while they fit), whole-trace passes make their
temporaries a span (_SPAN, smaller than a 10⁴-operation gradient) at a time, and
generate's array of reads is handed over and freed once read: the rise is a few
bytes an operation, what it holds fitting where earlier stages' arrays were.
Indices go to NumPy as intp, a span at a time (it casts an int32 index array at
each use: twice a gather's cost).
"""

from __future__ import annotations

from array import array
from itertools import chain
from operator import itemgetter
from typing import Callable, NamedTuple, Optional, Union

import numpy as np

from .. import ops as _ops
from ..ops import PREC_ATOM, PREC_NEG
from .column_instrs import any_attrs
from .columns import OP_NAMES, UNKNOWN, op_code_bytes

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
        # a comparison per op asked for (one to three), not a gather through a table:
        # NumPy casts the int16 codes to intp for one (3,034 instructions: 16 -> 5 µs)
        found = None
        for k, name in enumerate(self.names):
            if name in names:
                found = self.code == k if found is None else found | (self.code == k)
        return np.zeros(len(self.code), bool) if found is None else found


def op_codes(kinds: list) -> OpCodes:
    """OpCodes of the instructions whose op names are `kinds`."""
    code_of = {name: k for k, name in enumerate(sorted(set(kinds)))}
    return OpCodes(list(code_of), np.fromiter(map(code_of.__getitem__, kinds), np.int16, len(kinds)))


def arities(codes: OpCodes, total: int) -> Optional[np.ndarray]:
    """Each instruction's number of arguments (int8) as its op's arity says, from
    `codes` (no read of the instructions); None where an op takes a varying number
    (stack, concatenate) or the arities do not add up to `total`, the trace's
    arguments (an instruction with other arguments than its op's)."""
    table = [0 if name in ("input", "const") else getattr(_ops.OPS.get(name), "arity", -1) for name in codes.names]
    if any(a < 0 or a > 127 for a in table):   # (-1: variadic, or no such op)
        return None
    arity = np.array(table, np.int8)[codes.code]
    return arity if int(arity.sum(dtype=np.int64)) == total else None


def table_codes(instrs) -> np.ndarray:
    """Each instruction's op as its code in ops' one table (trace/columns.py: a byte
    each, UNKNOWN for an op registered after import), from one C-level pass (no list
    of op names, no dict per instruction: generate's op codes, half the time)."""
    return np.frombuffer(op_code_bytes(instrs), np.uint8)


def op_codes_of_table(table: np.ndarray) -> Optional[OpCodes]:
    """The OpCodes (as op_codes numbers them: by sorted name) of ops given as
    table_codes; None where one is UNKNOWN."""
    raw = table.tobytes()
    # (from _COUNTED_FROM instructions the codes present by a count of each, not a set
    # of the bytes' ints: 17 -> 4 µs on a gradient of 10³ operations, 2,650 instructions)
    present = bytes(sorted(set(raw))) if len(raw) < _COUNTED_FROM else \
        np.bincount(np.frombuffer(raw, np.uint8), minlength=256).nonzero()[0].astype(np.uint8).tobytes()
    made = _NUMBERED.get(present)
    if made is None:
        if present and present[-1] == UNKNOWN:
            return None
        names = sorted(OP_NAMES[c] for c in present)
        number = bytearray(UNKNOWN + 1)   # table code -> its name's place in `names`
        for c in present:
            number[c] = names.index(OP_NAMES[c])
        if len(_NUMBERED) >= 256:
            _NUMBERED.clear()
        made = _NUMBERED[present] = (names, bytes(number))
    names, number = made
    # (bytes.translate and one cast, not NumPy's bincount and gathers: at 10² operations
    # their fixed costs were most of this, twice a generate)
    return OpCodes(list(names), np.frombuffer(raw.translate(number), np.uint8).astype(np.int16))


# (op_codes_of_table: at 100 instructions the set and the count cost the same, ~1.3 µs)
_COUNTED_FROM = 512

# the ops present (their table codes, ascending, as bytes) -> (their names, sorted; a
# translation of table codes to places among those names): a few op sets recur
_NUMBERED: dict[bytes, tuple[list, bytes]] = {}


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
              keys, reads: Union[np.ndarray, list, None] = None,
              codes: Optional[OpCodes] = None) -> Optional[BulkKeys]:
    """The keys of every statement of `instrs` (see the module docstring), or None
    where the per-variable renderer must do it. `named`: per variable, whether it
    has a line; `slots`: per variable its slot (an int array); `fast_of(op)`: the
    op's fast form (Renderer._generic's); `make(op, [(key, prec), ...])`: a shape's
    (key, prec); `const`: a constant's text; `keys`: the Renderer's Numbers of
    statement keys, which numbers them here at first sight in trace order, as
    _render_keys does. `reads`, `codes`: every instruction's arguments in one flat
    array and op_codes(the instructions' ops), if known; `reads` may come in a
    list, which this empties: handed over, it is freed once read (generate's: its
    callers' frames then hold none of it while the slots are placed).

    Memory: every array of a variable or a statement is int32 or smaller, and the
    temporaries of a whole pass are made a span of _SPAN at a time, so that little
    more than the answer is held at once (generate's peak of memory was here)."""
    if type(reads) is list:
        reads = reads.pop() if reads else None
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
    if reads is None:
        reads = np.fromiter(chain.from_iterable(map(itemgetter(1), instrs)), np.intp)
    arity = arities(OpCodes(op_names, code), len(reads))
    if arity is None:
        return None
    # a call's attributes are keywords of its text (the infix forms ignore them)
    if calls:
        is_call = np.zeros(len(op_names), bool)
        is_call[calls] = True
        if any_attrs(instrs, is_call[code].view(np.uint8).tobytes()):
            return None
    columns = _operands(arity, reads)
    del arity

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
    if not _read_once(reads, inlined):
        return None
    del reads

    # shape ids: 0 none, 1 a hole, 2 a hole of a negative constant (its precedence a sign's)
    texts, precs, leaves = [None, "{}", "{}"], [None, PREC_ATOM, PREC_NEG], [0, 1, 1]
    ids = hole.astype(np.uint8)   # (widened as the shapes grow many: _wide)
    constants = {}
    for i in np.flatnonzero(is_const).tolist():
        text = constants[i] = const(instrs[i].value)
        if text.startswith(("-", "−")):
            ids[i] = 2
    n_codes = len(op_names)

    def shapes(nodes: np.ndarray, first: bool) -> Optional[tuple]:
        """Each node's index among the distinct (op, operand ids) of `nodes` (indices),
        and those, each as (k, op name, [(key, prec) of its operands], its
        operands' ids), in order of first sight where `first` is asked; None where
        the ids are too many for an int64."""
        radix = len(texts)
        space = n_codes * radix ** len(columns)
        if space >= 1 << 62:
            return None
        combined = np.empty(len(nodes), np.int32 if space < 1 << 31 else np.int64)
        for lo, part in _spans(nodes):
            one = code[part].astype(np.intp)
            for column in columns:
                one *= radix
                one += ids[column[part].astype(np.intp)]
            combined[lo:lo + _SPAN] = one
        if space <= max(1 << 16, 4 * len(nodes)) and combined.dtype == np.int32:   # a table, not a sort
            seen = np.zeros(space, bool)
            for _, part in _spans(combined):
                seen[part] = True
            distinct = np.flatnonzero(seen)
            index = np.empty(space, np.int32)
            index[distinct] = np.arange(len(distinct))
            where = combined   # (overwritten in place)
            for lo, part in _spans(combined):
                where[lo:lo + _SPAN] = index[part]
        else:
            distinct, where = np.unique(combined, return_inverse=True)
        del combined
        order = range(len(distinct))
        if first:
            at = np.full(len(distinct), len(nodes), np.intp)
            for lo in range(0, len(nodes), _SPAN):
                np.minimum.at(at, where[lo:lo + _SPAN], np.arange(lo, min(lo + _SPAN, len(nodes))))
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
    del inlined   # (_place reads the inlined off `hole`)
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
        ids = _wide(ids, len(texts) + len(found))
        new = np.empty(len(found), ids.dtype)
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
    statements = _indices(named_arr & ~is_const & ~is_input)
    del named_arr, is_const, is_input
    numbered = array("i")
    if len(statements):
        known = shaped(statements, True)
        if known is None:
            return None
        where, found, made = known
        number = np.empty(len(found), np.int32)
        for (k, *_), (text, *_) in zip(found, made):
            number[k] = keys[f"{indent}{{}} = {text}"]
        for lo in range(0, len(where), _SPAN):
            numbered.frombytes(number[where[lo:lo + _SPAN]].view(np.uint8))
        del where
    code = None   # (freed: shapes() above is done with it)

    # each statement's slots: its target's, then its operands' holes, top-down
    width = np.array(leaves, np.min_scalar_type(max(leaves)))[ids]   # per variable: its key's holes
    begin = _begins(statements, columns, width)
    if begin is None:
        return None
    begin, total = begin
    flat = np.empty(total, np.int32)
    slots = np.asarray(slots)
    for lo in range(0, len(statements), _SPAN):   # (indices as intp: NumPy casts others at each use)
        parents, base = statements[lo:lo + _SPAN].astype(np.intp), begin[lo:lo + _SPAN].astype(np.intp)
        flat[base] = slots[parents]
        base += 1
        if not _place(flat, parents, base, columns, hole, width, slots):
            return None
    del width
    return BulkKeys(statements, numbered, FlatSlots(flat, begin), ids, texts, precs, columns, hole[:n], slots,
                    constants)


# variables or statements whose temporaries are made at once (64 kB an int64 array).
# At 2^16 a 10^4-operation gradient (~3·10^4 variables) was one span, and the passes'
# temporaries were whole-trace arrays: 40 bytes a variable above what bulk_keys
# returns (tracemalloc), 10-15 at 2^13; bench_frontend's bytes an operation at 10^4
# (medians of 5-6 fresh processes), text 1,184 -> 1,135, deep 1,131 -> 1,079. The
# renderer is as fast or faster so (CPU, text, 7-9 runs: 10^4 0.51 -> 0.43 µs an
# operation, 10^5 0.43 -> 0.39; 2^12: 0.46, 0.41).
_SPAN = 1 << 13


def _operands(arity: np.ndarray, reads: np.ndarray) -> list:
    """Per operand position, each variable's operand there (an int32 array of n + 1),
    n (a variable of none) where its op takes fewer: from `arity` (per variable)
    and `reads` (every argument, in order), a span of variables at a time."""
    n = len(arity)
    columns = [np.full(n + 1, n, np.int32) for _ in range(int(arity.max()) if n else 0)]
    at = 0   # where the span's first variable's arguments start in reads
    for lo in range(0, n, _SPAN):
        counts = arity[lo:lo + _SPAN]
        starts = np.cumsum(counts, dtype=np.intp)
        span = int(starts[-1])   # (the span's arguments)
        starts -= counts
        starts += at
        for k, column in enumerate(columns):
            has = np.flatnonzero(counts > k)
            column[lo:lo + _SPAN][has] = reads[starts[has] + k]
        at += span
    return columns


def _read_once(reads: np.ndarray, inlined: np.ndarray) -> bool:
    """Whether no variable that `inlined` marks is read twice: as many reads of them
    as variables read (no count per variable: a bool each)."""
    if not inlined.any():
        return True
    seen, count = np.zeros(len(inlined), bool), 0
    for _, part in _spans(reads):
        read = part[inlined[part]]
        seen[read] = True
        count += len(read)
    return int(np.count_nonzero(seen)) == count


def _spans(a: np.ndarray):
    """(start, that span of `a` as intp) for each span of _SPAN: indices as NumPy
    takes them (it casts others at each use, at twice the cost of a gather)."""
    for lo in range(0, len(a), _SPAN):
        yield lo, a[lo:lo + _SPAN].astype(np.intp)


def _indices(mask: np.ndarray) -> np.ndarray:
    """np.flatnonzero(mask) as int32, a span at a time (no int64 array of them all)."""
    out = np.empty(int(np.count_nonzero(mask)), np.int32)
    at = 0
    for lo in range(0, len(mask), _SPAN):
        found = np.flatnonzero(mask[lo:lo + _SPAN])
        found += lo
        out[at:at + len(found)] = found
        at += len(found)
    return out


def _wide(ids: np.ndarray, top: int) -> np.ndarray:
    """`ids`, as a wider int where its type does not hold `top` (one past the ids to come)."""
    if top <= np.iinfo(ids.dtype).max:
        return ids
    return ids.astype(np.int16 if top < 1 << 15 else np.int32)


def _begins(statements: np.ndarray, columns: list, width: np.ndarray) -> Optional[tuple]:
    """Where each statement's slots start in the flat array (int32: its target's,
    then its operands' holes), and their total; None past an int32's range."""
    begin = np.empty(len(statements), np.int32)
    total = 0
    for lo in range(0, len(statements), _SPAN):
        parents = statements[lo:lo + _SPAN].astype(np.intp)
        length = np.ones(len(parents), np.int64)
        for column in columns:
            length += width[column[parents].astype(np.intp)]
        ends = np.cumsum(length)
        ends += total
        total = int(ends[-1])
        if total >= 1 << 31:
            return None
        ends -= length
        begin[lo:lo + _SPAN] = ends
    return begin, total


def _place(flat: np.ndarray, parents: np.ndarray, base: np.ndarray, columns: list, hole: np.ndarray,
           width: np.ndarray, slots: np.ndarray) -> bool:
    """Each hole's slot into `flat`, a level of terms at a time from the statements
    (`parents`, their right-hand side's first hole at `base`): an operand's holes
    start after its left siblings' (`width`: each variable's number of holes;
    `slots`: its slot); False where the terms nest deeper than MAX_DEPTH. An operand
    that is no hole is an inlined term (inputs are holes), but n, "no operand"."""
    n = len(hole) - 1
    for _ in range(MAX_DEPTH + 2):   # (the statements' level, then the terms')
        if not len(parents):
            return True
        terms, bases = [], []
        for k, column in enumerate(columns):
            a = column[parents].astype(np.intp)
            leaf = hole[a]
            flat[base[leaf]] = slots[a[leaf]]   # (n, "no operand", is no hole: never placed)
            inner = a < n   # (not read from an array of the inlined: a gather fewer, of a random place each)
            inner &= ~leaf
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
