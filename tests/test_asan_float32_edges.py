"""Float32 and float64 kernels of every elementwise op, and the stable forms, under
ASan/UBSan at edge values, against the NumPy backend at the same dtype.

test_asan.py and test_asan_tensor_edges.py run float64 kernels under the sanitizers.
Here (the harness is theirs: one subprocess per part, the sanitizer runtime preloaded,
every build with -fsanitize) the float kernels (dtype="float32": dtypes.c_source_float's
float text, the helpers' `sizeof(double) == 4` lines, c_tiles' 8-lane inner copies in
float) and the float64 ones are compiled as value, grad, jvp, vjp and hvp, stable=True
and not, of three kinds of program:

- every elementwise op of the op table (ops.OPS, as test_ops.DIFFERENTIABLE: internal
  ops such as expm1_shared or hypot3_slope0 too) on inputs of its own, one kernel for
  all (every_op_trace; gradients and HVPs of their sum, whose derivatives with respect to
  an op's inputs are that op's alone): every combination of the edge values for one and
  two arguments, 600 drawn for three, and the op's own `edges=`;
- the stability catalogue's scalar entries (log(1 + exp(x)) -> softplus, sigmoid,
  log1mexp, logaddexp, xlogy, hypot, log1p/expm1, sech2, erf/erfc ...), three to a
  kernel: small kernels, most of them on c_tiles' tiles (c_tiles.INNER_UP_TO);
- its vector entries (logsumexp, softmax, log_softmax and the picks), one program.

The values: 0, -0.0, +-inf, NaN, float32's subnormals (1e-45, 1e-40, -3e-39) and least
normal, its max, exp's overflow thresholds (88.7, 88.72, 89.4) and underflow (-87.3,
-103.97), and in float64 its subnormals, 1e308, 709.78, 710.5, -745.2; seeds (tangents,
cotangents, directions) 1, -0.5, +-0, 2, 0.0035. Each batch starts with 512 points of
moderate values and values the helpers' inner forms take (whole tiles of them: the
inner copies run), then the edges; calls of n = 1, 7, 8, 9, 17 (every window at 7 and
17) and 1000 points, the inputs views one element into an array of their own in every
other call (an unaligned start); vectors of n = 1 ... 1000 elements. The C wrapper's
np.empty fills float arrays with NaN: an element no kernel writes differs.

Agreement: the dtype of every array; NaN and +-inf at the same points; finite values
within tol = K eps (|r| + S + a) + K (the least subnormal), eps the dtype's unit
roundoff, K = 32, r the float64 NumPy result at the same (rounded) inputs and S the
condition there, measured: max over six random u in [-1, 1]^inputs of
|R(x (1 + u h)) - R(x)| / h, h = 2^-18, R float64 (S is about sum |x_i df/dx_i|: what a
relative change of the inputs does to the result). Why: each backend rounds each
operation, a relative error of eps; an error of the inputs' relative size is amplified
by S; K covers the steps (a derivative rule is a few operations) and the two backends.
a = 1 for derivative outputs (8 in the vector programs, values included, whose inputs
are normals of deviation 3; and a factor log2 n for their sums): derivative rules are
sums of products that cancel at some points, tanh's 1 - tanh^2 near |x| = 7 (one ulp of
tanh is 6% of it in float32), arctan2's mixed partial at |x| = |y|, acosh_root's second
derivative 1/r - x^2/r^3 at x = 300 (1% in float32 in both backends): their error is eps
times their terms', not the result's. Excused: results both below the least normal
(NumPy's runtime documents its accuracy where a result is a normal float: NumPy's
sigmoid'(89.4) is 0, C's e^-89.4), and in float32 a non-finite C result where NumPy's is
finite for the ops special.py computes in float64 (SPECIAL64; dtypes: NumPy keeps the
float64 intermediate, trigamma(1e-40) = 1e80 times a 0 seed is 0, the float kernel's is
inf and 0 inf NaN). Vector calls with +-max or 1e308 among the elements: only where
either side is an ordinary number (a sum of products of it overflows or not as the
order of the additions has it, as in test_asan_tensor_edges).

KNOWN: ops left out of the sweep for a bug found here, each pinned by an xfail(strict)
test at the end that names it (remove the mark and the KNOWN entry when the fix lands).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import HAVE_CC, NO_CC
from test_asan import _sanitized
from test_asan_tensor_edges import POISON

# The definitions (also exec'd by the coverage test, which builds no kernel).
COMMON = r'''
import re
import zlib
import numpy as np
from exprcompiler import ShapeError, compile_expr, compile_grad, compile_hvp, compile_jvp, compile_vjp, ops
from exprcompiler.stability.catalogue import CATALOGUE
from exprcompiler.trace.ir import Builder, trace_from_builder

MAKERS = {"value": compile_expr, "grad": compile_grad, "jvp": compile_jvp, "vjp": compile_vjp, "hvp": compile_hvp}
ELEMENTWISE = [op for op in ops.OPS.values() if not op.is_leaf and op.name != "copy" and op.elementwise]
F32MAX = float(np.finfo(np.float32).max)
# the values every argument takes (each dtype's), and seeds (tangents, cotangents, directions)
COMMON_EDGES = (0.0, -0.0, np.inf, -np.inf, np.nan, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.0, -7.25, 30.0)
EDGES = {"float32": COMMON_EDGES + (1e-45, -1e-45, 1e-40, -3e-39, 1.1754944e-38, F32MAX, -F32MAX, 88.7, -88.7, 89.4,
                                    -89.4, 88.72284, -87.33655, -103.97, 1e20),
         "float64": COMMON_EDGES + (5e-324, -5e-324, 1e-310, 2.2250738585072014e-308, 1e308, -1e308, 709.78, -709.79,
                                    710.5, -745.2, -746.0, 88.7, 89.4, 1e20)}
# values away from the helpers' edge steps (c_tiles' inner copies: a whole tile of them)
INNER = {"float32": (0.25, -1.5, 3.0, 88.7, 89.4, -88.7, -89.4, -103.9, 1e-40, -1e-40, 1e-45, 0.0, -0.0, 300.0, -300.0,
                     1e-30, 20.0, -17.0),
         "float64": (0.25, -1.5, 3.0, 689.9, -689.9, 345.0, -345.1, 344.9, 1e-310, -1e-310, 5e-324, 0.0, 1e-200,
                     88.7, 89.4, 20.0, -17.0)}
SEEDS = (1.0, -0.5, 0.0, 2.0, -0.0, 3.5e-3)
SIZES = (1, 7, 8, 9, 17, 1000)
EPS = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}


def every_op_trace(summed):
    """Every elementwise op on inputs of its own (<op>_x1, ...); `summed`: one output,
    their sum (its gradient and HVP with respect to an op's inputs are that op's alone)."""
    b = Builder()
    outs = []
    for op in ELEMENTWISE:
        xs = [b.input(f"{op.name}_x{k + 1}") for k in range(op.arity)]
        outs.append((f"y_{op.name}", b.apply(op.name, *xs)))
    if summed:
        total = outs[0][1]
        for _, v in outs[1:]:
            total = b.add(total, v)
        outs = [("y", total)]
    return trace_from_builder(b, outs)


def columns(arity, dtype, extra, rng):
    """Argument columns: every combination of the edges (a random 600 for three
    arguments), the op's own edge points, then the grid permuted once more."""
    e = np.array(EDGES[dtype])
    if arity == 1:
        pts = [(v,) for v in e]
    elif arity == 2:
        pts = [(a, b) for a in e for b in e]
    else:
        pts = [tuple(rng.choice(e, 3)) for _ in range(600)]
    pts += [tuple(p) for p in extra]
    cols = np.array(pts, dtype=float).T
    return [np.concatenate([c, c[rng.permutation(c.size)]]) for c in cols]


def as_dtype(a, dtype, offset):
    """`a` in `dtype`, as a view `offset` elements into an array of its own (an
    unaligned start at offset 1)."""
    buf = np.empty(a.size + offset, dtype)
    view = buf[offset:]
    view[...] = a
    return view


def leaves(result):
    """(y, (g1, g2)) or y -> [y, g1, g2], each as an array of its own dtype."""
    if isinstance(result, (tuple, list)):
        return [x for item in result for x in leaves(item)]
    return [np.asarray(result)]


def call(f, args):
    with np.errstate(all="ignore"):
        return leaves(f(*args))


def sensitivity(ref, args, base, rng):
    """Per output and element: max over six random u in [-1, 1] (one per input element) of
    |R(x (1 + u h)) - R(x)| / h, R the float64 NumPy function, h = 2^-18, `base` R(x); inf
    where a perturbed R is not finite and R(x) is."""
    h = 2.0 ** -18
    sens = [np.zeros(np.shape(b)) for b in base]
    for _ in range(6):
        moved = call(ref, [a * (1 + h * rng.uniform(-1.0, 1.0, np.shape(a))) for a in args])
        for k, (m, b) in enumerate(zip(moved, base)):
            m, b = np.broadcast_arrays(m, b)
            with np.errstate(all="ignore"):
                d = np.where(np.isfinite(m) | ~np.isfinite(b), np.abs(m - b) / h, np.inf)
            sens[k] = np.fmax(sens[k], np.where(np.isnan(d), 0.0, d))
    return sens


def differs(g, w, tol, label, float64_inside=False, dtype=None):
    """'' where C's g is NumPy's w: NaN and signed-inf positions, finite values within tol.
    `float64_inside`: where NumPy's is finite, C's may not be (see SPECIAL64)."""
    excused = float64_inside & np.isfinite(w) & ~np.isfinite(g)
    for what, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        bad = (test(g) != test(w)) & ~excused
        if bad.any():
            i = np.flatnonzero(bad)[:3]
            return f"{label}: {what} at {i.tolist()}: C {g[i].tolist()}, NumPy {w[i].tolist()}"
    tiny = np.finfo(dtype or w.dtype).tiny
    excused |= (np.abs(g) < tiny) & (np.abs(w) < tiny)
    fin = np.isfinite(w) & ~excused
    with np.errstate(all="ignore"):
        bad = fin & (np.abs(g.astype(float) - w.astype(float)) > tol)
    if bad.any():
        i = np.flatnonzero(bad)[:3]
        return f"{label}: values at {i.tolist()}: C {g[i].tolist()}, NumPy {w[i].tolist()}, tol {tol[i].tolist()}"
    return ""


def layout(cols_by_input, dtype, rng):
    """The batch of every input: a block of 512 points of INNER's values (whole tiles that
    run c_tiles' inner copies), then the input's edge columns, all of one length N."""
    n = max(600, *(c.size for c in cols_by_input.values()))
    inner = np.array(INNER[dtype])
    return {name: np.concatenate([rng.choice(inner, 512), np.resize(c, n)]) for name, c in cols_by_input.items()}


def windows(size, total, rng):
    """(start, offset) of the calls of `size` points: every window at 7 and 17 (each point
    once through the scalar tails and after whole vectors), 40 drawn at other sizes, at
    1000 the first (aligned and not) and the last; offsets 0 and 1 in turn (an unaligned
    start)."""
    starts = list(range(0, total - size + 1, size))
    if size not in (7, 17) and len(starts) > 40:
        starts = sorted(rng.choice(starts, 40, replace=False).tolist())
    if size == max(SIZES):
        starts = [0, 0, total - size]
    return [(s, k % 2) for k, s in enumerate(starts)]


# the ops special.py computes in float64 in the NumPy backend (dtypes: its results are
# cast once, at the end): where a float64 intermediate is beyond float32's range, the
# float kernel's is inf (a 0 seed times it NaN), NumPy's product finite
SPECIAL64 = {"digamma", "polygamma", "gamma", "lgamma", "erf", "erfc", "heaviside"}
# op -> (dtypes, bug): outputs left out of the sweep, each bug pinned by a test of its own
KNOWN = {"logaddexp": (("float32", "float64"), "logaddexp numpy"), "logaddexp3": (("float32", "float64"), "logaddexp numpy")}
TILED = []   # the kernels check() built with c_tiles' inner copies
K = 32   # roundings allowed, see the module docstring


def check(name, program, shapes, kind, stable, dtype, primal, skip=None):
    """One kernel of `program` (kind, stable, dtype) against the NumPy backend, at
    every size; the failures as lines, and the number of calls."""
    rng = np.random.default_rng(zlib.crc32(repr((name, kind, stable, dtype)).encode()))
    make = MAKERS[kind]
    f_np = make(program, shapes=shapes, stable=stable, dtype=dtype)
    f_c = make(program, shapes=shapes, stable=stable, dtype=dtype, backend="c")
    ref = f_np if dtype == "float64" else make(program, shapes=shapes, stable=stable)
    if "_point_inner(" in f_c.source:   # (c_tiles' inner copy: the run says how many kernels had one)
        TILED.append((name, kind, dtype))
    cols = layout(primal(dtype, rng), dtype, rng)
    total = next(iter(cols.values())).size
    full = []
    for k, nm in enumerate(f_np.inputs):
        c = cols[nm] if nm in cols else np.resize(np.roll(SEEDS, k), total)
        full.append(c.astype(dtype).astype(float))
    want = call(f_np, [c.astype(dtype) for c in full])
    base = call(ref, full)
    sens = sensitivity(ref, full, base, rng)
    eps = EPS[dtype]
    scale = [float(kind != "value" and k > 0 or kind in ("jvp", "vjp")) for k in range(len(base))]
    tols = [np.broadcast_to(K * eps * (np.abs(b) + s + a) + K * np.finfo(dtype).smallest_subnormal, (total,))
            for b, s, a in zip(base, sens, scale)]
    want = [np.broadcast_to(w, (total,)) for w in want]
    failures, calls = [], 0
    for size in SIZES:
        for start, offset in windows(size, total, rng):
            args = [as_dtype(c[start:start + size], dtype, offset) for c in full]
            got = call(f_c, args)
            calls += 1
            for k, (g, w, t) in enumerate(zip(got, want, tols)):
                out = f_np.trace.output_names[k]
                label = f"{name} {kind}{' stable' if stable else ''} {dtype} n={size} at {start}+{offset} {out}"
                if g.dtype != np.dtype(dtype):
                    failures.append(f"{label}: dtype {g.dtype}")
                    continue
                g = np.broadcast_to(g, (size,))
                key = re.sub(r"(\.bar|\.dot)+$", "", out)
                key = re.sub(r"_x\d+$", "", key[2:] if key.startswith("y_") else key)
                if (skip(out) if skip else key in KNOWN and dtype in KNOWN[key][0]):
                    continue
                why = differs(g, w[start:start + size], t[start:start + size], label,
                              dtype == "float32" and (key in SPECIAL64 or key == "y" and kind in ("grad", "hvp")))
                if why:
                    i = start + int(re.search(r"at \[(\d+)", why)[1])
                    shown = {nm: float(c[i]) for nm, c in zip(f_np.inputs, full)
                             if re.match(rf"{re.escape(key)}_x\d", nm) or key == "y" or "_x" not in nm}
                    failures.append(f"{why}; inputs {shown}")
    return failures, calls


def op_columns(dtype, rng):
    """Every op's inputs' columns (<op>_x<k>)."""
    out = {}
    for op in ELEMENTWISE:
        cols = columns(op.arity, dtype, [p for p, _ in op.edges], rng)
        out.update({f"{op.name}_x{k + 1}": c for k, c in enumerate(cols)})
    n = max(c.size for c in out.values())
    return {k: np.resize(c, n) for k, c in out.items()}


SCALAR_ENTRIES = [e for e in CATALOGUE if not e.shapes]


def entry_columns(names):
    """Columns for a group's inputs: each entry's inputs a grid of the edges."""
    def primal(dtype, rng):
        out = {}
        for entry in names:
            out.update(zip(entry, columns(len(entry), dtype, [], rng)))
        n = max(c.size for c in out.values())
        return {k: np.resize(c, n) for k, c in out.items()}
    return primal


# catalogue entries whose stable form meets a known bug (KNOWN), by dtype
KNOWN_ENTRIES = {"log(exp(a)+exp(b))": ("float32", "float64"), "log(exp(a)+exp(b)+exp(c))": ("float32", "float64")}


def tiled(entry):
    """Whether the stable form of `entry` calls a helper of c_tiles.INNER (its kernel, alone
    or beside two others, runs tiles with inner copies)."""
    from exprcompiler.backends.c_tiles import INNER as INNER_HELPERS
    return any(ops.OPS[ins.op].c in INNER_HELPERS for ins in compile_grad(entry.expr, stable=True).trace.instrs)


def catalogue_groups():
    """The scalar entries in kernels: three a kernel for those with tiles (the tiles need a
    small kernel, c_tiles.INNER_UP_TO), eight for the others (one build for more)."""
    small = [e for e in SCALAR_ENTRIES if tiled(e)]
    large = [e for e in SCALAR_ENTRIES if not tiled(e)]
    return [small[i:i + 3] for i in range(0, len(small), 3)] + [large[i:i + 8] for i in range(0, len(large), 8)]


def catalogue_cases():
    """(a group's sum, its inputs' columns, skip(dtype) -> skip(output name)): the inputs
    suffixed by their entry's place (x_0, a_1, ...); where an entry meets a known bug
    (KNOWN_ENTRIES) in a dtype, its inputs' derivatives and the sum left out."""
    cases = []
    for group in catalogue_groups():
        texts, names, known = [], [], {}
        for k, e in enumerate(group):
            t = e.expr
            for nm in e.ranges:
                t = re.sub(rf"\b{nm}\b", f"{nm}_{k}", t)
            texts.append(t)
            names.append([f"{nm}_{k}" for nm in e.ranges])
            for dt in KNOWN_ENTRIES.get(e.name, ()):
                known.setdefault(dt, set()).add(str(k))

        def skip(dtype, known=known):
            bad = known.get(dtype, set())
            return lambda out: bool(bad) and ("_" not in out or out.split(".")[0].split("_")[1] in bad)
        cases.append((" + ".join(f"({t})" for t in texts), entry_columns(names), skip))
    return cases


def vector_program():
    """The catalogue's vector entries (their stable forms: logsumexp, softmax, log_softmax
    and the picks) on inputs of their own, their last axis n: (the entries, the shapes)."""
    texts, shapes = [], {}
    for k, e in enumerate(e for e in CATALOGUE if e.shapes):
        t = e.expr.replace("[0, 1]", "[1, 0]")   # (a key every n reaches)
        for nm, shape in e.shapes:
            t = re.sub(rf"\b{nm}\b", f"{nm}{k}", t)
            shapes[f"{nm}{k}"] = tuple(shape[:-1]) + ("n",)
        texts.append(t)
    return texts, shapes


def vector_patterns(dtype):
    """The vectors' values: normals, one edge among normals (each edge), inner values only,
    30% edges."""
    return [("normal", None)] + [("one", e) for e in EDGES[dtype]] + [("inner", None), ("mixed", None)]


def vector_arguments(shapes, n, dtype, pattern, rng):
    """Arguments of `shapes` (their last axis n elements) by `pattern`, rounded to `dtype`."""
    kind, value = pattern
    out = []
    for shape in shapes:
        a = rng.normal(size=tuple(shape[:-1]) + (n,)) * 3
        flat = a.reshape(-1)
        if kind == "one":
            flat[rng.integers(flat.size)] = value
        elif kind == "inner":
            flat[:] = rng.choice(np.array(INNER[dtype]), flat.size)
        elif kind == "mixed":
            hit = rng.random(flat.size) < 0.3
            flat[hit] = rng.choice(np.array([e for e in EDGES[dtype] if not abs(e) > 1e30]), hit.sum())
        out.append(a.astype(dtype).astype(float))
    return out


def check_vectors(kind, dtype):
    """vector_program's kernel (stable; the entries as outputs for value and jvp, their sum
    for grad and hvp) against the NumPy backend at every n and pattern, inputs unaligned
    in turn."""
    texts, shapes = vector_program()
    program = (" + ".join(f"({t})" for t in texts) if kind in ("grad", "hvp") else
               "\n".join(f"t{k} = {t}" for k, t in enumerate(texts)) + "\n" + ", ".join(f"t{k}" for k in range(len(texts))))
    rng = np.random.default_rng(zlib.crc32(repr(("vectors", kind, dtype)).encode()))
    make = MAKERS[kind]
    f_np = make(program, shapes=shapes, stable=True, dtype=dtype)
    f_c = make(program, shapes=shapes, stable=True, dtype=dtype, backend="c")
    ref = f_np if dtype == "float64" else make(program, shapes=shapes, stable=True)
    failures, calls, eps = [], 0, EPS[dtype]
    for n in SIZES:
        for p, pattern in enumerate(vector_patterns(dtype)):
            args = vector_arguments([shapes.get(re.sub(r"_(dot|bar)$", "", nm), ()) for nm in f_np.inputs],
                                    n, dtype, pattern, rng)
            try:
                want = call(f_np, [a.astype(dtype) for a in args])
            except ShapeError as err:   # (a key beyond n: refused alike)
                try:
                    call(f_c, [a.astype(dtype) for a in args])
                except ShapeError as mine:
                    if str(mine) != str(err):
                        failures.append(f"vectors {kind} {dtype} n={n}: refused {err}, C {mine}")
                else:
                    failures.append(f"vectors {kind} {dtype} n={n}: refused {err}, C not")
                continue
            got = call(f_c, [as_dtype(a.ravel(), dtype, p % 2).reshape(a.shape) for a in args])
            base = call(ref, args)
            sens = None   # (computed where a result is beyond the tolerance without it)
            calls += 1
            for k, (g, w) in enumerate(zip(got, want)):
                label = f"vectors {kind} {dtype} n={n} {pattern} {f_np.trace.output_names[k]}"
                if g.dtype != w.dtype or g.ndim and g.dtype != np.dtype(dtype) or g.shape != w.shape:
                    failures.append(f"{label}: {g.dtype} {g.shape} against {w.dtype} {w.shape}")
                    continue
                why = ""
                for attempt in range(2):
                    if attempt and sens is None:
                        sens = sensitivity(ref, args, base, rng)
                    # (the 8: values and tangents are differences of terms of the inputs' size,
                    # normals of deviation 3, a logsumexp less an element, a tangent less its
                    # softmax-weighted mean; log2 n: sums of n terms in other orders)
                    tol = K * eps * (np.abs(base[k]) + (sens[k] if attempt else 0.0) + 8.0) * max(1.0, np.log2(n)) \
                        + K * np.finfo(dtype).smallest_subnormal
                    gg, ww, tt = np.ravel(g), np.ravel(w), np.ravel(tol)
                    if pattern[0] == "one" and abs(pattern[1]) > 1e30:
                        # a sum of products of it overflows or not as the order of the additions
                        # has it (test_asan_tensor_edges): only where either side is an ordinary
                        # number must the other be it
                        plain = np.isfinite(gg) & (np.abs(gg) < 1e30) | np.isfinite(ww) & (np.abs(ww) < 1e30)
                        gg, ww, tt = gg[plain], ww[plain], tt[plain]
                    why = differs(gg, ww, tt, label, dtype=dtype)
                    if not why or not why.startswith(label + ": values"):
                        break
                if why:
                    failures.append(why)
    return failures, calls
'''

RUN = POISON + r'''
failures, calls = [], 0
for job in JOBS:
    if job[0] == "every":
        _, kind, stable, dtype = job
        more, n = check("every op", every_op_trace(kind in ("grad", "hvp")), None, kind, stable, dtype, op_columns)
    elif job[0] == "catalogue":
        _, kind, dtype = job
        more, n = [], 0
        for text, primal, skip in catalogue_cases():
            f, m = check(text, text, None, kind, True, dtype, primal, skip(dtype))
            more, n = more + f, n + m
    else:
        _, kind, dtype = job
        more, n = check_vectors(kind, dtype)
    failures += more
    calls += n
assert not failures, f"{len(failures)} results differ:\n" + "\n".join(failures[:30])
# the small kernels of the stable forms run tiles with inner copies (else the tiles' float
# lines went untested)
assert len(TILED) >= 5 * sum(job[0] == "catalogue" for job in JOBS), TILED
print(f"FLOAT EDGES OK: {calls} calls, {len(TILED)} kernels with tiles")
'''

KINDS = ("value", "grad", "jvp", "vjp", "hvp")
PARTS = {
    "every-op-float32-forward": [("every", k, s, "float32") for k in ("value", "grad", "jvp") for s in (False, True)],
    "every-op-float32-reverse": [("every", k, s, "float32") for k in ("vjp", "hvp") for s in (False, True)],
    # (test_edges runs every kind of these in float64 at its edges, unsanitized; an HVP's
    # outputs hold the gradient, its kernel forward over reverse)
    "every-op-float64": [("every", "value", False, "float64"), ("every", "hvp", True, "float64")],
    "stable-forms-float32": [("catalogue", k, "float32") for k in ("grad", "hvp")]
    + [("vectors", k, "float32") for k in ("value", "grad", "jvp", "hvp")],
    "stable-forms-float64": [("catalogue", "grad", "float64"), ("vectors", "grad", "float64"),
                             ("vectors", "hvp", "float64")],
}


# One subprocess per part (the kernel builds, sanitized, are most of the time).
@pytest.mark.slow
@pytest.mark.parametrize("part", PARTS)
def test_float_kernels_at_edge_values_are_clean_and_agree(tmp_path, part):
    _sanitized(tmp_path, COMMON + f"JOBS = {PARTS[part]!r}\n" + RUN, "FLOAT EDGES OK")


def test_the_sweep_covers_every_elementwise_op_and_the_stable_forms():
    """Every elementwise op of the op table is in the every-op trace of each kind, and the
    stable forms the catalogue's programs are rewritten to are in their traces (no kernel
    is built: the traces are the C kernels' too)."""
    space: dict = {}
    exec(COMMON, space)
    from exprcompiler import ops
    elementwise = {op.name for op in ops.OPS.values() if op.elementwise and op.arity and op.name != "copy"}
    for kind in KINDS:
        seen = {ins.op for ins in space["MAKERS"][kind](space["every_op_trace"](kind in ("grad", "hvp"))).trace.instrs}
        assert elementwise <= seen, (kind, sorted(elementwise - seen))
    seen = set()
    for text, _, _ in space["catalogue_cases"]():
        seen |= {ins.op for ins in space["compile_grad"](text, stable=True).trace.instrs}
    texts, shapes = space["vector_program"]()
    seen |= {ins.op for ins in space["compile_hvp"](" + ".join(texts), shapes=shapes, stable=True).trace.instrs}
    stable_forms = {"softplus", "sigmoid", "log1mexp", "logaddexp", "logaddexp3", "xlogy", "hypot", "hypot3", "log1p",
                    "expm1", "sech2", "erf", "erfc", "logsumexp", "softmax", "log_softmax", "log_softmax_at"}
    assert stable_forms <= seen, sorted(stable_forms - seen)


# -- the bugs this sweep found (KNOWN's names): each its smallest case, C against NumPy --
BUGS = {
    "hypot3 float": "a float kernel's hypot3 was hypotf(hypotf(x, y), z) (c_nary._HYPOT3's float line): rounded "
                    "twice, 1.4e-45 at three terms of 1.4e-45 (NumPy 2.8e-45) and its slopes 1.0 (NumPy 0.5); "
                    "inf at (FLT_MAX, FLT_MAX, NaN), where the inner hypotf overflowed (NumPy and float64: NaN), "
                    "its slopes 0.0",
    "polygamma float": "a float kernel's polygamma computed in float (c_special._POLYGAMMA): NaN for every order "
                       "from 25 (n! and the tables overflow a float), -10.34 for polygamma(8, -50.5) (1.4e-8: "
                       "the reflection's cot(pi/2) is 4.4e-8 in float, amplified), -0.0 for polygamma(14, 1000) "
                       "(-6.3e-33: 1000^14 overflowed); NumPy computes it in float64",
    "logaddexp numpy": "the NumPy backend's logaddexp_rows and logaddexp3 (the naive log(exp(a) + exp(b)) where "
                       "a and b are in range) drop a small term beside a largest argument of 0: "
                       "logaddexp(0, -345.1) is 0 (C 1.3e-150), in float32 logaddexp(-17, 0) is 0 (C 4.1e-8)",
}
needs_cc = pytest.mark.skipif(not HAVE_CC, reason=NO_CC)


def _leaves(result):
    if isinstance(result, tuple):
        return [x for item in result for x in _leaves(item)]
    return [np.asarray(result)]


def _agree(got, want, rtol):
    """Same NaN and signed-inf positions, finite values within rtol (or both below the least normal)."""
    for g, w in zip(_leaves(got), _leaves(want), strict=True):
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        for test in (np.isnan, np.isposinf, np.isneginf):
            assert np.array_equal(test(g), test(w)), (test.__name__, g, w)
        fin = np.isfinite(w)
        tiny = np.finfo(w.dtype).tiny
        ok = (np.abs(g[fin] - w[fin]) <= rtol * np.abs(w[fin])) | ((np.abs(g[fin]) < tiny) & (np.abs(w[fin]) < tiny))
        assert ok.all(), (g, w)


@pytest.mark.slow
@needs_cc
def test_hypot3_in_a_float_kernel_at_subnormal_terms_and_a_nan_beside_two_maxima():
    from exprcompiler import compile_grad
    t, m = 1.4e-45, float(np.finfo(np.float32).max)
    x, y, z = (np.array(v, np.float32) for v in ([t, m, 3.0], [t, m, 4.0], [t, np.nan, 12.0]))
    for text in ("hypot3(x, y, z)", "sqrt(x**2 + y**2 + z**2)"):   # (the second: its stable form)
        with np.errstate(all="ignore"):
            want = compile_grad(text, stable=True, dtype="float32")(x, y, z)
            got = compile_grad(text, stable=True, dtype="float32", backend="c")(x, y, z)
        _agree(got, want, 1e-6)


@pytest.mark.slow
@needs_cc
def test_polygamma_in_a_float_kernel_has_numpys_values():
    from exprcompiler import compile_expr
    n = np.array([8, 25, 30, 14, 2, 1], np.float32)
    x = np.array([-50.5, 1.0, 0.0, 1000.0, 3.0, -7.25], np.float32)
    with np.errstate(all="ignore"):
        want = compile_expr("polygamma(n, x)", dtype="float32")(n, x)
        got = compile_expr("polygamma(n, x)", dtype="float32", backend="c")(n, x)
    _agree(got, want, 1e-5)


@pytest.mark.slow
@needs_cc
@pytest.mark.xfail(strict=True, reason=BUGS["logaddexp numpy"])
def test_numpy_logaddexp_keeps_a_small_term_beside_a_largest_argument_of_zero():
    from exprcompiler import compile_grad
    for dtype, a, b in (("float64", [0.0, -0.0], [-345.1, -30.0]), ("float32", [-17.0, 0.0], [0.0, -12.0])):
        a, b = np.array(a, dtype), np.array(b, dtype)
        for text, args in (("logaddexp(a, b)", (a, b)), ("logaddexp3(a, b, c)", (a, b, b))):
            want = compile_grad(text, dtype=dtype, backend="c")(*args)   # (C: max + log1p(e^-|a - b|))
            got = compile_grad(text, dtype=dtype)(*args)
            _agree(got, want, 1e-6)
