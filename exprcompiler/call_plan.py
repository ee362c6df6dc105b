"""The call plan of a compiled tensor function: its call as one small function made
for it, with nothing in a loop and no layer between the call and the kernel; and
(point_plan) the same for a function of scalars called with Python floats, made
when api.Compiled learns NumPy's one-point variant; and (batch_plan) for a function
of scalars called with float64 arrays (and numbers), made by api.Compiled at its
second such call.

The plan of arrays: a gradient of two inputs on arrays of 1-100 points took 16-18 µs
a call on either backend through the general path (binding, np.broadcast_shapes,
np.errstate, c_run's run with five ffi.from_buffer by the type's text, the results
fitted one by one), where the kernel takes ~0.8 µs through cffi (C) and ~3.7 µs
(NumPy, one point); through the plan 2.7-3.3 µs (C) and the NumPy kernel + ~1.2 µs
(benchmarks/bench_call.py; thread CPU medians, alternating with the old tree).

Where it sits: TensorCall (tensor_call.py) makes it after its first call, when the
structure of the generated function's results is known, and api.Compiled makes it
its own __call__ (compiled_call._planned: the object's class from then on is a subclass whose
__call__ is the plan, so a call runs in one frame of ours). It takes a call whose
arguments are exactly float64 NumPy arrays, all in order or all by name, with or
without `out=` — the optimizer's and the training loop's call — and does what the
general path does for such a call: the binding of the shapes (compared with the
shapes of the last call, whose binding it keeps: equal shapes, the same binding;
else the signature's, cached per tuple of shapes, made and checked on a new tuple:
it depends on the shapes alone, so equal shapes prove the checks pass), the kernel
with NumPy's warnings off (call_args.quiet's steps written into the plan), the
results checked (an array of the bound shape, writable, not an input's memory: else
fitted as the general path fits it) at the first call of each shape tuple (NumPy
code on float64 arrays gives results whose types, shapes and ownership follow from
the shapes alone; a result that was fitted is checked at every call, one that can
be an input's memory always fitted), `out=` filled, and the results nested as the
call returns them. A C kernel takes the binding itself (run_bound: no second
binding, no conversion) and makes its results of the bound shapes, so they are not
checked. Any other call goes to the general path (api.Compiled.__call__), which
gives every refusal its message.

Measured on the least-squares gradient 500×100 (callgrind, instructions per call,
PYTHONHASHSEED=0; the bare generated function 109.1k, the hand-written value and
gradient 111.9k): before this module's latest form (the plan a method that
Compiled.__call__ tried first, every result checked at every call, out= through the
general path) 119.7k in order, 122.9k by name, 181.0k with out=; now 116.4k, 119.5k
and 122.9k (C: 119.3k / 122.4k / 194.2k -> 117.6k / 120.8k / 124.0k). What is left
over the bare function: the three shapes compared (~2.4k: each `a.shape` makes a
tuple; ndim, len and size read instead cost more), the dtype and type checks
(~1.4k), and CPython's own call of an instance (~1.1k more than of a function in
order, ~2.5k more by keyword: the keywords went through a dict twice; see _compiled).
The text is ours: positions and fixed names, and input names only where they are
plain identifiers (else they are values in its namespace, never source).
"""

from __future__ import annotations

import functools
import keyword
import operator
import sys
from types import CodeType

import numpy as np

from .call_args import entered_elsewhere, own, quiet
from .dtypes import F64


def structure(results):
    """The nesting of a generated function's results, as TensorCall's flattening reads
    it: None for one bare result, else a tuple with None for a result and the length
    of each inner tuple of results."""
    if not isinstance(results, tuple):
        return None
    return tuple(len(r) if isinstance(r, tuple) else None for r in results)


def make_plan(names, shape_of, nest_spec, *, run, bound, bind, fit, nest, scalar, may_alias,
              run_bound=None, general=None, put=None):
    """The plan of one compiled tensor function, or None when a plan would not pay
    (no inputs, an empty inner tuple of results): `call(self, /, *args, out=None,
    **kwargs)`, made to be the `__call__` of the compiled object's class (api.py),
    which hands every call it does not take to `general(self, *args, out=out,
    **kwargs)`.

    `shape_of`: structure() of the generated function's results; `nest_spec`: how
    the call nests them (output positions, api.Compiled._returns), or None to hand
    the list to `nest`; `run(*arrays)`: the kernel, quiet; `bound(key)` / `bind(arrays,
    key)`: the signature's cached and new bindings; `fit(k, r, shape, arrays)`: the
    general path's fitting of result k; `scalar[k]`: whether result k is declared a
    scalar (a float is returned); `may_alias[k]`: whether it can be an input's memory
    (then always fitted); `put(out, results)`: the general path's out= (results copied
    into the caller's arrays, nested; its errors). `run_bound(binding, arrays)`, where
    the kernel has one (C): run instead of `run`, given the binding the plan found;
    its results are exactly the call's (arrays of the bound shapes, new, and floats),
    so none is checked."""
    n = len(names)
    if n == 0 or (shape_of is not None and 0 in shape_of):
        return None
    leaves, target = _target(shape_of)
    if leaves != len(scalar):
        return None
    args = [f"a{k}" for k in range(n)]
    arrays = "(" + ", ".join(args) + ",)"
    lines = [
        f"    if {' or '.join(f'type({a}) is not nd' for a in args)}:",
        f"        {_MISS}",
        f"    if not ({' and '.join(f'({a}.dtype is F or {a}.dtype == F)' for a in args)}):",
        f"        {_MISS}",
        # the shapes of the last call, their binding and whether the results were
        # found right for them, in one tuple (one read: a thread that rebinds
        # replaces it whole); else the signature's cache
        "    m = last[0]",
        f"    if not ({' and '.join(f'{a}.shape == m[{k}]' for k, a in enumerate(args))}):",
        f"        m = rebind({arrays})",
        f"    b = m[{n}]",
    ]
    steps = getattr(run, "steps", None)
    if run_bound is not None:
        lines.append(f"    {target} = run_bound(b, {arrays})")
    elif steps is None:
        lines.append(f"    {target} = run({', '.join(args)})")
    else:
        lines += _quiet_lines(target, f"(run, {', '.join(args)})")
        shared, first, local, enter, run = steps
    if run_bound is None:
        lines += [f"    {r} = float({r})" for k, r in _results(leaves) if scalar[k]]
        lines += [f"    {r} = fit({k}, {r}, b.shapes[{k}], {arrays})" for k, r in _results(leaves)
                  if not scalar[k] and may_alias[k]]
        # The other results are checked at the first call with these shapes only: the
        # kernel is NumPy code on float64 arrays, whose results' types, shapes and
        # ownership follow from the shapes of its arguments alone (not their values).
        checked = [(k, r) for k, r in _results(leaves) if not scalar[k] and not may_alias[k]]
        if checked:
            lines += [f"    if not m[{n + 1}]:",
                      "        s, right = b.shapes, True"]
            for k, r in checked:
                lines += [f"        if type({r}) is not nd or {r}.shape != s[{k}] or not {r}.flags.writeable:",
                          f"            {r}, right = fit({k}, {r}, s[{k}], {arrays}), False"]
            lines += ["        if right:",
                      f"            last[0] = m[:{n + 1}] + (True,)"]
    results = [r for _, r in _results(leaves)]
    if nest_spec is not None:  # out=: the caller's arrays, nested as the result; else put's path
        outs = [f"o{k}" for k in range(leaves)]
        test, take = _unpacked(nest_spec, "out", outs)
        lines += ["    if out is not None:",
                  f"        if {' and '.join(test) or 'True'}:",
                  *[f"            {t}" for t in take],
                  "            s = b.shapes",
                  f"            if {' and '.join(f'type({o}) is nd and {o}.shape == s[{k}] and ({o}.dtype is F or {o}.dtype == F)' for k, o in enumerate(outs))}:",
                  *[f"                {o}[...] = {r}" for o, r in zip(outs, results)],
                  f"                return {_nested(nest_spec, outs)}",
                  f"        return put(out, [{', '.join(results)}])",
                  f"    return {_nested(nest_spec, results)}"]
    else:
        lines += ["    if out is not None:",
                  f"        return put(out, [{', '.join(results)}])",
                  f"    return nest([{', '.join(results)}])"]
    last = [(None,) * (n + 2)]  # no shape is None: the first call rebinds

    def rebind(arrays):
        key = tuple([a.shape for a in arrays])
        b = bound(key) or bind(arrays, key)  # checked, or a ShapeError
        m = (*key, b, False)
        last[0] = m
        return m
    namespace = {"nd": np.ndarray, "F": F64, "run": run, **({} if steps is None else
                 {"Q": shared, "first": first, "L": local, "enter": enter, "elsewhere": entered_elsewhere}),
                 "run_bound": run_bound, "last": last, "rebind": rebind, "put": put,
                 "fit": fit, "nest": nest, "general": general}
    exec(_compiled(names, lines, namespace), namespace)
    return namespace["__call__"]


def point_plan(names, direct, *, general):
    """The plan of a function of scalars with NumPy's one-point variant (the
    __call__ of the compiled object's class, as make_plan's): a call whose every
    argument is a Python float, all in order or all by name, without `out=`, runs
    `direct(*floats)`, which returns the call's result itself (NumPy's answer where
    math refuses: backends/registry.py). Every other call goes to `general(self,
    *args, out=out, **kwargs)` (np.float64 and int numbers too: it converts them).
    None for a function of no inputs.

    It replaces the general path's own steps for such a call (api.Compiled.__call__:
    the numbers matched by name in a list built for them, then the variant called
    with that list unpacked). Callgrind, instructions a call (the hand-written value
    and gradient: Griewank 4.0k, 10-variable Rosenbrock 24.9k): Griewank in order
    8.6k -> 6.7k, by name 14.1k -> 7.2k; Rosenbrock in order 27.7k -> 27.4k, by name
    41.7k -> 28.6k."""
    n = len(names)
    if n == 0:
        return None
    args = [f"a{k}" for k in range(n)]
    lines = [f"    if out is not None or {' or '.join(f'type({a}) is not float' for a in args)}:",
             f"        {_MISS}",
             f"    return direct({', '.join(args)})"]
    namespace = {"direct": direct, "general": general}
    exec(_compiled(names, lines, namespace), namespace)
    return namespace["__call__"]


def batch_plan(names, seen, *, general, c=None, numpy=None, numbers=None, checks_numbers=False,
               nest_spec=None, nest=None, fit=None):
    """The plan of a function of scalars called with arrays (the __call__ of the
    compiled object's class, as make_plan's): a call whose every argument is exactly
    a float64 NumPy array, all in order or all by name, without `out=`, whose tuple
    of shapes api.Compiled's general path has seen and entered in `seen` (shapes ->
    what `c.entry` or `numpy.entry` made of them: it depends on the shapes alone),
    runs the kernel itself; every other call goes to `general(self, *args, out=out,
    **kwargs)`, which gives every refusal its message and enters new shapes. One of:

    `c` (c_run.PlanEntry): each array C-contiguous and aligned (the flags are read
    at every call: shapes do not say them; else the general path copies it), the
    outputs made with np.empty of the batch's shape and the kernel called with a
    pointer and a stride (0 for an input of size 1) for each, as c_run's run does.
    `numpy` (numpy_run.PlanEntry): the generated function run in call_args.quiet's
    Context (its steps written into the plan) and each result fitted (`fit`:
    call_args._fit) unless it is a float64 array of the batch's shape, as the
    general path fits it.

    `numbers`: the one-point call of a point of numbers (not arrays): NumPy's
    variant, called where every argument is a Python float (as point_plan does), or,
    `checks_numbers`, C's entry, which checks its arguments itself and returns
    NotImplemented for any it does not take. The results are nested by `nest_spec`
    (output positions) or `nest(list)`. None where there is no plan to make."""
    n = len(names)
    if n == 0 or (c is None) == (numpy is None):
        return None
    args = [f"a{k}" for k in range(n)]
    call_args = ", ".join(args)
    lines = [f"    if {' or '.join(f'type({a}) is not nd' for a in args)}:"]
    if numbers is not None and checks_numbers:
        lines += ["        if out is None:",
                  f"            got = numbers({call_args})",
                  "            if got is not NotImplemented:",
                  "                return got"]
    elif numbers is not None:
        lines += [f"        if out is None and {' and '.join(f'type({a}) is float' for a in args)}:",
                  f"            return numbers({call_args})"]
    # a number among the arrays: a 0-d array, as call_args._as_array makes it
    for a in args:
        lines += [f"        if type({a}) is not nd:",
                  f"            if type({a}) is float or type({a}) is f64:",
                  f"                {a} = asarray({a})",
                  "            else:",
                  f"                {_MISS}"]
    lines += [f"    if out is not None or not ({' and '.join(f'({a}.dtype is F or {a}.dtype == F)' for a in args)}):",
              f"        {_MISS}",
              f"    m = seen.get(({', '.join(f'{a}.shape' for a in args)},))",
              "    if m is None:",
              f"        {_MISS}"]
    namespace = {"nd": np.ndarray, "F": F64, "seen": seen, "numbers": numbers, "general": general,
                 "f64": np.float64, "asarray": np.asarray}
    if c is not None:
        leaves, target = c.n_out, None
        results = [f"o{k}" for k in range(leaves)]
        # (C takes a pointer to the first element: contiguous, and aligned for a double)
        lines += [f"    if not ({' and '.join(f'(f := {a}.flags).c_contiguous and f.aligned' for a in args)}):",
                  f"        {_MISS}",
                  "    b = m[0]",
                  *[f"    {o} = empty(b)" for o in results],
                  "    if kernel(m[1], m[2], "
                  + ", ".join([*(f"fb(A, {a}), m[{3 + k}]" for k, a in enumerate(args)),
                               *(f"fb(A, {o}), 1" for o in results)]) + "):",
                  "        nomem(m[1])"]
        from .backends.c_run import nomem
        # cffi's backend function itself (ffi.from_buffer is a Python method around it)
        namespace.update(kernel=c.fn, fb=c.backend.from_buffer, A=c.array, empty=np.empty, nomem=nomem)
    else:
        if numpy.structure in (False, "deep"):
            return None
        leaves, target = _target(numpy.structure)
        results = [r for _, r in _results(leaves)]
        shared, first, local, enter, run = quiet(numpy.fn).steps
        lines += _quiet_lines(target, f"(kernel, {call_args})")
        lines += [f"    if not (type({r}) is nd and {r}.shape == m and {r}.dtype is F):\n        {r} = fit({r}, m)"
                  for r in results]
        # (a result that is an input or an earlier result: copied, as the general path does)
        objects = [*results, *args]
        lines += [f"    if len({{{', '.join(f'id({o})' for o in objects)}}}) != {len(objects)}:",
                  f"        {', '.join(results)}, = own(({', '.join(results)},), ({call_args},))"]
        namespace.update(kernel=run, Q=shared, first=first, L=local, enter=enter, elsewhere=entered_elsewhere,
                         fit=fit, own=own)
    if nest_spec is not None:
        if _leaves(nest_spec) != leaves:
            return None
        lines.append(f"    return {_nested(nest_spec, results)}")
    else:
        lines.append(f"    return nest([{', '.join(results)}])")
        namespace["nest"] = nest
    exec(_compiled(names, lines, namespace), namespace)
    return namespace["__call__"]


def _quiet_lines(target: str, call: str) -> list:
    """call_args.quiet's steps, inlined: the kernel run in the quiet Context (the
    namespace binds Q, first, L, enter and elsewhere from quiet(...).steps)."""
    return ["    try:",
            f"        {target} = (Q[0] or first()){call}",
            "    except RuntimeError as err:",
            "        if not elsewhere(err):",
            "            raise",
            f"        {target} = (L.run or enter()){call}"]


def _leaves(spec) -> int:
    return 1 if isinstance(spec, int) else sum(map(_leaves, spec))


# A call the plan does not take: the general path's, with the arguments as given
# (where the inputs are keyword parameters, given() puts those back in the mapping).
_MISS = "return general(self, *args, out=out, **kwargs)"
_NO = object()  # the default of a keyword parameter: not given


def _compiled(names, body: list, namespace: dict):
    """The plan's code: its first lines, which take the arguments into the locals
    a0, a1, ... when they are given all in order or all by name (else the general
    path), then `body`. `namespace` gets what those lines use.

    Where every input name is a plain identifier that `body` and the namespace do
    not use, the names are keyword parameters of the plan itself: CPython binds a
    call by name straight to them, where a **kwargs parameter has it build a second
    dict, which the plan then reads one key at a time. Callgrind, instructions a
    call: the least-squares gradient by name 118.4k -> 116.7k, in order 115.2k ->
    115.9k (the defaults of the keyword parameters not given are looked up); the
    point plan of Griewank by name 8.3k -> 7.2k, in order 6.2k -> 6.7k, of the
    10-variable Rosenbrock by name 33.1k -> 28.6k, in order 25.0k -> 27.4k: a call
    by name costs about what one in order costs. Keys found by identity (the
    interned Signature.inputs, or literal keywords) cost least; others are compared
    as strings. Names of any other kind stay values in the namespace (k0, k1, ...),
    never source."""
    n = len(names)
    args = [f"a{k}" for k in range(n)]
    text = "\n".join(body)
    used = _names_in(text) | set(namespace) | _OURS
    if all(_plain(name) for name in names) and not used & set(names):
        # (written with placeholders for the names, which the code then takes: a text
        # of the same form, another function's of as many inputs, is not compiled again)
        held = [f"__p{k}" for k in range(n)]
        miss = "return general(self, *args, out=out, **given(kwargs, ({},)))".format(", ".join(held))
        absent = " or ".join(f"{name} is NO" for name in held)
        head = [f"def __call__(self, /, *args, out=None, {', '.join(f'{name}=NO' for name in held)}, **kwargs):",
                "    if args:",
                f"        if kwargs or len(args) != {n} or not ({' and '.join(f'{name} is NO' for name in held)}):",
                f"            {miss}",
                f"        {', '.join(args)}, = args",
                f"    elif kwargs or {absent}:",
                f"        {miss}",
                "    else:",
                f"        {', '.join(args)}, = {', '.join(held)},"]
        text = text.replace(_MISS, miss)
        namespace.update(NO=_NO, given=functools.partial(_given, tuple(names)))
        return _named(_code("\n".join(head) + "\n" + text + "\n"), dict(zip(held, map(sys.intern, names))))
    head = ["def __call__(self, /, *args, out=None, **kwargs):",
            "    if kwargs:",
            f"        if args or len(kwargs) != {n}:",
            f"            {_MISS}",
            "        try:",
            *[f"            {a} = kwargs[k{k}]" for k, a in enumerate(args)],
            "        except KeyError:",
            f"            {_MISS}",
            f"    elif len(args) == {n}:",
            f"        {', '.join(args)}, = args",
            "    else:",
            f"        {_MISS}"]
    namespace.update({f"k{k}": name for k, name in enumerate(names)})
    return _code("\n".join(head) + "\n" + text + "\n")


def _code(text: str) -> CodeType:
    """The code of a plan's `text` (ours), compiled once per process (~0.1-0.15 ms)."""
    code = _CODES.get(text)
    if code is None:
        code = compile(text, "<exprcompiler call plan>", "exec")  # our text
        if len(_CODES) >= _KEPT:
            _CODES.clear()
        _CODES[text] = code
    return code


def _named(module: CodeType, names: dict) -> CodeType:
    """`module`'s code with its function's placeholders (its keyword parameters) named
    as `names` says, there and in the module's constants (the keys of their defaults),
    interned (CPython matches a call's keywords to them by identity first)."""
    def named(const):
        if type(const) is CodeType:
            return const.replace(co_varnames=tuple(names.get(v, v) for v in const.co_varnames))
        if type(const) is tuple:
            return tuple(map(named, const))
        return names.get(const, const) if type(const) is str else const
    return module.replace(co_consts=named(module.co_consts))


_CODES: dict[str, CodeType] = {}   # a plan's text -> its code
_KEPT = 256


def _names_in(text: str) -> set:
    """The names (identifiers) in `text`, our ASCII code: what re.findall finds of
    `[A-Za-z_]\\w*`, by str methods (that regex compiled at a process's first plan:
    ~0.1-0.3 ms of a function's second call)."""
    return set(map(_NO_DIGITS, text.translate(_SPACES).split())) - {""}


# (every ASCII character that no name holds -> a space; a token's leading digits are no name's)
_SPACES = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_")})
_NO_DIGITS = operator.methodcaller("lstrip", "0123456789")


# every name the head itself reads (an input called `len` would shadow the builtin)
_OURS = frozenset({"self", "args", "out", "kwargs", "general", "given", "NO", "__call__", "len"})


def _plain(name: str) -> bool:
    """Whether `name` can be a keyword parameter as it is: an ASCII identifier (the
    parser normalizes others, so a keyword spelled as given would not find it), not
    a Python keyword, not a dunder."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__")


def _given(names: tuple, kwargs: dict, values: tuple) -> dict:
    """The keyword arguments of a call the plan hands on: those bound to its keyword
    parameters, then the others (a call with two mistakes, an unknown name given
    before a name given twice, is refused for the second one first)."""
    return {**{name: v for name, v in zip(names, values) if v is not _NO}, **kwargs}


def _results(leaves: int) -> list[tuple[int, str]]:
    return [(k, f"r{k}") for k in range(leaves)]


def _unpacked(spec, expr: str, outs: list) -> tuple[list, list]:
    """(the tests that `expr` is nested as `spec`, with tuples; the assignments that
    take its leaves into `outs`)."""
    if isinstance(spec, int):
        return [], [f"{outs[spec]} = {expr}"]
    tests, takes = [f"type({expr}) is tuple", f"len({expr}) == {len(spec)}"], []
    for j, item in enumerate(spec):
        t, a = _unpacked(item, f"{expr}[{j}]", outs)
        tests += t
        takes += a
    return tests, takes


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


__all__ = ["batch_plan", "make_plan", "point_plan", "structure"]
