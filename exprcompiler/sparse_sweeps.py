"""Compressed sweeps: the one trace that runs a coloring's k seed sweeps (issue 16).

Where it sits: after sparsity.py (the pattern) and coloring.py (the colors), before a
backend. It is a pass like passes/jacobian.py — the primal replayed once, then k
tangent sweeps (forward: one per column color), k adjoint sweeps (reverse: one per row
color) or k tangent sweeps of the gradient trace (Hessian: one per star color) — and
the result is one ordinary trace, compiled by either backend into one kernel.

Two forms of seed:

* **Scalar programs** (every wrt input and output a scalar): the seeds are constants,
  1 on the columns (rows) of the sweep's color and none elsewhere, so the builder
  folds everything a color does not reach, exactly as the dense Jacobian's unit seeds
  do. The recovery happens in the trace: its outputs are the values, then each nonzero
  of the pattern (CSR order) as the one tangent that holds it (B[i, color[j]] for a
  column coloring, B[color[i], j] for a row coloring, the star recovery's choice for a
  Hessian). The kernel writes the CSR data array itself, over a batch of points too.
* **Tensor programs**: a seed is a vector (column j of a color sits somewhere inside
  a tensor), so each sweep gets seed inputs `x.dot0`, `x.dot1`, … (forward, Hessian) or
  `y.bar0`, … (reverse) of the input's (output's) shape, and the outputs are the
  values, then the k compressed columns (rows) B; the caller passes the seed matrix's
  columns and gathers the nonzeros out of B (sparse_jacobian.py).

Each nonzero is computed by the same rule applications as in the dense trace (the
other seeds of its color do not reach it: that is what a valid coloring means), so
the values are the dense result's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .coloring import n_colors
from .passes.forward import tangent_sweep
from .passes.replay import fresh_name, labels_of, replay, replay_instr, seed_input, wrt_vars, zeros_like
from .passes.reverse import active_set, adjoint_sweep, grad_reverse
from .trace.ir import Builder, Trace, gc_paused


def _entry(b: Builder, trace: Trace, sweep: list, v: int, vmap) -> int:
    """The tangent (adjoint) of trace var v in one sweep, or a structural zero."""
    return sweep[v] if sweep[v] is not None else zeros_like(b, trace, v, vmap)


def _groups(colors) -> list:
    """For each color, the indices that have it."""
    colors = np.asarray(colors)
    return [np.flatnonzero(colors == c).tolist() for c in range(n_colors(colors))]


def _forward(b, trace, vmap, xs, colors, tag="c"):
    one = b.const(1.0)
    return [tangent_sweep(b, trace, vmap, {xs[j][1]: one for j in group}, tag=f"{tag}{c}")
            for c, group in enumerate(_groups(colors))]


def _reverse(b, trace, vmap, xs, colors):
    one = b.const(1.0)
    active = active_set(trace, [v for _, v in xs])
    sweeps = []
    for c, group in enumerate(_groups(colors)):
        cot: dict = {}
        for i in group:  # two rows may be one variable (outputs "x; x"): their seeds add
            v = trace.outputs[i][1]
            cot[v] = one if v not in cot else b.add(cot[v], one)
        sweeps.append(adjoint_sweep(b, trace, vmap, cot, active, tag=f"c{c}"))
    return sweeps


@gc_paused()
def scalar_jacobian(trace: Trace, wrt: Sequence[str], mode: str, colors, where) -> Trace:
    """Outputs: y_1..y_m, then the pattern's nonzeros in CSR order, read from the
    compressed matrix at `where` = (rows of B, columns of B) (coloring.column_recovery /
    row_recovery)."""
    xs = wrt_vars(trace, wrt)
    b = Builder(pull_negations=True)
    vmap = replay(b, trace)
    ys = trace.outputs
    outputs = [(name, vmap[v]) for name, v in ys]
    taken = {name for name, _ in outputs}
    b_rows, b_cols = (np.asarray(w).tolist() for w in where)
    if mode == "forward":
        sweeps = _forward(b, trace, vmap, xs, colors)
        entries = [_entry(b, trace, sweeps[c], ys[i][1], vmap) for i, c in zip(b_rows, b_cols)]
    elif mode == "reverse":
        sweeps = _reverse(b, trace, vmap, xs, colors)
        entries = [_entry(b, trace, sweeps[c], xs[j][1], vmap) for c, j in zip(b_rows, b_cols)]
    else:
        raise ValueError(f"unknown mode {mode!r} (use 'forward' or 'reverse')")
    outputs += [(fresh_name(f"nz{k}", taken), var) for k, var in enumerate(entries)]
    return b.finish(outputs)


@gc_paused()
def scalar_hessian(trace: Trace, wrt: Sequence[str], colors, where) -> Trace:
    """Outputs: y, x.bar for each x in wrt, then the Hessian pattern's nonzeros in CSR
    order from k tangent sweeps of the gradient trace (`where`: star_recovery)."""
    grad = grad_reverse(trace, list(wrt))
    b = Builder(pull_negations=True)
    vmap = replay(b, grad)
    inputs = dict(grad.inputs)
    xs = [(x, inputs[x]) for x in wrt]
    gvars = [v for _, v in grad.outputs[1:]]
    sweeps = _forward(b, grad, vmap, xs, colors, tag="s")
    outputs = [(name, vmap[v]) for name, v in grad.outputs]
    taken = {name for name, _ in outputs}
    b_rows, b_cols = (np.asarray(w).tolist() for w in where)
    outputs += [(fresh_name(f"nz{k}", taken), _entry(b, grad, sweeps[c], gvars[i], vmap))
                for k, (i, c) in enumerate(zip(b_rows, b_cols))]
    return b.finish(outputs)


def _seeded(b, trace, pairs, k, kind):
    """Seed inputs `name.kind<c>` for each (name, var) in `pairs` and each of k sweeps,
    as {var: seed}; two outputs that are one variable get the sum of their seeds."""
    taken = labels_of(trace)
    sweeps = []
    for c in range(k):
        seeds: dict = {}
        for name, v in pairs:
            s = seed_input(b, trace, name, v, f"{kind}{c}", taken)
            seeds[v] = s if v not in seeds else b.add(seeds[v], s)
        sweeps.append(seeds)
    return sweeps


def _replay_rest(b, trace, vmap) -> None:
    for i in range(len(vmap), len(trace.instrs)):
        vmap.append(replay_instr(b, trace, i, vmap))


@gc_paused()
def tensor_sweeps(trace: Trace, wrt: Sequence[str], mode: str, k: int) -> Trace:
    """A tensor program's k compressed sweeps with seed inputs. Outputs: the primal
    outputs, then per sweep c the tangents of the outputs (forward), the adjoints of
    the wrt inputs (reverse) or the tangents of the gradient (mode "hessian", after
    the value and the gradient)."""
    if mode == "hessian":
        trace = grad_reverse(trace, list(wrt))
    xs = wrt_vars(trace, wrt)
    b = Builder(pull_negations=True)
    vmap = replay(b, trace, stop=len(trace.inputs))
    if mode in ("forward", "hessian"):
        seeds = _seeded(b, trace, xs, k, "dot")
        sweeps = [tangent_sweep(b, trace, vmap, s, tag=f"c{c}") for c, s in enumerate(seeds)]
        targets = trace.outputs if mode == "forward" else trace.outputs[1:]
    elif mode == "reverse":
        _replay_rest(b, trace, vmap)
        seeds = _seeded(b, trace, trace.outputs, k, "bar")
        active = active_set(trace, [v for _, v in xs])
        sweeps = [adjoint_sweep(b, trace, vmap, s, active, tag=f"c{c}") for c, s in enumerate(seeds)]
        targets = xs
    else:
        raise ValueError(f"unknown mode {mode!r} (use 'forward', 'reverse' or 'hessian')")
    _replay_rest(b, trace, vmap)  # when no tangent sweep ran (k = 0)
    outputs = [(name, vmap[v]) for name, v in trace.outputs]
    taken = {name for name, _ in outputs}
    outputs += [(fresh_name(f"{name}.c{c}", taken), _entry(b, trace, sweep, v, vmap))
                for c, sweep in enumerate(sweeps) for name, v in targets]
    return b.finish(outputs)


__all__ = ["scalar_jacobian", "scalar_hessian", "tensor_sweeps"]
