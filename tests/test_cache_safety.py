"""The compiled-kernel cache can be trusted: an entry is loaded only if its record names
its key and its bytes' SHA-256 (else it is rebuilt, with one warning); `exprc cache
clear` removes only the cache's own files; a library someone else can write (a
symbolic link, another user's file, a file or shard folder others may write) is not
loaded even with a record made to match it, and a build's files are private whatever
the umask; with no HOME the cache is a private temporary folder; extra compiler flags
reach every build and its key; OMP_NUM_THREADS bounds the default thread count."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import pytest

from exprcompiler import compile_grad
from exprcompiler.backends import c_build, c_cache, c_run
from exprcompiler.backends.c_cache import ExprcompilerCacheWarning
from exprcompiler.cli import main
from exprcompiler.errors import CompileError, ExprcError
from conftest import HAVE_CC, NO_CC

if not HAVE_CC:
    pytest.skip(NO_CC, allow_module_level=True)

AS_ROOT = hasattr(os, "getuid") and os.getuid() == 0


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EXPRCOMPILER_EXTRA_CFLAGS", raising=False)


def fresh_copy(tmp_path, monkeypatch, *exprs):
    """Compile `exprs` into one cache, then point the cache at a copy of it, whose files
    this process has never mapped (rewriting a mapped library would crash it)."""
    kernels = [compile_grad(e, backend="c") for e in exprs]
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "cache", copy, symlinks=True)
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(copy))
    return [c_build.build(k.source) for k in kernels]  # a hit: nothing is compiled


def one_warning(call, *words):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    ours = [str(w.message) for w in caught if issubclass(w.category, ExprcompilerCacheWarning)]
    assert len(ours) == 1, ours
    assert all(word in ours[0] for word in words), ours[0]
    return result


def test_garbage_in_place_of_a_library_is_rebuilt_with_one_warning(tmp_path, monkeypatch):
    lib, = fresh_copy(tmp_path, monkeypatch, "x * y + 0.25")
    good = lib.read_bytes()
    lib.write_bytes(b"\x7fELF not really" * 50)
    g = one_warning(lambda: compile_grad("x * y + 0.25", backend="c"), str(lib), "SHA-256")
    assert g(3.0, 2.0) == (6.25, (2.0, 3.0))
    assert lib.read_bytes() == good


def test_garbage_with_a_record_made_for_it_is_not_a_raw_oserror(tmp_path, monkeypatch):
    """The record vouches for the bytes, yet the loader refuses them: rebuilt once."""
    lib, = fresh_copy(tmp_path, monkeypatch, "x * y + 0.375")
    lib.write_bytes(b"garbage, not a shared object" * 20)
    key = lib.name[:-3]
    lib.with_suffix(".sha256").write_text(c_cache.record_text(key, c_cache.digest(lib)))
    g = one_warning(lambda: compile_grad("x * y + 0.375", backend="c"), str(lib), "loader")
    assert g(3.0, 2.0) == (6.375, (2.0, 3.0))


def test_a_loader_that_keeps_refusing_is_a_compile_error(tmp_path, monkeypatch):
    from exprcompiler.backends import c_build
    fresh_copy(tmp_path, monkeypatch, "x * y + 0.625")

    def refuse(path, decl):  # the dynamic loader, as c_build asks it (c_build._open)
        raise OSError(f"cannot load library {path!r}: refused for the test")
    monkeypatch.setattr(c_build, "_open", refuse)
    with pytest.raises(CompileError, match="refuses the kernel it just built"):
        one_warning(lambda: compile_grad("x * y + 0.625", backend="c"), "loader")


def test_another_kernels_library_and_record_are_not_loaded(tmp_path, monkeypatch):
    mine, other = fresh_copy(tmp_path, monkeypatch, "x * y + 0.5", "x + y")
    shutil.copyfile(other, mine)
    shutil.copyfile(other.with_suffix(".sha256"), mine.with_suffix(".sha256"))
    g = one_warning(lambda: compile_grad("x * y + 0.5", backend="c"), str(mine), "another kernel")
    assert g(3.0, 2.0) == (6.5, (2.0, 3.0))  # not x + y = 5


@pytest.mark.parametrize("how", ["binary", "foreign", "permissions"])
def test_an_unreadable_record_is_rebuilt(tmp_path, monkeypatch, how):
    lib, = fresh_copy(tmp_path, monkeypatch, "x * y - 0.125")
    record = lib.with_suffix(".sha256")
    if how == "binary":
        record.write_bytes(b"\xff\xfe\x00" * 30)
    elif how == "foreign":
        record.write_text("this is not a record\n")
    else:
        if AS_ROOT:
            pytest.skip("root reads files whatever their mode")
        record.chmod(0)
    g = one_warning(lambda: compile_grad("x * y - 0.125", backend="c"), str(lib), "record")
    assert g(3.0, 2.0) == (5.875, (2.0, 3.0))
    assert "key " + lib.name[:-3] in record.read_text()


def test_clear_refuses_a_folder_of_user_files(tmp_path, monkeypatch, capsys):
    mine = tmp_path / "mine"
    (mine / "ab").mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    (mine / "ab" / ("ab" + "0" * 62 + ".so")).write_bytes(b"named like a kernel")
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(mine))
    before = sorted(p for p in mine.rglob("*"))
    with pytest.raises(ExprcError, match="refusing to clear"):
        c_build.clear_cache()
    assert main(["cache", "clear"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exprc: error: refusing to clear") and err.count("\n") == 1
    assert sorted(p for p in mine.rglob("*")) == before
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_clear_removes_only_the_caches_own_files(tmp_path, monkeypatch, capsys):
    root = tmp_path / "cache"
    lib = c_build.build("double f(double x) { return 2 * x; }\n")
    shard = lib.parent
    other = "cd" if shard.name != "cd" else "ce"
    outside = tmp_path / "outside" / other
    outside.mkdir(parents=True)
    theirs = outside / (other + "1" * 62 + ".so")
    theirs.write_text("not the cache's")
    keep = [root / "notes.txt", shard / "notes.txt", shard / (lib.name + ".bak")]
    for path in keep:
        path.write_text("user file")
    (root / other).symlink_to(outside)  # named like a shard, leads out of the cache
    (shard / (shard.name + "2" * 62 + ".so")).symlink_to(theirs)
    (shard / (lib.stem + ".failed.c")).write_text("int broken(")
    stale = shard / f".build-{lib.stem[:8]}-abc_0123"
    young = shard / f".build-{lib.stem[:8]}-young_01"
    for d in (stale, young):
        d.mkdir()
        (d / "kernel.c").write_text("in progress")
    os.utime(stale, (time.time() - 2 * c_cache.STALE_BUILD,) * 2)

    assert main(["cache", "clear"]) == 0
    assert "removed 5 files" in capsys.readouterr().out  # .so, .sha256, .failed.c, link, stale
    assert all(p.exists() for p in keep) and young.exists() and (root / other).is_symlink()
    assert theirs.read_text() == "not the cache's"
    assert not lib.exists() and not stale.exists() and (root / c_cache.MARKER).is_file()
    assert sorted(p.name for p in shard.iterdir()) == sorted(["notes.txt", lib.name + ".bak", young.name])


def test_without_home_the_cache_is_a_private_temporary_folder(tmp_path):
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOME", "XDG_CACHE_HOME", "EXPRCOMPILER_CACHE")}
    code = """
        from exprcompiler import compile_grad
        from exprcompiler.cli import main
        print(compile_grad("x*y", backend="c")(1.0, 2.0))
        main(["cache", "info"])
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=work, capture_output=True,
                          text=True, timeout=120, env={**env, "TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr
    root = tmp / f"exprcompiler-{os.getuid()}"
    assert done.stdout.splitlines()[0] == "(2.0, (2.0, 1.0))"
    assert f"C kernel cache: {root} ({c_cache.TEMPORARY})" in done.stdout
    assert not list(work.iterdir())  # no ./~
    assert root.stat().st_mode & 0o777 == 0o700 and (root / c_cache.MARKER).is_file()
    assert len(list(root.rglob("*.so"))) == 1


@pytest.mark.parametrize("how", ["world-writable", "symlink", "another user"])
def test_an_unsafe_temporary_folder_is_refused(tmp_path, monkeypatch, how):
    for var in ("HOME", "XDG_CACHE_HOME", "EXPRCOMPILER_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = tmp_path / f"exprcompiler-{os.getuid()}"
    if how == "symlink":
        (tmp_path / "theirs").mkdir()
        root.symlink_to(tmp_path / "theirs")
    else:
        root.mkdir(mode=0o700)
        if how == "world-writable":
            root.chmod(0o777)
        elif not AS_ROOT:
            pytest.skip("only root can give a folder to another user")
        else:
            os.chown(root, 65534, 65534)
    with pytest.raises(CompileError, match="refusing the cache folder"):
        c_build.build("double f(double x) { return x; }\n")
    with pytest.raises(CompileError, match="refusing the cache folder"):
        c_build.clear_cache()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([root.name] + (["theirs"] if how == "symlink" else []))
    assert not (root.is_dir() and not root.is_symlink() and any(root.iterdir()))


def test_extra_flags_reach_every_build_and_change_the_key(monkeypatch):
    source = "double f(double x) { return 3 * x; }\n"
    plain = c_build.cache_key(source)
    monkeypatch.setenv("EXPRCOMPILER_EXTRA_CFLAGS", "-DEXPRC_TEST='a b'")
    assert c_build.extra_flags() == ("-DEXPRC_TEST=a b",)
    assert c_build.cache_key(source) != plain
    assert c_build.build(source).name == c_build.cache_key(source) + ".so"
    monkeypatch.setenv("EXPRCOMPILER_EXTRA_CFLAGS", "-Werror=exprc-no-such-warning")
    with pytest.raises(CompileError) as err:
        c_build.build(source)
    assert str(err.value).count("exprc-no-such-warning") >= 2  # in the flags and in gcc's error
    monkeypatch.setenv("EXPRCOMPILER_EXTRA_CFLAGS", "-DX='unclosed")
    with pytest.raises(CompileError, match="EXPRCOMPILER_EXTRA_CFLAGS"):
        c_build.build(source)


def test_a_failed_build_reports_the_first_attempt_and_leaves_only_its_source(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    c_build.build("double f(double x) { return 4 * x; }\n")
    before = set(root.rglob("*"))
    builds = [(flags + (marker,), libs) for (flags, libs), marker
              in zip(c_build.BUILDS, ("-fno-exprc-first", "-fno-exprc-later", "-fno-exprc-later"))]
    monkeypatch.setattr(c_build, "BUILDS", tuple(builds))
    with pytest.raises(CompileError) as err:
        c_build.build("double f(double x) { return 5 * x; }\n")
    text = str(err.value)
    assert "-fno-exprc-first" in text.split("[2]")[0] and "source kept at" in text
    added = set(root.rglob("*")) - before
    kept, = [p for p in added if p.name.endswith(".failed.c")]
    assert added <= {kept, kept.parent}, added  # its shard, and nothing else


def test_omp_num_threads_bounds_the_default_thread_count(monkeypatch):
    monkeypatch.setattr(c_run.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    for value, threads in ((None, 3), ("2", 2), ("64", 3), ("1,4", 1), ("0", 3), ("many", 3)):
        if value is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert c_run.default_threads() == threads, value


# -- a cache someone else can write ----------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A cache holding the libraries of x * y + 0.5 and of x + y, built once."""
    root = tmp_path_factory.mktemp("built") / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPRCOMPILER_CACHE", str(root))
        mp.delenv("EXPRCOMPILER_EXTRA_CFLAGS", raising=False)
        mine = c_build.build(compile_grad("x * y + 0.5", backend="c").source)
        theirs = c_build.build(compile_grad("x + y", backend="c").source)
    return root, mine, theirs


def planted(tmp_path, monkeypatch, built, how):
    """The library of x * y + 0.5 in a copy of the cache (never mapped by this process)
    replaced by the one of x + y, with a record that vouches for it: what anyone who
    can write there can do with a library of their own."""
    root, mine, theirs = built
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(copy))
    lib = copy / mine.parent.name / mine.name
    record = lib.with_suffix(".sha256")
    evil = copy / "elsewhere.so"
    shutil.copyfile(theirs, evil)
    if how == "symlink":
        lib.unlink()
        lib.symlink_to(evil)
    else:
        shutil.copyfile(evil, lib)
    record.write_text(c_cache.record_text(mine.stem, c_cache.digest(evil)))
    if how == "another user":
        for path in (lib, record):
            os.chown(path, 65534, 65534)
    elif how == "files others may write":
        lib.chmod(0o777)
        record.chmod(0o666)
    elif how == "shard others may write":
        lib.parent.chmod(0o777)
    return lib


@pytest.mark.parametrize("how", [
    "symlink", "files others may write", "shard others may write",
    pytest.param("another user", marks=pytest.mark.skipif(not AS_ROOT, reason="only root can give a file away"))])
def test_a_planted_library_with_a_matching_record_is_not_loaded(tmp_path, monkeypatch, built, how):
    lib = planted(tmp_path, monkeypatch, built, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = compile_grad("x * y + 0.5", backend="c")
        value = g(3.0, 2.0)
    assert value == (6.5, (2.0, 3.0)), "the planted library (x + y) ran"
    ours = [str(w.message) for w in caught if issubclass(w.category, ExprcompilerCacheWarning)]
    assert len(ours) == 1 and str(lib) in ours[0], ours


def test_a_cache_built_under_a_group_umask_is_loaded_without_rebuilding():
    """The files a build makes are private whatever the umask, so they are loaded
    (checked against the fix above: a check of the modes alone would refuse, and
    rebuild, every kernel made under umask 002)."""
    source = "double f(double x) { return 7 * x; }\n"
    old = os.umask(0o002)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # a rebuild warns
            lib = c_build.build(source)
            assert c_build._build(source) == (lib, False)
    finally:
        os.umask(old)
    assert c_cache.entry_problem(lib, lib.with_suffix(".sha256"), lib.stem) is None
