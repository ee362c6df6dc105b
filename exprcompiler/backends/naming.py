"""Names of trace variables in generated source (Griewank/Tangent naming), and the
only two ways user text enters generated source: identifiers and escaped comments.

Inputs keep the user's names where those are plain ASCII identifiers; every other
name goes through an injective mangling into [A-Za-z0-9_], so two inputs never
share an identifier whatever their Unicode, and no identifier is a keyword, a
header's macro or a name the generated code uses (see `identifier`). Intermediates
are v1, v2, ..., tangents v1_dot, adjoints v1_bar, shared temporaries t1, t2. An
adjoint that the trace accumulates in several SSA steps (v̄_4 = v̄_4 + v̄_5) reuses
one name once the previous version is dead, so the code reads like the lecture
table. (In a long trace most of those names, the common labels' first and their
accumulations, and the inputs' adjoints' (x_bar), are decided at once by
name_firsts.py; assign_names' loop decides the rest in order.)
"""

from __future__ import annotations

import re
from array import array
from itertools import compress, count
from typing import Iterable, Optional, Union

import numpy as np

from ..trace.ir import Label, Trace
from ..trace.ir_trace import instructions
from ..trace.render_bulk import OpCodes
from ..trace.labels import KINDS, ODD, Labels, as_labels
from .name_codes import HELD_BY_INDEX as _HELD_BY_INDEX, INDEXED_KINDS as _INDEXED_KINDS, Names, name_texts, \
    reserved_split
from .name_firsts import Aliases, Firsts, first_holders
from .name_reads import LastRead

# A plain name: ASCII letters and digits in words joined by single underscores.
# Such a name is its own identifier, unless it is reserved or looks generated.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*\Z")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Generated names look like v12, t3, vm1, v4_bar, x_dot, x_bar_x1; the kernels' own
# helpers and macros start with xc_ / XC_ (xc_pow, XC_TILE, the split kernel's guard
# XC_PRELUDE_<NAME>), a namespace no user name may enter whatever the kernel defines.
_GENERATED_FORM = re.compile(r"^(v\d+|t\d+|vm\d+)(_|$)|_(bar|dot)(_|$)|^(xc|XC)_")
ESCAPED_PREFIX = "u__"


def param_alias(name: str) -> str:
    """A trace input's name as a keyword a compiled function also takes: a seed's
    dot (x.dot, y.bar, which no identifier holds) as an underscore (x_dot, y_bar).
    (Where a user's own name is x_dot, call_args gives the seed x_dot_.)"""
    return name.replace(".", "_")


def identifier(name: str, reserved: Iterable[str] = ()) -> str:
    """The identifier of a user-supplied name: injective over all strings for one
    `reserved` set, its values in [A-Za-z_][A-Za-z0-9_]*.

    Three classes with disjoint images: a plain name that is neither reserved nor of
    a generated form is itself (no double underscore, no trailing one); a plain name
    that is gets one trailing underscore (`int` -> `int_`, `v1` -> `v1_`; still no
    double underscore); anything else is `u__` followed by its characters, letters
    and digits as they are and every other character c as `_<hex of ord(c)>_`
    (`é` -> `u___e9_`, `_ue9_` -> `u___5f_ue9_5f_`), which decodes uniquely."""
    if _PLAIN.match(name):
        return name + "_" if name in reserved or _GENERATED_FORM.search(name) else name
    return ESCAPED_PREFIX + "".join(ch if ch in _ALNUM else f"_{ord(ch):x}_" for ch in name)


def preferred_name(label: Optional[Label], reserved: Iterable[str], is_input: bool = False,
                   tags: Optional[dict[str, str]] = None) -> Optional[str]:
    """The name a label asks for (None: no label). `tags`: a cache of the tags'
    identifiers, tag -> identifier(tag, reserved), that this fills."""
    if label is None:
        return None
    suffix = "" if label.kind == "v" else "_" + label.kind
    if label.base is not None and (is_input or label.index is None or label.index <= 0):
        stem = identifier(label.base, reserved)
    else:
        stem = f"v{label.index}" if label.index >= 0 else f"vm{-label.index}"
    if not label.tag:
        return stem + suffix
    if tags is None:
        return f"{stem}{suffix}_{identifier(label.tag, reserved)}"
    tag = tags.get(label.tag)
    if tag is None:
        tag = tags[label.tag] = identifier(label.tag, reserved)
    return f"{stem}{suffix}_{tag}"


def asked_name(label: Optional[Label], reserved: Iterable[str], is_input: bool, tags: dict, ins) -> Optional[str]:
    """The name a variable asks for: its label's, or an unlabelled input's own (its
    name's identifier); None: neither (assign_names' loop and its firsts ask alike)."""
    pref = preferred_name(label, reserved, is_input, tags)
    return identifier(ins.name, reserved) if pref is None and is_input else pref


# The commonest names, v12 and v12_bar (a label of one of these kinds, untagged, no
# base, 0 <= index < the trace's length), are held in a list per kind indexed by the
# index, every other name in one dict keyed by the string. A dict of millions of
# strings took assign_names from 1.4 to 4 µs an operation between 10⁴ and 10⁶
# operations; a dict per kind keyed by the index costs a setdefault a line (0.1 µs
# more than a list's subscript) and its growth (at 10⁶ operations two dicts of a
# million ints, 80 MB; the lists, 8 bytes an instruction, 50): with lists, 1.42 ->
# 1.35 µs an operation at 10⁵, 2.1 -> 1.8 at 10⁶. A name is held in one place, chosen
# by its text (_HELD_BY_INDEX and the index's size), whichever way it was made.
_FREE = object()   # (a name no variable holds)


class _HeldAhead(dict):
    """A kind's holders by index (as _Holders' list) where first_holders set most of
    them ahead: those in the array `ahead` (-1: none), the loop's changes in the
    dict (a few hundred, where the list of every index cost 2 copies of it)."""

    __slots__ = ("ahead",)

    def __missing__(self, index: int):
        holder = int(self.ahead[index])
        return _FREE if holder < 0 else holder


class _Holders:
    """assign_names' record of which variable holds each name (None: reserved;
    _FREE: none), and the codes of the names (see Names)."""

    def __init__(self, reserved: Iterable[str], top: int):
        self.top = top   # (indices from here on: held by text)
        self.by_index: dict[str, list] = {}   # kind -> holder by index, made at the kind's first name
        self.by_text: dict[str, Optional[int]] = {}
        self.texts: list[str] = []   # the names held by text that a variable took, by code ~k
        self.text_codes: dict[str, int] = {}
        self.reserved: list[tuple[str, int]] = []   # (kind, index) of the reserved names held by index
        texts, indexed = reserved_split(reserved)   # (as place() would hold them)
        self.by_text = _held_by_none(texts)
        for name, kind, index in indexed:
            if index < top:
                self.indexed(kind)[index] = None
                self.reserved.append((kind, index))
            else:
                self.by_text[name] = None

    def indexed(self, kind: str) -> Optional[list]:
        """The list that holds names of this kind (None: a kind of no such names)."""
        held = self.by_index.get(kind)
        if held is None and kind in _INDEXED_KINDS:
            held = self.by_index[kind] = [_FREE] * self.top
        return held

    def place(self, name: str) -> tuple[Union[list, dict], object, Optional[str]]:
        """The list or dict that holds `name`, its key there, and its kind where held
        by index (else None)."""
        m = _HELD_BY_INDEX.match(name)
        if m is None or int(m[1]) >= self.top:
            return self.by_text, name, None
        kind = m[2] or "v"
        return self.indexed(kind), int(m[1]), kind

    def hold_firsts(self, firsts: "Firsts", names: Union[array, list]) -> Union[array, list]:
        """Let each name of `firsts` (first_holders': v12-form names, none reserved,
        each held by index; and the odd labels' names, held by text) be held by its
        holder, and give the variables of `firsts.at` their names in `names` (codes,
        an array: set in place; or a list of str: returned anew). (NumPy: no Python
        step per name but per odd label's name.)"""
        top = self.top
        odd_from = 8 * top   # (first_holders' codes of the odd labels' names)
        texts = firsts.texts
        # (the codes sorted: the odd labels' names last, in slices, no masks' copies;
        # odd_from of the codes' type, which searchsorted would copy to an int64's)
        split = int(np.searchsorted(firsts.names, firsts.names.dtype.type(odd_from)))
        for code, holder in zip(firsts.names[split:].tolist(), firsts.holders[split:].tolist()):
            self.by_text[texts[code - odd_from]] = holder
        # (a kind's codes are a slice of them: no array of every code's kind and index)
        held_codes = firsts.names[:split]
        bounds = np.searchsorted(held_codes, np.arange(len(KINDS) + 1, dtype=held_codes.dtype) * top).tolist()
        for k in range(1, len(KINDS)):
            lo, hi = bounds[k], bounds[k + 1]
            if lo == hi:
                continue
            held = _HeldAhead()
            held.ahead = np.full(top, -1, np.int32 if top < 1 << 31 else np.int64)
            held.ahead[held_codes[lo:hi] - k * top] = firsts.holders[lo:hi]
            for kind, key in self.reserved:
                if kind == KINDS[k]:
                    held[key] = None
            self.by_index[KINDS[k]] = held
        at, decided = firsts.at, firsts.codes
        split = int(np.searchsorted(decided, decided.dtype.type(odd_from)))
        if type(names) is array:
            codes = np.frombuffer(names, np.int32 if names.itemsize == 4 else np.int64)
            codes[at[:split]] = decided[:split]
            if texts:
                coded = np.array([self.text_code(text) for text in texts], codes.dtype)
                codes[at[split:]] = coded[decided[split:] - odd_from]
            return names
        out = np.full(len(names), None, object)   # (`names` holds none yet)
        out[at[:split]] = name_texts(decided[:split], top)
        if texts:
            out[at[split:]] = np.array(texts, object)[decided[split:] - odd_from]
        return out.tolist()

    def text_code(self, name: str) -> int:
        """The code of a name held by text (negative: see Names)."""
        code = self.text_codes.get(name)
        if code is None:
            self.texts.append(name)
            code = self.text_codes[name] = -len(self.texts)
        return code


def _held_by_none(texts: tuple) -> dict:
    """dict.fromkeys(texts), copied from one kept per tuple (reserved_split's, the same
    object for the same set): generate reserves ~250 names at every call, and their
    fromkeys cost ~17 µs, a copy ~1.4."""
    kept = _HELD_BY_NONE.get(id(texts))
    if kept is None or kept[0] is not texts:   # (the tuple kept with it: its id stays its own)
        if len(_HELD_BY_NONE) >= 16:
            _HELD_BY_NONE.clear()
        kept = _HELD_BY_NONE[id(texts)] = (texts, dict.fromkeys(texts))
    return kept[1].copy()


_HELD_BY_NONE: dict[int, tuple] = {}


def assign_names(trace: Trace, named: Union[list[bool], np.ndarray], reserved: set[str],
                 uses: Union[list[int], np.ndarray, None] = None,
                 aliases: Union[dict[int, int], Aliases, None] = None,
                 reads: Optional[np.ndarray] = None, *, coded: bool = False,
                 codes: Optional[OpCodes] = None) -> Union[list[Optional[str]], Names]:
    """One name per named variable; a name is reused only by the same label once its
    previous holder is read for the last time (by the statement that rebinds it).
    `named`: per variable, whether it has a name (a list, or an array of bools).
    `uses`: trace.render.use_counts(trace) (a list or an array), if known (it spares
    most traces the scan for each variable's last reader). `aliases`, if given (a
    dict, or a name_firsts.Aliases, which keeps most of them as arrays): each
    variable that reuses a name -> the first variable of that name (numpy_program's
    values have a slot per name). `reads`: every argument in one
    flat array (with `uses`: trace.render.use_counts_and_reads'), if known; `codes`:
    render_bulk.op_codes of the instructions, if known. `coded`: the names as a Names
    (codes; their strings made when asked for), else a list (None: no name)."""
    labels = as_labels(trace.labels)
    use_array = uses if isinstance(uses, np.ndarray) else None
    if use_array is not None:
        # (a view, read as Python ints: a list of them was 25 bytes an operation of
        # assign_names' peak of memory at 10⁵, held to its end; a subscript costs
        # ~13 ns more, and the loop asks for few)
        uses = memoryview(use_array)
    instrs = instructions(trace)   # (its length and a few items: held as columns, no tuple made)
    if len(instrs) >= FIRSTS_FROM * (1 if coded else _LISTS_FROM):
        tags = {}

        def prefer(label: Optional[Label], is_input: bool, i: int) -> str:   # (as the loop's)
            return asked_name(label, reserved, is_input, tags, instrs[i])
        firsts = [first_holders(labels, named, len(instrs) + 1, reserved, use_array, reads, codes,
                                [v for _, v in trace.inputs], prefer if len(labels.odd) >= ODD_FROM else None)]
        if firsts[0] is not None:
            try:   # (handed over in a list, which _assign empties: freed once its names are held)
                return _assign(trace, labels, named, reserved, uses, aliases, reads, coded, firsts, codes)
            except _TakenEarlier:   # (a name of the v12 form that another label asked for first)
                if aliases:
                    aliases.clear()
    return _assign(trace, labels, named, reserved, uses, aliases, reads, coded, None, codes)


# Traces of at least this many instructions have most names decided in NumPy
# (name_firsts): below, its few dozen NumPy calls cost more than the loop's steps they
# spare (CPU time, gradients of random programs: coded, the same at ~1k instructions,
# 2x faster at 10k; assign_names' µs, medians of 11-15 in a process, loop -> firsts:
# text 623 instructions 203 -> 308, 960: 345 -> 315, 1,568: 545 -> 391; deep ~1,200:
# 609 -> 387; SymPy ~1,300: 475 -> 440; 10³ operations, 3,034: 972 -> 503). Names as
# a list of str take _LISTS_FROM times as many: making the strings costs the firsts
# most of what they spare (1.2x faster at 20k, 1.6x at 128k).
# (Tests set it to 0, and above a trace's size for the loop alone: their oracle.)
FIRSTS_FROM = 1024
_LISTS_FROM = 8
# ... and the odd labels' names (name_firsts.odd_groups) where there are at least this
# many: the loop's step costs about 3 µs an odd label's variable, the odd groups'
# NumPy calls about 0.2 ms a trace (CPU time: gradients of 10⁴ and 10⁵ operations,
# the deep composition's x_bar and the random DAG's 20 odd labels). (Tests: 0.)
ODD_FROM = 64


_ALIAS_CHUNK = 1 << 14   # (aliases set from first_holders' arrays this many at a time)


class _TakenEarlier(Exception):
    """A name that first_holders gave a variable was asked for by an earlier one."""


def _assign(trace: Trace, labels: Labels, named: list[bool], reserved: set[str], uses: Optional[list[int]],
            aliases: Union[dict[int, int], Aliases, None], reads: Optional[np.ndarray], coded: bool,
            firsts: Optional[list[Firsts]], codes: Optional[OpCodes] = None) -> Union[list[Optional[str]], Names]:
    """assign_names, the firsts' names (first_holders', in a list that this empties)
    set at once, then the other named variables' in order (all of them where
    `firsts` is None)."""
    instrs = instructions(trace)   # (a few items: held as columns, no tuple made)
    top = len(instrs) + 1
    holders = _Holders(reserved, top)
    indexed, by_text = holders.by_index.get, holders.by_text
    if coded:   # (a name's code is at most 8 * top: see name_codes)
        wide = 8 * top >= 1 << 31
        names = array("q" if wide else "i", bytes((8 if wide else 4) * len(instrs)))
        bases = {kind: k * top for k, kind in enumerate(_INDEXED_KINDS, 1)}   # kind -> its names' first code

        def stored(name: str, kind: Optional[str], key) -> int:
            return holders.text_code(name) if kind is None else bases[kind] + key
    else:   # (a shorter function's: its strings made here, where name_codes' NumPy passes cost more)
        names = [None] * len(instrs)

        def stored(name: str, kind: Optional[str], key) -> str:
            return name
    if firsts is None:
        rest = compress(zip(count(), labels.kinds, labels.indexes), named)
    else:
        decided = firsts.pop()
        names = holders.hold_firsts(decided, names)
        aliased, alias_of, others = decided.aliased, decided.alias_of, decided.others
        del decided   # (its other arrays freed before the aliases' dict grows: assign_names' peak)
        if type(aliases) is Aliases:   # (as they are: no dict entry or int object each)
            aliases.set_arrays(aliased, alias_of)
        elif aliases is not None:   # (a dict: in chunks, no list of all of them beside it)
            for k in range(0, len(aliased), _ALIAS_CHUNK):
                aliases.update(zip(aliased[k:k + _ALIAS_CHUNK].tolist(), alias_of[k:k + _ALIAS_CHUNK].tolist()))
        del aliased, alias_of
        rest = zip(others, map(labels.kinds.__getitem__, others), map(labels.indexes.__getitem__, others))
    read_by = LastRead(trace, named, uses, reads, codes).read_by
    temps = 0
    tags: dict[str, str] = {}   # a label's tag -> its identifier (a Hessian's: a few, on every line)
    # A name's previous holder is most often far back (an adjoint's earlier version):
    # its instruction and label are cache misses at 10⁶ operations, so the tests below
    # read neither where they need not. `inputs` (trace.inputs: every "input"
    # instruction) answers whether it is one; a v12-form name that a v12 label took
    # is held by that same label, unless its holder is in `odd` (a label of another
    # form spelled so: a non-input's label with a base and an index of 5 is v5).
    inputs = {v for _, v in trace.inputs}
    odd: set[int] = set()
    # the labels' columns (labels.py): a common label's kind code and index, read
    # without making its Label; the others (odd, none) made when read
    for i, k, index in rest:
        if 0 < k < ODD and 0 <= index < top \
                and ((held := indexed(kind := KINDS[k])) is not None or (held := holders.indexed(kind)) is not None):
            # v12, v12_bar (most lines): what preferred_name gives, without its call
            prev = held[index]
            if prev is _FREE:   # (most lines, where no firsts were set)
                held[index] = i
                names[i] = bases[kind] + index if coded else f"v{index}" if kind == "v" else f"v{index}_{kind}"
                continue
            label = None   # (made if asked for: labels[i])
            pref = f"v{index}" if kind == "v" else f"v{index}_{kind}"
            key = index
            same = True   # (a holder of this name not in `odd` has this label)
        else:
            label = labels[i]
            is_input = instrs[i].op == "input"
            pref = asked_name(label, reserved, is_input, tags, instrs[i])
            if pref is None:
                temps += 1
                pref = f"t{temps}"
            held, key, kind = holders.place(pref)
            same = False
            if held is not by_text:
                odd.add(i)
                prev = held[key]
                if prev is not _FREE and prev is not None and prev > i:   # (a first holder, set ahead)
                    raise _TakenEarlier
            else:
                prev = by_text.get(key, _FREE)
            if prev is _FREE:
                held[key] = i
                names[i] = stored(pref, kind, key)
                continue
        # taken: by the same label's previous version, read for the last time here
        # (an adjoint's accumulation: the name goes on), or else the first of
        # pref_1, pref_2, ... that is free or so held (never of v12's form)
        # (uses[prev] all of them here: an accumulation's, decided without read_by's call)
        name, k = pref, 0
        while prev is None or prev in inputs \
                or (k or not same or prev in odd) and labels[prev] != (label or (label := labels[i])) \
                or not (uses is not None and uses[prev] == instrs[i].args.count(prev) or read_by(prev, i)):
            k += 1
            name = f"{pref}_{k}"
            prev = by_text.get(name, _FREE)
            if prev is _FREE:
                break
        else:
            if aliases is not None:
                aliases[i] = aliases.get(prev, prev)
        if k:
            held, key, kind = by_text, name, None
        held[key] = i
        names[i] = stored(name, kind, key)
    return Names(names, top, holders.texts) if coded else names


def comment_text(text: str, limit: int, *, c: bool = False) -> str:
    """User text shown in a generated comment (`# ...`, or inside `/* ... */` with
    `c=True`): one line, printable, bounded, and unable to end or redirect the comment.

    Every character that is not printable (newlines included) becomes `?`; for C,
    a printable non-ASCII one is spelled `<U+00E9>` and the backslash becomes `?`
    too (so no line splice). Then a space goes between the two characters of every
    `*/`, `/*` and `??` (C: comment end, nested opening, trigraph) or after `coding`
    before `:`/`=` (Python: an encoding declaration). That last pass inserts only
    spaces, which belong to no such pair, so its output contains none of them,
    whatever the input."""
    text = text.strip()
    # Only the first limit + 1 characters can show: each gives one character or more,
    # so a longer text is cut at limit - 3 either way (a CR cut from its LF there
    # lands past the cut too). A whole formula's text is the description of its
    # code: escaped whole, it cost ~0.1 µs a character of every generate.
    text = text[:limit + 1].replace("\r\n", "\n").replace("\n", "; ")
    flat = "".join(map(_c_char if c else _py_char, text))
    if len(flat) > limit:
        flat = flat[:limit - 3] + "..."
    return re.sub(_SPLIT_C, " ", flat) if c else _SPLIT_PY.sub(" ", flat)


def _c_char(ch: str) -> str:
    if " " <= ch <= "~":
        return "?" if ch == "\\" else ch
    return f"<U+{ord(ch):04X}>" if ch.isprintable() else "?"


def _py_char(ch: str) -> str:
    return ch if ch.isprintable() else "?"


# (C's pattern compiled by re at its first use, by the C or VM backend: compiled at import
# it cost ~0.08 ms of every `import exprcompiler`)
_SPLIT_C = r"(?<=\*)(?=/)|(?<=/)(?=\*)|(?<=\?)(?=\?)"
_SPLIT_PY = re.compile(r"(?<=coding)(?=[:=])")
