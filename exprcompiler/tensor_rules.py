"""Shape rules, derivative rules and printed forms of the op table's tensor ops.

The op table (ops.py) holds one record per op; the records of ops that are not
elementwise point here for the parts that need more than a line. Their derivative
rules come in two kinds, because a non-elementwise op's Jacobian is not diagonal:

* ``jvp(b, tans, args, out, attrs)``: the output's tangent from the arguments'
  tangents (None for a structural zero), in one go, so that linear ops of several
  arguments (stack, matmul) build one expression;
* ``vjp(b, j, g, args, out, attrs)``: argument j's adjoint contribution from the
  output's adjoint g (the transposed map).

Both are written with builder calls, so derivatives of tensor ops are traces too.
The `bounds` rules say what an op needs of the sizes bound at call time (x[5]: n >= 6).
``sum_to`` and ``broadcast_to`` carry a *reference* variable whose only role is its
shape: named dimensions ("n") never have to be spelled in generated code.
"""

from __future__ import annotations

from . import shapes as _s
from .errors import ShapeError


def axis_for(attrs) -> object:
    """The axes a reduction removed, for re-expanding its adjoint (None when kept)."""
    return None if attrs.get("keepdims") else attrs.get("axis")


def total_of(b, parts):
    acc = None
    for p in parts:
        if p is not None:
            acc = p if acc is None else b.add(acc, p)
    return acc


def _zero_if_none(b, t, like):
    return t if t is not None else b.broadcast_to(b.const(0.0), like)


# -- shape rules: (shapes, attrs) -> shape -------------------------------------------------
def shape_same(shapes, attrs):
    return shapes[0]


def shape_of_ref(shapes, attrs):
    """broadcast_to / sum_to: the reference's shape, after checking that the first
    argument (with `axis` inserted) and the reference broadcast."""
    x, ref = shapes
    axis = attrs.get("axis")
    if axis is not None:
        x = _s.insert_axes(x, axis, len(ref))
    _s.broadcast(x, ref, op="broadcast")
    return ref


def shape_reduce(shapes, attrs):
    return _s.reduced(shapes[0], attrs.get("axis"), attrs.get("keepdims", False), "reduction")


def shape_scalar(shapes, attrs):
    return ()


def shape_matmul(shapes, attrs):
    return _s.matmul(*shapes)


def shape_outer(shapes, attrs):
    a, b = shapes
    if len(a) != 1 or len(b) != 1:
        raise ShapeError(f"outer: needs two vectors, got shapes {_s.show(a)} and {_s.show(b)}")
    return (a[0], b[0])


def shape_transpose(shapes, attrs):
    return tuple(reversed(shapes[0]))


def shape_reshape(shapes, attrs):
    return _s.reshape(shapes[0], attrs["shape"])


def shape_index(shapes, attrs):
    shape, key = shapes[0], attrs["key"]
    if len(key) > len(shape):
        raise IndexError(f"[]: {len(key)} indices for an array of {len(shape)} dimension"
                         f"{'s' if len(shape) != 1 else ''} {_s.show(shape)}")
    out = []
    for k, dim in enumerate(shape):
        item = key[k] if k < len(key) else (None, None, None)
        if isinstance(item, int):
            _s.check_index(dim, item)
        else:
            out.append(_s.slice_length(dim, *item))
    return tuple(out)


def shape_scatter(shapes, attrs):
    g, ref = shapes
    expected = shape_index([ref], attrs)
    if _s.broadcast(g, expected, op="[]") != expected:
        raise ShapeError(f"[]: a {_s.show(g)} value does not fit {_s.show(expected)}")
    return ref


def shape_stack(shapes, attrs):
    first = shapes[0]
    for s in shapes[1:]:
        if s != first:
            raise ShapeError(f"stack: all arrays need the same shape, got "
                             f"{', '.join(_s.show(t) for t in shapes)}")
    axis = attrs["axis"]
    return first[:axis] + (len(shapes),) + first[axis:]


def shape_concatenate(shapes, attrs):
    axis = attrs["axis"]
    first = shapes[0]
    for s in shapes:
        if len(s) != len(first) or s[:axis] + s[axis + 1:] != first[:axis] + first[axis + 1:]:
            raise ShapeError(f"concatenate: shapes {', '.join(_s.show(t) for t in shapes)} differ "
                             f"outside axis {axis}")
    sizes = [s[axis] for s in shapes]
    if not all(isinstance(d, int) for d in sizes):
        raise ShapeError(f"concatenate: the sizes along axis {axis} must be numbers, got "
                         f"{', '.join(map(str, sizes))}")
    return first[:axis] + (sum(sizes),) + first[axis + 1:]


# -- bounds: (shapes, attrs) -> [(dim, least, arg)] ------------------------------------------
# What an op needs of its dimensions that only a binding tells: `dim` has at least `least`
# elements. `arg`: the argument the message shows indexed by the op's key (None: the op
# itself). They are ops' `bounds` fields; shape_binding.ShapeBinder lists them once per
# trace and checks every binding.
def key_bounds(arg):
    """x[key] in range; for scatter (arg 1), the x whose zeros the adjoint of x[key] fills."""
    return lambda shapes, attrs: [(d, least, arg) for d, least in _s.key_needs(shapes[arg], attrs["key"])]


def bounds_nonempty(shapes, attrs):
    """max, min, logsumexp, softmax: no value over nothing (NumPy raises), so every
    axis they reduce needs an element."""
    shape, axis = shapes[0], attrs.get("axis")
    axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
    return [(shape[a], 1, None) for a in axes]



# -- derivative rules -------------------------------------------------------------------------
def _linear_jvp(b, tans, args, out, attrs, build):
    """The tangent of an op linear in its arguments: the op applied to the tangents."""
    if all(t is None for t in tans):
        return None
    return build(*[_zero_if_none(b, t, a) for t, a in zip(tans, args)])


def jvp_sum(b, tans, args, out, attrs):
    return None if tans[0] is None else b.sum(tans[0], **attrs)


def vjp_sum(b, j, g, args, out, attrs):
    return b.broadcast_to(g, args[0], axis=axis_for(attrs))


def _count(b, x, out):
    """Elements reduced into each output element: a constant when shapes are known."""
    nx, nout = _s.size(b.shape(x)), _s.size(b.shape(out))
    if nx is not None and nout is not None:
        return b.const(nx / max(nout, 1))
    return b.size_ratio(x, out)


def jvp_mean(b, tans, args, out, attrs):
    return None if tans[0] is None else b.mean(tans[0], **attrs)


def vjp_mean(b, j, g, args, out, attrs):
    # divide first: the count meets the small adjoint, not the broadcast one
    return b.broadcast_to(b.div(g, _count(b, args[0], out)), args[0], axis=axis_for(attrs))


def _ties(b, x, out, attrs):
    """The share of each element in a max/min: 1/(number of ties) where it attains it."""
    axis = axis_for(attrs)
    mask = b.eq(x, b.broadcast_to(out, x, axis=axis))
    kept = dict(attrs)
    return b.div(mask, b.broadcast_to(b.sum(mask, **kept), x, axis=axis))


def jvp_extreme(b, tans, args, out, attrs):
    if tans[0] is None:
        return None
    return b.sum(b.mul(tans[0], _ties(b, args[0], out, attrs)), **attrs)


def vjp_extreme(b, j, g, args, out, attrs):
    return b.mul(b.broadcast_to(g, args[0], axis=axis_for(attrs)), _ties(b, args[0], out, attrs))


# The softmax family's rules (logsumexp, softmax, log_softmax and their internal ops) are in
# tensor_rules_softmax.py; imported here, where the helpers it takes from this module exist.
from .tensor_rules_softmax import (  # noqa: E402,F401
    jvp_log_softmax, jvp_log_softmax_at, jvp_log_softmax_at_parts, jvp_log_softmax_at_vjp,
    jvp_log_softmax_jvp, jvp_log_softmax_vjp, jvp_logsumexp, jvp_softmax, vjp_log_softmax,
    vjp_log_softmax_at, vjp_log_softmax_at_parts, vjp_log_softmax_at_vjp, vjp_log_softmax_jvp,
    vjp_log_softmax_vjp, vjp_logsumexp, vjp_softmax)


def _unit(b, x, out):
    """x / ‖x‖, taken as 0 where ‖x‖ = 0 (the minimum-norm subgradient)."""
    return b.where(b.eq(out, 0.0), 0.0, b.div(x, out))


def jvp_norm(b, tans, args, out, attrs):
    return None if tans[0] is None else b.sum(b.mul(tans[0], _unit(b, args[0], out)))


def vjp_norm(b, j, g, args, out, attrs):
    return b.mul(b.broadcast_to(g, args[0]), _unit(b, args[0], out))


def jvp_matmul(b, tans, args, out, attrs):
    x, y = args
    tx, ty = tans
    return total_of(b, [None if tx is None else b.matmul(tx, y),
                      None if ty is None else b.matmul(x, ty)])


def vjp_matmul(b, j, g, args, out, attrs):
    x, y = args
    nx, ny = len(b.shape(x)), len(b.shape(y))
    if j == 0:
        if ny == 1:   # x (m, k) or (k,), y (k,): g is (m,) or ()
            return b.outer(g, y) if nx == 2 else b.mul(g, y)
        return b.matmul(g, b.transpose(y))           # g @ yᵀ
    if nx == 1:       # x (k,), y (k, n) or (k,)
        return b.outer(x, g) if ny == 2 else b.mul(g, x)
    if ny == 1:
        return b.matmul(g, x)                         # xᵀ g as g @ x: no transpose
    return b.matmul(b.transpose(x), g)


def jvp_outer(b, tans, args, out, attrs):
    x, y = args
    tx, ty = tans
    return total_of(b, [None if tx is None else b.outer(tx, y), None if ty is None else b.outer(x, ty)])


def vjp_outer(b, j, g, args, out, attrs):
    x, y = args
    return b.matmul(g, y) if j == 0 else b.matmul(x, g)


def jvp_linear_unary(opname):
    def rule(b, tans, args, out, attrs):
        return None if tans[0] is None else b.apply(opname, tans[0], **attrs)
    return rule


def vjp_transpose(b, j, g, args, out, attrs):
    return b.transpose(g)


def vjp_reshape(b, j, g, args, out, attrs):
    return b.reshape(g, shape=literal_shape(b.shape(args[0])))


def literal_shape(shape) -> tuple:
    """A shape as a reshape target: at most one named dimension, written -1."""
    named = [d for d in shape if not isinstance(d, int)]
    if len(named) > 1:
        raise ShapeError(f"reshape: {_s.show(shape)} has several named dimensions; its "
                         f"adjoint cannot be reshaped without their sizes")
    return tuple(-1 if not isinstance(d, int) else d for d in shape)


def jvp_index(b, tans, args, out, attrs):
    return None if tans[0] is None else b.index(tans[0], **attrs)


def vjp_index(b, j, g, args, out, attrs):
    return b.scatter(g, args[0], **attrs)


def jvp_scatter(b, tans, args, out, attrs):
    return None if tans[0] is None else b.scatter(tans[0], args[1], **attrs)


def vjp_scatter(b, j, g, args, out, attrs):
    return b.index(g, **attrs) if j == 0 else None


def jvp_stack(b, tans, args, out, attrs):
    return _linear_jvp(b, tans, args, out, attrs, lambda *t: b.stack(*t, **attrs))


def vjp_stack(b, j, g, args, out, attrs):
    full = (None, None, None)
    return b.index(g, key=(full,) * attrs["axis"] + (j,))


def jvp_concatenate(b, tans, args, out, attrs):
    return _linear_jvp(b, tans, args, out, attrs, lambda *t: b.concatenate(*t, **attrs))


def vjp_concatenate(b, j, g, args, out, attrs):
    axis = attrs["axis"]
    start = sum(b.shape(a)[axis] for a in args[:j])
    stop = start + b.shape(args[j])[axis]
    full = (None, None, None)
    return b.index(g, key=(full,) * axis + ((start, stop, None),))


def jvp_broadcast_to(b, tans, args, out, attrs):
    return None if tans[0] is None else b.broadcast_to(tans[0], args[1], **attrs)


def vjp_broadcast_to(b, j, g, args, out, attrs):
    return b.sum_to(g, args[0], **attrs) if j == 0 else None


def jvp_sum_to(b, tans, args, out, attrs):
    return None if tans[0] is None else b.sum_to(tans[0], args[1], **attrs)


def vjp_sum_to(b, j, g, args, out, attrs):
    return b.broadcast_to(g, args[0], **attrs) if j == 0 else None


def no_derivative(b, *rest):
    return None


# -- printed forms: (op, args [(text, prec)], attrs, target) -> (text, prec) -------------
def _key_text(key) -> str:
    parts = []
    for item in key:
        if isinstance(item, int):
            parts.append(str(item))
        else:
            start, stop, step = item
            text = f"{'' if start is None else start}:{'' if stop is None else stop}"
            if step is not None:
                text += f":{step}"
            parts.append(text)
    return ", ".join(parts)


def fmt_index(op, args, attrs, target):
    (text, prec), = args
    from .ops import PREC_ATOM
    return f"{text if prec >= PREC_ATOM else '(' + text + ')'}[{_key_text(attrs['key'])}]", PREC_ATOM


def fmt_transpose(op, args, attrs, target):
    (text, prec), = args
    from .ops import PREC_ATOM
    base = text if prec >= PREC_ATOM else f"({text})"
    return (base + "ᵀ" if target == "table" else base + ".T"), PREC_ATOM


def attr_text(key: str, value) -> str:
    """An option as generated code spells it: axis=(0,) reads as axis=0."""
    if key == "axis" and isinstance(value, tuple) and len(value) == 1:
        return str(value[0])
    return repr(value)


# -- the diagonal (SymPy's Trace, DiagonalOf and DiagMatrix) ---------------------------------
def shape_diagonal(shapes, attrs):
    s = shapes[0]
    if len(s) != 2 or s[0] != s[1]:
        raise ShapeError(f"diagonal: needs a square matrix, got shape {_s.show(s)}")
    return (s[0],)


def shape_diag(shapes, attrs):
    s = shapes[0]
    if len(s) != 1:
        raise ShapeError(f"diag: needs a vector, got shape {_s.show(s)}")
    return (s[0], s[0])


def vjp_diagonal(b, j, g, args, out, attrs):
    return b.diag(g)


def vjp_diag(b, j, g, args, out, attrs):
    return b.diagonal(g)
