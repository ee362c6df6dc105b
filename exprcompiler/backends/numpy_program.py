"""A generated NumPy function run as a statement program instead of compiled: one of
more than numpy_backend.PROGRAM_ABOVE lines for good, one of more than
numpy_backend.TIER_FROM named variables until it is compiled on use (numpy_tier.py).

Where it sits: numpy_backend.load calls `load_statements` for either with the
Program that numpy_backend.generated made along with the text (from the trace: each line's template and the trace variables in
its holes, as the renderer built the line; no text read back), or `load_program` with
the text alone (a text from elsewhere, or with lines the renderer does not key: see
generated). The text stays the source that `.source`, `inspect` and tracebacks show,
byte for byte (a Program's made only when asked for: program_text.py). What follows
is about `load_program`; the runner (_define) is theirs.

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
import linecache
import re
import types
import weakref
from itertools import accumulate, compress, count, filterfalse, islice, repeat
from operator import eq
from typing import NamedTuple, Optional

from ..trace.render import Numbers
from .numpy_templates import header_values, stored_code, template_functions
from .program_text import slot_starts, text_holes

# The statements are cut into tokens by C-level string methods, not a regular expression
# (sre scans ~25 ns a character: 3 µs a statement). Only the holes need whitespace on
# both sides: an opening bracket gets a space after it (`np.sin( v3 )`: the function and
# its bracket are one token), a closing one and a comma a space before, a unary minus
# one after (-v3 is `-` and `v3`, not one of 10⁵ distinct tokens; 1e-05 has no space
# before its sign and keeps it). split() then leaves names, literals, operators, `=`
# and tokens such as `np.sin(`, `x.T`, `axis=1`.
_SPACED = (("(", "( "), (")", " )"), ("[", "[ "), ("]", " ]"), (",", " ,"), (" -", " - "))
# The holes inside a token that is not a plain variable name: a name not after a dot
# (an attribute) nor before `=` (a keyword argument); a float literal, unsigned (repr's
# forms: 0.5, 1e-05, 1.5e+20; integers, as in axis=(0, 1), stay in the template).
# Generated names never start with "_" (naming.identifier): no clash with the runner.
_HOLE = r"(?<![\w.])(?:[A-Za-z_]\w*+(?!=)|\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)"


def _holes_in(text: str):
    """_HOLE's matches in `text` (compiled at the first use, by re's cache: a text read
    back only, not a program that generated keyed: ~0.2 ms of `import exprcompiler`)."""
    return re.compile(_HOLE).finditer(text)


_KNOWN = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_MARK = "\x00"   # a hole in a template's key: a character generated text never holds
# A chunk's text ends with this: the target of a statement that does not follow (its
# key text is a hole's, its token has no slot), so that the last statement's key ends
# in a hole like every other's (see _Statements.add).
_END = f" {_MARK} = "
_NEVER = ("'", '"', "\\", ";", _MARK)   # in the text the program takes
_RUNNER = "_exprc_program"
# Statements tokenized at a time: a chunk's distinct tokens (~1.3 a statement) stay in
# the CPU's cache while its tokens (~5 a statement) are looked up among them.
CHUNK = 1_000


def _template_def(number: int, key: str) -> str:
    """`def t12(_v, _s, _o): _v[_s[_o]] = ...` for a statement's key `... $` (its
    right-hand side, then its target's hole: see _Statements.add); for the return
    line's key `return ...`, that line. (Generated names never start with "_".)"""
    if key.startswith("return "):
        pieces = key.split(_MARK)
    else:
        right = key[:-len(_MARK)].split(_MARK)
        pieces = ["", " = " + right[0], *right[1:]]
    text = [pieces[0]]
    for k, piece in enumerate(pieces[1:]):
        text += [_hole(k), piece]
    return _template(number, "".join(text).strip(), len(pieces) - 1)


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


class _Statements:
    """The program's statements, tokenized a chunk at a time: per statement its
    template's number (in `numbered`) and the slots of its holes (one statement's
    after another's in the list `arguments`). Slots start at 1 (slot 0 is never
    used), so that filter(None, ...) drops the tokens that are not holes (None)
    without a call per token.

    `slot_of` gives the slot of each plain name (a hole's), parameters first. It is
    the one large dict (2·10⁶ names at 10⁶ operations), and a lookup in it costs what
    a cache miss costs, growing with its size: it is looked up once per distinct name
    per chunk (about 1.3 a statement: setdefault, where a name not yet seen takes a
    number of `count` and a name seen before leaves its number unused), in the text's
    order (an adjoint reads its primal names in the reverse of the order they were
    written, so their entries are near one another), and each token is then looked
    up in the chunk's own small dict. (Looked up once per token, 6-7 a statement, it
    took 0.5 µs a statement at 10⁴ operations and 1.1 at 10⁵.) `text_of` gives the
    key text of every other token ever seen (operators, known names, literals, tokens
    such as `np.sin(`: a few hundred), `hole_of` the slot of those among them that
    hold a hole (a literal, `x.T`). `keys` numbers each distinct key, `holes` gives
    each key's number of holes; `assigned` holds the statements' targets' slots."""

    def __init__(self, params, known: frozenset):
        self.known = known
        self.slot_of = dict(zip(params, count(1)))
        self.size = 1 + len(params)   # slots given, slot 0 included
        self.literals: dict[str, int] = {}
        self.text_of: dict[str, str] = {}
        self.hole_of: dict[str, int] = {}
        self.keys = Numbers()
        self.holes: list[int] = []
        self.numbered: list[int] = []
        self.arguments: list[int] = []
        self.assigned: set[int] = set()   # the targets' slots

    def add(self, text: str, returned: str = "") -> bool:
        """Tokenize statement lines (`    name = expression\n`), and the return line
        without its indent (`returned`: `return ...\n`) if given; False for a token
        holding two holes or a statement's target that is not one plain name.

        A statement's key is the key text of its tokens from the one after its `=` to
        the next statement's target (_END's for the chunk's last): the chunk's key text
        split at ` = ` (one on each line, and no token `=` otherwise) gives the keys, with
        no token a line to mark the lines' ends. A key's holes are the right-hand side's
        and then the target's; the statement's tuple of slots takes them in the text's
        order, the target's first (_template_def writes the template so)."""
        text += _END + returned
        for char, spelled in _SPACED:   # (str.translate to longer strings is 10x slower)
            if char in text:   # (a scan for a character is cheaper than replace's)
                text = text.replace(char, spelled)
        tokens = text.split()
        distinct = dict.fromkeys(tokens)   # in the text's order (see the class's docstring)
        plain = list(filterfalse(self.known.__contains__, filter(str.isidentifier, distinct)))
        local = dict(zip(plain, map(self.slot_of.setdefault, plain, count(self.size))))
        self.size += len(plain)
        others = distinct.keys() - local.keys()
        text_of = self.text_of
        for token in others.difference(text_of):
            if not self._classify(token):
                return False
        with_holes = others.intersection(self.hole_of)
        local.update(zip(with_holes, map(self.hole_of.__getitem__, with_holes)))
        keys = f"{' '.join(map(text_of.get, tokens, repeat(_MARK)))} ".split(" = ")
        if keys[0] != _MARK:   # the first target is a plain name
            return False
        numbered = list(map(self.keys.__getitem__, keys[1:] if returned else keys[1:-1]))
        holes = self.holes
        for key in islice(self.keys, len(holes), None):
            if not (key.endswith(" " + _MARK) and not key.endswith(", " + _MARK) or key.startswith("return ")):
                return False   # a target that is not one plain name (a, b = ...), two ` = ` on a line
            holes.append(key.count(_MARK))
        ends = list(accumulate(map(holes.__getitem__, numbered)))
        starts = [0, *ends[:-1]]
        slots = tuple(filter(None, map(local.get, tokens)))
        if len(slots) != ends[-1]:
            return False
        self.arguments.extend(slots)
        self.numbered += numbered
        if returned:
            starts.pop()   # the return line's first hole is no target
        self.assigned.update(map(slots.__getitem__, starts))
        return True

    def _classify(self, token: str) -> bool:
        """A token other than a name's: its key text and the slot of its hole (a name
        or a float literal: x.T, 1.0, 1e-05), if it holds one."""
        found = [m for m in _holes_in(token) if m.group()[0].isdigit() or m.group() in self.slot_of]
        if len(found) > 1:
            return False
        if found:
            m, = found
            hole = m.group()
            if hole[0].isdigit():
                if hole not in self.literals:
                    self.literals[hole] = self.size
                    self.size += 1
                self.hole_of[token] = self.literals[hole]
            else:
                self.hole_of[token] = self.slot_of[hole]
            self.text_of[token] = token[:m.start()] + _MARK + token[m.end():]
        else:
            self.text_of[token] = token
        return True


def _plain_lines(text: str, n: int) -> bool:
    """Whether `text` is `n` lines `    name = expression\n` as the program takes them:
    four spaces and one ` = ` a line (checked by the keys: see _Statements.add), no
    string literal, backslash or `;`, and no _MARK."""
    return (text.startswith("    ") and text.count("\n    ") == n - 1 and text.count(" = ") == n
            and not any(char in text for char in _NEVER))


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


__all__ = ["Program", "load_program", "load_statements"]
