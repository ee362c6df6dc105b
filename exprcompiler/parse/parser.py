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
from .constants import KEYWORD_VALUES, TokenReader
from .lexer import Token, describe, error_at, quote

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
# Functions called under another name, or by number of arguments.
# (the names of C, SymPy and Python's math for the ops NumPy spells otherwise; pow is the
# ** operator, callable under this name only)
_ALIASES = {"dot": "matmul", "ln": "log", "asin": "arcsin", "acos": "arccos", "atan": "arctan",
            "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "atan2": "arctan2",
            "pow": "pow", "ceiling": "ceil", "loggamma": "lgamma"}
_TWO_ARGUMENT = {"max": "maximum", "min": "minimum"}
# What "did you mean" chooses from: every callable name, aliases included (atn -> atan).
_CALLABLE = sorted({*_ops.FUNCTIONS, *_ALIASES})
_STATEMENT_END = frozenset(("newline", ";", "eof"))

# Entries of the operator stack: (kind, precedence, payload, token, operand height).
# The payload is the op name of an operator, or (OpDef, name token) of a call; the
# token of a marker ("(" or a call) is its '('. Markers have precedence -1 so that
# reducing by precedence always stops at them; the height is where a call's
# arguments begin on the operand stack.
_BIN, _NEG, _PAREN, _CALL = "bin", "neg", "paren", "call"
_MARKER_PREC = -1


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
        self.env: dict[str, int] = {}       # assigned name -> its trace variable (SSA)
        self.free: dict[str, Token] = {}    # input name -> its first use (for errors)
        self.more = False                   # a bare statement's comma: another output follows

    # -- statements -----------------------------------------------------------------
    def program(self) -> Trace:
        outputs: list[int] = []   # the bare expressions, in order
        last = None               # (first token, is an assignment) of the last statement
        while True:
            tok = self.peek()
            if tok.kind in ("newline", ";"):  # blank lines, comments, stray ';'
                self.advance()
                continue
            if tok.kind == "eof":
                break
            if tok.kind == "name" and self.peek(1).kind == "=":
                self.advance()
                eq = self.advance()
                self.check_target(tok)
                value = self.expression(eq)
                self.check_not_input(tok)  # after the value: "a = a + 1" reads a first
                self.env[tok.text] = value
                last = (tok, True)
            else:  # one output, or several separated by top-level commas ("f, g")
                self.more = True
                while self.more:
                    self.more = False
                    outputs.append(self.expression(None, outputs_ok=True))
                last = (tok, False)
        if last is None:
            raise self.error(Token("eof", "", 0, 1, 0), "empty expression")
        if last[1]:
            raise self.error(last[0], "the program must end with an expression "
                                      f"(add a last line such as '{last[0].text[:24]}')")
        self.g.release()   # parsed: no more sharing to find
        return trace_from_builder(self.g, list(zip(output_names(len(outputs), self.free), outputs)),
                                  source=self.text)

    def check_target(self, tok: Token) -> None:
        name = tok.text
        if name in _ops.FUNCTIONS and name not in _ops.VARIABLE_TOO:
            raise self.error(tok, f"cannot assign to '{name}' (a function)")
        if name in _ops.CONSTANTS:
            raise self.error(tok, f"cannot assign to constant '{name}'")
        if name in KEYWORD_VALUES:
            raise self.error(tok, f"cannot assign to '{name}'")

    def check_not_input(self, tok: Token) -> None:
        # Inputs are the names that are never assigned; a name read before its
        # assignment is an ordering mistake (Python's UnboundLocalError), not an input.
        use = self.free.get(tok.text)
        if use is not None:
            raise self.error(use, f"{quote(tok.text)} is used before it is assigned "
                                  f"(on line {tok.line}); inputs are names that are never assigned")

    # -- names ----------------------------------------------------------------------
    def variable(self, tok: Token) -> int:
        name = tok.text
        var = self.env.get(name)
        if var is not None:
            return var
        if name in _ops.CONSTANTS:
            return self.g.const(_ops.CONSTANTS[name])
        if name in KEYWORD_VALUES:
            raise self.error(tok, f"'{name}' is a value for options (keepdims=True), not a number "
                                  f"or a variable; write 1 or 0")
        if name in _ops.FUNCTIONS and name not in _ops.VARIABLE_TOO:
            raise self.error(tok, f"'{name}' is a function; call it as {name}(...)")
        self.free.setdefault(name, tok)
        return self.g.input(name, self.shapes.get(name, ()))

    def function(self, tok: Token) -> _ops.OpDef:
        name = tok.text
        op = _ops.OPS[_ALIASES[name]] if name in _ALIASES else _ops.FUNCTIONS.get(name)
        if op is not None:
            return op
        message = f"unknown function {quote(name)}"
        # difflib is cheap for short names; a huge name is junk with no near miss.
        close = difflib.get_close_matches(name, _CALLABLE, n=1) if len(name) <= 64 else []
        if close:
            message += f" (did you mean '{close[0]}'?)"
        elif name in self.env or name in self.free or name in _ops.CONSTANTS:
            message += f"; to multiply, write {name}*(...)"
        raise self.error(tok, message)

    # -- expressions ----------------------------------------------------------------
    def expression(self, after: Token | None, outputs_ok: bool = False) -> int:
        """Parse one expression up to and including its statement end; return its node.

        `after` is the token before the expression (the '=' of an assignment), for
        messages like "expected an expression after '='". With `outputs_ok` (a bare
        statement), a comma outside parentheses also ends it and sets `self.more`.
        """
        g, env = self.g, self.env
        # self.advance() and self.peek(), inline: they run once or twice a token
        pushed, next_token = self.pushed, self._next
        operands: list[int] = []
        stack: list[tuple] = []
        prev = after
        expect_operand = True
        while True:
            tok = pushed.pop() if pushed else next_token()
            kind = tok.kind
            if expect_operand:
                if kind == "number":
                    operands.append(g.const(float(tok.text)))
                    expect_operand = False
                elif kind == "name":
                    if not pushed:
                        pushed.append(next_token())
                    after_name = pushed[-1].kind
                    if after_name == "=" and stack and stack[-1][0] == _CALL:
                        self.keyword(tok, stack[-1])
                        expect_operand = False
                    elif after_name == "(":
                        op = self.function(tok)
                        name_tok, tok = tok, pushed.pop()  # tok is now the '('
                        stack.append((_CALL, _MARKER_PREC, (op, name_tok, {}), tok, len(operands)))
                    else:
                        var = env.get(tok.text)   # self.variable(tok)'s first step
                        operands.append(self.variable(tok) if var is None else var)
                        expect_operand = False
                elif kind == "(":
                    stack.append((_PAREN, _MARKER_PREC, None, tok, len(operands)))
                elif kind == "-":
                    stack.append((_NEG, _ops.PREC_NEG, "neg", tok, 0))
                elif kind == "+":
                    pass  # unary plus is the identity; nothing to build
                else:
                    raise self.missing_operand(tok, prev, stack)
            elif kind in _BINARY:
                opname, prec, right = _BINARY[kind]
                # Reduce what binds at least as tightly (strictly tighter for '**').
                while stack and (stack[-1][1] > prec or (stack[-1][1] == prec and not right)):
                    self.reduce(stack, operands)
                stack.append((_BIN, prec, opname, tok, 0))
                expect_operand = True
            elif kind == ".":
                attr = self.advance()
                if attr.kind != "name" or attr.text != "T":
                    raise self.error(attr, "expected 'T' after '.' (x.T is the transpose; "
                                           "other attributes do not exist)")
                operands[-1] = self.apply(tok, "transpose", operands[-1])
            elif kind == "[":
                key = self.index_key(tok)
                if self.g.shape(operands[-1]) == ():
                    raise self.index_of_scalar(tok, operands[-1])
                operands[-1] = self.apply(tok, "index", operands[-1], key=key)
            elif kind == ")":
                self.reduce_to_marker(stack, operands)
                if not stack:
                    raise self.error(tok, "unmatched ')'")
                self.close(stack.pop(), operands)
            elif kind == ",":
                self.reduce_to_marker(stack, operands)
                if not stack and outputs_ok:
                    self.more = True
                    return operands.pop()
                if not stack or stack[-1][0] != _CALL:
                    raise self.error(tok, "unexpected ','" + (
                        "; only function calls take several arguments" if stack else ""))
                expect_operand = True
            elif kind in _STATEMENT_END:
                self.reduce_to_marker(stack, operands)
                if stack:
                    raise self.error(stack[-1][3], "'(' was never closed")
                return operands.pop()
            elif kind in ("number", "name", "("):
                raise self.error(tok, f"missing operator between {describe(prev)} and {describe(tok)}"
                                 + self.open_hint(stack, tok))
            elif kind == "=":
                raise self.error(tok, "unexpected '='; only a name can be assigned (name = expression)"
                                 + self.open_hint(stack, tok))
            else:  # pragma: no cover - every token kind is handled above
                raise self.error(tok, f"unexpected {describe(tok)}")
            prev = tok

    def reduce(self, stack: list, operands: list) -> None:
        """Pop one operator and apply it to the operands on top of the operand stack."""
        kind, _, opname, tok, _ = stack.pop()
        if kind == _NEG:
            operands[-1] = self.apply(tok, "neg", operands[-1])
        else:
            right = operands.pop()
            operands[-1] = self.apply(tok, opname, operands[-1], right)

    def apply(self, tok: Token, opname: str, *args, **attrs) -> int:
        """Build one operation; a shape or index error points at its operator."""
        try:
            return self.g.apply(opname, *args, **attrs)
        except (ShapeError, IndexError) as err:
            if opname == "matmul" and isinstance(err, ShapeError) and self.scalar_product(tok, args):
                return self.g.apply("mul", *args)  # lenient: metadata only (names, kind, wrt)
            located = error_at(self.text, tok, str(err)).args[0]
            raise (ShapeError if isinstance(err, ShapeError) else ExprcIndexError)(located) from None

    def reduce_to_marker(self, stack: list, operands: list) -> None:
        while stack and stack[-1][1] != _MARKER_PREC:
            self.reduce(stack, operands)

    def close(self, marker: tuple, operands: list) -> None:
        """A ')' closes `marker`: a plain parenthesis leaves its value; a call applies."""
        kind, _, payload, _, base = marker
        if kind == _PAREN:
            return
        op, tok, kwargs = payload
        args = operands[base:]
        del operands[base:]
        if tok.text in _TWO_ARGUMENT and len(args) == 2 and not kwargs:
            op = _ops.OPS[_TWO_ARGUMENT[tok.text]]
        if op.arity == _ops.VARIADIC:
            if not args:
                raise self.error(tok, f"{tok.text}() needs at least one argument")
        elif len(args) != op.arity:
            plural = "" if op.arity == 1 else "s"
            hint = (f"; pass options by keyword ({', '.join(k + '=...' for k, _ in op.keywords)})"
                    if op.keywords and len(args) > op.arity else "")
            raise self.error(tok, f"{tok.text}() takes {op.arity} argument{plural} ({len(args)} given){hint}")
        if op.keywords:
            self.check_options(tok, op, kwargs)
        if op.across and all(self.g.shape(a) == () for a in args):
            self.refuse_scalar_reduction(tok, args[0])
        operands.append(self.apply(tok, op.name, *args, **kwargs))

    def refuse_scalar_reduction(self, tok: Token, arg: int) -> None:
        """sum(x), mean(x), softmax(x)... of an undeclared (scalar) x: the user means a
        vector. Evaluated over a batch of points it would be a per-point (or per-block)
        reduction, a silently wrong number, so it is refused with the fix."""
        names = _inputs_of(self.g, arg)
        if self.lenient or not names or any(self.g.shape(self.g._inputs[n]) != () for n in names):
            return  # sum(2.5), sum(x[0]) of a declared x: no batch of points to confuse
        raise self.undeclared(tok, f"{tok.text}()", names, "it" if len(names) == 1 else "the vectors among them")

    def scalar_product(self, tok: Token, args) -> bool:
        """X @ w where X or w is an undeclared (scalar) input: the user means a matrix or
        a vector, which the first call's arrays will tell (UndeclaredShapes, as for a
        reduction). True where the parse is lenient: the product is taken as of numbers."""
        names = sorted({n for a in args if self.g.shape(a) == () for n in _inputs_of(self.g, a)
                        if self.g.shape(self.g._inputs[n]) == ()}, key=natural_key)
        if not names or self.lenient:
            return bool(names)
        raise self.undeclared(tok, tok.text, names, "the matrices and vectors")

    def undeclared(self, tok: Token, what: str, names: list, declare: str) -> UndeclaredShapes:
        """The refusal of `what` (a reduction, a product) of the undeclared inputs `names`."""
        one = len(names) == 1
        return UndeclaredShapes(error_at(self.text, tok, (
            f"{what} of a scalar: {', '.join(names)} {'is' if one else 'are'} not declared in shapes=, "
            f"so {'it is a scalar' if one else 'they are scalars'}; declare {declare}, "
            f"e.g. shapes={{{names[-1]!r}: ('n',)}} (--shape {names[-1]}=n on the command line)")).args[0])

    def index_of_scalar(self, tok: Token, var: int) -> ExprcIndexError:
        """x[0] of a scalar: most often an x the user forgot to declare in shapes=."""
        names = _inputs_of(self.g, var)
        hint = (f": {quote(names[0])} is not declared in shapes=, so it is a scalar; declare it, "
                f"e.g. shapes={{{quote(names[0])}: ('n',)}} (--shape {names[0][:24]}=n on the command line)"
                if len(names) == 1 and self.g.shape(self.g._inputs[names[0]]) == () else "")
        return ExprcIndexError(error_at(self.text, tok, f"[]: cannot index a scalar{hint}").args[0])

    def missing_operand(self, tok: Token, prev: Token | None, stack: list) -> ParseError:
        """The error for a token found where an operand (number, name, '(') should be."""
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

    def open_hint(self, stack: list, tok: Token) -> str:
        """When an error follows an unclosed '(' on an earlier line, say so: the
        real mistake is often the missing ')' (newlines inside '()' are ignored)."""
        for marker in reversed(stack):
            if marker[1] == _MARKER_PREC:
                paren = marker[3]
                if paren.line < tok.line:
                    return f" (is the '(' on line {paren.line}, column {paren.col} closed?)"
                return ""
        return ""
