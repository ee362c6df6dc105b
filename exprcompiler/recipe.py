"""How a compiled function travels to another process (a process pool, a Dask worker).

Every `compile_*` result remembers how it was made: the public function that made it
and its arguments, the expression replaced by the function's own trace (which pickles
as its instructions). Unpickling calls that function again on that trace, so the
kernel is generated again and, on the C backend, found in the compile cache by the
hash of its source (or compiled once in a fresh cache). Nothing generated is
pickled: no code object, no loaded library.
"""

from __future__ import annotations

import functools
import importlib

from .errors import UndeclaredShapes

_MAKERS = {}  # "module:name" -> the decorated compile_* function


def reproducible(make):
    """Decorates a compile_* function: its result pickles as (this function, its trace,
    the other arguments). A text whose reductions read undeclared inputs gets a
    ShapesAtCall, compiled at each call for the shapes of its arrays."""
    key = f"{make.__module__}:{make.__name__}"

    @functools.wraps(make)
    def wrapper(expr, *args, **kwargs):
        try:
            result = make(expr, *args, **kwargs)
        except UndeclaredShapes as refusal:
            if kwargs.get("shapes") or not isinstance(expr, str):
                raise
            from .shapes_at_call import ShapesAtCall  # the first call's arrays will tell
            return ShapesAtCall(key, make, expr, args, kwargs, refusal)
        kwargs.pop("shapes", None)  # the trace carries the shapes
        result._recipe = (key, args, kwargs)
        return result
    _MAKERS[key] = wrapper
    return wrapper


def rebuild(key: str, primal, args: tuple, kwargs: dict):
    if key not in _MAKERS:  # a fresh process: the module registers its makers on import
        importlib.import_module(key.partition(":")[0])
    return _MAKERS[key](primal, *args, **kwargs)


class Picklable:
    """Mixin of the compiled objects: pickled as their recipe (see the module)."""

    def __reduce__(self):
        key, args, kwargs = self._recipe
        return rebuild, (key, self.primal, args, kwargs)

    @property
    def threads(self):
        """The thread count it was compiled with (None: chosen at each call)."""
        return self._recipe[2].get("threads")

    def with_threads(self, threads):
        """The same function made again with `threads=` (C backend: the same library,
        found in the cache, for the thread count is an argument of the C function);
        itself when that is what it has. A Dask worker runs one thread per task."""
        key, args, kwargs = self._recipe
        if self.backend != "c" or kwargs.get("threads") == threads:
            return self
        return rebuild(key, self.primal, args, {**kwargs, "threads": threads})


__all__ = ["Picklable", "reproducible", "rebuild"]
