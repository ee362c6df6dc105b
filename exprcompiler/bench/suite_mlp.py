"""The `mlp` suite: epochs of the two-layer network 64 → 32 (ReLU) → 1 on scikit-learn's
digits (odd/even), SGD with batch 64 and step 0.1, 30 epochs (3 with --quick).

Trainers (bench/mlp.py): the generated NumPy and C gradients of the driver's model
(compile_grad(mlp([64, 32, 1]).loss, ...)) in a plain SGD loop, the hand-written NumPy
backprop (the reference: ratios and agreement are taken to it), the driver's own
`train()` given the same compiled NumPy gradient (its batching, flat parameter vector,
finiteness checks and optimizer step around the same calls: the row's time over the
plain loop's is what the driver costs), and JAX (jit of value_and_grad and the update)
and PyTorch autograd in workers pinned to the row's CPUs, when importable. All start
from the same initialization and go through the same batches, so they must end at the
same parameters and the same test accuracy.

A timed sample is one whole run divided by its epochs. Threads: NumPy's BLAS count per
row (runner.BlasThreads), `threads=` for generated C, pinning for JAX and PyTorch.
Without scikit-learn the suite says so and runs nothing.
"""

from __future__ import annotations

import time


from .. import compile_grad
from ..errors import CompileError
from . import mlp, remote
from .competitors import installed
from .report import SuiteResult, err, ms, ratio, span
from .runner import BlasThreads, Candidate, flat_arrays, labelled, ratio_to, run_interleaved

EPOCHS, QUICK_EPOCHS = 30, 3
REFERENCE = "hand-written NumPy backprop"
LOOP, TRAIN = "generated NumPy", "train(), generated NumPy"
JAX, TORCH = "JAX jit(value_and_grad) step", "PyTorch autograd"
HEADERS = ["implementation", "thr", "ms/epoch", "min–max", "× ref", "test acc", "max rel err"]


def _trainer(label: str, thr, run, epochs: int) -> Candidate:
    """A candidate whose sample is one whole training run, in seconds per epoch;
    its outputs are the final parameters in mlp.NAMES order."""
    def sample() -> float:
        t0 = time.perf_counter()
        run()
        return (time.perf_counter() - t0) / epochs
    return Candidate(label, str(thr), "", sample, lambda: _params(run()))


def _params(p: dict) -> list:
    return flat_arrays([p[k] for k in mlp.NAMES])


# ---- JAX and PyTorch, in worker processes pinned to the row's CPUs ----

def _tool_setup(tool: str, s: mlp.Setup, threads: int) -> str:
    """In the worker: `s` (the data and batches, pickled: the worker need not import
    scikit-learn) trained by `tool`, registered under ("mlp", tool)."""
    epochs = len(s.batches)
    run, info = mlp.jax_trainer(s) if tool == "jax" else mlp.torch_trainer(s, threads)
    c = _trainer(tool, threads, run, epochs)
    c.run()  # JAX traces and compiles its step here
    remote.register(("mlp", tool), lambda: _params(run()), c.run)
    return remote.pinned(info)


def jax_setup(s: mlp.Setup, threads: int) -> str:
    return _tool_setup("jax", s, threads)


def torch_setup(s: mlp.Setup, threads: int) -> str:
    return _tool_setup("torch", s, threads)


TOOLS = {"jax": (JAX, f"{__name__}.jax_setup"), "torch": (TORCH, f"{__name__}.torch_setup")}


# ---- the suite ----

def run(threads: list[int], repeat: int, quick: bool) -> SuiteResult:
    epochs = QUICK_EPOCHS if quick else EPOCHS
    if not installed("sklearn"):
        return SuiteResult("mlp", ["scikit-learn not installed: the digits come with it "
                                   "(pip install 'exprcompiler[data]'); skipped"], HEADERS, [], [])
    s = mlp.setup(epochs)
    blas = BlasThreads()
    loss, shapes = s.model.loss, s.model.shapes
    gen_np = compile_grad(loss, list(mlp.NAMES), shapes=shapes)
    workers = remote.start_each(threads, {k: setup for k, (_, setup) in TOOLS.items()}, s)
    group = []
    try:
        for t in threads:
            thr = blas.label(t)
            group += [blas.wrap(t, _trainer(REFERENCE, thr, lambda: mlp.sgd(mlp.hand_step, s), epochs)),
                      blas.wrap(t, _trainer(LOOP, thr, lambda: mlp.sgd(mlp.generated_step(gen_np), s), epochs)),
                      blas.wrap(t, _trainer(TRAIN, thr, lambda: _train(gen_np, s), epochs))]
            try:
                gen_c = compile_grad(loss, list(mlp.NAMES), shapes=shapes, backend="c", threads=t)
            except CompileError as e:
                group.append(Candidate("generated C", str(t), missing=e.one_line()))
            else:
                group.append(_trainer("generated C", t, lambda g=gen_c: mlp.sgd(mlp.generated_step(g), s),
                                      epochs))
            group += [remote.candidate(workers[package, t], ("mlp", package), label, t)
                      for package, (label, _) in TOOLS.items()]
        finals = {}     # id(candidate) -> its final parameters, for the test accuracy
        for c in group:
            if c.result is not None:
                c.result = _keeping(c.result, finals, id(c))
        times, errors = run_interleaved([group], repeat, labelled(REFERENCE))
    finally:
        remote.close_each(workers)
    notes = [f"{s.ds}; {s.model}, SGD lr {mlp.LR}, batch {mlp.BATCH}, {epochs} epochs of "
             f"{len(s.batches[0])} steps, seed {mlp.SEED}, the same start and batches for every "
             f"trainer; median and min–max of {repeat} interleaved rounds after a warm-up, each "
             f"sample a whole run, ms per epoch",
             blas.describe(),
             *(f"{TOOLS[package][0]} on {t} CPU(s): {info}" for (package, t), (_, info) in workers.items())]
    accuracy = {key: s.model.accuracy(dict(zip(mlp.NAMES, p)), {"X": s.ds.X_test, "y": s.ds.y_test})
                for key, p in finals.items()}
    return _result(group, times, errors, accuracy, notes)


def _train(g, s: mlp.Setup) -> dict:
    """The driver's train() on the compiled gradient `g`: SGD, the same start, batches
    (its seed draws the batch order mlp.setup drew) and step; the final parameters."""
    from ..driver import train
    return train(g, params=s.init, data=s.data, optimizer="sgd", lr=mlp.LR, epochs=len(s.batches),
                 batch=mlp.BATCH, seed=mlp.SEED, quiet=True).params


def _keeping(result, store: dict, key: int):
    def outputs():
        store[key] = result()
        return store[key]
    return outputs


def _result(group, times, errors, accuracy, notes) -> SuiteResult:
    ref = {c.threads: times[id(c)].median for c in group if c.label == REFERENCE}
    loops = {c.threads: times[id(c)].median for c in group if c.label == LOOP and id(c) in times}
    records, table, bars = [], [], []
    for c in group:
        rec = {"implementation": c.label, "threads": c.threads, "missing": c.missing}
        records.append(rec)
        if c.missing:
            table.append([c.label, c.threads, c.missing])
            continue
        tm = times[id(c)]
        rec.update(per_epoch=tm.as_dict(), reference=REFERENCE, max_rel_error=errors[id(c)],
                   ratio_to_reference=ratio_to(tm.median, ref, c.threads),
                   test_accuracy=accuracy.get(id(c)))
        table.append([c.label, c.threads, ms(tm.median), span(tm),
                      ratio(rec["ratio_to_reference"]),
                      "–" if rec["test_accuracy"] is None else f"{rec['test_accuracy']:.2%}",
                      err(rec["max_rel_error"])])
        if rec["ratio_to_reference"]:
            bars.append((f"{c.label} ({c.threads} thr)", rec["ratio_to_reference"]))
        if c.label == TRAIN and c.threads in loops:
            rec["ratio_to_own_loop"] = tm.median / loops[c.threads]
            notes.append(f"{TRAIN} / the plain loop of the same gradient calls ({LOOP} row), "
                         f"{c.threads} thr: {rec['ratio_to_own_loop']:.2f}×")
    legend = [
        "ms/epoch, min–max: a whole training run's time over its epochs",
        f"× ref: time / the {REFERENCE}'s at the same threads",
        "test acc: the final parameters' accuracy on the held-out digits",
        f"max rel err: largest |final parameter − {REFERENCE}'s| / max(1, |…|)",
        "thr: BLAS threads for NumPy rows (env: as the environment set them), OpenMP threads for C, "
        "CPUs the worker is pinned to for JAX and PyTorch (also torch.set_num_threads)",
    ]
    return SuiteResult("mlp", notes, HEADERS, table, records, legend, bars)
