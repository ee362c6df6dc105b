"""Second order and Jacobians: compositions of the tangent and adjoint sweeps.

    hvp          forward over reverse: the tangent sweep run over the gradient trace
    hessian      one tangent sweep of the gradient trace per variable (unit seeds)
    jacobian     n tangent sweeps (forward) or m adjoint sweeps (reverse), unit seeds,
                 or vertex elimination on the linearized graph (elimination.py)

Unit seeds are constants, so the builder folds every tangent or adjoint that does
not depend on the seeded variable: a sweep costs only the part of the trace that
the variable reaches. Entry names read `y1.d.x2` (∂y1/∂x2); a Hessian's entry below
the diagonal is the same variable as its mirror, so the result is exactly symmetric.
"""

from __future__ import annotations

from typing import Optional, Sequence

from ..trace.ir import Builder, Trace, gc_paused
from .elimination import ORDERS, LiveOperations, eliminated
from .forward import tangent_sweep
from .replay import fresh_name, labels_of, replay, seed_input, wrt_vars, zeros_like
from .reverse import active_set, adjoint_sweep, grad_reverse


def _gradient(trace: Trace, wrt: Optional[Sequence[str]]) -> tuple[Trace, list[str]]:
    names = [name for name, _ in wrt_vars(trace, wrt)]
    return grad_reverse(trace, names), names


@gc_paused()
def hvp(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Trace:
    """Value, gradient and Hessian-vector product of a single-output trace, from
    (inputs, directions `x.dot` of the `wrt` inputs). Outputs: y, x.bar for each
    x, then x.bar.dot = (∇²f·v)_x for each x."""
    grad, names = _gradient(trace, wrt)
    b = Builder(pull_negations=True)
    vmap = replay(b, grad, stop=len(grad.inputs))  # the sweep replays the rest as it goes
    inputs = dict(grad.inputs)
    taken = labels_of(grad)
    seeds = {inputs[x]: seed_input(b, grad, x, inputs[x], "dot", taken) for x in names}
    tan = tangent_sweep(b, grad, vmap, seeds)
    outputs = [(name, vmap[v]) for name, v in grad.outputs]
    taken = {name for name, _ in outputs}
    outputs += [(fresh_name(f"{name}.dot", taken), tan[v] if tan[v] is not None else zeros_like(b, grad, v, vmap))
                for name, v in grad.outputs[1:]]
    return b.finish(outputs)


@gc_paused()
def hessian(trace: Trace, wrt: Optional[Sequence[str]] = None) -> Trace:
    """Value, gradient and Hessian of a single-output trace. Outputs: y, x.bar for
    each x, then the n×n entries row by row, `xi.d.xj`."""
    grad, names = _gradient(trace, wrt)
    tensors = [x for x in names if grad.instrs[dict(grad.inputs)[x]].shape != ()]
    if tensors:
        raise NotImplementedError(f"the Hessian trace needs scalar variables ({', '.join(tensors)} "
                                  f"are tensors): use compile_hessian, which runs HVP sweeps")
    b = Builder(pull_negations=True)
    vmap = replay(b, grad)
    inputs = dict(grad.inputs)
    outputs = [(name, vmap[v]) for name, v in grad.outputs]
    gvars = [v for _, v in grad.outputs[1:]]
    entry: dict[tuple[int, int], int] = {}
    for j, xj in enumerate(names):
        tan = tangent_sweep(b, grad, vmap, {inputs[xj]: b.const(1.0)}, tag=xj)
        for i in range(j + 1):  # the upper triangle; the lower one mirrors it
            entry[i, j] = tan[gvars[i]] if tan[gvars[i]] is not None else zeros_like(b, grad, gvars[i], vmap)
    taken = {name for name, _ in outputs}
    outputs += [(fresh_name(f"{xi}.d.{xj}", taken), entry[min(i, j), max(i, j)])
                for i, xi in enumerate(names) for j, xj in enumerate(names)]
    return b.finish(outputs)


class Replayed:
    """`trace` replayed into a derivative pass's builder once, for `uses` passes: each
    call gives (builder, vmap) as a fresh replay would, a copy of the first but for
    the last use, which gets the first itself (so no more than one builder is held
    aside). mode="auto" builds two Jacobian traces of one primal, order="best" three:
    on the 3-link pendulum a replay took 0.22 ms of CPU, a copy 0.005 ms."""

    def __init__(self, trace: Trace, uses: int = 1):
        self.trace = trace
        self.uses = uses
        self._first: Optional[tuple[Builder, list]] = None

    def __call__(self) -> tuple[Builder, list]:
        self.uses -= 1
        if self._first is None:
            b = Builder(pull_negations=True)
            vmap = replay(b, self.trace)
            if self.uses <= 0:
                return b, vmap
            self._first = b, vmap
        b, vmap = self._first
        if self.uses <= 0:
            self._first = None   # the last use: the first builder itself
            return b, vmap
        return b.fork(), list(vmap)


@gc_paused()
def jacobian(trace: Trace, wrt: Optional[Sequence[str]] = None, mode: str = "forward", *,
             order: str = "best", replayed: Optional[Replayed] = None, above: Optional[int] = None
             ) -> Optional[Trace]:
    """Outputs y_1..y_m, then the m×n Jacobian row by row, `yi.d.xj`: from n tangent
    sweeps (mode="forward"), m adjoint sweeps (mode="reverse"), or vertex elimination
    on the linearized graph (mode="elimination", traces of scalars only; `order`:
    "markowitz", "forward", "reverse", or "best", the smallest: see elimination.py).
    `replayed`: a Replayed of `trace` that other passes start from too. `above`
    (sweeps only): None instead of the trace as soon as the sweeps so far show that
    it would have more than `above` operations (see LiveOperations)."""
    xs = wrt_vars(trace, wrt)
    ys = trace.outputs
    start = replayed if replayed is not None else \
        Replayed(trace, uses=len(ORDERS) - 1 if (mode, order) == ("elimination", "best") else 1)
    if mode == "elimination":
        b, vmap, entry = eliminated(trace, xs, order, start)
    elif mode in ("forward", "reverse"):
        b, vmap = start()
        entry = {}
    else:
        raise ValueError(f"unknown mode {mode!r} (use 'forward', 'reverse' or 'elimination')")
    live = None
    if above is not None and mode != "elimination":
        live = LiveOperations(b)
        live.add([vmap[v] for _, v in ys])   # the values: outputs of every Jacobian trace
    if mode == "forward":
        for j, (xname, xv) in enumerate(xs):
            tan = tangent_sweep(b, trace, vmap, {xv: b.const(1.0)}, tag=xname)
            column = [tan[yv] for _, yv in ys]
            for i, var in enumerate(column):
                entry[i, j] = var
            if live is not None and live.add([v for v in column if v is not None]) > above:
                return None
    elif mode == "reverse":
        active = active_set(trace, [v for _, v in xs])
        for i, (yname, yv) in enumerate(ys):
            adj = adjoint_sweep(b, trace, vmap, {yv: b.const(1.0)}, active, tag=yname)
            row = [adj[xv] for _, xv in xs]
            for j, var in enumerate(row):
                entry[i, j] = var
            if live is not None and live.add([v for v in row if v is not None]) > above:
                return None
    outputs = [(name, vmap[v]) for name, v in ys]
    taken = {name for name, _ in outputs}
    for i, (yname, yv) in enumerate(ys):
        for j, (xname, _) in enumerate(xs):
            var = entry[i, j] if entry[i, j] is not None else zeros_like(b, trace, yv, vmap)
            outputs.append((fresh_name(f"{yname}.d.{xname}", taken), var))
    return b.finish(outputs)


__all__ = ["hvp", "hessian", "jacobian", "Replayed"]
