"""Shape algebra for the trace builder: what each op's shape rule is made of.

A shape is a tuple of dimensions; a dimension is an int or a name ("n") bound when
the compiled function is called. Names follow NumPy's rules the way the declared
shapes allow: a dimension broadcasts against another only if they are equal or one
of them is 1, so `(n,)` with `(100,)` is a `ShapeError` at compile time, not a guess.
Slicing a named dimension gives a derived name ("n-1"), which is how `x[1:] - x[:-1]`
type-checks without knowing n. What such an index or slice needs of n (`x[5]`: n >= 6,
`x[3:]`: n >= 3) cannot be checked until n is bound: `key_needs` lists it, and
shape_binding checks the list against every new binding, before any kernel runs.

Every function here raises `ShapeError` with a message naming the op and the shapes;
the builder adds which variables they belong to. The integers a user writes (sizes
in shapes=, indices, axes; from text, the command line or SymPy) enter through
`user_int`, which bounds them before anything converts or prints them.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Optional, Sequence

from .errors import ShapeError

Shape = tuple


def show(shape: Shape) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def broadcast(*shapes: Shape, op: str = "") -> Shape:
    """NumPy broadcasting of shapes whose dimensions may be names."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(ndim):
        dim = 1
        for s in shapes:
            d = s[k - ndim + len(s)] if k - ndim + len(s) >= 0 else 1
            if d == 1 or d == dim:
                continue
            if dim == 1:
                dim = d
            else:
                raise ShapeError(f"{op}: shapes {', '.join(show(s) for s in shapes)} do not broadcast "
                                 f"(dimension {d} against {dim})")
        out.append(dim)
    return tuple(out)


def normalize_axis(axis, ndim: int, op: str) -> Optional[tuple]:
    """axis (None, an int or a tuple of ints, negative counted from the end) as a
    sorted tuple of non-negative axes, or None for all axes."""
    if axis is None:
        return None
    axes = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int):
            raise ShapeError(f"{op}: axis must be an integer, got {a!r}")
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of range for an array of {ndim} dimension"
                             f"{'s' if ndim != 1 else ''}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: axis {axis} repeats an axis")
    return tuple(sorted(out))


def insert_axes(shape, axis, ndim: int) -> tuple:
    """`shape` with size-1 dimensions at `axis` (an int, a tuple, or None for none),
    `ndim` dimensions in all: what a reduction over `axis` removed, put back."""
    if axis is None:
        return tuple(shape)
    axis = (axis,) if isinstance(axis, int) else axis
    it = iter(shape)
    return tuple(1 if k in axis else next(it) for k in range(ndim))


def reduced(shape: Shape, axis, keepdims: bool, op: str) -> Shape:
    axes = normalize_axis(axis, len(shape), op)
    axes = range(len(shape)) if axes is None else axes
    if keepdims:
        return tuple(1 if k in axes else d for k, d in enumerate(shape))
    return tuple(d for k, d in enumerate(shape) if k not in axes)


def matmul(a: Shape, b: Shape) -> Shape:
    if not a or not b or len(a) > 2 or len(b) > 2:
        raise ShapeError(f"@: needs vectors or matrices, got shapes {show(a)} and {show(b)} "
                         f"(use * for scalars)")
    if a[-1] != b[0]:
        raise ShapeError(f"@: inner dimensions differ: {show(a)} @ {show(b)} ({a[-1]} against {b[0]})")
    return a[:-1] + b[1:]


# -- named dimensions under slicing -------------------------------------------------------
_DERIVED = re.compile(r"^(?P<name>[^\W\d]\w*)(?:-(?P<minus>\d+))?$")


def parse_dim(dim) -> Optional[tuple[str, int]]:
    """A named dimension as (name, k) for 'name-k' (k >= 0): its size is name's minus k.
    None if not of that form."""
    m = _DERIVED.match(dim) if isinstance(dim, str) else None
    return (m["name"], int(m["minus"] or 0)) if m else None


def _minus(dim, k: int):
    name, k0 = parse_dim(dim)
    return name if k0 + k == 0 else f"{name}-{k0 + k}"


def slice_length(dim, start, stop, step, op: str = "[]"):
    """Length of dim[start:stop:step]; for a named dimension, only the forms whose
    length is `dim - k` (x[1:], x[:-1], x[2:-3]) are known without its size."""
    if isinstance(dim, int):
        return len(range(*slice(start, stop, step).indices(dim)))
    step = 1 if step is None else step
    start = 0 if start is None else start
    if step == 1 and start >= 0 and (stop is None or stop < 0):
        return _minus(dim, start - (stop or 0))
    raise ShapeError(f"{op}: slicing dimension {dim!r} as [{start}:{stop if stop is not None else ''}"
                     f"{':' + str(step) if step != 1 else ''}] needs its size; declare it as a number "
                     f"or slice as x[k:] / x[:-k]")


# Every integer a user writes — an index, an axis, a size, a matrix power — passes
# through user_int: beyond int64 it cannot be a size or an index in a kernel (ptrdiff_t),
# and beyond 4300 digits Python refuses even to convert or print it.
INT_LIMIT = 2 ** 63


def user_int(value) -> Optional[int]:
    """`value` (ASCII digits, or an int, NumPy or SymPy integer) as an int of magnitude
    below 2**63; None if it is not an integer (bools and floats are not) or larger."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        # measure the digits before converting them: int() refuses more than 4300
        if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > 19:
            return None
        value = int(value)
    try:
        value = operator.index(value)
    except TypeError:
        return None
    return value if -INT_LIMIT < value < INT_LIMIT else None


def shown(value, limit: int = 40) -> str:
    """repr(value) for a message, cut to `limit` characters; an integer too long to
    print (Python's 4300-digit limit) is described by its length."""
    try:
        text = repr(value)
    except Exception:  # ValueError for a huge int (alone or inside a tuple); a message must not fail
        if isinstance(value, int):
            return f"an integer of about {value.bit_length() * 30103 // 100000 + 1} digits"
        return f"a {type(value).__name__} too large to print"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_index(dim, i: int, op: str = "[]") -> None:
    if isinstance(dim, int) and not -dim <= i < dim:
        raise IndexError(f"{op}: index {i} is out of range for a dimension of size {dim}")


def key_needs(shape: Shape, key) -> list[tuple]:
    """(dim, least) for each named dimension of `shape` that x[key] needs to have at
    least `least` elements: the half of the checks of check_index and slice_length
    that waits for the sizes (on a numbered dimension they were made at build time)."""
    out = []
    for dim, item in zip(shape, key):
        if isinstance(dim, int):
            continue
        if isinstance(item, int):
            least = item + 1 if item >= 0 else -item
        else:  # [k:], [:-m], [k:-m]: the forms slice_length allows on a name
            least = (item[0] or 0) - (item[1] or 0)
        if least > 0:
            out.append((dim, least))
    return out


def size(shape: Shape):
    """The number of elements: an int, or None when a dimension is named."""
    return math.prod(shape) if all(isinstance(d, int) for d in shape) else None


def reshape(shape: Shape, new: Sequence, op: str = "reshape") -> Shape:
    new = tuple(new)
    if sum(1 for d in new if d == -1) > 1:
        raise ShapeError(f"{op}: only one dimension can be -1")
    known = [d for d in new if d != -1]
    if any(isinstance(d, bool) or not isinstance(d, (int, str)) or (isinstance(d, int) and d < 0)
           for d in known):
        raise ShapeError(f"{op}: a shape is made of non-negative integers (and one -1), got {new}")
    total = size(shape)
    if total is None:
        # Named dimensions: only moves that keep each name (adding or dropping 1s).
        names = [d for d in shape if not isinstance(d, int) or d != 1]
        target = [d for d in new if d != 1]
        if -1 in new and len(target) == len(names):
            new = tuple(names[target.index(-1)] if d == -1 else d for d in new)
            target = [d for d in new if d != 1]
        if target != names:
            raise ShapeError(f"{op}: cannot reshape {show(shape)} to {show(new)} without knowing "
                             f"its named dimensions' sizes")
        return new
    if -1 in new:
        rest = size(tuple(known))
        if rest is None or rest == 0 or total % rest:
            raise ShapeError(f"{op}: cannot reshape {show(shape)} ({total} elements) to {show(new)}")
        new = tuple(total // rest if d == -1 else d for d in new)
    if size(new) != total:
        raise ShapeError(f"{op}: cannot reshape {show(shape)} ({total} elements) to {show(new)}")
    return new


def bind(declared: Shape, actual: tuple, name: str, dims: dict) -> None:
    """Check an argument's actual shape against its declared one, binding named
    dimensions in `dims` (name -> (size, first variable that bound it); "n-1" binds n)."""
    if len(actual) != len(declared):
        raise ShapeError(f"input {name!r}: expected {len(declared)} dimension"
                         f"{'s' if len(declared) != 1 else ''} {show(declared)}, got shape {show(actual)}")
    for k, (d, n) in enumerate(zip(declared, actual)):
        if isinstance(d, int):
            if d != n:
                raise ShapeError(f"input {name!r}: dimension {k} has size {n}, declared {d} "
                                 f"(expected shape {show(declared)}, got {show(actual)})")
            continue
        # A seed shaped like a slice ("n-2") binds n too: its size plus 2.
        base, minus = parse_dim(d)
        if base in dims:
            size_, who = dims[base]
            if size_ - minus != n:
                also = f", so {d} = {size_ - minus}" if minus else ""
                raise ShapeError(f"input {name!r}: dimension {d!r} is {n}, but {who!r} has "
                                 f"{base} = {size_}{also}")
        else:
            dims[base] = (n + minus, name)


def check_declared(name: str, shape) -> Shape:
    """A user's declaration: a tuple of positive ints and dimension names."""
    if isinstance(shape, (int, str)):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise ShapeError(f"shapes[{shown(name)}]: expected a tuple such as (3,) or ('n', 100), "
                         f"got {shown(shape)}") from None
    out = []
    for d in shape:
        size_ = None if isinstance(d, str) else user_int(d)
        if size_ is not None and size_ >= 1:
            out.append(size_)
        elif isinstance(d, str) and d.isidentifier():
            out.append(d)
        else:
            raise ShapeError(f"shapes[{shown(name)}]: dimension {shown(d)} must be a positive "
                             f"integer below 2**63 or a name")
    return tuple(out)
