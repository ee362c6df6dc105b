"""Regression on a cluster: a least-squares data set of 10⁷ × 100 (8 GB) made lazily on
Dask workers, fitted with L-BFGS, then logistic regression on the same rows trained
by mini-batches.

    python examples/dask_regression.py                      # 10⁷ rows, a LocalCluster
    python examples/dask_regression.py --rows 1e6           # small enough for a laptop
    python examples/dask_regression.py --scheduler tcp://10.0.0.5:8786   # a running cluster

What runs where (see the README, "On a cluster"):
- the data are generated on the workers (dask.array's seeded generator, chunk by
  chunk) and persisted there: they never come to this process;
- L-BFGS runs here, on vectors of 100 numbers; each evaluation of the loss and its
  gradient is one Dask computation: every chunk runs the compiled gradient on its
  rows, and the per-chunk results are added by a tree reduction;
- mini-batch training steps run here too (they are sequential): the chunks come here
  one at a time, in a seeded order, the next one fetched while the current one is
  trained on; the epoch's loss and accuracy over all rows are computed on the workers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from exprcompiler import compile_grad
from exprcompiler.driver import minimize, train
from exprcompiler.driver.models import logistic


def make_data(rows: int, cols: int, chunk_rows: int, seed: int = 0):
    """X (rows, cols) standard normal, y = X w* + noise and labels 1[X v* + noise > 0],
    as lazy Dask arrays: nothing is computed until the workers persist them."""
    import dask.array as da
    rng = da.random.default_rng(seed)
    X = rng.standard_normal((rows, cols), chunks=(chunk_rows, cols))
    w_true = np.linspace(-1.0, 1.0, cols)
    y = X @ w_true + 0.5 * rng.standard_normal(rows, chunks=chunk_rows)
    labels = (X @ w_true[::-1] + rng.standard_normal(rows, chunks=chunk_rows) > 0).astype(float)
    return X, y, labels, w_true


def main(argv=None) -> int:
    from distributed import Client, LocalCluster, wait

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--cols", type=int, default=100)
    parser.add_argument("--chunk-rows", type=int, default=125_000, help="rows per chunk (125,000 x 100 = 100 MB)")
    parser.add_argument("--scheduler", default=None, help="address of a running scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (one thread each)")
    parser.add_argument("--backend", default="c", choices=("c", "numpy"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    rows, cols = int(args.rows), args.cols

    if args.scheduler:
        client, cluster = Client(args.scheduler), None
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)  # the default scheduler from now on: dask.compute uses it
    try:
        print(f"cluster: {len(client.scheduler_info()['workers'])} workers at {client.scheduler.address}")
        X, y, labels, w_true = make_data(rows, cols, min(args.chunk_rows, rows))
        start = time.perf_counter()
        X, y, labels = client.persist([X, y, labels])
        wait([X, y, labels])
        print(f"data: {rows:,} x {cols} ({X.nbytes / 1e9:.1f} GB) in {X.numblocks[0]} chunks of "
              f"{X.chunks[0][0]:,} rows, made and persisted on the workers in {time.perf_counter() - start:.1f} s")

        # least squares, L-BFGS: each evaluation one Dask computation over every chunk
        shapes = {"X": ("n", cols), "y": ("n",), "w": (cols,)}
        g = compile_grad("0.5*mean((X@w - y)**2)", ["w"], shapes=shapes, backend=args.backend)
        fit = minimize(g, {"w": np.zeros(cols)}, method="lbfgs", data={"X": X, "y": y}, quiet=True)
        error = float(np.max(np.abs(fit.x - w_true)))
        print(f"least squares, L-BFGS: {fit.message}; {fit.iterations} iterations, {fit.evaluations} evaluations "
              f"in {fit.time:.2f} s ({fit.time / fit.evaluations * 1e3:.0f} ms each); max |w - w*| = {error:.1e}")

        # logistic regression, mini-batch SGD over the same rows
        model = logistic(cols)
        run = train(model, data={"X": X, "y": labels}, epochs=args.epochs, batch=args.batch, optimizer="adam",
                    lr=0.01, quiet=True)
        steps_per_s = run.steps / run.train_time
        print(f"logistic regression, Adam on batches of {args.batch}: {run.epochs} epoch(s), {run.steps:,} steps "
              f"in {run.train_time:.1f} s ({steps_per_s:,.0f} steps/s); loss {run.loss:.4f}, "
              f"accuracy {run.accuracy:.4f} (whole data, on the workers); {run.time:.1f} s in all")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
