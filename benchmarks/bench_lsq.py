"""The gradient of ½‖Xw − y‖², side by side, on one thread.

    python benchmarks/bench_lsq.py [--repeat 21] [--sizes 500x100,5000x1000]

Competitors: hand-written NumPy `X.T @ (X @ w - y)` (with the value, as the others
compute it), the generated NumPy and C gradients (compile_grad(..., shapes=...)), and
JAX jit(value_and_grad) and PyTorch autograd when they are importable. Rounds are
interleaved (A B C A B C ...) so that a slow moment of a shared machine hits every
competitor alike; the table shows each one's median and its ratio to hand-written
NumPy. The issue's goals: generated NumPy within 1.05x, generated C within 1.5x.
"""

from __future__ import annotations

import os

# one thread everywhere, set before NumPy (BLAS), JAX (XLA) or PyTorch start theirs
os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                  XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
from exprcompiler import compile_grad  # noqa: E402

LOSS = "0.5 * sum((X @ w - y)**2)"
SHAPES = {"X": ("n", "p"), "w": ("p",), "y": ("n",)}


def competitors(X, w, y) -> dict:
    """name -> a function of no arguments computing the value and the gradient."""
    def hand():
        r = X @ w - y
        return 0.5 * (r @ r), X.T @ r

    gen_np = compile_grad(LOSS, wrt=["w"], shapes=SHAPES)
    gen_c = compile_grad(LOSS, wrt=["w"], shapes=SHAPES, backend="c", threads=1)
    out = {"hand-written NumPy": hand,
           "generated NumPy": lambda: gen_np(X, w, y),
           "generated C": lambda: gen_c(X, w, y),
           # the generated functions alone, without the call's argument binding and
           # shape checks (Compiled.__call__): where the time of small problems goes
           "  NumPy function alone": lambda: gen_np._fn(X, w, y),
           "  C kernel alone": lambda: gen_c._fn(X, w, y)}
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy
        vg = jax.jit(jax.value_and_grad(lambda w, X, y: 0.5 * jnp.sum((X @ w - y) ** 2)))
        Xj, wj, yj = jnp.asarray(X), jnp.asarray(w), jnp.asarray(y)

        def run_jax():
            v, g = vg(wj, Xj, yj)
            return float(v), g.block_until_ready()
        out["JAX jit(value_and_grad)"] = run_jax
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(1)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        wt = torch.from_numpy(w.copy()).requires_grad_(True)

        def run_torch():
            wt.grad = None
            loss = 0.5 * torch.sum((Xt @ wt - yt) ** 2)
            loss.backward()
            return loss.item(), wt.grad
        out["PyTorch autograd"] = run_torch
    except ImportError:
        pass
    return out


def check(fns: dict) -> None:
    """Every competitor computes the same value and gradient."""
    v0, g0 = fns["hand-written NumPy"]()
    for name, fn in fns.items():
        v, g = fn()
        if isinstance(g, tuple):  # generated: (value, (gradient,))
            g = g[0]
        assert abs(float(v) - v0) <= 1e-10 * abs(v0), name
        np.testing.assert_allclose(np.asarray(g), g0, rtol=1e-9, atol=1e-9 * np.max(np.abs(g0)), err_msg=name)


def measure(fns: dict, repeat: int, seconds_per_round: float = 0.02) -> dict:
    """Median seconds per call of each function, over `repeat` interleaved rounds."""
    loops = {}
    for name, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-7)
        loops[name] = max(1, int(seconds_per_round / one))
    times: dict = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            n = loops[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--sizes", default="500x100,5000x1000")
    args = ap.parse_args(argv)
    print(f"gradient of {LOSS}, value included, 1 thread; median of {args.repeat} interleaved rounds")
    for size in args.sizes.split(","):
        n, p = (int(t) for t in size.split("x"))
        rng = np.random.default_rng(0)
        X, w, y = rng.normal(size=(n, p)), rng.normal(size=p), rng.normal(size=n)
        fns = competitors(X, w, y)
        check(fns)
        med = measure(fns, args.repeat)
        base = med["hand-written NumPy"]
        print(f"\nX {n}x{p}")
        print(f"{'':26s} {'time':>10s} {'ratio':>7s}")
        for name, t in med.items():
            shown = f"{t * 1e3:8.3f} ms" if t >= 1e-3 else f"{t * 1e6:8.1f} us"
            print(f"{name:26s} {shown:>10s} {t / base:6.2f}x")


if __name__ == "__main__":
    main()
