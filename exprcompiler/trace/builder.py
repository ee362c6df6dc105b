"""The trace builder: how every front end and pass makes a `Trace`.

Where it sits: the parser, the SymPy bridge and every pass (replay, simplify,
forward, reverse, elimination, stability rewrites) append operations to a
`Builder` and `finish` it into an immutable `Trace` (ir_trace.py). The builder

* hash-conses: an ``(op, args, attrs)`` already built is returned, not rebuilt;
* folds constants and applies a few IEEE-exact identities (``x*1``, ``x + -0.0``,
  ``x - 0.0``, ``x**1``, ``--x``, ``a + -b -> a - b``; identities.py) — never
  ``x*0``, which is NaN for inf, nor ``x + 0.0``, which is +0.0 for x = -0.0;
* computes each variable's shape from the op's rule (scalars are ``()``);
* keeps, per variable, what the identities look at (a constant, a negation, a copy,
  a tensor: one byte, identities.CONST...), so an operation on other scalars skips them.

This module holds the general path (any op, shapes, options), the leaves and
naming; the per-op methods and their scalar fast path are builder_ops.py, and
finishing (dead code, inputs first, renumbering, labels) is finish.py.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import sys
from typing import Iterable, Optional, Sequence

import numpy as np

from .. import ops as _ops
from .. import shapes as _shapes
from ..errors import InputTooLarge, ShapeError, TraceError
from .builder_ops import _FAST_METHODS, _OPS, KEY_RADIX, _general_method, _op_methods, exact_fold, key_sources, op_key
from .finish import finish as _finish, hand_on
from .identities import CONST, COPY, IDENTITIES, NEG, SHAPED
from .ir_trace import Instr, Label, Trace, Var, _new_tuple, natural_key

def result_shape(opname: str, shapes: Sequence[tuple], attrs: dict) -> tuple:
    """The shape an op gives its arguments' shapes: its rule, or broadcasting."""
    op = _ops.OPS[opname]
    if op.shape is None:
        return () if not any(shapes) else _shapes.broadcast(*shapes, op=opname)
    return tuple(op.shape(list(shapes), attrs))


def _given_none(op, option: str) -> bool:
    """Whether `option=None` is an answer of its own for `op` (its default is not None)."""
    return dict(op.keywords).get(option) is not None


def _const_key(value: float) -> str:
    return repr(float(value))  # tells 0.0 from -0.0; NaN keys compare equal as strings


_ZERO_KEYS = {sign: ("const", _const_key(sign * 0.0), ()) for sign in (1.0, -1.0)}   # (Builder.const)


# The front ends' input-size limit, in instructions of the trace they build. By
# default it is what fits in the machine's memory at BYTES_PER_OP, measured (peak
# resident memory of compile_grad on text, NumPy backend) at 2.5-3 KB per operation
# at 10^5 operations, with headroom for Hessians and the C backend.
MAX_OPS_ENV = "EXPRCOMPILER_MAX_OPS"
BYTES_PER_OP = 8192
_MIN_DEFAULT_MAX_OPS = 100_000


def max_ops_limit(max_ops: Optional[int] = None) -> int:
    """The input-size limit: `max_ops` if given, else the environment variable
    EXPRCOMPILER_MAX_OPS, else physical memory / BYTES_PER_OP."""
    if max_ops is None:
        text = os.environ.get(MAX_OPS_ENV, "").strip()
        if text:
            try:
                max_ops = int(text.replace("_", ""))
            except ValueError:
                raise InputTooLarge(f"{MAX_OPS_ENV}={text[:40]!r} is not a whole number of operations") from None
        else:
            max_ops = _default_max_ops()
    if isinstance(max_ops, bool) or not isinstance(max_ops, int) or max_ops < 1:
        raise InputTooLarge(f"the input-size limit must be a positive number of operations, not {max_ops!r}")
    return max_ops


def _default_max_ops() -> int:
    """Physical memory / BYTES_PER_OP, at least _MIN_DEFAULT_MAX_OPS: asked of the
    system once a process (two sysconf calls, 3-20 µs of every parse and SymPy
    conversion; the environment variable is still read each time)."""
    if not _DEFAULT_MAX_OPS:
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):   # not a POSIX system
            memory = 16 << 30
        _DEFAULT_MAX_OPS.append(max(_MIN_DEFAULT_MAX_OPS, memory // BYTES_PER_OP))
    return _DEFAULT_MAX_OPS[0]


_DEFAULT_MAX_OPS: list = []


class Builder:
    """Appends instructions with hash-consing and local simplification.

    Ops are methods: ``b.sin(x)``, ``b.add(x, 2.0)`` (floats become constants),
    one for each op of the table (an op added to it later has its method once `apply`
    or `op_call` has met it). The class has no __getattr__: with one, Python reads
    every attribute of a builder through it, unspecialised (b._flags, b._memo... on
    each of millions of calls: 18% of the adjoint sweep's instructions).

    `apply` runs once per operation of every front end and pass, millions of times
    for a large expression, so it takes the common case (scalar arguments, no
    options) without building what only tensors or identities need.
    """

    def __init__(self, *, pull_negations: bool = False, max_ops: Optional[int] = None):
        # Derivative passes set pull_negations: (-a)·b -> -(a·b) lets rules' signs
        # cancel (no "-(-x)"); front ends keep the user's grouping as written.
        self.pull_negations = pull_negations
        # Front ends pass max_ops_limit(): past it, InputTooLarge (passes build from
        # a trace that was already held to it, so they have none).
        self.max_ops = max_ops
        self._room = max_ops if max_ops is not None else sys.maxsize
        # where the fast methods leave to the general path: past the room (which
        # raises) or at the hash-consing keys' radix (builder_ops.op_key)
        self._keyroom = min(self._room, KEY_RADIX)
        self.instrs: list[Instr] = []
        self.labels: list[Optional[Label]] = []
        self._memo: dict = {}
        self._inputs: dict[str, int] = {}
        # What a variable names, if it is not itself: a copy's source (through copies),
        # a constant's value (of a copy of one too). Sparse: most variables are neither.
        self._copies: dict[int, int] = {}
        self._consts: dict[int, float] = {}
        self._flags = bytearray()      # what the identities look at, per variable (identities.CONST...)
        self._loaded = 0               # instructions taken from a finished trace (builder_load), first
        self._loaded_outputs = None    # that trace's outputs, if all its instructions are live (Trace._all_live)
        # that trace's labels, if columns (trace/labels.py): `labels` holds a placeholder
        # for each of them (Labels.placeholders), finish takes them from here
        self._loaded_labels = None
        # that trace's columns, where a pass hands them on for the finish to hold its
        # new instructions as columns (reverse.vjp, finish._held_as_columns)
        self._loaded_columns = None
        # Caches keyed by float values, which are exact keys for nonzero floats only
        # (0.0 == -0.0; a NaN finds only itself): scalar constants by value (const()
        # without repr()), and folded scalar operations (opname, *values) -> (op, var).
        self._scalar_consts: dict = {}
        self._folds: dict = {}
        # New instructions as plain tuples (op, args, attrs, shape), not Instr, from
        # _plain_from on, once `plain_tuples` is called: see there.
        self._plain = False
        self._plain_from = 0

    # -- leaves -------------------------------------------------------------------
    def input(self, name: str, shape: tuple = ()) -> Var:
        if name in self._inputs:
            var = self._inputs[name]
            if self.instrs[var].shape != tuple(shape):
                raise ShapeError(f"input {name!r} declared with shapes "
                                 f"{self.instrs[var].shape} and {tuple(shape)}")
            return var
        var = self._append(Instr("input", (), (("name", name),), tuple(shape)))
        self._inputs[name] = var
        return var

    def const(self, value: float, shape: tuple = ()) -> Var:
        if type(value) is float and not shape:
            if value:
                var = self._scalar_consts.get(value)
            else:
                # a zero's key as below, made once rather than by repr on each call
                # (reverse mode masks every branch's edge with where(c, ḡ, 0.0): 0.28 of
                # such a call's 0.8 µs was its constant)
                var = self._memo.get(_ZERO_KEYS[math.copysign(1.0, value)])
            if var is not None:
                return var
        value = float(value)
        key = ("const", _const_key(value), tuple(shape))
        var = self._memo.get(key)
        if var is None:
            var = self._append(Instr("const", (), (("value", value),), tuple(shape)))
            self._memo[key] = var
        if value and not shape:
            self._scalar_consts[value] = var
        return var

    def plain_tuples(self) -> None:
        """Append the instructions that follow as plain tuples (op, args, attrs, shape),
        not Instr: for a builder whose last finish holds its new instructions as
        columns (reverse.vjp; finish._held_as_columns), which makes no Instr of most
        of them. An Instr costs tuple.__new__ on a subclass, and a subclass's
        deallocation when the finish drops it, where a tuple comes from and goes back
        to the free list: on a gradient of text at 10^3 operations, 9% of the pass's
        machine instructions. Finish makes Instr of those it keeps as tuples. Readers
        of `instrs` index them by position (ins[3], not ins.shape)."""
        self._plain, self._plain_from = True, len(self.instrs)

    # -- naming -------------------------------------------------------------------
    def mark(self) -> int:
        """Position before a rule runs; `name(var, label, since=mark)` relabels only
        variables the rule created itself."""
        return len(self.instrs)

    def name(self, var: Var, label: Optional[Label], since: Optional[int] = None) -> Var:
        """Give `var` the name `label`: in place when it is a fresh unnamed temporary,
        otherwise through a `copy` instruction (free in every backend)."""
        if label is None:
            return var
        instrs = self.instrs
        ins = instrs[var]
        if since is not None and var >= since and self.labels[var] is None and ins[0] not in _LEAF_OR_COPY:
            self.labels[var] = label
            return var
        # self._append(copy of var, label), inline: the adjoint sweep names ~half as
        # many copies as the trace has operations
        new = len(instrs)
        if new >= self._room:
            raise self._too_large()
        instrs.append(("copy", (var,), (), ins[3]) if self._plain else _new_tuple(Instr, ("copy", (var,), (), ins[3])))
        self.labels.append(label)
        copies, consts = self._copies, self._consts
        copies[new] = copies.get(var, var)
        if var in consts:
            consts[new] = consts[var]
        self._flags.append(self._flags[var] | COPY)
        return new

    # -- operations ---------------------------------------------------------------
    def source_of(self, var: Var) -> Var:
        """Follow named copies back to the value they name."""
        return self._copies.get(var, var)

    def const_value(self, var: Var) -> Optional[float]:
        return self._consts.get(var)

    def apply(self, opname: str, *args, **attrs) -> Var:
        fast = _FAST_METHODS[opname]
        if fast is None:
            fast = _FAST_METHODS.wide(opname)   # (where)
            if fast is None:
                return self._apply(opname, args, attrs)
        if not attrs and len(args) == fast.arity:
            return fast(self, *args)
        return self._apply(opname, args, attrs)

    @staticmethod
    def op_call(opname: str):
        """`opname`'s function (builder, *args, **attrs) -> var, as `apply` calls it:
        for passes that apply many instructions of a few kinds, looked up once a kind.
        A fast one (builder_ops) takes exactly the op's arguments, without options."""
        return _FAST_METHODS[opname] or _FAST_METHODS.wide(opname) or _general_method(opname)

    def _apply(self, opname: str, args: tuple, attrs: dict) -> Var:
        """`apply`'s general path: any op, shapes, options."""
        op = _OPS.get(opname)
        if op is None or op.arity == 0:
            raise TraceError(f"unknown operation {opname!r}")
        if len(args) != op.arity and not op.takes(len(args)):
            raise TraceError(f"{opname} takes {op.arity} arguments ({len(args)} given)")
        instrs = self.instrs
        n = len(instrs)
        for a in args:
            if type(a) is not int or not 0 <= a < n:
                args = self._variables(opname, args)
                break
        shapes = [instrs[a][3] for a in args]
        if attrs:
            # None means the default where the default is None (sum's axis); softmax's
            # axis=None is kept, so it means all axes, as in SciPy, not silently the last
            attrs = {k: v for k, v in attrs.items() if v is not None or _given_none(op, k)}
        if op.prepare is not None:
            attrs = op.prepare(shapes, attrs)
        if op.shape is None and not any(shapes):
            shape = ()  # elementwise over scalars: no broadcasting to do
        else:
            shape = result_shape(opname, shapes, attrs)
            if op.shape is None and opname != "copy":
                args = self._unbroadcast(opname, args, shape)
                src = instrs[self.source_of(args[0])]
                if len(args) == 1 and src[0] == "broadcast_to" and not src[2]:
                    # f(broadcast(a)) = broadcast(f(a)): -v̄ of a mean's adjoint stays a scalar
                    return self.broadcast_to(self.apply(opname, src[1][0], **attrs), src[1][1])
                shapes = [instrs[a][3] for a in args]
        attr_t = tuple(sorted(attrs.items())) if attrs else ()
        if opname == "copy":
            return self._append(Instr("copy", args, attr_t, shape))
        consts = list(map(self._consts.get, args))
        # fold scalar constants only: a constant may stand for a whole array (simplify's
        # substituted inputs), whose sum or size_ratio is not the scalar's
        if None not in consts and shape == () and not any(shapes):
            with np.errstate(all="ignore"):
                value = op.evaluate(*[np.float64(c) for c in consts], **attrs)
            return self.const(float(value))
        identity = IDENTITIES.get(opname)
        if identity is not None:
            simplified = identity(self, args, consts, shape, attrs)
            if simplified is not None:
                return simplified
        # the fast methods' key (an int, builder_ops.op_key) where they could have
        # built it; with options a flat tuple, the op name, its arguments and its attrs
        # tuple (a tuple, where arguments are ints), so no two operations share a key
        sources = key_sources(opname, args, self._copies.get)
        key = (opname, *sources, attr_t) if attr_t else op_key(opname, sources)
        var = self._memo.get(key)
        if var is None:
            var = self._append(_new_tuple(Instr, (opname, args, attr_t, shape)))
            self._memo[key] = var
        return var

    def _fold(self, opname: str, op, *values: float) -> Var:
        """The constant op(*values) of scalar constants, evaluated as NumPy does."""
        key = (opname, *values)
        cacheable = all(values)   # nonzero: an exact key (see _folds)
        if cacheable:
            hit = self._folds.get(key)
            if hit is not None and hit[0] is op:
                return hit[1]
        value = exact_fold(opname, op, values)   # (add, sub, mul, div, neg of finite numbers)
        if value is None:
            with np.errstate(all="ignore"):
                value = float(op.evaluate(*[np.float64(v) for v in values]))
        var = self.const(value)
        if cacheable:
            self._folds[key] = (op, var)
        return var

    def _too_large(self) -> InputTooLarge:
        return InputTooLarge(
            f"the expression needs more than {self.max_ops:,} operations, the input-size limit; "
            f"to go further, raise it with the environment "
            f"variable {MAX_OPS_ENV} (e.g. {MAX_OPS_ENV}={2 * self.max_ops}) or to_trace(..., max_ops=...)")

    def _variables(self, opname: str, args: tuple) -> tuple:
        """`args` with numbers made constants (bools included), each checked to be a
        variable of this builder."""
        args = tuple(a if isinstance(a, int) and not isinstance(a, bool) else self.const(a)
                     for a in args)
        for a in args:
            if not 0 <= a < len(self.instrs):
                raise TraceError(f"{opname}: argument v{a} is not defined")
        return args

    def _unbroadcast(self, opname, args, shape) -> tuple:
        """An elementwise op broadcasts by itself: an argument that is only a value
        broadcast to a shape (an adjoint of sum(x), say) is used as the value, so no
        full-size array of copies is made when the result has that shape anyway."""
        out = list(args)
        for k, a in enumerate(args):
            src = self.instrs[self.source_of(a)]
            if src[0] == "broadcast_to" and not src[2]:
                trial = out[:k] + [src[1][0]] + out[k + 1:]
                if result_shape(opname, [self.instrs[t][3] for t in trial], {}) == shape:
                    out = trial
        return tuple(out)

    def shape(self, var: Var) -> tuple:
        return self.instrs[var][3]

    def _append(self, ins: Instr, label: Optional[Label] = None) -> Var:
        var = len(self.instrs)
        if var >= self._room:
            raise self._too_large()
        self.instrs.append(ins)
        self.labels.append(label)
        op = ins.op
        if op == "copy":
            a = ins.args[0]
            self._copies[var] = self._copies.get(a, a)
            if a in self._consts:
                self._consts[var] = self._consts[a]
            self._flags.append(self._flags[a] | COPY)
        elif op == "const":
            self._consts[var] = ins.attrs[0][1]
            self._flags.append(CONST | SHAPED if ins.shape else CONST)
        else:
            self._flags.append((NEG if op == "neg" else 0) | (SHAPED if ins.shape else 0))
        return var

    def fork(self) -> "Builder":
        """A builder that goes on from this one's state on its own: what it appends is
        not seen here, nor the other way round. Its containers are copied (they hold
        only immutable values: instructions, labels, numbers, keys), so a copy costs a
        few list and dict copies, where replaying a trace again costs a call per
        instruction (several derivative passes of one primal: passes.jacobian.Replayed)."""
        # (not "copy": b.copy(x) is the copy op's method, as for every op of the table)
        twin = Builder.__new__(Builder)
        twin.__dict__.update({k: v.copy() if isinstance(v, (list, dict, set, bytearray)) else v
                              for k, v in self.__dict__.items()})
        return twin

    def label_list(self) -> list:
        """Each variable's label so far, a loaded trace's made from its columns (the
        builder's own list holds placeholders for them: builder_load); finish reads
        the columns instead. For tests and inspection."""
        from .finish import builder_labels
        return builder_labels(self).tolist()

    # -- finishing ----------------------------------------------------------------
    def release(self) -> None:
        """Drop the hash-consing tables, the builder's largest part, before its last
        `finish` (a pass's peak memory is the builder and its finished trace, side by
        side). The builder can still append instructions, but no longer shares them."""
        self._memo, self._scalar_consts, self._folds = {}, {}, {}

    def finish(self, outputs: Iterable[tuple[str, Var]], *, input_order: Optional[Sequence[str]] = None,
               number: bool = False, source: Optional[str] = None, last: bool = False,
               keep_columns: bool = False, labels_after=None) -> Trace:
        """Dead-code eliminate, put inputs first (in `input_order`, default the order
        they were declared), renumber, and optionally give primal Griewank labels.
        A builder whose inputs come first, in that order, and that has no dead code
        (a front end that declares its inputs first) is finished as it is.

        `last`: the builder's last use (a pass's, after `release`). Its instructions
        are renumbered a block at a time, each block's old tuples dropped before the
        next is made, whose new ones take their memory: the builder and the trace are
        not both whole at once (a gradient's peak at 10^5 operations: see reverse.vjp).
        The builder is left empty.

        `keep_columns`: the trace keeps its ops and arguments as arrays (columns.py),
        read on the way, for the stages that read them next (a front end's trace:
        share_sums, then a pass's load).

        `labels_after`: the labels of the instructions after a loaded trace's
        (builder_load), as columns (labels.Labels), where the caller has them (a
        gradient's sweep: passes/reverse_labels.py); else they are read from `labels`."""
        return _finish(self, outputs, input_order=input_order, number=number, source=source, last=last,
                       keep_columns=keep_columns, labels_after=labels_after)


_LEAF_OR_COPY = frozenset(("input", "const", "copy"))


def _add_op_method(opname: str, method) -> None:
    # A Builder attribute of the same name wins (source_of, name, shape...).
    if not hasattr(Builder, opname):
        setattr(Builder, opname, method)


for _name, _method in _op_methods().items():
    _add_op_method(_name, _method)
del _name, _method
_FAST_METHODS.install = _add_op_method   # (ops the table gains later, when first met)


class gc_paused:
    """Python's cycle collector off while a stage runs (``with gc_paused():`` or the
    decorator ``@gc_paused()``), then back as it was. A stage allocates millions of
    small tuples (instructions, labels, memo keys), which set off full collections
    that walk every object alive, traces included: at 10⁵ operations those took a
    quarter of the time and grew faster than the trace. The stages make no reference
    cycles, so pausing frees nothing late. (A class, not contextlib's generator: a
    decorated stage pays a call and a try, not a generator and its manager per call,
    ~0.8 µs of every pass.)"""

    __slots__ = ("_was",)

    def __enter__(self) -> "gc_paused":
        self._was = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc) -> None:
        _resume(self._was)

    def __call__(self, fn):
        @functools.wraps(fn)
        def paused(*args, **kwargs):
            was = gc.isenabled()
            gc.disable()
            try:
                return fn(*args, **kwargs)
            finally:
                _resume(was)
        return paused


def _resume(was_enabled: bool) -> None:
    """The collector back as it was before gc_paused."""
    if was_enabled:
        # The stage's survivors (a trace: every instruction, label and argument
        # tuple) go straight to the oldest generation: freeze() parks every tracked
        # object and unfreeze() hands them to that generation, two list splices.
        # Otherwise the young collections that follow walk them all and promote
        # them twice: 2.5-5 µs an operation of compile_grad's 35-40 at 10⁴-10⁵.
        # (The caller's young objects go with them, to the next full collection.)
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def trace_from_builder(b: Builder, outputs, *, source=None, input_order=None) -> Trace:
    """Front-end finish: inputs in natural order (unless given), primal numbering.
    A builder that still has its hash-consing table (not released) and whose finish
    moved nothing hands its tables on with the trace (finish.hand_on), and is left
    empty."""
    if input_order is None:
        input_order = sorted(b._inputs, key=natural_key)
    return hand_on(b, b.finish(outputs, input_order=input_order, number=True, source=source, keep_columns=True))
