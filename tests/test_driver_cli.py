"""`exprc minimize` end to end, the driver's plots, and the lecture examples in
examples/ (exprcompiler/driver/cli.py, plots.py). Plot tests are skipped when
matplotlib is not installed; the error a user then gets is tested instead."""

import runpy
from pathlib import Path

import numpy as np
import pytest

from exprcompiler.cli import main as exprc
from exprcompiler.driver import minimize, plot_history, plot_path
from exprcompiler.driver.plots import have_matplotlib

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG = b"\x89PNG\r\n\x1a\n"
needs_matplotlib = pytest.mark.skipif(not have_matplotlib(), reason="matplotlib is not installed")


def run(capsys, *argv):
    try:
        rc = exprc(list(argv))
    except SystemExit as exc:  # --help
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, out, err, fragment):
    assert rc == 2 and out == "", (rc, out, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("exprc: error: ") and fragment in err, err


def assert_png(path):
    data = Path(path).read_bytes()
    assert data.startswith(PNG) and len(data) > 1000


def test_minimize_prints_the_log_and_the_result(capsys):
    rc, out, err = run(capsys, "minimize", "abs(x) + (x - 5)**2", "--x0", "x=0", "--method", "adam",
                       "--lr", "0.05", "--steps", "150", "--quiet")
    assert rc == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0] == "minimize abs(x) + (x - 5)**2 with adam, lr = 0.05, maxiter = 150, from x = 0"
    assert lines[1].split() == ["iter", "f", "|grad|", "x"]
    assert lines[2].split() == ["0", "25", "10", "0"]
    assert lines[11].split()[0] == "150"
    assert "adam: stopped: reached maxiter = 150 iterations" in out
    r = minimize("abs(x) + (x - 5)**2", {"x": 0}, "adam", lr=0.05, maxiter=150)
    assert f"x = {r.x[0]:.10g}" in out


def test_minimize_gradient_descent_reaches_4_5(capsys):
    rc, out, _ = run(capsys, "minimize", "abs(x) + (x - 5)**2", "--x0", "x=10", "--method", "gd",
                     "--lr", "0.05", "--steps", "400", "--gtol", "1e-12", "--log", "0")
    assert rc == 0 and "x: x = 4.5\n" in out and "converged" in out
    assert out.splitlines()[1].startswith("gd: converged")  # --log 0: no iteration log


def test_minimize_options_data_and_several_variables(capsys):
    rc, out, _ = run(capsys, "minimize", "a*(x - 1)**2 + (y - x)**2", "--x0", "x=0,y=0", "--data", "a=3",
                     "--method", "gd", "--linesearch", "armijo", "--lr", "1", "--gtol", "1e-8", "--log", "3")
    assert rc == 0 and "converged" in out
    assert out.splitlines()[1].split() == ["iter", "f", "|grad|", "x", "y"]
    rc, out, _ = run(capsys, "minimize", "(1 - x)**2 + 100*(y - x**2)**2", "--x0", "x=-1.2,y=1",
                     "--method", "newton", "--linesearch", "none")
    assert rc == 0 and "newton: converged" in out and "x = 1, y = 1" in out


@pytest.mark.parametrize("argv, fragment", [
    (["x**2"], "minimize needs a start point: --x0"),
    (["x**2", "--x0", "z=1"], "x0: z is not a variable of the expression (variables: x)"),
    (["x**2", "--x0", "x=one"], "--x0: 'one' is not a number"),
    (["x**2", "--x0", "x=1", "--method", "sgd"], "argument --method: invalid choice: 'sgd'"),
    (["x**2", "--x0", "x=1", "--method", "gd", "--beta", "0.5"], "gd has no option 'beta'"),
    (["x**2", "--x0", "x=1", "--method", "adam", "--lr", "-1"], "adam: option lr must be > 0"),
    (["x**2 +", "--x0", "x=1"], "parse error"),
    (["log(x)", "--x0", "x=-1"], "not finite at x0"),
    (["x*a", "--x0", "x=1"], "no value for a"),
])
def test_minimize_user_errors_are_one_line(capsys, argv, fragment):
    assert_one_line_error(*run(capsys, "minimize", *argv), fragment)


def test_minimize_divergence_is_reported_not_raised(capsys):
    rc, out, err = run(capsys, "minimize", "x**2", "--x0", "x=1", "--method", "gd", "--lr", "1.5")
    assert rc == 0 and err == ""
    assert "gd: diverged at iteration 512 (step too large?)" in out


def test_minimize_help_lists_methods_and_options(capsys):
    rc, out, _ = run(capsys, "minimize", "--help")
    assert rc == 0
    for text in ("--linesearch", "--beta1", "--cg-maxiter", "adam: Adam with bias correction", "lbfgs"):
        assert text in out


@needs_matplotlib
def test_minimize_plot_one_variable_and_two(capsys, tmp_path):
    path = tmp_path / "path.png"
    rc, out, err = run(capsys, "minimize", "abs(x) + (x - 5)**2", "--x0", "x=0", "--method", "adam",
                       "--lr", "0.05", "--steps", "150", "--plot", str(path))
    assert rc == 0, err
    assert f"wrote {path}" in out
    assert_png(path)
    path2 = tmp_path / "history.png"
    rc, _, err = run(capsys, "minimize", "(1 - x)**2 + 100*(y - x**2)**2", "--x0", "x=-1.2,y=1",
                     "--plot", str(path2))
    assert rc == 0, err
    assert_png(path2)


@pytest.mark.skipif(have_matplotlib(), reason="matplotlib is installed")
def test_minimize_plot_without_matplotlib_is_one_line(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "minimize", "x**2", "--x0", "x=1", "--plot", str(tmp_path / "p.png")),
                          "--plot needs matplotlib")
    with pytest.raises(ImportError, match="pip install 'exprcompiler\\[plot\\]'"):
        plot_history(minimize("x**2", [1.0]))


@needs_matplotlib
def test_plot_functions_return_figures_and_check_their_input(tmp_path):
    one = minimize("x*cos(4*x) + 2*abs(x)", [-3.5], "gd", lr=0.05, maxiter=40)
    fig = plot_path(one, tmp_path / "one.png", lo=-4, hi=1)
    assert fig.axes[0].get_xlabel() == "x"
    assert_png(tmp_path / "one.png")
    two = minimize("(1 - x)**2 + 100*(y - x**2)**2", [-1.2, 1.0])
    with pytest.raises(ValueError, match="one variable"):
        plot_path(two)
    fig = plot_history({"L-BFGS": two, "Newton": minimize("(1 - x)**2 + 100*(y - x**2)**2", [-1.2, 1.0], "newton")})
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["L-BFGS", "Newton"]


# -- the lecture examples ---------------------------------------------------------------

def example(name):
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")["main"]


def test_example_abs_quadratic_reaches_4_5_from_both_sides(capsys):
    runs = example("gd_abs_quadratic")([])
    out = capsys.readouterr().out
    for x0, r in runs.items():
        assert abs(r.x[0] - 4.5) < 1e-6 and r.iterations == 150
        assert (r.x[0] < 4.5) == (x0 < 4.5)  # monotone from each side: 0.9x + 0.45
    assert runs[0.0].history.x[1, 0] == 0.5  # the subgradient 0 at the kink
    assert "the minimizer is 4.5 exactly" in out


def test_example_step_size_oscillation_and_local_minima(capsys):
    runs = example("gd_step_size")([])
    tail = runs["oscillating"].history.x[-6:, 0]
    np.testing.assert_allclose(tail[::2], tail[0], rtol=1e-9)   # a 2-cycle
    np.testing.assert_allclose(tail[1::2], tail[1], rtol=1e-9)
    assert abs(tail[0] - tail[1]) > 0.3
    ends = {x0: round(float(runs[x0].x[0]), 4) for x0 in (-3.5, -2.5, -2.0, -1.0)}
    assert ends == {-3.5: -3.1215, -2.5: -3.1215, -2.0: -1.5292, -1.0: -1.5292}
    assert abs(runs[-0.5].x[0]) < 5e-3  # the kink at 0, the global minimum
    assert "2-cycle" in capsys.readouterr().out


def test_example_vanishing_gradient(capsys):
    runs = example("vanishing_gradient")([])
    out = capsys.readouterr().out
    assert "f'(4) = 0.001341" in out
    assert abs(runs[4.0].x[0] - 4.0) < 0.03 and abs(runs[0.0].x[0]) > 2


@pytest.mark.slow  # (CI runs it with -m slow; the README's run stays under 3 minutes)
def test_example_rosenbrock_every_optimizer(capsys):
    results = example("rosenbrock_optimizers")([])
    out = capsys.readouterr().out
    methods = {r.method for r in results.values()}
    from exprcompiler.driver import METHODS
    assert methods == set(METHODS)
    for label, r in results.items():
        if r.converged:
            assert np.linalg.norm(r.x - 1) < 1e-5, label
    assert {r.method for r in results.values() if r.converged} >= {"gd", "momentum", "nesterov", "adam",
                                                                  "coordinate", "newton", "newton-cg", "lbfgs"}
    assert out.count("\n") == len(results) + 3


@needs_matplotlib
def test_examples_write_plots(capsys, tmp_path):
    example("gd_abs_quadratic")(["--plot", str(tmp_path)])
    assert_png(tmp_path / "gd_abs_quadratic_from_0.png")
    assert_png(tmp_path / "gd_abs_quadratic_from_10.png")
