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
instructions for each accumulation, about 2.5 µs each at that size). So are the
names of odd labels (an input's adjoint x_bar, accumulated once per use of x: 17k of
a deep composition's 10⁵ operations) that no other variable can ask for
(`odd_groups`): a name per distinct label, then the same sort and chains. The
chains' aliases (a reused name's holder -> its first) stay arrays (`Aliases`).
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator, NamedTuple, Optional, Union

import numpy as np

from .. import ops as _ops
from ..trace.ir import Label
from ..trace.labels import KINDS, ODD, Labels
from ..trace.render_bulk import OpCodes
from .name_codes import INDEXED_KINDS, reserved_split

# The names that assign_names' loop may give a variable first_holders leaves to it: a
# common label's (v12, v12_bar, vm3: any index, the loop's where out of the columns'
# range), a temporary's (t3), a name taken, suffixed (x_bar_1). An odd label's name
# of none of these forms is asked for by odd labels only (and inputs', the loop's
# identifier(name) where they have none).
# (A pattern, compiled by re at its first use, of a long trace's only: compiled at
# import it cost ~0.12 ms of every `import exprcompiler`.)
_LOOPS = (r"vm?[0-9]+(?:_(?:%s))?\Z|t[0-9]+\Z|.*_[0-9]+\Z" % "|".join(INDEXED_KINDS[1:]), re.S)


class OddGroups(NamedTuple):
    """odd_groups' answer: the named variables of odd labels whose names first_holders
    decides, grouped by name."""
    at: np.ndarray      # the variables, in order
    group: np.ndarray   # each one's name, by its place in `names`
    label: np.ndarray   # each one's label, as an int (equal labels: equal ints)
    names: list         # the names


def odd_groups(labels: Labels, flags: np.ndarray, inputs: list, reserved: Iterable[str],
               prefer: Callable[[Optional[Label], bool, int], str]) -> Optional[OddGroups]:
    """The named variables of an odd label (`labels.odd`), and the inputs of none, whose
    name (`prefer(label, is_input, variable)`: naming's, asked once per distinct label
    but an input's) is one that no other variable asks for: not reserved, not of a
    form the loop gives (_LOOPS). None where there are none."""
    at = np.fromiter(labels.odd, np.int64, len(labels.odd))
    at = at[flags[at] & (np.frombuffer(labels.kinds, np.uint8)[at] == ODD)]
    if inputs:
        given = np.asarray(inputs, np.int64)
        plain = given[flags[given] & (np.frombuffer(labels.kinds, np.uint8)[given] == 0)]
        at = np.concatenate([at, plain])
    if not len(at):
        return None
    at.sort()
    ids = _Ids()   # label -> its int
    found = labels.odd.get   # (None: a plain input's)
    label = np.fromiter(map(ids.__getitem__, map(found, at.tolist())), np.int64, len(at))
    distinct = list(ids)
    names = _Ids()   # name -> its int
    group = np.empty(len(at), np.int64)
    is_input = _among(at, inputs)
    others = label[~is_input]
    # (a name asked for once per distinct label; with return_index, np.unique does not
    # import numpy.ma at its first call: 8-18 ms once per process)
    asked = np.unique(others, return_index=True)[0]
    name_of = np.zeros(len(distinct), np.int64)
    name_of[asked] = [names[prefer(distinct[k], False, -1)] for k in asked.tolist()]
    group[~is_input] = name_of[others]
    for w in np.flatnonzero(is_input).tolist():
        i = int(at[w])
        group[w] = names[prefer(found(i), True, i)]
    reserved = set(reserved)
    loops = re.compile(*_LOOPS).match
    keep = np.array([name not in reserved and not loops(name) for name in names], bool)[group]
    texts = list(names)
    # (the names kept renumbered: each group keeps all its variables, its first one too)
    kept, group = np.unique(group[keep], return_inverse=True)
    if not len(kept):
        return None
    return OddGroups(at[keep], group.reshape(-1), label[keep], [texts[k] for k in kept.tolist()])


class _Ids(dict):
    """A key's int, the next one at its first question (in insertion order)."""

    def __missing__(self, key) -> int:
        n = self[key] = len(self)
        return n


class Firsts(NamedTuple):
    """first_holders' answer: names decided before assign_names' loop."""
    at: np.ndarray        # variables whose name is decided: the firsts, then the chains' members
    codes: np.ndarray     # their names' codes (name_codes': v12-form names, held by index;
                          # from 8 * top on, the odd labels' names, texts[code - 8 * top])
    names: np.ndarray     # the names held (codes, each once) ...
    holders: np.ndarray   # ... and each one's holder when the loop starts (its chain's last)
    aliased: np.ndarray   # the chains' members (that reuse a first's name) ...
    alias_of: np.ndarray  # ... and the first of each (arrays: their lists, made by
                          # assign_names once this function's arrays are freed, were its peak)
    others: list          # the other named variables, in order: the loop's
    texts: list           # the odd labels' names (see codes)


def first_holders(labels: Labels, named: Union[list[bool], np.ndarray], top: int, reserved: Iterable[str],
                   use_array: Optional[np.ndarray], reads: Optional[np.ndarray], codes: Optional[OpCodes],
                   inputs: list, prefer: Optional[Callable[[Optional[Label], bool, int], str]] = None
                   ) -> Optional[Firsts]:
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
    _TakenEarlier and decides every name itself. With `prefer` (naming's name of an odd
    label: see odd_groups), so are the names of odd labels no other variable asks for,
    grouped by name as the common ones by code, a chain's labels equal as the loop
    asks. (NumPy: a sort of the codes, no Python step per variable.) None where the
    trace is too long for its keys."""
    if 9 * top * top >= 1 << 62:   # (a key beyond an int64: 10⁹ instructions)
        return None
    n = top - 1
    flags = np.array(named, bool) if isinstance(named, np.ndarray) else np.fromiter(named, bool, n)
    odd = None if prefer is None else odd_groups(labels, flags, inputs, reserved, prefer)
    kinds = np.frombuffer(labels.kinds, np.uint8)
    index = np.frombuffer(labels.indexes, np.int32 if labels.indexes.itemsize == 4 else np.int64)
    common = flags & (kinds > 0) & (kinds < len(KINDS)) & (index >= 0) & (index < top)
    at = np.flatnonzero(common)
    del common
    # by name, then position: a key each, name * top + position, sorted in place (no
    # index array, as a stable argsort's, beside the arrays it orders: assign_names
    # is generate's peak of memory here, 75 bytes an operation less at 10⁵)
    # (the odd labels' keys after the common ones', in one array: no copy to join them)
    odd_from = len(at)
    key = np.empty(odd_from + (0 if odd is None else len(odd.at)), np.int64)
    common = key[:odd_from]
    common[:] = kinds[at]
    common *= top
    common += index[at]
    common *= top
    common += at
    del at
    taken = [KINDS.index(kind) * top + i for _, kind, i in reserved_split(reserved)[1] if i < top]
    if taken:
        drop = np.flatnonzero(np.isin(common // top, taken))
        key = np.delete(key, drop)
        odd_from -= len(drop)
    del common
    if odd is not None:
        tail = key[odd_from:]
        tail[:] = odd.group
        tail += 8 * top
        tail *= top
        tail += odd.at
        del tail
    key.sort()
    at = (key % top).astype(np.int32 if top < 1 << 31 else np.int64)
    key //= top
    code = key.astype(np.int32) if 9 * top < 1 << 31 else key   # (at most 8 * top, the odd names' beyond)
    del key
    first = np.ones(len(code), bool)
    first[1:] = code[1:] != code[:-1]
    tail_labels = None if odd is None else odd.label[np.searchsorted(odd.at, at[odd_from:])]
    chained = _chained(at, first, use_array, reads, codes, inputs, n, odd_from, tail_labels)
    decided = first | chained
    # each name's holder when the loop starts: its chain's last (a chain is a prefix of
    # its group: a decided variable whose next one is not chained to it)
    # (masks, each array freed once read: the answer's arrays were assign_names' peak)
    last = decided.copy()
    last[:-1] &= ~chained[1:]
    holders = at[last]
    del last
    group = np.cumsum(first, dtype=np.int32 if len(first) < 1 << 31 else np.int64)
    group -= 1
    aliased = at[chained]
    alias_of = at[first][group[chained]]
    del group, chained
    names = code[first]
    del first
    at = at[decided]
    code = code[decided]
    del decided
    flags[at] = False
    return Firsts(at, code, names, holders, aliased, alias_of,
                   np.flatnonzero(flags).tolist(), [] if odd is None else odd.names)


class Aliases:
    """assign_names' `aliases` (each variable that reuses a name -> the first variable
    of that name) as arrays: the chains first_holders decides (its `aliased` and
    `alias_of`, as they are) and a dict of the loop's few. As a dict they were an
    entry and two int objects per aliased variable (a gradient of 10⁵ operations:
    36k of them, 3.6 MB, 36 bytes an operation of traced memory; RSS did not move,
    they fit where the gradient's pass had freed its arrays), made only to be read
    back into an array (numpy_backend's slots: `arrays()`); filling it was a sixth
    of assign_names' time (0.23 -> 0.19 µs an operation, 10⁵ text)."""

    __slots__ = ("_keys", "_values", "more", "_sorted")

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._keys = self._values = np.empty(0, np.intp)
        self.more: dict[int, int] = {}   # the loop's (never one of the arrays' keys)
        self._sorted = None

    def set_arrays(self, keys: np.ndarray, values: np.ndarray) -> None:
        """The firsts' aliases (before the loop adds its own)."""
        self._keys, self._values, self._sorted = keys, values, None

    def __len__(self) -> int:
        return len(self._keys) + len(self.more)

    def __setitem__(self, key: int, value: int) -> None:
        self.more[key] = value

    def get(self, key: int, default=None):
        if key in self.more:
            return self.more[key]
        if len(self._keys):
            if self._sorted is None:   # (the loop asks about a few variables: sorted once, if at all)
                order = np.argsort(self._keys, kind="stable")
                self._sorted = self._keys[order], self._values[order]
            keys, values = self._sorted
            j = int(np.searchsorted(keys, key))
            if j < len(keys) and keys[j] == key:
                return int(values[j])
        return default

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The aliased variables and their firsts, as two int arrays."""
        if not self.more:
            return self._keys, self._values
        more_keys = np.fromiter(self.more.keys(), np.intp, len(self.more))
        more_values = np.fromiter(self.more.values(), np.intp, len(self.more))
        return np.concatenate([self._keys, more_keys]), np.concatenate([self._values, more_values])

    def items(self) -> Iterator[tuple[int, int]]:
        keys, values = self.arrays()
        return zip(keys.tolist(), values.tolist())

    def keys(self) -> Iterator[int]:
        return iter(self.arrays()[0].tolist())

    def values(self) -> Iterator[int]:
        return iter(self.arrays()[1].tolist())


def _chained(at: np.ndarray, first: np.ndarray, use_array: Optional[np.ndarray], reads: Optional[np.ndarray],
             codes: Optional[OpCodes], inputs: list, n: int, odd_from: int = 0,
             tail_labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Per variable of `at` (grouped by name, each group's `first` first, then in
    order): whether it reuses its group's first name by the use-count test from the
    first on, each previous member read only by its successor (all False where the
    uses, reads or arities are not known). From `at[odd_from]` on, the odd labels'
    groups, whose members' labels (`tail_labels`, as ints) must be equal too."""
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
        failed |= _among(prev, inputs)
    if tail_labels is not None:   # (a group's first is no `later`: both of a pair in the tail)
        mine = np.flatnonzero(later >= odd_from)
        own = later[mine] - odd_from
        failed[mine] |= tail_labels[own] != tail_labels[own - 1]
    # a chain runs from its group's first while each member passes: the failures so
    # far (counted along `at`) are those before its group
    so_far = np.zeros(len(at), np.int32 if len(at) < 1 << 31 else np.int64)
    so_far[later] = failed
    np.cumsum(so_far, out=so_far)
    chained[later] = so_far[later] == np.maximum.accumulate(np.where(first, so_far, 0))[later]
    return chained


def _among(variables: np.ndarray, inputs: list) -> np.ndarray:
    """Per variable of `variables`: whether it is one of `inputs` (from a mask up to the
    last input, which comes early in a trace: np.isin sorts, ~40 µs a call)."""
    if not inputs:
        return np.zeros(len(variables), bool)
    last = max(inputs)
    mask = np.zeros(last + 2, bool)
    mask[inputs] = True
    return mask[np.minimum(variables, last + 1)]


__all__ = ["Aliases", "Firsts", "first_holders"]
