"""User text in generated source: identifiers from an injective mangling, comments that
cannot be ended or redirected, and nothing else (issue "Trust", class 1).

The properties are checked over arbitrary strings (hypothesis), on every code
generator (NumPy, scalar C, tensor C, exported .c/.h), and end to end: hostile names
compile and give the right numbers on both backends, and a formula that tries to
close its comment runs no code.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess

import numpy as np
import pytest
import sympy
from hypothesis import given, settings, strategies as st

from exprcompiler import compile_expr, compile_grad, passes
from exprcompiler.backends import numpy_backend
from exprcompiler.backends.c_backend import C_KEYWORDS, generate_c
from exprcompiler.backends.c_export import export_c
from exprcompiler.backends.c_tensor import generate_c_tensor
from exprcompiler.backends.naming import ESCAPED_PREFIX, comment_text, identifier
from exprcompiler.backends.reserved import C_HEADER_NAMES, C_RESERVED, PYTHON_RESERVED
from exprcompiler.cli import main
from exprcompiler.trace.ir import Builder, trace_from_builder

CC = shutil.which("cc") or shutil.which("gcc")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["*/", "*\\", "/*", "??/", "\\\n/", "x\n#", "# -*- coding: rot13 -*-", "coding=latin-1", "é", "_ue9_",
     "ﬁ", "fi", "NULL", "__LINE__", "int", "def", "v1", "x_bar", "u___e9_", "in0", "", " ", "\u2028"])


def decode(ident: str) -> str:
    """The inverse of naming.identifier: if it exists, the mangling is injective."""
    if ident.startswith(ESCAPED_PREFIX):
        body, out, k = ident[len(ESCAPED_PREFIX):], [], 0
        while k < len(body):
            if body[k] == "_":
                end = body.index("_", k + 1)
                out.append(chr(int(body[k + 1:end], 16)))
                k = end + 1
            else:
                out.append(body[k])
                k += 1
        return "".join(out)
    return ident[:-1] if ident.endswith("_") else ident


@pytest.mark.parametrize("reserved", [C_KEYWORDS, PYTHON_RESERVED], ids=["c", "python"])
@given(name=ANY_TEXT)
@settings(max_examples=300)
def test_identifier_is_an_injective_safe_identifier(reserved, name):
    ident = identifier(name, reserved)
    assert IDENT.match(ident) and ident.isascii()
    assert ident not in reserved
    assert not ident.startswith("_") and not re.match(r"(v|t|vm)\d+\Z", ident)
    assert decode(ident) == name  # a left inverse: no two names share an identifier


def test_identifier_keeps_plain_names_and_marks_the_rest():
    assert [identifier(n, C_KEYWORDS) for n in ("x1", "theta_2", "int", "NULL", "v3", "x_bar", "é")] == \
        ["x1", "theta_2", "int_", "NULL_", "v3_", "x_bar_", "u___e9_"]


def c_comment_spans(source: str) -> str:
    """`source` with every /* */ comment and // comment removed, as a C compiler
    would see it (our sources hold no string or character literals with comment
    markers; the only strings are in attributes)."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", source, flags=re.S)


@given(text=ANY_TEXT, limit=st.integers(4, 200))
@settings(max_examples=300)
def test_c_comment_text_cannot_end_nest_or_splice_the_comment(text, limit):
    shown = comment_text(text, limit, c=True)
    assert all(" " <= ch <= "~" for ch in shown) and "\\" not in shown
    assert "*/" not in shown and "/*" not in shown and "??" not in shown
    wrapped = f"/* {shown} */\nint k;"
    assert c_comment_spans(wrapped).split() == ["int", "k;"]


@given(text=ANY_TEXT, limit=st.integers(4, 200))
@settings(max_examples=300)
def test_python_comment_text_stays_one_comment_line(text, limit):
    shown = comment_text(text, limit)
    assert len(f"# {shown}".splitlines()) == 1 and shown.isprintable()
    assert not re.search(r"coding[:=]", shown)
    tree = ast.parse(f"# {shown}\n# {shown}\nk = 1\n")  # lines 1-2: where a coding cookie acts
    assert [type(s).__name__ for s in tree.body] == ["Assign"]


def _trace(names: list, description: str, shape: tuple = ()):
    """x1*sin(x2) + x3 ... over inputs with these names; with a `shape`, of vectors
    and summed."""
    b = Builder()
    vs = [b.input(n, shape) for n in names]
    acc = vs[0]
    for k, v in enumerate(vs[1:]):
        acc = b.add(b.mul(acc, b.sin(v)), float(k + 2))
    return trace_from_builder(b, [("y", b.sum(acc) if shape else acc)], source=description)


def _sources(trace) -> dict:
    """Every generated source of a trace's gradient: NumPy, C, the exported pair, and
    the tensor C kernel of the same function over vectors."""
    grad = passes.grad_reverse(trace, list(trace.input_names))
    desc = f"gradient of: {trace.source}"
    py, _ = numpy_backend.generate(grad, func_name="f_grad", description=desc)
    c, _ = generate_c(grad, func_name="f_grad", description=desc)
    _, ec, eh = export_c(grad, "kernel", desc)
    vectors = _trace(list(trace.input_names), trace.source or "", shape=("n",))
    tc, _ = generate_c_tensor(passes.grad_reverse(vectors, list(vectors.input_names)), func_name="f_grad",
                              description=desc)
    return {"python": py, "c": c, "export.c": ec, "export.h": eh, "tensor c": tc}


OUR_STRINGS = {'"kernel.h"', '"O2"', '"no-tree-vectorize"', '"no-tree-slp-vectorize"',
               '"no-tree-loop-distribution"', '"no-tree-loop-distribute-patterns"'}
distinct_names = st.lists(ANY_TEXT, min_size=1, max_size=4, unique=True)


def _skeleton(src: str, kind: str) -> str:
    """The source without comments, identifiers and numbers: what user text could
    change if it reached the source other than as an identifier."""
    code = ("\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith("#"))
            if kind == "python" else c_comment_spans(src))
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*|\d+(\.\d*)?([eE][-+]?\d+)?", "", code)


@given(names=distinct_names, description=ANY_TEXT)
@settings(max_examples=60, deadline=None)
def test_user_text_reaches_generated_source_only_as_identifiers_and_comments(names, description):
    """With comments, identifiers and numbers taken out, a source is the same as for
    plain names and no description: user text is in identifiers or nowhere."""
    trace = _trace(names, description)
    plain = _sources(_trace([f"p{k}" for k in range(len(names))], ""))
    for kind, src in _sources(trace).items():
        assert src.isascii() or kind == "python"  # Python comments may quote Unicode
        assert _skeleton(src, kind) == _skeleton(plain[kind], kind)
        if kind == "python":
            fn = ast.parse(src).body[-1]
            # (the function's own name is reserved too: an input f_grad becomes f_grad_)
            reserved = numpy_backend.RESERVED | {"f_grad"}
            assert [a.arg for a in fn.args.args] == [identifier(n, reserved) for n in trace.input_names]
        else:
            assert set(re.findall(r'"[^"\n]*"', c_comment_spans(src))) <= OUR_STRINGS


@pytest.mark.skipif(CC is None, reason="no C compiler")
@given(names=distinct_names, description=ANY_TEXT)
@settings(max_examples=15, deadline=None)
def test_c_sources_with_hostile_text_compile(tmp_path_factory, names, description):
    folder = tmp_path_factory.mktemp("syntax")
    sources = _sources(_trace(names, description))
    (folder / "kernel.h").write_text(sources["export.h"])
    (folder / "kernel.c").write_text(sources["export.c"])
    (folder / "k.c").write_text(sources["c"])
    (folder / "t.c").write_text(sources["tensor c"])
    done = subprocess.run([CC, "-std=c99", "-fsyntax-only", "-Wall", "-Werror", "-Wno-unknown-pragmas",
                           "-I", str(folder), str(folder / "k.c"), str(folder / "kernel.c"), str(folder / "t.c")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _compiler_vocabulary() -> set:
    """Macro and type names <math.h>, <stddef.h>, <stdlib.h> give, in strict and GNU mode."""
    words: set = set()
    src = "#include <math.h>\n#include <stddef.h>\n#include <stdlib.h>\n"
    for std in ("-std=c99", "-std=gnu17"):
        macros = subprocess.run([CC, std, "-dM", "-E", "-"], input=src, capture_output=True, text=True, check=True)
        words |= {ln.split()[1].split("(")[0] for ln in macros.stdout.splitlines() if ln.startswith("#define")}
        pre = subprocess.run([CC, std, "-E", "-"], input=src, capture_output=True, text=True, check=True)
        words |= set(re.findall(r"\b(\w+)\s*;", " ".join(re.findall(r"typedef[^;]*;", pre.stdout))))
    return {w for w in words if identifier(w) == w}  # the ones the mangling would keep


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_every_header_macro_and_type_the_mangling_would_keep_is_reserved():
    missing = sorted(w for w in _compiler_vocabulary() if w not in C_RESERVED)
    assert not missing, f"add to reserved.C_HEADER_NAMES: {missing}"
    assert {"NULL", "HUGE_VAL", "EXIT_FAILURE", "linux", "unix"} <= C_HEADER_NAMES


HOSTILE = ["NULL", "HUGE_VAL", "__LINE__", "EXIT_FAILURE", "bs", "n", "i", "in", "t", "linux", "unix",
           "é", "_ue9_", "ﬁ", "fi", "x_bar", "v1", "int", "def", "None", "print", "np", "__debug__",
           "f_grad", "out0", "in0", "xc_sign", "sin", "M_PI", "a b", "*/", "x'", "isnan", "errno"]


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_hostile_input_names_compile_and_give_the_right_numbers(backend):
    syms = [sympy.Symbol(n) for n in HOSTILE]
    weights = np.arange(1.0, len(syms) + 1)
    expr = sum(float(w) * s ** 2 for w, s in zip(weights, syms))
    g = compile_grad(expr, backend=backend)
    at = {str(s): 0.5 + k for k, s in enumerate(syms)}
    value, grads = g(**at)
    point = np.array([at[n] for n in g.inputs])
    w = np.array([weights[HOSTILE.index(n)] for n in g.inputs])
    assert value == pytest.approx(float(np.sum(w * point ** 2)), rel=1e-14)
    np.testing.assert_allclose(grads, 2 * w * point, rtol=1e-14)


PAYLOAD = (r'2*x  # *\ int system(const char *);__attribute__((constructor)) static void p(void)'
           r'{{system("touch {marker}");}}\*')


@pytest.mark.skipif(CC is None, reason="no C compiler")
@pytest.mark.parametrize("text", [PAYLOAD, PAYLOAD.replace("*\\", "*??/"), PAYLOAD.replace("*\\", "*/")])
def test_a_formula_that_closes_its_comment_runs_no_code(tmp_path, monkeypatch, text):
    monkeypatch.setenv("EXPRCOMPILER_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "pwned"
    formula = text.format(marker=marker)
    g = compile_grad(formula, backend="c")
    assert g(3.0) == (6.0, (2.0,))
    assert "system" not in c_comment_spans(g.source)
    assert compile_expr(formula, backend="c")(1.0) == 2.0
    assert main(["export", formula, "-o", str(tmp_path / "k")]) == 0
    for path in (tmp_path / "k.c", tmp_path / "k.h"):
        assert "system" not in c_comment_spans(path.read_text())
    done = subprocess.run([CC, "-std=c99", "-c", "-o", str(tmp_path / "k.o"), str(tmp_path / "k.c")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("backend, examples", [("numpy", 60), ("c", 8)])
def test_random_names_give_the_right_numbers(backend, examples):
    """Name fuzzing through the whole pipeline: whatever the names, each input gets
    its own identifier and its own derivative."""
    @given(names=st.lists(ANY_TEXT, min_size=2, max_size=4, unique=True))
    @settings(max_examples=examples, deadline=None)
    def check(names):
        trace = _trace(names, "")
        g = compile_grad(trace, backend=backend)
        point = {n: 0.25 + 0.5 * k for k, n in enumerate(trace.input_names)}
        # (an input named out is given by position: out= is the output arrays' keyword)
        value, grads = g(*point.values()) if "out" in point else g(**point)
        want = compile_grad(_trace([f"p{k}" for k in range(len(names))], ""))
        order = [names.index(n) for n in trace.input_names]
        values = [point[names[k]] for k in range(len(names))]
        w_value, w_grads = want(*values)
        assert value == pytest.approx(w_value, rel=1e-13)
        np.testing.assert_allclose(grads, [w_grads[k] for k in order], rtol=1e-13)
    check()


def test_names_that_used_to_share_a_c_identifier_stay_apart_in_a_split_kernel(monkeypatch):
    """'é' and '_ue9_' both became `_ue9_` in C: a compile error in a small kernel and a
    wrong value in a split one, where parts load inputs by name."""
    from exprcompiler.backends import c_backend
    monkeypatch.setattr(c_backend, "SPLIT_FROM", 5)
    monkeypatch.setattr(c_backend, "PART", 3)
    a, b = sympy.Symbol("é"), sympy.Symbol("_ue9_")
    expr = sympy.sin(a) * b ** 2 + sympy.exp(a - b) / (1 + a ** 2) + sympy.cos(b) * a
    g = compile_grad(expr, backend="c")
    assert "_part1(" in g.source
    want = compile_grad(expr)
    for value, expected in zip(_flat_numbers(g(**{"é": 0.3, "_ue9_": -1.7})),
                               _flat_numbers(want(**{"é": 0.3, "_ue9_": -1.7}))):
        assert value == pytest.approx(expected, rel=1e-13)


def _flat_numbers(result) -> list:
    value, grads = result
    return [value, *grads]


def test_names_in_the_kernels_own_namespace_get_an_underscore():
    """xc_ / XC_ is the generated code's namespace (helpers, macros, the split kernel's
    include guard XC_PRELUDE_<NAME>): a user name there is mangled, so an input called
    XC_PRELUDE_F_GRAD cannot be expanded away by the macro of that name."""
    assert identifier("XC_PRELUDE_F_GRAD") == "XC_PRELUDE_F_GRAD_"
    assert identifier("xc_pow") == "xc_pow_" and identifier("xcoord") == "xcoord"


def test_an_input_named_out_is_given_by_position():
    """out= is the keyword of the output arrays: an input named `out` given by name is
    missing, and the error says how to give it."""
    g = compile_grad("out * y + sin(out)")
    want = g(0.5, 2.0)
    assert g(0.5, y=2.0) == want
    with pytest.raises(TypeError, match="give the input 'out' by position"):
        g(out=0.5, y=2.0)
