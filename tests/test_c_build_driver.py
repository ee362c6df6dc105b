"""The split kernels' driver (c_driver): compiled once per compiler and flag set into a
cached object that every split build links (c_build.driver_object), with the ways
back to compiling it as a unit of the build."""

import numpy as np
import pytest

from exprcompiler import compile_jacobian
from exprcompiler.backends import c_backend, c_build, c_cache, c_driver, c_split
from exprcompiler.backends.c_cache import ExprcompilerCacheWarning

from test_c_build_scale import compiler_runs

EXPRS = ["sin(x*y) + exp(-z**2) * x", "x / (1 + y**2) - cos(z * x) + (1 + z**2)**0.5 * x**3"]
OTHER = ["x * y * z + tanh(x - y) / (2 + z**2)", "log(1 + x**2) * exp(y / 3) - sqrt(1 + z**4) * y"]


@pytest.fixture
def split(monkeypatch, tmp_path):
    """Small Jacobians built as split kernels (several parts, a ragged last block)."""
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 10)
    monkeypatch.setattr(c_backend, "PART", 6)


def values(exprs, threads=1):
    """The C Jacobian's values at 2 blocks + 5 points and at one point (checked against
    NumPy's), and the kernel."""
    c = compile_jacobian(exprs, wrt=["x", "y", "z"], backend="c", threads=threads)
    assert c_split.UNIT_MARK in c.source and c_driver.DRIVER in c.source
    ref = compile_jacobian(exprs, wrt=["x", "y", "z"])
    rng = np.random.default_rng(5)
    x, y, z = (rng.uniform(-1.5, 1.5, 2 * c_backend.BLOCK + 5) for _ in range(3))
    got = [np.asarray(v) for v in c(x, y, z)] + [np.asarray(v) for v in c.at(np.array([x[0], y[0], z[0]]))]
    want = list(ref(x, y, z)) + list(ref.at(np.array([x[0], y[0], z[0]])))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    return got, c


def driver_runs(runs) -> list:
    return [a for a in runs if "driver.c" in a]


def test_split_builds_share_one_driver_object_per_driver_text(split, monkeypatch, tmp_path):
    runs = compiler_runs(monkeypatch)
    values(EXPRS, threads=2)
    objects = sorted((tmp_path / "cache").glob("*/*.o"))
    assert len(driver_runs(runs)) == 1 and len(objects) == 1
    del runs[:]
    _, c = values(OTHER)  # another kernel: its parts only, linked with the same object
    units = c_split.split_units(c.source)
    compiles = [a for a in runs if "-c" in a]
    assert not driver_runs(runs) and len(compiles) == len(units) - 1
    link = [a for a in runs if "-c" not in a]
    assert len(link) == 1 and str(objects[0]) in link[0]
    # a driver of other text (a later exprcompiler) is an object of its own
    monkeypatch.setattr(c_driver, "DRIVER", c_driver.DRIVER + "/* another driver */\n")
    del runs[:]
    values(EXPRS)
    assert len(driver_runs(runs)) == 1 and len(list((tmp_path / "cache").glob("*/*.o"))) == 2


def test_the_driver_object_key_follows_compiler_flags_and_text(monkeypatch):
    text, (flags, _) = c_split.split_units("p\n" + c_split.UNIT_MARK + "\nq\n" + c_driver.DRIVER)[-1], c_build.BUILDS[0]

    def key(unit=text, flags=flags, extra=()):
        return c_build.cache_key(unit + "\0" + "\0".join(c_build.driver_flags(flags, extra)))
    base = key()
    assert base == key() and "-shared" not in c_build.driver_flags(flags, ())
    others = {key(flags=c_build.BUILDS[1][0]), key(extra=("-g",)), key(unit=text + "/* changed */\n")}
    monkeypatch.setattr(c_build, "find_compiler", lambda: ("/usr/bin/cc", "cc (another) 99.1"))
    others.add(key())
    assert len(others) == 4 and base not in others


def test_an_unusable_driver_object_is_rebuilt_and_a_refused_one_compiled_with_the_parts(split, monkeypatch,
                                                                                      tmp_path):
    before, _ = values(EXPRS)
    # the linker refuses the cached object (whose record vouches for its bytes): a
    # warning, the object built again, the kernel built
    (obj,) = (tmp_path / "cache").glob("*/*.o")
    obj.write_bytes(b"not an object file")
    obj.with_suffix(".sha256").write_text(c_cache.record_text(obj.stem, c_cache.digest(obj)))
    with pytest.warns(ExprcompilerCacheWarning, match="linker refuses the cached object"):
        values(OTHER)
    assert obj.read_bytes()[:4] == b"\x7fELF"
    # no object to be had (a compiler that refuses it alone, an unwritable cache): the
    # driver compiled with the parts, as before, and the kernel's bits the same
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path / "another"))

    def refused(*args, **kw):
        raise c_build.CompileError("refused")
    monkeypatch.setattr(c_build, "driver_object", refused)
    runs = compiler_runs(monkeypatch)
    again, _ = values(EXPRS)
    assert any("unit" in a[-1] and set(c_build.DRIVER_FLAGS) <= set(a) for a in runs if "-c" in a)
    for a, b in zip(before, again):
        assert np.array_equal(a, b)
