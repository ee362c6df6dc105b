"""Pictures of a run: `plot_history` (f and ‖∇f‖ per iteration, several runs side by
side) and `plot_path` (a one-variable f with the iterates on it, as the notes draw
gradient descent on |x| + (x − 5)²).

Part of the driver (see driver/__init__.py); reads driver/result.Result. matplotlib is
an optional extra (`pip install 'exprcompiler[plot]'`), imported only here and only
when a plot is asked for. Figures are built with `matplotlib.figure.Figure`, not
pyplot, so plotting never switches the caller's backend or opens a window; each
function returns the Figure and writes it to `path` when given.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import numpy as np

from .result import Result

MISSING = "plotting needs matplotlib, which is not installed (pip install 'exprcompiler[plot]')"


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(ncols: int, height: float = 4.0):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(MISSING) from None
    fig = Figure(figsize=(5.5 * ncols, height), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]


def _colored(runs) -> list:
    """((label, result), color) per run: tab10, or tab20 past ten runs, cycled."""
    from matplotlib import colormaps
    colors = colormaps["tab10" if len(runs) <= 10 else "tab20"].colors
    return list(zip(runs, colors * (1 + len(runs) // len(colors))))


def _save(fig, path: Optional[str]):
    if path is not None:
        fig.savefig(path)
    return fig


def _runs(results) -> list[tuple[str, Result]]:
    if isinstance(results, Result) or hasattr(results, "epochs"):  # a Result or a TrainResult
        return [(results.method, results)]
    if isinstance(results, Mapping):
        return [(str(k), r) for k, r in results.items()]
    return [(r.method, r) for r in results]


def plot_history(results: Union[Result, Sequence[Result], Mapping[str, Result]],
                 path: Optional[str] = None):
    """f and ‖∇f‖ against the iteration, one line per run (a dict gives the labels;
    otherwise the method names). f is on a log scale when every value is positive.
    Training results (train()) give their loss and accuracy per epoch instead."""
    runs = _runs(results)
    if not runs:
        raise ValueError("plot_history: no results to plot")
    if all(hasattr(r, "epochs") for _, r in runs):
        return _plot_training(runs, path)
    fig, (ax_f, ax_g) = _figure(2, 4.0 + 0.2 * len(runs) / 3)
    for (label, r), color in _colored(runs):
        ax_f.plot(np.arange(len(r.history)), r.history.f, label=label, color=color)
        ax_g.plot(np.arange(len(r.history)), r.history.grad_norm, color=color)
    if all((r.history.f > 0).all() for _, r in runs):
        ax_f.set_yscale("log")
    if all((r.history.grad_norm > 0).all() for _, r in runs):
        ax_g.set_yscale("log")
    if max(len(r.history) for _, r in runs) > 200:
        # runs of 30 and of 30,000 iterations side by side: both visible
        for ax in (ax_f, ax_g):
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(left=0)
    ax_f.set(xlabel="iteration", ylabel="f", title="objective")
    ax_g.set(xlabel="iteration", ylabel="‖∇f‖", title="gradient norm")
    fig.legend(loc="outside lower center", ncols=min(3, len(runs)), fontsize="small")
    return _save(fig, path)


def _plot_training(runs, path):
    """Training curves (driver/train.TrainResult): the loss and the accuracy per epoch,
    training solid and validation dashed, one color per run."""
    fig, (ax_l, ax_a) = _figure(2, 4.0 + 0.2 * len(runs) / 3)
    for (label, r), color in _colored(runs):
        h = r.history
        ax_l.plot(h.epoch, h.loss, color=color, label=f"{label}: training")
        ax_a.plot(h.epoch, h.accuracy, color=color)
        if np.isfinite(h.val_loss).any():
            ax_l.plot(h.epoch, h.val_loss, "--", color=color, label=f"{label}: validation")
            ax_a.plot(h.epoch, h.val_accuracy, "--", color=color)
        if r.stopped_early or r.best_epoch != r.epochs:
            ax_l.axvline(r.best_epoch, color=color, lw=0.6, ls=":")
    ax_l.set(xlabel="epoch", ylabel="loss", title="loss (mean over the examples)")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    fig.legend(loc="outside lower center", ncols=min(3, 2 * len(runs)), fontsize="small")
    return _save(fig, path)


def plot_path(result: Result, path: Optional[str] = None, *, lo: Optional[float] = None,
              hi: Optional[float] = None, points: int = 400):
    """f over [lo, hi] (default: the iterates' range, widened by a quarter on each
    side) with the iterates x_0, x_1, ... on it. Only for one variable."""
    if len(result.wrt) != 1:
        raise ValueError(f"plot_path draws functions of one variable; this run has "
                         f"{len(result.wrt)} ({', '.join(result.wrt)}): use plot_history")
    if result.function is None:
        raise ValueError("plot_path: the result does not carry its function")
    from ..api import compile_expr
    xs = result.history.x[:, 0]
    span = max(float(xs.max() - xs.min()), 1e-3 * max(1.0, float(np.abs(xs).max())))
    lo = float(xs.min()) - span / 4 if lo is None else lo
    hi = float(xs.max()) + span / 4 if hi is None else hi
    grid = np.linspace(lo, hi, points)
    f = compile_expr(result.function)
    ys = np.broadcast_to(f(**{result.wrt[0]: grid, **result.data}), grid.shape)
    fig, (ax,) = _figure(1)
    name = result.wrt[0]
    ax.plot(grid, ys, color="0.3", label="f")
    ax.plot(xs, result.history.f, ".-", color="tab:blue", lw=0.6, ms=4,
            label=f"{result.method}: {len(xs) - 1} iterations")
    ax.plot(xs[:1], result.history.f[:1], "o", color="tab:green", label=f"start {name} = {xs[0]:.4g}")
    ax.plot(xs[-1:], result.history.f[-1:], "*", color="tab:red", ms=12, label=f"end {name} = {xs[-1]:.6g}")
    ax.set(xlabel=name, ylabel="f", title=result.function.source or "f")
    ax.legend()
    return _save(fig, path)
