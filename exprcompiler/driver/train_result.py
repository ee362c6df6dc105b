"""What `train` returns: the per-epoch history and the result of a run.

Part of the driver (see driver/__init__.py), beside result.py, which holds what
`minimize` returns; train.py fills these in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np

from .models import Model


class Epoch(NamedTuple):
    """One row of a TrainHistory."""
    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    time: float


class TrainHistory:
    """One row per epoch: `epoch` (1, 2, ...), `loss`, `accuracy`, `val_loss`,
    `val_accuracy` (NaN where not measured) and `time` (seconds of training so far,
    evaluation excluded), each as an array. `history[k]` is the k-th row (an `Epoch`;
    negative k counts from the end), `history[a:b]` a TrainHistory of those rows."""

    COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "time")

    def __init__(self):
        self._rows: list[tuple] = []

    def add(self, *row) -> None:
        self._rows.append(tuple(float(v) for v in row))

    def __len__(self) -> int:
        return len(self._rows)

    def __getattr__(self, name):
        if name in TrainHistory.COLUMNS:
            k = TrainHistory.COLUMNS.index(name)
            return np.array([row[k] for row in self._rows], dtype=float)
        raise AttributeError(name)

    def rows(self) -> list[tuple]:
        return list(self._rows)

    def __getitem__(self, k):
        if isinstance(k, slice):
            part = TrainHistory()
            part._rows = self._rows[k]
            return part
        try:
            epoch, *rest = self._rows[k]
            return Epoch(int(epoch), *rest)
        except TypeError:
            raise TypeError(f"history[{k!r}]: index with an epoch's position (an int) or a slice; "
                            f"columns are attributes: {', '.join(TrainHistory.COLUMNS)}") from None
        except IndexError:
            raise IndexError(f"history[{k}]: the run has {len(self._rows)} epochs") from None

    def __iter__(self):
        return (self[k] for k in range(len(self._rows)))

    def __repr__(self) -> str:
        if not self._rows:
            return "<TrainHistory: no epochs>"
        last = Epoch(*self._rows[-1])
        acc = "" if last.accuracy != last.accuracy else f", accuracy {last.accuracy:.2%}"
        return f"<TrainHistory: {len(self._rows)} epochs; last: loss {last.loss:.4g}{acc}>"

    def _repr_html_(self) -> str:
        from ..display.training import history_html
        return history_html(self)


@dataclass
class TrainResult:
    """The outcome of `train`.

    `params`: name -> array (the best epoch's when early stopping restored them);
    `loss`/`accuracy`: on the whole training data at those parameters (data term, no
    L2); `val_loss`/`val_accuracy`: on the validation set (None without one);
    `history`: per-epoch metrics; `best_epoch`: the epoch `params` come from;
    `epochs`, `steps`: what ran; `stopped_early`, `diverged`, `message`: how it
    ended; `time`: seconds in all, `train_time`: seconds in the step loop alone;
    `runs`: every restart's result (this one among them), `run`: its index."""

    params: dict
    loss: float
    accuracy: Optional[float]
    val_loss: Optional[float]
    val_accuracy: Optional[float]
    history: TrainHistory
    best_epoch: int
    epochs: int
    steps: int
    stopped_early: bool
    diverged: bool
    message: str
    optimizer: str
    options: dict
    seed: int
    time: float
    train_time: float
    backend: str
    model: Optional[Model] = field(default=None, repr=False)
    runs: list = field(default_factory=list, repr=False)
    run: int = 0

    @property
    def method(self) -> str:  # the label plot_history uses
        return self.model.name if self.model is not None else self.optimizer

    def predict(self, X) -> np.ndarray:
        if self.model is None:
            raise ValueError("predict needs a Model (train was given a bare loss program)")
        return self.model.predict(self.params, X)

    def score(self, X, y) -> float:
        """Accuracy on examples X with integer labels y."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def __repr__(self) -> str:  # short: no parameters, no history (see str() and .params)
        acc = "" if self.accuracy is None else f", accuracy {self.accuracy:.2%}"
        val = "" if self.val_accuracy is None else f", validation accuracy {self.val_accuracy:.2%}"
        return (f"<TrainResult {self.method} with {self.optimizer}: {self.epochs} epochs, "
                f"loss {self.loss:.4g}{acc}{val}>")

    def _repr_html_(self) -> str:
        from ..display.training import result_html
        return result_html(self)

    def __str__(self) -> str:
        acc = "" if self.accuracy is None else f", accuracy {self.accuracy:.2%}"
        val = "" if self.val_loss is None else (
            f"; validation loss {self.val_loss:.4g}"
            + ("" if self.val_accuracy is None else f", accuracy {self.val_accuracy:.2%}"))
        restarts = f" (run {self.run + 1} of {len(self.runs)}, seed {self.seed})" if len(self.runs) > 1 else ""
        return (f"{self.method} with {self.optimizer}: {self.message}{restarts}\n"
                f"  training loss {self.loss:.4g}{acc}{val}\n"
                f"  {self.epochs} epochs, {self.steps} steps, {self.time:.2f} s "
                f"({self.train_time / max(self.epochs, 1) * 1e3:.2f} ms per epoch of training, {self.backend})")
