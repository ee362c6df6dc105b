"""What the command line gives, as values: EXPR (an argument, a file or stdin),
--at points and --shape declarations; and `UserError`, a mistake in the command
line itself. `cli` (and the driver's commands) read their inputs through these; the
expression then goes to the front end (frontend.to_trace) like any other.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Optional, Sequence, Union

import numpy as np

from .shapes import shown, user_int


class UserError(Exception):
    """A mistake in the command line itself."""


DTYPES = ("float64", "float32")  # what compile_*(dtype=...) takes (exprcompiler.dtypes)


def add_dtype_flag(parser) -> None:
    """--dtype on a command that compiles a function: passed on as compile_*(dtype=...)."""
    parser.add_argument("--dtype", choices=DTYPES, default=DTYPES[0],
                        help="the element type the compiled function computes in: float64 (the "
                        "default) or float32 (float kernels in C, float32 arrays in NumPy)")


def _read_expr(args) -> str:
    if args.file:
        if args.expr not in (None, "-"):
            raise UserError("give EXPR or -f FILE, not both")
        try:
            with open(args.file, encoding="utf-8-sig") as fh:  # -sig: a BOM is not text
                return _bounded(fh, _path(args.file))
        except OSError as err:
            raise UserError(f"cannot read {_path(args.file)}: {err.strerror}") from None
        except UnicodeDecodeError as err:
            raise UserError(f"cannot read {_path(args.file)}: not UTF-8 text (byte {err.start})") from None
    if args.expr is None or args.expr == "-":
        try:
            if sys.stdin is None or sys.stdin.isatty():
                raise UserError("no expression: give EXPR, -f FILE, or pipe it on stdin")
            return _bounded(sys.stdin, "standard input")
        except UnicodeDecodeError as err:
            raise UserError(f"cannot read standard input: not UTF-8 text (byte {err.start})") from None
        except (OSError, ValueError) as err:  # closed, or not readable (a directory, ...)
            raise UserError(f"cannot read standard input: {getattr(err, 'strerror', None) or err}") from None
    return args.expr


# Characters of input allowed per operation of the front end's input-size limit
# (trace.builder.max_ops_limit): generated text of 10^6 operations holds ~15 per operation.
CHARS_PER_OP = 64


def _bounded(fh, what: str) -> str:
    """All of `fh`'s text, or a UserError once it holds more than any expression within
    the input-size limit could: an endless source (/dev/zero, a runaway pipe) is refused
    after a bounded read, not read until memory runs out."""
    from .trace.builder import max_ops_limit   # (its EXPRCOMPILER_MAX_OPS raises the bound too)
    limit = CHARS_PER_OP * max_ops_limit()
    text = fh.read(limit + 1)
    if len(text) > limit:
        raise UserError(f"{what} holds more than {limit:,} characters, more than an expression within "
                        f"the input-size limit can have (set EXPRCOMPILER_MAX_OPS to raise it)")
    return text


def _path(path: str) -> str:
    """A file name as a message shows it: quoted when it holds a newline or another
    character that would break the one-line message."""
    return path if path.isprintable() else shown(path, 200)


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets: "w=[1,2],x=3" -> ["w=[1,2]", "x=3"]."""
    items, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            items.append(text[start:k])
            start = k + 1
    items.append(text[start:])
    return [i.strip() for i in items if i.strip()]


def _parse_at(text: Union[None, str, Sequence[str]]) -> Optional[dict]:
    """name=number pairs; a tensor is a bracketed list, w=[1,2,3] or X=[[1,2],[3,4]].
    `text` may be a list, one entry per --at on the command line: `--at x=1 --at y=2`
    is `--at x=1,y=2` (argparse would otherwise keep only the last), and a name given
    twice, in one --at or across them, is refused rather than silently overwritten."""
    if text is None:
        return None
    items = _split_top(text) if isinstance(text, str) else [i for t in text for i in _split_top(t)]
    point: dict = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UserError(f"--at: expected name=value, got {shown(item)}")
        if name.strip() in point:
            raise UserError(f"--at: {name.strip()} is given twice")
        try:
            if value.strip().startswith("["):
                data = json.loads(value, parse_float=_finite)  # data, never code
                if not _numbers_only(data):  # (NumPy would read "1" and true as numbers)
                    raise ValueError
                point[name.strip()] = np.array(data, dtype=float)
            else:
                point[name.strip()] = _finite(value)
        except _PastRange as err:
            raise UserError(f"--at: {shown(str(err).strip())} is past float64's range (at most about 1.8e308; "
                            f"an infinity is written inf) (for {name.strip()})") from None
        except (ValueError, TypeError, RecursionError):  # (json recurses on nesting)
            what = "a list of numbers" if value.strip().startswith("[") else "a number"
            raise UserError(f"--at: {shown(value.strip())} is not {what} (for {name.strip()})") from None
        except OverflowError:  # an integer of JSON past float64's range
            raise UserError(f"--at: {shown(value.strip())} holds an integer too large for a float64 "
                            f"(for {name.strip()})") from None
    return point


class _PastRange(ArithmeticError):
    """A decimal number that float() rounds to an infinity (1e999, or 400 digits)."""


_INFINITIES = {"inf", "infinity"}


def _finite(text: str) -> float:
    """float(text), except that a number too large for a float64 is refused rather than
    read as an infinity (which the user did not write): only inf, infinity (any case,
    signed; JSON's Infinity comes through parse_constant) are infinite."""
    value = float(text)
    if math.isinf(value) and text.strip().lstrip("+-").lower() not in _INFINITIES:
        raise _PastRange(text)
    return value


def _numbers_only(data) -> bool:
    """Whether the JSON value `data` is numbers in nested lists (no strings, booleans,
    nulls or objects), walked without recursion."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return False
    return True


def _parse_shapes(items: Optional[list]) -> dict:
    """--shape X=n,3 (repeatable): a dimension is a number or a name bound at call time."""
    shapes: dict = {}
    for item in items or ():
        name, eq, dims = item.partition("=")
        if not eq or not name.strip() or not dims.strip():
            raise UserError(f"--shape: expected NAME=DIMS such as X=n,3, got {shown(item)}")
        shapes[name.strip()] = tuple(_dim(d.strip(), item) for d in dims.split(","))
    return shapes


def _dim(text: str, item: str):
    """One dimension of --shape: a size (checked digits, never int() on 5000 of them)
    or a name, which shapes.check_declared then vets."""
    if not (text.isascii() and text.isdigit()):
        return text
    size = user_int(text)
    if size is None:
        raise UserError(f"--shape: dimension {shown(text)} is too large (in {shown(item)})")
    return size
