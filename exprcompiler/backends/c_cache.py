"""C backend, cache half: where compiled kernels live on disk, when a cached one may be
loaded, and which files `exprc cache clear` may remove. c_build compiles and loads;
this module owns the folder.

Layout under the cache root:

    .exprcompiler-cache                 marker: exprcompiler made (or adopted) this folder
    ab/<key>.so                         a kernel; <key> hashes all that shapes the binary
    ab/<key>.o                          the split kernels' driver (c_driver), per flag set
    ab/<key>.sha256                     its record: the key and the library's SHA-256
    ab/<key>.failed.c                   the source of a build the compiler refused
    ab/.build-<key[:8]>-XXXXXXXX/       a build in progress, or left by a crash
    pycode/<kind>-<tag>.marshal         code objects of our generated Python (code_store.py)
    reference/seeds_ref-*.so, .sha256   the benchmarks' hand-written reference

The record binds the library's digest to its key, so a truncated, corrupt or swapped
entry (another kernel's files copied over it) is never loaded. It is not a signature:
whoever can write the folder can write a matching record too. The folder being the
user's own is what protects against that, which is why the fallback under the shared
temporary folder is checked for its owner and mode before every use.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import time
from pathlib import Path
from typing import Optional

from ..cache_root import MARKER, TEMPORARY, _uid, location   # noqa: F401  (cli.py, c_build.py, tests read them here)
from ..errors import CompileError

MARKER_TEXT = """\
This folder is exprcompiler's cache of compiled C kernels (see `exprc cache info`).
`exprc cache clear` removes only the files exprcompiler made here and refuses a
folder without this marker. Everything here can be deleted; it is rebuilt on demand.
"""
RECORD_HEADER = "exprcompiler kernel record 1"
# A temporary build folder younger than this may belong to a build in progress
# (each of up to three compiler runs may take 600 s): clear leaves it alone.
STALE_BUILD = 3600.0

_SHARD = re.compile(r"[0-9a-f]{2}")
_KERNEL_FILE = re.compile(r"([0-9a-f]{64})\.(so|o|sha256|failed\.c)")
_REFERENCE_FILE = re.compile(r"seeds_ref-[a-z]+-[0-9a-f]{16}\.(so|sha256)")
_BUILD_DIR = re.compile(r"\.build-[0-9a-f]{8}-[a-z0-9_]+")
# code_store.py's files (code objects of our generated Python) and its writes in progress
_CODE_FILE = re.compile(r"\.?[a-z]+-[0-9a-f]+-[a-z0-9_.-]+-O[0-9]\.marshal(?:\.[0-9]+\.[0-9a-f]{8})?")


class ExprcompilerCacheWarning(UserWarning):
    """A cached kernel was not loaded (corrupt, swapped, unreadable) and is rebuilt."""


def check_private(root: Path, create: bool) -> None:
    """The temporary fallback sits in a folder everyone can write: use it only if it is
    a real folder of this user's that nobody else can write (else someone could plant
    a kernel there, or point it elsewhere with a symbolic link)."""
    if create:
        try:
            os.mkdir(root, 0o700)
        except FileExistsError:
            pass
        except OSError as err:
            raise CompileError(f"cannot create the cache folder {root}: {err.strerror} "
                               f"(set EXPRCOMPILER_CACHE to a folder of your own)") from None
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return
    except OSError as err:
        raise CompileError(f"cannot use the cache folder {root}: {err.strerror}") from None
    problem = ("is not a folder (a symbolic link or a file)" if not stat.S_ISDIR(st.st_mode)
               else f"belongs to another user (uid {st.st_uid})"
               if _uid() is not None and st.st_uid != _uid()
               else "can be written by other users" if st.st_mode & 0o022 else None)
    if problem:
        raise CompileError(f"refusing the cache folder {root}: it {problem}; set "
                           f"EXPRCOMPILER_CACHE (or HOME) to a folder of your own")


def not_private(path: Path, kind) -> Optional[str]:
    """Why `path` (not followed through a link) may not be loaded from, or None if it
    is a `kind` (stat.S_ISREG / S_ISDIR) of this user's that no one else may write. The
    record vouches only for bytes its writer chose: a library, record or shard folder
    that another user wrote, or may write, would let them run code in this process
    (the code store refuses its files on the same terms)."""
    st = os.lstat(path)
    what = "folder" if kind is stat.S_ISDIR else "file"
    if not kind(st.st_mode):
        return f"the {what} {path.name} is not a {'regular ' * (what == 'file')}{what} (a symbolic link?)"
    if _uid() is not None and st.st_uid != _uid():
        return f"the {what} {path.name} belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"the {what} {path.name} can be written by other users"
    return None


def root_for(write: bool) -> Path:
    """The cache root, checked when it is the temporary fallback; `write`: create it
    (mode 0700) and mark it as the cache's, unless it holds files that are not."""
    root, why = location()
    if why == TEMPORARY:
        check_private(root, create=write)
    if write and not (root / MARKER).is_file():
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise CompileError(f"cannot create the compile cache {root}: {err.strerror} "
                               f"(set EXPRCOMPILER_CACHE to a writable folder)") from None
        _, others = own_files(root)
        if not others:  # new, empty, or a cache from before the marker: claim it
            try:
                with open(root / MARKER, "x", encoding="utf-8") as fh:
                    fh.write(MARKER_TEXT)
            except FileExistsError:
                pass
            except OSError as err:
                raise CompileError(f"cannot write the compile cache {root}: {err.strerror} "
                                   f"(set EXPRCOMPILER_CACHE to a writable folder)") from None
    return root


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_text(key: str, lib_digest: str) -> str:
    return f"{RECORD_HEADER}\nkey {key}\nsha256 {lib_digest}\n"


def entry_problem(lib: Path, record: Path, key: str) -> Optional[str]:
    """Why the cached library for `key` may not be loaded: None if it may; "" if there
    is no complete entry (none yet, a crash or another process between its two renames,
    a record from an older exprcompiler), which is an ordinary miss; otherwise the reason
    to warn about."""
    try:
        unsafe = not_private(record.parent, stat.S_ISDIR) or not_private(record, stat.S_ISREG)
    except FileNotFoundError:
        return ""
    except OSError as err:
        return f"its record {record.name} cannot be read ({err.strerror})"
    if unsafe:
        return unsafe
    try:
        with open(record, "rb") as fh:
            raw = fh.read(4096)  # a record is ~170 bytes; a huge one is not ours
    except FileNotFoundError:
        return ""
    except OSError as err:
        return f"its record {record.name} cannot be read ({err.strerror})"
    try:
        lines = raw.decode("ascii").splitlines()
    except UnicodeDecodeError:
        return f"its record {record.name} is not text"
    if len(lines) == 1 and re.fullmatch(r"[0-9a-f]{64}", lines[0].strip()):
        return ""  # the bare digest older versions wrote: rebuilt with a keyed record
    fields = dict(ln.split(" ", 1) for ln in lines[1:] if " " in ln)
    if not lines or lines[0] != RECORD_HEADER or "key" not in fields or "sha256" not in fields:
        return f"its record {record.name} is not a record of this cache"
    if fields["key"] != key:
        return f"its record belongs to another kernel (key {fields['key'][:16]}...)"
    try:
        unsafe = not_private(lib, stat.S_ISREG)
        actual = None if unsafe else digest(lib)
    except FileNotFoundError:
        return ""
    except OSError as err:
        return f"the library cannot be read ({err.strerror})"
    if unsafe:
        return unsafe
    if actual != fields["sha256"]:
        return "its SHA-256 does not match the one recorded when it was built (corrupt or replaced)"
    return None


def _scan(folder: str):
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as err:
        raise CompileError(f"cannot read the cache folder {folder}: {err.strerror}") from None


def own_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(the cache's own files and temporary build folders, everything else) under `root`,
    told apart by name and never following a symbolic link."""
    own, others = [], []
    if not root.is_dir():
        return own, others
    for entry in _scan(str(root)):
        if entry.name == MARKER:
            continue
        shard, code = bool(_SHARD.fullmatch(entry.name)), entry.name == "pycode"
        if not (entry.is_dir(follow_symlinks=False) and (shard or code or entry.name == "reference")):
            others.append(Path(entry.path))
            continue
        for inner in _scan(entry.path):
            is_dir = inner.is_dir(follow_symlinks=False)
            if is_dir and _BUILD_DIR.fullmatch(inner.name):
                own.append(Path(inner.path))
            elif not is_dir and shard and _KERNEL_FILE.fullmatch(inner.name) and inner.name[:2] == entry.name:
                own.append(Path(inner.path))
            elif not is_dir and code and _CODE_FILE.fullmatch(inner.name):
                own.append(Path(inner.path))
            elif not is_dir and not shard and not code and _REFERENCE_FILE.fullmatch(inner.name):
                own.append(Path(inner.path))
            else:
                others.append(Path(inner.path))
    return own, others


def clear() -> tuple[Path, int]:
    """Remove the cache's own files: (root, how many). A folder without the marker is
    refused unless everything in it is named as the cache names its files."""
    root = root_for(write=False)
    if not root.exists():
        return root, 0
    if not root.is_dir():
        raise CompileError(f"refusing to clear {root}: it is not a folder")
    own, others = own_files(root)
    if others and not (root / MARKER).is_file():
        raise CompileError(f"refusing to clear {root}: exprcompiler did not create it (no {MARKER} "
                           f"marker, and it holds other files, e.g. {others[0].name}); remove "
                           f"old kernels by hand")
    removed, now = 0, time.time()
    for path in own:
        try:
            if path.is_dir() and not path.is_symlink():
                if now - path.lstat().st_mtime >= STALE_BUILD:
                    shutil.rmtree(path, ignore_errors=True)
                    removed += 1
            else:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # another clear, or a rebuild, got there first
        except OSError as err:
            raise CompileError(f"cannot remove {path}: {err.strerror}") from None
    for folder in {p.parent for p in own}:
        try:
            folder.rmdir()  # only if now empty
        except OSError:
            pass
    return root, removed
