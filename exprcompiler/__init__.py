"""exprcompiler: math expressions -> evaluation traces -> forward/reverse derivatives -> code.

    from exprcompiler import compile_grad
    g = compile_grad("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")
    value, (d_x1, d_x2) = g(1.5, 0.5)
"""

from .version import __version__  # noqa: E402,F401

from .errors import CompileError, ConversionError, ExprcError, ParseError, ShapeError, TraceError  # noqa: E402
from .api import compile_expr, compile_grad, compile_jvp, compile_vjp  # noqa: E402
from .gradcheck import check_grad  # noqa: E402
from .jacobians import compile_hessian, compile_hvp, compile_jacobian, explain  # noqa: E402
from .frontend import to_trace  # noqa: E402
from .trace import Trace, interpret, verify  # noqa: E402

__all__ = ["compile_grad", "compile_expr", "compile_jvp", "compile_vjp", "check_grad", "to_trace",
           "compile_hvp", "compile_hessian", "compile_jacobian", "explain",
           "Trace", "interpret", "verify", "ExprcError", "ParseError", "ConversionError",
           "ShapeError", "TraceError", "CompileError", "__version__"]
