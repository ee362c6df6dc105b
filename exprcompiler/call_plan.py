"""The call plan of a compiled tensor function: its quick path as one small function
made for it, with nothing in a loop and no layer between the call and the kernel.

Where it sits: TensorCall (tensor_call.py) makes it after its first call, when the
structure of the generated function's results is known; api.Compiled calls it first
on every call without `out=`. It takes a call whose arguments are exactly float64
NumPy arrays, all in order or all by name — the optimizer's and the training loop's
call — and does what the general path does for such a call: the binding cached for
the tuple of shapes (made and checked by the signature on a new tuple: it depends on
the shapes alone, so the key proves the checks pass), the kernel with NumPy's
warnings off (call_args.quiet's steps written into the plan: one frame less), each
result checked (an array of the bound shape, writable, not an input's memory: else
fitted as the general path fits it), and the results nested as the call returns
them. Any other call returns None and takes the general path.

Measured on the least-squares gradient with the kernel replaced by a stub (so only
the call layer is timed): 21 µs through TensorCall's generic loops, 10 µs through
this plan, on a busy 2-core machine; since, ~1.1 µs through the plan and ~1.5 µs
(positional) or ~1.9 µs (by name) through g(...) (CPU time, min of interleaved
rounds; the shapes' key and its lookup ~0.3 µs, the dtype and type checks ~0.15 µs,
the result checks ~0.2 µs). The text is ours: positions and fixed names
only; the argument names (user text) are values in its namespace, never source.
"""

from __future__ import annotations

import numpy as np

from .dtypes import F64


def structure(results):
    """The nesting of a generated function's results, as TensorCall's flattening reads
    it: None for one bare result, else a tuple with None for a result and the length
    of each inner tuple of results."""
    if not isinstance(results, tuple):
        return None
    return tuple(len(r) if isinstance(r, tuple) else None for r in results)


def make_plan(names, shape_of, nest_spec, *, run, bound, bind, fit, nest, scalar, may_alias):
    """The quick(args, kwargs) function of one compiled tensor function, or None when
    a plan would not pay (no inputs, an empty inner tuple of results).

    `shape_of`: structure() of the generated function's results; `nest_spec`: how
    the call nests them (output positions, api.Compiled._returns), or None to hand
    the list to `nest`; `run(*arrays)`: the kernel, quiet; `bound(key)` / `bind(arrays,
    key)`: the signature's cached and new bindings; `fit(k, r, shape, arrays)`: the
    general path's fitting of result k; `scalar[k]`: whether result k is declared a
    scalar (a float is returned); `may_alias[k]`: whether it can be an input's memory
    (then always fitted)."""
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
        f"    key = ({', '.join(f'{a}.shape' for a in args)},)",
        f"    b = bound(key) or bind({arrays}, key)",
    ]
    steps = getattr(run, "steps", None)
    if steps is None:
        lines.append(f"    {target} = run({', '.join(args)})")
    else:  # call_args.quiet's steps, inlined: the kernel run in this thread's quiet Context
        lines.append(f"    {target} = (L.run or enter())(run, {', '.join(args)})")
        local, enter, run = steps
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
    namespace = {"nd": np.ndarray, "F": F64, "run": run, **({} if steps is None else
                 {"L": local, "enter": enter}), "bound": bound, "bind": bind,
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
