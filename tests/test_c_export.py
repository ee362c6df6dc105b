"""`exprc export`: the standalone NAME.c / NAME.h compile with the system compiler
(strict warnings, with and without OpenMP), link into a small C program that calls
the batch function and the one-point wrapper, and print the numbers the NumPy
backend computes."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad, compile_jvp, compile_vjp
from exprcompiler.backends.c_export import function_name
from exprcompiler.cli import main
from exprcompiler.errors import InvalidNameError

CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler on this machine")

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
COMPILE = {"grad": compile_grad, "value": compile_expr, "jvp": compile_jvp, "vjp": compile_vjp}


def c_program(header: str, func: str, n_in: int, n_out: int, columns, scalar_last: bool) -> str:
    """A main() that evaluates `func` on `columns` (the last one passed with stride 0
    when `scalar_last`) and then at the first point through func_at. Outputs go to
    separate arrays (stride 1) when `scalar_last`, else to the rows of one array
    out[n][n_out] (output k at &out[0][k], stride n_out)."""
    n = len(columns[0])
    lines = ["#include <stdio.h>", f'#include "{header}"', "int main(void) {"]
    for k, col in enumerate(columns):
        lines.append(f"    double in{k}[{n}] = {{{', '.join(f'{v!r}' for v in col)}}};")
    lines.append(f"    double out[{n}][{n_out}];" if not scalar_last else "")
    for k in range(n_out):
        lines.append(f"    double {f'out{k}[{n}], ' if scalar_last else ''}at{k};")
    args = [f"in{k}, {0 if scalar_last and k == n_in - 1 else 1}" for k in range(n_in)]
    args += [f"out{k}, 1" if scalar_last else f"&out[0][{k}], {n_out}" for k in range(n_out)]
    read = (lambda k: f"out{k}[i]") if scalar_last else (lambda k: f"out[i][{k}]")
    lines += [f"    {func}({n}, 2, {', '.join(args)});",
              f"    for (int i = 0; i < {n}; ++i) {{",
              "        " + " ".join(f'printf("%.17g ", {read(k)});' for k in range(n_out)) + ' printf("\\n");',
              "    }",
              f"    {func}_at({', '.join([f'in{k}[0]' for k in range(n_in)] + [f'&at{k}' for k in range(n_out)])});",
              "    " + " ".join(f'printf("%.17g ", at{k});' for k in range(n_out)) + ' printf("\\n");',
              "    return 0;", "}"]
    return "\n".join(lines) + "\n"


def build_and_run(folder, kernel: str, openmp: bool) -> str:
    """Compile main.c with the exported kernel under strict warnings; its output."""
    exe = folder / "main"
    flags = ["-fopenmp"] if openmp else ["-Wno-unknown-pragmas"]
    done = subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror", *flags,
                           "-o", str(exe), str(folder / "main.c"), str(folder / kernel), "-lm"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def flat(result):
    if isinstance(result, tuple):
        return [x for r in result for x in flat(r)]
    return [np.asarray(result, float)]


@pytest.mark.parametrize("openmp", [False, True])
@pytest.mark.parametrize("kind, expr, columns, scalar_last", [
    ("grad", GRIEWANK, [[1.5, 0.7, 2.0], [0.5, 1.1, 1.9]], False),
    ("grad", "log(x1) + x1*x2 - sin(x2)", [[2.0, 3.0, 0.5], [5.0]], True),
    ("value", "exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", [[2.0, 2.5], [3.0, 0.5]], False),
    ("jvp", "x * sin(y) - y**2", [[0.3, 1.2], [2.0, -1.0], [1.0, 0.0], [0.0]], True),
    ("vjp", "a = x * y; sqrt(a) + a", [[0.3, 1.2], [2.0, 1.5], [2.0, 1.0]], False),
])
def test_exported_files_compile_link_and_agree(tmp_path, capsys, openmp, kind, expr, columns, scalar_last):
    compiled = COMPILE[kind](expr)
    name = tmp_path / "my_kernel"
    assert main(["export", expr, "-o", str(name), "--kind", kind]) == 0
    assert "wrote" in capsys.readouterr().out
    func = function_name(str(name))
    n_in, n_out = len(compiled.inputs), len(compiled.trace.outputs)
    (tmp_path / "main.c").write_text(c_program("my_kernel.h", func, n_in, n_out, columns, scalar_last))
    rows = build_and_run(tmp_path, "my_kernel.c", openmp).splitlines()
    got = np.array([[float(v) for v in row.split()] for row in rows])
    args = [np.asarray(c, float) if len(c) > 1 else float(c[0]) for c in columns]
    want = np.column_stack([np.broadcast_to(r, (len(columns[0]),)) for r in flat(compiled(*args))])
    np.testing.assert_allclose(got[:-1], want, rtol=1e-13, atol=0)
    np.testing.assert_allclose(got[-1], want[0], rtol=1e-13, atol=0)  # the one-point wrapper


@pytest.mark.parametrize("name, ident", [("out/griewank", "griewank"), ("grad.c", "grad"),
                                         ("my_kernel.h", "my_kernel"), ("x__y", "x__y"), ("f_", "f_")])
def test_function_name_is_the_file_stem(name, ident):
    assert function_name(name) == ident


@pytest.mark.parametrize("name, hint", [("2nd", "f_2nd"), ("double", "f_double"), ("exp", "f_exp"),
                                        ("NULL", "f_NULL"), ("my-kernel", "my_kernel"), ("", "kernel"),
                                        ("a\nb", "a_b"), ("_f", "f"), ("é", "kernel"), ("1abc", "f_1abc"),
                                        ("in0 *", "in0"), ("y1", "f_y1"), ("malloc", "f_malloc"), ("main", "f_main"), ("printf", "f_printf"), ("xc_sign", "f_xc_sign")])
def test_export_names_that_are_not_plain_c_identifiers_are_refused(name, hint):
    with pytest.raises(InvalidNameError, match=re.escape(repr(hint))):
        function_name(name)


def test_hostile_names_are_mangled_in_the_header(tmp_path, capsys):
    assert main(["export", "int * printf + n / k", "-o", str(tmp_path / "k")]) == 0
    header = (tmp_path / "k.h").read_text()
    assert "double int_" in header and "double int," not in header
    done = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
                           "-c", "-o", str(tmp_path / "k.o"), str(tmp_path / "k.c")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    assert main(["export", "x*x", "-o", str(tmp_path / "missing" / "k")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exprc: error: cannot write") and err.count("\n") == 1


@pytest.mark.parametrize("openmp", [False, True])
def test_exported_tensor_kernel_compiles_links_and_agrees(tmp_path, capsys, openmp):
    # ½‖Xw − y‖² and its gradient: named dimension n passed in dims, C-order arrays
    shapes = ["--shape", "X=n,3", "--shape", "w=3", "--shape", "y=n"]
    assert main(["export", "0.5 * sum((X @ w - y)**2)", *shapes, "--wrt", "w", "-o", str(tmp_path / "lsq")]) == 0
    capsys.readouterr()
    header = (tmp_path / "lsq.h").read_text()
    assert "dims[0] = n" in header and "in0   X  [n][3]" in header and "out1  w.bar  [3]" in header
    rng = np.random.default_rng(3)
    X, w, y = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5)

    def arr(a):
        return ", ".join(repr(float(v)) for v in np.ravel(a))
    (tmp_path / "main.c").write_text("\n".join([
        "#include <stdio.h>", '#include "lsq.h"', "int main(void) {",
        "    const ptrdiff_t dims[1] = {5};",
        f"    const double X[15] = {{{arr(X)}}}, w[3] = {{{arr(w)}}}, y[5] = {{{arr(y)}}};",
        "    double f, g[3];",
        "    if (lsq(dims, 2, X, w, y, &f, g) != 0) return 1;",
        '    printf("%.17g %.17g %.17g %.17g\\n", f, g[0], g[1], g[2]);',
        "    return 0;", "}", ""]))
    got = [float(v) for v in build_and_run(tmp_path, "lsq.c", openmp).split()]
    r = X @ w - y
    np.testing.assert_allclose(got, [0.5 * r @ r, *(X.T @ r)], rtol=1e-13)


# -- dtype=float32 and the tensor kernels' caller-owned workspace, called through ctypes ------
def shared_library(folder, *sources):
    """The exported .c files as one shared library, loaded with ctypes."""
    import ctypes
    lib = folder / "libkernels.so"
    done = subprocess.run([CC, "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Werror", "-Wno-unknown-pragmas",
                           "-o", str(lib), *[str(folder / s) for s in sources], "-lm"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return ctypes.CDLL(str(lib))


def pointer(a: np.ndarray):
    import ctypes
    assert a.flags.c_contiguous
    return a.ctypes.data_as(ctypes.c_void_p)


def test_float32_export_is_a_float_kernel_that_agrees_with_the_float64_export(tmp_path, capsys):
    import ctypes
    for dtype in ("float32", "float64"):
        assert main(["export", GRIEWANK, "-o", str(tmp_path / f"k_{dtype}"), "--dtype", dtype]) == 0
    capsys.readouterr()
    h32, h64 = (tmp_path / "k_float32.h").read_text(), (tmp_path / "k_float64.h").read_text()
    comment, code = h32.split("*/", 1)
    assert "float32 value and gradient" in comment and "Element type: float (float32)" in comment
    assert "const float *in0" in comment and "double" not in comment
    assert "int k_float32(ptrdiff_t n, int threads, const float *in0" in code and "double" not in code
    assert "static inline int k_float32_at(float x1, float x2, float *y," in code
    assert "Element type: double (float64)" in h64 and "const double *in0" in h64
    lib = shared_library(tmp_path, "k_float32.c", "k_float64.c")
    n = 1000
    rng = np.random.default_rng(5)
    x64 = [rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, n)]
    results = {}
    for dtype in ("float32", "float64"):
        xs = [x.astype(dtype) for x in x64]
        outs = [np.full(n, np.nan, dtype) for _ in range(3)]
        args = [a for x in xs for a in (pointer(x), ctypes.c_ssize_t(1))]
        args += [a for o in outs for a in (pointer(o), ctypes.c_ssize_t(1))]
        assert getattr(lib, f"k_{dtype}")(ctypes.c_ssize_t(n), 1, *args) == 0
        results[dtype] = outs
    for o32, o64 in zip(results["float32"], results["float64"]):
        np.testing.assert_allclose(o32, o64, rtol=2e-5, atol=1e-5)
        assert np.max(np.abs(o32 - o64) / (1 + np.abs(o64))) > 1e-10  # float arithmetic, not double's
    packed_in, packed_out = np.array(x64, np.float32)[:, 0].copy(), np.zeros(3, np.float32)
    assert lib.k_float32_packed(pointer(packed_in), pointer(packed_out)) == 0
    np.testing.assert_allclose(packed_out, [o[0] for o in results["float64"]], rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exported_tensor_kernel_runs_in_a_caller_owned_workspace(tmp_path, capsys, dtype):
    """NAME_work(dims) elements of workspace, NAME_ws(dims, threads, work, ...) run in
    them: reused across calls (and sizes that need no more), checked against NumPy."""
    import ctypes
    expr = "sum(log(1 + exp(-y * (tanh(X @ W) @ v)))) / 2 + sum(W**2)"
    shapes = {"X": ("n", 4), "W": (4, 3), "v": (3,), "y": ("n",)}
    flags = [a for k, s in shapes.items() for a in ("--shape", f"{k}={','.join(map(str, s))}")]
    assert main(["export", expr, *flags, "--wrt", "W,v", "-o", str(tmp_path / "net"), "--dtype", dtype]) == 0
    capsys.readouterr()
    header = (tmp_path / "net.h").read_text()
    ctype = "float" if dtype == "float32" else "double"
    assert f"ptrdiff_t net_work(const ptrdiff_t *dims);" in header
    assert f"int net_ws(const ptrdiff_t *dims, int threads, {ctype} *work, const {ctype} *in0" in header
    assert f"net_work(dims) is the number of {ctype}s of" in header
    lib = shared_library(tmp_path, "net.c")
    lib.net_work.restype = ctypes.c_ssize_t
    reference = compile_grad(expr, wrt=["W", "v"], shapes=shapes)
    rng = np.random.default_rng(7)
    sizes = [50, 20]  # the block sized for 50 rows serves the call on 20
    dims = np.array(sizes[:1], np.intp)
    need = lib.net_work(pointer(dims))
    assert need > 0
    work = np.full(need, np.nan, dtype)  # garbage the kernel must overwrite
    assert lib.net_work(pointer(np.array([-1], np.intp))) == -2
    for n in sizes:
        dims = np.array([n], np.intp)
        assert lib.net_work(pointer(dims)) <= need
        data = {"X": rng.normal(size=(n, 4)), "W": rng.normal(size=(4, 3)), "v": rng.normal(size=3),
                "y": rng.choice([-1.0, 1.0], n)}
        ins = [np.ascontiguousarray(data[k], dtype) for k in reference.inputs]
        f, gW, gv = np.zeros(1, dtype), np.zeros((4, 3), dtype), np.zeros(3, dtype)
        outs = [pointer(f), pointer(gW), pointer(gv)]
        assert lib.net_ws(pointer(dims), 1, pointer(work), *map(pointer, ins), *outs) == 0
        want_f, (want_W, want_v) = reference(**{k: a.astype(float) for k, a in zip(reference.inputs, ins)})
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(f[0], want_f, **tol)
        np.testing.assert_allclose(gW, want_W, **tol)
        np.testing.assert_allclose(gv, want_v, **tol)
