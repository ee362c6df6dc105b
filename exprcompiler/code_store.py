"""Code objects of our own generated Python, compiled once per machine instead of once per process.

Where it sits: beside the two compile() calls whose text recurs across processes and never
holds user text: parse/plan_code.py (a statement plan's function, one per wiring) and
backends/numpy_templates.py (a statement program's template functions, and its header's
imports: numpy_program._header_code). Each keeps its codes in a dict for the process; on a
miss there it asks its CodeStore here, which reads one file of the cache folder
(cache_root.location_text) the first time it is asked.
What the process compiled itself is added, and written back as it exits (`save`).

Why: a fresh process paid compile() ~150 µs a plan and ~35 µs a template: at 10² to 10³
operations, ~1-3 ms of a 7-23 ms pipeline, the same codes in every process.

Layout: <cache root>/pycode/<kind>-<tag>.marshal, <tag> the interpreter's bytecode magic
number (importlib.util.MAGIC_NUMBER), its cache tag and -O level: another Python reads
another file. The file is HEADER, the magic, a table of the entries' records (a power of
two of slots, at most half full, RECORD bytes each: the key, where the entry starts after
the table, its length, its digest; a key's slot is its first 8 bytes' low bits, or the
next free one), then the entries, each a marshal of (source text, its code); a key is the
digest of the text. Only the table is read whole, with the top in one read (a marshal of
an index dict was 0.6 µs an entry to load in every process, 0.3-0.6 ms at 441 templates):
a program asks for a few dozen of the file's hundreds of codes, each read (a block of the
file at a time; a small file's entries from that first read: one pread fewer at least,
~15 µs cold), checked against its digest and unmarshalled. A damaged record finds
nothing, or an entry whose digest does not match: a miss.
In a fresh process (10³ operations of text: 65 codes, the plans' and templates' files)
the reads cost ~0.75 ms of CPU: per code its key's digest ~1.1 µs, its record ~1.5, its
bytes ~1.8, their digest ~1.4, marshal ~2.1 (cold: 2-3 times what a warm loop takes),
and ~0.2 ms to open the two files, half of it finding the folder (cache_root.location_text).

Writes: what a process compiled is kept (`add`) and saved once, as the process exits
(or when `save` is called): the file is rewritten whole, so a save per new program wrote
~1 MB each time where a process made many.

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

import atexit
import marshal
import os
import stat
import struct
import sys
import threading
from importlib.util import MAGIC_NUMBER
from types import CodeType
from typing import TYPE_CHECKING, Optional

from .cache_root import MARKER, TEMPORARY, location_text
from .errors import ExprcError

if TYPE_CHECKING:   # (pathlib is imported when a store saves, not with the module: cache_root.py)
    from pathlib import Path

try:   # (CPython's own BLAKE2: `import hashlib` loads OpenSSL first, ~2.5 ms of a fresh process)
    from _blake2 import blake2b
except ImportError:   # (another Python)
    from hashlib import blake2b

__all__ = ["CodeStore", "FOLDER", "HEADER", "MAX_CODES", "MAX_BYTES", "RECORD", "BLOCK", "file_tag"]

FOLDER = "pycode"
HEADER = b"exprcompiler code store 5\n"
MAX_CODES = 4096           # codes a file keeps (the benchmarks' programs use a few hundred)
MAX_BYTES = 64 << 20       # a larger file is not ours: not read
_SUM = 16                  # bytes of a BLAKE2b digest: an entry's key, its check
RECORD = _SUM + 8 + 8 + _SUM   # an entry's record: key, start, length, check
_EMPTY = bytes(_SUM)   # an empty slot's key (no digest is, but once in 2¹²⁸)
_RECORD = struct.Struct(f"<{_SUM}sQQ{_SUM}s")   # (one unpack a record: its four slices cost ~0.8 µs more)
# Entries are read a block at a time (CodeStore._entry): one read (a system call) an
# entry cost ~5 µs more an entry than a mapping of the file; at most _BLOCKS kept.
BLOCK = 1 << 14
_BLOCKS = 32
_TOP = len(HEADER) + len(MAGIC_NUMBER) + 8   # header, magic, the number of the records' slots
_FIRST = 1 << 16   # bytes read first: the top and a table of up to 1,024 slots (512 codes) in one read
# (not through a link; never waiting on a planted FIFO: fstat refuses it at once)
_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)


# The cache root's folder of stores (None: no store), taken when a store of the process
# first needs it, for all of them
_ROOT: list = []


def file_tag() -> str:
    """What a file's codes depend on besides their text: the bytecode's magic number
    and the interpreter (cache tag, optimisation level)."""
    return f"{MAGIC_NUMBER.hex()}-{sys.implementation.cache_tag}-O{sys.flags.optimize}"


def _sum(data) -> bytes:
    # (BLAKE2b, CPython's own: its first call in a process costs ~10 µs, OpenSSL's SHA-256 ~45)
    return blake2b(data, digest_size=_SUM).digest()


def _private(st: os.stat_result, kind) -> bool:
    """A `kind` (stat.S_ISREG / S_ISDIR, not followed through a link) of this user's
    that no one else may write."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    return kind(st.st_mode) and (uid is None or st.st_uid == uid) and not st.st_mode & 0o022


class CodeStore:
    """{source text: code} of one kind of generated code, read from and saved to the
    cache folder. `folder`: where the file is (default: <cache root>/pycode, taken when
    a store first needs it and kept for the process)."""

    def __init__(self, kind: str, folder: Optional[Path] = None):
        self.kind = kind
        self.folder = folder
        self.file: Optional[tuple] = None     # (load's: read once)
        self.pending: dict = {}               # compiled here, not saved yet: key -> entry
        self.off = False                      # no usable folder: compile as before
        self._in_root = False                 # the folder is the cache root's (not one given)
        self._lock = threading.Lock()
        self._at_exit = False                 # save registered to run as the process exits
        self._blocks: dict = {}               # block number -> the file's bytes there (_entry)

    def path(self) -> Optional[Path]:
        from pathlib import Path
        name = self._name()
        return None if name is None else Path(name)

    def _name(self) -> Optional[str]:
        """The file's name, a str (in a fresh process a pathlib join, or an os call given
        a Path, cost 4-15 µs: the reads use the str)."""
        if self.folder is None:
            if not _ROOT:   # (its first call, and a first Path, cost 20-40 µs in a fresh process)
                root, why = location_text()
                # (no home: a shared folder, which c_cache checks before each use: no store)
                _ROOT.append(None if why == TEMPORARY else os.path.join(root, FOLDER))
            if _ROOT[0] is None:
                self.off = True
                return None
            self.folder, self._in_root = _ROOT[0], True
        return os.path.join(self.folder, f"{self.kind}-{file_tag()}.marshal")

    def _loaded(self) -> tuple:
        if self.file is None:
            name = None if self.off else self._name()
            # (a larger file than its first read is kept open for the store's reads: closed
            # with the store (__del__), or at exit)
            self.file = _NONE if name is None else load(name)
        return self.file

    def __del__(self, _close=os.close) -> None:
        # (not weakref.finalize: ~15 µs of a fresh process's first store, for a store that
        # lives as long as the process; _close bound here: os may be gone at exit)
        file = getattr(self, "file", None)   # (None: __init__ did not get that far)
        fd = file[2] if file is not None else None
        if fd is not None:
            try:
                _close(fd)
            except OSError:
                pass

    def get(self, text: str) -> Optional[CodeType]:
        """The code of `text` from the file (None if it has none, or a damaged one)."""
        records, slots, fd, size, top = self._loaded()
        place = _find(records, slots, _sum(text.encode()))
        if place is None:
            return None
        start, length, check = place
        start += _TOP + slots * RECORD
        if start + length > size:
            return None
        if start + length <= len(top):   # (in the bytes load read first: a small file's, all of it)
            return _code_of(top[start:start + length], check, text)
        try:
            raw = self._entry(fd, start, length)
        except (OSError, ValueError):
            return None
        return _code_of(raw, check, text)

    def _entry(self, fd: int, start: int, length: int) -> bytes:
        """The file's bytes [start, start + length), read a BLOCK at a time and kept (a
        program's entries are next to one another, saved together: its few dozen take a
        few blocks, one read each; up to _BLOCKS kept)."""
        first, at = divmod(start, BLOCK)
        data = self._blocks.get(first)
        if data is not None and at + length <= BLOCK:   # (most entries: in a block read for another)
            return data[at:at + length]
        if length >= BLOCK:
            return _read_at(fd, length, start)
        blocks, parts = self._blocks, []
        for b in range(first, (start + length - 1) // BLOCK + 1):
            data = blocks.get(b)
            if data is None:
                if len(blocks) >= _BLOCKS:
                    blocks.clear()
                data = blocks[b] = _read_at(fd, BLOCK, b * BLOCK)
            parts.append(data)
        return (parts[0] if len(parts) == 1 else b"".join(parts))[at:at + length]

    def add(self, text: str, code: CodeType) -> None:
        """Keep `code`, compiled from `text` by this process, for `save` (as the process
        exits: one write a process, whatever the number of programs it makes)."""
        if len(self.pending) < MAX_CODES:
            self.pending[_sum(text.encode())] = marshal.dumps((text, code))
            if not self._at_exit:
                self._at_exit = True
                atexit.register(self.save)

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


def _code_of(raw: bytes, check: bytes, text: str) -> Optional[CodeType]:
    """The code in the entry `raw` if its digest is `check` (marshal's loads is never
    given bytes a digest has not vouched for: damaged marshal data may crash it) and
    it holds the code of `text` (a hostile entry with a good digest is another text's)."""
    if _sum(raw) != check:
        return None
    try:
        value = marshal.loads(raw)
    except (ValueError, EOFError, TypeError):
        return None
    ok = type(value) is tuple and len(value) == 2 and value[0] == text and type(value[1]) is CodeType
    return value[1] if ok else None


def _find(records: bytes, slots: int, key: bytes) -> Optional[tuple]:
    """(start, length, check) of the record of `key` in the file's table of `slots`
    records (`records`: open addressing, a key's first slot its first 8 bytes' low bits,
    then the next ones up to an empty one); None if there is none."""
    mask, unpack = slots - 1, _RECORD.unpack_from
    slot = int.from_bytes(key[:8], "little") & mask
    for _ in range(slots):
        found, start, length, check = unpack(records, slot * RECORD)
        if found == key:
            return start, length, check
        if found == _EMPTY:
            return None
        slot = (slot + 1) & mask
    return None


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


_NONE = (b"", 0, None, 0, b"")


def load(path) -> tuple:
    """(the file's table of records, its number of slots, the file's descriptor, open,
    its size, the bytes read first: up to _FIRST, a small file's all, whose entries get
    takes from them) of the file at `path`, or nothing if there is none, or it may not be
    loaded (see the module's docstring), or its table does not fit in it. A file that the
    first read holds whole is closed at once (descriptor None): nothing more is read from
    it. An entry is read, and checked, only when asked for (get): the file holds every
    program's codes, a program needs a few dozen. (Not mapped: a file written in one
    piece sits in the page cache in large folios, and a page fault in a mapping of it
    took up to 1 MB of RSS at once: ~1 KB an operation at 10³. Read whole, the
    templates' file of ~1 MB was as much.)"""
    try:
        if not _private(os.lstat(os.path.dirname(path)), stat.S_ISDIR):
            return _NONE
        fd = os.open(path, _OPEN)
    except OSError:
        return _NONE
    try:
        st = os.fstat(fd)   # (the file opened, not a name someone may swap meanwhile)
        if _private(st, stat.S_ISREG) and _TOP <= st.st_size <= MAX_BYTES:
            # (the file is replaced, never rewritten in place (write): what this descriptor
            # reads stays the file it opened)
            first = _read_at(fd, min(st.st_size, _FIRST), 0)
            slots = int.from_bytes(first[_TOP - 8:_TOP], "little")
            end = _TOP + slots * RECORD
            if first[:len(HEADER)] == HEADER and first[len(HEADER):_TOP - 8] == MAGIC_NUMBER \
                    and slots <= 4 * MAX_CODES and not slots & (slots - 1) and end <= st.st_size:
                records = first[_TOP:end] if end <= len(first) else \
                    first[_TOP:] + _read_at(fd, end - len(first), len(first))
                if len(records) == slots * RECORD:
                    if len(first) >= st.st_size:   # (all of it read: the descriptor buys nothing)
                        os.close(fd)
                        fd = None
                    return records, slots, fd, st.st_size, first
    except (OSError, ValueError):
        pass
    os.close(fd)
    return _NONE


_SEEK = threading.Lock()


def _read_at(fd: int, length: int, start: int) -> bytes:
    """`length` bytes of the open file `fd` from `start` (fewer at its end)."""
    if hasattr(os, "pread"):
        return os.pread(fd, length, start)
    with _SEEK:   # (no pread: Windows)
        os.lseek(fd, start, os.SEEK_SET)
        return os.read(fd, length)


def read(path: Path) -> dict:
    """The entries of the file at `path` (load's): key -> (its bytes, their check)."""
    records, slots, fd, size, first = load(path)
    if not slots:
        return {}
    body = _TOP + slots * RECORD
    places = []
    for key, start, length, check in _RECORD.iter_unpack(records):
        if key != _EMPTY and body + start + length <= size:
            places.append((body + start, length, key, check))
    places.sort()   # (in the entries' order: see write)
    if fd is None:   # (read whole by load)
        return {key: (first[start:start + length], check) for start, length, key, check in places}
    try:
        return {key: (_read_at(fd, length, start), check) for start, length, key, check in places}
    finally:
        os.close(fd)


def write(path: Path, entries: dict) -> None:
    """Replace the file at `path` by one of `entries` (key -> an entry's bytes, or those
    and their check), in one rename (see the docstring)."""
    slots = 8
    while slots < 2 * len(entries):   # (at most half full: a search ends at an empty slot soon)
        slots *= 2
    table, parts, at = bytearray(slots * RECORD), [], 0
    # (the entries in the order given, the file's then the new ones: a program's are
    # together, so that it reads few blocks of them; only the records are hashed)
    for key, entry in entries.items():
        raw, check = (entry, _sum(entry)) if type(entry) is bytes else (bytes(entry[0]), entry[1])
        if type(key) is not bytes or len(key) != _SUM or key == _EMPTY or type(check) is not bytes \
                or len(check) != _SUM:
            continue
        slot = int.from_bytes(key[:8], "little") & (slots - 1)
        while table[slot * RECORD:slot * RECORD + _SUM] != _EMPTY:
            slot = (slot + 1) & (slots - 1)
        table[slot * RECORD:(slot + 1) * RECORD] = b"".join(
            (key, at.to_bytes(8, "little"), len(raw).to_bytes(8, "little"), check))
        parts.append(raw)
        at += len(raw)
    blob = b"".join((HEADER, MAGIC_NUMBER, slots.to_bytes(8, "little"), table, *parts))
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
