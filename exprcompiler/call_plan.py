"""The call plan of a compiled tensor function: its quick path as one small function
made for it, with nothing in a loop and no layer between the call and the kernel.

Where it sits: TensorCall (tensor_call.py) makes it after its first call, when the
structure of the generated function's results is known; api.Compiled calls it first
on every call without `out=`. It takes a call whose arguments are exactly float64
NumPy arrays, all in order or all by name — the optimizer's and the training loop's
call — and does what the general path does for such a call: the binding of the
shapes (compared with the shapes of the last call, whose binding it keeps: equal
shapes, the same binding; else the signature's, cached per tuple of shapes, made and
checked on a new tuple: it depends on the shapes alone, so equal shapes prove the
checks pass), the kernel with NumPy's warnings off (call_args.quiet's steps written
into the plan: one frame less), each result checked (an array of the bound shape,
writable, not an input's memory: else fitted as the general path fits it), and the
results nested as the call returns them. A C kernel takes the binding itself
(run_bound: no second binding, no conversion) and makes its results of the bound
shapes, so they are not checked. Any other call returns None and takes the general
path.

Measured on the least-squares gradient with the kernel replaced by a stub (so only
the call layer is timed): 21 µs through TensorCall's generic loops, 10 µs through
this plan, on a busy 2-core machine; since, ~1.1 µs through the plan (the shapes'
key and its lookup ~0.3 µs, the dtype and type checks ~0.15 µs, the result checks
~0.2 µs); with the shapes compared in place of the key and its lookup, min of 31
interleaved rounds (wall clock, a machine at load 2-5): 1.30 → 1.16 µs through the
plan, 1.6 → 1.4 µs positional and 2.0-2.4 → 1.9 µs by name through g(...). The
remaining gap by name is CPython's: calling an instance by keyword cost ~0.25 µs
more than in order (3.11), even with a __call__ that names its parameters. The text
is ours: positions and fixed names only; the argument names (user text) are values
in its namespace, never source.
"""

from __future__ import annotations

import numpy as np

from .call_args import entered_elsewhere
from .dtypes import F64


def structure(results):
    """The nesting of a generated function's results, as TensorCall's flattening reads
    it: None for one bare result, else a tuple with None for a result and the length
    of each inner tuple of results."""
    if not isinstance(results, tuple):
        return None
    return tuple(len(r) if isinstance(r, tuple) else None for r in results)


def make_plan(names, shape_of, nest_spec, *, run, bound, bind, fit, nest, scalar, may_alias,
              run_bound=None):
    """The quick(args, kwargs) function of one compiled tensor function, or None when
    a plan would not pay (no inputs, an empty inner tuple of results).

    `shape_of`: structure() of the generated function's results; `nest_spec`: how
    the call nests them (output positions, api.Compiled._returns), or None to hand
    the list to `nest`; `run(*arrays)`: the kernel, quiet; `bound(key)` / `bind(arrays,
    key)`: the signature's cached and new bindings; `fit(k, r, shape, arrays)`: the
    general path's fitting of result k; `scalar[k]`: whether result k is declared a
    scalar (a float is returned); `may_alias[k]`: whether it can be an input's memory
    (then always fitted). `run_bound(binding, arrays)`, where the kernel has one (C):
    run instead of `run`, given the binding the plan found; its results are exactly
    the call's (arrays of the bound shapes, new, and floats), so none is checked."""
    n = len(names)
    if n == 0 or (shape_of is not None and 0 in shape_of):
        return None
    leaves, target = _target(shape_of)
    if leaves != len(scalar):
        return None
    args = [f"a{k}" for k in range(n)]
    arrays = "(" + ", ".join(args) + ",)"
    lines = [
        "def quick(args, kwargs):",
        "    if kwargs:",
        f"        if args or len(kwargs) != {n}:",
        "            return None",
        "        try:",
        *[f"            {a} = kwargs[k{k}]" for k, a in enumerate(args)],
        "        except KeyError:",
        "            return None",
        f"    elif len(args) == {n}:",
        f"        {', '.join(args)}, = args",
        "    else:",
        "        return None",
        f"    if {' or '.join(f'type({a}) is not nd' for a in args)}:",
        "        return None",
        f"    if not ({' and '.join(f'({a}.dtype is F or {a}.dtype == F)' for a in args)}):",
        "        return None",
        # the shapes of the last call, and their binding, in one tuple (one read: a
        # thread that rebinds replaces it whole); else the signature's cache
        "    m = last[0]",
        f"    if {' and '.join(f'{a}.shape == m[{k}]' for k, a in enumerate(args))}:",
        f"        b = m[{n}]",
        "    else:",
        f"        b = rebind({arrays})",
    ]
    steps = getattr(run, "steps", None)
    if run_bound is not None:
        lines.append(f"    {target} = run_bound(b, {arrays})")
    elif steps is None:
        lines.append(f"    {target} = run({', '.join(args)})")
    else:  # call_args.quiet's steps, inlined: the kernel run in the quiet Context
        call = f"(run, {', '.join(args)})"
        lines += ["    try:",
                  f"        {target} = (Q[0] or first()){call}",
                  "    except RuntimeError as err:",
                  "        if not elsewhere(err):",
                  "            raise",
                  f"        {target} = (L.run or enter()){call}"]
        shared, first, local, enter, run = steps
    if run_bound is None:
        lines.append("    s = b.shapes")
        for k in range(leaves):
            r = f"r{k}"
            if scalar[k]:
                lines.append(f"    {r} = float({r})")
            elif may_alias[k]:
                lines.append(f"    {r} = fit({k}, {r}, s[{k}], {arrays})")
            else:
                lines.append(f"    if type({r}) is not nd or {r}.shape != s[{k}] or not {r}.flags.writeable:")
                lines.append(f"        {r} = fit({k}, {r}, s[{k}], {arrays})")
    results = [f"r{k}" for k in range(leaves)]
    lines.append(f"    return {_nested(nest_spec, results)}" if nest_spec is not None
                 else f"    return nest([{', '.join(results)}])")
    last = [(None,) * (n + 1)]  # no shape is None: the first call rebinds

    def rebind(arrays):
        key = tuple([a.shape for a in arrays])
        b = bound(key) or bind(arrays, key)  # checked, or a ShapeError
        last[0] = (*key, b)
        return b
    namespace = {"nd": np.ndarray, "F": F64, "run": run, **({} if steps is None else
                 {"Q": shared, "first": first, "L": local, "enter": enter, "elsewhere": entered_elsewhere}),
                 "run_bound": run_bound, "last": last, "rebind": rebind,
                 "fit": fit, "nest": nest, **{f"k{k}": name for k, name in enumerate(names)}}
    exec(compile("\n".join(lines) + "\n", "<exprcompiler call plan>", "exec"), namespace)  # our text
    return namespace["quick"]


def _target(shape_of) -> tuple[int, str]:
    """(the number of results, the assignment target that unpacks them)."""
    if shape_of is None:
        return 1, "r0"
    parts, k = [], 0
    for item in shape_of:
        if item is None:
            parts.append(f"r{k}")
            k += 1
        else:
            parts.append("(" + ", ".join(f"r{k + j}" for j in range(item)) + ",)")
            k += item
    return k, ", ".join(parts) + ","


def _nested(spec, results: list) -> str:
    """A `returns`-style spec (output positions, nested tuples) as an expression."""
    if isinstance(spec, int):
        return results[spec]
    return "(" + ", ".join(_nested(s, results) for s in spec) + ("," if len(spec) == 1 else "") + ")"


__all__ = ["make_plan", "structure"]
