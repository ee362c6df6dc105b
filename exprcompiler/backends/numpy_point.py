"""The one-point variant of a batch function (numpy_backend.generated with point=True),
made from what generated kept of its batch function (`keep`): its lines respelled,
or its program's statements and slots with its keys respelled, without naming and
rendering the trace again (at the first one-point call of a gradient of 10²
operations, 0.6 of its 0.8 ms).

Where it sits: numpy_backend.generated keeps a _TextParts or _ProgramParts while it
makes a batch function of plain lines, and calls `_point_from` with it for the
variant (registry._MathPoint, at the first one-point call); load_point loads the
variant. The spellings (MATH, POINT_SPELLING) and the text pieces are numpy_lines'.
"""

from __future__ import annotations

from array import array
from itertools import chain
from typing import NamedTuple, Optional

from .name_later import input_names, later_texts
from .numpy_lines import (FALLBACK, POINT_SPELLING, UNGUARDED, Generated, ReturnSpec, _format_returns, _guarded,
                          _head, _keeps_inputs, _respelled)
from .numpy_program import Program
from .program_text import LazySource, Texts


class _TextParts(NamedTuple):
    """What generated keeps of a batch function of plain lines (rendered with
    _MARKED) for its one-point variant, whose names are the same: its lines."""
    body: list       # the statements' lines with markers (the return line aside)
    outputs: list    # per output: its text, with markers
    head: tuple      # _head_ops'
    func_name: str   # (the names' reserved: the variant's takes FALLBACK and UNGUARDED more)
    params: list
    names: list      # assign_names'
    inputs: list     # the inputs' variables


class _ProgramParts(NamedTuple):
    """What generated keeps of a batch function run as a program compiled on use
    (`later`, rendered with _MARKED) for its one-point variant: the same trace, named
    variables, slots and statements, spelled otherwise."""
    formats: list    # the statements' keys with markers (the return line's aside)
    outputs: list    # per output: its key, its holes (the texts' numbers) and their run slots
    returned: int    # the batch function's return line's holes
    head: tuple      # _head_ops'
    later: tuple     # later_texts' arguments but `reserved`
    program: Program   # the batch function's


def _point_from(parts, func_name: str, description: str, returns: Optional[ReturnSpec], reserved: frozenset,
                guarded: bool, lazy: bool) -> Optional[Generated]:
    """The one-point variant of a batch function (generated with point=True) made from
    `parts` (what generated kept of it) as generated would make it; None where
    generated must make it (an input's name reserved, two keys spelled alike). Its
    lines are the batch function's respelled, or of a program: the same statements and
    slots, the keys respelled, the names made with `reserved` when the text is asked
    for; the return line nested as `returns` says."""
    if type(parts) is _TextParts:
        return _point_text(parts, func_name, description, returns, guarded)
    if not lazy:
        return None
    like = parts.program
    trace, named, uses, reads, codes, slotted, constants = parts.later
    params = input_names(trace, reserved)
    if params is None:
        return None
    if returns is None:
        returns = 0 if len(trace.outputs) == 1 else tuple(range(len(trace.outputs)))
    order: list = []   # the outputs in the return line's order
    outputs = parts.outputs
    line = f"    return {_format_returns(returns, lambda k: order.append(k) or outputs[k][0], top=True)}"
    formats = _respelled([*parts.formats, line], POINT_SPELLING)
    if len(set(formats)) < len(formats):
        return None
    kept = len(like.slots) - parts.returned
    holes = array("i", chain.from_iterable(outputs[k][1] for k in order))
    runs = list(chain.from_iterable(outputs[k][2] for k in order))
    slots, numbers = like.slots, like.texts.holes
    if runs != slots[kept:] or holes != numbers[kept:]:   # (else the batch function's lists, shared)
        slots, numbers = slots[:kept] + runs, numbers[:kept] + holes
    texts = Texts.made_by(later_texts(trace, named, reserved, uses, reads, codes, slotted, constants))
    texts.holes = numbers
    head = "\n".join(_head(*parts.head, True, description, func_name, params))
    program = Program(formats, like.numbered, slots, like.size, like.params, like.constants, texts,
                      head.count("\n"), head)
    return Generated(LazySource(program), params, program)


def _point_text(parts: _TextParts, func_name: str, description: str, returns: Optional[ReturnSpec],
                guarded: bool) -> Optional[Generated]:
    """_point_from's variant of a batch function of plain lines."""
    names = parts.names
    if func_name != parts.func_name or FALLBACK in names or UNGUARDED in names:   # (else its names differ)
        return None
    params, outputs = parts.params, parts.outputs
    if returns is None:
        returns = 0 if len(outputs) == 1 else tuple(range(len(outputs)))
    body = _respelled([*parts.body, f"    return {_format_returns(returns, outputs.__getitem__, top=True)}"],
                      POINT_SPELLING)
    from .numpy_backend import _fits_try   # (it reads numpy_backend.PROGRAM_ABOVE, which tests set)
    if guarded and _keeps_inputs(names, parts.inputs) and _fits_try(len(body)):
        body = _guarded(body, params, returns)
    head = "\n".join(_head(*parts.head, True, description, func_name, params))
    return Generated("\n".join([head, *body, ""]), params, None)
