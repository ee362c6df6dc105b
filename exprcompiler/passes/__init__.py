"""Trace -> Trace passes: simplify, forward (JVP) and reverse (VJP) differentiation."""

from .forward import grad_forward, jvp, tangent_sweep
from .reverse import adjoint_sweep, grad_reverse, vjp
from .simplify import simplify, specialize

__all__ = ["jvp", "vjp", "grad_forward", "grad_reverse", "tangent_sweep", "adjoint_sweep",
           "simplify", "specialize"]
