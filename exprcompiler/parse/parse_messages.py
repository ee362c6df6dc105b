"""The parser's messages: errors that locate, name and suggest.

Where it sits: in `parse` (text → tokens → Trace), the part of the parser
(parser.py's `_Parser`, which takes this class as a base) that says what is wrong
with a statement: a target that cannot be assigned, a name read before its
assignment, an unknown function (with a near miss), a missing operand or operator,
an unclosed '(', and the refusals of a reduction, a product or an index of
undeclared (scalar) inputs, with the shapes= declaration that fixes them. Nothing
here builds an operation but the lenient product (of numbers) that
`scalar_product` allows.
"""

from __future__ import annotations

from .. import ops as _ops
from ..errors import ExprcIndexError, ParseError, UndeclaredShapes
from ..trace.ir import Builder, ancestors, natural_key
from .constants import KEYWORD_VALUES, Tok
from .grammar import _ALIASES, _CALL, _CALLABLE, _MARKER_PREC
from .lexer import BAD, describe, quote

__all__ = ["Messages"]


def _inputs_of(b: Builder, var: int) -> list[str]:
    """The names of the inputs `var` depends on, in natural order."""
    return sorted((b.instrs[i].name for i in ancestors(b.instrs, var) if b.instrs[i].op == "input"),
                  key=natural_key)


class Messages:
    """The parser's errors (a base class of parser._Parser: it reads the parser's
    builder `g`, `known`, `free`, `lenient` and scanner)."""

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
    def function(self, name: str, at: int) -> _ops.OpDef:
        op = _ops.OPS[_ALIASES[name]] if name in _ALIASES else _ops.FUNCTIONS.get(name)
        if op is not None:
            return op
        message = f"unknown function {quote(name)}"
        # difflib is cheap for short names; a huge name is junk with no near miss.
        # (imported here, for a message: its import, a regex compiled, was ~0.3 ms of a
        # process's first parse)
        import difflib
        close = difflib.get_close_matches(name, _CALLABLE, n=1) if len(name) <= 64 else []
        if close:
            message += f" (did you mean '{close[0]}'?)"
        elif name in self.known or name in _ops.CONSTANTS:
            message += f"; to multiply, write {name}*(...)"
        raise self.error(at, message)

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
