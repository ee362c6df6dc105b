"""The notes' models as loss programs: logistic regression and a multilayer perceptron.

    from exprcompiler.driver.models import logistic, mlp
    m = mlp([64, 32, 1], activation="relu")
    print(m.loss)          # the program train() differentiates
    m.shapes               # {"X": ("n", 64), "W1": (64, 32), "b1": (32,), ...}
    params = m.init(seed=0)

A builder returns a `Model`: the loss program's text, the shapes of its inputs (the
examples' dimension is named "n"), the parameter names, and an initialization. The
losses are written in their numerically stable forms:

- one output (two classes, labels y ∈ {0, 1}): binary cross-entropy from the logit z,
  −y·log σ(z) − (1 − y)·log(1 − σ(z)) = softplus(z) − y·z, which never takes the log
  of a rounded-to-zero probability;
- K > 1 outputs (labels one-hot in Y): cross-entropy of the softmax,
  logsumexp(Z) − Σ Y ⊙ Z per example.

Each is the mean over the examples of a batch, so a step size does not depend on the
batch size. `scores` is the same network without the loss (the logits), compiled once
to predict labels.

Part of the driver (see driver/__init__.py); driver/train.py trains a Model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

ACTIVATIONS = ("relu", "tanh", "sigmoid", "softplus")
BINARY_LOSS = "mean(softplus(z) - y * z)"
MULTICLASS_LOSS = "mean(logsumexp(Z, axis=1) - sum(Y * Z, axis=1))"


@dataclass
class Model:
    """A loss program with its shapes, parameters and initialization.

    `loss`: the program (inputs: the parameters and the data X and y, or Y one-hot
    for several classes); `scores`: the logits program (parameters and X);
    `params`: parameter names in packing order; `weights`: the ones L2
    regularization applies to (not the biases); `layers`: the parameters' layer
    sizes, used by `init`."""

    name: str
    loss: str
    scores: str
    shapes: dict
    params: tuple
    weights: tuple
    classes: int
    activation: str = ""
    _predict: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def data_names(self) -> tuple:
        return tuple(k for k in self.shapes if k not in self.params)

    def init(self, seed: int = 0) -> dict:
        """Seeded starting parameters: weights normal with He scaling (√(2/fan_in))
        before a ReLU, Glorot (√(2/(fan_in + fan_out))) elsewhere; biases zero."""
        rng = np.random.default_rng(seed)
        out = {}
        for name in self.params:
            shape = self.shapes[name]
            if name in self.weights:
                fan_in = shape[0]
                fan_out = shape[1] if len(shape) > 1 else 1
                hidden = self.activation == "relu" and name != self.weights[-1]
                std = np.sqrt(2.0 / fan_in) if hidden else np.sqrt(2.0 / (fan_in + fan_out))
                out[name] = rng.normal(0.0, std, size=shape)
            else:
                out[name] = np.zeros(shape)
        return out

    def data(self, X, y) -> dict:
        """The loss program's data inputs from examples X (n, features) and integer
        labels y (n,): {"X", "y"} for two classes, {"X", "Y" one-hot} for more."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        features = self.shapes["X"][1]
        if X.ndim != 2 or X.shape[1] != features:
            raise ValueError(f"{self.name}: X must have shape (n, {features}), got {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"{self.name}: y must have shape ({X.shape[0]},), got {y.shape}")
        labels = y.astype(np.int64)
        if np.any(labels != y) or (labels.size and (labels.min() < 0 or labels.max() >= self.classes)):
            raise ValueError(f"{self.name}: y must hold class labels 0..{self.classes - 1}")
        if self.classes == 2:
            return {"X": X, "y": labels.astype(np.float64)}
        return {"X": X, "Y": np.eye(self.classes)[labels]}

    @staticmethod
    def labels(data: dict) -> np.ndarray:
        """The integer labels of a data mapping made by `data`."""
        if "Y" in data:
            return np.argmax(data["Y"], axis=1)
        return np.asarray(data["y"]).astype(np.int64)

    def predict(self, params: dict, X) -> np.ndarray:
        """Predicted labels: logit > 0 for two classes, the largest score otherwise."""
        f = self._predict.get("numpy")
        if f is None:
            from ..api import compile_expr
            names = [k for k in self.shapes if k in self.params or k == "X"]
            f = self._predict["numpy"] = compile_expr(self.scores, shapes={k: self.shapes[k] for k in names})
        s = f(X=np.asarray(X, dtype=np.float64), **{k: params[k] for k in self.params})
        return (s > 0).astype(np.int64) if self.classes == 2 else np.argmax(s, axis=1)

    def accuracy(self, params: dict, data: dict) -> float:
        """The fraction of examples in `data` (a mapping from `data`) classified right."""
        return float(np.mean(self.predict(params, data["X"]) == self.labels(data)))

    def __str__(self) -> str:
        return self.name


def _head(classes: int, last: str) -> tuple[list[str], str]:
    """The loss lines after the network, given the name of its last hidden layer."""
    if classes == 2:
        return [f"z = {last}"], BINARY_LOSS
    return [f"Z = {last}"], MULTICLASS_LOSS


def _finish(name, hidden_lines, score, shapes, params, weights, classes, activation="") -> Model:
    target = {"y": ("n",)} if classes == 2 else {"Y": ("n", classes)}
    head, loss = _head(classes, score)
    return Model(name=name,
                 loss="\n".join(hidden_lines + head + [loss]),
                 scores="\n".join(hidden_lines + [score]),
                 shapes={**shapes, **target}, params=tuple(params), weights=tuple(weights),
                 classes=classes, activation=activation)


def _outputs(classes: int) -> int:
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 2:
        raise ValueError(f"classes must be a whole number >= 2, got {classes!r}")
    return 1 if classes == 2 else classes


def logistic(features: int = 64, classes: int = 2) -> Model:
    """Logistic regression (the notes' 784 → 1, sigmoid): z = X·w + b with binary
    cross-entropy; with classes > 2, softmax regression Z = X·W + b."""
    _check_size(features, "features")
    features = int(features)
    k = _outputs(classes)
    if k == 1:
        shapes = {"X": ("n", features), "w": (features,), "b": ()}
        return _finish(f"logistic {features}→1", [], "X @ w + b", shapes, ("w", "b"), ("w",), 2)
    shapes = {"X": ("n", features), "W": (features, k), "b": (k,)}
    return _finish(f"softmax regression {features}→{k}", [], "X @ W + b", shapes, ("W", "b"), ("W",), classes)


def mlp(sizes: Sequence[int] = (64, 32, 1), activation: str = "relu") -> Model:
    """A multilayer perceptron: sizes[0] inputs, hidden layers sizes[1:-1] with the
    activation, sizes[-1] outputs (1: binary cross-entropy from the logit; K > 1:
    softmax cross-entropy over K classes). The notes' network is mlp([784, 32, 1])."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {sizes}")
    for s in sizes:
        _check_size(s, "layer size")
    sizes = [int(s) for s in sizes]
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    classes = 2 if sizes[-1] == 1 else sizes[-1]
    shapes = {"X": ("n", sizes[0])}
    params, weights, lines = [], [], []
    last = "X"
    layers = len(sizes) - 1
    for k in range(1, layers + 1):
        W, b = f"W{k}", f"b{k}"
        fan_in, fan_out = sizes[k - 1], sizes[k]
        if k == layers and fan_out == 1:  # one logit per example: a vector, not an (n, 1) matrix
            shapes[W], shapes[b] = (fan_in,), ()
        else:
            shapes[W], shapes[b] = (fan_in, fan_out), (fan_out,)
        params += [W, b]
        weights.append(W)
        if k < layers:
            lines.append(f"h{k} = {activation}({last} @ {W} + {b})")
            last = f"h{k}"
    score = f"{last} @ W{layers} + b{layers}"
    name = "mlp " + "→".join(str(s) for s in sizes) + (f" ({activation})" if layers > 1 else "")
    return _finish(name, lines, score, shapes, params, weights, classes, activation)


def _check_size(value, what: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be a positive whole number, got {value!r}")


def build(name: str, features: int, classes: int, hidden: Optional[Sequence[int]] = (32,),
          activation: str = "relu") -> Model:
    """A model by name ("logistic" or "mlp"), for the command line."""
    if name == "logistic":
        return logistic(features, classes)
    if name == "mlp":
        return mlp([features, *hidden, 1 if classes == 2 else classes], activation)
    raise ValueError(f"unknown model {name!r} (models: logistic, mlp)")
