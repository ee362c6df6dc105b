"""The names of most of a long trace's named variables, decided at once in NumPy.

Where it sits: inside backends/naming.assign_names, before its loop over the named
variables in order (which gives each the name its label asks for, or reuses or
suffixes one). Most named variables of a gradient have a common label (v12, v12_bar:
the label columns' kind and index, trace/labels.py) and are either the first
variable of that label, which takes the name, or the next version of an adjoint's
accumulation (v̄ = v̄ + ...), which reuses it when its previous version is read by
it only. Both are decided here for all variables at once (a sort by name and
a few passes over the arguments' flat array), and the loop runs on the rest (a
gradient of 10⁵ operations: 560 of 232k named variables; the loop read scattered
instructions for each accumulation, about 2.5 µs each at that size).
"""

from __future__ import annotations

from itertools import repeat
from typing import Iterable, NamedTuple, Optional, Union

import numpy as np

from .. import ops as _ops
from ..trace.labels import KINDS, Labels
from ..trace.render_bulk import OpCodes
from .name_codes import HELD_BY_INDEX


class Firsts(NamedTuple):
    """first_holders' answer: names decided before assign_names' loop."""
    at: np.ndarray        # variables whose name is decided: the firsts, then the chains' members
    codes: np.ndarray     # their names' codes (name_codes: v12-form names, held by index)
    names: np.ndarray     # the names held (codes, each once) ...
    holders: np.ndarray   # ... and each one's holder when the loop starts (its chain's last)
    aliased: list         # the chains' members (that reuse a first's name) ...
    alias_of: list        # ... and the first of each
    others: list          # the other named variables, in order: the loop's


def first_holders(labels: Labels, named: Union[list[bool], np.ndarray], top: int, reserved: Iterable[str],
                   use_array: Optional[np.ndarray], reads: Optional[np.ndarray], codes: Optional[OpCodes],
                   inputs: list) -> Optional[Firsts]:
    """The names of most named variables, decided without assign_names' loop (a
    gradient of 10⁵ operations: 228k of 232k). A variable with a common label (v12,
    v12_bar: kind and index read from the columns, no Label made) that is the first
    named one of its label, its name not reserved, takes its name (the firsts). The
    next ones of that label (an adjoint's accumulation, v̄ = v̄ + ...) reuse it while
    each previous holder is read only by its successor, as the loop's use-count test
    asks (uses[prev] == its count among the successor's arguments; from `use_array`,
    `reads` and `codes`' arities, where given): a chain from the first until one
    fails, whose rest the loop decides. Only a variable of an odd label may ask for
    such a name too (a label with a base spelled v5): naming's loop then raises
    _TakenEarlier and decides every name itself. (NumPy: a sort of the codes, no
    Python step per variable.) None where the trace is too long for its keys."""
    if 8 * top * top >= 1 << 62:   # (a key beyond an int64: 10⁹ instructions)
        return None
    n = top - 1
    flags = np.array(named, bool) if isinstance(named, np.ndarray) else np.fromiter(named, bool, n)
    kinds = np.frombuffer(labels.kinds, np.uint8)
    index = np.frombuffer(labels.indexes, np.int32 if labels.indexes.itemsize == 4 else np.int64)
    common = flags & (kinds > 0) & (kinds < len(KINDS)) & (index >= 0) & (index < top)
    at = np.flatnonzero(common)
    del common
    # by name, then position: a key each, name * top + position, sorted in place (no
    # index array, as a stable argsort's, beside the arrays it orders: assign_names
    # is generate's peak of memory here, 75 bytes an operation less at 10⁵)
    key = kinds[at].astype(np.int64)
    key *= top
    key += index[at]
    key *= top
    key += at
    del at
    taken = [kind * top + i for i, kind in map(_indexed_name, reserved, repeat(top)) if kind]
    if taken:
        key = key[~np.isin(key // top, taken)]
    key.sort()
    at = (key % top).astype(np.int32 if top < 1 << 31 else np.int64)
    key //= top
    code = key.astype(np.int32) if 8 * top < 1 << 31 else key   # (name_codes' codes: at most 8 * top)
    del key
    first = np.ones(len(code), bool)
    first[1:] = code[1:] != code[:-1]
    chained = _chained(at, first, use_array, reads, codes, inputs, n)
    decided = first | chained
    # each name's holder when the loop starts: its chain's last (a chain is a prefix of its group)
    group = np.cumsum(first, dtype=np.int32 if len(first) < 1 << 31 else np.int64)
    group -= 1
    kept = np.flatnonzero(decided)
    last = np.ones(len(kept), bool)
    last[:-1] = group[kept[1:]] != group[kept[:-1]]
    holders = at[kept[last]]
    aliased = at[chained]
    alias_of = at[first][group[chained]]
    flags[at[decided]] = False
    return Firsts(at[decided], code[decided], code[first], holders, aliased.tolist(), alias_of.tolist(),
                   np.flatnonzero(flags).tolist())


def _chained(at: np.ndarray, first: np.ndarray, use_array: Optional[np.ndarray], reads: Optional[np.ndarray],
             codes: Optional[OpCodes], inputs: list, n: int) -> np.ndarray:
    """Per variable of `at` (grouped by name, each group's `first` first, then in
    order): whether it reuses its group's first name by the use-count test from the
    first on, each previous member read only by its successor (all False where the
    uses, reads or arities are not known)."""
    chained = np.zeros(len(at), bool)
    if use_array is None or reads is None or codes is None or len(at) < 2:
        return chained
    arities = [0 if name in ("input", "const") else _ops.OPS[name].arity for name in codes.names]
    if min(arities) < 0:
        return chained
    arity = np.array(arities, np.int8)[codes.code]
    ends = np.cumsum(arity, dtype=np.int32 if len(reads) < 1 << 31 else np.int64)
    if len(ends) != n or (n and int(ends[-1]) != len(reads)):
        return chained
    later = np.flatnonzero(~first)   # (in `at`: a group's second member on)
    prev, succ = at[later - 1], at[later]
    read = np.zeros(len(succ), np.int64)   # how many of succ's arguments are prev
    start = ends[succ] - arity[succ]
    for k in range(int(arity.max()) if n else 0):
        has = np.flatnonzero(arity[succ] > k)
        read[has] += reads[start[has] + k] == prev[has]
    failed = use_array[prev] != read
    if inputs:
        failed |= np.isin(prev, inputs)
    # a chain runs from its group's first while each member passes: the failures so
    # far (counted along `at`) are those before its group
    so_far = np.zeros(len(at), np.int32 if len(at) < 1 << 31 else np.int64)
    so_far[later] = failed
    np.cumsum(so_far, out=so_far)
    chained[later] = so_far[later] == np.maximum.accumulate(np.where(first, so_far, 0))[later]
    return chained


def _indexed_name(name: str, top: int) -> tuple[int, int]:
    """`name`'s index and its kind's code (1.. as KINDS) if it is of the v12 form and
    held by index (index < top), else (0, 0)."""
    m = HELD_BY_INDEX.match(name)
    if m is None or int(m[1]) >= top:
        return 0, 0
    return int(m[1]), KINDS.index(m[2] or "v")


__all__ = ["Firsts", "first_holders"]
