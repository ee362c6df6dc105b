"""The code store's fixed costs in a fresh process (exprcompiler/code_store.py): a small
file's entries come from the bytes its load read first, no read each; a larger one's
past that read are read."""

from __future__ import annotations

import pytest

from exprcompiler import code_store
from exprcompiler.code_store import CodeStore

TEXTS = [f"def f(a, b):\n    return a * {k} + b\n" for k in range(5)]


def _code(text: str):
    module = compile(text, "<test>", "exec", dont_inherit=True)
    return next(c for c in module.co_consts if type(c) is type(module))


def test_a_small_files_entries_take_no_read_but_the_first(tmp_path, monkeypatch):
    folder = tmp_path / "pycode"
    store = CodeStore("demo", folder)
    for text in TEXTS:
        store.add(text, _code(text))
    store.save()
    reads = []
    read_at = code_store._read_at
    monkeypatch.setattr(code_store, "_read_at", lambda *a: reads.append(a[1:]) or read_at(*a))
    again = CodeStore("demo", folder)
    assert [again.get(text) for text in TEXTS] == list(map(_code, TEXTS))
    assert reads == [(min(store.path().stat().st_size, code_store._FIRST), 0)]


@pytest.mark.parametrize("entries", [3, 1400])
def test_entries_past_the_first_read_are_read(tmp_path, entries):
    # (1,400 entries: a table of 4,096 slots, past the first read, and entries past it)
    folder = tmp_path / "pycode"
    store = CodeStore("big", folder)
    texts = [f"def f{k}(a):\n    return a + {k}\n" for k in range(entries)]
    for text in texts:
        store.add(text, _code(text))
    store.save()
    assert store.path().stat().st_size > code_store._FIRST or entries == 3
    again = CodeStore("big", folder)
    assert all(again.get(text) == _code(text) for text in texts[::97] + texts[-3:])
