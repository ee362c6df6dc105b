"""A trace's labels as columns: a kind byte and an index per variable, no `Label`
object each.

Where it sits: inside a `Trace` (ir_trace.py). Griewank numbering
(`ir_trace.primal_labels`) makes a primal's labels here from its op codes with
NumPy (columns.py's codes), and a pass's finish (finish.py) makes a gradient's
from its builder's list; naming (backends/naming.py) and the use counts
(uses.py) read the columns, every other reader indexes or iterates a `Labels`
like the tuple it replaces: ``labels[i]`` makes the `Label` on demand, equal to
the one the tuple held. A label of the common form (kind v, dot or bar, an int
index, no base, no tag) is a byte and an int; the few others (inputs' names,
tagged sweeps) are kept whole in a dict by position.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import chain, compress, islice, repeat
from operator import countOf, is_not
from typing import Optional

import numpy as np

from .ir_trace import Label, _new_tuple

NONE, ODD = 0, 255   # kind codes: no label; a label kept whole in `odd`
# code -> the kind of a common label: primal, tangent, adjoint and the second
# order's (naming's INDEXED_KINDS, the kinds whose names it keeps by index)
KINDS = (None, "v", "dot", "bar", "dot_dot", "dot_bar", "bar_dot", "bar_bar")
_CODE = {kind: k for k, kind in enumerate(KINDS) if kind}   # (and _NO_KIND: NONE, below)
_IS_NONE = bytes([1] + [0] * 255)   # (bytes.translate: 1 where a code is NONE)
_NO_KIND = object()
_NO = (_NO_KIND, 0, None, None)   # (what None reads as, to read every label with C-level maps)
_CODE[_NO_KIND] = NONE
_BLOCK = 1 << 14   # (as_labels: labels read a block at a time)


class Labels(Sequence):
    """A read-only sequence of Optional[Label], held as columns: `kinds` (bytes, a
    code per variable: NONE, 1... for KINDS, ODD), `indexes` (an array of ints, the
    common labels' indexes) and `odd` (position -> Label, for ODD)."""

    __slots__ = ("kinds", "indexes", "odd")

    def __init__(self, kinds: bytes, indexes: array, odd: dict):
        self.kinds, self.indexes, self.odd = kinds, indexes, odd

    def __len__(self) -> int:
        return len(self.kinds)

    def __getitem__(self, i):
        if isinstance(i, slice):
            lo, hi, step = i.indices(len(self.kinds))
            if step != 1:
                return tuple(self)[i]
            return Labels(self.kinds[lo:hi], self.indexes[lo:hi],
                          {j - lo: lab for j, lab in self.odd.items() if lo <= j < hi})
        k = self.kinds[i]   # (IndexError and negative positions as a tuple's)
        if k == ODD:
            return self.odd[i % len(self.kinds)]
        return _new_tuple(Label, (KINDS[k], self.indexes[i], None, None)) if k else None

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self) -> list:
        """The labels as a list of Optional[Label] (C-level maps, then the few
        unlabelled and odd ones set)."""
        kinds = self.kinds
        out = list(map(_new_tuple, repeat(Label),
                       zip(map(KINDS.__getitem__, kinds.translate(_COMMON)), self.indexes, repeat(None), repeat(None))))
        for i in compress(range(len(kinds)), kinds.translate(_IS_NONE)):
            out[i] = None
        for i, lab in self.odd.items():
            out[i] = lab
        return out

    def __eq__(self, other):
        if isinstance(other, Labels):
            return self.kinds == other.kinds and self.odd == other.odd and _common(self) == _common(other)
        if isinstance(other, (tuple, list)):
            return len(other) == len(self) and self.tolist() == list(other)
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Labels({tuple(self)!r})"

    def __reduce__(self):
        return Labels, (self.kinds, self.indexes, self.odd)

    def derived(self, suffix: str, tag: Optional[str], one) -> list:
        """[one(label, suffix, tag) for label in self] (replay.derived_labels with
        nothing taken): a primal operation's label v_k (k > 0) gives (suffix, k,
        None, tag) straight from the columns; `one` is asked for the others."""
        out = list(map(_new_tuple, repeat(Label), zip(repeat(suffix), self.indexes, repeat(None), repeat(tag))))
        other = (np.frombuffer(self.kinds, np.uint8) != 1) | (np.frombuffer(self.indexes, self.indexes.typecode) <= 0)
        for i in other.nonzero()[0].tolist():
            out[i] = one(self[i], suffix, tag)
        return out

    def kind_index_tags(self, but: str) -> set:
        """The (kind, index, tag) of every label whose kind is not `but`."""
        keys = {(lab.kind, lab.index, lab.tag) for lab in self.odd.values() if lab.kind != but}
        kinds = np.frombuffer(self.kinds, np.uint8)
        for k in range(1, len(KINDS)):
            if KINDS[k] != but:
                at = (kinds == k).nonzero()[0]
                keys.update(zip(repeat(KINDS[k]), np.frombuffer(self.indexes, self.indexes.typecode)[at].tolist(),
                                repeat(None)))
        return keys

    def placeholders(self) -> list:
        """A builder's label list for these labels, loaded (builder_load): LOADED
        where a variable has a label, None where it has none. What the builder's
        rules ask of a loaded variable's label is whether it has one; its finish
        takes the labels from here (`filled`), so none is made as an object. (A list of
        LOADED, then the few unlabelled set to None: half the time of looking each kind up.)"""
        kinds = self.kinds
        out = [LOADED] * len(kinds)
        for i in compress(range(len(kinds)), kinds.translate(_IS_NONE)):
            out[i] = None
        return out

    def filled(self, labels: list, order: Optional[np.ndarray] = None) -> "Labels":
        """The Labels of a builder's `labels` whose first len(self) are this one's
        placeholders (the rest: as_labels), the positions `order` if given."""
        return self.extended(islice(labels, len(self.kinds), None), order)

    def extended(self, more, order: Optional[np.ndarray] = None) -> "Labels":
        """These labels then `more` (a sequence of Optional[Label], or Labels) as one
        Labels, the positions `order` if given: a pass that appends to a trace
        (its labels, then its own) hands them on as columns."""
        n = len(self.kinds)
        tail = as_labels(more)
        odd = dict(self.odd)
        odd.update((n + i, lab) for i, lab in tail.odd.items())
        # (the columns joined without a copy more than needed: a gradient's finish's peak)
        typecode = "q" if "q" in (self.indexes.typecode, tail.indexes.typecode) else "i"
        head, rest = (part.indexes if part.indexes.typecode == typecode else array(typecode, part.indexes)
                      for part in (self, tail))
        if order is None:
            return Labels(self.kinds + tail.kinds, head + rest, odd)
        order = np.asarray(order, np.intp)
        moved = np.frombuffer(self.kinds + tail.kinds, np.uint8)[order]
        indexes = array(typecode)
        indexes.frombytes(np.frombuffer(head + rest, typecode)[order].tobytes())
        odd_at = (moved == ODD).nonzero()[0].tolist()
        return Labels(moved.tobytes(), indexes, dict(zip(odd_at, map(odd.__getitem__, order[odd_at].tolist()))))

    def named(self) -> np.ndarray:
        """True where a variable has a label (a bool array)."""
        return np.frombuffer(self.kinds, np.uint8) != NONE


class _Loaded:
    """A loaded variable's label in its builder's list (Labels.placeholders): not
    None, and not a Label: whatever reads one as a label fails loudly."""
    __slots__ = ()

    def __repr__(self) -> str:
        return "<a loaded trace's label>"


LOADED = _Loaded()

_COMMON = bytes(list(range(len(KINDS))) + [0] * (256 - len(KINDS)))   # (tolist: an ODD's place filled with KINDS[0], then set)


def _common(labels: Labels) -> list:
    """The indexes of the common labels (NONE's and ODD's read as 0)."""
    keep = np.frombuffer(labels.kinds, np.uint8)
    keep = (keep != NONE) & (keep != ODD)
    return np.where(keep, np.frombuffer(labels.indexes, labels.indexes.typecode), 0).tolist() if len(keep) else []


def _index_array(values: list) -> array:
    """An int array of `values` (ints): 4 bytes an item where they all fit."""
    try:
        return array("i", values)
    except OverflowError:
        return array("q", values)


def as_labels(labels) -> Labels:
    """`labels` (a sequence of Optional[Label]) as Labels: each read once, with
    C-level maps; what is not of the common form is kept whole."""
    if isinstance(labels, Labels):
        return labels
    labs = [_NO if lab is None else lab for lab in labels]
    n = len(labs)
    kinds, index, odd_at = bytearray(), array("i"), set()
    # Each label read once, its four fields in a row, then the columns from that flat
    # list (one C-level pass over the labels, not one a field; in blocks: the flat
    # list, 32 bytes a label, stays small at a gradient's finish's peak)
    for lo in range(0, n, _BLOCK):
        m = min(_BLOCK, n - lo)
        flat = list(chain.from_iterable(labs[lo:lo + m]))
        if len(flat) != 4 * m:
            raise TypeError("a label is a Label (4 fields) or None")
        kinds += bytes(map(_CODE.get, flat[0::4], repeat(ODD)))
        for field in (flat[2::4], flat[3::4]):   # base, tag: None in a common label
            if countOf(field, None) != m:
                odd_at.update(compress(range(lo, lo + m), map(is_not, field, repeat(None))))
        part = flat[1::4]
        try:
            part = array(index.typecode, part)
        except (TypeError, OverflowError):   # (an index past int32, or not an int of int64: kept whole)
            for i, v in enumerate(part):
                if type(v) is not int or not -(1 << 63) <= v < 1 << 63:
                    part[i] = 0
                    odd_at.add(lo + i)
            part = _index_array(part)
            if part.typecode != index.typecode:
                index = array("q", index)
        index += array(index.typecode, part) if part.typecode != index.typecode else part
    if ODD in kinds:
        odd_at.update(compress(range(n), map(ODD.__eq__, kinds)))
    for i in odd_at:
        kinds[i], index[i] = ODD, 0
    return Labels(bytes(kinds), index, {i: labs[i] for i in sorted(odd_at)})


def numbered(code: np.ndarray, input_names, inputs: Optional[list] = None) -> Labels:
    """Griewank numbering from a trace's op codes (columns.py: INPUT 0, CONST 1,
    operations above): inputs v_{1-n}..v_0 named by `input_names` (in the trace's
    order), constants unlabelled, operations v_1, v_2, ... in order. `inputs`: the
    inputs' positions in order, if the caller has them (a list)."""
    if not _NUMBERED_KINDS:
        _numbered_tables()
    kinds_of, const_code, input_code = _NUMBERED_KINDS
    code = np.asarray(code, np.uint8)
    n = len(code)
    # (int32 and a byte per variable, no int64 or bool temporaries: the front end's
    # finish, where the primal's instructions and the parser's leftovers are held;
    # add.accumulate is np.cumsum without its Python wrapper: at 10^2 operations
    # this is a fixed cost of every front end)
    wide = n >= 1 << 31
    index = np.add.accumulate(code > const_code, dtype=np.int64 if wide else np.int32)
    kinds = code.tobytes().translate(kinds_of)
    if inputs is None:
        inputs = (code == input_code).nonzero()[0].tolist()
    if inputs and inputs[-1] != len(inputs) - 1:   # (inputs first: no operation before them, their index 0 already)
        index[inputs] = 0
    names = list(input_names)
    assert len(names) == len(inputs)
    odd = {i: _new_tuple(Label, ("v", k, name, None))   # (Label("v", k, base=name), without its Python __new__)
           for i, k, name in zip(inputs, range(1 - len(inputs), 1), names)}
    indexes = array("q" if wide else "i")
    indexes.frombytes(index.view(np.uint8))
    del index
    return Labels(kinds, indexes, odd)


# numbered's table, op code -> label kind code (ODD for an input, NONE for a constant,
# 1 "v" for an operation), and the codes of a constant and an input: made at its first
# call (columns.py, which holds the codes, imports the module that imports this one;
# an import statement in numbered ran the import machinery on every front end's finish)
_NUMBERED_KINDS: list = []


def _numbered_tables() -> None:
    from .columns import CONST, INPUT
    _NUMBERED_KINDS[:] = (bytes(ODD if c == INPUT else NONE if c == CONST else 1 for c in range(256)), CONST, INPUT)


__all__ = ["KINDS", "LOADED", "Labels", "NONE", "ODD", "as_labels", "numbered"]
