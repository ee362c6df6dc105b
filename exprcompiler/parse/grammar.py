"""The string language's tokens as the parser tells them apart: operators, names, markers.

Where it sits: in `parse` (text → tokens → Trace), the tables the parser's
expression loop (parser.py) and its messages (parse_messages.py) read: which token
is an operator and how tightly it binds, which names are functions under another
name, which tokens end a statement or cannot be assigned, and the codes of the
tokens a statement's form keeps (plans.py, window_forms.py). The precedence numbers
are the op table's (ops.PREC_*), the same ones the printer uses.
"""

from __future__ import annotations

from .. import ops as _ops
from .constants import KEYWORD_VALUES
from .lexer import BAD, EOF, NEWLINES
from .plans import form_tokens
from .window_forms import codes_of

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
# hypot and logaddexp of 3 or more arguments (as Python's math.hypot): the three-argument op,
# then one more op per two arguments more, as the stability rewrites chain them
_MANY_ARGUMENTS = {"hypot": "hypot3", "logaddexp": "logaddexp3"}
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
