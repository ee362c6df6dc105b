"""Parser of the string language: the second step of text → tokens → Trace.

`parse(text)` reads a straight-line program — ``name = expr`` statements
separated by newlines or ``;``, ending with a bare expression (the output); every
bare expression is an output, so ``f1; f2; f3`` and ``a = ...; a, 2*a`` have
several —
straight into a trace `Builder`, which hash-conses and folds constants as it
goes; finishing the trace drops assignments that do not reach the output.
Sums are built left to right, as Python adds; sharing a sub-sum computed
elsewhere (Griewank's ``(sin(u) + u - w) * (u - w)``) is the job of the front
end's share_sums pass.

Expressions are parsed by operator precedence with two explicit stacks
(operands and pending operators/parentheses/calls) instead of recursive
descent: design principle 5 says nothing may recurse on the user's nesting
depth, and ``"(" * 100000`` must not reach Python's recursion limit. The
precedence numbers are the op table's (ops.PREC_*), the same ones the printer
uses, so parsing and printing agree on Python's rules:

    +, -  (left)  <  *, /  (left)  <  unary -, +  <  **  (right; its right
    operand may itself start with a unary sign: 2**-x == 2**(-x))

The expression loop runs once a token, 4-5 times an operation, so it reads the
lexer's windows of token strings itself, tells tokens apart by their text, and
keeps token positions as numbers, turned into lines and columns (Scanner.locate)
only for a message. Names, numbers and constants already read are looked up in one
dict (`known`); only a name's first use, a call or an option goes the longer way.
A left-associative chain of one precedence over known operands (x + y - z) is
applied as it is read, in the order reducing would apply it, without the stacks.

An assignment whose form (its tokens, names and numbers left out) was seen before
is not read again: plans.py replays the builder calls its first reading made. The
inputs that the first window reads are declared before the first statement, where
the finished trace puts them (early_inputs.py), so that its finish moves nothing.

User text is data: nothing here evaluates it; names are looked up in the op
table (`FUNCTIONS`, `CONSTANTS`) and otherwise become inputs. The parts that must
be constants (options such as ``axis=0``, the key of ``x[1:, 2]``) are read and
checked by kind in `constants`, whose `TokenReader` is the parser's base class.
"""

from __future__ import annotations

import difflib

from .. import ops as _ops
from ..errors import ExprcIndexError, ParseError, ShapeError, UndeclaredShapes
from ..trace.ir import Builder, Trace, ancestors, max_ops_limit, natural_key, output_names, trace_from_builder
from .constants import KEYWORD_VALUES, Tok, TokenReader
from .early_inputs import read_names
from .lexer import BAD, EOF, NEWLINES, Token, describe, kind_of, quote
from .plans import Plans, form_tokens
from .window_forms import codes_of

__all__ = ["parse"]

# Binary operator token -> (op name, precedence, right-associative).
_BINARY = {
    "+": ("add", _ops.PREC_ADD, False),
    "-": ("sub", _ops.PREC_ADD, False),
    "*": ("mul", _ops.PREC_MUL, False),
    "/": ("div", _ops.PREC_MUL, False),
    "**": ("pow", _ops.PREC_POW, True),
    "@": ("matmul", _ops.PREC_MUL, False),
    "<": ("lt", _ops.PREC_CMP, False),
    "<=": ("le", _ops.PREC_CMP, False),
    ">": ("gt", _ops.PREC_CMP, False),
    ">=": ("ge", _ops.PREC_CMP, False),
    "==": ("eq", _ops.PREC_CMP, False),
    "!=": ("ne", _ops.PREC_CMP, False),
}
# An operator reduces the stacked operators of precedence at least its binding: its
# own precedence, or one more for a right-associative one (a**b**c is a**(b**c)).
_INFIX = {tok: (opname, prec, prec + 1 if right else prec) for tok, (opname, prec, right) in _BINARY.items()}
# The left-associative operators whose chains (x + y - z) the expression loop applies
# as it reads them: each -> the operators of its precedence. ('@' is left to the
# stack: a product of undeclared inputs is scalar_product's question.)
_LEFT_CHAINS = {"+": frozenset("+-"), "-": frozenset("+-"), "*": frozenset("*/"), "/": frozenset("*/")}
# Functions called under another name, or by number of arguments.
# (the names of C, SymPy and Python's math for the ops NumPy spells otherwise; pow is the
# ** operator, callable under this name only)
_ALIASES = {"dot": "matmul", "ln": "log", "asin": "arcsin", "acos": "arccos", "atan": "arctan",
            "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "atan2": "arctan2",
            "pow": "pow", "ceiling": "ceil", "loggamma": "lgamma"}
_TWO_ARGUMENT = {"max": "maximum", "min": "minimum"}
# What "did you mean" chooses from: every callable name, aliases included (atn -> atan).
_CALLABLE = sorted({*_ops.FUNCTIONS, *_ALIASES})

# The expression loop tells tokens apart by their text (lexer.kind_of names them for
# messages). A name followed by one of _AFTER_NAME may be a call or an option: "(" or
# "=" may follow past the window's end ("") or a newline inside parentheses.
_STATEMENT_END = frozenset((*NEWLINES, ";", EOF))
_SEPARATORS = frozenset((*NEWLINES, ";"))
_AFTER_NAME = frozenset(("(", "=", "", *NEWLINES))
_NOT_OPERAND = frozenset((*_BINARY, *NEWLINES, "(", ")", ",", ";", "=", ".", "[", "]", ":",
                          "", EOF, BAD))
_NUMBER_START = frozenset("0123456789.")
# Names that cannot be assigned (check_target says why).
_RESERVED = frozenset((*(n for n in _ops.FUNCTIONS if n not in _ops.VARIABLE_TOO), *_ops.CONSTANTS,
                       *KEYWORD_VALUES))
_NOT_TARGET = _NOT_OPERAND | _RESERVED   # (what plans leave to program(); numbers too)
# The function names a statement's form keeps (plans.py): every callable name but the
# products' (dot(X, w) of undeclared inputs is a question for scalar_product).
_FORM_TOKENS = form_tokens(n for n in _CALLABLE if _ALIASES.get(n, n) != "matmul")
_CODES = codes_of(_FORM_TOKENS)

# Entries of the operator stack: (kind, precedence, payload, token number, operand
# height). The payload is the op name of an operator, or (OpDef, name, the name's
# token number, options) of a call; the token of a marker ("(" or a call) is its '('.
# Markers have precedence -1 so that reducing by precedence always stops at them;
# the height is where a call's arguments begin on the operand stack.
_BIN, _NEG, _PAREN, _CALL = "bin", "neg", "paren", "call"
_MARKER_PREC = -1


class _Methods(dict):
    """op name -> the builder's method for it (Builder.op_call), looked up once a parse."""

    def __missing__(self, opname: str):
        method = self[opname] = Builder.op_call(opname)
        return method


def _inputs_of(b: Builder, var: int) -> list[str]:
    """The names of the inputs `var` depends on, in natural order."""
    return sorted((b.instrs[i].name for i in ancestors(b.instrs, var) if b.instrs[i].op == "input"),
                  key=natural_key)


def parse(text: str, shapes=None, lenient: bool = False, max_ops: int | None = None) -> Trace:
    """Parse an expression or a straight-line program into a Trace.

    Free names that are never assigned become inputs (in natural order: x2 before
    x10). Each bare expression is an output, in order; one output is named "y" ("f"
    if "y" is an input), several y1, y2, ... Raises
    ParseError, with line, column and source line, for any malformed text.
    `lenient`: a reduction of undeclared inputs is taken as written (of a scalar), for
    reading the names and kinds of a program whose shapes come at the first call.
    `max_ops`: the input-size limit (default: trace.ir.max_ops_limit()); a program
    that needs more operations raises InputTooLarge as soon as it gets there.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() expects a str, not {type(text).__name__}")
    return _Parser(text, shapes or {}, lenient, max_ops_limit(max_ops)).program()


class _Parser(TokenReader):
    def __init__(self, text: str, shapes, lenient: bool = False, max_ops: int | None = None):
        super().__init__(text)
        self.lenient = lenient
        self.shapes = shapes                # input name -> declared shape
        self.g = Builder(max_ops=max_ops)   # hash-conses as we parse; finish() drops dead code
        # Token text -> the variable it always reads: assigned names (SSA), and once
        # read, inputs, constants and numbers (the builder would give the same one).
        self.known: dict[str, int] = {}
        self.scanner.valid = self.known     # (its keys are tokens: the lexer need not check them)
        self.free: dict[str, int] = {}      # input name -> its first use's token number (for errors)
        self.more = False                   # a bare statement's comma: another output follows
        self.ops = _Methods()               # op name -> its builder method
        # Assignments of a form seen before are replayed, not read (plans.py).
        self.plans = Plans(lambda text: _Parser(text, {}, lenient), _NOT_TARGET, _CODES)

    # -- statements -----------------------------------------------------------------
    def program(self) -> Trace:
        # The inputs read in the first window, declared first (early_inputs.py): where
        # the finish puts them, so that it moves nothing.
        guessed = read_names(self.toks, _NOT_TARGET, self.scanner.pos < len(self.text))
        for name in guessed:
            self.g.input(name, self.shapes.get(name, ()))
        outputs: list[int] = []   # the bare expressions, in order
        last = None               # (first token, its number, is an assignment) of the last statement
        while True:
            toks, i = self.toks, self.i
            tok = toks[i]
            if tok in _SEPARATORS:   # blank lines, comments, stray ';'
                self.i = i + 1
                continue
            if tok == EOF:
                break
            if not tok or not toks[i + 1]:   # the window's end, right here or after tok
                self.refill()
                continue
            at = self.base + i
            if toks[i + 1] == "=" and tok not in _NOT_OPERAND and tok[0] not in _NUMBER_START:
                if tok in _RESERVED:
                    self.check_target(tok, at)
                done = self.plans.run(self)   # (this and the next ones, while they have plans)
                if done is not None:
                    last = (*done, True)
                    continue
                self.i = i + 2
                value = self.expression(at + 1)
                if tok in self.free:   # after the value: "a = a + 1" reads a first
                    raise self.used_before_assigned(tok, at)
                self.known[tok] = value
                last = (tok, at, True)
            else:  # one output, or several separated by top-level commas ("f, g")
                self.more = True
                while self.more:
                    self.more = False
                    outputs.append(self.expression(None, outputs_ok=True))
                last = (tok, at, False)
        if last is None:
            raise self.error(Token("eof", "", 0, 1, 0), "empty expression")
        if last[2]:
            raise self.error(last[1], "the program must end with an expression "
                                      f"(add a last line such as '{last[0][:24]}')")
        for name in guessed:
            if name not in self.free:   # guessed wrongly: not an input (finish drops it)
                del self.g._inputs[name]
        self.g.release()   # parsed: no more sharing to find
        return trace_from_builder(self.g, list(zip(output_names(len(outputs), self.free), outputs)),
                                  source=self.text)

    def check_target(self, name: str, at: int) -> None:
        if name in _ops.FUNCTIONS and name not in _ops.VARIABLE_TOO:
            raise self.error(at, f"cannot assign to '{name}' (a function)")
        if name in _ops.CONSTANTS:
            raise self.error(at, f"cannot assign to constant '{name}'")
        if name in KEYWORD_VALUES:
            raise self.error(at, f"cannot assign to '{name}'")

    def used_before_assigned(self, name: str, at: int) -> ParseError:
        # Inputs are the names that are never assigned; a name read before its
        # assignment is an ordering mistake (Python's UnboundLocalError), not an input.
        line = self.scanner.locate(at).line
        return self.error(self.free[name], f"{quote(name)} is used before it is assigned "
                                           f"(on line {line}); inputs are names that are never assigned")

    # -- names ----------------------------------------------------------------------
    def variable(self, name: str, at: int, after: str) -> int:
        """The variable a name (token number `at`, followed by the token `after`) reads."""
        if after == BAD:   # the lexer's error comes first, as the token was read
            raise self.scanner.bad_token_error()
        var = self.known.get(name)
        if var is not None:
            return var
        if name in _ops.CONSTANTS:
            var = self.known[name] = self.g.const(_ops.CONSTANTS[name])
            return var
        if name in KEYWORD_VALUES:
            raise self.error(at, f"'{name}' is a value for options (keepdims=True), not a number "
                                 f"or a variable; write 1 or 0")
        if name in _ops.FUNCTIONS and name not in _ops.VARIABLE_TOO:
            raise self.error(at, f"'{name}' is a function; call it as {name}(...)")
        self.free.setdefault(name, at)
        var = self.known[name] = self.g.input(name, self.shapes.get(name, ()))
        return var

    def function(self, name: str, at: int) -> _ops.OpDef:
        op = _ops.OPS[_ALIASES[name]] if name in _ALIASES else _ops.FUNCTIONS.get(name)
        if op is not None:
            return op
        message = f"unknown function {quote(name)}"
        # difflib is cheap for short names; a huge name is junk with no near miss.
        close = difflib.get_close_matches(name, _CALLABLE, n=1) if len(name) <= 64 else []
        if close:
            message += f" (did you mean '{close[0]}'?)"
        elif name in self.known or name in _ops.CONSTANTS:
            message += f"; to multiply, write {name}*(...)"
        raise self.error(at, message)

    # -- expressions ----------------------------------------------------------------
    def expression(self, after: int | None, outputs_ok: bool = False) -> int:
        """Parse one expression up to and including its statement end; return its node.

        `after` is the number of the token before the expression (the '=' of an
        assignment), for messages like "expected an expression after '='". With
        `outputs_ok` (a bare statement), a comma outside parentheses also ends it and
        sets `self.more`.

        The loop reads the window's token strings itself, its place in the local `i`
        (handed over in `self.i` around the readers of constants and at the window's
        end); `prev` is the place of the token before, for messages.
        """
        known, g, ops = self.known, self.g, self.ops
        toks, i = self.toks, self.i
        operands: list[int] = []
        stack: list[tuple] = []
        prev = None if after is None else after - self.base
        depth = 0             # open '(': a newline inside is a blank
        expect_operand = True
        while True:
            tok = toks[i]
            i += 1
            if expect_operand:
                var = known.get(tok)
                if var is not None and (toks[i] not in _AFTER_NAME or (not depth and toks[i] in NEWLINES)):
                    operands.append(var)   # the most common token: a name or number read before
                    expect_operand = False
                elif tok == "(":
                    depth += 1
                    stack.append((_PAREN, _MARKER_PREC, None, self.base + i - 1, len(operands)))
                elif tok == "-":
                    stack.append((_NEG, _ops.PREC_NEG, "neg", self.base + i - 1, 0))
                elif tok in _NOT_OPERAND:
                    if not tok or (depth and tok in NEWLINES):   # the window's end; a blank
                        if not tok:
                            self.i = i - 1
                            prev = self.next_window(prev)
                            toks, i = self.toks, 0
                        continue
                    if tok != "+":   # unary plus is the identity; nothing to build
                        raise self.missing_operand(tok, self.base + i - 1, self.number(prev), stack)
                elif tok[0] in _NUMBER_START:
                    operands.append(known.get(tok) or self.number_constant(tok))
                    expect_operand = False
                else:   # a name: a call, an option, or a variable
                    at = self.base + i - 1
                    j = i   # the place of the token after the name
                    while True:
                        after_name = toks[j]
                        if not after_name:   # it is in the next window
                            self.i = i - 1
                            prev = self.next_window(prev)
                            toks, j, i = self.toks, j - i + 1, 1
                        elif depth and after_name in NEWLINES:   # a blank
                            j += 1
                        else:
                            break
                    if after_name == "=" and stack and stack[-1][0] == _CALL:
                        self.i, self.depth = j, depth
                        self.keyword(Tok("name", tok, at), stack[-1])
                        self.option_end(tok)
                        toks, i = self.toks, self.i
                        prev = at - self.base
                        expect_operand = False
                        continue
                    if after_name == "(":
                        depth += 1
                        op = _ops.FUNCTIONS.get(tok) or self.function(tok, at)
                        stack.append((_CALL, _MARKER_PREC, (op, tok, at, {}), self.base + j, len(operands)))
                        i = j + 1
                    else:
                        operands.append(self.variable(tok, at, after_name))
                        expect_operand = False
            else:
                infix = _INFIX.get(tok)
                if infix is not None:
                    opname, prec, binding = infix
                    if stack and stack[-1][1] >= binding:
                        self.reduce(stack, operands, binding)
                    at = self.base + i - 1
                    same = _LEFT_CHAINS.get(tok)
                    if same is not None:
                        # x + y + ...: nothing stacked binds as tightly as tok (just
                        # reduced), so tok applies to a known y as soon as an operator
                        # of its precedence follows y, as reducing would, in the same
                        # order: applied here, without stacking (a sum of 10⁴ terms)
                        while True:
                            var = known.get(toks[i])
                            if var is None or toks[i + 1] not in same:
                                break
                            x = operands[-1]
                            try:
                                operands[-1] = ops[opname](g, x, var)
                            except (ShapeError, IndexError) as err:
                                operands[-1] = self.failed(at, opname, (x, var), err)
                            opname = _BINARY[toks[i + 1]][0]
                            at = self.base + i + 1
                            i += 2
                    stack.append((_BIN, prec, opname, at, 0))
                    expect_operand = True
                elif tok == ")":
                    if stack and stack[-1][1] >= 0:
                        self.reduce(stack, operands, 0)
                    if not stack:
                        raise self.error(self.base + i - 1, "unmatched ')'")
                    depth -= 1
                    marker = stack.pop()
                    if marker[0] == _CALL:
                        self.close(marker, operands)
                elif tok == ",":
                    if stack and stack[-1][1] >= 0:
                        self.reduce(stack, operands, 0)
                    if not stack and outputs_ok:
                        self.more = True
                        self.i = i
                        return operands.pop()
                    if not stack or stack[-1][0] != _CALL:
                        raise self.error(self.base + i - 1, "unexpected ','" + (
                            "; only function calls take several arguments" if stack else ""))
                    expect_operand = True
                elif tok in _STATEMENT_END:
                    if depth and tok in NEWLINES:   # inside parentheses a newline is a blank
                        continue
                    if stack and stack[-1][1] >= 0:
                        self.reduce(stack, operands, 0)
                    if stack:
                        raise self.error(stack[-1][3], "'(' was never closed")
                    self.i = i
                    return operands.pop()
                elif not tok:   # the window's end
                    self.i = i - 1
                    prev = self.next_window(prev)
                    toks, i = self.toks, 0
                    continue
                else:   # '.T', '[...]', or a mistake
                    at = self.base + i - 1
                    self.i, self.depth = i, depth
                    self.postfix(tok, at, self.number(prev), stack, operands)
                    toks, i = self.toks, self.i
                    prev = at - self.base
                    continue
            prev = i - 1

    def option_end(self, name: str) -> None:
        """After an option's value: an operator would apply to the call's last argument
        (sum(x, axis=0 + y) read as sum(x + y, axis=0)), so it is refused."""
        tok = self.peek()
        if tok.kind in _INFIX:
            raise self.error(tok, f"unexpected {describe(tok)} after the option {name}=...: "
                                  f"an option's value is a constant, not an expression")

    def number_constant(self, text: str) -> int:
        var = self.known[text] = self.g.const(float(text))
        return var

    def next_window(self, prev: int | None) -> int | None:
        """Read on into the next window (self.i is at the window's end, or the token
        before); returns `prev`, the place of the token before, in the new window."""
        shift = self.i
        self.refill()
        return None if prev is None else prev - shift

    def number(self, place: int | None) -> int | None:
        """The token number of the token at `place` in the window (None: none)."""
        return None if place is None else self.base + place

    def postfix(self, tok: str, at: int, prev: int | None, stack: list, operands: list) -> None:
        """A token after an operand that is not an operator, ')', ',' or a statement's
        end: a transpose x.T, an index x[...], or a mistake."""
        if tok == ".":
            attr = self.advance()
            if attr.kind != "name" or attr.text != "T":
                raise self.error(attr, "expected 'T' after '.' (x.T is the transpose; "
                                       "other attributes do not exist)")
            operands[-1] = self.apply(at, "transpose", operands[-1])
            return
        if tok == "[":
            self.depth += 1   # (the lexer's count: newlines inside are blanks)
            key = self.index_key(Tok("[", "[", at))
            self.depth -= 1
            if self.g.shape(operands[-1]) == ():
                raise self.index_of_scalar(at, operands[-1])
            operands[-1] = self.apply(at, "index", operands[-1], key=key)
            return
        if tok == BAD:
            raise self.scanner.bad_token_error()
        kind = kind_of(tok)
        if kind in ("number", "name", "("):
            raise self.error(at, f"missing operator between {describe(self.scanner.locate(prev))} and "
                                 f"{describe(Tok(kind, tok, at))}" + self.open_hint(stack, at))
        if kind == "=":
            raise self.error(at, "unexpected '='; only a name can be assigned (name = expression)"
                             + self.open_hint(stack, at))
        raise self.error(at, f"unexpected {describe(Tok(kind, tok, at))}")

    def reduce(self, stack: list, operands: list, binding: int) -> None:
        """Apply the stacked operators of precedence `binding` or more to the operands
        on top of the operand stack."""
        g, ops = self.g, self.ops
        while stack and stack[-1][1] >= binding:
            kind, _, opname, at, _ = stack.pop()
            y = None if kind == _NEG else operands.pop()
            x = operands[-1]
            try:
                operands[-1] = ops[opname](g, x) if y is None else ops[opname](g, x, y)
            except (ShapeError, IndexError) as err:
                operands[-1] = self.failed(at, opname, (x,) if y is None else (x, y), err)

    def apply(self, at: int, opname: str, *args, **attrs) -> int:
        """Build one operation; a shape or index error points at its operator (token
        number `at`)."""
        try:
            return self.g.apply(opname, *args, **attrs)
        except (ShapeError, IndexError) as err:
            return self.failed(at, opname, args, err)

    def failed(self, at: int, opname: str, args: tuple, err: Exception) -> int:
        """The builder refused `opname` of `args`: the error, located at token `at`."""
        if opname == "matmul" and isinstance(err, ShapeError) and self.scalar_product(at, args):
            return self.g.apply("mul", *args)  # lenient: metadata only (names, kind, wrt)
        located = self.error(at, str(err)).args[0]
        raise (ShapeError if isinstance(err, ShapeError) else ExprcIndexError)(located) from None

    def close(self, marker: tuple, operands: list) -> None:
        """A ')' closes the call `marker`: apply its function."""
        op, name, at, kwargs = marker[2]
        base = marker[4]
        if op.arity == 1 and len(operands) == base + 1 and not kwargs and not op.keywords and not op.across:
            try:   # the common case, sin(x): one argument of a scalar function, no options
                operands[-1] = self.ops[op.name](self.g, operands[-1])
                return
            except (ShapeError, IndexError) as err:
                operands[-1] = self.failed(at, op.name, (operands[-1],), err)
                return
        args = operands[base:]
        del operands[base:]
        if name in _TWO_ARGUMENT and len(args) == 2 and not kwargs:
            op = _ops.OPS[_TWO_ARGUMENT[name]]
        if op.arity == _ops.VARIADIC:
            if not args:
                raise self.error(at, f"{name}() needs at least one argument")
        elif len(args) != op.arity:
            plural = "" if op.arity == 1 else "s"
            hint = (f"; pass options by keyword ({', '.join(k + '=...' for k, _ in op.keywords)})"
                    if op.keywords and len(args) > op.arity else "")
            raise self.error(at, f"{name}() takes {op.arity} argument{plural} ({len(args)} given){hint}")
        tok = Tok("name", name, at)
        if op.keywords:
            self.check_options(tok, op, kwargs)
        if op.across and all(self.g.shape(a) == () for a in args):
            self.refuse_scalar_reduction(tok, args[0])
        operands.append(self.apply(at, op.name, *args, **kwargs))

    def refuse_scalar_reduction(self, tok: Tok, arg: int) -> None:
        """sum(x), mean(x), softmax(x)... of an undeclared (scalar) x: the user means a
        vector. Evaluated over a batch of points it would be a per-point (or per-block)
        reduction, a silently wrong number, so it is refused with the fix."""
        names = _inputs_of(self.g, arg)
        if self.lenient or not names or any(self.g.shape(self.g._inputs[n]) != () for n in names):
            return  # sum(2.5), sum(x[0]) of a declared x: no batch of points to confuse
        raise self.undeclared(tok, f"{tok.text}()", names, "it" if len(names) == 1 else "the vectors among them")

    def scalar_product(self, at: int, args) -> bool:
        """X @ w where X or w is an undeclared (scalar) input: the user means a matrix or
        a vector, which the first call's arrays will tell (UndeclaredShapes, as for a
        reduction). True where the parse is lenient: the product is taken as of numbers.
        `at`: the number of the product's token ('@', or the name of dot() or matmul())."""
        names = sorted({n for a in args if self.g.shape(a) == () for n in _inputs_of(self.g, a)
                        if self.g.shape(self.g._inputs[n]) == ()}, key=natural_key)
        if not names or self.lenient:
            return bool(names)
        raise self.undeclared(at, self.scanner.locate(at).text, names, "the matrices and vectors")

    def undeclared(self, tok, what: str, names: list, declare: str) -> UndeclaredShapes:
        """The refusal of `what` (a reduction, a product) of the undeclared inputs `names`."""
        one = len(names) == 1
        return UndeclaredShapes(self.error(tok, (
            f"{what} of a scalar: {', '.join(names)} {'is' if one else 'are'} not declared in shapes=, "
            f"so {'it is a scalar' if one else 'they are scalars'}; declare {declare}, "
            f"e.g. shapes={{{names[-1]!r}: ('n',)}} (--shape {names[-1]}=n on the command line)")).args[0])

    def index_of_scalar(self, at: int, var: int) -> ExprcIndexError:
        """x[0] of a scalar: most often an x the user forgot to declare in shapes=."""
        names = _inputs_of(self.g, var)
        hint = (f": {quote(names[0])} is not declared in shapes=, so it is a scalar; declare it, "
                f"e.g. shapes={{{quote(names[0])}: ('n',)}} (--shape {names[0][:24]}=n on the command line)"
                if len(names) == 1 and self.g.shape(self.g._inputs[names[0]]) == () else "")
        return ExprcIndexError(self.error(at, f"[]: cannot index a scalar{hint}").args[0])

    def missing_operand(self, text: str, at: int, prev: int | None, stack: list) -> ParseError:
        """The error for the token `text` (number `at`) found where an operand (number,
        name, '(') should be; `prev` is the number of the token before."""
        if text == BAD:
            return self.scanner.bad_token_error()
        tok = self.scanner.locate(at)
        if prev is not None:
            prev = self.scanner.locate(prev)
        kind = tok.kind
        if kind == "eof" and stack and any(m[1] == _MARKER_PREC for m in stack):
            marker = next(m for m in reversed(stack) if m[1] == _MARKER_PREC)
            return self.error(marker[3], "'(' was never closed")
        if kind == ")":
            if prev is not None and prev.kind == "(":
                marker = stack[-1]  # pushed by that '(' just before
                if marker[0] == _CALL:
                    self.close(marker, [])  # raises the arity error (0 given)
                return self.error(tok, "empty parentheses: expected an expression inside '()'")
            if not any(m[1] == _MARKER_PREC for m in stack):
                return self.error(tok, "unmatched ')'")
        if prev is None:
            return self.error(tok, f"expected an expression, found {describe(tok)}")
        return self.error(tok, f"expected an expression after {describe(prev)}")

    def open_hint(self, stack: list, at: int) -> str:
        """When an error follows an unclosed '(' on an earlier line, say so: the
        real mistake is often the missing ')' (newlines inside '()' are ignored)."""
        for marker in reversed(stack):
            if marker[1] == _MARKER_PREC:
                paren, tok = self.scanner.locate(marker[3]), self.scanner.locate(at)
                if paren.line < tok.line:
                    return f" (is the '(' on line {paren.line}, column {paren.col} closed?)"
                return ""
        return ""
