"""The code store (exprcompiler/code_store.py): plan and template codes kept on disk.

A file is loaded only if it is whole, of this Python, and nobody but its owner could
have written it; anything else is a miss that the next save rewrites. The codes a hit
gives are those compile() gives, so parses and functions are the same with and
without the store.
"""

from __future__ import annotations

import marshal
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from exprcompiler import code_store
from exprcompiler.code_store import HEADER, CodeStore, read, write

TEXTS = [f"def f(a, b):\n    return a * {k} + b\n" for k in range(5)]


def _code(text: str, filename: str = "<test>"):
    # (dont_inherit: not this module's `from __future__ import annotations`, a flag of the code)
    module = compile(text, filename, "exec", dont_inherit=True)
    return next(c for c in module.co_consts if type(c) is type(module))


def _filled(folder) -> CodeStore:
    store = CodeStore("demo", folder)
    for text in TEXTS:
        if store.get(text) is None:
            store.add(text, _code(text))
    store.save()
    return store


def test_round_trip_gives_the_compiled_codes(tmp_path):
    folder = tmp_path / "pycode"
    _filled(folder)
    path = CodeStore("demo", folder).path()
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(read(path)) == len(TEXTS)
    assert _hits(folder) == [_code(text) for text in TEXTS]
    assert CodeStore("demo", folder).get("def g(): pass\n") is None


def _hits(folder, kind="demo") -> list:
    """What a new process's store gives for each of TEXTS."""
    store = CodeStore(kind, folder)
    return [store.get(text) for text in TEXTS]


def _damaged(path, how: str) -> None:
    blob = path.read_bytes()
    if how == "truncated":
        path.write_bytes(blob[:len(blob) // 2])
    elif how == "flipped":
        path.write_bytes(blob[:-5] + bytes([blob[-5] ^ 0x20]) + blob[-4:])
    elif how == "header":
        path.write_bytes(b"X" + blob[1:])
    elif how == "magic":
        start = len(HEADER)
        path.write_bytes(blob[:start] + bytes([blob[start] ^ 1]) + blob[start + 1:])
    elif how == "empty":
        path.write_bytes(b"")
    elif how in ("slots", "more slots"):   # not a power of two; more than the file holds
        at = code_store._TOP - 8
        slots = 12 if how == "slots" else 1 << 20
        path.write_bytes(blob[:at] + slots.to_bytes(8, "little") + blob[code_store._TOP:])
    elif how in ("key", "start", "length", "check"):   # a byte of a record (the first's, the last's)
        slots = int.from_bytes(blob[code_store._TOP - 8:code_store._TOP], "little")
        used = [code_store._TOP + k * code_store.RECORD for k in range(slots)
                if any(blob[code_store._TOP + k * code_store.RECORD:code_store._TOP + k * code_store.RECORD + 16])]
        assert len(used) == len(TEXTS)
        for record in (used[0], used[-1]):
            at = record + {"key": 3, "start": 16, "length": 24, "check": 33}[how]
            blob = blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1:]
        path.write_bytes(blob)


@pytest.mark.parametrize("how", ["truncated", "flipped", "header", "magic", "empty", "slots", "more slots",
                                 "key", "start", "length", "check"])
def test_a_damaged_file_is_a_miss_and_is_rebuilt(tmp_path, how):
    folder = tmp_path / "pycode"
    path = _filled(folder).path()
    _damaged(path, how)
    hits = _hits(folder)
    if how in ("truncated", "flipped", "key", "start", "length", "check"):   # (the damaged entries are misses)
        assert None in hits and all(h is None or h == _code(t) for h, t in zip(hits, TEXTS))
        if how != "truncated":
            assert sum(h is None for h in hits) == (1 if how == "flipped" else 2)
    else:
        assert read(path) == {} and hits == [None] * len(TEXTS)
    _filled(folder)   # the misses compiled and saved again
    assert _hits(folder) == [_code(text) for text in TEXTS]


def test_an_entry_whose_checks_pass_but_holds_no_code_of_its_text_is_refused(tmp_path):
    folder = tmp_path / "pycode"
    path = _filled(folder).path()
    key = code_store._sum(TEXTS[0].encode())
    for wrong in [(TEXTS[0], "not a code"), (TEXTS[1], _code(TEXTS[1])), _code(TEXTS[0]), "text"]:
        write(path, {key: marshal.dumps(wrong)})
        assert _hits(folder)[0] is None


@pytest.mark.parametrize("mode", [0o622, 0o602, 0o666])
def test_a_file_others_may_write_is_not_loaded(tmp_path, mode):
    folder = tmp_path / "pycode"
    path = _filled(folder).path()
    os.chmod(path, mode)
    assert read(path) == {} and _hits(folder) == [None] * len(TEXTS)
    _filled(folder)   # replaced by a private file again
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and _hits(folder) == [_code(t) for t in TEXTS]


def test_a_folder_others_may_write_is_not_read_nor_written(tmp_path):
    folder = tmp_path / "pycode"
    path = _filled(folder).path()
    os.chmod(folder, 0o777)
    assert read(path) == {}
    store = CodeStore("demo", folder)
    store.add("def h(): pass\n", _code("def h(): pass\n"))
    store.save()   # refused quietly: not written into a folder others share
    assert store.off
    os.chmod(folder, 0o700)
    assert len(read(path)) == len(TEXTS)


def test_a_file_of_another_user_is_not_loaded(tmp_path, monkeypatch):
    folder = tmp_path / "pycode"
    path = _filled(folder).path()
    if os.getuid() == 0:   # (as root the file can be given away for real)
        os.chown(path, 4242, -1)
        assert read(path) == {} and _hits(folder) == [None] * len(TEXTS)
        os.chown(path, 0, -1)
    assert _hits(folder)[0] is not None
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)   # the folder and file are now someone else's
    assert read(path) == {} and _hits(folder) == [None] * len(TEXTS)


def test_a_symbolic_link_is_not_followed(tmp_path):
    folder = tmp_path / "pycode"
    path = _filled(folder).path()
    elsewhere = tmp_path / "elsewhere.marshal"
    os.replace(path, elsewhere)
    os.symlink(elsewhere, path)
    assert read(path) == {}


def test_another_python_magic_is_a_miss(tmp_path, monkeypatch):
    folder = tmp_path / "pycode"
    ours = _filled(folder).path()
    monkeypatch.setattr(code_store, "MAGIC_NUMBER", b"\x00\x01\r\n")   # another Python's
    other = CodeStore("demo", folder)
    assert other.path() != ours and other.get(TEXTS[0]) is None
    # a file under that Python's name whose header carries our magic: refused too
    other.path().write_bytes(ours.read_bytes())
    os.chmod(other.path(), 0o600)
    assert read(other.path()) == {} and len(read(ours)) == 0   # (ours is another Python's now)


def test_an_unusable_folder_only_costs_compiles(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = CodeStore("demo", blocker / "pycode")
    assert store.get(TEXTS[0]) is None
    store.add(TEXTS[0], _code(TEXTS[0]))
    store.save()   # no exception
    assert store.off and store.get(TEXTS[0]) is None


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from exprcompiler.code_store import CodeStore, read
    folder, me = Path(sys.argv[1]), int(sys.argv[2])
    for round in range(40):
        store = CodeStore("race", folder)
        text = f"def f{me}_{round}(a):\\n    return a + {me * 1000 + round}\\n"
        store.get(text)
        store.add(text, compile(text, "<test>", "exec", dont_inherit=True).co_consts[0])
        store.save()
        assert read(store.path()), "a saved file did not read back"   # always a whole file, never a torn one
""")


def test_processes_saving_at_once_leave_a_whole_file(tmp_path):
    folder = tmp_path / "pycode"
    env = {**os.environ, "EXPRCOMPILER_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(folder), str(k)], env=env,
                              stderr=subprocess.PIPE) for k in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    texts = [f"def f{me}_{r}(a):\n    return a + {me * 1000 + r}\n" for me in range(4) for r in range(40)]
    store = CodeStore("race", folder)
    hits = [(store.get(text), text) for text in texts]
    assert len(read(store.path())) >= 40 and sum(code is not None for code, _ in hits) >= 40
    assert all(code is None or code == _code(text) for code, text in hits)
    assert not [p for p in os.listdir(folder) if p.startswith(".")], "temporary files left"


_EXITING = textwrap.dedent("""
    import sys
    from pathlib import Path
    from exprcompiler import code_store
    from exprcompiler.code_store import CodeStore
    folder, texts = Path(sys.argv[1]), sys.argv[2:]
    writes = []
    real_write = code_store.write
    code_store.write = lambda *a: (writes.append(1), real_write(*a))[1]
    import atexit
    atexit.register(lambda: print(len(writes)))   # (runs after the stores' saves: last in, first out)
    stores = [CodeStore("demo", folder), CodeStore("other", folder)]
    for k, text in enumerate(texts):   # (several programs' codes, in two stores)
        store = stores[k % 2]
        assert store.get(text) is None
        store.add(text, compile(text, "<test>", "exec", dont_inherit=True).co_consts[0])
    assert not writes and not folder.exists(), "a store wrote before the process's exit"
""")


def test_a_process_saves_its_codes_once_as_it_exits(tmp_path):
    folder = tmp_path / "pycode"
    env = {**os.environ, "EXPRCOMPILER_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _EXITING, str(folder), *TEXTS], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2"], out.stdout   # one write a store
    assert _hits(folder)[0::2] == [_code(t) for t in TEXTS[0::2]]
    assert _hits(folder, "other")[1::2] == [_code(t) for t in TEXTS[1::2]]


def _saved(folder, count: int):
    """(the texts, the store) of `count` small functions saved in `folder`."""
    texts = [f"def f(a):\n    return a * {k}\n" for k in range(count)]
    store = CodeStore("demo", folder)
    for text in texts:
        store.add(text, _code(text))
    store.save()
    return texts, store


def test_records_are_found_among_many(tmp_path):
    # (the records' table: every key found, in its slot or after it, and no other)
    folder = tmp_path / "pycode"
    texts, _ = _saved(folder, 300)
    again = CodeStore("demo", folder)
    assert all(again.get(text) == _code(text) for text in texts)
    assert again.get("def f(a):\n    return a * 300\n") is None


# -- the two users of the store: same results with and without it ----------------------------

def test_plans_from_the_store_parse_the_same(tmp_path, monkeypatch):
    from exprcompiler.parse import parse, plan_code, plans
    from exprcompiler.randexpr import random_program
    text = random_program(60, seed=5)
    monkeypatch.setattr(plans, "WORTH", 2)   # (a short text: plans where two statements share a form)
    folder = tmp_path / "pycode"
    monkeypatch.setattr(plan_code, "_CODES", {})
    monkeypatch.setattr(plan_code, "_STORE", CodeStore("plans", folder))
    cold = parse(text)
    cold_codes = set(plan_code._CODES.values())
    plan_code._STORE.save()   # (what the process would save as it exits)
    assert read(plan_code._STORE.path()), "the parse recorded no plan: the test reads nothing"
    monkeypatch.setattr(plan_code, "_CODES", {})
    monkeypatch.setattr(plan_code, "_STORE", CodeStore("plans", folder))
    compiled = []
    monkeypatch.setattr(plan_code, "compile", lambda *a: compiled.append(a) or compile(*a), raising=False)
    warm = parse(text)
    assert not compiled, "a plan the store holds was compiled again"
    assert str(warm) == str(cold) and warm.instrs == cold.instrs
    assert cold_codes == set(plan_code._CODES.values())


def test_templates_from_the_store_give_the_same_bits(tmp_path, monkeypatch):
    from exprcompiler.backends import numpy_backend, numpy_templates
    from exprcompiler.frontend import to_trace
    from exprcompiler.passes import grad_reverse
    from exprcompiler.randexpr import random_program
    grad = grad_reverse(to_trace(random_program(120, seed=3)))
    folder = tmp_path / "pycode"
    point = [np.linspace(0.2, 0.9, 7) + k / 10 for k in range(len(grad.input_names))]

    def built():
        monkeypatch.setattr(numpy_backend, "TIER_FROM", 0)
        source, _, program = numpy_backend.generated(grad, func_name="g")
        assert program is not None
        fn = numpy_backend.load(source, "g", program=program)
        return [np.asarray(r).tobytes() for r in fn(*point)]

    monkeypatch.setattr(numpy_templates, "_CODES", {})
    monkeypatch.setattr(numpy_templates, "_STORE", CodeStore("templates", folder))
    cold = built()
    numpy_templates._STORE.save()   # (what the process would save as it exits)
    saved = read(numpy_templates._STORE.path())
    assert len(saved) > 10
    monkeypatch.setattr(numpy_templates, "_CODES", {})
    monkeypatch.setattr(numpy_templates, "_STORE", CodeStore("templates", folder))
    compiled = []
    monkeypatch.setattr(numpy_templates, "compile", lambda *a: compiled.append(a) or compile(*a), raising=False)
    assert built() == cold
    assert not compiled, "a template the store holds was compiled again"
    monkeypatch.setattr(numpy_backend, "TIER_FROM", 10**9)
    source, _, _ = numpy_backend.generated(grad, func_name="g")
    fn = numpy_backend.load(source, "g")
    assert [np.asarray(r).tobytes() for r in fn(*point)] == cold


def _entry_at(blob: bytes, text: str) -> tuple:
    """(where in the file, length) of the entry of `text`, and where its record is."""
    slots = int.from_bytes(blob[code_store._TOP - 8:code_store._TOP], "little")
    records = blob[code_store._TOP:code_store._TOP + slots * code_store.RECORD]
    key = code_store._sum(text.encode())
    start, length, _ = code_store._find(records, slots, key)
    record = code_store._TOP + records.index(key)
    return code_store._TOP + slots * code_store.RECORD + start, length, record


def test_a_tampered_file_is_refused_on_the_read_path(tmp_path):
    # (the table past the file's first read, read in a second; an entry tampered in a
    # block already read for its neighbour; a record tampered in the table's second part)
    folder = tmp_path / "pycode"
    texts, store = _saved(folder, 700)
    path = store.path()
    blob = bytearray(path.read_bytes())
    slots = int.from_bytes(blob[code_store._TOP - 8:code_store._TOP], "little")
    assert code_store._TOP + slots * code_store.RECORD > code_store._FIRST, "the table fits in the first read"
    again = CodeStore("demo", folder)
    assert all(again.get(text) == _code(text) for text in texts)
    start, length, _ = _entry_at(blob, texts[1])
    assert _entry_at(blob, texts[0])[0] + _entry_at(blob, texts[0])[1] == start   # (neighbours: one block)
    blob[start + length // 2] ^= 0x04   # (a byte of the entry: its digest no longer matches)
    late = next(text for text in texts[2:] if _entry_at(blob, text)[2] >= code_store._FIRST)
    blob[_entry_at(blob, late)[2] + 40] ^= 0x01   # (its record's check)
    path.write_bytes(bytes(blob))
    tampered = CodeStore("demo", folder)
    assert tampered.get(texts[0]) == _code(texts[0])
    assert tampered.get(texts[1]) is None and tampered.get(late) is None
    assert sum(tampered.get(text) is None for text in texts) == 2


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts the process's open files in /proc")
def test_the_file_is_closed_after_read_and_with_its_store(tmp_path):
    # A file that the first read holds whole is closed at once (nothing more is read
    # from it); a larger one stays open for the entries past that read, until its
    # store goes.
    import gc
    folder = tmp_path / "pycode"
    path = _filled(folder).path()
    before = len(os.listdir("/proc/self/fd"))
    assert len(read(path)) == len(TEXTS) and len(os.listdir("/proc/self/fd")) == before
    store = CodeStore("demo", folder)
    assert store.get(TEXTS[0]) is not None and len(os.listdir("/proc/self/fd")) == before
    assert all(store.get(text) == _code(text) for text in TEXTS)
    big = CodeStore("big", folder)
    texts = [f"def f{k}(a):\n    return a + {k}\n" for k in range(1400)]
    for text in texts:
        big.add(text, _code(text))
    big.save()
    assert big.path().stat().st_size > code_store._FIRST
    assert len(read(big.path())) == len(texts) and len(os.listdir("/proc/self/fd")) == before
    big = CodeStore("big", folder)
    assert big.get(texts[-1]) == _code(texts[-1]) and len(os.listdir("/proc/self/fd")) == before + 1
    del big
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_a_planted_fifo_is_refused_without_waiting(tmp_path):
    folder = tmp_path / "pycode"
    path = _filled(folder).path()
    os.unlink(path)
    os.mkfifo(path, 0o600)
    # (in a thread: a reader blocked on the pipe's open would hang the test, not fail it)
    import threading
    got = []
    reader = threading.Thread(target=lambda: got.append((read(path), _hits(folder))), daemon=True)
    reader.start()
    reader.join(30)
    assert got == [({}, [None] * len(TEXTS))], "a read of a FIFO waited for a writer"
