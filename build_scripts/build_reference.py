"""Build the hand-written reference C kernels of the seed functions, in two builds.

    python build_scripts/build_reference.py [--out build/reference] [--force]

benchmarks/reference/seeds_ref.c is compiled twice with the system C compiler (the
one the C backend uses):

- "scalar":     -O3 -std=c99 -fPIC -shared -lm, no OpenMP: a serial scalar loop;
- "vectorized": the flags the C backend's first build uses (OpenMP threads,
                libmvec vector math, no sin/cos fusion, -march=native), taken from
                exprcompiler.backends.c_build.BUILDS, falling back as it does.

The libraries are loaded through cffi in ABI mode (ffi.dlopen), as the C backend
loads its kernels: the compile command is then exactly the one written here, with
no Python headers and no setuptools flags mixed in, and both sides pay the same
call overhead. `load_reference()` builds what is missing (a library's file name
hashes its source, compiler and flags) and returns the kernels as Python callables.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "benchmarks" / "reference" / "seeds_ref.c"
HEADER = SOURCE.with_suffix(".h")
DEFAULT_OUT = ROOT / "build" / "reference"

sys.path.insert(0, str(ROOT))  # run from a checkout without installing
from exprcompiler.backends import c_build  # noqa: E402
from exprcompiler.errors import CompileError  # noqa: E402


@dataclass(frozen=True)
class Seed:
    """A seed function: its expression, input names in compile_grad's order, and
    the box its points are drawn from (where the function is defined)."""
    name: str
    expr: str
    inputs: tuple[str, str]
    box: tuple[tuple[float, float], tuple[float, float]]

    def points(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        return tuple(rng.uniform(lo, hi, n) for lo, hi in self.box)


SEEDS = {s.name: s for s in (
    Seed("griewank", "(sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))", ("x1", "x2"),
         ((0.5, 2.0), (0.5, 2.0))),
    Seed("logsin", "log(x1) + x1*x2 - sin(x2)", ("x1", "x2"), ((0.5, 2.0), (0.5, 2.0))),
    Seed("explog", "exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)", ("x", "z"),
         ((1.5, 3.0), (0.5, 2.0))),
)}


class ReferenceError(RuntimeError):
    """The reference could not be built; str() is one line."""


def _builds() -> dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]:
    """Build name -> flag sets to try in order."""
    return {"scalar": [(c_build.FLAGS, c_build.LIBS)],
            "vectorized": [b for b in c_build.BUILDS if b[0] != c_build.FLAGS]}


def _compiler() -> tuple[str, str]:
    try:
        return c_build.find_compiler()
    except CompileError:
        raise ReferenceError("no C compiler found (looked for cc, gcc, clang on PATH); "
                             "the hand-written reference needs one") from None


def build(name: str, out_dir: Path = DEFAULT_OUT, force: bool = False) -> tuple[Path, tuple[str, ...]]:
    """(library path, flags used) of build `name`, compiling it when missing."""
    compiler, version = _compiler()
    text = SOURCE.read_bytes() + b"\0" + HEADER.read_bytes()
    out_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for flags, libs in _builds()[name]:
        h = hashlib.sha256(text)
        for part in (compiler, version, repr((flags, libs)), c_build.host_cpu()):
            h.update(b"\0" + part.encode())
        lib = out_dir / f"seeds_ref-{name}-{h.hexdigest()[:16]}.so"
        if lib.exists() and not force:
            return lib, flags + libs
        fd, tmp = tempfile.mkstemp(prefix=f".{lib.stem}-", suffix=".so", dir=out_dir)
        os.close(fd)
        cmd = [compiler, *flags, f"-I{HEADER.parent}", "-o", tmp, str(SOURCE), *libs]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            os.replace(tmp, lib)  # atomic: a concurrent build or reader sees a whole file
            return lib, flags + libs
        os.unlink(tmp)
        errors.append(f"{' '.join(cmd)}\n{done.stderr.strip()}")
    raise ReferenceError(f"the {name} build of {SOURCE.name} failed: "
                         + " | ".join(e.splitlines()[-1] for e in errors))


def _cdef() -> str:
    """The header's prototypes (cffi's cdef takes no preprocessor lines)."""
    return "\n".join(re.findall(r"^void .*;$", HEADER.read_text(), flags=re.M))


@dataclass
class Kernels:
    """One seed's kernels in one build: value(a, b, threads=1, out=None) -> y and
    grad(a, b, threads=1, out=None) -> (y, (g_a, g_b)), as compile_grad returns them.
    Inputs are 1-D float64 arrays of one length; `out` is preallocated arrays of
    that length (y for value, (y, (g_a, g_b)) for grad)."""
    ffi: object
    value_fn: object
    grad_fn: object

    def _ptrs(self, *arrays):
        return [self.ffi.from_buffer("double[]", a) for a in arrays]

    def value(self, a, b, threads: int = 1, out=None):
        a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
        y = np.empty(a.shape) if out is None else out
        self.value_fn(a.size, threads, *self._ptrs(a, b, y))
        return y

    def grad(self, a, b, threads: int = 1, out=None):
        a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
        if out is None:
            y, ga, gb = np.empty(a.shape), np.empty(a.shape), np.empty(a.shape)
        else:
            y, (ga, gb) = out
        self.grad_fn(a.size, threads, *self._ptrs(a, b, y, ga, gb))
        return y, (ga, gb)


@dataclass
class Reference:
    """One build: where it is, its flags, whether `threads` has an effect, and
    `seeds[name]` -> Kernels (also `reference[name]`)."""
    name: str
    path: Path
    flags: tuple[str, ...]
    seeds: dict[str, Kernels] = field(default_factory=dict)

    @property
    def threaded(self) -> bool:
        return "-fopenmp" in self.flags

    def __getitem__(self, seed: str) -> Kernels:
        return self.seeds[seed]


def load_reference(out_dir: Path = DEFAULT_OUT, force: bool = False) -> dict[str, Reference]:
    """{"scalar": Reference, "vectorized": Reference}, building what is missing.
    Raises ReferenceError (one line) when there is no compiler or a build fails."""
    import cffi

    refs = {}
    for name in ("scalar", "vectorized"):
        path, flags = build(name, Path(out_dir), force)
        ffi = cffi.FFI()
        ffi.cdef(_cdef())
        lib = ffi.dlopen(str(path))
        ref = Reference(name, path, flags)
        for seed in SEEDS:
            ref.seeds[seed] = Kernels(ffi, getattr(lib, f"{seed}_value"), getattr(lib, f"{seed}_grad"))
        refs[name] = ref
    return refs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the libraries")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args()
    try:
        refs = load_reference(args.out, args.force)
    except ReferenceError as err:
        print(f"build_reference: error: {err}", file=sys.stderr)
        return 2
    compiler, version = c_build.find_compiler()
    print(f"compiler: {compiler} ({version})")
    for ref in refs.values():
        print(f"{ref.name:10s} {ref.path}\n{'':10s} flags: {' '.join(ref.flags)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
