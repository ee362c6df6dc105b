"""Front ends: user text (and, later, SymPy expressions) → Trace.

The string front end is `parse`: text → tokens (`lexer`) → Trace (`parser`),
built through the trace Builder. Nothing here evaluates user text.
"""

from ..errors import ParseError
from .parser import parse

__all__ = ["parse", "ParseError"]
