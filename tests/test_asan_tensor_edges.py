"""Every C tensor op under ASan/UBSan at edge values and edge shapes, against the NumPy backend.

test_asan.py runs kernels at edge shapes on random normals; the values whose passes are
special (a row with a single +inf wrote past dst in log_softmax) were run only for the
softmax family. Here every op the C tensor backend emits (c_tensor_ops.EMITTERS, the views
of c_tensor_loops.VIEWS: matmul in each of its loop orders, sum/mean/max/min/logsumexp over
all axes, each axis and keepdims, norm, softmax, log_softmax along each axis and the
stable rewrites' picks, outer, transpose, reshape, stack, concatenate, index and slices,
diag, diagonal, where, the adjoints' sum_to, scatter and size_ratio, and the
log_softmax family's internal ops) is compiled as value, grad, jvp and hvp (the picks:
stable=True) and called at sizes 0, 1, 2 (and 3, 5, 17: the unrolled and vector loops'
tails) along each axis, on inputs holding +inf, -inf, NaN, -0.0, the least subnormal,
±1e308, all-equal fills, and mixtures. Each result must have NumPy's NaN and signed-inf
positions and its finite values within 1e-12 relative, and no sanitizer may report (the
harness is test_asan's: one subprocess per test, the runtime preloaded).

Each program is many ops on inputs of their own (A3, W3, A3_dot belong to term 3), so
that a term's NaN masks no other's result: one kernel build covers many ops (the builds,
not the calls, are this file's time). The scalar programs weight each term by an input
of its own (sum(T_k * W_k)): term k's gradient is its own.

Two things about the values. (1) ±1e308 in a sum of products overflows or not as the
order of the additions and FMA contraction have it (BLAS gave -1.43e308 for a dot product
one of whose products is -2.0e308 alone; the C loops give -inf), and an exact 0 such as
J·1 = 0 comes out as ~1e-16 of the 1e308 scale: so a single edge goes into one input of
each term (two huge values never meet in one of its sums), and at a pattern with ±1e308
a result both backends give as non-finite or beyond 1e300 passes, but where either side
is an ordinary number (finite, below 1e300) the other must be it, within 1e-12 relative
or 1e297 (~1e-11 of the inputs' scale). That still catches an overflow to ±inf where the
answer is finite: log_softmax's tangent along axis 0 at a constant 1e308 tangent was -inf
in the NumPy backend, 0 in C (the test at the end; both are -inf along the last axis,
where the exact tangent is 0 too). (2) The C wrapper takes its outputs and
work blocks from np.empty; the script makes np.empty fill float arrays with NaN, so an
element a kernel never writes, or a temporary read before it is written, differs from
NumPy instead of holding whatever memory held.
"""

from __future__ import annotations

import pytest

from test_asan import _sanitized

# The definitions (also exec'd by the op-coverage test below, which builds no kernel).
COMMON = r'''
import re
import zlib
import numpy as np
from exprcompiler.bench.runner import flat_arrays
from exprcompiler import ShapeError, compile_expr, compile_grad, compile_hvp, compile_jvp
from exprcompiler.shape_binding import concrete
from exprcompiler.trace.ir import Builder, trace_from_builder

MAKE = {"value": compile_expr, "grad": compile_grad, "jvp": compile_jvp, "hvp": compile_hvp,
        "stable value": lambda e, **kw: compile_expr(e, stable=True, **kw),
        "stable grad": lambda e, **kw: compile_grad(e, stable=True, **kw),
        "stable jvp": lambda e, **kw: compile_jvp(e, stable=True, **kw),
        "stable hvp": lambda e, **kw: compile_hvp(e, stable=True, **kw)}
EDGES = (np.inf, -np.inf, np.nan, -0.0, 5e-324, 1e308, -1e308)   # (mixtures: the first five)
FILLS = (1.5, -0.0, np.inf, -np.inf, 1e308, 5e-324)


def terms_of(pairs):
    """[(text, {input: shape})] -> (the texts with each input suffixed by its term's
    number, the shapes of those inputs)."""
    texts, shapes = [], {}
    for k, (text, sh) in enumerate(pairs):
        for name, s in sh.items():
            text = re.sub(rf"\b{name}\b", f"{name}{k}", text)
            shapes[f"{name}{k}"] = s
        texts.append(text)
    return texts, shapes


def listing(texts):
    """The terms as the outputs of one program (value and jvp)."""
    return "\n".join(f"t{k} = {t}" for k, t in enumerate(texts)) + "\n" + ", ".join(f"t{k}" for k in range(len(texts)))


def weighted(texts, shapes):
    """The terms as one scalar, sum(T_k * W_k), each W_k an input of T_k's shape; with it
    the shapes of the W_k."""
    f = compile_expr(listing(texts), shapes=shapes)
    weights = {f"W{k}": f.trace.instrs[v].shape for k, (_, v) in enumerate(f.trace.outputs)}
    return " + ".join(f"sum(({t}) * W{k})" for k, t in enumerate(texts)), {**shapes, **weights}


def group(name):
    """The term an input belongs to: its name's number (A3, W3, A3_dot: term 3)."""
    return re.sub(r"\D", "", name.split("_")[0]) or name


def arguments(f, sizes, rng, pattern):
    """The inputs at `sizes`: normals, then by pattern ("one", (edge, _)): one element
    of one input of each term (drawn) the edge; ("fill", c): every element of every input
    c; ("mixed", _): about 30% of the elements an edge other than ±1e308."""
    names = [n for n, _ in f.trace.inputs]
    members = {}
    for name in names:
        members.setdefault(group(name), []).append(name)
    chosen = {g: ns[rng.integers(len(ns))] for g, ns in members.items()}
    kind, value = pattern
    out = []
    for name, v in f.trace.inputs:
        a = rng.normal(size=tuple(max(d, 0) for d in concrete(f.trace.instrs[v].shape, sizes)))
        if kind == "fill":
            a[...] = value
        elif kind == "one" and a.size and chosen[group(name)] == name:
            a.flat[rng.integers(a.size)] = value[0]
        elif kind == "mixed" and a.size:
            hit = rng.random(a.size) < 0.3
            a.flat[hit] = rng.choice(np.array(EDGES[:5]), hit.sum())
        out.append(a)
    return out


PATTERNS = ([("one", (e, k)) for e in EDGES for k in (0, 1)] + [("fill", c) for c in FILLS]
            + [("mixed", 0), ("mixed", 1)])


def outcome(f, args):
    try:
        with np.errstate(all="ignore"):
            return flat_arrays(f(*args))
    except ShapeError as err:
        return str(err)


def differs(g, w, big):
    """'' where the kernel's g is the NumPy backend's w: the shape, the NaN and signed-inf
    positions, finite values within 1e-12 relative. `big` (a pattern with ±1e308): only
    where either side is an ordinary number (finite, |x| < 1e300), the other is it."""
    if g.shape != w.shape:
        return f"shape {g.shape} against {w.shape}"
    if big:
        plain = (np.isfinite(g) & (np.abs(g) < 1e300)) | (np.isfinite(w) & (np.abs(w) < 1e300))
        g, w, atol = g[plain], w[plain], 1e297
    else:
        atol = 1e-14
    for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        if not np.array_equal(test(g), test(w)):
            return f"{name} at {np.argwhere(test(g) != test(w))[:4].tolist()}: {g.ravel()[:4]} against {w.ravel()[:4]}"
    fin = np.isfinite(w)
    bad = np.abs(g[fin] - w[fin]) > 1e-12 * np.maximum(np.abs(g[fin]), np.abs(w[fin])) + atol
    return f"values {g[fin][bad][:3]} against {w[fin][bad][:3]}" if bad.any() else ""


KNOWN = {}   # case name -> patterns left out for a known bug (named where KNOWN is filled)


def run(cases):
    """Every case, kind, size and pattern (but KNOWN's); the failures as lines."""
    calls = refused = 0
    failures = []
    for name, program, shapes, kinds, grid in cases:
        for kind in kinds:
            f_np = MAKE[kind](program, shapes=shapes)
            f_c = MAKE[kind](program, shapes=shapes, backend="c")
            for sizes in grid:
                for pattern in [p for p in PATTERNS if p not in KNOWN.get(name, ())]:
                    rng = np.random.default_rng(zlib.crc32(repr((name, kind, sizes, pattern)).encode()))
                    args = arguments(f_np, sizes, rng, pattern)
                    want, got = outcome(f_np, args), outcome(f_c, args)
                    calls += 1
                    if isinstance(want, str) or isinstance(got, str):
                        refused += 1
                        if got != want:
                            failures.append(f"{name}, {kind} at {sizes}, {pattern}: refused {want!r}, C {got!r}")
                        continue
                    big = pattern[0] != "mixed" and abs(np.asarray(pattern[1]).ravel()[0]) == 1e308
                    for k, (g, w) in enumerate(zip(got, want)):
                        why = differs(g, w, big)
                        if why:
                            failures.append(f"{name}, {kind} at {sizes}, {pattern}: result {k}: {why}")
    return calls, refused, failures
'''

# The ops with an identity (no refusal at size 0): sizes 0, 1, 2, 5 along each axis.
IDENTITY = r'''
MN = ("m", "n")
TERMS, SHAPES = terms_of([
    ("sum(A)", {"A": MN}), ("sum(A, axis=0)", {"A": MN}), ("sum(A, axis=1, keepdims=True) * B", {"A": MN, "B": MN}),
    ("mean(A, axis=1)", {"A": MN}), ("mean(A, axis=0, keepdims=True) + B", {"A": MN, "B": MN}),
    ("mean(A)", {"A": MN}), ("norm(A)", {"A": MN}),
    # matmul: each loop order (dot rows, rows accumulated, transposed views) and the dot
    ("A @ u", {"A": MN, "u": ("n",)}), ("y @ A", {"A": MN, "y": ("m",)}), ("A @ B.T", {"A": MN, "B": MN}),
    ("A.T @ B", {"A": MN, "B": MN}), ("u @ v", {"u": ("n",), "v": ("n",)}), ("A.T @ y", {"A": MN, "y": ("m",)}),
    ("u @ A.T", {"A": MN, "u": ("n",)}), ("outer(y, u)", {"y": ("m",), "u": ("n",)}),
    # broadcasts (their adjoints: sum_to)
    ("A * u", {"A": MN, "u": ("n",)}), ("A.T * y + s", {"A": MN, "y": ("m",), "s": ()}),
    ("stack(A, B, axis=1)", {"A": MN, "B": MN}), ("stack(y, z)", {"y": ("m",), "z": ("m",)}),
    ("concatenate(P, Q, axis=0)", {"P": (2, "n"), "Q": (1, "n")}),
    ("concatenate(A, B.T.T, axis=1)", {"A": ("m", 2), "B": ("m", 1)}),
    ("where(A > B, A * B, A - B)", {"A": MN, "B": MN}),
    ("maximum(A, B) + minimum(A, u) + abs(A) * sign(B)", {"A": MN, "B": MN, "u": ("n",)}),
])
GRID = [{"m": m, "n": n} for m in (0, 1, 2, 5) for n in (0, 1, 2, 5)]
CASES = [("identity ops", listing(TERMS), SHAPES, ["value", "jvp"], GRID),
         ("identity ops weighted", *weighted(TERMS, SHAPES), ["grad", "hvp"], GRID)]
'''

# Reductions without an identity, softmax and log_softmax: along n (1, 2, 3, 5, 17), the
# other axis 0 too.
REDUCTIONS = r'''
MN, NM = ("m", "n"), ("n", "m")
TERMS, SHAPES = terms_of([
    ("max(A, axis=1)", {"A": MN}), ("min(A, axis=1, keepdims=True) * B", {"A": MN, "B": MN}),
    ("max(C, axis=0)", {"C": NM}), ("min(C, axis=0)", {"C": NM}), ("max(v) + min(w)", {"v": ("n",), "w": ("n",)}),
    ("max(v, axis=0) * min(v)", {"v": ("n",)}), ("logsumexp(v)", {"v": ("n",)}),
    ("logsumexp(A, axis=1)", {"A": MN}), ("logsumexp(C, axis=0)", {"C": NM}),
    ("logsumexp(A, axis=1, keepdims=True) * B", {"A": MN, "B": MN}),
    ("softmax(A)", {"A": MN}), ("softmax(C, axis=0)", {"C": NM}), ("softmax(v)", {"v": ("n",)}),
    ("log_softmax(A)", {"A": MN}), ("log_softmax(C, axis=0)", {"C": NM}), ("log_softmax(v)", {"v": ("n",)}),
])
GRID = [{"m": m, "n": n} for m in (0, 1, 2, 5) for n in (1, 2, 3, 5, 17)]
CASES = [("reductions", listing(TERMS), SHAPES, ["value", "jvp"], GRID),
         ("reductions weighted", *weighted(TERMS, SHAPES), ["grad", "hvp"], GRID)]
'''

# Views (index, slices, reshape of a strided view, stack of columns) at n = 0..5 (refused
# alike below the keys' reach), diag and diagonal (the Builder's: no spelling), and the
# stability rules' picks and rewrites (stable=True).
VIEWS = r'''
X3 = ("n", 3)
VIEW_TERMS, VIEW_SHAPES = terms_of([
    ("x[1:-1] * x[0] + x[-1]", {"x": ("n",)}), ("X[:, ::2] * X[-1, 1:]", {"X": X3}),
    ("reshape(X[:, 1], shape=(-1, 1)) * reshape(X[0], shape=(1, 3))", {"X": X3}),
    ("reshape(x[2:], shape=(-1, 1)) * outer(x, x)[2:, :-1]", {"x": ("n",)}),
    ("X[1:, -1] + X[:-1, 0]", {"X": X3}), ("stack(X[:, 0], X[:, 2], axis=1)", {"X": X3}),
])


def diagonals(weights):
    b = Builder()
    A, v, C = b.input("A0", ("n", "n")), b.input("v1", ("n",)), b.input("C2", ("n", "n"))
    terms = [b.diagonal(A), b.diag(v), b.diagonal(b.index(C, key=((1, None, None), (1, None, None))))]
    if not weights:
        return trace_from_builder(b, [(f"t{k}", t) for k, t in enumerate(terms)])
    parts = [b.sum(b.mul(t, b.input(f"W{k}", b.shape(t)))) for k, t in enumerate(terms)]
    return trace_from_builder(b, [("y", b.add(b.add(parts[0], parts[1]), parts[2]))])


STABLE_TERMS, STABLE_SHAPES = terms_of([
    ("log(exp(x[0])/sum(exp(x)))", {"x": ("n",)}), ("log(softmax(x)[-1])", {"x": ("n",)}),
    ("log(sum(exp(x)))", {"x": ("n",)}),
    ("log(exp(x[1])/sum(exp(x))) + 2*log(softmax(x)[0]) - (logsumexp(x) - x[-1])", {"x": ("n",)}),
    ("log(softmax(A))", {"A": ("m", "n")}), ("log(softmax(C, axis=0))", {"C": ("n", "m")}),
    ("log(sum(exp(A), axis=1))", {"A": ("m", "n")}),
])
GRID = [{"n": n} for n in range(6)]
STABLE_GRID = [{"m": m, "n": n} for m in (0, 1, 2) for n in (1, 2, 3, 5, 17)]
CASES = [("views", listing(VIEW_TERMS), VIEW_SHAPES, ["value", "jvp"], GRID),
         ("views squared", " + ".join(f"sum(({t})**2)" for t in VIEW_TERMS), VIEW_SHAPES, ["grad", "hvp"], GRID),
         ("diagonals", diagonals(False), None, ["value", "jvp"], GRID),
         ("diagonals weighted", diagonals(True), None, ["grad", "hvp"], GRID),
         ("stable", listing(STABLE_TERMS), STABLE_SHAPES, ["stable value", "stable jvp"], STABLE_GRID),
         ("stable weighted", *weighted(STABLE_TERMS, STABLE_SHAPES), ["stable grad", "stable hvp"], STABLE_GRID)]
'''

MAKE_KINDS = ("value", "grad", "jvp", "hvp", "stable value", "stable grad", "stable jvp", "stable hvp")
# The sanitized subprocess's checks that it is one, and its np.empty, whose float arrays
# are NaN: an output lane or a work block that no kernel writes shows (the C wrapper's
# outputs and work blocks come from it). test_asan_float32_edges' subprocess runs it too.
POISON = r'''
from exprcompiler.backends import c_build
assert "-fsanitize=address,undefined" in " ".join(c_build.extra_flags()), c_build.extra_flags()
_empty = np.empty


def poisoned(shape, dtype=float, *args, **kwargs):
    x = _empty(shape, dtype, *args, **kwargs)
    if x.dtype.kind == "f":
        x.fill(np.nan)
    return x


import numpy.ma  # noqa: E402,F401 - (imported first: it wraps np.empty and reads its docstring)
poisoned.__doc__ = _empty.__doc__
np.empty = poisoned
'''
RUN = POISON + r'''
calls, refused, failures = run([(*case[:3], [k for k in case[3] if k in KINDS], case[4]) for case in CASES])
assert not failures, f"{len(failures)} of {calls} calls differ:\n" + "\n".join(failures[:30])
print(f"TENSOR EDGES OK: {calls} calls, {refused} refused")
'''


PARTS = {"identity-value-jvp": (IDENTITY, ["value", "jvp"]), "identity-grad": (IDENTITY, ["grad"]),
         "identity-hvp": (IDENTITY, ["hvp"]), "reductions-value-jvp": (REDUCTIONS, ["value", "jvp"]),
         "reductions-grad": (REDUCTIONS, ["grad"]), "reductions-hvp": (REDUCTIONS, ["hvp"]),
         "views-diagonals-stable": (VIEWS, list(MAKE_KINDS))}


# One subprocess per part: each inside _sanitized's 300 s at load 10-14 on 2 cores (the
# kernel builds are most of the time: the identity ops' HVP, ~45 s of gcc unsanitized).
@pytest.mark.slow
@pytest.mark.parametrize("part", PARTS)
def test_tensor_ops_at_edge_values_are_clean_and_agree(tmp_path, part):
    cases, kinds = PARTS[part]
    _sanitized(tmp_path, COMMON + cases + f"KINDS = {kinds!r}\n" + RUN, "TENSOR EDGES OK")


def test_the_programs_cover_every_op_the_c_tensor_backend_emits():
    """Every op of c_tensor_ops.EMITTERS and c_tensor_loops.VIEWS is in some program's
    trace (those traces are the C kernels' too): a new op joins the programs above."""
    from exprcompiler.backends.c_tensor_loops import VIEWS as VIEW_OPS
    from exprcompiler.backends.c_tensor_ops import EMITTERS
    seen = set()
    for cases in (IDENTITY, REDUCTIONS, VIEWS):
        space: dict = {}
        exec(COMMON + cases, space)
        for _, program, shapes, kinds, _ in space["CASES"]:
            for kind in kinds:
                seen |= {ins.op for ins in space["MAKE"][kind](program, shapes=shapes).trace.instrs}
    missing = (set(EMITTERS) | set(VIEW_OPS)) - seen
    assert not missing, sorted(missing)


def test_log_softmax_tangent_along_axis_0_at_1e308_is_the_c_loops_and_finite():
    """The NumPy backend gave -inf, the C kernel 0 (J·1 = 0: the exact tangent): it summed
    e·t and then divided by S, where the C loops sum s·t along an axis other than the
    last (runtime.log_softmax_jvp now does too)."""
    import numpy as np
    from exprcompiler import compile_jvp
    C = np.full((2, 3), 1e308)
    with np.errstate(all="ignore"):
        got = compile_jvp("log_softmax(C, axis=0)", shapes={"C": (2, 3)})(C, C)[1]
        want = compile_jvp("log_softmax(C, axis=0)", shapes={"C": (2, 3)}, backend="c")(C, C)[1]
    assert np.array_equal(want, np.zeros((2, 3)))   # (C: the exact tangent)
    assert np.array_equal(got, want), got
