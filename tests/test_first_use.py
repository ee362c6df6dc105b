"""First-use costs of a fresh process: what its first formula pays once (regexes
compiled, modules imported, first calls), and the str-method code that replaced
regexes there, checked against the regexes it replaced."""

import json
import random
import re
import subprocess
import sys
from collections import Counter

from exprcompiler.backends import numpy_backend
from exprcompiler.backends.name_codes import HELD_BY_INDEX, reserved_split
from exprcompiler.parse.lexer import _OPERATOR, _one_token
from exprcompiler.parse.window_forms import Window
from exprcompiler.trace.ir import natural_key

_FIRST_FORMULA = r"""
import hashlib, json, re, sys
import exprcompiler
from exprcompiler.bench.suite_scaling import random_dag
text = random_dag(100, seed=1)
compiled, sha1 = [], []
compile_pattern = re._compiler.compile
def spy(pattern, flags=0):
    compiled.append(str(pattern))
    return compile_pattern(pattern, flags)
re._compiler.compile = spy
openssl_sha1 = hashlib.sha1
def spy_sha1(*args, **kwargs):
    sha1.append(1)
    return openssl_sha1(*args, **kwargs)
hashlib.sha1 = spy_sha1
f = exprcompiler.compile_grad(text)
print(json.dumps({"compiled": compiled, "imported": sorted({"difflib", "unicodedata"} & set(sys.modules)),
                  "sha1": len(sha1)}))
"""


def test_first_formula_compiles_no_regex():
    """A fresh process's first compile_grad of a plain text compiles no regular
    expression, imports neither difflib nor unicodedata (for messages) and calls no
    SHA-1 of OpenSSL (each ~0.05-0.4 ms there, at its first use)."""
    out = subprocess.run([sys.executable, "-c", _FIRST_FORMULA], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"compiled": [], "imported": [], "sha1": 0}


def _natural_key_by_regex(name):
    key = []
    for t in re.split(r"([0-9]+)", name):
        if t:
            digits = t.lstrip("0") if t.isdigit() else None
            key.append((0, len(digits), digits, t) if digits is not None else (1, 0, t))
    return key


def test_natural_key_as_the_regex_split():
    rng = random.Random(7)
    alphabet = "ab_x0123456789²٣"
    names = ["", "x", "x12", "012", "0", "00", "x0", "x00y", "²", "a²", "a1²", "x1y2z3", "٣4", "1" * 5000 + "a"]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(8))) for _ in range(5000)]
    for name in names:
        assert natural_key(name) == _natural_key_by_regex(name), name
    assert sorted(["x10", "x2", "x1_10", "x1_9", "y", "x02"], key=natural_key) == \
        ["x1_9", "x1_10", "x02", "x2", "x10", "y"]


# the regex that checked a plain window's runs before _one_token (a run of one token)
_RUN = re.compile(rf"(?>[A-Za-z_]\w*+|(?>[0-9]+(?:\.[0-9]*+)?|\.[0-9]++)(?:[eE][0-9]++)?|{_OPERATOR}|\x00)")


def test_one_token_as_the_regex():
    rng = random.Random(5)
    alphabet = [*"0123456789.eE_aZ+-*/(),=;[]:@", "\0", "**", "=="]
    runs = ["1", "1.", ".5", "1.5e3", "1E05", ".", "..", "1e", "1_0", "1.2.3", "e5", "\0", "**", "1.e5", ".e5"]
    runs += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 7))) for _ in range(20000)]
    for run in runs:
        if not run.isidentifier():   # (names are checked before, by str.isidentifier)
            assert _one_token(run) == bool(_RUN.fullmatch(run)), run


def _reserved_split_by_regex(reserved):
    texts, indexed = [], []
    for name in sorted(frozenset(reserved)):
        m = HELD_BY_INDEX.match(name)
        if m is None:
            texts.append(name)
        else:
            indexed.append((name, m[2] or "v", int(m[1])))
    return tuple(texts), tuple(indexed)


def test_reserved_split_as_matching_each_name():
    rng = random.Random(3)
    parts = ["v", "w", "u", "_", "0", "1", "9", "dot", "bar", "_bar", "_dot", "x", "V", "vv", "é"]
    for _ in range(2000):
        reserved = {"".join(rng.choice(parts) for _ in range(rng.randrange(5))) for _ in range(rng.randrange(30))}
        assert reserved_split(reserved) == _reserved_split_by_regex(reserved), reserved


def test_window_counts_as_counter():
    toks = "x = 1\ny = x\nz = y\nw = 2\nw".replace("\n", " \0 ").split()
    window = Window(toks, {"=": 1, "\0": 10})
    assert window.counts() == Counter(window.lines) and window.counts()[b"nothing"] == 0


def test_loaded_source_file_name_by_text():
    """The file name of loaded source says its text: the same for the same text, and
    another for another (linecache holds each text under its name)."""
    def file_name(source):
        return numpy_backend.load(source, "f").__code__.co_filename
    a, b = "def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n"
    assert file_name(a) == file_name(a) != file_name(b)
    assert re.fullmatch(r"<exprcompiler f [0-9a-f]{12}>", file_name(a))
