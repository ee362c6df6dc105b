"""A long generated NumPy function run as a statement program instead of compiled.

Where it sits: numpy_backend.load calls `load_program` for a function of more than
numpy_backend.PROGRAM_ABOVE lines, with the text `generate` made (which stays the
source that `.source`, `inspect` and tracebacks show, byte for byte).

Why: Python's compile() costs about 10 µs per generated statement whatever the
size of the unit (see numpy_backend.PROGRAM_ABOVE), a quarter of text -> callable
gradient. But a gradient's 10⁵ statements are instances of about a hundred
expressions with their variables and constants replaced by holes (templates):
`v7 = np.sin(v3) * x1` is `$ = np.sin($) * $`. Each distinct template is compiled
once as a function over a list of values and a list of slots,

    def t12(_v, _s):
        _v[_s[0]] = np.sin(_v[_s[1]]) * _v[_s[2]]

and the function runs as a list of (template, slots) over one list of values: a slot
per parameter, per assigned name and per distinct constant. The expressions are the
generated text's, evaluated in the same order on the same values, so the results are
the compiled function's bit for bit (Python folds no constant that changes a
result: a folded `-1.0` or `2.0 * 3.0` is exact).

Turning the text into the program takes C-level string methods (replace, split,
join) and maps of dict lookups over the statements, with no Python loop per statement:
4-7 µs a statement on this loaded machine, where compile() takes 13-18. The price is
at run time: a statement costs a Python call and a few subscripts more than a line of
a compiled function (see numpy_backend.PROGRAM_ABOVE).

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
from itertools import accumulate, compress, count, repeat
from functools import partial
from operator import is_, is_not, itemgetter

# The statements are cut into tokens by C-level string methods, not a regular expression
# (sre scans ~25 ns a character: 3 µs a statement): brackets and commas get spaces
# around them, a line end becomes ";" (generated text has none), and split() leaves
# names, dotted names (np.sin, x.T), literals, operators and signed forms (-v3, -1.0).
_SPACED = (("(", " ( "), (")", " ) "), ("[", " [ "), ("]", " ] "), (",", " , "), ("\n", " ; "))
# The holes inside a token that is not a plain variable name: a name not after a dot
# (an attribute) nor before `=` (a keyword argument); a float literal, unsigned (repr's
# forms: 0.5, 1e-05, 1.5e+20; integers, as in axis=(0, 1), stay in the template).
# Generated names never start with "_" (naming.identifier): no clash with the runner.
_HOLE = re.compile(r"(?<![\w.])(?:[A-Za-z_]\w*+(?!=)|\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)")
_KNOWN = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_MARK = "\x00"   # a hole in a template's key: a character generated text never holds
_RUNNER = "_exprc_program"
CHUNK = 20_000   # statements tokenized at a time


def _template_def(number: int, key: str, returns: bool) -> str:
    """`def t12(_v, _s): _v[_s[0]] = ...` for a statement's key `$ = ...`; for the
    return line's, `return ...`. (Generated names never start with "_".)"""
    pieces = key.strip().split(_MARK)
    text = [pieces[0]]
    for k, piece in enumerate(pieces[1:]):
        text += [f"_v[_s[{k}]]", piece]
    return f"def t{number}(_v, _s):\n    {'return ' if returns else ''}{''.join(text)}\n"


class _Numbers(dict):
    """key -> its number, given on first sight."""
    __slots__ = ()

    def __missing__(self, key):
        number = self[key] = len(self)
        return number


class _Statements:
    """The program's statements, tokenized a chunk at a time (the tokens of 10⁵
    statements are 1.5 million strings, 90 MB): per statement its template's number
    and the slots of its holes, in `numbered` and `numbers`. `slot_of` gives the
    slot of each token that is or holds a hole, in the order first seen (parameters
    first); `text_of` the key text of every other token (a token not in it is a name,
    a hole: the large dict is looked up once per token, the small one often); `keys`
    numbers each distinct key (a statement with its holes marked)."""

    def __init__(self, params, known: frozenset):
        self.known = known
        self.slot_of = dict(zip(params, count()))
        self.size = len(params)   # slots given: names and literals
        self.literals: dict[str, int] = {}
        self.text_of: dict[str, str] = {}
        self.keys = _Numbers()
        self.numbered: list[int] = []
        self.numbers: list[int] = []

    def add(self, text: str) -> bool:
        """Tokenize statement lines (the return line's expression last, if there);
        False for a token holding two holes."""
        for char, spelled in _SPACED:   # (str.translate to longer strings is 10x slower)
            text = text.replace(char, spelled)
        tokens = text.split()
        distinct = set(tokens)
        slot_of = self.slot_of
        plain = set(filter(str.isidentifier, distinct)) - self.known
        new = plain.difference(slot_of)
        slot_of.update(zip(new, count(self.size)))
        self.size += len(new)
        # (set.difference iterates this chunk's tokens; `- text_of.keys()` iterated every
        # key seen so far, quadratic in the length: ~65k keys a chunk at 10⁶ statements)
        for token in (distinct - plain).difference(self.text_of):
            if not self._classify(token):
                return False
        keys = " ".join(map(self.text_of.get, tokens, repeat(_MARK)))[:-2].split(" ; ")   # the last token is ";"
        self.numbered += map(self.keys.__getitem__, keys)
        self.numbers += filter(partial(is_not, None), map(slot_of.get, tokens))
        return True

    def _classify(self, token: str) -> bool:
        """A token other than a name: its key text and hole (a name or float literal:
        -v3, x.T, -1.0, 1e-05; a name not known: a hole's), if it holds one."""
        found = [m for m in _HOLE.finditer(token) if m.group()[0].isdigit() or m.group() in self.slot_of]
        if len(found) > 1:
            return False
        if found:
            m, = found
            hole = m.group()
            if hole[0].isdigit():
                if hole not in self.literals:
                    self.literals[hole] = self.size
                    self.size += 1
                self.slot_of[token] = self.literals[hole]
            else:
                self.slot_of[token] = self.slot_of[hole]
            self.text_of[token] = token[:m.start()] + _MARK + token[m.end():]
        else:
            self.text_of[token] = token
        return True


def load_program(lines: list[str], func_name: str, filename: str, namespace: dict) -> bool:
    """Define `func_name` in `namespace` from `generate`'s text `lines` (a header, then
    `def`, one `    name = expression` line per statement and a last `    return` line)
    as a statement program, `filename` being the name linecache holds `lines` under;
    False where the text is not of that form (string literals, a token holding two
    names, a name the function neither takes nor assigns): the caller compiles it."""
    start = next((k for k, ln in enumerate(lines) if ln.startswith(f"def {func_name}(")), None)
    if start is None:
        return False
    body = lines[start + 1:]
    statements, last = body[:-1], body[-1]
    text = "".join(statements)
    if not (last.startswith("    return ") and last.endswith("\n") and text.startswith("    ")
            and text.count("\n    ") == len(statements) - 1 and text.count(" = ") == len(statements)) \
            or any(char in text for char in ("'", '"', "\\", ";", _MARK)):
        return False
    stub = "\n" * start + lines[start] + "\n" * (len(body) - 1) + f"    return {_RUNNER}(locals())\n"
    stub_code = compile(stub, filename, "exec")
    code = next(c for c in stub_code.co_consts if isinstance(c, types.CodeType))
    params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    exec(compile("".join(lines[:start]), filename, "exec"), namespace)
    program = _Statements(params, _KNOWN.union(namespace))
    for first in range(0, len(statements), CHUNK):
        returned = last[len("    return "):] if first + CHUNK >= len(statements) else ""
        if not program.add("".join(statements[first:first + CHUNK]) + returned):
            return False
    numbered, numbers, slot_of = program.numbered, program.numbers, program.slot_of
    holes = [0] * len(program.keys)
    for key, t in program.keys.items():
        holes[t] = key.count(_MARK)
    ends = list(accumulate(map(holes.__getitem__, numbered)))
    arguments = list(map(tuple(numbers).__getitem__, map(slice, [0, *ends[:-1]], ends)))
    # every name taken for a hole is a parameter or assigned (a statement's first hole)
    assigned = set(map(itemgetter(0), arguments[:-1])).union(range(len(params)))
    if len(assigned) != program.size - len(program.literals):
        return False
    exec(stub_code, namespace)

    digest = filename.rsplit(" ", 1)[-1].rstrip(">")
    t_filename = f"<exprcompiler templates {func_name} {digest}>"
    # the return line's key has no ` = `: never a statement's
    t_source = "".join(_template_def(t, key, t == numbered[-1]) for key, t in program.keys.items())
    exec(compile(t_source, t_filename, "exec"), namespace)   # our generated text, never user text
    linecache.cache[t_filename] = (len(t_source), None, t_source.splitlines(True), t_filename)
    functions = [namespace.pop(f"t{t}") for t in range(len(program.keys))]
    run_fns = list(map(functions.__getitem__, numbered[:-1]))
    run_args = arguments[:-1]
    result_fn, result_args = functions[numbered[-1]], arguments[-1]

    values0 = [None] * program.size
    for literal, slot in program.literals.items():
        values0[slot] = float(literal)
    n_params = len(params)
    source = (statements, start, filename, func_name)

    def run(given: dict):
        values = values0.copy()
        values[:n_params] = given.values()
        try:
            for fn, s in zip(run_fns, run_args):
                fn(values, s)
        except Exception as err:
            again = _again_from_line(err, run_args, source, namespace, slot_of, values)
            if again is None:
                raise
            raise again from None
        return result_fn(values, result_args)

    run.templates = len(program.keys)   # for benchmarks/bench_numpy_program.py
    namespace[_RUNNER] = run
    return True


def _again_from_line(err, run_args, source: tuple, namespace, slot_of, values):
    """The exception of the failing statement run again as its own line of the
    generated source (same file name, line number and function name; `source`: the
    statement lines, the def's line index, the file name and the function's name),
    its traceback starting there; None if it does not fail again. (A one-point call that math's
    functions refuse comes here before NumPy evaluates the point: a compile() of one
    line.)"""
    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_name != "run":
        tb = tb.tb_next
    if tb is None or tb.tb_next is None:
        return None
    failed = tb.tb_next.tb_frame.f_locals.get("_s")
    step = next(compress(count(), map(is_, run_args, repeat(failed))), None)
    if step is None:
        return None
    statements, start, filename, func_name = source
    line = statements[step]
    env = dict(namespace)
    env.update((name, values[slot_of[name]]) for name in _HOLE.findall(line)
               if name in slot_of and name.isidentifier())
    code = compile(line.strip(), filename, "exec").replace(co_firstlineno=start + 2 + step, co_name=func_name,
                                                           co_qualname=func_name)
    try:
        exec(code, env)   # our generated source, never user text
    except Exception as again:
        return again.with_traceback(again.__traceback__.tb_next)
    return None


__all__ = ["load_program"]
