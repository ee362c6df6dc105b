"""compile_* of a text whose reductions read inputs that `shapes=` does not declare:
the shapes come from the calls' arrays, as in a jit.

`compile_grad("mean((a*t + b - y)**2)", wrt=["a", "b"])` cannot know that t and y are
vectors; reducing each point alone would be a silently wrong answer. So the object
returned waits: the first call compiles the function with its arrays' shapes declared
(`shapes={"t": (4,), "y": (4,)}`) and keeps it for that shape set
(shape_binding.ShapeCache: a few, thread-safe). A later call whose shapes differ from
a compiled set only in the sizes of some axes compiles once more, with those axes as
named dimensions (`{"t": ("n",), "y": ("n",)}`; axes that changed alike share a name),
and every later call that fits that function runs it: a loop over lengths compiles
twice, not once per length (torch.compile's "automatic dynamic shapes"). A call that
does not fit it (an axis that stayed fixed now differs, sizes that its own check
refuses, a size 0) is compiled for its own shapes, as the first call was, so it gets the answer or
the refusal it would have had without the named function. `g.signature` lists the
shape sets compiled, a named one once. A call whose arrays have the shapes of an earlier
call's (its numbers and arrays at the same places) runs the function that call ran,
found by a key of its arguments (_call_key: ~1 µs, where binding them by name and
reading their shapes here was ~6 µs a call). An input that a reduction reads, given as one
number, is refused with the fix. Inputs, kind and `wrt` are read off the text parsed
as if every input were a number (on the NumPy backend: no C compile for that).
"""

from __future__ import annotations

import threading
from itertools import chain

import numpy as np

from .compiled import CompiledFunction, holds_dask
from .errors import ExprcError, ShapeError
from .shape_binding import ShapeCache

# Bounds on what one function keeps, whatever its callers do: the named functions
# (each a kernel; on C a library mapped into the process), the shape sets a new one may
# be made from, the patterns that failed to compile, and `signature`'s entries.
MAX_NAMED = 4
MAX_SEEN = 8
MAX_TRIED = 16
MAX_SIGNATURE = 32
# calls' argument keys (_call_key) remembered with the function that ran them
MAX_KEYS = 8

_NUMBERS = (float, int, np.float64)   # arguments a key takes as numbers (no shape to read)


def _call_key(args: tuple, kwargs: dict):
    """What decides which function runs a call, read off its arguments cheaply: the
    shape of each array (NumPy's own) and where each number stands (the names too, for
    arguments by name); None where an argument is of another type (a list, a Dask
    array, a NumPy scalar of another type: the full path reads those)."""
    key = [len(args)]
    for a in chain(args, kwargs.values()):
        t = type(a)
        if t is np.ndarray:
            key.append(a.shape)
        elif t in _NUMBERS:
            key.append(None)
        else:
            return None
    if kwargs:
        key.append(tuple(kwargs))
    return tuple(key)


def named_pattern(old: dict, new: dict) -> dict | None:
    """The shape set that covers `old` and `new`: each axis whose size differs becomes a
    named dimension, one name for the axes whose sizes went alike (4 -> 5 for both t and
    y: both "n"). None when the two differ in more than sizes (another input is an
    array, another rank) or `new` has a size 0 (a declared size is at least 1: such a
    call keeps the refusal it had)."""
    if old.keys() != new.keys() or any(len(old[k]) != len(new[k]) or 0 in new[k] for k in new):
        return None
    names: dict = {}  # (old size, new size) -> the name of the axes that went so

    def dim(a: int, b: int):
        if a == b:
            return a
        return names.setdefault((a, b), f"n{len(names) + 1}" if names else "n")
    pattern = {k: tuple(dim(a, b) for a, b in zip(old[k], shape)) for k, shape in new.items()}
    return pattern if names else None


def fits(pattern: dict, shapes: dict) -> bool:
    """Whether arrays of `shapes` bind `pattern`'s names consistently (each at least 1)
    and match its fixed sizes: the cheap half of the named function's own check."""
    if pattern.keys() != shapes.keys():
        return False
    dims: dict = {}
    for k, declared in pattern.items():
        actual = shapes[k]
        if len(actual) != len(declared):
            return False
        for d, n in zip(declared, actual):
            if (d != n) if isinstance(d, int) else (n < 1 or dims.setdefault(d, n) != n):
                return False
    return True


class ShapesAtCall(CompiledFunction):
    def __init__(self, key: str, make, expr: str, args: tuple, kwargs: dict, refusal: ShapeError):
        from .parse import parse
        from .passes.share_sums import share_sums
        self._key, self._make, self._expr, self._args, self._kwargs = key, make, expr, args, kwargs
        # metadata only (names, kind, wrt): the text as if every input were a number;
        # where that means nothing (softmax of a number), the refusal stands
        try:
            lenient = share_sums(parse(expr, lenient=True))
            shape = make(lenient, *args, **{**kwargs, "backend": "numpy", "threads": None})
        except ShapeError:
            raise refusal from None
        self.kind, self.mode, self.wrt, self.inputs = shape.kind, shape.mode, shape.wrt, shape.inputs
        self._dtype = shape._dtype  # dtype= (dtypes.py), as every shape set's compile gets it
        self.primal = lenient
        self.backend = kwargs.get("backend", "numpy")
        self._user = set(lenient.input_names)
        self._compiled = ShapeCache()   # concrete shape set -> its function
        # Each of these is a tuple replaced whole under the lock, so a call reads it
        # without one: (pattern, function) pairs, the shape sets compiled (newest last),
        # the patterns that failed to compile, and what `signature` shows.
        self._named: tuple = ()
        self._seen: tuple = ()
        self._tried: tuple = ()
        self._signature: tuple = ()
        self._lock = threading.Lock()
        # one named compile at a time: threads that bring new sizes at once wait for
        # the one named function rather than each compile its own
        self._growing = threading.Lock()
        self._last = None
        # A call's key (_call_key) -> the function that ran a call of that key: a later
        # call of the same key runs it without binding its arguments or reading their
        # shapes here (the function binds them itself). Replaced whole, as the tuples.
        self._by_key: dict = {}
        self._refusal = str(refusal).split("\n", 1)[0]  # where and what: the text's inputs to declare

    def __reduce__(self):
        from .recipe import rebuild
        return rebuild, (self._key, self._expr, self._args, self._kwargs)

    @property
    def threads(self):
        return self._kwargs.get("threads")

    def with_threads(self, threads):
        if self.backend != "c" or self._kwargs.get("threads") == threads:
            return self
        from .recipe import rebuild
        return rebuild(self._key, self._expr, self._args, {**self._kwargs, "threads": threads})

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + "; shapes from the first call>"

    @property
    def signature(self) -> tuple:
        """The shape sets compiled (the last MAX_SIGNATURE), as {input: shape} of the
        array arguments; a named dimension as its name."""
        return self._signature

    def _shapes(self, values: dict) -> dict:
        shapes = {}
        for name, v in values.items():
            base = name if name in self._user else name.rsplit("_", 1)[0]  # x_dot, y_bar: x's, y's
            if np.ndim(v) > 0 and base in self._user:
                shapes.setdefault(base, np.shape(v))
        return shapes

    _BOUNDS = {"_named": MAX_NAMED, "_seen": MAX_SEEN, "_tried": MAX_TRIED, "_signature": MAX_SIGNATURE}

    def _keep(self, **items) -> None:
        """Appends to the bounded tuples (see __init__), under the lock."""
        with self._lock:
            for attr, item in items.items():
                setattr(self, attr, (getattr(self, attr) + (item,))[-self._BOUNDS[attr]:])

    def _compile(self, shapes: dict):
        compiled = self._make(self._expr, *self._args, **{**self._kwargs, "shapes": dict(shapes)})
        self._keep(_signature=dict(shapes))
        return compiled

    def _concrete(self, shapes: dict):
        compiled = self._compile(shapes)
        self._keep(_seen=shapes)
        return compiled

    def _fitting(self, shapes: dict):
        for pattern, compiled in self._named:
            if fits(pattern, shapes):
                return compiled
        return None

    def _generalized(self, shapes: dict):
        """The named function for `shapes`: one already made, or one made now from
        `shapes` and a shape set compiled before; None when no pattern compiles."""
        with self._growing:
            found = self._fitting(shapes)  # made by another thread while this one waited
            if found is not None or len(self._named) >= MAX_NAMED:
                return found
            for old in reversed(self._seen):
                pattern = named_pattern(old, shapes)
                if pattern is None or pattern in self._tried:
                    continue
                self._keep(_tried=pattern)
                try:
                    compiled = self._compile(pattern)
                except ExprcError:  # the named form may not type-check
                    # (X @ w with X's columns fixed and w's length named; t * y of
                    # lengths 1 and 7 under two names): these sizes are then compiled
                    # as numbers, as before
                    continue
                self._keep(_named=(pattern, compiled), _seen=shapes)
                return compiled
        return None

    def __call__(self, /, *args, out=None, **kwargs):
        # Which function runs a call depends on its arrays' shapes only; the same shapes
        # (the same types, at the same places) choose the same function again. (Plain
        # numbers and NumPy arrays: no Dask object.)
        key = _call_key(args, kwargs)
        known = self._by_key.get(key) if key is not None else None
        if known is not None:
            self._last = known
            return known(*args, out=out, **kwargs)
        if holds_dask(args, kwargs):
            return self._on_dask(args, kwargs, out)
        ran, result = self._chosen(args, kwargs, out)
        self._last = ran
        if key is not None and (kwargs or ran.inputs == self.inputs):
            with self._lock:
                kept = self._by_key if len(self._by_key) < MAX_KEYS else {}
                self._by_key = {**kept, key: ran}
        return result

    def _chosen(self, args: tuple, kwargs: dict, out) -> tuple:
        """(the function that the call's shapes choose, compiled here if none fits, and
        its result)."""
        values = self.named(args, kwargs)
        shapes = self._shapes(values)
        key = tuple(sorted(shapes.items()))
        compiled = self._compiled.peek(key)
        if compiled is None and self._seen:
            general = self._fitting(shapes) or self._generalized(shapes)
            if general is not None:
                try:
                    result = general(**values, out=out)
                except ShapeError:
                    pass  # its own check of the sizes refused them: compiled for these shapes, as before
                else:
                    return general, result
        compiled = self._compiled.get(key, self._concrete, shapes)
        return compiled, compiled(**values, out=out)

    def at(self, x, seed=None, /, **data):
        """One point, packed, at the shapes of the last call (or of `data` alone)."""
        if self._last is None:
            raise ShapeError("at(): the shapes of this function come from its first call; call it once "
                             "with arrays, or declare them with shapes=")
        return self._last.at(x, seed, **data) if seed is not None else self._last.at(x, **data)

    def _of_last(self, what: str):
        if self._last is None:
            raise ShapeError(f"{what}: this function is compiled at its first call, for the shapes of "
                             f"its arrays; call it once, or declare them ({self._refusal})")
        return getattr(self._last, what)

    source = property(lambda self: self._of_last("source"))
    trace = property(lambda self: self._of_last("trace"))


__all__ = ["ShapesAtCall"]
