"""Where masks are built: the edges and adjoints that leave a where()'s branch, masked.

Where it sits: reverse_masks.py decides which edges leave which regions (where_exits,
region_masks: the analysis); this module builds their masks in the reverse sweep:
passes/reverse.adjoint_sweep wraps an instruction's edges (masked_edges),
elimination masks a partial (masked), reverse_index masks an index adjoint's keyed
lanes (mask_built, and the conditions each wrapped edge holds: its `lane`, `premask`
or `postmask`). See reverse_masks' docstring for regions and their conditions, and
reverse_masks_moves' for the literals of a condition moved through an op that
moves lanes.
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..op_def import seed
from .reverse_masks_moves import _MOVED, mixing, move

# Up to _NESTED regions, a union's mask is a where per region on each edge that leaves
# it; beyond, one where on a flag "any of them holds" (reverse_masks).
_NESTED = 4


def masked_edges(b, edges: tuple, exit: dict, vmap: Sequence[int], op: str = "") -> tuple:
    """An instruction's edges (reverse._edges) with the masks of `exit`
    (where_exits' entry for it) applied: each edge's partial or VJP wrapped (an
    elementwise op's VJP remade from its partials, masked before its sum to shape).
    `op`: the instruction's op (one that mixes lanes masks its contribution too)."""
    out = []
    for j, partial, vjp in edges:
        if j not in exit:   # (an inactive argument: the sweep skips it)
            out.append((j, partial, vjp))
            continue
        top, conds = exit[j]
        if vjp is None:
            if top:
                partial = seed   # (the sweep's own path for it: no call)
            if conds:
                partial = _masked_partial(partial, _in_builder(b, conds, vmap))
            out.append((j, partial, None))
        elif getattr(vjp, "partials", None) is not None:
            # an elementwise op's VJP (tensors, or scalars' general path): masked at
            # the shape of its output, before the sum down to the argument's shape
            out.append((j, None, _lane_vjp(None if top else vjp.partials[j], _in_builder(b, conds, vmap))))
        else:
            # an op that is not elementwise: its contribution's lanes are not its
            # output's, so a mask of a tensor condition goes on the adjoint it takes
            # (zero there, but for the NaN of the region's partials); a scalar mask,
            # lane-aligned with anything, on the contribution (its NaN factors too)
            conds = _in_builder(b, conds, vmap)
            if all(b.shape(v) == () for anyof in conds for each in anyof for v, _ in each):
                vjp = _masked_vjp(vjp, conds)
            else:
                vjp = _premasked_vjp(vjp, conds, mixing(op, j))
            out.append((j, None, vjp))
    return tuple(out)


def masked(b, c: int, conds: tuple, vmap: Sequence[int]) -> int:
    """Builder var c where `conds` (trace vars, as region_masks gives them) hold, else 0."""
    return _mask(b, c, _in_builder(b, conds, vmap))


def mask_built(b, c: int, conds: tuple) -> int:
    """Builder var c where `conds` (builder vars, as an edge's VJP holds them: its
    `lane`) hold, else 0 (reverse_index masks an index adjoint's keyed lanes so)."""
    return _mask(b, c, conds)


def _in_builder(b, conds: tuple, vmap: Sequence[int]) -> tuple:
    got = tuple(tuple(tuple((_literal(b, c, vmap) if type(c) is tuple else vmap[c], side) for c, side in each)
                      for each in anyof) for anyof in conds)
    if any(type(c) is tuple and c[0] == _MOVED for anyof in conds for each in anyof for c, _ in each):
        # (literals moved apart that the builder made one, stack(x > 0, x > 0)'s parts
        # moved back: their conjunctions once)
        got = tuple(tuple(dict.fromkeys(anyof)) for anyof in got)
    return got


def _literal(b, lit, vmap: Sequence[int]) -> int:
    """A condition's literal as a builder var: a trace var's, or a narrowed region's
    flag (_LANES), or a literal moved through an op that moves lanes
    (reverse_masks_moves: the literal's var, or the path's 0/1 mask, moved)."""
    if type(lit) is not tuple:
        return vmap[lit]
    if lit[0] == _LANES:
        return _lanes_flag(b, lit, vmap)
    what, side = lit[1], lit[2]
    if side is None:
        value = _mask(b, b.const(1.0), _in_builder(b, what, vmap))
    else:
        value = _literal(b, what, vmap)
        if not side:
            value = b.apply("eq", value, 0.0)
    return move(b, lit, value, vmap)


# The condition of a narrowed region (tensors): (_LANES, the conditions of the path it
# narrows, innermost first, the op i that broadcasts, the narrower value a).
_LANES = "lanes"


def _lanes_flag(b, lit: tuple, vmap: Sequence[int]) -> int:
    """Nonzero at each lane of a where some lane of i summed into it has the path's
    conditions, else 0.0: the conditions' 0/1 mask at i's shape, summed down to a's,
    != 0 (hash-consed: made once however many edges ask)."""
    _, path, i, a = lit
    ones = _mask(b, b.const(1.0), _in_builder(b, path, vmap))
    if b.shape(ones) != b.shape(vmap[i]):
        ones = b.broadcast_to(ones, vmap[i])
    return b.apply("ne", b.sum_to(ones, vmap[a]), 0.0)


def _mask(b, c: Optional[int], conds: tuple) -> Optional[int]:
    """c where each of `conds` holds, else 0. A condition holds where any of its
    conjunctions does, a conjunction where each of its (variable, branch) does."""
    if c is not None:
        # (the constant 0 as a variable: a float argument takes the builder's general
        # path through _variables each call; made where that would first make it)
        zero = None
        for anyof in conds:
            if len(anyof) > _NESTED:
                c = b.where(_any_flag(b, anyof), c, 0.0)
                continue
            if zero is None and anyof:
                zero = b.const(0.0)
            masked = zero if anyof else 0.0   # (no conjunction holds: 0, as before)
            for each in reversed(anyof):
                t = c
                for v, side in each:
                    t = b.where(v, t, masked) if side else b.where(v, masked, t)
                masked = t
            c = masked
    return c


def _any_flag(b, anyof: tuple) -> int:
    """1.0 where any of the conjunctions holds, else 0.0 (a where's condition holds
    where it is nonzero, NaN included)."""
    flags = []
    for each in anyof:
        f = None
        for v, side in each:
            lit = b.apply("ne" if side else "eq", v, 0.0)
            f = lit if f is None else b.mul(f, lit)
        flags.append(f)
    flag = flags[0]
    for f in flags[1:]:
        flag = b.apply("maximum", flag, f)
    return flag


def _masked_partial(partial, conds: tuple):
    return lambda b, g, *args: _mask(b, partial(b, g, *args), conds)


# (an index adjoint's terms through an op that moves lanes take the conditions of its
# masked edge, `postmask` or `premask`, at their keyed lanes: reverse_index)
def _masked_vjp(vjp, conds: tuple):
    def masked(b, j, g, args, out, attrs):
        return _mask(b, vjp(b, j, g, args, out, attrs), conds)
    masked.postmask = conds
    return masked


def _premasked_vjp(vjp, conds: tuple, readers=None):
    """`readers` (an op that mixes lanes: reverse_masks_moves.mixing): the contribution
    masked too, where no output lane that reads an argument's lane is taken. The
    premask zeroes the adjoint there, but the op's own VJP multiplies it by the other
    argument: 0·NaN (matmul's x times sqrt(y) at y < 0, in a row not taken), and the
    other arguments masked so before the VJP reads them."""
    def masked(b, j, g, args, out, attrs):
        g = _mask(b, g, conds)
        if readers is None:
            return vjp(b, j, g, args, out, attrs)
        taken = _mask(b, b.broadcast_to(b.const(1.0), out), conds)

        def read(k):   # argument k's lanes where some output lane that reads them is taken
            return ((((readers(b, k, taken, args, out, attrs), True),),),)
        # the other arguments too (matmul's, outer's), so that the zero adjoint of an
        # output lane not taken meets 0, not their NaN: y's slope in outer(sqrt(b), y) at
        # b < 0 in a row not taken. A lane of theirs some taken lane reads keeps its value
        # (a NaN there makes that lane, and so the function, NaN)
        args = [a if k == j else _mask(b, a, read(k)) for k, a in enumerate(args)]
        c = vjp(b, j, g, args, out, attrs)
        return None if c is None else _mask(b, c, read(j))
    masked.premask = conds
    return masked


def _lane_vjp(partial, conds: tuple):
    """An elementwise op's VJP (op_def._vjp_from_partials) with its contribution
    masked by `conds` before it is summed down to the argument's shape: a condition
    with more lanes than the argument masks each lane it broadcasts over. `partial`
    None: a where's branch inside the region, whose adjoint passes as it is."""
    def vjp(b, j, g, args, out, attrs):
        c = g if partial is None else partial(b, g, *args, out)
        if c is None:
            return None
        c = _mask(b, c, conds)
        if b.shape(c) != b.shape(args[j]):
            c = b.sum_to(c, args[j])
        return c
    vjp.lane = (partial, conds)   # (an index adjoint's terms take them at the keyed lanes: reverse_index)
    return vjp
