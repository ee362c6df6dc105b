"""The template functions of statement programs, compiled once per process (and kept
on disk for the next: code_store.py), and what a program's header binds (header_values).

Where it sits: numpy_program._define turns a program's templates (numpy_program._template:
`def t12(_v, _s, _o):` and a statement with holes) into functions over the program's
list of values; `template_functions` gives them. A template's code does not depend on
the function it serves but for its name and lines (its globals are the function's
namespace, given when the function object is made), and the same templates recur in
every program (`{} = {} * {}`, `{} = np.sin({})`): so each distinct template text
is compiled once, its code kept (a process's first program takes those of earlier
processes from the code store), and a program's load makes each function from the
kept code with its name, file name and first line set as if its templates had been
compiled in one text under that file name (as before; linecache holds that text, so
NumPy's warnings name the template's line). A program's header (its imports) is taken
from the same store (`stored_code`, for numpy_program._header_code).

Why: compile() costs ~35 µs a template (a function definition: its code object,
flow graph and assembly), 32 templates at 10² operations: about 1 ms of a program's
2.5 ms load, which made a program of a few hundred lines dearer to load than the
text compiled (numpy_backend.TIER_FROM); a kept code's replace() costs ~1 µs.
"""

from __future__ import annotations

import importlib
import keyword
from types import CodeType, FunctionType
from typing import Optional

from ..code_store import CodeStore

# template text (from its argument list on: its name aside) -> the code of its function
_CODES: dict[str, CodeType] = {}
_KEPT = 4_096   # (distinct templates kept: a few hundred in all of the benchmarks' programs)
# The codes earlier processes compiled (code_store.py), keyed as _CODES: a process's first
# program of 10³ operations compiled ~60 templates, ~3 ms of its ~22 ms.
_STORE = CodeStore("templates")


def template_functions(templates: list[str], filename: str, namespace: dict, keys: Optional[list] = None) -> list:
    """The functions of `templates` (texts `def <name>(...):` and their lines, as
    numpy_program._template writes them) with `namespace` as their globals, each
    as if compiled from "".join(templates) under `filename`; `keys`, if known, each
    template's text but `def <name>` (its end, from its argument list on). Raises
    SyntaxError where a template does not compile."""
    if keys is None:
        keys = [text[text.index("("):] for text in templates]   # (a template's text but its name)
    codes = _CODES
    missing = [text for text, key in zip(templates, keys) if key not in codes]
    if missing:
        if len(codes) + len(missing) > _KEPT:
            codes = dict(codes)   # (this program's own: the kept ones stay as they are)
        compiled_here = []
        for text in missing:
            key = text[text.index("("):]
            code = _STORE.get(key)
            if code is None:
                compiled_here.append(text)
            else:
                codes[key] = code
        missing = compiled_here
    if missing:   # in one compile() (each call has its fixed cost: 32 templates 2.0 -> 1.1 ms)
        module = compile("".join(missing), "<templates>", "exec")   # our generated text, never user text
        made = {c.co_name: c for c in module.co_consts if type(c) is CodeType}
        for text in missing:
            paren = text.index("(")
            code = codes[text[paren:]] = made[text[4:paren]]
            _STORE.add(text[paren:], code)   # (saved for the next process as this one exits)
    functions = []
    line = 1
    for text, key in zip(templates, keys):
        name = text[4:len(text) - len(key)]
        functions.append(FunctionType(codes[key].replace(co_filename=filename, co_firstlineno=line, co_name=name,
                                                         co_qualname=name), namespace, name))
        line += text.count("\n")
    return functions


def stored_code(text: str) -> CodeType:
    """The code of `text`, our generated module text (a statement program's header:
    its imports), from the templates' store if a process compiled it before (a
    fresh process's compile() of a header: ~50-70 µs; the store's file is open for
    the templates anyway), else compiled here and kept for the next process."""
    code = _STORE.get(text)
    if code is None:
        code = compile(text, "<header>", "exec")   # our generated text, never user text
        _STORE.add(text, code)
    return code


def header_values(head: str, cache: dict, kept: int) -> Optional[tuple]:
    """The (name, value) pairs that a keyed program's header (numpy_backend._head) binds,
    where it is only comment lines, blank lines and the imports _head writes (`import
    numpy as np`, `import math`, `from exprcompiler.runtime import a, b`): the modules
    and helpers themselves, taken as those statements take them, without compiling or
    running the header (a fresh process read its code from the code store: ~40 µs and
    the store's first use; a warm one, ~10 µs of code.replace and exec). None for
    another text, or a helper the runtime lacks (then the header runs, and raises
    as it did: numpy_program._header_code). `cache`: the process's, by the header's
    text without its comment lines (numpy_program._HEADERS, which holds the codes of
    the other headers too), kept up to `kept` of them."""
    key = "\n".join("" if line.startswith("#") else line for line in head.split("\n"))
    bound = cache.get(key)
    if bound is None:
        bound = _imports_of(key)
        if bound is None:
            return None
        if len(cache) < kept:
            cache[key] = bound
    return bound if type(bound) is tuple else None


def _imports_of(key: str) -> Optional[tuple]:
    """header_values' pairs for a header without its comments (`key`), if it is of that form."""
    bound = []
    for line in key.split("\n"):
        if not line:
            continue
        if line == "import numpy as np":
            bound.append(("np", importlib.import_module("numpy")))
        elif line == "import math":
            bound.append(("math", importlib.import_module("math")))
        elif line.startswith(_RUNTIME_IMPORT):
            runtime = importlib.import_module("exprcompiler.runtime")
            for name in line[len(_RUNTIME_IMPORT):].split(", "):
                if not (name.isidentifier() and not keyword.iskeyword(name) and hasattr(runtime, name)):
                    return None
                bound.append((name, getattr(runtime, name)))
        else:
            return None
    return tuple(bound)


_RUNTIME_IMPORT = "from exprcompiler.runtime import "


__all__ = ["header_values", "stored_code", "template_functions"]
