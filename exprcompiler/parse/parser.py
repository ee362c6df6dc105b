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
The token tables are grammar.py's; the errors that locate, name and suggest are
parse_messages.py's (`Messages`, the parser's other base class).
"""

from __future__ import annotations

from .. import ops as _ops
from ..errors import ExprcIndexError, ShapeError
from ..trace.finish import HAND_ON_BELOW
from ..trace.ir import Builder, Trace, max_ops_limit, output_names, trace_from_builder
from .constants import KEYWORD_VALUES, Tok, TokenReader
from .early_inputs import read_names
from .grammar import (_AFTER_NAME, _BIN, _BINARY, _CALL, _CODES, _INFIX, _LEFT_CHAINS, _MARKER_PREC, _NEG,
                      _NOT_OPERAND, _NOT_TARGET, _NUMBER_START, _PAREN, _RESERVED, _SEPARATORS,
                      _STATEMENT_END, _MANY_ARGUMENTS, _TWO_ARGUMENT)
from .lexer import BAD, EOF, NEWLINES, Token, describe, kind_of
from .parse_messages import Messages
from .plans import Plans

__all__ = ["parse"]


class _Methods(dict):
    """op name -> the builder's method for it (Builder.op_call), looked up once a parse."""

    def __missing__(self, opname: str):
        method = self[opname] = Builder.op_call(opname)
        return method


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


class _Parser(Messages, TokenReader):
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
        self.plans = Plans(lambda text: _Parser(text, {}, lenient), _NOT_TARGET, _CODES, lenient)

    # -- statements -----------------------------------------------------------------
    def program(self) -> Trace:
        # The inputs read in the first window, declared first (early_inputs.py): where
        # the finish puts them, so that it moves nothing. (Read from the window's forms,
        # which the plans make at its first assignment anyway.)
        window = self.plans.window_of(self) if self.distinct is not None and "=" in self.distinct \
            else self.toks
        guessed = read_names(window, _NOT_TARGET, self.scanner.pos < len(self.text))
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
                plans = self.plans
                # (this and the next ones, while they have plans; not asked where none can
                # run in this window: plans.py's `idle`, a short text's usual case)
                if not (plans.off or plans.idle and plans.window.toks is toks):
                    done = plans.run(self)
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
        inputs, kept = self.g._inputs, len(guessed)
        for name in guessed:
            if name not in self.free:   # guessed wrongly: not an input (finish drops it)
                del inputs[name]
                kept -= 1
        if len(self.g.instrs) >= HAND_ON_BELOW:
            self.g.release()   # parsed: no more sharing to find (a small one's table goes on with its trace)
        # (every input guessed: declared in natural order, which the finish need not sort out again)
        return trace_from_builder(self.g, list(zip(output_names(len(outputs), self.free), outputs)),
                                  source=self.text, input_order=list(inputs) if len(inputs) == kept else None)

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
        known = self.known
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
                    # (chain's own first tests, made here: most operators start no
                    # chain, and each of them cost a call of chain that returned at once)
                    if same is not None and toks[i] in known and toks[i + 1] in same:
                        i, opname, at = self.chain(toks, i, opname, at, same, operands)
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
                        op, _, at, kwargs = marker[2]
                        if op.arity == 1 and len(operands) == marker[4] + 1 and not kwargs \
                                and not op.keywords and not op.across:
                            # sin(x): close's common case, here without its call
                            try:
                                operands[-1] = self.ops[op.name](self.g, operands[-1])
                            except (ShapeError, IndexError) as err:
                                operands[-1] = self.failed(at, op.name, (operands[-1],), err)
                        else:
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

    def chain(self, toks: list, i: int, opname: str, at: int, same: frozenset, operands: list) -> tuple:
        """x + y + ...: the operator `opname` (token number `at`) was just read at
        toks[i - 1], with nothing stacked that binds as tightly (just reduced), so it
        applies to a known y as soon as an operator of its precedence (`same`) follows
        y, as reducing would, in the same order: applied here, without stacking (a sum
        of 10⁴ terms). Returns the place after the chain, and its last operator (which
        the caller stacks) and that operator's token number."""
        known, g, ops = self.known, self.g, self.ops
        while True:
            var = known.get(toks[i])
            if var is None or toks[i + 1] not in same:
                return i, opname, at
            x = operands[-1]
            try:
                operands[-1] = ops[opname](g, x, var)
            except (ShapeError, IndexError) as err:
                operands[-1] = self.failed(at, opname, (x, var), err)
            opname = _BINARY[toks[i + 1]][0]
            at = self.base + i + 1
            i += 2

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

    def chained(self, at, two: str, three: str, args: list):
        """hypot(a, b, c, ...) or logaddexp(...) of 3 or more arguments: the op of three,
        then one of three (two arguments more) or of two (one more) on the result."""
        acc = self.apply(at, three, *args[:3])
        for k in range(3, len(args), 2):
            acc = self.apply(at, three if k + 1 < len(args) else two, acc, *args[k:k + 2])
        return acc

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
        elif name in _MANY_ARGUMENTS and len(args) > 2 and not kwargs:
            operands.append(self.chained(at, op.name, _MANY_ARGUMENTS[name], args))
            return
        if op.arity == _ops.VARIADIC:
            if not args:
                raise self.error(at, f"{name}() needs at least one argument")
        elif len(args) != op.arity:
            plural = "" if op.arity == 1 else "s"
            hint = (f"; pass options by keyword ({', '.join(k + '=...' for k, _ in op.keywords)})"
                    if op.keywords and len(args) > op.arity else "")
            more = " or more" if name in _MANY_ARGUMENTS else ""
            raise self.error(at, f"{name}() takes {op.arity}{more} argument{plural} ({len(args)} given){hint}")
        tok = Tok("name", name, at)
        if op.keywords:
            self.check_options(tok, op, kwargs)
        if op.across and all(self.g.shape(a) == () for a in args):
            self.refuse_scalar_reduction(tok, args[0])
        operands.append(self.apply(at, op.name, *args, **kwargs))
