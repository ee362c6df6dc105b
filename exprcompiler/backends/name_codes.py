"""Names of trace variables as int codes, their texts made many at a time by NumPy.

Where it sits: backends/naming.assign_names gives each named variable of a trace its
name and hands them over as `Names` (coded=True: numpy_backend.generated) or as a
list of str. Most names are a label's kind and index, v12 or v12_bar; held as a str
each (about 57 bytes, and 8 for its pointer), the names of a 10⁵-operation gradient
were 155 bytes an operation of generate's peak of memory, and each cost a Python
format (~0.15 µs). Here a name is an int in one array, and the text of many names is
made at once as bytes (`_text`): the digits by division, the kind's suffix and any
other name's text copied in, a newline after each; a few NumPy passes per chunk of
names, not a Python step per name. A long function's slot texts (program_text.Texts)
are made so, a chunk at a time, and no str per name is ever held.

Codes: 0 no name; the v12 form of kind k (1 "v", 2 "dot", 3 "bar", ... in
INDEXED_KINDS' order) k * top + the index (top: more than any index); any other name
(an input's, t3, v4_bar_1, a tagged one; a constant's text, set_text) ~j, its text
`texts[j]`.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from typing import Callable, Iterable, Optional

import numpy as np

INDEXED_KINDS = ("v", "dot", "bar", "dot_dot", "dot_bar", "bar_dot", "bar_bar")
# The names of that form (v12, v12_bar), which naming holds by index: the index, the kind
HELD_BY_INDEX = re.compile(r"v(0|[1-9][0-9]*)(?:_(%s))?\Z" % "|".join(INDEXED_KINDS[1:]))
# per kind code (0: a name held by text, which has no suffix): the suffix after v12
_SUFFIXES = [b""] + [b"" if kind == "v" else b"_" + kind.encode() for kind in INDEXED_KINDS]
_SUFFIX_TEXTS = [suffix.decode() for suffix in _SUFFIXES]
_SUFFIX_LENGTHS = np.array([len(s) for s in _SUFFIXES], np.int64)
# by an index array's itemsize: the powers of ten from 10 that its type holds (an index's digits, less one, are
# how many of them it reaches: np.searchsorted)
_POWERS = {4: np.array([10 ** k for k in range(1, 10)], np.int32),
           8: np.array([10 ** k for k in range(1, 19)], np.int64)}
# names made into bytes at a time: _text's dozen arrays of a chunk are held at once
# (at 1 << 15, 2.6 MB: generate's peak of memory at 10⁴ operations, 110-170 bytes an
# operation above the rest; at this size as fast at 10⁵-10⁶ names, faster at 10⁴)
_CHUNK = 1 << 13
# fewer names than this are made one at a time in Python (Names.joined): _text's two
# dozen NumPy calls cost more there (250 names: 68 -> 44 µs; even at ~450)
_FEW = 400


class Names:
    """Every variable's name as a code (see the module docstring): `names[v]`,
    `list()`, `joined(variables)`."""

    __slots__ = ("codes", "top", "texts")

    def __init__(self, codes: array, top: int, texts: list):
        self.codes, self.top, self.texts = codes, top, texts

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, v: int) -> Optional[str]:
        code = self.codes[v]
        if code < 0:
            return self.texts[~code]
        if not code:
            return None
        kind, index = divmod(code, self.top)
        return f"v{index}{_SUFFIXES[kind].decode()}"

    def set_text(self, v: int, text: str) -> None:
        """Give variable v the name, or text (a constant's), `text` (no newline)."""
        self.texts.append(text)
        self.codes[v] = -len(self.texts)

    def list(self) -> list[Optional[str]]:
        """Every variable's name (None: none), as assign_names gives them."""
        codes = self._array()
        out = np.full(len(codes), None, object)
        at = np.flatnonzero(codes)
        if len(at):
            out[at] = self.joined(at).split("\n")
        return out.tolist()

    def joined(self, variables: np.ndarray) -> str:
        """The names of `variables` (an index array; each has a name), joined by
        newlines."""
        if len(variables) < _FEW:   # (one at a time: _text's NumPy passes cost more than they save)
            codes, top, texts = self.codes, self.top, self.texts
            return "\n".join([texts[~code] if code < 0 else f"v{code % top}{_SUFFIX_TEXTS[code // top]}"
                              for code in map(codes.__getitem__, variables.tolist())])
        codes = self._array()
        # (in the codes' type: int32 divides faster)
        text = b"".join([_text(codes[variables[k:k + _CHUNK]], self.top, self.texts)
                         for k in range(0, len(variables), _CHUNK)])
        return str(memoryview(text)[:-1], "utf-8")   # (decoded from a view: no copy of the bytes but the str)

    def deferred(self, variables: np.ndarray) -> Callable[[], str]:
        """joined(variables), made when called; meanwhile only their codes (4 or 8 bytes
        each) and the texts are held, not these names nor every variable's code."""
        part = Names(array(self.codes.typecode, self._array()[variables].tobytes()), self.top, self.texts)
        return lambda: part.joined(np.arange(len(part)))

    def holders(self, variables) -> int:
        """How many variables hold the names of these."""
        codes = self._array()
        return int(np.count_nonzero(np.isin(codes, codes[np.asarray(variables, np.intp)])))

    def _array(self) -> np.ndarray:
        return np.frombuffer(self.codes, np.int32 if self.codes.typecode == "i" else np.int64)


def reserved_split(reserved: Iterable[str]) -> tuple[tuple[str, ...], tuple[tuple[str, str, int], ...]]:
    """`reserved`'s names (as naming's _Holders and name_firsts hold them): those
    not of the v12 form (held by text whatever the trace), and those that are, as
    (name, kind, index) (held by index where the index is below the trace's `top`).
    Kept per set: generate passes the same ~250 names (Python's keywords, builtins,
    the runtime's helpers) at every call, and matching each was ~0.2 ms of a call
    (0.2 µs an operation at 10³ operations)."""
    key = reserved if type(reserved) is frozenset else frozenset(reserved)
    split = _SPLITS.get(key)
    if split is None:
        names = sorted(key)   # (sorted: the same order whatever the set's)
        # Only a name that starts with v can match: those are matched one by one, the
        # others (nearly all) kept at once (a fresh process's first generate splits
        # this set: 0.05 -> 0.03 ms)
        lo, hi = bisect_left(names, "v"), bisect_left(names, "w")
        texts, indexed = names[:lo], []
        for name in names[lo:hi]:
            m = HELD_BY_INDEX.match(name)
            if m is None:
                texts.append(name)
            else:
                indexed.append((name, m[2] or "v", int(m[1])))
        texts += names[hi:]
        if len(_SPLITS) >= _SPLITS_KEPT:
            _SPLITS.clear()
        split = _SPLITS[key] = tuple(texts), tuple(indexed)
    return split


_SPLITS: dict = {}   # frozenset of reserved names -> reserved_split's answer
_SPLITS_KEPT = 64    # (sets kept: a function name each, with the backends' reserved names)


def name_texts(codes: np.ndarray, top: int) -> list[str]:
    """The names of `codes` (each a v12-form name's, no odd one), as a list of str."""
    codes = codes.astype(np.int64)
    if not len(codes):
        return []
    text = b"".join([_text(codes[k:k + _CHUNK], top, []) for k in range(0, len(codes), _CHUNK)])
    return text[:-1].decode().split("\n")


def _text(codes: np.ndarray, top: int, texts: list) -> bytes:
    """The names of `codes` (none 0; an int32 or int64 array), each followed by a
    newline, as UTF-8 bytes."""
    odd_at = np.flatnonzero(codes < 0)
    kinds = codes // top
    index = codes - kinds * top
    if len(odd_at):
        kinds[odd_at] = 0
        index[odd_at] = 0
    digits = np.searchsorted(_POWERS[index.dtype.itemsize], index, "right")   # (of each index, less one)
    digits += 1
    length = _SUFFIX_LENGTHS[kinds]
    length += digits
    length += 2   # "v" and the newline
    if len(odd_at):
        odd_texts = [texts[~c].encode() for c in codes[odd_at].tolist()]
        length[odd_at] = [len(t) + 1 for t in odd_texts]
    pad = int(digits.max()) if len(digits) else 0
    end = np.cumsum(length)
    end += pad   # (the first `pad` bytes of `out`: where the first names' leading zeros fall, see below)
    out = np.empty(int(end[-1]) if len(end) else 0, np.uint8)
    start = end - length
    if len(odd_at):
        odd_start, odd_length = start[odd_at], length[odd_at] - 1
        regular = np.flatnonzero(codes >= 0)
        start, kinds, index, digits = start[regular], kinds[regular], index[regular], digits[regular]
    # Digit k (from the right) of every indexed name at once, whatever its number of
    # digits (no mask of the names that have one), k descending: a name's leading
    # zeros fall on its "v" and the bytes before it, which are written after them:
    # another name's digit of a place k' < k (at least 2 + k - k' bytes after it:
    # by a later k'), else a "v", suffix or newline, or an odd name's text, below.
    place = start + digits   # (its last digit's)
    quotients = [index]
    for _ in range(pad - 1):
        quotients.append(quotients[-1] // 10)
    digit = np.empty(len(index), np.uint8)
    for k in range(pad - 1, -1, -1):
        q = quotients[k] if k + 1 == pad else quotients[k] - quotients[k + 1] * 10
        np.add(q, 48, out=digit, casting="unsafe")
        out[place - k] = digit
    out[start] = ord("v")
    place += 1
    for kind in range(1, len(_SUFFIXES)):
        suffix = _SUFFIXES[kind]
        at = place[kinds == kind] if suffix else ()
        for j, byte in enumerate(suffix if len(at) else ()):
            out[at + j] = byte
    out[end - 1] = ord("\n")
    if len(odd_at):
        _copy(out, odd_start, np.frombuffer(b"".join(odd_texts), np.uint8), odd_length)
    return out[pad:].tobytes()


def _copy(out: np.ndarray, to: np.ndarray, source: np.ndarray, lengths: np.ndarray) -> None:
    """Copy `source`'s consecutive pieces of `lengths` into `out` at `to` (no loop)."""
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[np.repeat(to, lengths) + within] = source[np.repeat(np.cumsum(lengths) - lengths, lengths) + within]


__all__ = ["HELD_BY_INDEX", "INDEXED_KINDS", "Names", "name_texts", "reserved_split"]
