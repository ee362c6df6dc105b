"""C kernels return with the upper halves of the vector registers clean
(c_driver.CLEAN_UPPER): after a call, XGETBV(1) shows no AVX state in use, for the
split kernels (vector-extension and `omp simd` parts, batch and one point, one thread
and a team) and the one-function kernels gcc builds at -O1 (above c_build.SIZED_FROM),
where gcc adds no vzeroupper itself. Left dirty, every later SSE instruction of the
process ran slower (symengine's LLVM code 3.3x)."""

from __future__ import annotations

import ctypes
import platform
import shutil
import subprocess

import numpy as np
import pytest

from exprcompiler import compile_grad, compile_jacobian
from exprcompiler.backends import c_backend, c_build, c_split

# XINUSE: bit 2 the upper halves of ymm0-15, bit 6 those of zmm0-15
PROBE = r"""
#include <cpuid.h>
int xc_probe_ok(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)) || !(c & (1u << 28)))
        return 0;  /* no OSXSAVE or no AVX */
    if (__get_cpuid_max(0, 0) < 0xd)
        return 0;
    __cpuid_count(0xd, 1, a, b, c, d);
    return (a >> 2) & 1;  /* XGETBV with ECX = 1 */
}
unsigned long long xc_upper_in_use(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
    return (((unsigned long long)hi << 32) | lo) & 0x44;
}
"""

EXPRS = ["sin(x*y) + exp(-z**2) * x", "x / (1 + y**2) - cos(z * x) + sqrt(1 + z**2) * x**3 + tanh(y)"]


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    if platform.machine() not in ("x86_64", "AMD64") or platform.system() != "Linux":
        pytest.skip("XGETBV is x86-64's; the probe is built for Linux")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    folder = tmp_path_factory.mktemp("probe")
    (folder / "probe.c").write_text(PROBE)
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", "probe.so", "probe.c"], cwd=folder, check=True)
    lib = ctypes.CDLL(str(folder / "probe.so"))
    lib.xc_upper_in_use.restype = ctypes.c_ulonglong
    if not lib.xc_probe_ok():
        pytest.skip("no AVX, or no XGETBV(1) on this CPU")
    if lib.xc_upper_in_use():
        pytest.skip("the AVX state is in use before any kernel ran")
    return lib.xc_upper_in_use


def calls(f):
    """Every kind of call of a compiled function: a batch (the kernel's OpenMP loop),
    floats (the one-point entry) and .at."""
    rng = np.random.default_rng(3)
    xs = [rng.uniform(-2, 2, 37) for _ in range(3)]
    return [("batch", lambda: f(*xs)), ("floats", lambda: f(0.3, -1.2, 0.7)),
            ("at", lambda: f.at(np.array([0.3, -1.2, 0.7])))]


@pytest.mark.parametrize("kind", ["lanes", "simd", "sized"])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernels_return_with_the_upper_halves_clean(monkeypatch, tmp_path, probe, kind, threads):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path))
    if kind == "sized":   # one function, at -O1 (SIZED_FLAGS) since it is "large"
        monkeypatch.setattr(c_build, "SIZED_FROM", 0)
    else:
        monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
        monkeypatch.setattr(c_backend, "PART", 6)
        monkeypatch.setattr(c_split, "VECTOR_UP_TO", 0 if kind == "lanes" else 10**9)
    for f in (compile_jacobian(EXPRS, wrt=["x", "y", "z"], backend="c", threads=threads),
              compile_grad(EXPRS[1], backend="c", threads=threads)):
        assert (c_split.UNIT_MARK in f.source) == (kind != "sized")
        for what, call in calls(f):
            assert not probe(), "dirty before the call"
            call()
            assert not probe(), f"{kind}, {what}: the upper halves are left in use"
