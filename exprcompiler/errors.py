"""Errors raised anywhere in the pipeline; all derive from `ExprcError`.

The CLI catches `ExprcError` and prints `err.one_line()`; the Python API lets it
propagate so callers see the full message (with a caret for parse errors).
"""

from __future__ import annotations


class ExprcError(Exception):
    """Base class of every error exprcompiler raises on purpose."""

    def one_line(self) -> str:
        return str(self).splitlines()[0] if str(self) else type(self).__name__


class ParseError(ExprcError, ValueError):
    """Malformed expression text: carries the line, the column and the source line."""

    def __init__(self, message: str, line: int = 1, col: int = 1, source_line: str = ""):
        self.message = message
        self.line = line
        self.col = col
        self.source_line = source_line
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"line {self.line}, column {self.col}: {self.message}"
        if not self.source_line:
            return head
        shown = self.source_line
        caret = self.col - 1
        if len(shown) > 120:  # keep a window around the caret for long inputs
            start = max(0, caret - 60)
            shown = ("..." if start else "") + shown[start:start + 120] + "..."
            caret = caret - start + (3 if start else 0)
        return f"{head}\n  {shown}\n  {' ' * caret}^"

    def one_line(self) -> str:
        return f"parse error at line {self.line}, column {self.col}: {self.message}"


class ConversionError(ExprcError, TypeError):
    """A SymPy expression uses a node exprcompiler cannot translate."""


class ShapeError(ExprcError, ValueError):
    """Shapes of operands or arguments do not agree."""


class UndeclaredShapes(ShapeError):
    """A reduction reads inputs that shapes= does not declare. compile_* of text then
    waits for the first call, whose arrays give the shapes (see shapes_at_call.py)."""


class TraceError(ExprcError, ValueError):
    """A trace is malformed (found by `verify`) or an op is misused while building."""


class CompileError(ExprcError, RuntimeError):
    """A backend could not turn a trace into a callable."""


class ExprcIndexError(ExprcError, IndexError):
    """A constant index is out of range (x[5] on a vector of 3)."""


class InvalidNameError(ExprcError, ValueError):
    """A name the user chose for something generated (an exported C function) cannot
    be used: not an identifier, or one the language or its headers already take."""


class InputTooLarge(ExprcError, ValueError):
    """An expression needs more operations than the input-size limit allows (see
    trace.ir.max_ops_limit): refused early, before it fills the machine's memory."""
