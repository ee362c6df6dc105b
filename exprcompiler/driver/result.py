"""What `minimize` returns: the `Result` and its per-iteration `History`; and `Stop`,
the exception a method raises to end a run early (a line search that finds no decrease).

Part of the driver (see driver/__init__.py): filled in by driver/minimize.py, read by
driver/plots.py and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..trace.ir import Trace


class History:
    """One row per iterate, row 0 being the start: `f`, `grad_norm` (‖∇f‖₂), `step`
    (‖x_k − x_{k−1}‖₂, 0 for the start) and `x` (the iterate), each as an array."""

    def __init__(self):
        self._rows: list[tuple[float, float, float]] = []
        self._xs: list[np.ndarray] = []

    def add(self, x: np.ndarray, f: float, grad_norm: float, step: float) -> None:
        self._rows.append((f, grad_norm, step))
        self._xs.append(x.copy())

    def __len__(self) -> int:
        return len(self._rows)

    def _column(self, k: int) -> np.ndarray:
        return np.array([row[k] for row in self._rows], dtype=float)

    @property
    def f(self) -> np.ndarray:
        return self._column(0)

    @property
    def grad_norm(self) -> np.ndarray:
        return self._column(1)

    @property
    def step(self) -> np.ndarray:
        return self._column(2)

    @property
    def x(self) -> np.ndarray:
        """The iterates, shape (len(history), n)."""
        return np.array(self._xs, dtype=float)

    def rows(self):
        """(iteration, f, ‖g‖, step) for each iterate."""
        return [(k, f, gn, s) for k, (f, gn, s) in enumerate(self._rows)]


@dataclass
class Result:
    """The outcome of `minimize`.

    `x` is the final iterate (an array in `wrt` order) and `x_named` the same as
    name -> value; `f`, `grad` and `grad_norm` are taken there. `iterations` counts
    steps taken, `evaluations` calls of the value-and-gradient kernel (line searches
    included) and `hessian_evaluations` Hessian or Hessian-vector product calls.
    `converged` is True when a tolerance was met; `message` says why the run stopped.
    After a divergence `x` is the last iterate whose value and gradient were finite.
    `options` holds every option the run used, defaults filled in; `data` the inputs
    held fixed."""

    x: np.ndarray
    f: float
    grad: np.ndarray
    iterations: int
    evaluations: int
    converged: bool
    message: str
    method: str
    wrt: tuple
    history: History
    hessian_evaluations: int = 0
    time: float = 0.0
    backend: str = "numpy"
    data: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    # the function's trace, so plot_path can draw f without being handed it again
    function: Optional[Trace] = field(default=None, repr=False)
    # (name, shape) of each variable when some are tensors: how x is packed
    layout: Optional[tuple] = field(default=None, repr=False)

    @property
    def grad_norm(self) -> float:
        return norm(self.grad)

    @property
    def x_named(self) -> dict:
        """name -> value; a tensor variable's value is an array of its shape."""
        return named(self.x, self.layout or [(name, ()) for name in self.wrt])

    def __str__(self) -> str:
        point = ", ".join(f"{name} = {v:.10g}" if np.ndim(v) == 0 else f"{name}: array {np.shape(v)}"
                          for name, v in self.x_named.items())
        hess = f", {self.hessian_evaluations} second-order" if self.hessian_evaluations else ""
        return (f"{self.method}: {self.message}\n"
                f"  x: {point}\n"
                f"  f = {self.f:.10g}, |grad| = {self.grad_norm:.3g}\n"
                f"  {self.iterations} iterations, {self.evaluations} evaluations{hess}, "
                f"{self.time * 1e3:.1f} ms ({self.backend})")


class Stop(Exception):
    """Raised by a method when it cannot go on (a line search found no decrease):
    the driver ends the run with this message."""

    def __init__(self, message: str, converged: bool = False):
        super().__init__(message)
        self.converged = converged


def split(x: np.ndarray, layout) -> dict:
    """A packed vector by variable: name -> a view of x in its shape (0-d for a
    scalar). `layout`: (name, shape) per variable, in packing order (C order,
    concatenated); writing to a view writes to x."""
    out, start = {}, 0
    for name, shape in layout:
        size = int(np.prod(shape, dtype=np.int64))
        out[name] = x[start:start + size].reshape(shape)
        start += size
    return out


def named(x: np.ndarray, layout) -> dict:
    """`split`, with a scalar variable as a float."""
    return {name: float(v) if v.ndim == 0 else v for name, v in split(x, layout).items()}


def norm(v: np.ndarray) -> float:
    """‖v‖₂ without overflow: huge but finite iterates on the way to a divergence have
    a finite norm (np.linalg.norm squares them first)."""
    with np.errstate(over="ignore"):
        s = float(v @ v)
    if 1e-300 < s < 1e300 or s == 0:
        return s ** 0.5
    m = float(np.max(np.abs(v)))
    if m == 0 or not np.isfinite(m):
        return m
    return m * float(np.sqrt((v / m) @ (v / m)))


def finite(f: float, g: Optional[np.ndarray] = None) -> bool:
    return bool(np.isfinite(f)) and (g is None or bool(np.isfinite(g).all()))
