"""exprcompiler: math expressions -> evaluation traces -> forward/reverse derivatives -> code.

    from exprcompiler import compile_grad
    g = compile_grad("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))")
    value, (d_x1, d_x2) = g(1.5, 0.5)
"""

from .version import __version__  # noqa: E402,F401

from .errors import CompileError, ConversionError, ExprcError, ParseError, ShapeError, TraceError  # noqa: E402
from .api import compile_expr, compile_grad, compile_jvp, compile_vjp  # noqa: E402
from .frontend import to_trace  # noqa: E402
from .trace import Trace, interpret, verify  # noqa: E402

# Imported when first asked for (PEP 562): the Jacobians' module brings the C backend's
# entry points (dense_point, c_entry: hashlib with OpenSSL, sysconfig), ~3.5 ms of
# `import exprcompiler` that compile_grad and its calls never use.
_LAZY = {"check_grad": "gradcheck", "compile_hessian": "jacobians", "compile_hvp": "jacobians",
         "compile_jacobian": "jacobians", "explain": "jacobians"}


def __getattr__(name: str):
    module = _LAZY.get(name, name if name in _LAZY_MODULES else None)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module
    imported = import_module(f".{module}", __name__)   # (which sets the module's own attribute here)
    value = globals()[name] = imported if name in _LAZY_MODULES else getattr(imported, name)
    return value


_LAZY_MODULES = frozenset(_LAZY.values())   # (exprcompiler.jacobians without its import, as before)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["compile_grad", "compile_expr", "compile_jvp", "compile_vjp", "check_grad", "to_trace",
           "compile_hvp", "compile_hessian", "compile_jacobian", "explain",
           "Trace", "interpret", "verify", "ExprcError", "ParseError", "ConversionError",
           "ShapeError", "TraceError", "CompileError", "__version__"]
