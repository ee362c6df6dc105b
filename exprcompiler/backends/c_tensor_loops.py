"""C backend for tensor traces, the primitives: views, loop nests, elementwise
assignments and reductions.

A value is a `View`: its element (i_0, ..., i_{r-1}) is ptr[off + Σ i_k·strides[k]]
(offset and strides are C expressions), or one scalar C expression for every
element. Views make transpose, broadcast_to, constant indexing and the reshape of a
contiguous array free: no loop, no copy. Every op that computes writes a contiguous
buffer and reads its arguments through their views; broadcasting is a stride of 0.

`Loops` holds the primitives (an elementwise assignment, a reduction, a loop nest)
and the state the kernel's function body needs (lines, temporaries, helpers); the
per-op emitters (c_tensor_ops) are written with them. The innermost loop of every nest
carries `#pragma omp simd` where its iterations are independent (or a `+`
reduction; a maximum or minimum along it: Loops.extreme_row), so gcc vectorizes it,
libm calls included (see c_backend.VECTOR_MATH).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

SIMD = "#pragma omp simd"


@dataclass(frozen=True)
class View:
    shape: tuple                 # trace dimensions: ints and names ("n", "n-1")
    ptr: str = ""                # "": the scalar expression `text` at every index
    off: str = "0"
    strides: tuple = ()
    text: str = ""
    contiguous: bool = False


# -- C integer arithmetic on expressions, folding literals ------------------------------------
def is_literal(t: str) -> bool:
    return t.lstrip("-").isdigit()


def paren(t: str) -> str:
    return f"({t})" if any(c in t[1:] for c in "+-") or t.startswith("-") else t


def c_mul(a: str, b: str) -> str:
    if a == "0" or b == "0":
        return "0"
    if a == "1":
        return b
    if b == "1":
        return a
    if is_literal(a) and is_literal(b):
        return str(int(a) * int(b))
    return f"{paren(a)} * {paren(b)}"


def c_add(a: str, b: str) -> str:
    if a == "0":
        return b
    if b == "0":
        return a
    if is_literal(a) and is_literal(b):
        return str(int(a) + int(b))
    return f"{a} + {b}"


def c_prod(items: Sequence[str]) -> str:
    out = "1"
    for t in items:
        out = c_mul(out, t)
    return out


def row_major(dims: Sequence[str]) -> tuple:
    strides, acc = [], "1"
    for d in reversed(dims):
        strides.append(acc)
        acc = c_mul(acc, d)
    return tuple(reversed(strides))


def at(v: View, idx: Sequence) -> str:
    """v's element at one index per dimension (None: index 0)."""
    if not v.ptr:
        return v.text
    terms = [] if v.off == "0" else [v.off]
    terms += [c_mul(i, st) for i, st in zip(idx, v.strides) if i is not None and st != "0"]
    return f"{v.ptr}[{' + '.join(terms) or '0'}]"


def read(v: View, loop: tuple, idx: Sequence[str]) -> str:
    """v broadcast against a loop over the shape `loop` with indices `idx`."""
    if not v.ptr:
        return v.text
    lead = len(loop) - len(v.shape)
    return at(v, [None if d == 1 and loop[lead + k] != 1 else idx[lead + k] for k, d in enumerate(v.shape)])


def elements(x: View) -> Callable[[list[str]], str]:
    """x's element at a loop's indices (x broadcast against the loop over its own shape)."""
    return lambda idx: read(x, x.shape, idx)


def wrap_loop(index: str, count: str, body: list[str], pragma: str = "", start: str = "0",
              step: int = 1) -> list[str]:
    advance = f"++{index}" if step == 1 else f"{index} += {step}"
    head = ([pragma] if pragma else []) + [f"for (ptrdiff_t {index} = {start}; {index} < {count}; {advance})"]
    if len(body) == 1:
        return head + ["    " + body[0]]
    return head[:-1] + [head[-1] + " {"] + ["    " + ln for ln in body] + ["}"]


class Loops:
    """The function body being written: lines, temporaries, helpers and libm calls used."""

    def __init__(self, dim_c: Callable, fresh: Callable[[str], str]):
        self.dim_c = dim_c             # trace dimension -> C expression
        self.fresh = fresh             # a new identifier from a stem
        self.lines: list[str] = []
        self.temps: list[tuple[str, str]] = []   # (pointer name, size) in the arena
        self.extents: list[list[str]] = []       # each temporary's sizes (c_tensor._extent_check)
        self.helpers: set[str] = set()
        self.libm: set[str] = set()
        self._last_flat = None   # (length, first line, end, statements) of the last flat loop

    def emit(self, lines: list[str]) -> None:
        self.lines += ["    " + ln for ln in lines]

    def dims(self, shape) -> list[str]:
        return [self.dim_c(d) for d in shape]

    def size(self, shape) -> str:
        return c_prod(self.dims(shape))

    def buffer(self, ptr: str, shape) -> View:
        return View(tuple(shape), ptr, "0", row_major(self.dims(shape)), contiguous=True)

    def temp(self, shape, stem: str = "t") -> View:
        return self.buffer(self.add_temp(self.fresh(stem), shape), shape)

    def add_temp(self, name: str, shape) -> str:
        """`name` becomes a temporary of `shape` in the arena."""
        self.temps.append((name, self.size(shape)))
        self.extents.append(self.dims(shape))
        return name

    def nest(self, shape, body: Callable[[list[str]], list[str]], pragma: str = SIMD) -> list[str]:
        """Loops over `shape` (indices i0, i1, ...) around body(indices); `pragma` on the innermost."""
        idx = [f"i{k}" for k in range(len(shape))]
        lines = body(idx)
        for k in range(len(shape) - 1, -1, -1):
            lines = wrap_loop(idx[k], self.dim_c(shape[k]), lines, pragma if k == len(shape) - 1 else "")
        return lines

    def assign(self, dst: View, expr: Callable[[Callable[[View], str]], str]) -> None:
        """dst[...] = expr(read) over dst's shape: `read(view)` gives an argument's
        element. One flat loop when dst and every argument are contiguous of dst's
        shape (or scalars), nested loops with strides otherwise."""
        if not dst.shape:
            self.emit([f"{at(dst, [])} = {expr(lambda v: at(v, []))};" if dst.ptr else
                       f"double {dst.text} = {expr(lambda v: at(v, []))};"])
            return
        leaves: list[View] = []
        expr(lambda v: leaves.append(v) or "")
        if dst.contiguous and all(not v.ptr or (v.contiguous and v.shape == dst.shape) for v in leaves):
            def flat(v: View) -> str:
                return v.text if not v.ptr else f"{v.ptr}[{c_add(v.off, 'i')}]"
            self._flat(self.size(dst.shape), f"{flat(dst)} = {expr(flat)};",
                       all(v.off == "0" for v in leaves + [dst] if v.ptr))
            return
        self.emit(self.nest(dst.shape, lambda idx: [f"{at(dst, idx)} = {expr(lambda v: read(v, dst.shape, idx))};"]))

    def _flat(self, count: str, statement: str, aligned: bool) -> None:
        """One flat loop; it joins the flat loop just before it when both have the same
        length and touch only element i of every array (so the joined loop still has
        independent iterations): one pass over memory for a chain of named elementwise
        variables."""
        stmts, last = [statement], self._last_flat
        if aligned and last is not None and last[0] == count and last[2] == len(self.lines):
            stmts = last[3] + stmts
            del self.lines[last[1]:]
        start = len(self.lines)
        self.emit(wrap_loop("i", count, stmts, SIMD))
        self._last_flat = (count, start, len(self.lines), stmts) if aligned else None

    def reduce(self, kind: str, shape, element: Callable[[list[str]], str], axes, dst: View) -> None:
        """dst = the reduction ("+", "max" or "min") of element(indices) over `axes` of
        a loop over `shape`. dst is contiguous over the kept dimensions, or a scalar
        (dst.text, declared here). Row-major over the argument, so reducing a leading
        axis streams through memory too."""
        init = {"+": "0.0", "max": "-INFINITY", "min": "INFINITY"}[kind]
        if kind != "+":
            self.helpers.add(f"xc_{kind}imum")

        def update(acc: str, x: str) -> str:
            return f"{acc} += {x};" if kind == "+" else f"{acc} = xc_{kind}imum({acc}, {x});"
        axes = set(axes)
        if not dst.ptr:
            name = dst.text
            self.emit([f"double {name} = {init};"])
            if kind != "+" and shape:   # rows of the innermost axis, each vectorized
                last = len(shape) - 1
                self.emit(self.nest(shape[:-1], lambda idx: self.extreme_row(
                    kind, name, shape[last], lambda j: element(idx + [j])), "") if last else
                    self.extreme_row(kind, name, shape[0], lambda j: element([j])))
                return
            pragma = f"{SIMD} reduction(+:{name})" if kind == "+" else ""
            self.emit(self.nest(shape, lambda idx: [update(name, element(idx))], pragma))
            return
        self.assign(dst, lambda rd: init)
        kept = [k for k in range(len(shape)) if k not in axes]
        kstrides = row_major(self.dims([shape[k] for k in kept]))

        def out(idx) -> str:
            return at(View(dst.shape, dst.ptr, "0", kstrides), [idx[k] for k in kept])
        if shape and len(shape) - 1 in axes:   # innermost axis reduced: a scalar accumulator
            last = len(shape) - 1

            def body(idx):
                if kind != "+":
                    return [f"double acc = {out(idx + [None])};",
                            *self.extreme_row(kind, "acc", shape[last], lambda j: element(idx + [j])),
                            f"{out(idx + [None])} = acc;"]
                idx = idx + [f"i{last}"]
                inner = wrap_loop(idx[last], self.dim_c(shape[last]), [update("acc", element(idx))],
                                  f"{SIMD} reduction(+:acc)")
                return [f"double acc = {out(idx)};", *inner, f"{out(idx)} = acc;"]
            lines = ["{", *("    " + ln for ln in body([])), "}"] if last == 0 else self.nest(shape[:-1], body, "")
            self.emit(lines)
        else:
            self.emit(self.nest(shape, lambda idx: [update(out(idx), element(idx))]))

    def extreme_row(self, kind: str, acc: str, count, element: Callable[[str], str]) -> list[str]:
        """acc = xc_maximum (xc_minimum) of acc and element(j) for j in [0, count), with the
        bits of that sequential fold, vectorized: the fold (a select per element, each
        waiting on the last) was not, and took 2.5 ns an element (two of log_softmax's
        gradient's 19 ns at 10^5). Lanes take the largest non-NaN by `>` (gcc vectorizes
        that reduction; it ignores NaNs), and count the NaNs; then what the fold gives
        and lanes may not: the first NaN where there is one, and at a maximum of 0 the
        sign of the last zero (the fold keeps the last of equal elements). Those two
        look-ups run only where they apply: a row with a NaN, or whose maximum is 0."""
        n = self.dim_c(count)
        self.helpers.add(f"xc_{kind}imum")
        m, bad, j, v = self.fresh("ext"), self.fresh("nans"), self.fresh("j"), self.fresh("elt")
        better = ">" if kind == "max" else "<"
        return ["{",
                f"    double {m} = {'-' if kind == 'max' else ''}INFINITY, {bad} = 0.0;",
                f"    {SIMD} reduction({kind}:{m}) reduction(+:{bad})",
                f"    for (ptrdiff_t {j} = 0; {j} < {n}; ++{j}) {{",
                f"        const double {v} = {element(j)};",
                f"        {m} = {v} {better} {m} ? {v} : {m};",
                f"        {bad} += ({v} != {v});",
                "    }",
                f"    if ({bad} != 0.0) {{   /* the first NaN */",
                f"        for (ptrdiff_t {j} = 0; {j} < {n}; ++{j})",
                f"            if ({element(j)} != {element(j)}) {{ {m} = {element(j)}; break; }}",
                f"    }} else if ({m} == 0.0) {{   /* the last zero's sign */",
                f"        for (ptrdiff_t {j} = {n} - 1; {j} >= 0; --{j})",
                f"            if ({element(j)} == 0.0) {{ {m} = {element(j)}; break; }}",
                "    }",
                f"    {acc} = xc_{kind}imum({acc}, {m});",
                "}"]


# -- views: no code ------------------------------------------------------------------------
def _view(e: Loops, shape, ptr, off, strides) -> View:
    strides = tuple(strides)
    return View(tuple(shape), ptr, off, strides, contiguous=strides == row_major(e.dims(shape)))


def view_transpose(e: Loops, ins, args) -> View:
    v, = args
    return _view(e, ins.shape, v.ptr, v.off, reversed(v.strides)) if v.ptr else View(ins.shape, text=v.text)


def view_diagonal(e: Loops, v: View, shape) -> View:
    """The diagonal of a square matrix view: one stride, the sum of its two."""
    return _view(e, shape, v.ptr, v.off, [c_add(*v.strides)]) if v.ptr else View(tuple(shape), text=v.text)


def view_broadcast(e: Loops, v: View, shape, axis=None) -> View:
    """v broadcast to `shape`, after inserting size-1 dimensions at `axis`."""
    if not v.ptr:
        return View(tuple(shape), text=v.text)
    dims = list(zip(v.shape, v.strides))
    if axis:
        it = iter(dims)
        dims = [(1, "0") if k in axis else next(it) for k in range(len(shape))]
    lead = len(shape) - len(dims)
    strides = ["0"] * lead + ["0" if d == 1 and shape[lead + k] != 1 else s for k, (d, s) in enumerate(dims)]
    return _view(e, shape, v.ptr, v.off, strides)


def view_broadcast_to(e: Loops, ins, args) -> View:
    axis = ins.attr("axis")
    return view_broadcast(e, args[0], ins.shape, (axis,) if isinstance(axis, int) else axis)


def view_index(e: Loops, v: View, key, shape) -> View:
    """v[key] for constant integers and (start, stop, step) slices. On a named dimension
    the offset is taken on trust ("D0 - 2" for [-2]): the binding checked it is in range."""
    if not v.ptr:
        return View(tuple(shape), text=v.text)
    off, strides = v.off, []
    for k, dim in enumerate(v.shape):
        item = key[k] if k < len(key) else (None, None, None)
        st = v.strides[k]
        if isinstance(item, int):
            if item >= 0 or isinstance(dim, int):
                start = str(item % dim if isinstance(dim, int) else item)
            else:
                start = f"{e.dim_c(dim)} - {-item}"
            off = c_add(off, c_mul(start, st))
            continue
        start, stop, step = item
        if isinstance(dim, int):
            start, _, step = slice(start, stop, step).indices(dim)
        else:  # the shape rule allows x[k:], x[:-k] on named dimensions
            start, step = start or 0, 1
        off = c_add(off, c_mul(str(start), st))
        strides.append(c_mul(str(step), st))
    return _view(e, shape, v.ptr, off, strides)


def view_reshape(e: Loops, ins, args) -> View:
    v, = args
    if not v.ptr:
        return View(ins.shape, text=v.text)
    if not v.contiguous:  # a strided view is copied into a contiguous temporary first
        t = e.temp(v.shape)
        e.assign(t, lambda rd: rd(v))
        v = t
    return View(ins.shape, v.ptr, v.off, row_major(e.dims(ins.shape)), contiguous=True)


VIEWS = {
    "transpose": view_transpose,
    "broadcast_to": view_broadcast_to,
    "index": lambda e, ins, args: view_index(e, args[0], ins.attr("key"), ins.shape),
    "reshape": view_reshape,
    "diagonal": lambda e, ins, args: view_diagonal(e, args[0], ins.shape),
}
