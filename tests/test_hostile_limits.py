"""Inputs that asked for more than the machine can give are refused with a clear
error before anything is started: a thread count OpenMP cannot start (which ended or
crashed the process at the first call), an endless expression file or standard input
(which the command line read until memory ran out)."""

import os
import subprocess
import sys

import pytest

from exprcompiler import compile_expr, compile_grad, compile_hessian
from exprcompiler.api import max_threads
from exprcompiler.cli import main


@pytest.mark.parametrize("make", [compile_grad, compile_expr, compile_hessian])
@pytest.mark.parametrize("threads", [100_000, 2 ** 31, 2 ** 64])
def test_a_thread_count_past_what_the_machine_can_start_is_refused(make, threads):
    # 100,000 threads: libgomp's "Thread creation failed" (exit status 1) or a
    # segmentation fault at the first call; 2**31 did not fit C's int (OverflowError
    # at each call)
    with pytest.raises(ValueError, match=f"threads={threads} is more than this machine can use: at most "
                                         f"{max_threads()}"):
        make("x * y + sin(x)", backend="c", threads=threads)


def test_the_largest_thread_count_allowed_runs():
    code = ("import numpy as np\n"
            "from exprcompiler import compile_grad\n"
            "from exprcompiler.api import max_threads\n"
            "g = compile_grad('x * y + sin(x)', backend='c', threads=max_threads())\n"
            "v, (dx, dy) = g(np.arange(1000.0), 2.0)\n"
            "print(np.isclose(v[3], 6 + np.sin(3.0)), np.isclose(dx[3], 2 + np.cos(3.0)), dy[3] == 3.0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]


def test_an_expression_file_past_the_input_limit_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPRCOMPILER_MAX_OPS", "1000")   # 64,000 characters at most
    path = tmp_path / "f.txt"
    path.write_text("x * y\n" + "# a comment\n" * 6000)   # 72,006 characters: a valid expression
    assert main(["eval", "-f", str(path), "--at", "x=2,y=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"exprc: error: {path} holds more than 64,000 characters") and err.count("\n") == 1
    path.write_text("x * y\n" + "# a comment\n" * 5000)   # 60,006: within the limit
    assert main(["eval", "-f", str(path), "--at", "x=2,y=3"]) == 0
    assert capsys.readouterr().out.startswith("f     = 6.0")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_an_endless_file_is_refused_not_read_until_memory_runs_out():
    done = subprocess.run([sys.executable, "-m", "exprcompiler", "explain", "-f", "/dev/zero"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EXPRCOMPILER_MAX_OPS": "1000"})
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("exprc: error: /dev/zero holds more than 64,000 characters, more than an expression "
                           "within the input-size limit can have (set EXPRCOMPILER_MAX_OPS to raise it)\n")


class EndlessInput:
    """Standard input from a pipe that never ends."""

    def isatty(self):
        return False

    def read(self, size=-1):
        assert size is not None and size >= 0, "standard input read without a bound"
        return "x" * size


def test_an_endless_standard_input_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("EXPRCOMPILER_MAX_OPS", "1000")
    monkeypatch.setattr(sys, "stdin", EndlessInput())
    assert main(["explain", "-"]) == 2
    assert capsys.readouterr().err.startswith("exprc: error: standard input holds more than 64,000 characters")
