"""The NumPy backend's renderer: two patterns of derivative code spelled more cheaply
than the op table's generic spelling, with the same numbers, bit for bit.

Where it sits: numpy_backend.generate renders a trace with it instead of the plain
trace.render.Renderer. A training step of a small network (the `mlp` bench's 64 → 32
→ 1 at batch 64) is a dozen NumPy calls on arrays of a few thousand numbers, where
each call's fixed cost is a good part of its time; these two are in every ReLU
network's gradient:

- A mask, a comparison used only as a factor of a product (relu's adjoint
  g * gt(x, 0.0)), is written `g * (x > 0.0)`: NumPy multiplies by the boolean array
  as by 0.0 and 1.0 (inf and NaN times False give NaN, as times 0.0), so one pass
  and one temporary fewer than runtime.gt's float mask. Not where the other factor
  may be a Python float (a constant, a seed such as v_bar = 1.0, or arithmetic on
  those only): a float times a boolean array is float64, which would turn a float32
  function's adjoints into float64; runtime.gt keeps the array's dtype.
- a sum over axes (a bias's adjoint, see numpy_backend._static_sums) is written
  np.add.reduce(x, axis=...): what np.sum calls for an array, a float or a NumPy
  scalar (the same loop, the same order, the same bits), without np.sum's Python
  layers (about 1 µs a call on this machine's NumPy 2.4). A sum of every element
  keeps np.sum, as the source readers and tests expect.
"""

from __future__ import annotations

from .. import ops as _ops
from ..tensor_rules import attr_text
from ..trace.ir import Trace
from ..trace.render import Renderer, Spelling, format_op

_COMPARISONS = frozenset(name for name, op in _ops.OPS.items() if op.prec == _ops.PREC_CMP)
_ELEMENTWISE_FLOAT = frozenset(("add", "sub", "mul", "div", "neg", "pow"))

# the comparison itself, in Python's infix form: `x > 0.0` (a boolean array)
_INFIX = Spelling(symbol=lambda op: op.infix, call=lambda op: op.numpy, const=repr,
                  as_call=lambda op: op.infix is None, target="numpy")


def may_be_python_float(trace: Trace) -> list[bool]:
    """Per variable: whether generated code can hold it as a Python float rather than an
    array or NumPy scalar of the function's dtype: constants, and +, -, *, /, ** of
    such values only (inputs are arrays, reductions and helpers return NumPy values)."""
    floaty = [False] * len(trace.instrs)
    for i, ins in enumerate(trace.instrs):
        if ins.op == "const":
            floaty[i] = True
        elif ins.op in _ELEMENTWISE_FLOAT or ins.op == "copy":
            floaty[i] = all(floaty[a] for a in ins.args)
    return floaty


class NumpyRenderer(Renderer):
    """trace.render.Renderer with masks as boolean comparisons and sums over axes
    as np.add.reduce (see the module docstring)."""

    def __init__(self, trace: Trace, spell: Spelling, name_of, named=None):
        self._floaty = may_be_python_float(trace)
        super().__init__(trace, spell, name_of, named=named)

    def _format(self, i: int) -> tuple[str, int]:
        ins = self.trace.instrs[i]
        if ins.op == "mul":
            mask = self._mask_arg(ins.args)
            if mask is not None:
                args = [self._boolean(a) if k == mask else self._expr[a] for k, a in enumerate(ins.args)]
                return format_op(_ops.OPS["mul"], args, self.spell)
        elif ins.op == "sum" and dict(ins.attrs).get("axis") is not None:
            attrs = dict(ins.attrs)
            items = [self._expr[ins.args[0]][0], f"axis={attr_text('axis', attrs['axis'])}"]
            if attrs.get("keepdims"):
                items.append("keepdims=True")
            return f"np.add.reduce({', '.join(items)})", _ops.PREC_ATOM
        return super()._format(i)

    def _mask_arg(self, args) -> int | None:
        """The position of the product's mask factor, or None."""
        instrs = self.trace.instrs
        masks = [k for k, a in enumerate(args) if instrs[a].op in _COMPARISONS and not self.named[a]]
        if len(masks) != 1:
            return None
        other = args[1 - masks[0]]
        if instrs[other].op in _COMPARISONS or self._floaty[other]:
            return None
        return masks[0]

    def _boolean(self, a: int) -> tuple[str, int]:
        ins = self.trace.instrs[a]
        return format_op(_ops.OPS[ins.op], [self._expr[b] for b in ins.args], _INFIX)


__all__ = ["NumpyRenderer", "may_be_python_float"]
