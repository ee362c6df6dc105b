"""A statement program's runner: the function that runs its templates over one list of
values (_define), the templates' text (_template, one hole a _hole), and the
exception of a failing statement raised again from its own line of the generated
source (_again_from_line).

Where it sits: numpy_program.load_program (a text read back, tokenized by
numpy_tokens) and numpy_program.load_statements (numpy_backend's Program) both end in
_define, which compiles their templates (numpy_templates.template_functions) and binds
the runner beside the stub that `inspect` and tracebacks see (numpy_program._stub).
"""

from __future__ import annotations

import linecache
import types
import weakref
from itertools import compress, count, repeat
from operator import eq
from typing import Optional

from .numpy_templates import template_functions
from .program_text import slot_starts

# The runner's name in the function's namespace: the stub returns _RUNNER(locals())
_RUNNER = "_exprc_program"


def _hole(k: int) -> str:
    """A template's k-th hole: the value of the slot k places after its first."""
    return "_v[_s[_o + {}]]".format(k) if k else "_v[_s[_o]]"


# The first holes' texts, made once: a keyed template takes them by a slice (a call of
# _hole per hole was half of _keyed_template's ~2 µs a format)
_HOLES = tuple(map(_hole, range(64)))


def _template(number: int, line: str, holes: int) -> str:
    """The template function of a statement's `line` (its holes _hole's): it returns
    where the next statement's slots start; the return line's returns its values."""
    tail = "" if line.startswith("return ") else f"    return _o + {holes}\n"
    return f"def t{number}(_v, _s, _o):\n    {line}\n{tail}"


def _forget(filename: str, entry: tuple) -> None:
    """Drop a templates' file from linecache if it is still `entry`."""
    if linecache.cache.get(filename) is entry:
        del linecache.cache[filename]


def _define(stub, templates: list[str], holes: list[int], kind: str, numbered, arguments, values0: list,
            params, source: tuple, namespace: dict, keys: Optional[list] = None) -> bool:
    """Define the function of `stub` (the code of a module that defines it, or the
    function's own: _stub_function) in `namespace` as the statements numbered
    (template numbers, the return line's last) with their `arguments` (every
    statement's slots, one after another: `holes`, each template's number of them)
    over a copy of `values0` whose `params`
    (a slice or slots) take the arguments; `source`: (text lines, the def line's
    index, file name, function name, and names_in(step, the slice of its slots), the
    (name, slot) of the step's statement, for _again_from_line). The templates' file name says their `kind` (a
    text read back and its program numbers them otherwise). False if the templates
    do not compile. `keys`: the templates' texts after their names, if known (template_functions)."""
    lines, start, filename, func_name, _ = source
    digest = filename.rsplit(" ", 1)[-1].rstrip(">")
    t_filename = f"<exprcompiler {kind} {func_name} {digest}>"
    t_source = "".join(templates)
    try:   # (each distinct template compiled once per process: numpy_templates)
        functions = template_functions(templates, t_filename, namespace, keys)
    except SyntaxError:   # a line the keys cut wrongly (two ` = ` on it): compiled instead
        return False
    if stub.co_name == "<module>":
        exec(stub, namespace)
    else:   # (_stub_function's)
        namespace[func_name] = types.FunctionType(stub, namespace, func_name)
    entry = linecache.cache[t_filename] = (len(t_source), None, t_source.splitlines(True), t_filename)
    # gone with the function (a name per load: numpy_tier makes every function of more
    # than TIER_FROM named variables one), unless a function of the same text holds it
    weakref.finalize(namespace[func_name], _forget, t_filename, entry).atexit = False
    run_fns = list(map(functions.__getitem__, numbered))
    result_fn = run_fns.pop()
    sliced = isinstance(params, slice)

    def run(given: dict):
        values = values0.copy()
        if sliced:
            values[params] = given.values()
        else:
            for slot, value in zip(params, given.values()):
                values[slot] = value
        at = 0
        try:
            for fn in run_fns:
                at = fn(values, arguments, at)
        except Exception as err:
            again = _again_from_line(err, (holes, numbered), source, namespace, values)
            if again is None:
                raise
            raise again from None
        return result_fn(values, arguments, at)

    run.templates = len(templates)   # for benchmarks/bench_numpy_program.py
    namespace[_RUNNER] = run
    return True


def _again_from_line(err, widths: tuple, source: tuple, namespace, values):
    """The exception of the failing statement run again as its own line of the
    generated source (same file name, line number and function name; `source`: as
    _define's; `widths`: its templates' numbers of holes and the statements' template
    numbers), its traceback starting there; None if it does not fail again. (A
    one-point call that math's functions refuse comes here before NumPy evaluates the
    point: a compile() of one line.)"""
    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_name != "run":
        tb = tb.tb_next
    if tb is None or tb.tb_next is None:
        return None
    at = tb.tb_next.tb_frame.f_locals.get("_o")   # (where the failing statement's slots start)
    holes, numbered = widths
    step = next(compress(count(), map(eq, slot_starts(holes, numbered), repeat(at))), None) \
        if type(at) is int else None
    if step is None or step >= len(numbered) - 1:
        return None
    lines, start, filename, func_name, names_in = source
    line = lines[start + 1 + step]
    env = dict(namespace)
    env.update((name, values[slot]) for name, slot in names_in(step, slice(at, at + holes[numbered[step]])))
    code = compile(line.strip(), filename, "exec").replace(co_firstlineno=start + 2 + step, co_name=func_name,
                                                           co_qualname=func_name)
    try:
        exec(code, env)   # our generated source, never user text
    except Exception as again:
        return again.with_traceback(again.__traceback__.tb_next)
    return None

