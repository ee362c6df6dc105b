"""The computational graph of a trace: its nodes and edges (`graph_parts`), and that
graph in Graphviz DOT (`to_dot`). Inputs, operations and outputs are nodes, named v_k
as in the tables; data flow gives the edges. display/graph_svg.py draws the same parts
without Graphviz."""

from __future__ import annotations

from typing import NamedTuple

from .. import ops as _ops
from .ir import Trace
from .printer import decorate_output, label_text, table_spelling


class Node(NamedTuple):
    """One node: `key` (n3, out0), `shape` ("input", "const", "op" or "output"),
    `lines` of its label (v_3 and its operator), `kind` of its variable: "v" primal,
    "dot" tangent, "bar" adjoint (Label.kind), "" for constants and temporaries."""
    key: str
    shape: str
    lines: tuple
    kind: str = ""


def graph_parts(trace: Trace, *, ascii: bool = False) -> tuple[list[Node], list[tuple[str, str]]]:
    """(nodes, edges): every instruction and every output as a node in trace order,
    an edge (source key, target key) for each argument use, in order."""
    spell = table_spelling(ascii)
    nodes: list[Node] = []
    edges: list[tuple[str, str]] = []
    for i, ins in enumerate(trace.instrs):
        label = trace.labels[i]
        vname = label_text(label, ascii) if label is not None else f"t{i}"
        kind = label.kind if label is not None else ""
        if ins.op == "input":
            nodes.append(Node(f"n{i}", "input", (vname, decorate_output(ins.name, ascii)), kind))
        elif ins.op == "const":
            nodes.append(Node(f"n{i}", "const", (spell.const(ins.value),)))
        else:
            op = _ops.OPS[ins.op]
            sym = "=" if ins.op == "copy" else (op.name if op.infix is None else spell.symbol(op))
            nodes.append(Node(f"n{i}", "op", (vname, sym), kind))
        edges += [(f"n{a}", f"n{i}") for a in ins.args]
    for k, (out, v) in enumerate(trace.outputs):
        nodes.append(Node(f"out{k}", "output", (decorate_output(out, ascii),)))
        edges.append((f"n{v}", f"out{k}"))
    return nodes, edges


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_SHAPE = {"input": "ellipse", "const": "plaintext", "op": "box", "output": "doubleoctagon"}
# derivative nodes are filled, so the adjoint (or tangent) sweep stands out from the primal
_DOT_FILL = {"bar": "#fbe3d6", "dot": "#dbe9f6"}


def to_dot(trace: Trace, *, ascii: bool = False, name: str = "trace") -> str:
    nodes, edges = graph_parts(trace, ascii=ascii)
    into: dict[str, list[str]] = {}
    for src, dst in edges:
        into.setdefault(dst, []).append(src)
    lines = [f"digraph {name} {{", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for node in nodes:  # each node, then the edges into it (outputs come last)
        fill = f', style=filled, fillcolor="{_DOT_FILL[node.kind]}"' if node.kind in _DOT_FILL else ""
        lines.append(f"  {node.key} [shape={_DOT_SHAPE[node.shape]}, "
                     f"label={_quote(chr(10).join(node.lines))}{fill}];")
        lines += [f"  {src} -> {node.key};" for src in into.get(node.key, ())]
    lines.append("}")
    return "\n".join(lines) + "\n"
