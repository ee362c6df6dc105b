"""The two-layer network of the `mlp` suite and benchmarks/bench_train.py, trained by
hand: 64 → 32 (ReLU) → 1 on scikit-learn's digits, odd against even, SGD with batch 64
and step 0.1, every trainer from the same initialization through the same batches.

The model, its initialization and the data come from the driver (models.mlp,
data.load_digits, train.batch_order / shuffle_rng), so the trainers here do what
`exprc train` does. A trainer is `run() -> {name: final array}`:

- `sgd(step, ...)`: plain SGD with any `step(params, Xb, yb) -> (loss, grads)`: the
  generated gradients and `hand_grad`, backpropagation written out;
- `jax_trainer`: value_and_grad and the update in one jitted step (float64);
- `torch_trainer`: autograd and an in-place update (float64).
Batches are cut with NumPy fancy indexing for every trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LR, BATCH, SEED = 0.1, 64, 0
NAMES = ("W1", "b1", "W2", "b2")
SIZES = [64, 32, 1]


@dataclass
class Setup:
    """The digits, the model, its data mapping, one batch order per epoch, the start."""
    ds: object
    model: object
    data: dict
    batches: list
    init: dict


def setup(epochs: int) -> Setup:
    """Everything every trainer shares (needs scikit-learn for the digits)."""
    from ..driver import mlp
    from ..driver.data import load_digits
    from ..driver.train import batch_order, shuffle_rng

    ds = load_digits("parity", seed=SEED)
    model = mlp(SIZES)
    data = model.data(ds.X_train, ds.y_train)
    rng = shuffle_rng(SEED)
    batches = [batch_order(len(ds.y_train), BATCH, rng) for _ in range(epochs)]
    return Setup(ds, model, data, batches, model.init(SEED))


def hand_grad(W1, b1, W2, b2, X, y):
    """Backpropagation by hand: the mean binary cross-entropy from the logit."""
    from ..runtime import sigmoid

    a = X @ W1 + b1
    h = np.maximum(a, 0.0)
    z = h @ W2 + b2
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    dz = (sigmoid(z) - y) / len(y)
    dh = np.outer(dz, W2)
    dh *= a > 0
    return loss, (X.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum())


def sgd(step, s: Setup) -> dict:
    """Plain SGD through the batches with `step(params, Xb, yb) -> (loss, grads)`."""
    X, y = s.data["X"], s.data["y"]
    p = {k: np.array(v) for k, v in s.init.items()}
    for epoch in s.batches:
        for idx in epoch:
            _, grads = step(p, X[idx], y[idx])
            for k, g in zip(NAMES, grads):
                p[k] -= LR * g
    return p


def hand_step(p, Xb, yb):
    return hand_grad(**p, X=Xb, y=yb)


def generated_step(g):
    """The step of a compiled gradient: g(**params, X=Xb, y=yb)."""
    return lambda p, Xb, yb: g(**p, X=Xb, y=yb)


def jax_trainer(s: Setup):
    """(run, "jax <version>"); raises ImportError without JAX."""
    import jax
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def loss(p, X, y):
        h = jnp.maximum(X @ p["W1"] + p["b1"], 0.0)
        z = h @ p["W2"] + p["b2"]
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z)

    @jax.jit
    def step(p, X, y):
        value, grads = jax.value_and_grad(loss)(p, X, y)
        return value, jax.tree_util.tree_map(lambda a, g: a - LR * g, p, grads)

    X, y = s.data["X"], s.data["y"]  # batches are cut with NumPy, as for every other trainer

    def run():
        p = {k: jnp.asarray(v) for k, v in s.init.items()}
        for epoch in s.batches:
            for idx in epoch:
                _, p = step(p, X[idx], y[idx])
        return {k: np.asarray(jax.block_until_ready(v)) for k, v in p.items()}
    return run, f"jax {jax.__version__}"


def torch_trainer(s: Setup, threads: int = 1):
    """(run, "torch <version>"); raises ImportError without PyTorch."""
    import torch
    torch.set_num_threads(threads)
    X, y = torch.from_numpy(s.data["X"]), torch.from_numpy(s.data["y"])

    def run():
        p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in s.init.items()}
        for epoch in s.batches:
            for idx in epoch:
                t = torch.from_numpy(idx)
                Xb, yb = X[t], y[t]
                z = torch.relu(Xb @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
                loss = torch.mean(torch.nn.functional.softplus(z) - yb * z)
                grads = torch.autograd.grad(loss, [p[k] for k in NAMES])
                with torch.no_grad():
                    for k, gk in zip(NAMES, grads):
                        p[k] -= LR * gk
        return {k: v.detach().numpy() for k, v in p.items()}
    return run, f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads"
