"""The machine a benchmark ran on, so two runs can be compared: CPU, cores, versions
of every competitor (read from package metadata: importing JAX or PyTorch here would
start their thread pools in the main process) and the environment variables that
decide how many threads BLAS, OpenMP, XLA and PyTorch use."""

from __future__ import annotations

import os
import platform
from importlib import metadata

THREAD_ENV = ("OMP_", "GOMP_", "KMP_", "OPENBLAS_", "MKL_", "BLIS_", "VECLIB_", "NUMEXPR_",
              "XLA_", "JAX_", "TORCH_", "EXPRCOMPILER_")
PACKAGES = ("numpy", "sympy", "cffi", "jax", "jaxlib", "torch", "matplotlib")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _compiler() -> str:
    from ..backends import c_build
    from ..errors import CompileError
    try:
        return c_build.find_compiler()[1]
    except CompileError:
        return "none found"


def _blas() -> str:
    import numpy as np
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older NumPy: the description is a courtesy
        return "unknown"


def describe(threads: list[int]) -> dict:
    from ..version import __version__
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpus_total": os.cpu_count(),
        "python": platform.python_version(),
        "exprcompiler": __version__,
        "versions": {p: version(p) for p in PACKAGES},
        "c_compiler": _compiler(),
        "numpy_blas": _blas(),
        "threads": threads,
        "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith(THREAD_ENV)},
    }


def summary(m: dict) -> str:
    v = m["versions"]
    return (f"machine: {m['cpu']}, {m['cpus_available']} of {m['cpus_total']} CPUs available; "
            f"Python {m['python']}, NumPy {v['numpy']}, SymPy {v['sympy']}, cffi {v['cffi']}, "
            f"JAX {v['jax']}, PyTorch {v['torch']}; C compiler: {m['c_compiler']}")
