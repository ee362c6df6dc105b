"""The Python front door for second order and Jacobians: compile_hvp, compile_hessian,
compile_jacobian, and explain (what each derivative costs, in trace operations).

The traces come from passes.jacobian (compositions of the tangent and adjoint
sweeps); compiling and calling them goes through api's one backend dispatch, and
results come in their final layout: a gradient (..., n), a Hessian (..., n, n), a
Jacobian (..., m, n), with the batch shape first, each written by the kernel (every
entry is a trace output, stored into its column of the array: see api.Compiled). A
dense C Jacobian or Hessian takes one point given as floats, and `.at(x)`, straight
to its kernel's one-point entry (dense_point.py).
"""

from __future__ import annotations

from typing import Optional


from . import api, passes
from .dense_point import PointCompiled
from .frontend import to_trace
from .passes.jacobian import Replayed
from .recipe import reproducible
from .shape_binding import is_tensor_trace
from .stack_room import fresh_chunk
from .stability import stabilized
from .tensor_jacobians import TensorHessian, TensorJacobian
from .trace.ir import Trace

JACOBIAN_MODES = ("auto", "forward", "reverse", "elimination")
CHEAP_GRADIENT_BOUND = 5  # reverse-mode gradient <= about 4-5x the function's operations


@fresh_chunk  # once per call: see stack_room.py
@reproducible
def compile_hvp(expr, wrt=None, *, backend: str = "numpy", threads: Optional[int] = None,
                shapes=None, stable: bool = api.DEFAULT_STABLE, dtype=None) -> api.Compiled:
    """Value, gradient and Hessian-vector product in one call, forward over reverse:
    `h(*args, *v) -> (value, (g_x, ...), ((∇²f·v)_x, ...))`; the direction arguments
    are named `x_dot` for each x in `wrt`."""
    api._check_backend(backend, threads)
    dtype = api.resolve_dtype(dtype)
    rewrites: list = []
    primal, wrt, trace, what = api.kind_trace("hvp", expr, wrt, shapes=shapes, stable=stable, rewrites=rewrites)
    n = len(wrt)

    def nest(results):
        return results[0], tuple(results[1:1 + n]), tuple(results[1 + n:])
    return api._build("hvp", primal, trace, backend=backend, wrt=wrt, mode="forward over reverse",
                      func_name="f_hvp", what=what, threads=threads,
                      layout=(((),) * len(trace.outputs), nest), rewrites=rewrites, dtype=dtype)


@fresh_chunk  # once per call: see stack_room.py
@reproducible
def compile_hessian(expr, wrt=None, *, backend: str = "numpy", threads: Optional[int] = None,
                    shapes=None, sparse: bool = False, stable: bool = api.DEFAULT_STABLE, dtype=None):
    """Value, gradient and Hessian: `H(*args) -> (value, gradient (..., n), Hessian
    (..., n, n))`, rows and columns in `wrt` order. One tangent sweep of the gradient
    trace per variable; the Hessian is exactly symmetric. `sparse=True`: the Hessian
    as a scipy.sparse.csr_matrix from star-colored HVP sweeps (sparse_jacobian.py)."""
    api._check_backend(backend, threads)
    dtype = _dense_only(api.resolve_dtype(dtype), sparse)
    primal = to_trace(expr, shapes)
    if sparse:
        from .sparse_jacobian import SparseHessian
        primal, wrt = api.with_wrt(primal, wrt)
        return SparseHessian(primal, wrt, backend=backend, threads=threads, stable=stable)
    if is_tensor_trace(primal):
        return TensorHessian(compile_hvp(primal, wrt, backend=backend, threads=threads, stable=stable, dtype=dtype))
    rewrites: list = []
    primal, wrt, trace, what = api.kind_trace("hessian", primal, wrt, stable=stable, rewrites=rewrites)
    n = len(wrt)
    return api._build("hessian", primal, trace, backend=backend, wrt=wrt, mode="forward over reverse",
                      func_name="f_hessian", what=what, threads=threads, layout=(((), (n,), (n, n)), tuple),
                      rewrites=rewrites, dtype=dtype, cls=PointCompiled)


def choose_mode(n_inputs: int, n_outputs: int) -> str:
    """The lecture's rule: forward mode costs n sweeps, reverse mode m sweeps."""
    return "forward" if n_inputs <= n_outputs else "reverse"


def elimination_order(n_inputs: int, n_outputs: int) -> str:
    """The order of vertex elimination that mode="auto" tries beside the sweeps.

    Eliminating in trace order keeps each vertex's row over the inputs, so the pass
    forms at most n products per edge, the bound of n tangent sweeps; in reverse
    order at most m, the bound of m adjoint sweeps. Measured (the passes alone): a
    wide function, n = 500, m = 2, 6,501 operations: forward order 29.7 s, reverse
    order 0.79 s, the reverse sweeps 2.4 s; random programs (n = 6, m = 3-12, 300 to
    10^4 statements; benchmarks/bench_jacobian_modes.py --scaling) forward order
    0.8-1.5x the time of the sweeps the rule picks, both linear in the statements,
    and at 3·10^4 statements no more memory (tracemalloc peak 70 MB against the
    forward sweeps' 80 MB). Forward order up to n = 2m keeps the pass within twice
    the work bound of the sweeps `auto` builds anyway, and takes in the pendulum of
    Kane's method (n = 2m: positions and speeds), where forward order is the smallest
    of the three by 16-20% at 3-20 links. Markowitz order, left to mode="elimination",
    has no such bound on its fill-in."""
    return "forward" if n_inputs <= 2 * n_outputs else "reverse"


def auto_candidates(primal: Trace, wrt, built: Optional[dict] = None) -> dict:
    """The Jacobian traces mode="auto" weighs, {mode: trace}: the sweeps of the
    lecture's rule, and vertex elimination (elimination_order) when n > 1 and m > 1
    (with one input or one output it is the one sweep). `built`: traces made already."""
    built = built or {}
    m, n = len(primal.outputs), len(wrt)
    sweep = choose_mode(n, m)
    both = n > 1 and m > 1
    replayed = Replayed(primal, uses=1 + both - (sweep in built))  # the passes start from one replay
    out = {sweep: built[sweep] if sweep in built else passes.jacobian(primal, wrt, sweep, replayed=replayed)}
    if both:
        out["elimination"] = passes.jacobian(primal, wrt, "elimination", order=elimination_order(n, m),
                                             replayed=replayed)
    return out


def auto_pick(candidates: dict) -> str:
    """The elimination trace when it has fewer operations than the sweeps' (each
    operation is a statement of the kernel), else the sweeps. Measured in C
    (benchmarks/bench_jacobian_modes.py --callgrind, instructions per call): the
    n-link pendulum's Jacobian at 3, 6, 10, 20 links, 23-26% fewer operations than
    the reverse sweeps (4,914 against 6,648 at 20 links), 6-14% fewer in the
    one-point entry (19.7k against 22.8k at 20 links) and 4-8% fewer per point of a
    batch: the copies in and out, the tape and sin/cos do not shrink with the trace.
    On the tall and wide shapes and two random programs, in every mode and order,
    fewer operations gave fewer instructions, one point or a batch. The second pass
    costs less than the smaller kernel saves in gcc: compile_jacobian(backend="c")
    cold, 10 and 20 links, 1.73 and 5.8 s against 1.90 and 7.0 s with the reverse
    sweeps alone (wall, median of 3 interleaved, load 5)."""
    modes = list(candidates)
    if "elimination" in candidates and \
            operations(candidates["elimination"]) < operations(candidates[modes[0]]):
        return "elimination"
    return modes[0]


def auto_jacobian(primal: Trace, wrt) -> tuple[str, Trace]:
    """(mode, Jacobian trace) that mode="auto" compiles: auto_pick's choice among
    auto_candidates, found with less work. The elimination trace is built first, and
    the sweeps stop as soon as the rows (or columns) they have built need more
    operations than it has (passes.jacobian's `above`): then they can only lose. On
    the pendulum the reverse sweeps stop after 3 of 4 rows at 3 links, 8 of 11 at 10."""
    m, n = len(primal.outputs), len(wrt)
    sweep = choose_mode(n, m)
    if n > 1 and m > 1:
        replayed = Replayed(primal, uses=2)
        elimination = passes.jacobian(primal, wrt, "elimination", order=elimination_order(n, m), replayed=replayed)
        bound = operations(elimination)
        sweeps = passes.jacobian(primal, wrt, sweep, replayed=replayed, above=bound)
        if sweeps is None or bound < operations(sweeps):
            return "elimination", elimination
        return sweep, sweeps
    return sweep, passes.jacobian(primal, wrt, sweep)


@fresh_chunk  # once per call: see stack_room.py
@reproducible
def compile_jacobian(exprs, wrt=None, *, mode: str = "auto", backend: str = "numpy",
                     threads: Optional[int] = None, shapes=None, sparse: bool = False,
                     stable: bool = api.DEFAULT_STABLE, dtype=None):
    """Values and Jacobian of a vector-valued function: `J(*args) -> (values (..., m),
    Jacobian (..., m, n))`. `exprs`: several outputs ("f1; f2", a program ending in
    "a, b", a list of expressions, a SymPy vector). `mode="auto"` builds the
    sweeps of the lecture's rule (forward mode, n sweeps, when n <= m; reverse mode, m
    sweeps, otherwise) and, with several inputs and outputs, vertex elimination in one
    order (elimination_order), and compiles the trace with fewer operations (auto_pick;
    the sweeps stop where they can no longer have fewer: auto_jacobian);
    `J.mode` says which: "forward", "reverse" or "elimination".
    With tensors (`shapes=`), see TensorJacobian: the outputs and the `wrt` tensors are
    flattened, and the sweeps run at call time, when m and n are known.
    `sparse=True`: the Jacobian as a scipy.sparse.csr_matrix from the compressed
    sweeps of a coloring (see sparse_jacobian.py; `mode="auto"` colors both ways)."""
    api._check_backend(backend, threads)
    dtype = _dense_only(api.resolve_dtype(dtype), sparse)
    if mode not in JACOBIAN_MODES:
        raise ValueError(f"unknown mode {mode!r} (use 'auto', 'forward', 'reverse' or 'elimination')")
    if mode == "elimination" and sparse:
        raise ValueError("mode='elimination' accumulates a dense Jacobian; sparse=True compresses forward or "
                         "reverse sweeps: use mode='auto', 'forward' or 'reverse' with it")
    primal, wrt = api.with_wrt(to_trace(exprs, shapes), wrt)
    if sparse:
        from .sparse_jacobian import SparseJacobian
        return SparseJacobian(primal, wrt, mode, backend=backend, threads=threads, stable=stable)
    if is_tensor_trace(primal):
        if mode == "elimination":
            raise NotImplementedError("mode='elimination' needs scalar inputs and outputs (its graph's edges are "
                                      "scalar partials); with tensors use mode='auto', 'forward' or 'reverse'")
        firings: list = []
        return TensorJacobian(api.stabilized(primal, "primal", stable, firings), wrt, mode, backend=backend,
                              threads=threads, sweeps=api.sweeps_of(dtype), dtype=dtype, stable=stable,
                              rewrites=firings)
    m, n = len(primal.outputs), len(wrt)
    rewrites: list = []
    chosen: list = []
    _, _, trace, what = api.kind_trace("jacobian", primal, wrt, mode, stable=stable, rewrites=rewrites, chosen=chosen)
    return api._build("jacobian", primal, trace, backend=backend, wrt=wrt, mode=chosen[0], func_name="f_jacobian",
                      what=what, threads=threads, layout=(((m,), (m, n)), tuple), rewrites=rewrites, dtype=dtype,
                      cls=PointCompiled)


def _dense_only(dtype, sparse: bool):
    if dtype is not None and sparse:
        raise ValueError("dtype='float32' with sparse=True is not supported: the sparse Jacobians and "
                         "Hessians are float64 (SciPy's sparse solvers work in float64); drop one of the two")
    return dtype


def operations(trace: Trace) -> int:
    """The size that costs time: instructions other than inputs, constants and copies."""
    return sum(1 for ins in trace.instrs if ins.op not in ("input", "const", "copy"))


@fresh_chunk  # once per call: see stack_room.py
def explain(expr, wrt=None, shapes=None, sparse: bool = False, stability: bool = False) -> str:
    """What each derivative of `expr` costs, in operations of its trace, against the
    cheap-gradient bound; for several outputs, the two ways to a Jacobian. `sparse=True`
    adds the sparse Hessian (one output) or Jacobian: nonzeros, colors, the mode chosen
    and the sweeps against the dense form (sparse_explain.py)."""
    given = to_trace(expr, shapes)
    primal, wrt = api.with_wrt(given, wrt)
    written = primal
    if stability:  # count what compile_*(stable=True) runs: the traces after the rewrites
        primal = stabilized(primal, "primal", True)
    absent = [w for w in wrt if w not in given.input_names]
    m, n = len(primal.outputs), len(wrt)
    base = operations(primal)
    rows = [("value", base, "")]

    def row(what: str, trace: Trace, note: str = "") -> None:
        trace = stabilized(trace, "derivative", stability)
        ratio = f"{operations(trace) / base:.2f}x the value" if base else ""
        rows.append((what, operations(trace), "; ".join(p for p in (ratio, note) if p)))

    scalar = not is_tensor_trace(primal)  # per-element sweeps need the sizes of tensors
    vector_output = m == 1 and primal.instrs[primal.outputs[0][1]].shape != ()
    if m == 1 and not (sparse and vector_output):  # sparse=True: a vector output's Jacobian below
        row("value + gradient, reverse mode", passes.grad_reverse(primal, wrt),
            f"cheap-gradient bound: <= {CHEAP_GRADIENT_BOUND}x, whatever n")
        if scalar:
            row("value + gradient, forward mode", passes.grad_forward(primal, wrt), f"{n} tangent sweeps")
        row("value + gradient + HVP", passes.hvp(primal, wrt), "forward over reverse")
        if scalar:  # (on tensors: one sweep per element, counted at call time)
            row("value + gradient + Hessian", passes.hessian(primal, wrt), f"{n} HVP-like sweeps")
    if m > 1 and not scalar:
        raise NotImplementedError("explain: Jacobians of several tensor outputs are not available yet")
    if m > 1:
        forward, reverse = passes.jacobian(primal, wrt, "forward"), passes.jacobian(primal, wrt, "reverse")
        row("Jacobian, forward mode", forward, f"{n} tangent sweep{'s' if n != 1 else ''}")
        row("Jacobian, reverse mode", reverse, f"{m} adjoint sweep{'s' if m != 1 else ''}")
        candidates = auto_candidates(primal, wrt, {"forward": forward, "reverse": reverse})
        if "elimination" in candidates:
            row("Jacobian, vertex elimination", candidates["elimination"], f"{elimination_order(n, m)} order")
    names = ", ".join(primal.input_names[:8]) + (", ..." if len(primal.inputs) > 8 else "") or "none"
    source = " ".join(primal.source.split()) if primal.source else "(a trace)"
    head = [f"function: {source if len(source) <= 100 else source[:97] + '...'}",
            f"inputs: {len(primal.inputs)} ({names}); differentiated: n = {n}; outputs: m = {m}",
            "operations in each trace (not counting inputs and constants"
            + ("; the traces after the stability rewrites" if stability else "") + "):"]
    if absent:
        head.insert(2, f"not in the expression, so every derivative with respect to them is 0: {', '.join(absent)}")
    width = max(len(r[0]) for r in rows)
    body = [f"  {what.ljust(width)}  {count:7d}  {note}".rstrip() for what, count, note in rows]
    tail = []
    if m > 1:
        pick = choose_mode(n, m)
        tail = [f"the sweeps of mode='auto': {pick} mode, as n = {n} {'<=' if pick == 'forward' else '>'} m = {m}, "
                f"so {'n tangent' if pick == 'forward' else 'm adjoint'} sweeps are no more than "
                f"{'m adjoint' if pick == 'forward' else 'n tangent'} sweeps"]
        f_ops, r_ops = operations(forward), operations(reverse)
        if f_ops != r_ops:
            cheaper = "forward" if f_ops < r_ops else "reverse"
            tail.append(f"(here the {cheaper}-mode trace is {max(f_ops, r_ops) / max(1, min(f_ops, r_ops)):.2f}x "
                        f"smaller: {min(f_ops, r_ops)} against {max(f_ops, r_ops)} operations)")
        else:
            tail.append(f"(here both traces have {f_ops} operations)")
        auto = auto_pick(candidates)
        if "elimination" in candidates:
            e_ops, s_ops = operations(candidates["elimination"]), operations(candidates[pick])
            tail.append(f"mode='auto' picks {auto} mode: vertex elimination in {elimination_order(n, m)} order has "
                        f"{e_ops} operations, {'fewer than' if auto == 'elimination' else 'no fewer than'} "
                        f"the {pick}-mode trace's {s_ops}")
        else:
            tail.append(f"mode='auto' picks {auto} mode (with one variable, elimination is the tangent sweep)")
    if sparse:
        from .sparse_explain import explain_rows
        tail += explain_rows(primal, wrt)
    if stability:  # the rewrites compile_*(stable=True) applies, with their reasons (stability/show.py)
        from .stability.show import explain_rows as stability_rows
        tail += stability_rows(written, wrt, tensor=not scalar)
    from .display.explanation import Explanation  # prints as this text; a table in a notebook
    return Explanation("\n".join(head + body + tail), head, rows, tail)


__all__ = ["compile_hvp", "compile_hessian", "compile_jacobian", "explain", "choose_mode", "elimination_order",
           "auto_candidates", "auto_pick", "auto_jacobian", "operations"]
