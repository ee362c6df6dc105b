"""A statement plan as a Python function: the plans' replay without an interpreter loop.

Where it sits: in `parse` (text → tokens → Trace): plans.py records a statement
form's builder calls once (steps: builder method, argument registers) and replays
them for every statement of that form. Replayed by a loop over the steps, a
statement cost a list of its registers, a test for unknown slots and a loop turn a
step (~0.7 µs a statement at 10⁵ operations, beside ~2.5 µs of builder calls); as a
function whose body is the steps written out, the registers are local variables
and a statement is one call: plan(toks, j) replays the statement at toks[j] and
returns the place of the next one.

The function's text is made from the plan's wiring only (where the statement's
slots are, which registers each step reads, which register is the result, how long
the statement is): numbers and our own names, never a token of the user's text,
compiled without builtins. Its code is compiled once per wiring (t = sin(u) and
v = cos(w) share one) and bound to each plan's builder methods as the defaults of
its parameters. It reads its scope as globals (new_scope): `g` the builder, `kn`
the parser's known variables (token -> variable), `free` the inputs read so far,
`NT` the tokens that cannot be assigned, `STOP` the exception that sends a
statement to the parser.

A plan function reads the statement's target and its slot tokens first:
    target is not a plain name, or an input read before  -> STOP
    a slot's token is not a known variable               -> KeyError
before any builder call, as the parser's own reading would refuse them; a builder
call that refuses (ShapeError, IndexError) leaves the statement to the parser too,
whose same calls are hash-consed (the same variables, nothing new) before it
reports the error. Otherwise the target reads the result.
"""

from __future__ import annotations

from types import FunctionType

from ..code_store import CodeStore

__all__ = ["plan_function", "Stop", "new_scope"]


class Stop(Exception):
    """The statement's target cannot take a plan: the parser reads it (and says why)."""


_CODES: dict = {}      # wiring -> compiled code of its function
_MAX_CODES = 4096      # (beyond: compiled for the plan, not kept)
# The codes of earlier processes (code_store.py): a wiring's text is the same in each,
# and compile() costs ~150 µs a plan, ~1.3 ms of a 10²-operation parse's 2.4. (Those this
# process compiles are saved for the next as it exits.)
_STORE = CodeStore("plans")


def new_scope(builder, known: dict, free: dict, not_target) -> dict:
    """The globals of a parse's plan functions (see the module's docstring); no
    builtins: the functions' text names nothing else."""
    return {"__builtins__": {}, "g": builder, "kn": known, "free": free, "NT": not_target,
            "STOP": Stop}


def plan_function(scope: dict, places: tuple, length: int, steps: tuple, result: int) -> FunctionType:
    """The function of a plan: a slot register for each place in `places` (its token's
    place in the statement: 0 is the target), `length` tokens to the statement's next
    (its newline included), `steps` as (builder method, argument register, second
    argument register or None), each step's result the next register, `result` the
    target's register."""
    wiring = (places, length, tuple((a, b) for _, a, b in steps), result)
    code = _CODES.get(wiring)
    if code is None:
        code = _compiled(*wiring)
        if len(_CODES) < _MAX_CODES:
            _CODES[wiring] = code
    return FunctionType(code, scope, "plan", tuple(fn for fn, _, _ in steps))


def _compiled(places: tuple, length: int, wiring: tuple, result: int):
    # the text below is made of these numbers only: make sure they are numbers
    numbers = (*places, length, result, *(r for ab in wiring for r in ab if r is not None))
    if not all(type(r) is int for r in numbers):
        raise TypeError(f"a plan's wiring must be ints, not {numbers!r}")
    params = "".join(f", f{k}=None" for k in range(len(wiring)))
    body = ["t = s[j]",
            # (t < "A": a token that starts below "A" is a number or a separator;
            # a name starts with a letter or "_")
            "if t < 'A' or t in NT or t in free:",
            "    raise STOP"]
    body += [f"r{k} = kn[s[j + {place}]]" for k, place in enumerate(places)]
    slots = len(places)
    for k, (a, b) in enumerate(wiring):
        args = f"r{a}" if b is None else f"r{a}, r{b}"
        body.append(f"r{slots + k} = f{k}(g, {args})")
    body += [f"kn[t] = r{result}", f"return j + {length}"]
    source = f"def plan(s, j{params}):\n" + "".join(f"    {line}\n" for line in body)
    code = _STORE.get(source)
    if code is None:
        namespace: dict = {"__builtins__": {}}
        exec(compile(source, "<exprcompiler statement plan>", "exec"), namespace)
        code = namespace["plan"].__code__
        _STORE.add(source, code)
    return code
