"""driver/plots.py draws off-screen (matplotlib.figure.Figure, no pyplot), so it runs
in CI and on a server: no window, and the caller's matplotlib backend and pyplot
state are left as they were. The files it writes (PNG through Agg) are checked in
test_driver_cli.py and test_train.py; the test extra includes matplotlib, so all of
these run in CI."""

from __future__ import annotations

import sys

import pytest

from exprcompiler.driver import minimize, plot_history, plot_path

mpl = pytest.importorskip("matplotlib")


def test_plots_never_touch_pyplot_or_the_callers_backend():
    # read raw: mpl.get_backend() would resolve an unset backend by importing pyplot
    backend = dict.__getitem__(mpl.rcParams, "backend")
    had_pyplot = "matplotlib.pyplot" in sys.modules
    one = minimize("(x - 1)**2", [3.0], "gd", lr=0.1, maxiter=20, quiet=True)
    two = minimize("(x - 1)**2 + (y + 2)**2", [0.0, 0.0], "adam", lr=0.1, maxiter=30, quiet=True)
    path = plot_path(one)
    history = plot_history({"gd": one, "adam": two})
    assert [t.get_text() for t in history.legends[0].get_texts()] == ["gd", "adam"]
    assert len(path.axes[0].lines) == 4  # f, the iterates, the start, the end
    assert dict.__getitem__(mpl.rcParams, "backend") is backend
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot
