"""C backend, build half: compile generated C into a shared library, cache it, load it
with cffi (ABI mode: the kernel is plain C, so no Python headers are needed).

The cache key hashes everything that changes the binary: the source, the compiler
and its version, the flags, the exprcompiler version and the platform. Builds
happen in a private temporary directory and are renamed into place, so processes
compiling the same new kernel at once all succeed and none sees a half-written
file. A sidecar holds the library's SHA-256; an entry whose bytes do not match
(truncated, corrupt) is rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import CompileError

FLAGS = ("-O3", "-std=c99", "-fPIC", "-shared")
LIBS = ("-lm",)
# Tried first: vector math from libmvec, with gcc's sin/cos -> sincos fusion off (it
# keeps the loop scalar), for this CPU (so the CPU is part of the cache key). No
# fast-math: IEEE inf/NaN semantics and the process's FP environment stay intact.
# If the compiler refuses (clang, old glibc, no OpenMP), the next set is tried.
# Tried in order: OpenMP threads + vector math; vector math only; plain.
BUILDS = (
    (FLAGS + ("-fopenmp", "-fdisable-tree-sincos", "-march=native"), ("-lmvec", "-lm")),
    (FLAGS + ("-fopenmp-simd", "-fdisable-tree-sincos", "-march=native"), ("-lmvec", "-lm")),
    (FLAGS, LIBS),
)


def cache_dir() -> Path:
    root = os.environ.get("EXPRCOMPILER_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "exprcompiler"


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


def cache_key(source: str) -> str:
    compiler, version = find_compiler()
    h = hashlib.sha256()
    for part in (source, compiler, version, repr(BUILDS), __version__, platform.machine(),
                 platform.system(), host_cpu()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _valid(lib: Path, sidecar: Path) -> bool:
    try:
        return sidecar.read_text().strip() == _digest(lib)
    except OSError:
        return False


def build(source: str) -> Path:
    """Path of the shared library for `source`, compiling it on a cache miss."""
    key = cache_key(source)
    folder = cache_dir() / key[:2]
    lib, sidecar = folder / f"{key}.so", folder / f"{key}.sha256"
    if lib.exists() and _valid(lib, sidecar):
        return lib
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{key[:8]}-", dir=folder))
    except OSError as err:
        raise CompileError(f"cannot write the compile cache {folder}: {err.strerror} "
                           f"(set EXPRCOMPILER_CACHE to a writable folder)") from None
    try:
        # fixed file names: the compiler records the source name in the binary, and
        # every build of one key must give the same bytes
        src = tmp / "kernel.c"
        src.write_text(source)
        out = tmp / "kernel.so"
        compiler, _ = find_compiler()
        for flags, libs in BUILDS:
            done = subprocess.run([compiler, *flags, "-o", str(out), str(src), *libs],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode == 0:
                break
        if done.returncode != 0:
            kept = folder / f"{key}.failed.c"
            shutil.copyfile(src, kept)
            raise CompileError(f"the C compiler failed (source kept at {kept}):\n{done.stderr.strip()}")
        digest = _digest(out)
        side_tmp = tmp / "sha256"
        side_tmp.write_text(digest)
        # The library first, then its checksum: a reader that finds a checksum finds
        # the library it describes (every writer produces the same key -> same source).
        os.replace(out, lib)
        os.replace(side_tmp, sidecar)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for _ in range(100):  # another writer may be between its two renames
        if _valid(lib, sidecar):
            return lib
        time.sleep(0.01)
    raise CompileError(f"the cached library {lib} does not match its checksum after building")


_LOADED: dict[str, object] = {}


def load(source: str, decl: str):
    """(ffi, library) for `source`, whose functions `decl` declares, through cffi."""
    import cffi

    lib_path = build(source)
    key = str(lib_path)
    if key not in _LOADED:
        ffi = cffi.FFI()
        ffi.cdef(decl)
        _LOADED[key] = (ffi, ffi.dlopen(key))
    return _LOADED[key]


def clear_cache() -> int:
    """Remove every cached library; returns how many files were removed."""
    root = cache_dir()
    count = 0
    if root.exists():
        for path in root.rglob("*"):
            if path.is_file():
                path.unlink(missing_ok=True)
                count += 1
    return count


# Below this many points one thread is faster than starting a team.
PARALLEL_FROM = 100_000


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def runner(ffi, fn, n_out: int, threads=None):
    """Adapt the C kernel to the API's calling convention: arrays and their broadcast
    batch shape in, one array per output out (into `outs`, flat arrays, when given). A size-1 input is passed with stride 0.
    `threads=None`: every core for large batches, one thread for small ones."""
    def run(arrays, batch, outs=None):
        n = math.prod(batch)
        nt = threads if threads is not None else (default_threads() if n >= PARALLEL_FROM else 1)
        args: list = [n, nt]
        for a in arrays:
            if a.size == 1:
                args += [ffi.from_buffer("double[]", np.ascontiguousarray(a.reshape(1))), 0]
            else:
                flat = np.ascontiguousarray(np.broadcast_to(a, batch)).reshape(-1)
                args += [ffi.from_buffer("double[]", flat), 1]
        if outs is None:
            outs = [np.empty(n) for _ in range(n_out)]
        args += [ffi.from_buffer("double[]", o, require_writable=True) for o in outs]
        if fn(*args) != 0:
            raise MemoryError(f"the C kernel could not allocate its tape for {n} points")
        return [o.reshape(batch) for o in outs]
    return run
