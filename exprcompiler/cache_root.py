"""Where exprcompiler's caches live: the compiled C kernels (backends/c_cache.py, which
owns the folder: its marker, its checks, `exprc cache clear`) and the code objects of our
generated Python (code_store.py).

Apart from c_cache so that finding the folder costs no import: c_cache's imports
(shutil, tempfile: bz2, lzma, random) cost ~5 ms of CPU, which the code store, asked in
every process's first parse, would pay for nothing. For the same reason the store takes
the folder as a str (location_text): pathlib, imported only by `location`, costs ~3.5 ms
of `import exprcompiler` where nothing else loaded it (urllib.parse, ipaddress, fnmatch),
and a fresh process's first Path ~30 µs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MARKER", "TEMPORARY", "location", "location_text"]

MARKER = ".exprcompiler-cache"   # (c_cache.py: exprcompiler made, or adopted, the folder)
TEMPORARY = "a private temporary folder: HOME is not set"


def _uid() -> Optional[int]:
    return os.getuid() if hasattr(os, "getuid") else None


def location() -> tuple[Path, str]:
    """(cache root, why this one): the environment variable, XDG, the home folder, or a
    private temporary folder when there is no home (never a relative "~")."""
    from pathlib import Path   # (only here: see the module's docstring)
    root, why = location_text()
    return Path(root), why


def location_text() -> tuple[str, str]:
    """location()'s, the folder as a str."""
    root = os.environ.get("EXPRCOMPILER_CACHE")
    if root:
        return root, "from EXPRCOMPILER_CACHE"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is to be ignored
        return os.path.join(xdg, "exprcompiler"), "from XDG_CACHE_HOME"
    home = os.environ.get("HOME")
    if home and os.path.isabs(home):
        return os.path.join(home, ".cache", "exprcompiler"), "in the home folder, from HOME"
    import tempfile   # (only here: see the module's docstring)
    user = _uid() if _uid() is not None else os.environ.get("USER", "user")
    return os.path.join(tempfile.gettempdir(), f"exprcompiler-{user}"), TEMPORARY
