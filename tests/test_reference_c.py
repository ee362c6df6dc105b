"""The hand-written reference C (benchmarks/reference/seeds_ref.c), both builds, agrees
with the generated C and the NumPy backend, so benchmarks/bench_c.py compares
against a correct reference."""

import sys
from pathlib import Path

import numpy as np
import pytest

from exprcompiler import compile_expr, compile_grad

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "build_scripts"))
import build_reference  # noqa: E402

N = 300
TOL = 1e-13  # relative, denominator floored at 1 (values cross zero in the box)


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    try:
        return build_reference.load_reference(tmp_path_factory.mktemp("reference"))
    except build_reference.ReferenceError as err:
        pytest.skip(str(err))


def rel(got, want) -> float:
    got, want = np.asarray(got), np.asarray(want)
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))


@pytest.mark.parametrize("build", ["scalar", "vectorized"])
@pytest.mark.parametrize("seed", sorted(build_reference.SEEDS))
def test_reference_matches_backends(refs, build, seed):
    s = build_reference.SEEDS[seed]
    a, b = s.points(N, seed=7)
    ref = refs[build][seed]
    for backend in ("c", "numpy"):
        want_y, want_g = compile_grad(s.expr, backend=backend)(a, b)
        want_v = compile_expr(s.expr, backend=backend)(a, b)
        for threads in (1, 2):
            y, (g1, g2) = ref.grad(a, b, threads=threads)
            assert rel(y, want_y) < TOL, (backend, threads, "value")
            assert rel(g1, want_g[0]) < TOL, (backend, threads, s.inputs[0])
            assert rel(g2, want_g[1]) < TOL, (backend, threads, s.inputs[1])
            assert rel(ref.value(a, b, threads=threads), want_v) < TOL, (backend, threads)


def test_reference_writes_into_out(refs):
    a, b = build_reference.SEEDS["griewank"].points(N)
    out = (np.empty(N), (np.empty(N), np.empty(N)))
    y, (g1, g2) = refs["vectorized"]["griewank"].grad(a, b, threads=2, out=out)
    assert y is out[0] and g1 is out[1][0] and g2 is out[1][1]
    want = refs["scalar"]["griewank"].grad(a, b)
    assert rel(y, want[0]) < TOL and rel(g2, want[1][1]) < TOL


def test_vectorized_build_uses_the_generated_flags(refs):
    from exprcompiler.backends import c_build
    assert refs["scalar"].flags == c_build.FLAGS + c_build.LIBS
    # the C backend's first build, or the fallback it would take on this compiler
    assert refs["vectorized"].flags in [f + l for f, l in c_build.BUILDS[:-1]]


def test_a_build_is_cached_and_a_refused_flag_set_is_reported(tmp_path, monkeypatch):
    """The reference goes through the C backend's cache writer (c_build._build): a second
    build finds the first one's library and record, and a build whose every flag set
    the compiler refuses raises ReferenceError with the compiler's last line."""
    from exprcompiler.bench import reference
    from exprcompiler.backends import c_build

    try:
        c_build.find_compiler()
    except Exception as err:   # no compiler on this machine
        pytest.skip(str(err))
    first, flags = reference.build("scalar", tmp_path)
    stamp = first.stat().st_mtime_ns
    again, _ = reference.build("scalar", tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp and flags
    assert first.with_suffix(".sha256").exists() and oct(first.stat().st_mode & 0o022) == "0o0"
    monkeypatch.setitem(reference.BUILDS, "scalar", [(["-fno-such-flag-exists", "-shared", "-fPIC"], ["-lm"])])
    with pytest.raises(reference.ReferenceError, match="build of seeds_ref.c failed: .*no-such-flag"):
        reference.build("scalar", tmp_path)
