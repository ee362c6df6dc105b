"""The trace tables keep their columns (trace/printer.py, as `exprc trace` prints them):
on every row the name, the shape (tensor traces), the expression and the value start
at the same offsets, also when an expression is too long for its column (its value
then goes on the next line, under the others) and when names differ in width
(v_0 and v_-2, v̄_-1 with a combining mark)."""

from __future__ import annotations


from exprcompiler.cli import main as exprc
from exprcompiler.trace.printer import RHS_WIDTH

LONG = "arctan2(x1**x2, hypot(x1, x2)) * xlogy(x1, x2) + sin(x1/x2)"
LSQ = ["r = X @ w - y; 0.5 * sum(r**2)", "--shape", "X=n,3", "--shape", "w=3", "--shape", "y=n",
       "--at", "X=[[1,2,3],[4,5,6]],w=[1,0,-1],y=[1,2]"]


def _visible(line: str) -> str:
    """What a terminal shows: combining marks (v̄, v̇) take no column."""
    return "".join(c for c in line if c not in "\u0304\u0307")


def _tables(capsys, *argv) -> dict[str, list[str]]:
    assert exprc(list(argv)) == 0
    blocks = capsys.readouterr().out.strip().split("\n\n")
    return {b.splitlines()[0]: [_visible(line) for line in b.splitlines()[1:]] for b in blocks}


def _columns(lines: list[str]) -> tuple[set, set, set, int]:
    """The offsets, over all rows, of ' : ' (shape), of the first ' = ' (expression) and
    of the value's '=' (the second ' = ', or the '=' a continuation line starts with);
    and the number of continuation lines."""
    shape, rhs, value, continued = set(), set(), set(), 0
    for line in lines:
        if line.startswith(" "):  # a value under the others, after a long expression
            value.add(len(line) - len(line.lstrip()))
            continued += 1
            continue
        first = line.index(" = ")
        rhs.add(first)
        if " : " in line[:first]:
            shape.add(line.index(" : "))
        second = line.find(" = ", first + 3)
        if second >= 0:
            value.add(second + 1)
    return shape, rhs, value, continued


def test_a_long_tangent_row_keeps_the_value_column(capsys):
    tables = _tables(capsys, "trace", LONG, "--at", "x1=1.5,x2=0.5", "--mode", "both")
    tangent = [t for t in tables if t.startswith("forward tangent trace")]
    assert len(tangent) == 2
    for title in ["forward primal trace", "reverse adjoint trace", *tangent]:
        shape, rhs, value, _ = _columns(tables[title])
        assert not shape and len(rhs) == 1 and len(value) == 1, (title, rhs, value)
    _, _, _, continued = _columns(tables[tangent[0]])
    assert continued >= 2  # the test has long rows to align: v̇_1 and v̇_2 here
    lines = tables[tangent[0]]
    longest = max(len(line) - line.index(" = ") - 3 for line in lines if not line.startswith(" "))
    assert longest > RHS_WIDTH
    # each continuation line follows its row, and every row with a value shows it
    for k, line in enumerate(lines):
        if line.startswith(" "):
            assert k > 0 and not lines[k - 1].startswith(" ")
            assert lines[k - 1].count(" = ") == 1
            assert line.strip().startswith("= ") and line.strip()[2:]


def test_tensor_tables_align_the_name_and_shape_columns(capsys):
    tables = _tables(capsys, "trace", *LSQ, "--mode", "both")
    assert len(tables) == 5  # the primal, one tangent sweep for each of X, w, y, the adjoints
    for title, lines in tables.items():
        shape, rhs, value, _ = _columns(lines)
        assert len(shape) == 1 and len(rhs) == 1 and len(value) == 1, (title, shape, rhs, value)
        names = {line[:line.index(" : ")].rstrip() for line in lines}
        assert len({len(n) for n in names}) > 1, title  # names of different widths: v_0, v_-2
    primal = tables["forward primal trace"]
    assert primal[2] == "v_0  : (n,)   = y           = [1., 2.]"
    assert primal[-1] == "f    : ()     = v_5         = 12.5000"


def test_the_table_without_values_aligns_too():
    from exprcompiler import compile_grad
    g = compile_grad("0.5 * sum((X @ w - y)**2)", wrt=["w"], shapes={"X": ("n", 3), "w": (3,), "y": ("n",)})
    shape, rhs, value, continued = _columns([_visible(line) for line in str(g.trace).splitlines()])
    assert len(shape) == 1 and len(rhs) == 1 and not value and not continued


def test_jacobian_and_hessian_traces_print_with_their_entry_names():
    # outputs named y1.d.x (a Jacobian's entry, a Hessian's x.d.y) were a KeyError in the
    # printer, which knew only the dot and bar suffixes; they print as they are named
    from exprcompiler import compile_hessian, compile_jacobian
    from exprcompiler.trace.dot import to_dot
    from exprcompiler.trace.printer import decorate_output
    J = compile_jacobian(["sin(x*y)", "x + y"], wrt=["x", "y"])
    H = compile_hessian("sin(x*y)", wrt=["x", "y"])
    for trace, names in [(J.trace, ["y1.d.x", "y2.d.y"]), (H.trace, ["x.d.y", "x\u0304"])]:
        text = str(trace)
        assert all(name in text for name in names), text
        assert "digraph" in to_dot(trace)
    assert decorate_output("y.bar") == "y\u0304" and decorate_output("y.bar", ascii=True) == "y_bar"
    assert decorate_output("y1.d.x", ascii=True) == "y1.d.x"
