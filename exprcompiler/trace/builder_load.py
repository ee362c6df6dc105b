"""Loading a finished trace into an empty builder in bulk: `replay`'s fast path.

Where it sits: every derivative pass starts by replaying its primal trace into a
fresh Builder (passes/replay.py), a call per instruction that rebuilds the
builder's tables. A trace that a Builder finished is nearly always rebuilt as it
is, instruction for instruction; `load` checks that it would be, and then fills the
builder's tables from the trace with C-level maps. Where it would not be, it
leaves the builder empty and returns False, and the caller replays.

When replay is the identity. Instruction by instruction, replay (replay_instr)
  * declares an input: appended, unless an input of its name came before;
  * makes a constant: appended, unless one of its key came before; replay drops
    its label (a constant is never named in place);
  * names a copy's source: a copy appended if the copy has a label, else nothing;
  * applies an op through its method: folded if every argument is a constant;
    given to the op's identity if an argument is a constant or names a negation;
    else found by its hash-consing key (arguments through copies) or appended. An
    appended variable takes the instruction's label in place.
So every instruction is appended as it is exactly when: input names are distinct;
constants are unlabelled scalar floats of distinct keys; copies have labels; every
op is elementwise on scalars without options (it has a fast method, builder_ops)
and of its arity; no two ops share a key; and no op with a constant, negated or
copied argument is folded or simplified. That last is asked of the builder's own
fold and identities (builder_ops.built_as_written), on the loaded tables, for the
ops with a constant or negated argument (a third of a front end's trace): the
identities read only their arguments' entries, which are what the replay would
have there; one that would build something instead is not None, and `load`
declines. The rest is C-level maps over the trace's columns (columns.py: its op
codes, translated into flags and arities, and its arguments, which the front end's
finish read), NumPy over all the arguments at once (which ops have a constant or
negated argument, which of add's and mul's come in order), and one dict of keys;
for a trace of fewer than SMALL instructions, whose load NumPy's fixed cost would
take most of, the columns are read and the keys made in Python (`_keys_small`).
Like every pass, `load` takes the trace to be in SSA order (arguments before their
uses).

A front end's trace of fewer than finish.HAND_ON_BELOW instructions, finished from
its Builder with nothing moved, carries that builder's tables (Trace._built): the
first load of it into an empty builder takes them (`adopt`) rather than making them
again, after the few checks they do not settle (a text gradient at 10^3 operations:
its load 0.56 -> 0.14 µs an operation, fresh).
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter
from typing import Optional

import numpy as np

from .. import ops as _ops
from .builder_ops import _COMMUTATIVE, _FAST_METHODS, KEY_RADIX, built_as_written, key_code, key_sources, op_key
from .columns import CODE, OP_NAMES, UNKNOWN, kept, op_code_bytes, take_columns
from .columns import CONST as _CONST, COPY as _COPY, INPUT as _INPUT   # (the leaves' op codes; an op's is above)
from .identities import CONST, COPY, FIRES_ON, IDENTITIES, NEG
from .labels import Labels

_ARGS, _ATTRS, _SHAPE = itemgetter(1), itemgetter(2), itemgetter(3)


def _table(pairs) -> bytes:
    """A bytes.translate table: code -> value for `pairs`, 0 elsewhere."""
    table = bytearray(256)
    for code, value in pairs:
        table[code] = value
    return bytes(table)


_IS_LEAF = _table((code, 1) for code in (_INPUT, _CONST, _COPY))
_IS_OP = _table((code, 1) for code in range(_COPY + 1, 256))
_RULED = CONST | NEG
_RULE_FLAGS = _table((f, f & (CONST | NEG)) for f in range(256))   # flags under which an op's method
                                                                   # tries its fold and identity


_COMMUTES = np.zeros(256, bool)   # per op code: add's and mul's, whose keys take their arguments in order
_COMMUTES[[CODE[op] for op in _COMMUTATIVE if op in CODE]] = True


def _kind_codes(present: list) -> Optional[dict]:
    """The trace's ops by name -> their codes (columns.CODE), from the codes `present`
    in order; None if an op has no fast method (for the op the table holds now)."""
    codes = {}
    for c in present:
        if c == UNKNOWN:
            return None
        opname = OP_NAMES[c]
        if c > _COPY:
            op = _ops.OPS.get(opname)
            method = _FAST_METHODS[opname] if op is not None else None
            if method is None or getattr(method, "op", None) is not op:
                return None
        codes[opname] = c
    return codes


# Per op code, whether the op has no identity (identities.IDENTITIES): then only a
# fold (every argument a constant) takes it. The ops with an identity are settled by
# what their rule reads (identities.FIRES_ON), the others are asked one by one.
_NO_IDENTITY = np.zeros(256, bool)
_NO_IDENTITY[[c for c, name in enumerate(OP_NAMES) if c > _COPY and name not in IDENTITIES]] = True
_FIRES_ON = [(CODE[name], fires) for name, fires in FIRES_ON.items() if name in CODE]
_READ_CONSTANTS = sorted({c for _, fires in _FIRES_ON for c in fires.constants})


def _surely_as_written(flagged: np.ndarray, kinds: np.ndarray, counts: np.ndarray, flat: np.ndarray,
                       starts: np.ndarray, flags: bytearray, consts: dict, pull: bool) -> np.ndarray:
    """Per instruction of `flagged`: True where its op method surely builds it as
    written, by what built_as_written would ask of its rules, in NumPy per op rather
    than a call per instruction: no fold (an argument not a constant), and no case
    where its identity may fire (identities.FIRES_ON: a constant of the values its
    rule reads, a negated argument where it reads one; an op whose rule reads more
    where negations are pulled is left out). False leaves it to built_as_written.
    `flat`: the arguments through copies (whose flags and values are their sources');
    `pull`: the builder's pull_negations."""
    f = np.frombuffer(flags, np.uint8)
    is_const, negated = (f & CONST) != 0, (f & NEG) != 0
    held = np.fromiter(consts.keys(), np.intp, len(consts))
    values = np.fromiter(consts.values(), np.float64, len(consts))
    equal = {}   # c -> per variable: its constant == c (-0.0 == 0.0: a zero of either sign)
    for c in _READ_CONSTANTS:
        equal[c] = np.zeros(len(f), bool)
        equal[c][held] = values == c
    op, at = kinds[flagged], starts[flagged]
    unary = counts[flagged] == 1
    args = (flat[at], flat[np.where(unary, at, at + 1)])   # (a unary op's second: its one argument again, unread)
    as_written = ~np.where(unary, is_const[args[0]], is_const[args[0]] & is_const[args[1]])   # not folded
    sure = as_written & _NO_IDENTITY[op]
    for code, fires in _FIRES_ON:
        if fires.pulled and pull:
            continue
        fire = np.zeros(len(op), bool)
        for k in fires.const_at:
            for c in fires.constants:
                fire |= equal[c][args[k]]
        for k in fires.negated_at:
            fire |= negated[args[k]]
        sure |= as_written & (op == code) & ~fire
    return sure


def load(b, trace) -> bool:
    """Make the empty builder `b` what replaying `trace` into it would make, with
    variable i of the trace as variable i of `b`; or leave it empty and return
    False where the replay would fold, simplify or share an instruction."""
    built = getattr(trace, "_built", None)
    if built and not b.instrs:
        try:
            tables = built.pop()   # (taken: the tables go to one builder)
        except IndexError:   # (another thread's)
            tables = None
        if tables is not None and tables is not AS_WRITTEN and adopt(b, trace, tables):
            return True
        written = tables is AS_WRITTEN
    else:
        written = False
    instrs = trace.instrs
    n = len(instrs)
    # (room for one more than the trace: what the replay would refuse, it refuses;
    # and numbers below the keys' radix, builder_ops.op_key)
    if b.instrs or n >= b._keyroom or any(map(_SHAPE, instrs)):
        return False
    # its ops and arguments as arrays (a front end's finish made them), taken off the
    # trace: no other stage reads them, and a primal's are not held while the pass runs;
    # a small trace's read from its instructions (see SMALL)
    small = n < SMALL
    if small:
        # (its op codes and argument counts from the columns where it keeps them, as
        # those are made: a front end's trace; else read, two passes over its tuples)
        cols = kept(trace, take=True)
        if cols is not None and len(cols.code) == n and cols.counts.dtype == np.uint8:
            kind, counts = cols.code.tobytes(), cols.counts.tobytes()
        else:
            kind = op_code_bytes(instrs)
            try:
                counts = bytes(map(len, map(_ARGS, instrs)))
            except ValueError:   # (an instruction of 256 arguments or more)
                return False
        codes = _kind_codes(sorted(set(kind)))
    else:
        cols = take_columns(trace)
        kind = cols.code.tobytes()
        codes = _kind_codes(np.flatnonzero(np.bincount(cols.code, minlength=256)).tolist())
        counts = cols.counts.tobytes() if cols.counts.dtype == np.uint8 else None   # (None: 256 arguments)
    if codes is None:
        return False
    # every op of its arity, a copy of one variable, inputs and constants of none
    arity = _table([(_COPY, 1)] + [(code, _ops.OPS[op].arity) for op, code in codes.items() if code > _COPY])
    if kind.translate(arity) != counts:
        return False
    leaves = list(compress(range(n), kind.translate(_IS_LEAF)))
    # options only on leaves: an input's name, a constant's value (checked below)
    if n - list(map(_ATTRS, instrs)).count(()) > len(leaves):
        return False
    # a loaded variable's label is looked at only for whether it has one: columns
    # (labels.py) are not made Label objects here (finish takes them from the trace)
    loaded_labels = trace.labels if isinstance(trace.labels, Labels) else None
    written = written and loaded_labels is not None   # (primal labels: see AS_WRITTEN)
    labels = list(trace.labels) if loaded_labels is None else loaded_labels.placeholders()
    flags = bytearray(kind.translate(_table([(_CONST, CONST)] + ([(codes["neg"], NEG)] if "neg" in codes else []))))
    inputs: dict = {}
    consts: dict = {}
    copies: dict = {}
    const_keys: dict = {}
    for i in leaves:
        code, attrs = kind[i], instrs[i][2]
        if code == _INPUT:
            if len(attrs) != 1 or attrs[0][0] != "name" or attrs[0][1] in inputs:
                return False
            inputs[attrs[0][1]] = i
        elif code == _CONST:
            value = attrs[0][1] if len(attrs) == 1 and attrs[0][0] == "value" else None
            if type(value) is not float or labels[i] is not None:
                return False
            consts[i] = value
            const_keys[("const", repr(value), ())] = i
        else:
            if attrs or labels[i] is None:
                return False
            src = instrs[i][1][0]
            copies[i] = copies.get(src, src)
            if src in consts:
                consts[i] = consts[src]
            flags[i] = flags[src] | COPY
    if len(const_keys) != len(consts) - len(copies.keys() & consts.keys()):
        return False   # two constants of one key: the replay shares them
    # the ops' keys as their methods make them (builder_ops.op_key: code + a·R + b,
    # add's and mul's arguments in order), and the ops that a fold or an identity may
    # take (those with a constant or negated argument): None if two ops share a key
    # (a small trace's keys are the builder's own, Python ints: no code table to make)
    if small:
        keyed = _keys_small(instrs, kind, flags, copies)
    else:
        op_codes = {c: key_code(op, _ops.OPS[op].arity) for op, c in codes.items() if c > _COPY}
        if op_codes and max(op_codes.values()) >= 1 << 62:   # (more kinds than int64 keys hold: the replay's)
            return False
        keyed = _keys(cols, kind, op_codes, flags, copies, consts, b.pull_negations, written)
    if keyed is None:
        return False   # two ops of one key: the replay shares them
    memo, flagged = keyed
    if written:   # (only what the builder that built it did not apply: see AS_WRITTEN)
        flagged = _scaled(instrs, kind, flags, copies, codes.get("mul")) if b.pull_negations and consts else []
    memo.update(const_keys)
    b.instrs, b.labels, b._flags, b._loaded_labels = list(instrs), labels, flags, loaded_labels
    b._memo, b._inputs, b._copies, b._consts, b._loaded = memo, inputs, copies, consts, n
    # (Builder.finish: while these stay outputs, the loaded instructions are all live)
    b._loaded_outputs = tuple(v for _, v in trace.outputs) if getattr(trace, "_all_live", False) else None
    b._scalar_consts = {consts[i]: i for i in const_keys.values() if consts[i]}
    if not built_as_written(b, flagged):
        b.__init__(pull_negations=b.pull_negations, max_ops=b.max_ops)   # empty again
        return False
    return True


def _keys(cols, kind: bytes, op_codes: dict, flags: bytearray, copies: dict, consts: dict, pull: bool,
          written: bool = False):
    """load's (memo of the ops' keys, the ops its rules must still be asked of), in
    NumPy over all the arguments at once: instruction i's are flat[starts[i]:ends[i]].
    `written`: the trace is AS_WRITTEN (no op to ask: the caller finds its own)."""
    n = len(kind)
    counts = cols.counts
    ends = np.cumsum(counts)
    starts = ends - counts
    flat = cols.flat.astype(np.intp)   # (int64: the keys below are products of variables)
    if copies:
        source = np.arange(n)
        source[np.fromiter(copies.keys(), np.intp, len(copies))] = np.fromiter(copies.values(), np.intp, len(copies))
        flat = source[flat]
    kinds = np.frombuffer(kind, np.uint8)
    key_of_kind = np.zeros(256, np.int64)
    key_of_kind[list(op_codes)] = list(op_codes.values())
    keys = np.zeros(n, np.int64)
    unary = np.flatnonzero((counts == 1) & (kinds > _COPY))
    keys[unary] = key_of_kind[kinds[unary]] + flat[starts[unary]]
    binary = np.flatnonzero(counts == 2)
    first, second = flat[starts[binary]], flat[starts[binary] + 1]
    turn = _COMMUTES[kinds[binary]] & (second < first)
    first, second = np.where(turn, second, first), np.where(turn, first, second)
    keys[binary] = key_of_kind[kinds[binary]] + first * KEY_RADIX + second
    built = np.flatnonzero(kinds > _COPY)
    memo = dict(zip(keys[built].tolist(), built.tolist()))
    if len(memo) != len(built):
        return None
    special = np.frombuffer(flags.translate(_RULE_FLAGS), np.uint8) != 0
    if written or not special.any():
        return memo, []
    hits = np.concatenate(([0], np.cumsum(special[flat])))   # special arguments so far
    flagged = np.flatnonzero((hits[ends] > hits[starts]) & (kinds > _COPY))
    return memo, flagged[~_surely_as_written(flagged, kinds, counts, flat, starts, flags, consts, pull)].tolist()


# Below this many instructions, `load` reads the trace and keys its ops in Python
# (`_keys_small`): _keys's NumPy has a fixed cost of ~40 calls (0.1-0.18 ms, once per
# gradient: ~1 µs an operation at 10^2), the loop ~1.3 µs an instruction, each key made
# by the builder's own functions (CPU time, in one process: 80 against 164 µs at 54
# instructions, 155 against 184 at 119; even at ~150). With the keys made in the loop
# itself (about half that loop's time), measured again: load's time, Python / NumPy,
# on the scaling benchmark's text (deep), same process, 60 alternating runs, load ~2:
# 0.51 (0.50) at ~100 instructions, 0.65 (0.64) at 200, 0.78 (0.78) at 300, 1.05
# (0.92) at 450, 1.28 (1.13) at 700.
SMALL = 400


def _keys_small(instrs, kind: bytes, flags: bytearray, copies: dict):
    """What _keys gives, an op at a time, each key as the builder's general path makes
    it (builder_ops.key_sources, op_key); all the ops with a constant or negated
    argument for built_as_written (which NumPy's rules would have thinned)."""
    # (op_key and key_sources written out for one and two arguments, their op's part
    # of the key looked up once per op code: with their three calls an instruction the
    # loop took 1.6-2x the time, text gradients of 10² operations. Variables here are
    # below SMALL, so below the keys' radix: an int key each, as op_key makes it.)
    memo: dict = {}
    flagged = []
    source = copies.get
    put = memo.setdefault
    radix = KEY_RADIX
    parts: dict = {}   # number of arguments << 8 | op code -> (key_code, commutes)
    for i in compress(range(len(kind)), kind.translate(_IS_OP)):
        args = instrs[i][1]
        n_args = len(args)
        part = parts.get(n_args << 8 | kind[i])
        if part is None:
            opname = OP_NAMES[kind[i]]
            part = parts[n_args << 8 | kind[i]] = (key_code(opname, n_args) if n_args in (1, 2) else opname,
                                                 opname in _COMMUTATIVE)
        if n_args == 2:
            x, y = args
            f = flags[x] | flags[y]
            a = copies[x] if x in copies else x   # (the arguments through copies)
            b = copies[y] if y in copies else y
            key = part[0] + b * radix + a if b < a and part[1] else part[0] + a * radix + b
        elif n_args == 1:
            x = args[0]
            f = flags[x]
            key = part[0] + (copies[x] if x in copies else x)
        else:   # (none in a trace load takes: kept as the general path makes it)
            key = op_key(part[0], key_sources(part[0], args, source))
            f = flags[args[0]] | flags[args[-1]]
        if put(key, i) != i:
            return None
        if f & _RULED:
            flagged.append(i)
    return memo, flagged


# -- adopting the tables of the builder that built the trace ----------------------

def adopt(b, trace, tables: tuple) -> bool:
    """What `load` makes of `trace`, from `tables`: those of the front end's Builder
    that built it, as that builder finished it (builder.trace_from_builder: nothing
    moved, its pull_negations off, primal labels), which are what load would make
    again. False where load must decide (`b` is left empty).

    Why they are load's. The builder appended each instruction of the trace as it
    is, so its inputs' names and its constants' keys are distinct, its ops' keys are
    distinct and as load makes them, and each op with a constant or negated argument
    went past the fold and the identities, which read only their arguments' entries
    (the same here); primal labels leave constants unlabelled and label every copy
    and every op. What load asks that a builder may not give is asked again: every
    op with a fast method, of its arity and without options (shapes are hand_on's to
    refuse). And where `b` pulls negations, a rule that the building builder did not apply:
    mul's c·(k·x) -> (c·k)·x (identities._scale_constant), asked of each product of
    a constant and a product (built_as_written); pulling -a out of a product or a
    quotient needs an unlabelled negation, and a primal trace has none."""
    instrs_list, memo, inputs, copies, consts, flags, scalar_consts = tables
    n = len(instrs_list)
    labels = trace.labels
    if b.instrs or n != len(trace) or n >= b._keyroom or type(labels) is not Labels:
        return False   # (no shapes: hand_on hands on no tables with one)
    instrs = trace.instrs
    cols = kept(trace)
    if cols is not None and len(cols.code) == n and cols.counts.dtype == np.uint8:
        kind, counts = cols.code.tobytes(), cols.counts.tobytes()
    else:   # (a reader took them: read, as load reads a small trace)
        kind = op_code_bytes(instrs)
        try:
            counts = bytes(map(len, map(_ARGS, instrs)))
        except ValueError:   # (an instruction of 256 arguments or more)
            return False
    codes = _kind_codes(sorted(set(kind)) if n < SMALL or cols is None else
                        np.flatnonzero(np.bincount(cols.code, minlength=256)).tolist())
    if codes is None:
        return False
    arity = _table([(_COPY, 1)] + [(code, _ops.OPS[op].arity) for op, code in codes.items() if code > _COPY])
    if kind.translate(arity) != counts or n - list(map(_ATTRS, instrs)).count(()) > n - kind.translate(_IS_OP).count(1):
        return False
    if b.pull_negations and consts:
        scaled = _scaled(instrs, kind, flags, copies, codes.get("mul"))
        if scaled:
            b.instrs, b._flags, b._consts, b._copies = instrs_list, flags, consts, copies
            b.labels, b._memo, b._scalar_consts = labels.placeholders(), memo, scalar_consts
            as_written = built_as_written(b, scaled)
            b.__init__(pull_negations=b.pull_negations, max_ops=b.max_ops)   # (empty again)
            if not as_written:
                return False
    kept(trace, take=True)   # (its columns go with the tables: reverse.vjp has taken them)
    b.instrs, b.labels, b._flags, b._loaded_labels = instrs_list, labels.placeholders(), flags, labels
    b._memo, b._inputs, b._copies, b._consts, b._loaded = memo, inputs, copies, consts, n
    b._loaded_outputs = tuple(v for _, v in trace.outputs) if trace._all_live else None
    b._scalar_consts = scalar_consts
    return True


def _scaled(instrs, kind: bytes, flags: bytearray, copies: dict, mul: Optional[int]) -> list:
    """The products of a constant and (through copies) a product, in `instrs` (their
    op codes `kind`, the builder's `flags` and `copies`; `mul`: mul's code, None if
    none): where a builder that pulls negations may fold c·(k·x) into (c·k)·x
    (identities._scale_constant) and one that does not (a front end's) built it."""
    scaled: list = []
    if mul is None:
        return scaled
    source = copies.get
    for i in compress(range(len(kind)), kind.translate(_table([(mul, 1)]))):
        x, y = instrs[i][1]
        if flags[x] & CONST:
            if kind[source(y, y)] == mul:
                scaled.append(i)
        elif flags[y] & CONST and kind[source(x, x)] == mul:
            scaled.append(i)
    return scaled


# What a front end that builds its trace through the op methods of a builder that does
# not pull negations, and numbers it with primal labels, but hands on no tables
# (parse/sympy_columns.py, renumbered by its finish), puts in Trace._built: each op
# went past the fold and the identities there, as the replay's would take it, so
# `load` asks its rules only where a builder that pulls negations applies one that
# the front end's does not (`_scaled`; pulling -a out needs an unlabelled negation,
# which primal labels never leave), not of every op with a constant or negated
# argument. Its other checks stand (shapes, arities, options, shared keys).
AS_WRITTEN = ("as written",)
