"""The hand-written C reference (`seeds_ref.c`, shipped in the package), in two builds.

- "scalar":     -O3 -std=c99 -fPIC -shared -lm, no OpenMP: a serial scalar loop;
- "vectorized": the flags of the C backend's first build (OpenMP threads, libmvec
                vector math, no sin/cos fusion, -march=native), falling back as the
                backend does, but never to the plain build (that would be "scalar").

Libraries go into the C backend's cache (`c_build.cache_dir()`, so `exprc cache
clear` empties it too), keyed by the source, the compiler and its version, the flags,
the package version and the CPU; a build is renamed into place when complete and
checked against a SHA-256 sidecar, as generated kernels are. They are loaded through
cffi in ABI mode, as the backend loads its kernels, so both pay the same call cost.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np

from ..version import __version__
from ..backends import c_build
from ..errors import CompileError
from .seeds import SEEDS

BUILDS = {
    "scalar": [(c_build.FLAGS, c_build.LIBS)],
    "vectorized": [b for b in c_build.BUILDS if b[0] != c_build.FLAGS],
}


class ReferenceError(RuntimeError):
    """The reference could not be built; str() is one line."""


def source() -> str:
    return resources.files(__package__).joinpath("seeds_ref.c").read_text(encoding="utf-8")


def cdef(text: str) -> str:
    """cffi declarations from the kernels' one-line definitions."""
    return "\n".join(s + ";" for s in re.findall(r"^void \w+\(.*\)$", text, flags=re.M))


def build(build_name: str, folder: Optional[Path] = None, force: bool = False) -> tuple[Path, tuple[str, ...]]:
    """(library path, flags used) of one build, compiled on a cache miss: through the C
    backend's own cache writer (c_build._build: renamed into place when complete, a
    SHA-256 record, files no one else may write), in `folder` when one is given."""
    try:
        compiler, version = c_build.find_compiler()
    except CompileError as err:
        raise ReferenceError(f"{err.one_line()}; the hand-written reference needs one") from None
    text = source()
    folder = Path(folder) if folder is not None else c_build.cache_dir() / "reference"
    errors = []
    for flags, libs in BUILDS[build_name]:
        key = hashlib.sha256("\0".join((text, compiler, version, repr((flags, libs)), __version__,
                                        c_build.host_cpu())).encode()).hexdigest()

        def make(text: str, tmp: Path, kept: Path, flags=flags, libs=libs) -> Path:
            (tmp / "seeds_ref.c").write_text(text)
            cmd = [compiler, *flags, "-o", str(tmp / "ref.so"), str(tmp / "seeds_ref.c"), *libs]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise CompileError((done.stderr.strip().splitlines() or ["failed"])[-1])
            return tmp / "ref.so"
        try:
            return c_build._build(text, force=force, key=key, make=make, root=folder)[0], flags + libs
        except CompileError as err:
            errors.append(str(err).splitlines()[0])
    raise ReferenceError(f"the {build_name} build of seeds_ref.c failed: " + " | ".join(errors))


@dataclass
class Kernels:
    """One seed's kernels in one build, called as compile_expr / compile_grad results
    are: value(*xs, threads=1, out=None) -> y; grad(*xs, threads=1, out=None) ->
    (y, (g, ...)). Inputs are 1-D float64 arrays of one length; `out` holds
    preallocated arrays of that length, nested as the result is."""
    ffi: object
    value_fn: object
    grad_fn: object

    def _call(self, fn, xs, threads, outs):
        xs = [np.ascontiguousarray(x, dtype=np.float64) for x in xs]
        n = xs[0].size
        if any(a.size != n for a in (*xs, *outs)):   # (the kernel reads and writes n of each)
            raise ValueError(f"the reference kernels take arrays of one length, got "
                             f"{[a.size for a in (*xs, *outs)]}")
        ptrs = [self.ffi.from_buffer("double[]", a) for a in (*xs, *outs)]
        fn(n, threads, *ptrs)

    def value(self, *xs, threads: int = 1, out=None):
        y = np.empty(np.shape(xs[0])) if out is None else out
        self._call(self.value_fn, xs, threads, [y])
        return y

    def grad(self, *xs, threads: int = 1, out=None):
        if out is None:
            out = (np.empty(np.shape(xs[0])), tuple(np.empty(np.shape(xs[0])) for _ in xs))
        self._call(self.grad_fn, xs, threads, [out[0], *out[1]])
        return out


@dataclass
class Reference:
    """One build: its library, flags, whether `threads` has an effect, and
    `reference[seed]` -> Kernels."""
    name: str
    path: Path
    flags: tuple[str, ...]
    seeds: dict[str, Kernels] = field(default_factory=dict)

    @property
    def threaded(self) -> bool:
        return "-fopenmp" in self.flags

    def __getitem__(self, seed: str) -> Kernels:
        return self.seeds[seed]


def load_reference(folder: Optional[Path] = None, force: bool = False) -> dict[str, Reference]:
    """{"scalar": Reference, "vectorized": Reference}, building what is missing.
    Raises ReferenceError (one line) when there is no compiler or a build fails."""
    import cffi

    refs = {}
    for name in BUILDS:
        path, flags = build(name, folder, force)
        ffi = cffi.FFI()
        ffi.cdef(cdef(source()))
        lib = ffi.dlopen(str(path))
        c_build._pin_openmp()   # (its OpenMP runtime outlives the library: see there)
        ref = Reference(name, path, flags)
        for seed in SEEDS:
            ref.seeds[seed] = Kernels(ffi, getattr(lib, f"{seed}_value"), getattr(lib, f"{seed}_grad"))
        refs[name] = ref
    return refs
