"""C backend, build half: compile generated C into a shared library and load it with
cffi (ABI mode: the kernel is plain C, so no Python headers are needed; the functions
typed from their generated declarations without cffi's C parser, see functions_of). Where the
library is kept, and whether a cached one may be loaded, is c_cache's business; the
optional CPython extension for one-point calls is c_entry's (built through `_build`).

The cache key hashes everything that changes the binary: the source, the compiler
and its version, the flags (EXPRCOMPILER_EXTRA_CFLAGS included), the exprcompiler
version and the platform. Builds happen in a private temporary folder and are renamed
into place, the library and then its record, so processes compiling the same new
kernel at once all succeed and none sees a half-written file. Cache files are only
ever replaced, never rewritten: truncating a library that a process has mapped
crashes that process (SIGBUS). A cached library whose record does not name its key
and its SHA-256, or that the dynamic loader refuses, is rebuilt once, with a warning.
The split kernels' driver (c_driver) is such an entry too, an object file per flag
set that split builds link (driver_object).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

from ..version import __version__
from ..errors import CompileError
from . import c_cache, c_split

# -fno-math-errno: libm calls need not set errno (nothing reads it), so sqrt is one
# instruction instead of a branch to a call, and loops with sqrt vectorize. Values and
# the IEEE semantics are unchanged.
FLAGS = ("-O3", "-fno-math-errno", "-std=c99", "-fPIC", "-shared")
LIBS = ("-lm",)
# Tried first: vector math from libmvec, with gcc's sin/cos -> sincos fusion off (it
# keeps the loop scalar), for this CPU (so the CPU is part of the cache key). No
# fast-math: IEEE inf/NaN semantics and the process's FP environment stay intact.
# If the compiler refuses (clang, old glibc, no OpenMP), the next set is tried.
# Tried in order: OpenMP threads + vector math; vector math only; plain.
# The sets that link libmvec say so to the source (MVEC_DEFINE): a split kernel's
# vector-extension parts then call its vector variants by name (c_lanes.MVEC).
MVEC_DEFINE = "-DXC_LIBMVEC"
BUILDS = (
    (FLAGS + ("-fopenmp", "-fdisable-tree-sincos", "-march=native", MVEC_DEFINE), ("-lmvec", "-lm")),
    (FLAGS + ("-fopenmp-simd", "-fdisable-tree-sincos", "-march=native", MVEC_DEFINE), ("-lmvec", "-lm")),
    (FLAGS, LIBS),
)
COMPILE_TIMEOUT = 600  # seconds, for each compiler run

# The optimisation level by size, for c_backend's one-function per-point kernel (found
# by its POINT_MARK; split kernels' units have c_split.UNIT_FLAGS; tensor kernels keep
# -O3, their loops need its vectorizer). Its statements run inside `omp simd` loops,
# which gcc vectorizes at -O1 too, and straight-line code gains little from -O2/-O3;
# what -O3 costs is register allocation over several copies of the body (the loops'
# vector bodies, their vector epilogues, the one-point copy). Measured with
# benchmarks/bench_c_flags.py (gcc 12, this 2-core EPYC, load 5-6: compiler CPU s, min of
# two cold builds / kernel thread-CPU ms at 10^4 points, min of 21 interleaved rounds;
# "noepi": --param=vect-epilogues-nomask=0, no vector epilogue after the vector loop,
# the batch's last few points run scalar):
#   statements           -O3          -O3 noepi    -O2 noepi    -O1 noepi
#   34 (1-link Jac.)     0.27 / 0.20  0.25 / 0.14  0.25 / 0.13  0.16 / 0.15
#   83 (random grad)     0.32 / 0.24  0.30 / 0.22  0.28 / 0.21  0.19 / 0.21
#   112 (2-link Jac.)    0.62 / 0.25  0.57 / 0.24  0.47 / 0.23  0.37 / 0.23
#   213 (random grad)    0.63 / 0.93  0.47 / 0.89  0.47 / 0.90  0.37 / 0.90
#   244 (3-link Jac.)    1.15 / 0.44  1.08 / 0.37  0.77 / 0.36  0.62 / 0.39
#   6-link Jac. unsplit  3.28         -            1.95 / 1.65  1.13 / 1.61 (split, -O1 units: 0.40 / 1.46)
# Medians agree as the minima do, within the rounds' spread (about 10%). Above
# SIZED_FROM statements: -O1 without vector epilogues, 0.55-0.6x -O3's compiler time at
# its kernel speed; below, -O3 without them (the compile is short anyway, and the
# measurements that shaped the C backend were made at -O3).
POINT_MARK = "/* one point */\nXC_INLINE void "
# statements (lines ending in ";") of the whole source: 100 measured when the kernel's
# own lines held 5 fewer (before its loop moved into a range function: c_kernel._on_threads)
SIZED_FROM = 105
SIZED_FLAGS = {False: (), True: ("-O1",)}   # by "above SIZED_FROM"
SIZED_GCC_FLAGS = ("--param=vect-epilogues-nomask=0",)


def cache_dir() -> Path:
    return c_cache.location()[0]


@functools.lru_cache(maxsize=None)
def find_compiler() -> tuple[str, str]:
    """(path, version line) of the system C compiler."""
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            try:
                out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            return path, (out.stdout.splitlines() or ["unknown"])[0]
    raise CompileError("no C compiler found (looked for cc, gcc, clang on PATH); install one, "
                       "or use backend=\"numpy\", which needs none")


@functools.lru_cache(maxsize=None)
def host_cpu() -> str:
    """What -march=native depends on: the CPU's model and feature flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            info = [ln for ln in fh if ln.startswith(("model name", "flags", "Features"))]
        return hashlib.sha256("".join(sorted(set(info))).encode()).hexdigest()
    except OSError:
        return platform.processor() or platform.machine()


def extra_flags() -> tuple[str, ...]:
    """EXPRCOMPILER_EXTRA_CFLAGS, split as a shell would: added after every build's flags
    (sanitizers, -g, a -D for a test)."""
    text = os.environ.get("EXPRCOMPILER_EXTRA_CFLAGS", "")
    try:
        return tuple(shlex.split(text))
    except ValueError as err:
        raise CompileError(f"EXPRCOMPILER_EXTRA_CFLAGS={text!r} is not a list of flags: {err}") from None


def sized_flags(source: str, flags, gnu: bool) -> tuple[str, ...]:
    """The flags added after `flags` (one of BUILDS) for a one-unit `source`: by its
    size for a per-point kernel built with OpenMP's simd loops (see SIZED_FROM; the
    plain set has no `omp simd`, so -O3's own vectorizer is kept), else none. `gnu`:
    the compiler is gcc (the --param is gcc's)."""
    if POINT_MARK not in source or not ({"-fopenmp", "-fopenmp-simd"} & set(flags)):
        return ()
    return SIZED_FLAGS[source.count(";\n") > SIZED_FROM] + (SIZED_GCC_FLAGS if gnu else ())


def _gnu() -> bool:
    return "clang" not in find_compiler()[1].lower()


def cache_key(source: str) -> str:
    compiler, version = find_compiler()
    h = hashlib.sha256()
    sized = repr((POINT_MARK, SIZED_FROM, SIZED_FLAGS, SIZED_GCC_FLAGS))  # the rule: its choice follows the source
    for part in (source, compiler, version, repr(BUILDS), sized, repr(c_split.UNIT_FLAGS), repr(c_split.LANES_FLAGS),
                 repr(c_split.SIMD_FLAGS), repr((DRIVER_FLAGS, DRIVER_GCC_FLAGS)),  # (the split kernels' driver)
                 repr(extra_flags()), __version__, platform.machine(), platform.system(), host_cpu()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def build(source: str) -> Path:
    """Path of the shared library for `source`, compiling it on a cache miss."""
    return _build(source)[0]


def _build(source: str, force: bool = False, key: str = "", make=None, suffix: str = ".so",
           root: Optional[Path] = None) -> tuple[Path, bool]:
    """(library path, whether this call compiled it); `force` rebuilds a cached entry.
    `key` and `make(source, tmp, kept) -> path`: another binary's (c_entry's extension,
    the split kernels' driver object, whose `suffix` is ".o", bench/reference's
    hand-written kernels, which may have a `root` folder of their own instead of the
    cache's)."""
    key = key or cache_key(source)
    folder = (root if root is not None else c_cache.root_for(write=False)) / key[:2]
    lib, record = folder / f"{key}{suffix}", folder / f"{key}.sha256"
    if not force:
        problem = c_cache.entry_problem(lib, record, key)
        if problem is None:
            return lib, False
        if problem:
            _warn(f"not loading the cached kernel {lib}: {problem}; rebuilding it")
    if root is None:
        c_cache.root_for(write=True)
    try:
        folder.mkdir(mode=0o700, parents=root is not None, exist_ok=True)
        st = os.lstat(folder)
        if st.st_mode & 0o022 and stat.S_ISDIR(st.st_mode) and st.st_uid == c_cache._uid():
            os.chmod(folder, st.st_mode & ~0o022)   # (made under a umask of 002 by an older build)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{key[:8]}-", dir=folder))
    except OSError as err:
        raise CompileError(f"cannot write the compile cache {folder}: {err.strerror} "
                           f"(set EXPRCOMPILER_CACHE to a writable folder)") from None
    try:
        out = (make or _compile)(source, tmp, kept=folder / f"{key}.failed.c")
        os.chmod(out, 0o755)   # (whatever the umask: entry_problem loads only files no one else may write)
        (tmp / "record").write_text(c_cache.record_text(key, c_cache.digest(out)))
        os.chmod(tmp / "record", 0o644)
        # The library first, then its record: a reader that finds the record finds the
        # library it describes (every writer of one key compiles the same bytes).
        os.replace(out, lib)
        os.replace(tmp / "record", record)
    except OSError as err:
        raise CompileError(f"cannot write the compile cache {folder}: {err.strerror}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for _ in range(100):  # another writer may be between its two renames
        problem = c_cache.entry_problem(lib, record, key)
        if problem is None:
            return lib, True
        time.sleep(0.01)
    raise CompileError(f"the cached library {lib} cannot be loaded after building: "
                       f"{problem or 'it does not match its record'}")


def compile_jobs() -> int:
    """How many compiler processes a split kernel's units may run at once: the cores
    this process may run on (the affinity mask, not OMP_NUM_THREADS, which is about the
    kernel's threads)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _run(args: list, cwd: Path) -> str:
    """Run the compiler; "" on success, else why not."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, cwd=cwd)
    except subprocess.TimeoutExpired:
        return f"no result after {COMPILE_TIMEOUT} s"
    except OSError as err:
        return f"could not run {args[0]}: {err.strerror}"
    if done.returncode == 0:
        return ""
    # -fdisable-tree-sincos makes gcc say so on every run: noise here
    return "\n".join(ln for ln in done.stderr.strip().splitlines()
                     if "note: disable pass" not in ln) or f"exit status {done.returncode}"


# The split kernels' driver (c_driver) is compiled once per compiler and flag set, at
# the parts' level (its copies ran at -O1 before); the first split build in a cache
# compiles it alongside its parts. gcc's CPU on it (9 interleaved runs, load 3.3,
# min / median): -O0 45 / 61 ms, -O1 86 / 100, -O2 136 / 153, -O3 196 / 228.
DRIVER_FLAGS = c_split.UNIT_FLAGS
# gcc aligns no loop at -O1, so where the driver's copy loops fell in a 64-byte line
# followed the size of the code linked before them (the PLT, the parts): the 10-link
# pendulum's Jacobian, whose scalar scatter loop then crossed a line with libmvec
# called by name (c_lanes.MVEC), ran 10^4 points in 4.18 ms against 3.96 ms with
# lane wrappers; with the loops aligned to 32 bytes 3.78 against 3.83 ms
# (benchmarks/bench_c_split_gap.py, thread CPU, medians of 41 interleaved rounds,
# load 4.7-5.6; the same instructions in callgrind).
# The passes that `omp simd` parts do without (c_split.SIMD_FLAGS) find nothing in the
# driver either: its compile (a cold cache's, beside the parts) 82 / 86 ms -> 69 / 72
# ms of compiler CPU (min / median of 11 interleaved runs, load 5); the kernels as fast
# and bit for bit the same (pendulum Jacobians at 10^4 points, medians of 31 rounds,
# 6 links 1.038 -> 1.043 ms, 10 links 3.46 -> 3.44; callgrind 879 -> 871 and 2,038 ->
# 2,022 instructions a point; benchmarks/bench_c_split_gap.py, load 4.3). Not loop
# optimization too (-fno-tree-loop-optimize: 63 ms, but 1.3x the kernel's time).
DRIVER_GCC_FLAGS = ("-falign-loops=32", *c_split.SIMD_FLAGS)


def driver_flags(flags, extra) -> list[str]:
    """The driver object's compiler flags for `flags` (one of BUILDS) and `extra`."""
    return [f for f in flags if f != "-shared"] + [*DRIVER_FLAGS, *DRIVER_GCC_FLAGS * _gnu(), *extra]


def driver_object(unit: str, compiler: str, flags, extra, force: bool = False) -> tuple[Path, bool]:
    """(path, whether this call compiled it) of the cached object of the split kernels'
    driver `unit` (c_split.is_driver) built with `flags` (one of BUILDS) and `extra`;
    CompileError if the compiler refuses it. Its key hashes the driver's text and these
    flags besides all that cache_key hashes (the compiler, its version, the CPU, ...)."""
    compile_flags = driver_flags(flags, extra)
    key = cache_key(unit + "\0" + "\0".join(compile_flags))

    def make(source: str, tmp: Path, kept: Path) -> Path:
        del kept  # (the driver's text is in every split kernel's source)
        (tmp / "driver.c").write_text(source)
        why = _run([compiler, *compile_flags, "-c", "-o", "driver.o", "driver.c"], tmp)
        if why:
            raise CompileError(f"the C compiler refused the split kernels' driver: {why}")
        return tmp / "driver.o"
    return _build(unit, force=force, key=key, make=make, suffix=".o")


def _compile_units(compiler: str, flags, extra, libs, units: int, tmp: Path) -> str:
    """Compile unit0.c ... in parallel (compile_jobs processes), then link them into
    kernel.so; "" on success, else the first failure. A last unit that is the driver
    (c_split.is_driver) is not compiled here: its cached object (driver_object) is
    linked, built alongside the parts if missing, built again once with a warning if
    the linker refuses it, and compiled here as before where it cannot be had."""
    from concurrent.futures import ThreadPoolExecutor

    compile_flags = [f for f in flags if f != "-shared"]
    gnu = _gnu()
    texts = [(tmp / f"unit{k}.c").read_text() for k in range(units)]
    driver = units if not c_split.is_driver(texts[-1]) else units - 1
    added = [c_split.unit_flags(texts[k], gnu) for k in range(driver)]
    got: dict = {}

    def job(k: int) -> str:
        if k < driver:
            return _run([compiler, *compile_flags, *added[k], *extra, "-c", "-o", f"unit{k}.o", f"unit{k}.c"], tmp)
        try:
            got["driver"] = driver_object(texts[k], compiler, flags, extra)
            return ""
        except CompileError:  # as before: the driver a unit of this build
            return _run([compiler, *driver_flags(flags, extra), "-c", "-o", f"unit{k}.o", f"unit{k}.c"], tmp)
    # the driver first (found in the cache at once, usually), then largest first: the
    # pool's last job is then a small one
    order = sorted(range(units), key=lambda k: (k < driver, -len(texts[k])))
    with ThreadPoolExecutor(max_workers=min(units, compile_jobs())) as pool:
        whys = list(pool.map(job, order))
    why = next((w for w in whys if w), "")
    if why:
        return why
    objects = [f"unit{k}.o" for k in range(driver)]
    if "driver" not in got:
        return _run([compiler, *flags, *extra, "-o", "kernel.so", *objects, *[f"unit{driver}.o"] * (driver < units),
                     *libs], tmp)
    path, fresh = got["driver"]
    why = _run([compiler, *flags, *extra, "-o", "kernel.so", *objects, str(path), *libs], tmp)
    if why and not fresh:  # bytes the record vouches for, yet the linker refuses them
        _warn(f"the linker refuses the cached object of the split kernels' driver {path} "
              f"({why.splitlines()[0]}); rebuilding it")
        path, _ = driver_object(texts[-1], compiler, flags, extra, force=True)
        why = _run([compiler, *flags, *extra, "-o", "kernel.so", *objects, str(path), *libs], tmp)
    return why


def _compile(source: str, tmp: Path, kept: Path) -> Path:
    """Compile in `tmp` with the first flag set the compiler accepts; if none, keep the
    source at `kept` and raise with every attempt's errors (the first is the telling
    one: later sets only drop features). A source of several translation units (a
    split kernel, see c_split) is compiled unit by unit in parallel and linked."""
    # fixed, relative file names: the compiler records the source name in the binary,
    # and every build of one key must give the same bytes
    out = tmp / "kernel.so"
    units = c_split.split_units(source)
    if len(units) == 1:
        (tmp / "kernel.c").write_text(source)
    for k, unit in enumerate(units if len(units) > 1 else ()):
        (tmp / f"unit{k}.c").write_text(unit)
    compiler, _ = find_compiler()
    extra = extra_flags()
    failures = []
    for flags, libs in BUILDS:
        sized = sized_flags(source, flags, _gnu()) if len(units) == 1 else ()
        if len(units) == 1:
            why = _run([compiler, *flags, *sized, *extra, "-o", "kernel.so", "kernel.c", *libs], tmp)
        else:
            why = _compile_units(compiler, flags, extra, libs, len(units), tmp)
        if not why:
            crashed = [w for _, w in failures if "internal compiler error" in w]
            if crashed:  # a refused flag is expected (clang); a crash costs speed unseen
                _warn(f"the C compiler crashed on the faster flags ({crashed[0].splitlines()[0]}); "
                      f"this kernel is built with {' '.join(flags)}")
            return out
        # the kept file's path for the compiler's; a unit's line numbers count from its
        # UNIT_MARK (after the shared prelude)
        failures.append((" ".join((*flags, *sized, *extra, *libs)), why.replace("kernel.c:", f"{kept}:")))
    kept.write_text(source)
    lines = [f"the C compiler failed (source kept at {kept}) with each of {len(failures)} flag sets:"]
    for k, (flags, why) in enumerate(failures):
        same = k and why == failures[0][1]
        lines.append(f"[{k + 1}] {flags}:" + (" the same errors as [1]" if same else f"\n{why}"))
    raise CompileError("\n".join(lines))


def _warn(message: str) -> None:
    warnings.warn(f"exprcompiler: {message}", c_cache.ExprcompilerCacheWarning, stacklevel=4)


_LOADED: dict[str, object] = {}

# A generated declaration: `type name(params);`, each parameter `[const] type [*...] name`
# (a pointer may be `const` or `restrict` itself). cffi's ffi.cdef parses C with
# pycparser, about 1 ms a parameter: a warm load of the 10-link pendulum's Jacobian
# (two functions, 500 parameters) spent 60 ms there. Declarations of this form are
# built from their parameters' few distinct types instead (functions_of).
_FUNCTION = re.compile(r"\s*([A-Za-z_]\w*)\s+([A-Za-z_]\w*)\s*\(([^()]*)\)\s*;")
_PARAM = re.compile(r"\s*(?:const\s+)?([A-Za-z_]\w*)\s*((?:\*\s*(?:(?:const|restrict)\b\s*)*)*)[A-Za-z_]\w*\s*")
_BASES = frozenset(("int", "double", "float", "ptrdiff_t"))


class Library:
    """A loaded kernel library's functions by name (cffi function pointers, as an
    ffi.dlopen library gives them), and the library itself, kept loaded."""

    def __init__(self, handle, functions: dict):
        self._handle = handle
        self.__dict__.update(functions)


def functions_of(decl: str) -> Optional[list]:
    """[(name, result type, parameter types)] of a generated declaration (types as
    cffi spells them: "double *"), or None where it is not of the form above."""
    found, end = [], 0
    for m in _FUNCTION.finditer(decl):
        if decl[end:m.start()].strip():
            return None
        end = m.end()
        params = []
        for text in m.group(3).split(","):
            p = _PARAM.fullmatch(text)
            if p is None or p.group(1) not in _BASES:
                return None
            params.append(p.group(1) + " " * bool(p.group(2)) + p.group(2).count("*") * "*")
        if m.group(1) not in _BASES or not params:
            return None
        found.append((m.group(2), m.group(1), params))
    return found if found and not decl[end:].strip() else None


def _open(path: str, decl: str):
    """(ffi, library) of the library at `path`: its functions typed from `decl`
    (functions_of) through cffi's backend, else declared with ffi.cdef; OSError where
    the dynamic loader refuses the file."""
    import cffi
    ffi = cffi.FFI()
    functions = functions_of(decl)
    if functions is None:
        ffi.cdef(decl)
        return ffi, ffi.dlopen(path)
    backend = ffi._backend
    handle = backend.load_library(path, 0)  # 0: ffi.dlopen's default flags
    return ffi, Library(handle, {
        name: handle.load_function(backend.new_function_type(tuple(map(_ctype, params)), _ctype(result), False),
                                   name)
        for name, result, params in functions})


@functools.lru_cache(maxsize=None)
def _ctype(text: str):
    """cffi's type of `text` ("double *"): parsed once per process (types are cffi's
    backend's, shared by every FFI instance)."""
    import cffi
    return cffi.FFI().typeof(text)


def load(source: str, decl: str):
    """(ffi, library) for `source`, whose functions `decl` declares, through cffi."""
    lib_path, fresh = _build(source)
    if str(lib_path) not in _LOADED:
        while True:
            try:
                _LOADED[str(lib_path)] = _open(str(lib_path), decl)
                break
            except OSError as err:  # bytes the record vouches for, yet not a library here
                if fresh:
                    raise CompileError(f"the dynamic loader refuses the kernel it just built, "
                                       f"{lib_path}: {err} (is the cache on a noexec file "
                                       f"system? set EXPRCOMPILER_CACHE elsewhere)") from None
                _warn(f"the dynamic loader refuses the cached kernel {lib_path} ({err}); "
                      f"rebuilding it")
                lib_path, fresh = _build(source, force=True)
        _pin_openmp()
    return _LOADED[str(lib_path)]


# The OpenMP runtimes a kernel may link (gcc's, LLVM's, Intel's), by soname.
OPENMP_RUNTIMES = ("libgomp.so.1", "libomp.so", "libomp.so.5", "libiomp5.so")
_PINNED: list = []


def _pin_openmp() -> None:
    """Keep the OpenMP runtime that a loaded kernel brought in mapped for the rest of
    the process. Its team's threads outlive every parallel region, idle inside the
    runtime (spinning first, then waiting); when the last kernel linking it was
    unloaded (at interpreter exit, when _LOADED is freed) the runtime went with it,
    and a thread still spinning ran on in unmapped code: a segmentation fault after
    the user's script had finished (every time with OMP_WAIT_POLICY=active; seen
    under the sanitizers too). dlopen with RTLD_NOLOAD finds it only if it is loaded;
    RTLD_NODELETE makes it stay."""
    if _PINNED or not (hasattr(os, "RTLD_NOLOAD") and hasattr(os, "RTLD_NODELETE")):
        return
    import ctypes
    for soname in OPENMP_RUNTIMES:
        try:
            _PINNED.append(ctypes.CDLL(soname, mode=os.RTLD_NOW | os.RTLD_NOLOAD | os.RTLD_NODELETE))
        except OSError:   # not loaded (a kernel without OpenMP, or another runtime)
            continue


def clear_cache() -> int:
    """Remove the cache's own files (never others'); returns how many were removed."""
    return c_cache.clear()[1]
