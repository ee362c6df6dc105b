"""The evaluation trace (IR) and its builder, under one name for the rest of the package.

Where it sits: between the front ends and everything else. A front end (string
parser, SymPy bridge) or a pass builds a `Trace` through a `Builder`; the checker,
the printers, the passes and the backends read it. ``from exprcompiler.trace.ir
import ...`` gives every name of the modules that make it up, which keep one
purpose each:

* ir_trace.py: the immutable data, `Instr`, `Label`, `Trace`; Griewank numbering
  (`primal_labels`), `ancestors`, the naming of inputs and outputs;
* builder.py: the `Builder` (hash-consing, folding, identities, shapes, finishing),
  the input-size limit (`max_ops_limit`), `gc_paused`, `trace_from_builder`;
* builder_ops.py: the builder's per-op methods (``b.mul(x, y)``) and their scalar
  fast path;
* finish.py: what `Builder.finish` does (dead code, inputs first, renumbering,
  labels).
"""

from __future__ import annotations

from .builder import (BYTES_PER_OP, MAX_OPS_ENV, _LEAF_OR_COPY, Builder, gc_paused, max_ops_limit,
                      result_shape, trace_from_builder)
from .ir_trace import (OUTPUT_NAMES, Instr, Label, Trace, Var, _new_tuple, ancestors, natural_key,
                       output_names, primal_labels)

__all__ = ["BYTES_PER_OP", "MAX_OPS_ENV", "OUTPUT_NAMES", "Builder", "Instr", "Label", "Trace", "Var",
           "ancestors", "gc_paused", "max_ops_limit", "natural_key", "output_names", "primal_labels",
           "result_shape", "trace_from_builder",
           "_LEAF_OR_COPY", "_new_tuple"]   # (private, for passes/replay.py and the NumPy backend)
