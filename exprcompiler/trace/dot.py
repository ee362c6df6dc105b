"""The computational graph of a trace in Graphviz DOT: inputs, operations and
outputs as nodes (named v_k as in the tables), data flow as edges."""

from __future__ import annotations

from .. import ops as _ops
from .ir import Trace
from .printer import decorate_output, label_text, table_spelling


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(trace: Trace, *, ascii: bool = False, name: str = "trace") -> str:
    spell = table_spelling(ascii)
    lines = [f"digraph {name} {{", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    ids: dict[int, str] = {}
    for i, ins in enumerate(trace.instrs):
        label = trace.labels[i]
        vname = label_text(label, ascii) if label is not None else f"t{i}"
        node = f"n{i}"
        ids[i] = node
        if ins.op == "input":
            lines.append(f"  {node} [shape=ellipse, label={_quote(vname + chr(10) + ins.name)}];")
        elif ins.op == "const":
            lines.append(f"  {node} [shape=plaintext, label={_quote(spell.const(ins.value))}];")
        else:
            op = _ops.OPS[ins.op]
            sym = op.name if op.infix is None else spell.symbol(op)
            if ins.op == "copy":
                sym = "="
            lines.append(f"  {node} [shape=box, label={_quote(vname + chr(10) + sym)}];")
        for a in ins.args:
            lines.append(f"  n{a} -> {node};")
    for k, (out, v) in enumerate(trace.outputs):
        lines.append(f"  out{k} [shape=doubleoctagon, label={_quote(decorate_output(out, ascii))}];")
        lines.append(f"  {ids[v]} -> out{k};")
    lines.append("}")
    return "\n".join(lines) + "\n"
