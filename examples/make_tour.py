"""Writes examples/tour.ipynb, the notebook tour of exprcompiler, without outputs.

    python examples/make_tour.py            # rewrite the notebook from the cells below
    jupyter lab examples/tour.ipynb         # run it (pip install 'exprcompiler[notebook,plot,data]')

The notebook is generated so that its text lives in one reviewable Python file and the
stored .ipynb never carries outputs (cell ids are fixed, so the bytes are the same on
every run). tests/test_notebook.py checks that the stored notebook is this script's
output and runs it on a real kernel: it must succeed and print the lecture's numbers.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOUR = os.path.join(HERE, "tour.ipynb")

CELLS = [
    ("md", """\
# A tour of exprcompiler

exprcompiler turns a formula into its **evaluation trace** — the flat list of elementary
operations the lecture notes number `v_-1, v_0, v_1, …` (Griewank & Walther, ch. 1) —
differentiates that trace in **forward** mode (tangents `v̇`) or **reverse** mode
(adjoints `v̄`), and compiles the result to NumPy or C. This notebook walks through the
lecture's examples: the Griewank tables, forward and reverse mode, gradient checks,
gradient descent, and logistic regression against a two-layer network on digits."""),
    ("code", """\
from exprcompiler import check_grad, compile_grad, explain
from exprcompiler.display import graph

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
POINT = {"x1": 1.5, "x2": 0.5}"""),
    ("md", """\
## 1. The evaluation trace, with numbers

`compile_grad` records the function as a trace and builds its gradient in reverse mode.
`g.trace_at(...)` shows the lecture's tables at a point: the forward primal trace, then
the reverse adjoint trace that runs backwards from `v̄_6 = ȳ = 1` (`exprc trace` prints
the same tables in a terminal)."""),
    ("code", """\
g = compile_grad(GRIEWANK)
g.trace_at(**POINT)"""),
    ("md", "The computational graph of the trace (drawn by Graphviz when it is installed, otherwise by a built-in layout):"),
    ("code", "graph(g)"),
    ("md", "The function and the two partial derivatives that the generated code computes, as formulas:"),
    ("code", "g.latex()"),
    ("md", """\
## 2. Reverse mode: the value and the whole gradient in one sweep back

The compiled function returns the value and the gradient. The lecture's table rounds every
intermediate to four digits, so its last digit can differ from the exact values."""),
    ("code", """\
value, (d_x1, d_x2) = g(**POINT)
published = {"y": 2.0167, "∂y/∂x1": 3.0118, "∂y/∂x2": -13.7239}
print(f"{'':8}{'exprcompiler':>14}{'the notes':>12}")
for (name, notes), ours in zip(published.items(), (value, d_x1, d_x2)):
    print(f"{name:8}{ours:14.6f}{notes:12.4f}")"""),
    ("md", "The adjoint trace as a graph: the primal sweep on the left, the adjoints (filled) running back to `x̄1` and `x̄2`."),
    ("code", 'graph(g, mode="reverse")'),
    ("md", """\
## 3. Forward mode: one tangent sweep per input

In forward mode each sweep carries one direction: seeding `ẋ1 = 1, ẋ2 = 0` gives
`ẏ = ∂y/∂x1`, the second sweep `∂y/∂x2`. Same numbers, another cost: n sweeps for n inputs,
where reverse mode needs one sweep per output."""),
    ("code", """\
gf = compile_grad(GRIEWANK, mode="forward")
gf.trace_at(**POINT)"""),
    ("md", "What each derivative costs, in operations of its trace (the cheap-gradient principle bounds reverse mode by a small constant times the function):"),
    ("code", "explain(GRIEWANK)"),
    ("md", """\
## 4. Checking gradients

Central finite differences check a gradient to about 1e-10 (the error is O(δ²)). The
lecture's worked examples, computed here:"""),
    ("code", """\
print(f"Griewank example: largest relative difference from finite differences {check_grad(GRIEWANK, POINT):.1e}")
examples = [  # (function, point, the notes' value, the notes' derivatives)
    ("x**3 - 3*x", {"x": 1.0}, -2.0, (0.0,)),
    ("(x**2 + 1)**2", {"x": 1.0}, 4.0, (8.0,)),
    ("log(x1) + x1*x2 - sin(x2)", {"x1": 2.0, "x2": 5.0}, 11.652, (5.5, 1.716)),
    ("tanh(x)", {"x": 4.0}, 0.9993, (0.0013,)),
]
for expr, at, f_notes, d_notes in examples:
    f, grad = compile_grad(expr)(**at)
    print(f"{expr:28} f = {f:9.4f} (notes {f_notes:g}), gradient "
          + ", ".join(f"{d:.4f}" for d in grad) + f" (notes {', '.join(map(str, d_notes))}); "
          + f"check {check_grad(expr, at):.0e}")"""),
    ("md", """\
## 5. Gradient descent on |x| + (x − 5)²

Step 0.05, 150 steps, from 0 and from 10, as in the notes. The minimizer is 4.5, where
f'(x) = 1 + 2(x − 5) = 0 (the notes' "true minimum 4.545455" is an artifact of their grid)."""),
    ("code", """\
from exprcompiler.driver import minimize, plot_path

runs = {x0: minimize("abs(x) + (x - 5)**2", {"x": x0}, "gd", lr=0.05, maxiter=150, gtol=0, quiet=True)
        for x0 in (0.0, 10.0)}
for x0, r in runs.items():
    print(f"from x = {x0:4}: after {len(r.history) - 1} steps x = {r.x[0]:.6f}, f = {r.f:.6f}")"""),
    ("code", """\
from exprcompiler.driver.plots import have_matplotlib
if have_matplotlib():
    from IPython.display import SVG, display
    import io
    buf = io.StringIO()
    plot_path(runs[0.0]).savefig(buf, format="svg")
    display(SVG(buf.getvalue()))
else:
    print("the plot needs matplotlib: pip install 'exprcompiler[plot]'")"""),
    ("md", """\
## 6. Logistic regression against a two-layer network

The notes train on MNIST, odd against even digits: logistic regression (784 → 1) reaches
87.30% test accuracy and a network with 32 hidden ReLU units 92.40%. Here the same
comparison runs on the 8×8 digits that ship with scikit-learn (64 → 1 against
64 → 32 → 1), SGD with batch 64, step 0.1, 30 epochs, seed 0; exprcompiler differentiates
both loss programs."""),
    ("code", """\
from exprcompiler.driver import logistic, mlp, train
from exprcompiler.driver.data import load_digits

ds = load_digits("parity", seed=0)
print(ds)
results = {}
for model in (logistic(64), mlp([64, 32, 1])):
    results[model.name] = r = train(model, data=(ds.X_train, ds.y_train), optimizer="sgd", lr=0.1,
                                    epochs=30, batch=64, seed=0, quiet=True)
    print(f"{model.name:20} training accuracy {r.accuracy:.2%}, test accuracy {r.score(ds.X_test, ds.y_test):.2%}")
print("the notes (MNIST, odd/even, 5 epochs): logistic 87.30%, network 92.40% test accuracy")"""),
    ("md", "A training run shows its loss curve and its epochs; `r.history[k]` is one epoch."),
    ("code", """\
net = results["mlp 64→32→1 (relu)"]
net"""),
    ("code", "net.history[-1]"),
    ("md", """\
The network's loss is a program like any other: `print(mlp([64, 32, 1]).loss)` shows it,
and `exprc train` runs the same comparison from a terminal."""),
]


def build():
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    cells = [(new_markdown_cell if kind == "md" else new_code_cell)(source, id=f"tour-{k:02d}")
             for k, (kind, source) in enumerate(CELLS)]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nb


def text() -> str:
    import nbformat
    return nbformat.writes(build()) + "\n"


def main() -> int:
    with open(TOUR, "w", encoding="utf-8") as fh:
        fh.write(text())
    print(f"wrote {os.path.relpath(TOUR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
