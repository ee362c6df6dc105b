"""Trace -> Trace passes: simplify, forward (JVP) and reverse (VJP) differentiation,
and their compositions (HVP, Hessian, Jacobian)."""

from .forward import grad_forward, jvp, tangent_sweep
from .jacobian import hessian, hvp, jacobian
from .reverse import adjoint_sweep, grad_reverse, vjp
from .simplify import select, simplify, specialize

__all__ = ["jvp", "vjp", "grad_forward", "grad_reverse", "tangent_sweep", "adjoint_sweep",
           "hvp", "hessian", "jacobian", "select", "simplify", "specialize"]
