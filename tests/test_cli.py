"""The `exprc` command line: golden outputs, input sources, exit codes, one-line errors.

Golden files live in tests/golden/. They were written once and checked by eye
against the published Griewank & Walther tables (../shared/SEEDS.md). To rewrite
them after an intended change of the output, run

    EXPRC_UPDATE_GOLDEN=1 python -m pytest tests/test_cli.py

and review the diff. The package version in generated headers is normalized, so
a version bump does not invalidate them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exprcompiler import __version__
from exprcompiler.cli import main as exprc

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("EXPRC_UPDATE_GOLDEN") == "1"

GRIEWANK = "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))"
AT = "x1=1.5,x2=0.5"
LOG_EXAMPLE = "log(x1) + x1*x2 - sin(x2)"


# -- helpers ----------------------------------------------------------------------------

def _normalize(text: str) -> str:
    return text.replace(f"exprcompiler {__version__}", "exprcompiler <VERSION>")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    text = _normalize(text)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing golden file {path}; create it with EXPRC_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    if name.startswith("eval"):
        # full-precision numbers: libm/SIMD paths may differ in the last bit across CPUs
        got, want = _split_numbers(text), _split_numbers(expected)
        assert got[0] == want[0], f"output differs from {path}"
        assert got[1] == pytest.approx(want[1], rel=1e-13), f"numbers differ from {path}"
        return
    assert text == expected, f"output differs from {path} (EXPRC_UPDATE_GOLDEN=1 rewrites it)"


def _split_numbers(text: str) -> tuple[str, list[float]]:
    """The text with every number replaced by '#', and the numbers."""
    pattern = r"-?\d+\.\d+(?:e[-+]?\d+)?"
    return re.sub(pattern, "#", text), [float(m) for m in re.findall(pattern, text)]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `exprc argv` in-process; (exit status, stdout, stderr)."""
    try:
        rc = exprc(list(argv))
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def run_subprocess(*argv: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run([sys.executable, "-m", "exprcompiler", *argv], input=stdin,
                          capture_output=True, text=True, encoding="utf-8", env=env,
                          cwd=cwd or REPO, timeout=120)


def assert_one_line_error(rc, out, err, *fragments: str) -> None:
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("exprc: error: "), lines[0]
    assert out == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# -- golden outputs ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_grad_griewank_golden(capsys, mode):
    rc, out, err = run(capsys, "grad", GRIEWANK, "--mode", mode)
    assert rc == 0 and err == ""
    check_golden(f"grad_griewank_{mode}.txt", out)


def test_grad_default_mode_is_reverse(capsys):
    _, default, _ = run(capsys, "grad", GRIEWANK)
    _, reverse, _ = run(capsys, "grad", GRIEWANK, "--mode", "reverse")
    assert default == reverse


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_grad_output_is_the_code_that_runs(capsys, mode):
    """The printed code defines f_grad; running it gives the published gradient."""
    _, out, _ = run(capsys, "grad", GRIEWANK, "--mode", mode)
    namespace: dict = {}
    exec(compile(out, "<exprc grad>", "exec"), namespace)
    value, (d1, d2) = namespace["f_grad"](1.5, 0.5)
    assert value == pytest.approx(2.016646669, abs=1e-9)
    assert d1 == pytest.approx(3.0118, abs=5e-5)
    assert d2 == pytest.approx(-13.7239, abs=1.5e-4)


@pytest.mark.parametrize("mode", ["reverse", "forward", "both"])
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_trace_griewank_golden(capsys, mode, ascii):
    argv = ["trace", GRIEWANK, "--at", AT, "--mode", mode] + (["--ascii"] if ascii else [])
    rc, out, err = run(capsys, *argv)
    assert rc == 0 and err == ""
    if ascii:
        assert out.isascii()
    check_golden(f"trace_griewank_{mode}{'_ascii' if ascii else ''}.txt", out)


def test_trace_published_numbers(capsys):
    """Independent of the golden files: the lines and numbers of the published tables."""
    _, out, _ = run(capsys, "trace", GRIEWANK, "--at", AT, "--mode", "both", "--ascii")
    lines = out.splitlines()
    assert lines[0] == "forward primal trace"

    def last_value(prefix):
        hits = [ln for ln in lines if ln.split("=")[0].strip() == prefix]
        assert hits, prefix
        return float(hits[-1].rsplit("=", 1)[1])

    assert last_value("v_1") == 3.0
    assert last_value("v_2") == pytest.approx(0.1411, abs=1e-4)
    assert last_value("v_3") == pytest.approx(1.6487, abs=1e-4)
    assert last_value("v_6") == pytest.approx(2.0166, abs=1e-4)  # the table's 2.0167 rounds intermediates
    assert last_value("vbar_5") == pytest.approx(1.3513, abs=1e-4)
    assert last_value("vbar_4") == pytest.approx(2.8437, abs=1e-4)
    assert last_value("vbar_1") == pytest.approx(1.5059, abs=1e-4)
    assert last_value("x1_bar") == pytest.approx(3.0118, abs=1e-4)
    assert last_value("x2_bar") == pytest.approx(-13.7239, abs=1.5e-4)
    titles = [ln for ln in lines if ln.endswith("trace") or "trace," in ln]
    assert titles == ["forward primal trace",
                      "forward tangent trace, seeds x1_dot = 1, x2_dot = 0",
                      "forward tangent trace, seeds x1_dot = 0, x2_dot = 1",
                      "reverse adjoint trace"]


def test_trace_without_values(capsys):
    rc, out, _ = run(capsys, "trace", GRIEWANK, "--mode", "both")
    assert rc == 0
    assert "forward tangent trace" in out and "reverse adjoint trace" in out
    assert "1.5000" not in out
    assert "v̄_0  = v̄_0 − v̄_1 · v_1 / v_0" in out


def test_trace_wrt_subset(capsys):
    rc, out, _ = run(capsys, "trace", GRIEWANK, "--at", AT, "--mode", "both", "--wrt", "x2", "--ascii")
    assert rc == 0
    assert "seeds x2_dot = 1" in out and "x1_dot" not in out
    assert "x2_bar" in out and "x1_bar" not in out


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_eval_golden(capsys, ascii):
    argv = ["eval", LOG_EXAMPLE, "--at", "x1=2,x2=5"] + (["--ascii"] if ascii else [])
    rc, out, err = run(capsys, *argv)
    assert rc == 0 and err == ""
    check_golden(f"eval_log_example{'_ascii' if ascii else ''}.txt", out)
    values = [float(ln.rsplit("=", 1)[1]) for ln in out.splitlines()]
    assert values[0] == pytest.approx(11.652, abs=5e-4)
    assert values[1] == 5.5
    assert round(values[2], 3) == 1.716


def test_eval_forward_mode_same_numbers(capsys):
    _, reverse, _ = run(capsys, "eval", LOG_EXAMPLE, "--at", "x1=2,x2=5")
    _, forward, _ = run(capsys, "eval", LOG_EXAMPLE, "--at", "x1=2,x2=5", "--mode", "forward")
    assert [float(ln.rsplit("=", 1)[1]) for ln in forward.splitlines()] == pytest.approx(
        [float(ln.rsplit("=", 1)[1]) for ln in reverse.splitlines()], rel=1e-15)


def test_eval_wrt_subset_and_output_name(capsys):
    rc, out, _ = run(capsys, "eval", "x*y", "--at", "x=2,y=3", "--wrt", "y", "--ascii")
    assert rc == 0
    assert out.splitlines() == ["f     = 6.0", "df/dy = 2.0"]  # y is an input, so the output is f


def test_graph_golden(capsys):
    rc, out, err = run(capsys, "graph", "sin(x)*y + x")
    assert rc == 0 and err == ""
    assert out.startswith("digraph")
    check_golden("graph_small.dot", out)


def test_graph_to_dot_file(capsys, tmp_path):
    _, printed, _ = run(capsys, "graph", "sin(x)*y + x")
    target = tmp_path / "g.dot"
    rc, out, err = run(capsys, "graph", "sin(x)*y + x", "-o", str(target))
    assert rc == 0 and out == "" and err == ""
    assert target.read_text(encoding="utf-8") == printed


def _fake_dot(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-dot"
    script.write_text(f"#!{sys.executable}\nimport sys\n{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def test_graph_renders_through_dot(capsys, tmp_path, monkeypatch):
    """-o x.svg pipes the DOT text to Graphviz (a stand-in here) with -Tsvg -o x.svg."""
    fake = _fake_dot(tmp_path, "args = sys.argv[1:]\n"
                               "data = sys.stdin.read()\n"
                               "open(args[args.index('-o') + 1], 'w').write(' '.join(args[:1]) + '\\n' + data)")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: fake if name == "dot" else None)
    target = tmp_path / "g.svg"
    rc, out, err = run(capsys, "graph", "sin(x)*y + x", "-o", str(target))
    assert (rc, out, err) == (0, "", "")
    written = target.read_text()
    assert written.startswith("-Tsvg\ndigraph")


def test_graph_dot_failure_is_one_line(capsys, tmp_path, monkeypatch):
    fake = _fake_dot(tmp_path, "sys.stderr.write('Error: bad things\\nmore detail\\n'); sys.exit(1)")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: fake)
    rc, out, err = run(capsys, "graph", "x*y", "-o", str(tmp_path / "g.png"))
    assert_one_line_error(rc, out, err, "dot failed", "bad things")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graph_renders_svg_with_real_graphviz(capsys, tmp_path):
    target = tmp_path / "g.svg"
    rc, _, err = run(capsys, "graph", GRIEWANK, "-o", str(target))
    assert rc == 0, err
    assert "<svg" in target.read_text()


# -- where EXPR comes from --------------------------------------------------------------

def test_expr_from_file(capsys, tmp_path):
    src = tmp_path / "griewank.txt"
    src.write_text(GRIEWANK + "\n", encoding="utf-8")
    _, from_arg, _ = run(capsys, "eval", GRIEWANK, "--at", AT)
    rc, from_file, err = run(capsys, "eval", "-f", str(src), "--at", AT)
    assert rc == 0 and err == ""
    assert from_file == from_arg


def test_program_from_file(capsys, tmp_path):
    src = tmp_path / "prog.txt"
    src.write_text("u = x1/x2\nw = exp(x2)\n(sin(u) + u - w) * (u - w)\n", encoding="utf-8")
    rc, out, _ = run(capsys, "eval", "-f", str(src), "--at", AT)
    assert rc == 0
    assert [float(ln.rsplit("=", 1)[1]) for ln in out.splitlines()] == pytest.approx(
        [2.016646669428201, 3.011843327673907, -13.723961509314076], rel=1e-14)


@pytest.mark.parametrize("dash", [[], ["-"]], ids=["omitted", "dash"])
def test_expr_from_stdin_in_process(capsys, monkeypatch, dash):
    monkeypatch.setattr(sys, "stdin", io.StringIO(LOG_EXAMPLE + "\n"))
    rc, out, err = run(capsys, "eval", *dash, "--at", "x1=2,x2=5", "--ascii")
    assert rc == 0 and err == ""
    assert out.splitlines()[1] == "dy/dx1 = 5.5"


def test_subprocess_stdin():
    done = run_subprocess("eval", "--at", "x1=2,x2=5", stdin=LOG_EXAMPLE + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[1] == "∂y/∂x1 = 5.5"


def test_subprocess_file_matches_in_process(capsys, tmp_path):
    src = tmp_path / "expr.txt"
    src.write_text(GRIEWANK, encoding="utf-8")
    done = run_subprocess("trace", "-f", str(src), "--at", AT, "--mode", "both")
    assert done.returncode == 0, done.stderr
    _, out, _ = run(capsys, "trace", GRIEWANK, "--at", AT, "--mode", "both")
    assert done.stdout == out


def test_subprocess_grad_is_deterministic_across_hash_seeds(capsys):
    _, out, _ = run(capsys, "grad", GRIEWANK, "--mode", "forward")   # this process's hash seed
    outs = {out}
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8")
        done = subprocess.run([sys.executable, "-m", "exprcompiler", "grad", GRIEWANK, "--mode", "forward"],
                              capture_output=True, text=True, encoding="utf-8", env=env, cwd=REPO,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        outs.add(done.stdout)
    assert len(outs) == 1


# A process start costs about a second of CPU: one error case runs in the fast suite
# (through stdin, the one path test_user_mistake_is_one_line does not take), the others
# with -m slow; test_user_mistake_is_one_line checks all four messages in-process.
@pytest.mark.parametrize("argv, stdin, fragment", [
    pytest.param(["grad", "sinn(x)"], None, "did you mean 'sin'", marks=pytest.mark.slow),
    (["eval", "--at", "x=1"], "x +* 2\n", "parse error"),
    pytest.param(["grad", "-f", "/nonexistent/expr.txt"], None, "cannot read", marks=pytest.mark.slow),
    pytest.param(["eval", "x*y", "--at", "x=1"], None, "no value for y", marks=pytest.mark.slow),
])
def test_subprocess_errors_exit_2_one_line(argv, stdin, fragment):
    done = run_subprocess(*argv, stdin=stdin)
    assert_one_line_error(done.returncode, done.stdout, done.stderr, fragment)


def test_subprocess_version():
    done = run_subprocess("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"exprc {__version__}"


def test_subprocess_usage_error_exits_2_without_traceback():
    done = run_subprocess("eval", "x", "--at", "x=1", "--mode", "sideways")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_usage_error_is_one_line(capsys):
    rc, out, err = run(capsys, "eval", "x", "--at", "x=1", "--mode", "sideways")
    assert_one_line_error(rc, out, err, "sideways")


# -- one-line errors ---------------------------------------------------------------------

@pytest.mark.parametrize("argv, fragments", [
    (["grad", "sinn(x1) + x2"], ["unknown function 'sinn'", "did you mean 'sin'"]),
    (["eval", "sinn(x)", "--at", "x=1"], ["did you mean 'sin'"]),
    (["grad", "x +* y"], ["parse error", "column 4"]),
    (["grad", "(x"], ["parse error", "never closed"]),
    (["grad", "x )"], ["parse error"]),
    (["grad", ""], ["empty expression"]),
    (["trace", "x y"], ["parse error"]),
    (["eval", "x*y", "--at", "x=1"], ["--at", "no value for y"]),
    (["trace", "x*y", "--at", "x=1"], ["--at", "no value for y"]),
    (["eval", "x*y", "--at", "x=1,y=2,z=3"], ["--at", "z is not a variable", "x, y"]),
    (["trace", "x*y", "--at", "x=1,y=2,z=3"], ["--at", "z"]),
    (["eval", "x*y", "--at", "x=1,y=abc"], ["--at", "'abc' is not a number", "y"]),
    (["eval", "x*y", "--at", "x=1,y"], ["--at", "name=value"]),
    (["eval", "x*y", "--at", "=1,y=2"], ["--at"]),
    (["eval", "x*y"], ["--at"]),
    (["grad", "x*y", "--wrt", "x,x"], ["wrt", "twice"]),
    (["eval", "x*y", "--at", "x=1,y=2", "--wrt", "q"], ["--at", "no value for q"]),
    (["trace", "x*y", "--at", "x=1,y=2", "--wrt", "q"], ["--at", "no value for q"]),
    (["grad", "-f", "/nonexistent/expr.txt"], ["cannot read", "/nonexistent/expr.txt"]),
    (["grad", "x", "-f", "/nonexistent/expr.txt"], ["EXPR or -f FILE"]),
    (["graph", "x*y", "-o", "graph.jpeg"], ["-o", "jpeg"]),
])
def test_user_mistake_is_one_line(capsys, argv, fragments):
    assert_one_line_error(*run(capsys, *argv), *fragments)


def test_directory_as_file_is_one_line(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "grad", "-f", str(tmp_path)), "cannot read")


def test_undecodable_file_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfex")
    assert_one_line_error(*run(capsys, "grad", "-f", str(bad)))


def test_undecodable_file_error_names_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfex")
    assert_one_line_error(*run(capsys, "grad", "-f", str(bad)), str(bad))


def test_graph_svg_without_graphviz(capsys, monkeypatch, tmp_path):
    # .svg is drawn by the built-in layout (tests/test_display.py checks the picture);
    # .png and .pdf need Graphviz, and say so
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    target = tmp_path / "x.svg"
    assert run(capsys, "graph", "x*y", "-o", str(target)) == (0, "", "")
    assert target.read_text(encoding="utf-8").startswith("<svg")
    png = tmp_path / "x.png"
    assert_one_line_error(*run(capsys, "graph", "x*y", "-o", str(png)), "Graphviz", ".svg")
    assert not png.exists()


def test_graph_dot_file_in_missing_directory_is_one_line(capsys, tmp_path):
    target = tmp_path / "no-such-dir" / "g.dot"
    try:
        result = run(capsys, "graph", "x*y", "-o", str(target))
    except OSError as exc:  # escapes main(): a traceback for the user
        pytest.fail(f"{type(exc).__name__} escaped main(): {exc}")
    assert_one_line_error(*result, "no-such-dir")


def test_at_with_a_variable_twice_is_an_error(capsys):
    assert_one_line_error(*run(capsys, "eval", "x", "--at", "x=1,x=2"), "x")


@pytest.mark.parametrize("command", ["eval", "trace", "hessian", "jacobian"])
def test_repeated_at_flags_merge_into_one_point(capsys, command):
    # `--at x=1 --at y=2` is `--at x=1,y=2`: before, argparse kept the last one only
    expr = "x*y; x+y" if command == "jacobian" else "x*y**2"
    rc, merged, err = run(capsys, command, expr, "--at", "x=3", "--at", "y=2")
    assert rc == 0, err
    assert run(capsys, command, expr, "--at", "x=3,y=2") == (0, merged, "")
    if command == "eval":
        assert merged.splitlines()[0] == "f     = 12.0"


def test_a_name_in_two_at_flags_is_an_error_naming_it(capsys):
    assert_one_line_error(*run(capsys, "eval", "x*y", "--at", "x=1,y=2", "--at", "y=3"),
                          "--at: y is given twice")
    assert_one_line_error(*run(capsys, "eval", "x*y", "--at", "x=1", "--at", "y=[1,2]", "--at", "x=2"),
                          "--at: x is given twice")


def test_eval_ieee_values_print_without_error(capsys):
    rc, out, err = run(capsys, "eval", "log(x)", "--at", "x=0", "--ascii")
    assert rc == 0 and err == ""
    assert out.splitlines() == ["y     = -inf", "dy/dx = inf"]


def test_eval_expression_without_variables(capsys):
    rc, out, err = run(capsys, "eval", "2*3", "--at", "")
    assert (rc, out, err) == (0, "y = 6.0\n", "")


def test_file_with_byte_order_mark(capsys, tmp_path):
    src = tmp_path / "bom.txt"
    src.write_bytes(b"\xef\xbb\xbfx*y\r\n")
    rc, out, err = run(capsys, "eval", "-f", str(src), "--at", "x=2,y=3", "--ascii")
    assert rc == 0, err
    assert out.splitlines()[0] == "f     = 6.0"


# -- tensors on the command line ---------------------------------------------------------
LSQ = "r = X @ w - y; 0.5 * sum(r**2)"
LSQ_SHAPES = ["--shape", "X=n,3", "--shape", "w=3", "--shape", "y=n"]
LSQ_AT = "X=[[1,2,3],[4,5,6]],w=[1,0,-1],y=[1,2]"


def test_trace_of_a_tensor_program_prints_shapes_and_values(capsys):
    assert exprc(["trace", LSQ, *LSQ_SHAPES, "--wrt", "w", "--at", LSQ_AT]) == 0
    out = capsys.readouterr().out
    assert "v_1  : (n,)   = v_-2 @ v_-1 = [-2., -2.]" in out
    assert "w̄    : (3,)" in out and "[-19., -26., -33.]" in out  # names padded to v̄_-1's width


def test_eval_of_a_tensor_program(capsys):
    assert exprc(["eval", "0.5 * sum((X @ w - y)**2)", *LSQ_SHAPES, "--wrt", "w", "--at", LSQ_AT]) == 0
    out = capsys.readouterr().out
    assert "f     = 12.5" in out and "∂f/∂w = [-19., -26., -33.]" in out


@pytest.mark.parametrize("argv, message", [
    (["eval", "sum(X @ w)", "--shape", "X=2,3", "--shape", "w=4", "--at", "X=[[1,2,3],[4,5,6]],w=[1,0,-1,1]"],
     "inner dimensions differ"),
    (["eval", "sum(w)", "--shape", "w=3", "--at", "w=[1,2]"], "input 'w': dimension 0 has size 2, declared 3"),
    (["eval", "sum(w)", "--shape", "w=3", "--at", "w=[1,2"], "is not a list of numbers"),
    (["eval", "sum(w)", "--shape", "w", "--at", "w=[1,2]"], "--shape: expected NAME=DIMS"),
    (["explain", "sum(w)", "--shape", "w=3", "--mode", "forward"], "unrecognized arguments"),
])
def test_tensor_user_errors_are_one_line(argv, message, capsys):
    assert exprc(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_jacobian_and_hessian_of_tensors_name_each_element(capsys):
    at = "A=[[1,2],[3,4],[5,6]],x=[0.1,-0.2]"
    assert exprc(["jacobian", "y = tanh(A @ x); y, sum(x**2)", "--shape", "A=3,2", "--shape", "x=2",
                  "--at", at, "--wrt", "x"]) == 0
    out = capsys.readouterr().out
    assert "Jacobian (4x2), forward mode (2 tangent sweeps):" in out
    assert "y1[2]" in out and "x[1]" in out
    assert exprc(["hessian", "0.5*sum((A @ x)**2) + sum(x**4)", "--shape", "A=3,2", "--shape", "x=2",
                  "--at", at, "--wrt", "x"]) == 0
    out = capsys.readouterr().out
    assert "x[0]  35.12     44" in out and "x[1]     44  56.48" in out


def test_grad_prints_the_c_tensor_kernel(capsys):
    assert exprc(["grad", "0.5 * sum((X @ w - y)**2)", "--shape", "X=n,3", "--shape", "w=3",
                  "--shape", "y=n", "--wrt", "w", "--target", "c"]) == 0
    out = capsys.readouterr().out
    assert "int f_grad(const ptrdiff_t *dims" in out and "/* v1 = X @ w */" in out


def test_grad_target_vm_prints_the_program_that_runs(capsys):
    from exprcompiler import compile_grad, compile_hvp
    rc, out, _ = run(capsys, "grad", GRIEWANK, "--target", "vm")
    assert rc == 0 and out == compile_grad(GRIEWANK, backend="vm").source
    assert out.startswith("# exprcompiler tape VM program: value and gradient") and " sin " in out
    rc, out, _ = run(capsys, "grad", "sin(x)*y", "--target", "vm", "--order", "2")
    assert rc == 0 and out == compile_hvp("sin(x)*y", backend="vm").source
    for extra in (["--dtype", "float32"], ["--shape", "x=3"]):   # float64 scalars only: one line, status 2
        rc, out, err = run(capsys, "grad", "sum(x*x)", "--target", "vm", "--shape", "x=3", *extra)
        assert rc == 2 and not out and "backend 'vm'" in err and err.count("\n") == 1


def test_forward_trace_of_a_tensor_seeds_its_first_element(capsys):
    # one tangent sweep per element: the table shows the first, with ẋ = e_1
    assert exprc(["trace", "sum(x**2) * a", "--shape", "x=3", "--at", "x=[1,2,3],a=2", "--mode", "forward"]) == 0
    out = capsys.readouterr().out
    from exprcompiler.trace.printer import decorate
    a_dot, x_dot = decorate("a", "dot"), decorate("x", "dot")
    assert f"seeds {a_dot} = 0, {x_dot} = e_1 (the first of 3 sweeps for x)" in out
    assert f"= {x_dot}" in out and "= [1., 0., 0.]" in out
    assert out.rstrip().endswith("= 4.0000")  # ∂y/∂x_1 = 2·x_1·a


@pytest.mark.parametrize("mode", ["reverse", "elimination"])
def test_jacobian_by_elimination_prints_the_sweeps_numbers(capsys, mode):
    assert exprc(["jacobian", "x*y; sin(x)", "--at", "x=1,y=2", "--mode", mode]) == 0
    out = capsys.readouterr().out
    assert ("vertex elimination" in out) == (mode == "elimination")
    rows = [line.split() for line in out.splitlines() if line.startswith(("y1 ", "y2 ")) and "=" not in line]
    assert rows == [["y1", "2", "1"], ["y2", "0.5403023059", "0"]]
