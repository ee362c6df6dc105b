"""The evaluation trace (IR): builder, checker, reference interpreter, printer."""

from .check import interpret, verify
from .ir import Builder, Instr, Label, Trace

__all__ = ["Builder", "Instr", "Label", "Trace", "interpret", "verify"]
