"""The tour notebook, examples/tour.ipynb: stored without outputs and in step with its
generator (examples/make_tour.py), and run end to end on a real IPython kernel by
nbclient (the [notebook] extra): every cell must succeed, and the lecture's numbers
must appear in what it prints."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOUR = EXAMPLES / "tour.ipynb"
MISSING = [m for m in ("nbformat", "nbclient", "ipykernel") if importlib.util.find_spec(m) is None]
needs_jupyter = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed: "
                                   "pip install 'exprcompiler[notebook]' to run the tour notebook")


def _generator():
    spec = importlib.util.spec_from_file_location("make_tour", EXAMPLES / "make_tour.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tour_is_stored_without_outputs():
    nb = json.loads(TOUR.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 10
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for c in code:  # every cell is Python (no magics to hide a syntax error)
        compile("".join(c["source"]), "tour-cell", "exec")


@pytest.mark.skipif(importlib.util.find_spec("nbformat") is None, reason="nbformat not installed")
def test_the_tour_is_its_generators_output():
    assert TOUR.read_text(encoding="utf-8") == _generator().text(), \
        "examples/tour.ipynb is out of date: run python examples/make_tour.py"


def _kernel_for_this_interpreter(root: Path) -> None:
    """A `python3` kernelspec that starts this very interpreter (a venv's python, with
    exprcompiler importable), found first because JUPYTER_PATH comes first."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (exprcompiler tests)", "language": "python"}), encoding="utf-8")


def _texts(nb) -> str:
    """Everything the run printed or displayed as text."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append(o.text)
            elif o.output_type in ("execute_result", "display_data"):
                out += [str(o.data.get(k, "")) for k in ("text/plain", "text/html")]
    return "\n".join(out)


@needs_jupyter
@pytest.mark.slow
def test_the_tour_runs_and_prints_the_lectures_numbers(tmp_path, monkeypatch):
    import nbclient
    import nbformat
    _kernel_for_this_interpreter(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter") + os.pathsep + os.environ.get("JUPYTER_PATH", ""))
    nb = nbformat.read(str(TOUR), as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()   # raises CellExecutionError, with the cell and its traceback, on a failure
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    text = _texts(nb)

    # Griewank's tables (Griewank & Walther, ch. 1) and the comparison with the notes
    bar, dot = "\u0304", "\u0307"  # the tables' combining marks: v̄ is v and U+0304
    assert f"v{bar}_1  = v{bar}_1 + v{bar}_2 · cos(v_1)" in text and f"x{bar}1   = v{bar}_-1" in text
    for number in ("0.1411", "1.6487", "1.3513", "1.4924", "2.8437", "-4.6884", "1.5059", "3.0118"):
        assert number in text
    rows = dict(re.findall(r"^(y|∂y/∂x1|∂y/∂x2)\s+(\S+\s+\S+)$", text, re.M))
    assert set(rows) == {"y", "∂y/∂x1", "∂y/∂x2"}
    for ours, notes in (pair.split() for pair in rows.values()):
        assert abs(float(ours) - float(notes)) < 1.5e-4  # the notes round their intermediates
    assert rows["y"].split()[1] == "2.0167" and rows["∂y/∂x2"].split()[1] == "-13.7239"
    # the forward tangent trace: v̇_6 = 3.0118 with ẋ1 = 1
    assert re.search(rf"v{dot}_6 += v{dot}_5 · v_4 \+ v{dot}_4 · v_5 += 3\.0118", text)
    # gradient checks and the worked examples
    check = float(re.search(r"finite differences (\S+)", text).group(1))
    assert check < 1e-7
    assert "gradient 8.0000 (notes 8.0)" in text and "gradient 5.5000, 1.7163" in text
    assert "gradient 0.0013 (notes 0.0013)" in text
    # gradient descent: both starts end at the minimizer 4.5
    ends = [float(x) for x in re.findall(r"after 150 steps x = (\S+),", text)]
    assert len(ends) == 2 and all(abs(x - 4.5) < 1e-3 for x in ends)
    # digits: the README's 87.75% and 91.98% (one test example either way is 0.22%)
    acc = {m: float(a) for m, a in re.findall(r"^(logistic|mlp)\S* .*test accuracy (\S+)%$", text, re.M)}
    assert abs(acc["logistic"] - 87.75) < 0.25 and abs(acc["mlp"] - 91.98) < 0.25
    assert "87.30%" in text and "92.40%" in text
    # the rich displays reached the notebook
    kinds = {k for c in nb.cells for o in c.get("outputs", []) for k in o.get("data", {})}
    assert {"text/html", "text/latex", "image/svg+xml"} <= kinds
