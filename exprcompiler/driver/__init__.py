"""The driver: optimizers that run on the generated gradients, the last stage of the
pipeline (parse/ → trace/ → passes/ → backends/ → driver/).

    from exprcompiler.driver import minimize
    r = minimize("abs(x) + (x - 5)**2", {"x": 0.0}, method="gd", lr=0.05, maxiter=150)
    r.x, r.f, r.converged, r.message, r.history.f

Modules, one job each:
- minimize.py      the loop: stopping rules, divergence, history, progress; METHODS
- method.py        what a method is (options table, `step`), step-size schedules
- first_order.py   gd, subgradient, momentum, nesterov, rmsprop, adam, coordinate
- second_order.py  newton, newton-cg, lbfgs
- linesearch.py    Armijo backtracking, strong Wolfe, exact (argmin along the ray)
- objective.py     f, ∇f, ∇²f·v and ∇²f at a packed point, counted (Compiled.at)
- options.py       the declarative option tables and their validation
- result.py        Result, History, Stop
- progress.py      the tqdm bar (optional; only on a terminal)
- plots.py         plot_history, plot_path (matplotlib, optional)
- scipy_interop.py scipy_fun, scipy_hessp, scipy_hess for scipy.optimize.minimize
- train.py         train: mini-batches, L2, early stopping, restarts, per-epoch metrics
- train_result.py  TrainResult, TrainHistory
- models.py        logistic, mlp: the notes' models as loss programs with an init
- data.py          load_digits (scikit-learn's embedded digits), load_mnist (IDX files)
- cli.py           `exprc minimize`; train_cli.py `exprc train`; demo.py `exprc demo`
"""

from .minimize import METHODS, describe_methods, minimize
from .plots import plot_history, plot_path
from .result import History, Result
from .scipy_interop import scipy_fun, scipy_hess, scipy_hessp
from .models import Model, logistic, mlp
from .train import OPTIMIZERS, train
from .train_result import TrainHistory, TrainResult

__all__ = ["minimize", "METHODS", "describe_methods", "Result", "History", "plot_history",
           "plot_path", "scipy_fun", "scipy_hessp", "scipy_hess", "train", "TrainResult", "OPTIMIZERS",
           "Model", "logistic", "mlp"]
