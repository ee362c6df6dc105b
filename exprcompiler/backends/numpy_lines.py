"""The pieces of a generated NumPy function's text: how its ops are spelled (the batch
function's and the one-point variant's), its header, its body's lines or keys, its
return line, the one-point variant's `try`.

Where it sits: numpy_backend.generated renders a trace and assembles the function from
these (numpy_point.py makes a one-point variant from a batch function's pieces with
them too). Nothing here reads the trace's values or runs code: text only.
"""

from __future__ import annotations

from array import array
from itertools import chain, compress
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np

from .. import ops as _ops
from ..trace.ir import Instr, Trace
from ..trace.render import Renderer, target_spelling
from ..trace.render_bulk import FlatSlots
from ..version import __version__
from .name_codes import Names
from .name_firsts import Aliases
from .naming import comment_text
from .numpy_program import Program
from .numpy_shares import FUSED_HELPERS
from .program_text import LazySource
from .reserved import PYTHON_RESERVED

# Ops called in batch code through a runtime helper that gives the same values faster
# than their NumPy ufunc: np.hypot and np.logaddexp are scalar libm loops (hypot costs
# 4 exps, logaddexp several times exp and log1p together: runtime.hypot,
# runtime.logaddexp). np.log1p and np.expm1 are scalar loops, twice np.log's and
# np.exp's cost, only where NumPy has no SIMD kernel for them (AVX2 and older;
# ufunc_loops.SIMD): there runtime.log1p and runtime.expm1 build them from log and exp.
# On AVX-512 they call np.log1p and np.expm1 themselves, keeping tiny |x| off those
# loops' slow path, and runtime.expm1 still takes exp(x) - 1 from x = log 2.
BATCH = {"hypot": "hypot", "logaddexp": "logaddexp", "log1p": "log1p", "expm1": "expm1"}
_HELPERS = {op.numpy for op in _ops.OPS.values()
            if op.numpy and op.numpy != op.infix and not op.numpy.startswith("np.")} | set(BATCH.values()) \
    | set(FUSED_HELPERS)
RESERVED = PYTHON_RESERVED | _HELPERS | {"math"}

ReturnSpec = Union[int, Sequence["ReturnSpec"]]


# pow is np.power, not `a ** b`: on NumPy scalars `**` takes another code path and
# can differ from the array result in the last bit.
_NUMPY_SPELLING = target_spelling("numpy", nan="np.nan", inf="np.inf")

# The one-point variant (`generate(..., point=True)`): a call whose every argument is
# one Python float runs Python's math module (the C library's functions), about 20x
# faster per operation than a NumPy ufunc on a scalar (the Griewank gradient: 0.5 µs
# against 3 µs). Results agree with the batch code's to the last bit or two (NumPy's
# SIMD loops and libm differ there, as the C backend's vector and scalar calls do).
# Where math raises (log(0), exp(1000), x/0) the variant itself hands the point to
# FALLBACK, a value in its namespace (load_point): the NumPy function at NumPy
# scalars, so IEEE results (inf, NaN, signed zeros) are NumPy's. Its `try` costs no
# instruction until something is raised (CPython 3.11's exception tables). Ops not
# listed keep their NumPy spelling, which works on floats too. (lgamma is not math's:
# CPython's loses accuracy near 1 and 2; floor/ceil there return ints.)
FALLBACK, UNGUARDED = "fallback", "unguarded"   # values in a guarded variant's namespace
MATH = {"sqrt": "math.sqrt", "exp": "math.exp", "log": "math.log", "log1p": "math.log1p",
        "expm1": "math.expm1", "sin": "math.sin", "cos": "math.cos", "tan": "math.tan",
        "arcsin": "math.asin", "arccos": "math.acos", "arctan": "math.atan", "sinh": "math.sinh",
        "cosh": "math.cosh", "tanh": "math.tanh", "abs": "abs", "erf": "math.erf", "erfc": "math.erfc",
        "log2": "math.log2", "log10": "math.log10", "arcsinh": "math.asinh", "arccosh": "math.acosh",
        "arctanh": "math.atanh", "arctan2": "math.atan2", "hypot": "math.hypot", "pow": "math.pow"}


def _spelling(calls: dict):
    """The NumPy spelling with the ops in `calls` called by those names instead."""
    base = _NUMPY_SPELLING

    def call(op):
        return calls.get(op.name) or base.call(op)
    return type(base)(symbol=base.symbol, call=call, const=base.const,
                      as_call=lambda op: op.name in calls or base.as_call(op), target=base.target)


SPELLING = _spelling(BATCH)
POINT_SPELLING = _spelling(MATH)

# The ops the batch function and the one-point variant spell otherwise (both as calls),
# each a marker in the lines or keys that _MARKED renders: the batch function's are
# those with the markers replaced by SPELLING's names, the variant's by POINT_SPELLING's
# (_respelled), so that the variant is made from its batch function's lines, or
# statements and slots, without naming and rendering the trace again (_point_from: at
# the first one-point call of a gradient of 10² operations, 0.6 of its 0.8 ms). None
# where an op of them is not a call in the base spelling (then each is rendered).
_MARK_CALLS = {name: f"\x03{name}\x04" for name in sorted(set(MATH) | set(BATCH))}
_MARKED = _spelling(_MARK_CALLS) if all(_NUMPY_SPELLING.as_call(_ops.OPS[name]) for name in _MARK_CALLS) else None
_CALLS = {spell: {name: spell.call(_ops.OPS[name]) for name in _MARK_CALLS} for spell in (SPELLING, POINT_SPELLING)}
# the ops whose rewrites the batch function has and the variant has not (_prepared_codes)
_BATCH_ONLY = frozenset(("xlogy", "logaddexp"))


class Generated(NamedTuple):
    source: Union[str, LazySource]   # the function's text (a program's: made when asked for, program_text.py)
    params: list                # its parameter names
    program: Optional[Program]  # for a text of more than PROGRAM_ABOVE lines, where generated: what load runs


def _respelled(lines: list, spell) -> list:
    """Lines or keys (one line each) rendered with _MARKED as `spell` spells them
    (SPELLING, POINT_SPELLING). (Two keys may become one: their callers check.)"""
    pieces = "\n".join(lines).split("\x03")   # (one scan: a search per marker cost ~1.5 µs a kB)
    calls = _CALLS[spell]
    for k in range(1, len(pieces)):
        name, _, rest = pieces[k].partition("\x04")
        pieces[k] = calls[name] + rest
    return "".join(pieces).split("\n")


def _reserved(func_name: str, guarded: bool) -> frozenset:
    """The names no variable takes: RESERVED, the function's and a guarded variant's
    values; one frozenset per function name, kept (made per call, ~250 names, and
    hashed again by naming's reserved_split: ~15 µs of a generate)."""
    key = (func_name, guarded)
    reserved = _RESERVED_FOR.get(key)
    if reserved is None:
        reserved = frozenset(RESERVED | {func_name} | ({FALLBACK, UNGUARDED} if guarded else set()))
        if len(_RESERVED_FOR) >= 64:
            _RESERVED_FOR.clear()
        _RESERVED_FOR[key] = reserved
    return reserved


_RESERVED_FOR: dict = {}


def _keeps_inputs(names: Union[list, Names], inputs: list) -> bool:
    """Whether no variable but the inputs holds an input's name (`names`: assign_names')."""
    if type(names) is Names:
        return names.holders(inputs) == len(inputs)
    taken = set(map(names.__getitem__, inputs))
    return sum(map(taken.__contains__, names)) == len(inputs)


def _head_ops(trace: Trace, r: Renderer, ops: set) -> tuple[set, set]:
    """What _head reads of the trace and its renderer: the ops spelled as the op table
    says (by their own helpers, if any) and the helpers the renderer's own forms call."""
    respelled = r.respelled   # a property that walks the trace: once, not per instruction
    if respelled:
        ops = {ins.op for i, ins in enumerate(trace.instrs) if i not in respelled}
    return ops, r.helpers


def _head(ops: set, helpers: set, point: bool, description: str, func_name: str, params: list) -> list[str]:
    """The lines before the body: comments, imports (of the runtime helpers the text
    calls: `ops`' and `helpers`, _head_ops'), the def line."""
    used = {(not point and BATCH.get(op)) or _ops.OPS[op].numpy for op in ops}
    used = sorted((used | helpers) & _HELPERS)
    head = [f"# Generated by exprcompiler {__version__}. Do not edit."]
    if description:
        head.append(f"# {comment_text(description, 200)}")
    head.append("import numpy as np" + ("\nimport math" if point else ""))
    if used:
        head.append(f"from exprcompiler.runtime import {', '.join(used)}")
    return head + ["", "", f"def {func_name}({', '.join(params)}):"]


def _text_lines(trace: Trace, r: Renderer, names: list, returns: ReturnSpec, plain: bool) -> list[str]:
    """The body's lines from a renderer of texts: `plain`, its whole statements (the
    renderer's rhs_all="    "), else with shared exps' lines and a.dot(b)."""
    instrs, rhs = trace.instrs, r.rhs_texts
    body = list(filter(None, rhs)) if plain else []
    for i in () if plain else compress(range(len(instrs)), map(bool, rhs)):
        body += [f"    {line}" for line in r.lines_before(i)]
        text = _matmul_as_dot(trace, instrs[i], r, names) if instrs[i].op == "matmul" else None
        body.append(f"    {names[i]} = {text or rhs[i]}")
    body.append(f"    return {_format_returns(returns, lambda k: r.expr(trace.outputs[k][1])[0], top=True)}")
    return body


def _slots(aliases: Aliases, named: np.ndarray, constant: np.ndarray) -> tuple:
    """Per variable its slot, whether it is the first of its slot, and those first
    variables that are constants (arrays; `named` and `constant`: per variable, bool
    arrays): a slot per name (the first variable of a
    name, which assign_names' `aliases` give the others) and per constant, numbered 0,
    1, ... in the trace's order: the program's list of values, copied at each call,
    has an entry per name and constant, not per variable (one point of a
    10⁴-operation gradient ran 5-10% faster so than on a slot per variable). (NumPy:
    no loop in Python.)"""
    # (np.add.accumulate and nonzero: np.cumsum's and np.flatnonzero's Python layers
    # are a fixed cost of every generate; without aliases, each variable is its own
    # given: no gather. At 10² operations 0.35-0.4 of the time.)
    first = named | constant
    if aliases:
        n = len(named)
        given = np.arange(n)
        keys, values = aliases.arrays()
        given[keys] = values
        first &= given == np.arange(n)
    slots = np.add.accumulate(first, dtype=np.int32)   # (int32: held through the renderer, generate's peak of memory)
    slots -= 1
    return slots[given] if aliases else slots, first, (first & constant).nonzero()[0]


def _keyed_lines(trace: Trace, r: Renderer, returns: ReturnSpec) -> tuple:
    """The body from a renderer of keys (Renderer's `slots`): the distinct keys (by
    number) and each line's key's number, the return line's last; every statement's
    slots, one after another (its target's, then its right-hand side's holes': a list
    of tuples, or render_bulk.FlatSlots: see _slot_list), and the return line's (a
    tuple)."""
    numbered, statement_slots = r.statements(flat=True)   # (numbers of keys in r.keys: 4 bytes a statement)
    returned: list = []   # the return line's holes

    def output(k: int) -> str:
        v = trace.outputs[k][1]
        returned.extend(r.holes[v])
        return r.expr(v)[0]
    numbered.append(r.keys[f"    return {_format_returns(returns, output, top=True)}"])
    return list(r.keys), numbered, statement_slots, tuple(returned)


def _slot_list(slots, tail: tuple) -> list:
    """Every statement's slots, one after another, then `tail` (the return line's), in
    a list of ints, an int object per slot (what the statement program runs:
    numpy_program), from _keyed_lines' (FlatSlots: a chunk at a time, so that no
    array of an object per hole is held whole). The list is made at its size, then
    filled (grown by `+=`, it was reallocated as it grew and kept up to an eighth
    spare): 8 bytes a hole, at 10⁵ operations about 53 an operation, it is where
    generate's RSS rises most, its ints in new pymalloc arenas beside the renderer's
    freed arrays' holes in the heap (given back before it since session 37: the
    pipeline's peak at 10⁵ deep 1,066 -> 992 bytes an operation, with the bulk
    sweep's; heap_release.py)."""
    if type(slots) is not FlatSlots:
        return [*chain.from_iterable(slots), *tail]
    flat = slots.flat
    out: list = [None] * (len(flat) + len(tail))   # (before the ints: the larger gets the first pick of the holes)
    ints = np.arange(int(flat.max()) + 1 if len(flat) else 0, dtype=object)   # (no int64 array of them first)
    for start in range(0, len(flat), _SLOT_CHUNK):
        out[start:start + _SLOT_CHUNK] = ints[flat[start:start + _SLOT_CHUNK]].tolist()
    out[len(flat):] = tail
    return out


def _program_slots(slots: FlatSlots, tail: tuple, run_slots: np.ndarray) -> tuple:
    """(the texts' numbers by hole, an array("i"); the slots the program runs on, a list
    of ints) of a program compiled on use, from the bulk renderer's FlatSlots as they
    are: every statement's slots and then `tail`, and their gather through run_slots,
    an int object per slot shared by its holes, as _slot_list's. (_slot_list's list,
    array("i", list) and a map over the list took 4 times as long: ~6,000 holes, 0.3 ms
    of a text gradient of 10³ operations.)"""
    flat = np.concatenate((slots.flat, np.array(tail, np.int32)))
    ran = run_slots[flat]
    ints = np.arange(int(ran.max()) + 1 if len(ran) else 0, dtype=object)
    return array("i", flat.tobytes()), ints[ran].tolist()


# (ints made, and placed in the list, this many at a time: the chunk's object array and
# list are held beside the list being filled, at 1 << 16 a MB, 100 bytes an operation of
# the pipeline's peak at 10⁴ operations; this size is as fast, or faster, at 10⁴-10⁶)
_SLOT_CHUNK = 1 << 12


def _guarded(body: list, params: list, returns: ReturnSpec) -> list:
    """The one-point variant's lines in a `try` whose `except` returns FALLBACK's
    answer (a list of the outputs), nested as `returns` says."""
    return ["    try:", *[f"    {line}" for line in body],
            "    except (ArithmeticError, ValueError):  # math refuses (log(0), x / 0): NumPy's answer",
            f"        r = {FALLBACK}({', '.join(params)})",
            f"        return {_format_returns(returns, 'r[{}]'.format, top=True)}"]


def _matmul_as_dot(trace: Trace, ins: Instr, r: Renderer, names) -> Optional[str]:
    """`a.dot(b)` for a product (what _dots makes of sum(r * r); X @ w and its
    gradient's r @ X; a layer's W.T @ g): for the vectors and matrices that the
    trace's @ takes, the same BLAS call as `a @ b` (dot, gemv, gemm), same warnings
    and, but for a view with a negative stride (then the last bits may differ), same
    bits, without the matmul ufunc's dispatch (~1 µs a product: about 2 µs of a 20 µs
    least-squares gradient at 500 rows), where the contraction has a known length of two
    or more."""
    if ins.op != "matmul":
        return None
    # a contraction of one term: dot returns the product itself (0·-1 is -0.0), where
    # @ (and the interpreter, and C) add it to +0.0; of a length known only at the
    # call, it may be one (r·r of _dots is never -0.0: a square)
    k = trace.instrs[ins.args[0]].shape[-1]
    if not (isinstance(k, int) and k >= 2) and ins.args[0] != ins.args[1]:
        return None
    (left, prec), (right, _) = (r.expr(a) for a in ins.args)
    return f"{left if prec >= _ops.PREC_ATOM else f'({left})'}.dot({right})"


def _format_returns(spec: ReturnSpec, leaf, top: bool = False) -> str:
    """The return expression nesting output positions as `spec` says, output k
    spelled leaf(k)."""
    if isinstance(spec, int):
        return leaf(spec)
    items = [_format_returns(s, leaf) for s in spec]
    text = ", ".join(items) + ("," if len(items) == 1 else "")
    return text if top and len(items) > 1 else f"({text})"
