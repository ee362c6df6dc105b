"""dtype="float32" on every compile_* (exprcompiler/dtypes.py): float kernels in C, float32
arrays in NumPy, checked against the float64 functions at float32's tolerance; inputs
converted once, out= of the function's dtype, .at()/.scipy() in float64, check_grad's
float64 reference, the digits network trained in float32; float64 untouched by default.

C builds here: four (a gradient, a value of the special functions, a Jacobian and a
tensor gradient).
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from exprcompiler import check_grad, compile_expr, compile_grad, compile_jvp, compile_vjp
from exprcompiler.dtypes import c_source_float
from exprcompiler.errors import CompileError
from exprcompiler.jacobians import compile_hessian, compile_hvp, compile_jacobian

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
RTOL, ATOL = 2e-5, 1e-5  # float32: 2^-24 = 6e-8 per operation, a few dozen operations
LSQ = "sum((X @ w - y)**2) / 2 + 0.1*sum(tanh(w))"
LSQ_SHAPES = {"X": ("n", 5), "w": (5,), "y": ("n",)}


def _points(n=7):
    rng = np.random.default_rng(0)
    return rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, n)


def _leaves(result):
    out = []
    for r in result if isinstance(result, tuple) else (result,):
        out.extend(_leaves(r) if isinstance(r, tuple) else [r])
    return out


def _assert_float32_like(r32, r64):
    """Every array of r32 float32 and within float32's tolerance of r64."""
    for a, b in zip(_leaves(r32), _leaves(r64), strict=True):
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == np.float32, (type(a), getattr(a, "dtype", None))
        np.testing.assert_allclose(np.asarray(a, dtype=float), b, rtol=RTOL, atol=ATOL)


def _code(c_source: str) -> str:
    """C source without its comments (which may say "double")."""
    return re.sub(r"/\*.*?\*/", "", c_source, flags=re.S)


def _c_or_skip(make):
    try:
        return make()
    except CompileError as err:
        pytest.skip(f"no C compiler here: {err.one_line()}")


# -- what is refused, what stays as it was --------------------------------------------------
@pytest.mark.parametrize("bad", ["float16", "int32", np.complex128, "nonsense", np.int64])
def test_other_dtypes_are_refused_naming_what_was_given(bad):
    with pytest.raises(ValueError, match=r"dtype=.* is not supported: use 'float64' \(the default\) or 'float32'"):
        compile_grad("x*y", dtype=bad)


def test_without_dtype_float64_as_before():
    g = compile_grad(GRIEWANK)
    assert g.dtype == np.float64 and g._dtype is None
    assert compile_grad(GRIEWANK, dtype="float64").source == g.source
    assert compile_grad(GRIEWANK, dtype=np.float64)._dtype is None
    v, (a, b) = g(*_points())
    assert v.dtype == a.dtype == np.float64


def test_sparse_refuses_float32():
    with pytest.raises(ValueError, match="sparse=True"):
        compile_jacobian("x*y; x+y", sparse=True, dtype="float32")


# -- NumPy: every kind ----------------------------------------------------------------------
KINDS = [
    ("grad", lambda **kw: compile_grad(GRIEWANK, **kw), 2),
    ("forward grad", lambda **kw: compile_grad(GRIEWANK, mode="forward", **kw), 2),
    ("value", lambda **kw: compile_expr(GRIEWANK, **kw), 2),
    ("jvp", lambda **kw: compile_jvp(GRIEWANK, **kw), 4),
    ("vjp", lambda **kw: compile_vjp(GRIEWANK, **kw), 3),
    ("hvp", lambda **kw: compile_hvp(GRIEWANK, **kw), 4),
    ("hessian", lambda **kw: compile_hessian(GRIEWANK, **kw), 2),
    ("jacobian", lambda **kw: compile_jacobian("x1*sin(x2); exp(x1)/x2; x1 + x2", **kw), 2),
]


@pytest.mark.parametrize("kind, make, n_args", KINDS, ids=[k[0] for k in KINDS])
def test_numpy_kinds_in_float32(kind, make, n_args):
    f32, f64 = make(dtype="float32"), make()
    assert f32.dtype == np.float32
    x1, x2 = _points()
    args = [x1, x2, *_points()][:n_args]  # float64 arrays: converted once, to float32
    _assert_float32_like(f32(*args), f64(*[a.astype(np.float32).astype(float) for a in args]))
    one = f32(*[float(a[0]) for a in args])  # one point, given as numbers
    _assert_float32_like(one, f64(*[float(np.float32(a[0])) for a in args]))


def test_numpy_keeps_float32_through_the_generated_code():
    """The generated function itself (no result fitting) on float32 arrays returns
    float32: no float64 constant, mask or mean's count upcasts a step."""
    from exprcompiler.driver.models import mlp
    m = mlp([8, 4, 1])
    g = compile_grad(m.loss, list(m.params), shapes=m.shapes, dtype="float32")
    args = {k: np.asarray(v, np.float32) for k, v in m.init(0).items()}
    args["X"], args["y"] = np.ones((5, 8), np.float32), np.ones(5, np.float32)
    value, grads = g.function(*[args[k] for k in g.inputs])
    assert value.dtype == np.float32 and all(gk.dtype == np.float32 for gk in grads)


# special.py's own algorithms run in float64 (their results are cast to float32 once, at
# the end); heaviside's h0-partial is where(x == 0, 1.0, 0.0) of two Python floats
FLOAT64_INSIDE = {"digamma", "polygamma", "gamma", "lgamma", "erf", "erfc", "heaviside"}


def test_every_elementwise_op_keeps_float32_in_numpy():
    from exprcompiler import ops
    upcast = []
    for name, op in sorted(ops.OPS.items()):
        if op.arity not in (1, 2) or name in FLOAT64_INSIDE or not op.callable_by_name:
            continue
        try:
            g = compile_grad(f"{name}(x)" if op.arity == 1 else f"{name}(x, y)", dtype="float32")
        except Exception:  # not a function of numbers (a reduction, an op with an order)
            continue
        if not hasattr(g, "function"):
            continue
        with np.errstate(all="ignore"):
            value, grads = g.function(*[np.full(3, 0.7, np.float32) for _ in g.inputs])
        if any(isinstance(r, np.ndarray) and r.dtype != np.float32 for r in (value, *grads)):
            upcast.append(name)
    assert upcast == []


def test_inputs_of_other_dtypes_and_out_arrays():
    g = compile_grad(GRIEWANK, dtype="float32")
    x1, x2 = _points(4)
    v, (a, _) = g([int(t) + 1 for t in x1], x2.astype(np.float16))  # ints and float16 in: float32 out
    assert v.dtype == a.dtype == np.float32
    out = (np.empty(4, np.float32), (np.empty(4, np.float32), np.empty(4, np.float32)))
    res = g(x1, x2, out=out)
    assert res[0] is out[0] and res[1][1] is out[1][1]
    _assert_float32_like(res, compile_grad(GRIEWANK)(x1.astype(np.float32), x2.astype(np.float32)))
    bad = (np.empty(4), (np.empty(4, np.float32), np.empty(4, np.float32)))
    with pytest.raises(ValueError, match=r"out= array 0: the function computes float32 .* got an array of float64"):
        g(x1, x2, out=bad)


def test_at_and_scipy_answer_in_float64():
    from scipy.optimize import minimize
    g = compile_grad("(1 - x)**2 + 100*(y - x**2)**2", dtype="float32")
    value, grad = g.at(np.array([-1.2, 1.0]))
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, [-215.6, -88.0], rtol=RTOL)
    fun, hessp = g.scipy()
    r = minimize(fun, [-1.2, 1.0], jac=True, hessp=hessp, method="trust-ncg")
    np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-3)


def test_check_grad_in_float32_against_a_float64_reference():
    at = {"x1": np.linspace(1, 2, 20), "x2": np.linspace(0.5, 1.5, 20)}
    err32, err64 = check_grad(GRIEWANK, at, dtype="float32"), check_grad(GRIEWANK, at)
    assert err32 < 1e-4
    assert err32 > 10 * err64  # the float32 gradient is checked, not the float64 one


def test_tensors_in_float32_and_pickling():
    rng = np.random.default_rng(1)
    X, w, y = rng.normal(size=(20, 5)), rng.normal(size=5), rng.normal(size=20)
    g = compile_grad(LSQ, wrt=["w"], shapes=LSQ_SHAPES, dtype="float32")
    ref = compile_grad(LSQ, wrt=["w"], shapes=LSQ_SHAPES)
    cast = {k: v.astype(np.float32).astype(float) for k, v in {"X": X, "w": w, "y": y}.items()}
    for _ in range(2):  # the first call and the later ones
        v, (gw,) = g(X=X, w=w, y=y)
        assert gw.dtype == np.float32
        np.testing.assert_allclose(gw, ref(**cast)[1][0], rtol=1e-4, atol=1e-4)
    h = compile_hessian(LSQ, wrt=["w"], shapes=LSQ_SHAPES, dtype="float32")
    assert h(X=X, w=w, y=y)[2].dtype == np.float32
    again = pickle.loads(pickle.dumps(g))
    assert again.dtype == np.float32 and again(X=X, w=w, y=y)[1][0].dtype == np.float32


# -- C -------------------------------------------------------------------------------------
def test_c_source_float_rewrite():
    text = ("/* double sin(x) 1.5 */\n#include <math.h>\nstatic double f(double x, double sinf)\n"
            "{ return sin(x) * 0.5 + pow(x, 2.0) + 1e-3 + sinf + (double)3 + x_1.0; }")
    out = c_source_float(text)
    assert out.startswith("/* double sin(x) 1.5 */\n#include <math.h>\n")  # comments and headers as they were
    assert "static float f(float x, float sinf_)" in out
    assert "sinf(x) * 0.5f + powf(x, 2.0f) + 1e-3f + sinf_ + (float)3" in out
    assert "double" not in out.split("*/", 1)[1]
    # the select's bit mask and the split kernel's lanes follow the element's width
    widths = c_source_float("union { double d; unsigned long long u; } x;\n#define XC_VL 4\nint XC_VL_4;")
    assert widths == "union { float d; unsigned int u; } x;\n#define XC_VL 8\nint XC_VL_4;"


def test_c_kernel_in_float32():
    """The per-point kernel in float: float types, float libm (vectorized through the
    libmvec declarations), float literals; a user variable named like a float libm
    function (expf) kept apart from it."""
    expr = GRIEWANK.replace("x2", "expf")
    g = _c_or_skip(lambda: compile_grad(expr, backend="c", dtype="float32"))
    body = _code(g.source)
    assert "double" not in body and "float expf(float);" in body and "sinf(" in body
    x1, x2 = _points(1000)
    ref = compile_grad(expr)(x1.astype(np.float32).astype(float), x2.astype(np.float32).astype(float))
    _assert_float32_like(g(x1, x2), ref)
    _assert_float32_like(g(float(x1[0]), float(x2[0])), compile_grad(expr)(float(np.float32(x1[0])),
                                                                           float(np.float32(x2[0]))))
    out = (np.empty(1000, np.float32), (np.empty(1000, np.float32), np.empty(1000, np.float32)))
    assert g(x1, x2, out=out)[0] is out[0]
    with pytest.raises(ValueError, match=r"out= array 2: the function computes float32 .* float64"):
        g(x1, x2, out=(out[0], (out[1][0], np.empty(1000))))
    value, grad = g.at(np.array([x1[0], x2[0]]))
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, [ref[1][0][0], ref[1][1][0]], rtol=RTOL)


def test_c_special_helpers_in_float32():
    expr = "digamma(x) + polygamma(2, x) + sinc(x) + erf(x) + frac(3*x) + softplus(x) + sigmoid(-x) + lgamma(x)"
    f = _c_or_skip(lambda: compile_expr(expr, backend="c", dtype="float32"))
    x = np.linspace(0.3, 4.0, 50).astype(np.float32)
    got = f(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, compile_expr(expr)(x.astype(float)), rtol=1e-4, atol=1e-4)


def test_c_jacobian_in_float32():
    J = _c_or_skip(lambda: compile_jacobian("x1*sin(x2); exp(x1)/x2; x1 + x2", backend="c", dtype="float32"))
    x1, x2 = _points()
    _assert_float32_like(J(x1, x2), compile_jacobian("x1*sin(x2); exp(x1)/x2; x1 + x2")(
        x1.astype(np.float32).astype(float), x2.astype(np.float32).astype(float)))


def test_c_tensor_kernel_in_float32():
    g = _c_or_skip(lambda: compile_grad(LSQ, wrt=["w"], shapes=LSQ_SHAPES, backend="c", dtype="float32"))
    assert "double" not in _code(g.source)
    rng = np.random.default_rng(2)
    X, w, y = rng.normal(size=(30, 5)), rng.normal(size=5), rng.normal(size=30)
    cast = {k: v.astype(np.float32).astype(float) for k, v in {"X": X, "w": w, "y": y}.items()}
    v, (gw,) = g(X=X, w=w, y=y)
    v64, (gw64,) = compile_grad(LSQ, wrt=["w"], shapes=LSQ_SHAPES)(**cast)
    assert gw.dtype == np.float32
    np.testing.assert_allclose(gw, gw64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(v, v64, rtol=1e-5)


# -- training ------------------------------------------------------------------------------
def test_training_in_float32_follows_float64():
    from exprcompiler.driver import train
    from exprcompiler.driver.models import mlp
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(120, 8)), rng.integers(0, 2, 120)
    kw = dict(data=(X, y), epochs=3, batch=32, quiet=True)
    r32, r64 = train(mlp([8, 4, 1]), dtype="float32", **kw), train(mlp([8, 4, 1]), **kw)
    for k in r64.params:
        assert r32.params[k].dtype == np.float32
        np.testing.assert_allclose(r32.params[k], r64.params[k], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_digits_network_trained_in_float32_reaches_float64_accuracy(backend):
    pytest.importorskip("sklearn")
    from exprcompiler.driver import train
    from exprcompiler.driver.data import load_digits
    from exprcompiler.driver.models import mlp
    d = load_digits("parity", seed=0)
    kw = dict(data=(d.X_train, d.y_train), optimizer="sgd", lr=0.1, epochs=30, batch=64, seed=0,
              quiet=True, backend=backend)
    r32 = _c_or_skip(lambda: train(mlp([64, 32, 1]), dtype="float32", **kw))
    r64 = train(mlp([64, 32, 1]), **kw)
    assert r32.params["W1"].dtype == np.float32
    s32, s64 = r32.score(d.X_test, d.y_test), r64.score(d.X_test, d.y_test)
    assert s64 >= 0.90 and abs(s32 - s64) <= 0.01


# -- the command line: --dtype on every command that compiles -------------------------------
CLI_RUNS = [
    ("grad", [GRIEWANK]),
    ("grad c", [GRIEWANK, "--target", "c"]),
    ("grad hvp", [GRIEWANK, "--order", "2"]),
    ("eval", [GRIEWANK, "--at", "x1=1.5,x2=0.5"]),
    ("hessian", [GRIEWANK, "--at", "x1=1.5,x2=0.5"]),
    ("jacobian", ["x1*sin(x2); exp(x1)/x2", "--at", "x1=1.5,x2=0.5"]),
    ("export", [GRIEWANK, "-o", "{tmp}/k"]),
    ("minimize", ["(x - 1)**2 + (y + 2)**4", "--x0", "x=0,y=0", "--quiet", "--log", "0"]),
    ("train", ["--model", "logistic", "--epochs", "1", "--quiet"]),
]


@pytest.mark.parametrize("command, argv", CLI_RUNS, ids=[c for c, _ in CLI_RUNS])
def test_cli_dtype_reaches_the_compile_call(command, argv, capsys, monkeypatch, tmp_path):
    """Every compile_* resolves its dtype= through api.resolve_dtype: the commands pass
    --dtype float32 on (and float64, the default, when it is not given)."""
    from exprcompiler import api
    from exprcompiler.cli import main
    if command == "train":
        pytest.importorskip("sklearn")
    seen = []
    resolve = api.resolve_dtype
    monkeypatch.setattr(api, "resolve_dtype", lambda d: seen.append(d) or resolve(d))
    argv = [command.split()[0], *(a.format(tmp=tmp_path) for a in argv)]
    assert main(argv + ["--dtype", "float32"]) == 0, capsys.readouterr().err
    out32 = capsys.readouterr().out
    resolved = {resolve(d) for d in seen}
    # (train also compiles the model's prediction, for its accuracy, in float64)
    F32 = np.dtype(np.float32)
    assert resolved == {F32} or command == "train" and F32 in resolved, seen
    if command in ("grad c", "export"):
        code = (tmp_path / "k.h").read_text().split("*/", 1)[1] if command == "export" else _code(out32)
        assert "float" in code and "double" not in code
    seen.clear()
    assert main(argv) == 0
    assert seen and all(resolve(d) is None for d in seen), seen


def test_cli_eval_in_float32_rounds_as_float32_does(capsys):
    from exprcompiler.cli import main
    results = {}
    for dtype in ("float32", "float64"):
        assert main(["eval", GRIEWANK, "--at", "x1=1.5,x2=0.5", "--dtype", dtype]) == 0
        results[dtype] = [float(line.split("=")[1]) for line in capsys.readouterr().out.splitlines()]
    np.testing.assert_allclose(results["float32"], results["float64"], rtol=RTOL)
    assert results["float32"] != results["float64"]
    assert [float(np.float32(v)) for v in results["float32"]] == results["float32"]  # float32 values


@pytest.mark.parametrize("argv, fragment", [
    (["eval", "x*y", "--at", "x=1,y=2", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["jacobian", "x*y; x+y", "--sparse", "--dtype", "float32"], "--dtype float32 with --sparse is not supported"),
])
def test_cli_dtype_refusals_are_one_line(argv, fragment, capsys):
    from exprcompiler.cli import main
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and fragment in err, err


# -- split kernels (c_split: parts, a tape, vector loops of XC_VL points) in float -----------
def _split_agrees(g32, g64, x):
    """float32 split kernel against float64 on the same (float32-rounded) inputs: at
    float32's tolerance, and not identical (the float kernel computed it)."""
    rounded = [np.asarray(a, np.float32).astype(float) if np.ndim(a) else float(np.float32(a)) for a in x]
    got, want = g32(*x), g64(*rounded)
    worst = 0.0
    for a, b in zip(_leaves(got), _leaves(want), strict=True):
        worst = max(worst, float(np.max(np.abs(np.asarray(a, float) - b) / (1 + np.abs(b)))))
    assert 0 < worst < 1e-4, worst


def test_split_kernel_in_float32(monkeypatch, tmp_path):
    """A kernel split into many parts (thresholds made small, as in test_c_build_scale),
    in float: float tape, float-wide select masks, XC_VL counted in floats; over blocks
    with a ragged tail, an input broadcast at stride 0, and single points."""
    from exprcompiler.backends import c_backend, c_split
    from exprcompiler.randexpr import random_program
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 20)
    monkeypatch.setattr(c_backend, "PART", 80)
    program = random_program(40, n_vars=3, seed=5)
    g32 = _c_or_skip(lambda: compile_grad(program, backend="c", dtype="float32", threads=2))
    code = _code(g32.source)
    assert c_split.UNIT_MARK in g32.source and "_part3(" in code and "double" not in code
    assert "#define XC_VL 8\n" in code and "#define XC_VL 4\n" in code and "#define XC_VL 2\n" not in code
    assert "unsigned long long" not in code
    g64 = compile_grad(program)
    rng = np.random.default_rng(4)
    n = 2 * c_backend.BLOCK + 3
    _split_agrees(g32, g64, [rng.uniform(-2, 2, n), 0.7, rng.uniform(-2, 2, n)])
    for k in range(3):
        _split_agrees(g32, g64, [float(v) for v in rng.uniform(-2, 2, 3)])


@pytest.mark.slow
def test_split_kernel_in_float32_at_its_real_size(tmp_path, monkeypatch):
    """A gradient above c_backend.SPLIT_FROM statements, split at the real thresholds."""
    from exprcompiler.backends import c_split
    from exprcompiler.randexpr import random_program
    program = random_program(100, n_vars=4, seed=2)
    g32 = _c_or_skip(lambda: compile_grad(program, backend="c", dtype="float32"))
    assert g32.source.count(c_split.UNIT_MARK) >= 3
    g64 = compile_grad(program)
    rng = np.random.default_rng(6)
    _split_agrees(g32, g64, list(rng.uniform(-2, 2, (4, 10_001))))
    for k in range(3):
        _split_agrees(g32, g64, [float(v) for v in rng.uniform(-2, 2, 4)])
