"""`exprc train` and `exprc demo` end to end (exprcompiler/driver/train_cli.py, demo.py),
and the training examples in examples/. Plots are checked to be PNG files when
matplotlib is installed; without it, the one-line error a user gets is tested."""

import re
import runpy

import numpy as np
import pytest

from exprcompiler.driver.data import write_idx
from exprcompiler.driver.plots import have_matplotlib
from test_driver_cli import EXAMPLES, PNG, assert_one_line_error, needs_matplotlib, run  # the CLI helpers


def _have_sklearn() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


needs_sklearn = pytest.mark.skipif(not _have_sklearn(), reason="scikit-learn is not installed")


def table_rows(out: str) -> dict:
    """model name -> (train accuracy, test accuracy) from the comparison table."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(\S.*?)\s{2,}\S+ lr=\S+\s+\d+\s+([\d.]+)%\s+([\d.]+)%\s+[\d.]+s\s+[\d.]+ms$", line)
        if m:
            rows[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return rows


@needs_sklearn
def test_train_prints_the_comparison_table(capsys):
    rc, out, err = run(capsys, "train", "--epochs", "30", "--quiet")
    assert rc == 0, err
    rows = table_rows(out)
    assert list(rows) == ["logistic 64→1", "mlp 64→32→1 (relu)"], out
    assert rows["logistic 64→1"][1] >= 85 and rows["mlp 64→32→1 (relu)"][1] >= 90
    assert "1348 training and 449 test examples" in out and "87.30%" in out


@needs_sklearn
@needs_matplotlib
def test_train_writes_the_training_curves(capsys, tmp_path):
    path = tmp_path / "curves.png"
    rc, out, err = run(capsys, "train", "--model", "mlp", "--optimizer", "adam", "--epochs", "4",
                       "--patience", "2", "--plot", str(path), "--quiet")
    assert rc == 0, err
    assert f"wrote {path}" in out and list(table_rows(out)) == ["mlp 64→32→1 (relu)"]
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 1000


@pytest.mark.skipif(have_matplotlib(), reason="matplotlib is installed")
def test_train_plot_without_matplotlib_is_one_line(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "train", "--plot", str(tmp_path / "a.png")), "--plot needs matplotlib")


@needs_sklearn
def test_train_ten_classes_with_restarts(capsys):
    rc, out, err = run(capsys, "train", "--labels", "digit", "--model", "logistic", "--epochs", "3",
                       "--restarts", "2", "--validation", "0.2", "--quiet")
    assert rc == 0, err
    assert "softmax regression 64→10" in out and "best of 2 runs" in out
    assert "87.30%" not in out  # the notes' numbers are for odd/even


def test_train_on_mnist_idx_files(capsys, tmp_path):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 60), ("t10k", 20)):
        write_idx(str(tmp_path / f"{stem}-images-idx3-ubyte"), rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(str(tmp_path / f"{stem}-labels-idx1-ubyte"), rng.integers(0, 10, n, dtype=np.uint8))
    rc, out, err = run(capsys, "train", "--data", str(tmp_path), "--epochs", "2", "--batch", "16", "--quiet")
    assert rc == 0, err
    assert "MNIST (parity): 60 training and 20 test examples, 784 features" in out
    assert list(table_rows(out)) == ["logistic 784→1", "mlp 784→32→1 (relu)"]


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--model", "svm"], "--model: svm: use logistic, mlp"),
    (["train", "--hidden", "a,b"], "--hidden: 'a,b' is not a list of sizes"),
    (["train", "--data", "/nonexistent/mnist"], "not a folder"),
    (["train", "--optimizer", "newton"], "invalid choice"),
    (["train", "--epochs", "0"], "epochs must be a positive whole number"),
    (["demo", "--epochs", "0"], "--epochs must be 1 or more"),
])
def test_train_mistakes_are_one_line(capsys, argv, fragment):
    if "--data" not in argv and not _have_sklearn() and argv[0] == "train" and "--epochs" in argv:
        pytest.skip("scikit-learn is not installed")
    assert_one_line_error(*run(capsys, *argv), fragment)


@needs_sklearn
def test_demo_runs_the_tour(capsys):
    rc, out, err = run(capsys, "demo", "--epochs", "5")
    assert rc == 0, err
    for fragment in ("forward primal trace", "v_6  = v_5 · v_4", "reverse adjoint trace",
                     "x̄2   = v̄_0                   = -13.7240", "def f_grad(x1, x2):",
                     "x1_bar = v1_bar / x2", "central finite differences", "4.49999939", "4.50000075",
                     "mean(softplus(z) - y * z)", "87.30%"):
        assert fragment in out, fragment
    rows = table_rows(out)
    assert list(rows) == ["logistic 64→1", "mlp 64→32→1 (relu)"]
    checks = [float(x) for x in re.findall(r"largest relative difference (\S+)", out)]
    assert len(checks) == 2 and max(checks) < 1e-6


def test_demo_without_scikit_learn_skips_the_training(capsys, monkeypatch):
    import exprcompiler.driver.data as data

    def missing(*args, **kwargs):
        raise ImportError(data.MISSING_SKLEARN)
    monkeypatch.setattr(data, "load_digits", missing)
    from exprcompiler.driver import demo
    demo.training(3)
    out = capsys.readouterr().out
    assert out.startswith("skipped: the digits data set comes with scikit-learn")


@needs_sklearn
def test_examples_digits(capsys):
    results = runpy.run_path(str(EXAMPLES / "digits_logistic_vs_mlp.py"), run_name="example")["main"](
        ["--epochs", "10"])
    out = capsys.readouterr().out
    assert results["digit"]["mlp 64→32→10 (relu)"].accuracy >= 0.9
    assert list(table_rows(out)) == ["logistic 64→1", "mlp 64→32→1 (relu)", "softmax regression 64→10",
                                     "mlp 64→32→10 (relu)"]


def test_examples_least_squares(capsys):
    result = runpy.run_path(str(EXAMPLES / "least_squares.py"), run_name="example")["main"]()
    out = capsys.readouterr().out
    assert "def f_grad(" in out and "gradient check" in out
    assert result.steps == 500 and result.loss < result.history.loss[0] / 100
