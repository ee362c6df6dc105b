"""The evaluation trace's data: an immutable SSA list of elementary operations.

Where it sits: every front end (string parser, SymPy bridge) and every pass
(simplify, forward, reverse) produces a `Trace` through a `Builder` (builder.py);
the checker, the printers and the backends read it. This module holds only the
data and what reads it: the instruction (`Instr`), the variable's name (`Label`),
the finished `Trace`, Griewank numbering and the naming of inputs and outputs.
`trace.ir` gathers the names of all three modules.

Variables are plain ints (positions in the instruction list). A `Label` says how
the printer and the code generators should name a variable: the primal ``v_3``,
its tangent ``v̇_3`` or its adjoint ``v̄_3``. Unlabelled variables are temporaries
that printers inline into their single use (or name ``t…`` when shared). A
finished trace holds its labels as columns (`labels.Labels`, a read-only sequence
whose items are made on demand, equal to the Labels a tuple held). The bulk reverse
sweep's gradient and the SymPy front end's primal hold their instructions so too
(a `LazyInstrs`: column_instrs.py):
`trace.instrs` makes their tuple on first asking; `instructions(trace)` gives the
sequence as held, for a reader that asks for its length or a few items.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import Iterable, NamedTuple, Optional, Sequence

import numpy as np

Var = int


class Instr(NamedTuple):
    """One operation. A named tuple, not a dataclass: a 10⁶-operation trace holds
    millions of these, and a tuple is built in a third of the time of a frozen
    dataclass and holds no per-instance dict."""
    op: str
    args: tuple = ()
    attrs: tuple = ()          # (("key", value), ...) — hashable, ordered
    shape: tuple = ()

    def attr(self, key, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def value(self) -> float:
        return self.attr("value")

    @property
    def name(self) -> str:
        return self.attr("name")


# _new_tuple(Instr, (op, args, attrs, shape)) is Instr(op, args, attrs, shape) without
# the named tuple's Python-level __new__, a frame per call on millions of calls: for
# the hot paths, which give all four fields in order.
_new_tuple = tuple.__new__


class Label(NamedTuple):
    """How a variable is named: kind "v" (primal), "dot" (tangent) or "bar" (adjoint)
    of the primal variable numbered `index`; `base` is the user's name for inputs and
    seeds (x1, y); `tag` tells apart several sweeps in one trace (direction x1...).
    A named tuple for the same reason as `Instr`."""
    kind: str
    index: int
    base: Optional[str] = None
    tag: Optional[str] = None


class LazyInstrs(Sequence):
    """A trace's instructions held otherwise than as tuples (as columns:
    column_instrs.ColumnInstrs): a read-only sequence of `len()` and single items,
    whose `made()` is the tuple of them all, equal item by item; `cols`, their
    Columns (columns.py)."""

    __slots__ = ()
    cols = None

    def made(self) -> tuple:
        raise NotImplementedError


class Trace:
    """An immutable evaluation trace. `str(trace)` prints the Griewank table."""

    __slots__ = ("_instrs", "labels", "outputs", "source", "_inputs", "_all_live", "_columns", "_built")

    def __init__(self, instrs: Sequence[Instr], labels: Sequence[Optional[Label]],
                 outputs: Sequence[tuple[str, int]], source: Optional[str] = None, *, _inputs=None,
                 _all_live: bool = False, _columns=None):
        # (object.__setattr__ read once, a list made into the outputs' tuple, and a
        # Labels' type looked at before the ABC's isinstance: a fixed cost of every
        # finish, 2.6k of a 10-instruction front end finish's 147k Ir)
        put = object.__setattr__
        # (a LazyInstrs kept as it is: its tuples made when `instrs` is first asked for;
        # a tuple's type looked at first: the ABC's first "no" walked its subclasses)
        put(self, "_instrs", instrs if type(instrs) is not tuple and isinstance(instrs, LazyInstrs) else tuple(instrs))
        # (Labels, the columns finish and primal_labels make, kept as they are)
        put(self, "labels", labels if type(labels) is Labels or isinstance(labels, Labels) else tuple(labels))
        put(self, "outputs", tuple([(str(n), int(v)) for n, v in outputs]))
        put(self, "source", source)
        if _inputs is None:   # (Builder.finish knows them)
            _inputs = tuple((ins.name, i) for i, ins in enumerate(self.instrs) if ins.op == "input")
        put(self, "_inputs", _inputs)
        # Builder.finish's promise: every instruction is an input or an output's
        # ancestor (no dead code), so a builder that loads this trace need not look
        # for dead code among its instructions again (builder_load). A trace made
        # otherwise (by hand, unpickled) makes none.
        put(self, "_all_live", bool(_all_live))
        # its ops and arguments as arrays (columns.py), if its maker read them: a cache
        # of what the instructions say, never part of the trace's value or pickle
        put(self, "_columns", _columns)
        # the tables of the Builder that built it, where a front end hands them on to
        # the first pass that loads it (builder.trace_from_builder, builder_load.adopt):
        # a list of one tuple, taken by pop(); a cache like _columns, never its value
        put(self, "_built", None)

    @property
    def instrs(self) -> tuple:
        """The instructions, a tuple (made on first asking where the trace holds them
        as a LazyInstrs, then kept)."""
        instrs = self._instrs
        if type(instrs) is not tuple:
            instrs = instrs.made()
            object.__setattr__(self, "_instrs", instrs)
        return instrs

    def __setattr__(self, key, value):
        raise AttributeError("Trace is immutable")

    def __reduce__(self):
        # rebuilt through __init__ (the default for __slots__ would set attributes)
        return Trace, (self.instrs, self.labels, self.outputs, self.source)

    def __len__(self) -> int:
        return len(self._instrs)

    @property
    def inputs(self) -> tuple[tuple[str, int], ...]:
        return self._inputs

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.outputs)

    @property
    def size(self) -> int:
        """Number of operations: everything but inputs, constants and named copies."""
        return sum(1 for ins in self.instrs if ins.op not in ("input", "const", "copy"))

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ins in self.instrs:
            counts[ins.op] = counts.get(ins.op, 0) + 1
        return counts

    def __str__(self) -> str:
        from .printer import format_trace
        return format_trace(self)

    def _repr_html_(self) -> str:  # a notebook shows the table (display/tables.py)
        from ..display.tables import trace_html
        return trace_html(self)

    def __repr__(self) -> str:
        return (f"<Trace: {len(self.inputs)} inputs, {self.size} ops, "
                f"outputs {', '.join(self.output_names)}>")


def instructions(trace) -> Sequence[Instr]:
    """`trace`'s instructions as it holds them: a tuple, or a LazyInstrs whose items
    are made one at a time (for a reader of its length or of a few of them; a reader
    of them all asks for trace.instrs). A builder's or a list: its instrs."""
    return trace._instrs if isinstance(trace, Trace) else trace.instrs


def ancestors(instrs: Sequence[Instr], var: Var) -> set:
    """`var` and every variable it is computed from, in a trace's or a builder's
    instruction list (no recursion)."""
    seen, stack = {var}, [var]
    while stack:
        for a in instrs[stack.pop()].args:
            if a not in seen:
                seen.add(a)
                stack.append(a)
    return seen


def primal_labels(instrs: Sequence[Instr], code=None) -> "Labels":
    """Griewank numbering: inputs v_{1-n}..v_0, then v_1, v_2, ... for operations,
    as Labels (columns, made with NumPy from the op codes: `code`, columns.py's
    codes of `instrs`, if known; below _SMALL_LABELS instructions, from the codes'
    bytes by bytes.translate and itertools: equal, NumPy's fixed costs spared)."""
    if not _PRIMAL:
        _primal_tables()
    op_code_bytes, input_code, kinds_of, is_operation = _PRIMAL
    if code is None:
        code = op_code_bytes(instrs)
        if len(code) >= _SMALL_LABELS:
            code = np.frombuffer(code, np.uint8)
    elif len(code) < _SMALL_LABELS:
        code = code.tobytes() if type(code) is np.ndarray and code.dtype == np.uint8 else \
            np.asarray(code, np.uint8).tobytes()
    if type(code) is bytes:
        # (labels.numbered's columns, made in Python: its kinds table, its index the
        # running count of operations, an input's 0; the inputs, few, found one by
        # one; the array made from a list: from the iterator it took half as long again)
        inputs, at = [], code.find(input_code)
        while at >= 0:
            inputs.append(at)
            at = code.find(input_code, at + 1)
        index = array("i", list(accumulate(code.translate(is_operation))))
        if inputs and inputs[-1] != len(inputs) - 1:   # (inputs first: their index 0 already)
            for i in inputs:
                index[i] = 0
        odd = {i: _new_tuple(Label, ("v", k, instrs[i].name, None))   # (Label("v", k, base=name))
               for i, k in zip(inputs, range(1 - len(inputs), 1))}
        return Labels(code.translate(kinds_of), index, odd)
    inputs = (np.asarray(code) == input_code[0]).nonzero()[0].tolist()
    return numbered(code, [instrs[i].name for i in inputs], inputs)


# primal_labels: below this many instructions, its labels made in Python (NumPy's
# calls cost more than the work there). Measured by callgrind, Ir a call, Python/NumPy,
# codes given: 32k/55k at 10 instructions, 67k/72k at 40, 77k/73k at 62, 94k/74k at 100;
# codes read here: 39k/67k, 92k/102k, 114k/115k, 153k/137k. By time (load 1.4), codes
# given, 6.4/8.6 µs at 47, 6.7/7.9 at 62, 8.1/6.6 at 100: the threshold where both agree.
_SMALL_LABELS = 64

# primal_labels' tables, made at its first call (columns.py, which holds the op codes,
# imports this module; an import statement in primal_labels ran the import machinery
# on every front end's finish): op_code_bytes, the input code (a byte), and per op code
# its label kind (labels.numbered's) and 1 for an operation (above a constant)
_PRIMAL: list = []


def _primal_tables() -> None:
    from .columns import CONST, INPUT, op_code_bytes
    from .labels import NONE, ODD
    _PRIMAL[:] = (op_code_bytes, bytes([INPUT]), bytes(ODD if c == INPUT else NONE if c == CONST else 1 for c in range(256)),
                  bytes(c > CONST for c in range(256)))


def renumbered(instrs: Iterable[Instr], new_of: list) -> list[Instr]:
    """`instrs` with their arguments renumbered by new_of[old var], as new tuples
    (instruction and arguments). Unary and binary instructions, nearly all, index
    `new_of` directly: a quarter faster than tuple(map(new_of.__getitem__, args))."""
    nl, new = new_of, new_of.__getitem__
    return [_new_tuple(Instr, (op, (nl[a[0]], nl[a[1]]) if len(a) == 2 else (nl[a[0]],) if len(a) == 1
                               else tuple(map(new, a)), attrs, shape))
            for op, a, attrs, shape in instrs]



from .labels import Labels, numbered   # noqa: E402  (labels.py reads Label, above)

# Pickles (of traces, and of compiled functions, which hold theirs) name the classes
# by their public module, as before ir.py was split: pickles from either side load.
Instr.__module__ = Label.__module__ = Trace.__module__ = "exprcompiler.trace.ir"


def natural_key(name: str):
    """x2 before x10: split digit runs and compare them as numbers."""
    # A run is compared by its length and digits (without leading zeros), not through
    # int(): a name may hold 5000 digits (Python's int() refuses more than 4300) or
    # digits int() does not read ('²' is a digit to str.isdigit, not a decimal).
    # Runs are of ASCII digits. A name whose digits are all at its end (x12, v_3, y:
    # nearly every one) is split by str methods, others by a regex, whose compiling
    # at its first use was ~0.1 ms of a fresh process's first formula.
    stem = name.rstrip(_ASCII_DIGITS)
    runs = (stem, name[len(stem):]) if _ASCII_DIGIT_SET.isdisjoint(stem) else re.split(r"([0-9]+)", name)
    key = []
    for t in runs:
        if t:
            digits = t.lstrip("0") if t.isdigit() else None
            key.append((0, len(digits), digits, t) if digits is not None else (1, 0, t))
    return key


_ASCII_DIGITS = "0123456789"
_ASCII_DIGIT_SET = frozenset(_ASCII_DIGITS)


# Output names, in order of preference; the first that no input takes wins.
OUTPUT_NAMES = ("y", "f", "out")


def output_names(count: int, taken) -> list[str]:
    """Names for `count` outputs that no input has: y (else f, out, out1, ...) for
    one; y1, y2, ... (else f1, f2, ...) for several."""
    def fits(names):
        return not any(n in taken for n in names)
    for base in OUTPUT_NAMES:
        names = [base] if count == 1 else [f"{base}{k + 1}" for k in range(count)]
        if fits(names):
            return names
    k = 1
    while True:
        names = [f"out{k}"] if count == 1 else [f"out{k}_{j + 1}" for j in range(count)]
        if fits(names):
            return names
        k += 1

