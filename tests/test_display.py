"""Rich display (exprcompiler/display/): the tables of `g.trace_at`, `Trace`'s HTML,
LaTeX, the computational graph as SVG (Graphviz or the built-in layout), `explain()`'s
text and table, and the reprs of a training run. Every HTML and SVG output is parsed as
XML, so a missing escape or an unclosed tag fails here."""

from __future__ import annotations

import re
import shutil
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import sympy

from exprcompiler import compile_grad, explain
from exprcompiler.cli import main as exprc
from exprcompiler.display import graph, tables
from exprcompiler.display.graphs import Graph, builtin_svg
from exprcompiler.display.formulas import latex_name
from exprcompiler.errors import ExprcError
from exprcompiler.frontend import to_trace
from exprcompiler.trace.dot import graph_parts
from exprcompiler.trace.printer import trace_rows
from exprcompiler.trace.to_sympy import to_sympy

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
POINT = {"x1": 1.5, "x2": 0.5}
SVG = "{http://www.w3.org/2000/svg}"


def xml(text: str) -> ET.Element:
    """The element tree of an HTML or SVG fragment; a malformed one fails the test."""
    return ET.fromstring(text)


def html_tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, header, rows of cell texts) of every table in an HTML fragment."""
    out = []
    for t in xml(text).iter("table"):
        cap = t.find("caption")
        header = [th.text or "" for th in t.iter("th")]
        rows = [[td.text or "" for td in tr.findall("td")] for tr in t.find("tbody").findall("tr")]
        out.append(("" if cap is None else cap.text, header, rows))
    return out


def cli_out(capsys, *argv) -> str:
    capsys.readouterr()
    assert exprc(list(argv)) == 0
    return capsys.readouterr().out


# -- trace tables ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_trace_at_prints_as_exprc_trace(capsys, mode):
    g = compile_grad(GRIEWANK, mode=mode)
    shown = g.trace_at(x1=1.5, x2=0.5)
    printed = cli_out(capsys, "trace", GRIEWANK, "--at", "x1=1.5,x2=0.5", "--mode", mode)
    assert str(shown) + "\n" == printed
    assert repr(shown) == str(shown)            # the prompt shows the tables, not <object ...>
    assert str(g.trace_at(1.5, 0.5)) == str(shown)  # positional, as in a call


def test_trace_at_html_cells_are_the_printers(capsys):
    g = compile_grad(GRIEWANK)
    shown = g.trace_at(**POINT)
    found = html_tables(shown._repr_html_())
    assert [cap for cap, _, _ in found] == ["forward primal trace", "reverse adjoint trace"]
    for block, (_, header, rows) in zip(shown.blocks, found):
        assert header == ["variable", "definition", "arithmetic", "value"]
        expected = []
        for r in trace_rows(block.trace, block.values, show_line=block.show_line,
                            show_output=block.show_output):
            arith, _, value = r.tail.rpartition(" = ")
            expected.append([r.name, r.rhs, arith, value])
        assert rows == expected
    adjoint = {row[0]: row[-1] for row in found[1][2]}
    # the lecture's numbers (Griewank & Walther, ch. 1): x̄1 = 3.0118, x̄2 = -13.7239 as
    # the notes round their intermediates; exactly -13.72399...
    assert adjoint["x\u03041"] == "3.0118" and adjoint["x\u03042"] == "-13.7240"
    value, grad = g(**POINT)
    assert float(adjoint["x̄1"]) == pytest.approx(grad[0], abs=5e-5)
    assert float(adjoint["x̄2"]) == pytest.approx(grad[1], abs=5e-5)
    primal = {row[0]: row[-1] for row in found[0][2]}
    assert primal["v_2"] == "0.1411" and primal["v_4"] == "1.3513"


def test_forward_tables_show_the_tangent_of_each_seed():
    shown = compile_grad(GRIEWANK, mode="forward").trace_at(**POINT)
    found = html_tables(shown._repr_html_())
    dot = "\u0307"  # the tables' combining dot: ẋ1 is x, the mark, 1
    assert [cap for cap, _, _ in found][1:] == [f"forward tangent trace, seeds x{dot}1 = 1, x{dot}2 = 0",
                                                f"forward tangent trace, seeds x{dot}1 = 0, x{dot}2 = 1"]
    assert {r[0]: r[-1] for r in found[1][2]}[f"v{dot}_6"] == "3.0118"
    assert {r[0]: r[-1] for r in found[2][2]}[f"v{dot}_6"] == "-13.7240"


def test_trace_at_names_a_missing_input_or_a_bad_value():
    with pytest.raises(TypeError, match="x2"):
        compile_grad(GRIEWANK).trace_at(x1=1.0)
    with pytest.raises(TypeError, match="x2='abc' is not a number"):
        compile_grad(GRIEWANK).trace_at(x1=1.0, x2="abc")


def test_trace_html_without_values_and_with_tensor_shapes():
    found = html_tables(to_trace(GRIEWANK)._repr_html_())
    (_, header, rows), = found
    assert header == ["variable", "definition"]
    assert rows[0] == ["v_-1", "x1"] and rows[-1] == ["y", "v_6"]
    lsq = to_trace("r = X @ w - y; 0.5 * sum(r**2)", {"X": ("n", 3), "w": (3,), "y": ("n",)})
    (_, header, rows), = html_tables(lsq._repr_html_())
    assert header == ["variable", "shape", "definition"] and ["v_-1", "(3,)", "w"] in rows


def test_names_are_escaped_in_html():
    a, b = sympy.symbols("<script> a&b")
    g = compile_grad(sympy.sin(a) * b + a)
    text = g.trace_at(1.0, 2.0)._repr_html_()
    assert "<script" not in text and "&lt;script&gt;" in text and "a&amp;b" in text
    cells = [c for _, _, rows in html_tables(text) for row in rows for c in row]
    assert "<script>" in cells and "a&b" in cells


def test_a_large_trace_shows_its_size_and_first_rows(monkeypatch):
    monkeypatch.setattr(tables, "MAX_INSTRS", 300)  # the same path as 3000, in less time
    expr = " + ".join(f"sin(x{k % 7} * {k + 1})" for k in range(120))
    g = compile_grad(expr)
    assert len(g.primal.instrs) > tables.MAX_INSTRS
    shown = g.trace_at(**{f"x{k}": 0.1 * k for k in range(7)})
    text = shown._repr_html_()
    found = html_tables(text)
    assert [len(rows) for _, _, rows in found] == [tables.FIRST_ROWS] * 2
    assert f"{len(g.primal.instrs)} instructions" in text
    assert found[0][2][0] == ["v_-6", "x0", "", "0.0000"]
    for block, (_, _, rows) in zip(shown.blocks, found):  # the full table's first rows
        full_rows = trace_rows(block.trace, block.values, show_line=block.show_line)
        assert [r[0] for r in rows] == [r.name for r in full_rows[:tables.FIRST_ROWS]]
        assert [r[-1] for r in rows] == [r.tail.rpartition(" = ")[2] for r in full_rows[:tables.FIRST_ROWS]]
    assert len(repr(shown).splitlines()) < 2 * (tables.FIRST_ROWS + 3)
    full = str(shown)   # print() still gives every row
    assert len(full.splitlines()) > len(g.primal.instrs)
    big = to_trace(expr)._repr_html_()
    assert "instructions" in big and len(html_tables(big)[0][2]) == tables.FIRST_ROWS


def test_a_failing_display_shows_the_text_instead(monkeypatch):
    shown = compile_grad("x*y").trace_at(x=1.0, y=2.0)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(tables, "trace_rows", broken)
    text = shown._repr_html_()
    root = xml(f"<div>{text}</div>")
    assert "boom" in "".join(root.itertext()) and "v_1" in root.find("pre").text


# -- LaTeX -------------------------------------------------------------------------------

def test_latex_of_a_gradient_is_sympys_derivative():
    g = compile_grad(GRIEWANK)
    shown = g.latex()
    x1, x2 = sympy.symbols("x1 x2", real=True)
    f, = to_sympy(g.primal)
    assert [lhs for lhs, _ in shown.rows] == ["y", r"\frac{\partial y}{\partial x_{1}}",
                                              r"\frac{\partial y}{\partial x_{2}}"]
    for expr, exact in zip(shown.exprs, [f, sympy.diff(f, x1), sympy.diff(f, x2)]):
        for point in ({x1: 1.5, x2: 0.5}, {x1: -0.7, x2: 2.25}):  # equal as functions
            assert float(expr.evalf(subs=point)) == pytest.approx(float(exact.evalf(subs=point)), rel=1e-12)
    text = shown._repr_latex_()
    assert text.startswith("$$\\begin{aligned}") and text.endswith("\\end{aligned}$$")
    assert r"\sin{\left(\frac{x_{1}}{x_{2}} \right)}" in text


def test_latex_escapes_names():
    assert latex_name("x1") == "x_{1}" and latex_name("theta") == r"\theta"
    assert latex_name("a&b") == r"\mathtt{a\&b}"
    assert latex_name("<s>_{x}") == r"\mathtt{\lt{}s\gt{}\_\{x\}}"
    a, b = sympy.symbols("<script> a&b")
    text = str(compile_grad(sympy.sin(a) * b).latex())
    assert text.count("&") == text.count(r"\&") + text.count("&=")  # every other & escaped
    assert text.count("&=") == 3


def test_latex_refuses_tensors_with_a_clear_error():
    g = compile_grad("sum(w * w)", shapes={"w": (3,)})
    with pytest.raises(ExprcError, match="scalar"):
        g.latex()


# -- the computational graph --------------------------------------------------------------

def svg_boxes(root):
    """{first label line: (x, y)} of the built-in drawing's nodes."""
    out = {}
    for g in root.iter(f"{SVG}g"):
        spans = list(g.iter(f"{SVG}tspan"))
        out[spans[0].text] = (float(spans[0].get("x")), float(spans[0].get("y")))
    return out


def test_builtin_svg_draws_every_node_left_to_right(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    trace = to_trace(GRIEWANK)
    text = graph(GRIEWANK)._repr_svg_()
    assert text == builtin_svg(trace, title=GRIEWANK)
    root = xml(text)
    nodes, edges = graph_parts(trace)
    assert len(list(root.iter(f"{SVG}g"))) == len(nodes)
    assert len(list(root.iter(f"{SVG}polyline"))) == len(edges)
    at = svg_boxes(root)
    for a, b in [("v_-1", "v_1"), ("v_1", "v_2"), ("v_4", "v_5"), ("v_5", "v_6"), ("v_6", "y")]:
        assert at[a][0] < at[b][0]          # data flows left to right, one layer per step
    assert at["v_3"][0] == at["v_1"][0] < at["v_2"][0] == at["v_4"][0]  # longest-path layers
    assert len(root.findall(f"{SVG}title")) == 1 and graph(GRIEWANK).svg() == text  # deterministic


def test_the_adjoint_graph_fills_the_adjoints(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    root = xml(graph(compile_grad(GRIEWANK), mode="reverse").svg())
    labels = [[s.text for s in g.iter(f"{SVG}tspan")] for g in root.iter(f"{SVG}g")]
    bar = "\u0304"
    assert [f"v{bar}_6", f"y{bar}"] in labels   # the seed, named as the tables name it
    assert [f"x{bar}1"] in labels and [f"x{bar}2"] in labels
    fills = {r.get("fill") for r in root.iter(f"{SVG}rect")}
    assert "#fbe3d6" in fills


def test_svg_escapes_names(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    a, b = sympy.symbols("<script> a&b")
    text = graph(sympy.sin(a) * b + a, mode="reverse").svg()
    assert "<script" not in text and "&lt;script&gt;" in text and "a&amp;b" in text
    root = xml(text)
    words = {s.text for s in root.iter(f"{SVG}tspan")}
    assert {"<script>", "a&b", "<\u0304script>", "a\u0304&b"} <= words  # inputs and their adjoints


def test_a_graph_too_large_shows_its_size_and_first_rows():
    expr = " + ".join(f"x{k} * x{k + 1}" for k in range(300))
    shown = graph(expr)
    text = shown._repr_svg_()
    words = " ".join(xml(text).itertext())
    assert f"{shown.nodes} nodes" in words and "too large" in words and "v_-300 = x0" in words
    assert graph(expr, max_nodes=None).svg().count("<g>") == shown.nodes


def fake_dot(tmp_path, body: str) -> str:
    script = tmp_path / "dot"
    script.write_text(f"#!{sys.executable}\nimport sys\n{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def test_graphviz_draws_when_installed(tmp_path, monkeypatch):
    # a stand-in for dot: answers -Tsvg with an SVG document holding its input
    fake = fake_dot(tmp_path, "src = sys.stdin.read()\nassert sys.argv[1] == '-Tsvg'\n"
                    "print('<?xml version=\"1.0\"?><!DOCTYPE svg><svg><desc>' + str(len(src)) + '</desc></svg>')")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: fake if name == "dot" else None)
    shown = graph("x*y")
    assert shown._repr_svg_().strip() == f"<svg><desc>{len(shown.dot)}</desc></svg>"


def test_failing_graphviz_falls_back_to_the_builtin_picture(tmp_path, monkeypatch):
    fake = fake_dot(tmp_path, "sys.stderr.write('Error: no fonts'); sys.exit(3)")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: fake if name == "dot" else None)
    shown = graph("x*y")
    with pytest.raises(ExprcError, match="no fonts"):
        shown.svg()
    assert shown._repr_svg_() == builtin_svg(shown.trace, title="x*y")


def test_cli_graph_svg_without_graphviz(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    target = tmp_path / "g.svg"
    assert cli_out(capsys, "graph", GRIEWANK, "--mode", "reverse", "-o", str(target)) == ""
    root = xml(target.read_text(encoding="utf-8"))
    assert "x\u03042" in {s.text for s in root.iter(f"{SVG}tspan")}
    # without -o, the DOT text of the adjoint trace, its adjoints filled
    dot = cli_out(capsys, "graph", GRIEWANK, "--mode", "reverse")
    assert dot.startswith("digraph") and "fillcolor" in dot and "x\u03041" in dot


def test_graph_save(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    shown = graph("x*y")
    shown.save(tmp_path / "g.svg")
    shown.save(tmp_path / "g.dot")
    assert (tmp_path / "g.svg").read_text(encoding="utf-8") == shown.svg()
    assert (tmp_path / "g.dot").read_text(encoding="utf-8") == shown.dot
    with pytest.raises(ValueError, match=".svg, .dot"):
        shown.save(tmp_path / "g.png")


def test_graph_object_repr_and_bad_options():
    assert repr(graph("x*y")) == "<computational graph: 4 nodes, 3 edges>"
    with pytest.raises(ValueError, match="engine"):
        Graph(to_trace("x"), engine="neato")
    with pytest.raises(ValueError, match="mode"):
        graph("x*y", mode="sideways")


# -- explain ------------------------------------------------------------------------------

def test_explain_prints_as_text_and_shows_a_table():
    shown = explain(GRIEWANK)
    assert isinstance(shown, str) and repr(shown) == str(shown) == shown
    assert "\n" in shown and not repr(shown).startswith("'")
    assert shown.splitlines()[0].startswith("function: ")
    (_, header, rows), = html_tables(shown._repr_html_())
    assert header == ["trace", "operations", "note"]
    assert [r[0] for r in rows] == [r[0] for r in shown.rows]
    for (what, count, _), cells in zip(shown.rows, rows):
        assert f"{what}" in shown and cells[1] == str(count)
        assert re.search(rf"{re.escape(what)}\s+{count}\b", shown)
    assert compile_grad(GRIEWANK).explain() == shown


# -- training results ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    from exprcompiler.driver import logistic, train
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    return train(logistic(4), data=(X, y), epochs=12, batch=20, lr=0.5, validation=0.25, quiet=True)


def test_train_result_repr_is_short(trained):
    text = repr(trained)
    assert text.startswith("<TrainResult logistic") and "12 epochs" in text
    assert len(text) < 200 and "array" not in text and "\n" not in text
    assert str(trained).startswith("logistic")  # the summary print() gives is unchanged


def test_train_history_indexing_and_repr(trained):
    h = trained.history
    assert len(h) == 12 and repr(h).startswith("<TrainHistory: 12 epochs; last: loss ")
    assert h[0].epoch == 1 and h[-1].epoch == 12 and h[-1].loss == h.loss[-1]
    assert h[3] == h.rows()[3] and h[3].val_accuracy == h.val_accuracy[3]
    part = h[2:5]
    assert len(part) == 3 and list(part.epoch) == [3, 4, 5]
    assert [row.epoch for row in h][:2] == [1, 2]
    with pytest.raises(IndexError, match="12 epochs"):
        h[12]
    with pytest.raises(TypeError, match="columns are attributes"):
        h["loss"]


def test_train_html_has_the_curve_and_the_table(trained):
    pytest.importorskip("matplotlib")
    for text in (trained._repr_html_(), trained.history._repr_html_()):
        root = xml(text)
        assert root.find(f".//{SVG}svg") is not None or root.find(".//svg") is not None
        (_, header, rows), = html_tables(text)
        assert header[:3] == ["epoch", "loss", "accuracy"] and "val_loss" in header
        assert rows[0][0] == "1" and rows[-1][0] == "12" and ["..."] == rows[5][:1]


def test_train_html_without_matplotlib(trained, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    text = trained._repr_html_()
    root = xml(text)
    assert "needs matplotlib" in "".join(root.itertext()) and "svg" not in text
    assert len(html_tables(text)[0][2]) == 11   # 5 first epochs, "...", 5 last
    assert "needs matplotlib" in trained.history._repr_html_()
