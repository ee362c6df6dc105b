"""The stability bench's SAFE ranges (issue 18): where it times what a rewrite costs when
it was not needed, the naive form must be accurate (value and gradient within 1e-13 of
mpmath), or the ratio measures a needed rewrite. Every scalar catalogue entry has such a
range, each is checked here on a few points (NumPy fast, C slow), and the bench itself
checks and marks a range where the naive form is not accurate."""

from __future__ import annotations

import pytest

from exprcompiler.bench import stability as bench
from exprcompiler.stability import accuracy as A
from exprcompiler.stability.catalogue import CATALOGUE, SAFE, logu
from conftest import HAVE_CC

GOAL = 1e-13
SCALAR = [e for e in CATALOGUE if not e.shapes]


pytestmark = pytest.mark.usefixtures("private_cache")


def test_every_scalar_entry_has_a_safe_range():
    assert sorted(SAFE) == sorted(e.name for e in SCALAR)


def _worst(entry, backend: str, stable: bool) -> float:
    sampler, _ = SAFE[entry.name]
    entry = bench.on_range(entry, sampler)
    pts = A.points(entry, 30, seed=11)   # (not the bench's seed: other points of the range)
    kw = {"threads": 1} if backend == "c" else {}
    v, g = A.errors(A.compile_entry(entry, backend, stable, **kw), pts, A.references(entry, pts))
    return max(A.worst(v), A.worst(g))


@pytest.mark.parametrize("entry", SCALAR, ids=[e.name for e in SCALAR])
def test_naive_form_accurate_on_safe_range_numpy(entry):
    assert _worst(entry, "numpy", False) <= GOAL
    assert _worst(entry, "numpy", True) <= GOAL


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
@pytest.mark.parametrize("entry", SCALAR, ids=[e.name for e in SCALAR])
def test_naive_form_accurate_on_safe_range_c(entry):
    assert _worst(entry, "c", False) <= GOAL
    assert _worst(entry, "c", True) <= GOAL


def _run(capsys, *argv) -> tuple[int, str]:
    status = bench.main(["--safe-only", "--no-speed", "--points", "20", *argv])
    return status, capsys.readouterr().out


def test_bench_marks_a_range_where_the_naive_form_is_wrong(monkeypatch, capsys):
    monkeypatch.setattr(bench, "BACKENDS", ("numpy",))
    status, out = _run(capsys, "--only", "log(1+x)")
    assert status == 0 and "x in [0.1, 10]" in out and " !" not in out
    monkeypatch.setitem(SAFE, "log(1+x)", (logu(1e-300, 1e-3), "x in [1e-300, 1e-3]"))
    status, out = _run(capsys, "--only", "log(1+x)")
    assert status == 1
    row = next(line for line in out.splitlines() if line.startswith("log(1 + x)"))
    assert "x in [1e-300, 1e-3]" in row and row.split()[-2] == "!"
    assert "not within 1e-13 on the range of: log(1+x)" in out


def test_only_filters_the_safe_table(monkeypatch, capsys):
    monkeypatch.setattr(bench, "BACKENDS", ("numpy",))
    status, out = _run(capsys, "--only", "sqrt(1+x)", "--only", "erfc")
    lines = out.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("---")) + 1
    rows = [line.split("  ")[0] for line in lines[start:] if line.strip()]
    assert status == 0 and rows == ["sqrt(1 + x) - 1", "1 - erfc(x)"]
