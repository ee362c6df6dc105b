"""compile_* of a text whose reductions read inputs that `shapes=` does not declare:
the shapes come from the first call's arrays, as in a jit.

`compile_grad("mean((a*t + b - y)**2)", wrt=["a", "b"])` cannot know that t and y are
vectors; reducing each point alone would be a silently wrong answer. So the object
returned waits: each call whose array arguments have shapes not seen before compiles
the function again with those shapes declared (`shapes={"t": (4,), "y": (4,)}`),
keeps it for that shape set (shape_binding.ShapeCache: a few, thread-safe), and runs it.
`g.signature` lists the shape sets compiled. An input that a reduction reads, given
as one number, is refused with the fix. Inputs, kind and `wrt` are read off the text
parsed as if every input were a number (on the NumPy backend: no C compile for that).
"""

from __future__ import annotations

import numpy as np

from .compiled import CompiledFunction, holds_dask
from .errors import ShapeError
from .shape_binding import ShapeCache


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
        self._compiled = ShapeCache()
        self._signature: list[dict] = []
        self._last = None
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
        """The shape sets compiled so far, as {input: shape} of the array arguments."""
        return tuple(self._signature)

    def _for(self, values: dict):
        shapes = {}
        for name, v in values.items():
            base = name if name in self._user else name.rsplit("_", 1)[0]  # x_dot, y_bar: x's, y's
            if np.ndim(v) > 0 and base in self._user:
                shapes.setdefault(base, np.shape(v))
        key = tuple(sorted(shapes.items()))

        def make():
            compiled = self._make(self._expr, *self._args, **{**self._kwargs, "shapes": dict(shapes)})
            self._signature.append(dict(shapes))
            return compiled
        self._last = self._compiled.get(key, make)
        return self._last

    def __call__(self, /, *args, out=None, **kwargs):
        if holds_dask(args, kwargs):
            return self._on_dask(args, kwargs, out)
        values = self.named(args, kwargs)
        return self._for(values)(**values, out=out)

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
