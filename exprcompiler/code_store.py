"""Code objects of our own generated Python, compiled once per machine instead of once per process.

Where it sits: beside the two compile() calls whose text recurs across processes and never
holds user text: parse/plan_code.py (a statement plan's function, one per wiring) and
backends/numpy_templates.py (a statement program's template functions). Each keeps its
codes in a dict for the process; on a miss there it asks its CodeStore here, which reads
one file of the cache folder (cache_root.location) the first time it is asked.
What the process compiled itself is added and written back (`save`).

Why: a fresh process paid compile() ~150 µs a plan and ~35 µs a template: at 10² to 10³
operations, ~1-3 ms of a 7-23 ms pipeline, the same codes in every process.

Layout: <cache root>/pycode/<kind>-<tag>.marshal, <tag> the interpreter's bytecode magic
number (importlib.util.MAGIC_NUMBER), its cache tag and -O level: another Python reads
another file. The file is HEADER, the magic, its index's digest and length, the index
(a marshal of {key: (place, length, digest) of an entry}), then the entries, each a
marshal of (source text, its code); a key is the digest of the text. Only the index is
read whole (a program asks for a few dozen of the file's hundreds of codes): an entry is
checked against its digest and unmarshalled when asked for, and a hit is an entry whose
text is the one asked for.

Safety: marshal data is code that will run, so a file is loaded only if it is a regular
file of this user's that nobody else may write, in a folder of the same kind (a planted
or swapped file is refused, not loaded), and its magic and digests match (a truncated or
corrupt file or entry is a miss). Anything refused or unreadable is a miss: the codes are compiled
as before and the file rewritten. Writes go to a new file in the folder and replace the
old one in one rename, so a reader sees a whole file or the previous one; two processes
saving at once each write a whole file (the last rename wins; the loser's new codes are
compiled again by a later process).
"""

from __future__ import annotations

import hashlib
import marshal
import mmap
import os
import stat
import sys
import threading
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from types import CodeType
from typing import Optional

from .cache_root import MARKER, TEMPORARY, location
from .errors import ExprcError

__all__ = ["CodeStore", "FOLDER", "HEADER", "MAX_CODES", "MAX_BYTES", "file_tag"]

FOLDER = "pycode"
HEADER = b"exprcompiler code store 3\n"
MAX_CODES = 4096           # codes a file keeps (the benchmarks' programs use a few hundred)
MAX_BYTES = 64 << 20       # a larger file is not ours: not read
_SUM = 16                  # bytes of a BLAKE2b digest: an entry's key, its check, the index's
_TOP = len(HEADER) + len(MAGIC_NUMBER) + _SUM + 8   # header, magic, the index's digest, its length


def file_tag() -> str:
    """What a file's codes depend on besides their text: the bytecode's magic number
    and the interpreter (cache tag, optimisation level)."""
    return f"{MAGIC_NUMBER.hex()}-{sys.implementation.cache_tag}-O{sys.flags.optimize}"


def _sum(data) -> bytes:
    # (BLAKE2b, CPython's own: its first call in a process costs ~10 µs, OpenSSL's SHA-256 ~45)
    return hashlib.blake2b(data, digest_size=_SUM).digest()


def _private(st: os.stat_result, kind) -> bool:
    """A `kind` (stat.S_ISREG / S_ISDIR, not followed through a link) of this user's
    that no one else may write."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    return kind(st.st_mode) and (uid is None or st.st_uid == uid) and not st.st_mode & 0o022


class CodeStore:
    """{source text: code} of one kind of generated code, read from and saved to the
    cache folder. `folder`: where the file is (default: <cache root>/pycode, taken when
    first needed and kept for the process)."""

    def __init__(self, kind: str, folder: Optional[Path] = None):
        self.kind = kind
        self.folder = folder
        self.file: Optional[tuple] = None     # (load's: read once)
        self.pending: dict = {}               # compiled here, not saved yet: key -> entry
        self.off = False                      # no usable folder: compile as before
        self._in_root = False                 # the folder is the cache root's (not one given)
        self._lock = threading.Lock()

    def path(self) -> Optional[Path]:
        if self.folder is None:
            root, why = location()
            if why == TEMPORARY:   # (no home: a shared folder, which c_cache checks before each use: no store)
                self.off = True
                return None
            self.folder, self._in_root = root / FOLDER, True
        return self.folder / f"{self.kind}-{file_tag()}.marshal"

    def get(self, text: str) -> Optional[CodeType]:
        """The code of `text` from the file (None if it has none, or a damaged one)."""
        if self.file is None:
            path = None if self.off else self.path()
            self.file = _NONE if path is None else load(path)
        places, view, body = self.file
        place = places.get(_sum(text.encode()))
        if type(place) is not tuple or len(place) != 3 or type(place[0]) is not int or type(place[1]) is not int:
            return None
        start, length, check = place
        return _code_of((view[body + start:body + start + length], check), text)

    def add(self, text: str, code: CodeType) -> None:
        """Keep `code`, compiled from `text` by this process, for `save`."""
        if len(self.pending) < MAX_CODES:
            self.pending[_sum(text.encode())] = marshal.dumps((text, code))

    def save(self) -> None:
        """Write the codes added since the last save, with the file's (another process's
        may have come meanwhile). Failing to write only costs the next process a compile."""
        if not self.pending or self.off:
            return
        with self._lock:
            pending, self.pending = self.pending, {}
            path = self.path()
            if path is None:
                return
            try:
                _folder(path.parent, self._in_root)
                entries = read(path)
                entries = {key: entry for key, entry in entries.items() if _whole(entry)}
                entries.update(pending)
                if len(entries) > MAX_CODES:   # (the new ones kept, then the file's first)
                    entries = {**dict(list(entries.items())[:MAX_CODES - len(pending)]), **pending}
                write(path, entries)
            except (ExprcError, OSError, ValueError):
                self.off = True   # (read-only, full, or not ours: not tried again in this process)


def _whole(entry) -> bool:
    return type(entry[1]) is bytes and _sum(entry[0]) == entry[1]


def _code_of(entry: tuple, text: str) -> Optional[CodeType]:
    raw, check = entry
    if type(check) is not bytes or _sum(raw) != check:
        return None
    try:
        value = marshal.loads(raw)
    except (ValueError, EOFError, TypeError):
        return None
    ok = type(value) is tuple and len(value) == 2 and value[0] == text and type(value[1]) is CodeType
    return value[1] if ok else None


def _folder(folder: Path, in_root: bool) -> None:
    """Make the store's folder (mode 0700), `in_root`: in the cache root, which c_cache
    makes and marks as the cache's the first time; refuse one that is not private."""
    if in_root and not (folder.parent / MARKER).is_file():
        from .backends import c_cache   # (once a machine: see cache_root's docstring)
        c_cache.root_for(write=True)
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    if not _private(os.lstat(folder), stat.S_ISDIR):
        raise OSError(f"{folder} is not a private folder")


_NONE = ({}, memoryview(b""), 0)


def load(path: Path) -> tuple:
    """(key -> (an entry's place after the index, its length, its check), the file's
    bytes, where the entries start) of the file at `path`, or nothing if there is none,
    or it may not be loaded (see the module's docstring), or its index is not whole. An
    entry is checked, and unmarshalled, only when asked for (get): the file holds every
    program's codes, a program needs a few dozen."""
    try:
        if not _private(os.lstat(path.parent), stat.S_ISDIR):
            return _NONE
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return _NONE
    try:
        st = os.fstat(fd)   # (the file opened, not a name someone may swap meanwhile)
        if not _private(st, stat.S_ISREG) or not 0 < st.st_size <= MAX_BYTES:
            return _NONE
        # mapped, not read: a program touches the index and its few dozen entries' pages
        # (read whole, the templates' file of ~1 MB was ~1 KB an operation at 10³); files
        # are replaced, never rewritten in place (write), so the mapping stays whole
        blob = mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return _NONE
    finally:
        os.close(fd)
    if blob[:len(HEADER)] != HEADER or blob[len(HEADER):len(HEADER) + len(MAGIC_NUMBER)] != MAGIC_NUMBER:
        return _NONE
    index_sum, size = blob[_TOP - _SUM - 8:_TOP - 8], int.from_bytes(blob[_TOP - 8:_TOP], "little")
    view = memoryview(blob)
    index = view[_TOP:_TOP + size]
    if len(index) != size or _sum(index) != index_sum:
        return _NONE
    try:
        places = marshal.loads(index)
    except (ValueError, EOFError, TypeError):
        return _NONE
    return (places, view, _TOP + size) if type(places) is dict else _NONE


def read(path: Path) -> dict:
    """The entries of the file at `path` (load's): key -> (its bytes, their check)."""
    places, view, body = load(path)
    entries = {}
    for key, place in places.items():
        if type(key) is bytes and type(place) is tuple and len(place) == 3 \
                and all(type(v) is int and v >= 0 for v in place[:2]):
            entries[key] = (view[body + place[0]:body + place[0] + place[1]], place[2])
    return entries


def write(path: Path, entries: dict) -> None:
    """Replace the file at `path` by one of `entries` (key -> an entry's bytes, or those
    and their check), in one rename (see the docstring)."""
    places, parts, at = {}, [], 0
    for key, entry in entries.items():
        raw, check = (entry, _sum(entry)) if type(entry) is bytes else (bytes(entry[0]), entry[1])
        places[key] = (at, len(raw), check)
        parts.append(raw)
        at += len(raw)
    index = marshal.dumps(places)
    blob = b"".join((HEADER, MAGIC_NUMBER, _sum(index), len(index).to_bytes(8, "little"),
                     index, *parts))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
