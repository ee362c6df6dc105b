"""A generated NumPy function run as a statement program instead of compiled: one of
more than numpy_backend.PROGRAM_ABOVE lines for good, one of more than
numpy_backend.TIER_FROM named variables until it is compiled on use (numpy_tier.py).

Where it sits: numpy_backend.load calls `load_statements` for either with the
Program that numpy_backend.generated made along with the text (from the trace: each line's template and the trace variables in
its holes, as the renderer built the line; no text read back), or `load_program` with
the text alone (a text from elsewhere, or with lines the renderer does not key: see
generated). The text stays the source that `.source`, `inspect` and tracebacks show,
byte for byte (a Program's made only when asked for: program_text.py). What follows
is about `load_program`, whose tokenizer is numpy_tokens.py; the runner (_define, in
numpy_runner.py) is theirs, and so is the stub the function is made of (here).

Why: Python's compile() costs about 10 µs per generated statement whatever the
size of the unit (see numpy_backend.PROGRAM_ABOVE), a quarter of text -> callable
gradient. But a gradient's 10⁵ statements are instances of about a hundred
expressions with their variables and constants replaced by holes (templates):
`v7 = np.sin(v3) * x1` is `$ = np.sin($) * $`. Each distinct template is compiled
once per process (numpy_templates.py) as a function over a list of values, the slots of every statement one after
another in one list, and where this statement's start there,

    def t12(_v, _s, _o):
        _v[_s[_o]] = np.sin(_v[_s[_o + 1]]) * _v[_s[_o + 2]]
        return _o + 3

and the function runs as a list of templates, each handing the next its slots' start,
over one list of values: a slot per parameter, per assigned name and per distinct
constant (and unused ones: see _Statements). The slots are one list of ints (an int
object per slot, shared by its holes): 8 bytes a hole, where a tuple per statement
took 70 bytes with its pointer (a gradient's program at 10⁵ operations: 13 MB against
23, ints included, for as long as its function lives). It runs as fast at 1000
points, 3% slower at one point (the one-point variant 6%: an int made per `_o + k`;
CPU medians, 10⁵ operations); an array('i'), 4 bytes a hole and no ints, made that
13-20% (an int made per hole read too). The expressions are the generated text's, evaluated in the same order
on the same values, so the results are the compiled function's bit for bit (Python folds no constant that changes a
result: a folded `-1.0` or `2.0 * 3.0` is exact).

Turning the text into the program takes C-level string methods (replace, split,
join) and maps of dict lookups, a chunk of CHUNK statements at a time, with no Python
loop per statement. In benchmarks/bench_frontend.py (CPU time, load average 9) that
is 5.0, 5.9 and 7.2 µs per operation at 10⁴, 10⁵ and 10⁶ operations (2.3 statements
an operation; it was 5.9, 9.2 and 22.8 before the chunks got their own dicts), where
compile() takes 10-18 µs a statement. What still grows with the size is the dict of
all names (see _Statements). The price is at run time: a statement costs a Python call
and a few subscripts more than a line of a compiled function (1.6 times the compiled
function's time at one point, 1.05 at 1000 points: see numpy_backend.PROGRAM_ABOVE).

An exception inside a statement is raised again from that statement's line alone,
compiled with its line number in the generated source, so its traceback ends at the
generated line (as the compiled function's does). NumPy's warnings name the
template's line, which is registered with linecache too.
"""

from __future__ import annotations

import builtins
import keyword
import re
import types
from typing import NamedTuple, Optional

from .numpy_runner import _HOLES, _RUNNER, _define, _hole, _template
from .numpy_templates import header_values, stored_code
from .numpy_tokens import _KNOWN, _NEVER, _Statements, _holes_in, _plain_lines, _template_def
from .program_text import text_holes

# Statements tokenized at a time: a chunk's distinct tokens (~1.3 a statement) stay in
# the CPU's cache while its tokens (~5 a statement) are looked up among them.
CHUNK = 1_000


def load_program(lines: list[str], func_name: str, filename: str, namespace: dict) -> bool:
    """Define `func_name` in `namespace` from `generate`'s text `lines` (a header, then
    `def`, one `    name = expression` line per statement and a last `    return` line)
    as a statement program, `filename` being the name linecache holds `lines` under;
    False where the text is not of that form (string literals, a token holding two
    names, a name the function neither takes nor assigns): the caller compiles it."""
    start = next((k for k, ln in enumerate(lines) if ln.startswith(f"def {func_name}(")), None)
    if start is None:
        return False
    statements, last = lines[start + 1:-1], lines[-1]
    if not (statements and last.startswith("    return ") and last.endswith("\n") and " = " not in last
            and not any(char in last for char in _NEVER)):
        return False
    stub = _stub(lines, start, filename)
    code = next(c for c in stub.co_consts if isinstance(c, types.CodeType))
    params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    exec(compile("".join(lines[:start]), filename, "exec"), namespace)
    program = _Statements(params, _KNOWN.union(namespace))
    for first in range(0, len(statements), CHUNK):
        chunk = "".join(statements[first:first + CHUNK])
        returned = last[len("    "):] if first + CHUNK >= len(statements) else ""
        if not (_plain_lines(chunk, min(CHUNK, len(statements) - first)) and program.add(chunk, returned)):
            return False
    slot_of = program.slot_of
    # every name taken for a hole is a parameter or assigned (a statement's first hole)
    if len(program.assigned.union(range(1, 1 + len(params)))) != len(slot_of):
        return False
    values = [None] * program.size
    for literal, slot in program.literals.items():
        values[slot] = float(literal)

    def names_in(step: int, _):
        return ((name, slot_of[name]) for name in map(re.Match.group, _holes_in(statements[step]))
                if name in slot_of and name.isidentifier())
    templates = [_template_def(t, key) for key, t in program.keys.items()]
    return _define(stub, templates, program.holes, "templates", program.numbered, program.arguments, values,
                   slice(1, 1 + len(params)), (lines, start, filename, func_name, names_in), namespace)


class Program(NamedTuple):
    """A statement program as numpy_backend.generated makes it from the trace, with the
    text it shows (no text read back): its templates are str.format strings, a hole
    `{}` (other braces doubled: trace.render.Renderer's keys), each statement a
    template and its slots, which are (numpy_backend) the names and constants of the
    text: a variable's is that of its name (the first variable of that name), or its
    constant's; in a program compiled on use, name_later.run_slots' (its texts then
    numbered by hole: program_text.Texts.holes)."""
    formats: list      # template number -> its line, `    {} = np.sin({}) * {}` (the return line's too)
    numbered: object   # per statement, the return line last: its template's number (an array('i'))
    slots: list        # every statement's slots, one after another (ints): its holes', in the text's
    #                    order (its target's first), as many as its format's (format_holes)
    size: int          # the number of slots
    params: tuple      # the parameters' slots, in order
    constants: dict    # slot -> a constant's value
    texts: object      # slot -> its text in the source (a name, a literal): program_text.Texts
    start: int         # the index of the `def` line among the text's lines
    head: str          # the text's lines up to the `def` line's, joined by newlines (program_text)


def load_statements(program: Program, lines, func_name: str, filename: str, namespace: dict) -> bool:
    """Define `func_name` in `namespace` from `program` as load_program does from the
    text (`lines`, which linecache holds under `filename`, are that program's text: a
    list, or program_text.Lines, which formats a line when asked for)."""
    start = program.start
    # (the lines before the def line: the program's own head where `lines` are its Lines,
    # not a format call per line through Lines' __getitem__)
    head = program.head[:program.head.rfind("\n") + 1] if type(lines) is not list else "".join(lines[:start])
    bound = header_values(head, _HEADERS, _KEPT)
    if bound is None:
        exec(_header_code(head, filename), namespace)
    else:   # (what the header's exec binds: its imports, and the builtins exec adds)
        namespace.update(bound)
        namespace.setdefault("__builtins__", builtins.__dict__)
    values = [None] * program.size
    for slot, value in program.constants.items():
        values[slot] = value
    texts, slots, texts_at = program.texts, program.slots, text_holes(program)

    def names_in(_, at: slice):
        return ((texts[h], s) for h, s in zip(texts_at[at], slots[at]) if texts[h].isidentifier())
    made = list(map(_keyed_template, program.formats))
    holes = [k for k, _ in made]
    keys = [rest for _, rest in made]
    templates = [f"def t{t}{rest}" for t, rest in enumerate(keys)]
    params = program.params
    first = params[0] if params else 0
    params = slice(first, first + len(params)) if params == tuple(range(first, first + len(params))) else params
    stub = _stub_function(lines, start, filename, func_name) or _stub(lines, start, filename)
    return _define(stub, templates, holes, "keyed templates", program.numbered, slots,
                   values, params, (lines, start, filename, func_name, names_in), namespace, keys)


# Per process, what every load of a keyed program would make again: a format's template
# (its text but the name `t<number>`, and its number of holes: ~3 µs a format, 58
# formats at 10³ operations) and, by a header's text without its comments, what it binds
# (numpy_templates.header_values: a tuple of (name, value)) or, for a header of another form, its code
# (imports; ~16 µs a compile()), each a few hundred at most in the benchmarks' programs.
# A key beyond _KEPT is made again.
_TEMPLATES: dict[str, tuple[int, str]] = {}
_HEADERS: dict[str, object] = {}
_KEPT = 4_096


def _keyed_template(fmt: str) -> tuple[int, str]:
    """A keyed program's format (`    {} = np.sin({}) * {}`, other braces doubled): its
    number of holes, and its template function's text after `def t<number>`."""
    made = _TEMPLATES.get(fmt)
    if made is None:
        k = fmt.count("{") - 2 * fmt.count("{{")   # (left to right, as str.format reads them)
        holes = _HOLES[:k] if k <= len(_HOLES) else tuple(map(_hole, range(k)))
        made = k, _template(0, fmt.strip().format(*holes), k)[len("def t0"):]
        if len(_TEMPLATES) < _KEPT:
            _TEMPLATES[fmt] = made
    return made


def _header_code(head: str, filename: str) -> types.CodeType:
    """The code of a keyed program's header (numpy_backend._head: comments and imports),
    compiled once per text but its comment lines (a description's: the line numbers
    stay), kept for the process and, as the templates are, for the next processes
    (numpy_templates.stored_code), with `filename`."""
    key = "\n".join("" if line.startswith("#") else line for line in head.split("\n"))
    code = _HEADERS.get(key)
    if code is None:
        # (the key's code is the text's: its comment lines are blank lines there)
        code = stored_code(key)   # our generated source: the user's text only in the comments left out
        if any(type(c) is types.CodeType for c in code.co_consts):   # (nested code, whose file name
            return compile(head, filename, "exec")                     # replace() would not set)
        if len(_HEADERS) < _KEPT:
            _HEADERS[key] = code
    return code.replace(co_filename=filename)


def _stub(lines: list[str], start: int, filename: str):
    """The code of the function that `inspect` and tracebacks see: its `def` line where
    the text has it, returning what the program's runner returns."""
    stub = "\n" * start + lines[start] + "\n" * (len(lines) - start - 2) + f"    return {_RUNNER}(locals())\n"
    return compile(stub, filename, "exec")


def _stub_function(lines, start: int, filename: str, func_name: str) -> Optional[types.CodeType]:
    """The code of _stub's function (not of a module that defines it), made from
    _STUB_MODEL with its parameters, name, file, first line and the return line's
    number set (code.replace: ~10 µs), not compiled with as many blank lines as the
    text has (load_statements, CPU medians of 9 in a process, text gradients: 213 ->
    158 µs at 258 lines, 387 -> 284 at 2,312, 1,568 -> 1,097 at 23,212); None where the
    def line is not `def name(a, b):` or the location table not of the form this reads
    (another Python's): _stub then."""
    line, head = lines[start], f"def {func_name}("
    if not (line.startswith(head) and line.endswith("):\n")):
        return None
    inner = line[len(head):-len("):\n")]
    params = tuple(inner.split(", ")) if inner else ()
    if ", ".join(params) != inner or len(set(params)) < len(params) \
            or not all(p.isidentifier() and not keyword.iskeyword(p) for p in params):
        return None
    kept = _STUB_MODEL
    last = len(lines)   # the return line's number, start + 1 the def line's
    table = _moved_return(kept.co_linetable, last - start - 1)
    if table is None:
        return None
    code = kept.replace(co_argcount=len(params), co_nlocals=len(params), co_varnames=params, co_name=func_name,
                        co_qualname=func_name, co_filename=filename, co_firstlineno=start + 1, co_linetable=table)
    lines_of = [ln for _, _, ln in code.co_lines()]
    return code if lines_of[0] == start + 1 and lines_of[1:] and set(lines_of[1:]) == {last} else None


def _moved_return(table: bytes, delta: int) -> Optional[bytes]:
    """The location table (CPython 3.11's format) of a kept stub's code, whose return
    line follows its def line, with that line `delta` lines after the def line instead:
    its first entry (the def line's, a short form) kept, the return line's first (a
    one-line form, 1 line down) written in the long form (from 3 lines down: as
    compile() writes it); None for another form."""
    if len(table) < 5 or not table[0] & 0x80 or (table[0] >> 3) & 15 > 9 \
            or not table[2] & 0x80 or (table[2] >> 3) & 15 != 11:
        return None
    if delta <= 2:   # (a one-line form's, as compile() writes it)
        return b"".join((table[:2], bytes((table[2] & 0x87 | (10 + delta) << 3,)), table[3:]))
    col, end = table[3], table[4]
    return b"".join((table[:2], bytes((0x80 | 14 << 3 | table[2] & 7,)), _varint(delta << 1), _varint(0),
                     _varint(col + 1), _varint(end + 1), table[5:]))


def _varint(v: int) -> bytes:
    """`v` (>= 0) as the location table writes it: 6 bits a byte, low first, 0x40 if more follow."""
    out = bytearray()
    while v >= 64:
        out.append(0x40 | v & 63)
        v >>= 6
    out.append(v)
    return bytes(out)


def _stub_model():
    return _exprc_program(locals())  # noqa: F821 (_RUNNER: the program's runner, in its function's namespace)


# The code every stub is made from (_stub_function): its parameters are only its
# locals, which no instruction of its own reads (locals() takes them all), so one code
# serves every number of them; compiled with this module, not by a compile() in each
# process (~45 µs, a fresh process's first). (Its flags are those of this module's
# compile() calls, which inherit its `from __future__ import annotations`.)
_STUB_MODEL = _stub_model.__code__


__all__ = ["Program", "load_program", "load_statements"]
