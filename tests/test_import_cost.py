"""What `import exprcompiler` and a first gradient load: not pathlib (the code store
takes its folder as a str), not fractions (special.py's Bernoulli numbers are written
out), and special.py's polygamma tables only when asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from exprcompiler import cache_root

ROOT = Path(__file__).resolve().parent.parent


def test_import_and_a_first_gradient_load_neither_pathlib_nor_fractions(tmp_path):
    # -S: no site, whose editable-install finder imports pathlib itself (a normal install's does not)
    code = ("import sys, exprcompiler; from exprcompiler import special as S; "
            "f = exprcompiler.compile_grad('sin(x) * y + polygamma(1, x)'); f(0.5, 2.0); "
            "print('pathlib' in sys.modules, 'fractions' in sys.modules, '_COT' in vars(S), "
            "'_ASYMPTOTIC' in vars(S))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(Path(np.__file__).parent.parent)]),
               EXPRCOMPILER_CACHE=str(tmp_path))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False"] * 4, out.stderr


def test_location_text_is_location(monkeypatch, tmp_path):
    for env in ({"EXPRCOMPILER_CACHE": str(tmp_path / "c")}, {"XDG_CACHE_HOME": str(tmp_path / "x")},
                {"HOME": str(tmp_path / "h")}, {}):
        for name in ("EXPRCOMPILER_CACHE", "XDG_CACHE_HOME", "HOME"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        root, why = cache_root.location()
        text, why_text = cache_root.location_text()
        assert type(text) is str and Path(text) == root and why_text == why
