"""Benchmark of training: the two-layer network 64 → 32 (ReLU) → 1 on the digits,
odd against even, 30 epochs of SGD (batch 64, step 0.1), every trainer from the same
initialization through the same batches.

    python benchmarks/bench_train.py [--rounds 5] [--epochs 30] [--profile] [--json PATH]

Trainers (each row: milliseconds per epoch, the best of interleaved rounds — other
processes share this machine, and the minimum is the least disturbed; the
test accuracy; the largest difference of its final parameters from hand-written NumPy):

- exprc train(), NumPy / C      the driver end to end (exprcompiler.driver.train);
- generated NumPy / C, loop     the compiled gradient called in a plain loop,
                                `value, grads = g(**params, X=Xb, y=yb)`, then p -= lr·g;
- generated NumPy, bare fn      the same loop calling the generated Python function
                                itself, without the Compiled wrapper (argument binding,
                                shape checks, result shaping): the wrapper's share;
- hand-written NumPy            backpropagation written out by hand;
- JAX (jit, float64)            value_and_grad and the update in one jitted step;
- PyTorch (float64)             autograd and an in-place update, when importable.

The network, the data, the hand-written backprop and the JAX and PyTorch trainers are
exprcompiler/bench/mlp.py's, shared with `exprc bench mlp` (which times them
interleaved, on every thread count asked for, JAX and PyTorch in pinned workers).

The process is pinned to one CPU and BLAS to one thread, so every trainer gets the
same core. An epoch is 22 steps (1,348 training examples). --profile adds where the
time of one generated-NumPy step goes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import numpy as np  # noqa: E402

from exprcompiler import compile_grad  # noqa: E402
from exprcompiler.bench import mlp  # noqa: E402
from exprcompiler.bench.mlp import BATCH, LR, NAMES, SEED, hand_grad  # noqa: E402
from exprcompiler.bench.worker import pin  # noqa: E402
from exprcompiler.driver import train  # noqa: E402
from exprcompiler.errors import CompileError  # noqa: E402


def trainers(s: mlp.Setup):
    """name -> run(): final parameters (NumPy arrays); None where not available."""
    out = {}
    epochs = len(s.batches)
    Xy = (s.data["X"], s.data["y"].astype(np.int64))

    def via_train(backend):
        return lambda: train(s.model, s.init, Xy, epochs=epochs, batch=BATCH, lr=LR, seed=SEED,
                             backend=backend, quiet=True)
    out["exprc train(), NumPy"] = via_train("numpy")
    g = compile_grad(s.model.loss, list(NAMES), shapes=s.model.shapes)
    out["generated NumPy, loop"] = lambda: mlp.sgd(mlp.generated_step(g), s)
    order = g.inputs  # the generated function's parameters, in its order
    fn = g.function

    def bare(p, Xb, yb):
        args = {**p, "X": Xb, "y": yb}
        return fn(*(args[k] for k in order))
    out["generated NumPy, bare fn"] = lambda: mlp.sgd(bare, s)
    try:
        gc = compile_grad(s.model.loss, list(NAMES), shapes=s.model.shapes, backend="c")
        out["exprc train(), C"] = via_train("c")
        out["generated C, loop"] = lambda: mlp.sgd(mlp.generated_step(gc), s)
    except CompileError as err:
        out["generated C"] = None
        print(f"(generated C: {err.one_line()})")
    out["hand-written NumPy"] = lambda: mlp.sgd(mlp.hand_step, s)
    for tool, make in (("JAX", mlp.jax_trainer), ("PyTorch", mlp.torch_trainer)):
        try:
            run, info = make(s)
        except ImportError:
            out[tool] = None
        else:
            out[f"{tool} {info.split()[1].rstrip(',')}" + (" (jit)" if tool == "JAX" else "")] = run
    return out


def _per_call(f, *args, n=1000, rounds=7) -> float:
    """Microseconds per call of f(*args), the best of `rounds` runs of n calls."""
    f(*args)
    best = np.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            f(*args)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def profile_step(s: mlp.Setup) -> list[str]:
    """Where one generated-NumPy step's time goes: the wrapper (Compiled.__call__:
    binding, shape checks, result shaping) against the generated function, and the
    generated function statement by statement against hand-written backprop."""
    import cProfile
    import pstats
    g = compile_grad(s.model.loss, list(NAMES), shapes=s.model.shapes)
    idx = s.batches[0][0]
    kw = {**s.init, "X": s.data["X"][idx], "y": s.data["y"][idx]}
    args = [kw[k] for k in g.inputs]
    fn = g.function
    whole, bare, hand = (_per_call(lambda: g(**kw)), _per_call(lambda: fn(*args)),
                         _per_call(lambda: hand_grad(**kw)))
    lines = ["where a generated-NumPy step goes (µs per call, best of 7 × 1000 calls, batch of 64):",
             f"  g(**params, X=Xb, y=yb), the whole call        {whole:8.1f}",
             f"  the generated function alone, fn(*arrays)      {bare:8.1f}",
             f"  => the Compiled wrapper (api.py)               {whole - bare:8.1f}",
             f"  hand-written backprop                          {hand:8.1f}"]

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3000):
        g(**kw)
    prof.disable()
    stats = pstats.Stats(prof).stats
    wrapper = []
    for (path, line, func), (_, calls, tottime, cumtime, _) in stats.items():
        if any(part in path for part in ("api.py", "tensor_call.py", "shapes.py", "trace/ir.py")):
            wrapper.append((tottime, f"{Path(path).name}:{line} {func}", calls))
    wrapper.sort(reverse=True)
    total = sum(t for t, *_ in wrapper)
    lines.append(f"  the wrapper's own functions under cProfile (own time, {total / 3000 * 1e6:.1f} µs a call "
                 f"with profiling overhead):")
    for t, name, calls in wrapper[:8]:
        lines.append(f"    {name:<46} {t / 3000 * 1e6:6.1f} µs  ({calls // 3000} calls per step)")

    lines.append("  the generated function, statement by statement (µs, best of 7 × 1000):")
    body = [ln.strip() for ln in g.source.split("def f_grad", 1)[1].splitlines()[1:] if ln.strip()]
    env = dict(zip(g.inputs, args))
    namespace = dict(fn.__globals__)
    costs = []
    for stmt in body:
        if stmt.startswith("return"):
            break
        code = compile(stmt, "<stmt>", "exec")
        exec(code, namespace, env)
        costs.append((_per_call(lambda: exec(code, namespace, env), n=1000), stmt))
    nothing = compile("pass", "<stmt>", "exec")
    empty = _per_call(lambda: exec(nothing, namespace, env), n=1000)
    for cost, stmt in costs:
        lines.append(f"    {cost - empty:6.1f}  {stmt}")
    lines.append(f"    (sum {sum(c - empty for c, _ in costs):.1f}; the exec of an empty statement, "
                 f"{empty:.1f} µs, is subtracted from each)")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (the best is reported)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--profile", action="store_true", help="break one generated-NumPy step down")
    ap.add_argument("--json", metavar="PATH", help="write the numbers to PATH")
    args = ap.parse_args()
    pin(1)
    s = mlp.setup(args.epochs)
    ds, model = s.ds, s.model
    runs = trainers(s)
    times = {name: [] for name, run in runs.items() if run is not None}
    finals = {}
    for _ in range(args.rounds + 1):  # the first round warms up (JIT compiles, caches fill)
        for name in times:
            t0 = time.perf_counter()
            out = runs[name]()
            elapsed = time.perf_counter() - t0
            if hasattr(out, "params"):  # a TrainResult: its own clock excludes evaluation
                elapsed, out = out.train_time, out.params
            times[name].append(elapsed)
            finals[name] = out
    ref = finals["hand-written NumPy"]
    hand_ms = float(np.min(times["hand-written NumPy"][1:])) / args.epochs * 1e3
    print(f"{ds}; mlp 64→32→1 (relu), SGD lr {LR}, batch {BATCH}, {args.epochs} epochs "
          f"({len(s.batches[0])} steps each), seed {SEED}; one CPU, best of {args.rounds} rounds")
    print(f"{'trainer':<30} {'ms/epoch':>9} {'× hand':>7} {'test acc':>9} {'max |Δparam|':>13}")
    report = {}
    for name, ts in times.items():
        ms = float(np.min(ts[1:])) / args.epochs * 1e3
        params = finals[name]
        acc = float(np.mean(model.predict(params, ds.X_test) == ds.y_test))
        diff = max(float(np.max(np.abs(np.asarray(params[k]) - ref[k]))) for k in NAMES)
        print(f"{name:<30} {ms:>9.3f} {ms / hand_ms:>7.2f} {acc:>9.2%} {diff:>13.1e}")
        report[name] = {"ms_per_epoch": ms, "ratio_to_hand": ms / hand_ms, "test_accuracy": acc,
                        "max_param_difference": diff}
    for name, run in runs.items():
        if run is None:
            print(f"{name:<30} not available")
    overhead = at_overhead()
    if overhead is not None:
        print(f"per-call cost of a compiled 2-variable gradient (Griewank, C, g.at(x)): {overhead:.2f} µs")
        report["c_at_two_variables_us"] = overhead
    if args.profile:
        print()
        print("\n".join(profile_step(s)))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def at_overhead():
    try:
        g = compile_grad("(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))", backend="c")
    except CompileError:
        return None
    return _per_call(g.at, np.array([1.5, 0.5]), n=20000, rounds=5)


if __name__ == "__main__":
    sys.exit(main())
