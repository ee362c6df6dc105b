"""A where()'s tensor condition carried through the ops that move lanes.

Where it sits: reverse_masks._regions asks `moved_cond` for the condition of the
region a value joins through an op that moves lanes (transpose, reshape, stack,
concatenate, an index, a reduction over an axis, diag, broadcast_to...) when the
region's mask does not line up with the value; reverse_masks_build builds the
literals it makes (`move`, on each literal's variable or on a 0/1 mask).

where(C, transpose(sqrt(L)), 1): the branch's region holds the transpose, not
sqrt(L), whose lanes are the transpose's moved. Left at the parent region, sqrt(L)'s
partial (inf where L = 0) met the adjoint the transpose passed, zero in the lanes of
the branch not taken: 0·inf = NaN in the gradient where it is finite. The condition
of a lane L of the op's argument is that of the output lane(s) that read L, moved
the way the op's VJP moves an adjoint (the VJP applied to the condition), and the
argument goes to a region below the nearest one that fits with that condition: its
exits are masked by it as any region's are. Three kinds of op:

- EXACT: each lane of the argument is read by exactly one output lane (transpose,
  reshape, stack and concatenate's parts, a sum/mean/max/min/logsumexp over axes, diag,
  scatter's and sum_to's first argument). The moved condition is the condition at
  that lane, so the conditions' literals are moved one by one (their conjunctions
  and unions multiplied out: reverse_masks._PATH_TERMS at most, else a 0/1 mask
  moved as a whole), a scalar literal as it is; a reduction's with its reduced axes
  put back at size 1, which the masks' wheres broadcast. The edge needs no mask of
  its own: a lane whose reader is masked is masked at the region's exits, NaN and all.
- PARTIAL: each lane is read at most once and some are not read (an index, diagonal).
  As EXACT, each literal moved as "holds at the reader" (a literal of the branch not
  taken is moved as `c == 0`): the VJP leaves 0 at a lane nobody reads, which is
  "does not hold", so the exits are masked there too (the adjoint is 0 there, a
  partial may be inf). An index's adjoint kept at its key (reverse_index) reads the
  moved condition there as the condition itself (reverse_index_keyed.read).
- ANY: a lane read by several output lanes (broadcast_to's first argument; matmul's
  and outer's, by a row or a column of the output; softmax's and log_softmax's, by
  the lanes along the axis): the adjoint is the sum of the readers', so the lane is
  masked only where every reader is. The condition is "some reader's holds": the 0/1
  mask moved (summed over the readers: broadcast_to's VJP, or a sum over the axis the
  op mixes, O(output)), nonzero.
  The edge keeps its mask on the adjoint it takes (reverse_masks_build's premask),
  so that a masked reader contributes an exact 0 to the sum, not 0·inf.

A move's literal: (_MOVED, what, side, i, j, op, args, attrs): instruction i (op,
its arguments and options) moves to its argument j `what` — a literal (trace var,
or a literal of this form or reverse_masks_build's _LANES) taken where it is nonzero
(`side` True) or zero (False), or (side None) a path of conditions as a 0/1 mask.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from .. import shapes as _s
from .. import tensor_rules as T
from ..errors import ShapeError

_MOVED = "moved"
EXACT, PARTIAL, ANY = "exact", "partial", "any"


def _reduced_lanes(b, j: int, g: int, args: list, out: int, attrs: dict) -> int:
    """A reduction's output lanes at its argument's: as they are where they broadcast
    there (keepdims; all axes reduced, a number), else with the reduced axes put back at
    size 1 (a view), which the mask's where broadcasts: no pass over the argument's lanes
    (a comparison made again there compares the reduced lanes only)."""
    axis = T.axis_for(attrs)
    if axis is None:
        return g
    try:
        shape = T.literal_shape(_s.insert_axes(b.shape(out), axis, len(b.shape(args[0]))))
    except ShapeError:   # (several named sizes: broadcast as the VJP does)
        return T.vjp_sum(b, j, g, args, out, attrs)
    return b.reshape(g, shape=shape)


def _matmul_readers(b, j: int, g: int, args: list, out: int, attrs: dict) -> int:
    """How many of matmul's output lanes where g is nonzero read each lane of argument
    j: x[i, k] is read by row i of the output, y[k, n] by its column n, a vector's lanes
    by all (g a 0/1 mask at the output's lanes: a count, nonzero where some reader
    holds). A sum over the output's other axis, at the argument's lanes with that axis
    at size 1: O(output), where the VJP with ones for the other argument was a product."""
    nx, ny = len(b.shape(args[0])), len(b.shape(args[1]))
    if j == 0:
        c = g if ny == 1 else b.sum(g, axis=len(b.shape(out)) - 1)
        return _reduced_lanes(b, 0, c, [args[0]], c, {"axis": nx - 1})
    c = g if nx == 1 else b.sum(g, axis=0)
    return _reduced_lanes(b, 0, c, [args[1]], c, {"axis": 0})


def _outer_readers(b, j: int, g: int, args: list, out: int, attrs: dict) -> int:
    """outer(x, y)'s: x[i] is read by row i, y[n] by column n."""
    return b.sum(g, axis=1 - j)


def _axis_readers(b, j: int, g: int, args: list, out: int, attrs: dict) -> int:
    """How many of softmax's (log_softmax's) output lanes where g is nonzero read each
    lane of its argument: every lane along the axis reads every other."""
    kept = {"axis": attrs.get("axis", -1)}
    c = b.sum(g, **kept)
    return _reduced_lanes(b, 0, c, [args[0]], c, kept)


# op -> (kind, the arguments it moves, the rule (b, j, g, args, out, attrs) that moves a
# value at its output's lanes to argument j's: its VJP; a reduction's, its lanes kept;
# an op that mixes lanes, the count of readers that hold)
MOVES: dict = {
    "transpose": (EXACT, (0,), T.vjp_transpose),
    "reshape": (EXACT, (0,), T.vjp_reshape),
    "stack": (EXACT, None, T.vjp_stack),
    "concatenate": (EXACT, None, T.vjp_concatenate),
    "sum": (EXACT, (0,), _reduced_lanes),
    "mean": (EXACT, (0,), _reduced_lanes),
    "max": (EXACT, (0,), _reduced_lanes),
    "min": (EXACT, (0,), _reduced_lanes),
    "diag": (EXACT, (0,), T.vjp_diag),
    "scatter": (EXACT, (0,), T.vjp_scatter),
    "sum_to": (EXACT, (0,), T.vjp_sum_to),
    "index": (PARTIAL, (0,), T.vjp_index),
    "diagonal": (PARTIAL, (0,), T.vjp_diagonal),
    "broadcast_to": (ANY, (0,), T.vjp_broadcast_to),
    "logsumexp": (EXACT, (0,), _reduced_lanes),
    "matmul": (ANY, None, _matmul_readers),
    "outer": (ANY, None, _outer_readers),
    "softmax": (ANY, (0,), _axis_readers),
    "log_softmax": (ANY, (0,), _axis_readers),
}


_MIXING = frozenset(("matmul", "outer", "softmax", "log_softmax"))


def mixing(op: str, j: int) -> Optional[Callable]:
    """The rule that counts the readers of argument j's lanes where op mixes lanes
    (its VJP multiplies the adjoint by the other arguments), else None."""
    return MOVES[op][2] if op in _MIXING and move_kind(op, j) is not None else None


def move_kind(op: str, j: int) -> Optional[str]:
    """EXACT, PARTIAL or ANY where op moves its argument j's lanes, else None."""
    entry = MOVES.get(op)
    if entry is None or (entry[1] is not None and j not in entry[1]):
        return None
    return entry[0]


def moved_cond(path: Sequence[tuple], ins, i: int, j: int, limit: int,
               shape_of: Callable[[object], tuple]) -> tuple:
    """The condition (a tuple of conjunctions of (literal, side)) at argument j's lanes
    of instruction i (`ins`, a move) of the conditions `path` (innermost first, each a
    tuple of conjunctions) at i's output lanes. `limit`: at most so many conjunctions
    multiplied out, else the path is one 0/1 mask; `shape_of(literal)`: its shape."""
    kind = move_kind(ins[0], j)
    where = (i, j, ins[0], ins[1], ins[2])
    if kind != ANY:
        size = 1
        for anyof in path:
            size *= len(anyof)
        if size <= limit:
            dnf = [()]
            for anyof in path:
                dnf = [a + b for a in dnf for b in anyof]
            if kind == EXACT:
                # (a scalar literal holds alike at every lane: as it is)
                return tuple(tuple((lit, side) if shape_of(lit) == () else ((_MOVED, lit, True, *where), side)
                                   for lit, side in dict.fromkeys(each)) for each in dnf)
            return tuple(tuple(((_MOVED, lit, side, *where), True) for lit, side in dict.fromkeys(each))
                         for each in dnf)
    return ((((_MOVED, tuple(path), None, *where), True),),)


def move(b, lit: tuple, value: int, vmap: Sequence[int]) -> int:
    """Builder var: `value` (a builder var at instruction i's output lanes, or
    narrower) moved to argument j's lanes as `lit` says (the instruction's own rule).
    Through an EXACT op a comparison is made again of its arguments moved (a scalar
    as it is): it stays a comparison that only wheres read, which the NumPy backend
    keeps a boolean (a comparison moved itself is a float mask there, its wheres two
    passes each: +25% on transpose at 10^6), and the arguments the condition moved
    in the first place come back as they were (_undone)."""
    _, _, _, i, j, op, args, attrs = lit
    kind, _, rule = MOVES[op]
    at = (j, [vmap[v] for v in args], vmap[i], dict(attrs))
    ins = b.instrs[value]
    if kind == EXACT and ins[0] in _COMPARISONS:
        x, y = (a if b.shape(a) == () else _moved(b, a, rule, *at) for a in ins[1])
        return b.apply(ins[0], x, y)
    return _moved(b, value, rule, *at)


_COMPARISONS = frozenset(("lt", "le", "gt", "ge", "eq", "ne"))


def _moved(b, value: int, rule, j: int, args: list, out: int, attrs: dict) -> int:
    if b.shape(value) != b.shape(out):
        value = b.broadcast_to(value, out)
    undone = _undone(b, value, j, args, out)
    return rule(b, j, value, args, out, attrs) if undone is None else undone


def _undone(b, value: int, j: int, args: list, out: int) -> Optional[int]:
    """The move of `value` to argument j's lanes where `value` is itself the same move
    the other way (the condition computed on the branch's own moves: transpose(L) > 0
    beside transpose(sqrt(L))): its argument, with no pass. None elsewhere."""
    got, mine = b.instrs[value], b.instrs[out]
    if got[0] != mine[0]:
        return None
    if got[0] == "transpose":
        return got[1][0]
    if got[0] == "reshape":
        return got[1][0] if b.shape(got[1][0]) == b.shape(args[j]) else None
    if got[0] in ("stack", "concatenate") and got[2] == mine[2] and \
            [b.shape(a) for a in got[1]] == [b.shape(a) for a in mine[1]]:
        return got[1][j]
    return None
