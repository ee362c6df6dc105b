"""numpy_rewrites._small_powers (x**2 as x * x, x**3 as x * x * x, before the NumPy
backend spells a trace), read in bulk: the same trace, labels, outputs and op codes as
a plain walk over the instructions, on random traces with squares, cubes, other
exponents (kept), shaped operands and exponent constants shared by many powers."""

from __future__ import annotations

import numpy as np
import pytest

from exprcompiler import passes, to_trace
from exprcompiler.backends import numpy_backend
from exprcompiler.backends.numpy_rewrites import _small_powers
from exprcompiler.trace.columns import CODE
from exprcompiler.trace.ir import Instr, Trace
from exprcompiler.trace.render_bulk import table_codes

SHAPES = {"x": (4,), "y": (), "z": (4,)}


def _walked(trace: Trace) -> tuple[list, list, list]:
    """What the rewrite makes, one instruction at a time: instructions, labels and
    outputs, a cube's square inserted before it (labelled None), every later variable
    moved up by the squares inserted before it."""
    out, labels, new = [], [], []
    for i, ins in enumerate(trace.instrs):
        args = tuple(new[a] for a in ins.args)
        e = trace.instrs[ins.args[1]] if ins.op == "pow" else None
        if e is not None and e.op == "const" and e.value in (2.0, 3.0):
            x = args[0]
            if e.value == 3.0:
                out.append(Instr("mul", (x, x), (), ins.shape))
                labels.append(None)
                args = (len(out) - 1, x)
            else:
                args = (x, x)
            ins = Instr("mul", args, (), ins.shape)
        else:
            ins = Instr(ins.op, args, ins.attrs, ins.shape)
        new.append(len(out))
        out.append(ins)
        labels.append(trace.labels[i])
    return out, labels, [(n, new[v]) for n, v in trace.outputs]


def _random_text(rng, n_terms: int, exponents: tuple) -> str:
    """A sum of n_terms random powers and products over x, y (scalar) and z."""
    bases = ["x", "y", "z", "sin(x)", "exp(y) * z", "(x + y)", "cos(z) * x", "log(1 + y ** 2)"]
    terms = []
    for _ in range(n_terms):
        base = bases[rng.integers(len(bases))]
        e = exponents[rng.integers(len(exponents))]
        term = f"{base} ** {e}"
        if rng.random() < 0.3:   # a power of a power
            term = f"({term}) ** {exponents[rng.integers(len(exponents))]}"
        if rng.random() < 0.3:
            term = f"{term} * {bases[rng.integers(len(bases))]}"
        terms.append(term)
    return " + ".join(terms)


def _traces(seed: int, exponents: tuple) -> list:
    """A random primal with shaped operands, and the gradient of its sum."""
    rng = np.random.default_rng(seed)
    primal = to_trace(_random_text(rng, 12, exponents), SHAPES)
    summed = to_trace(f"sum({_random_text(rng, 12, exponents)})", SHAPES)
    return [primal, passes.grad_reverse(summed)]


def _check(trace: Trace) -> None:
    instrs, labels, outputs = _walked(trace)
    table = table_codes(trace.instrs)
    pows = np.flatnonzero(table == CODE["pow"])
    for got, got_table in (_small_powers(trace), _small_powers(trace, pows, table)):
        if list(got.instrs) == list(trace.instrs):
            assert got is trace and got_table is None or got_table is table
        assert list(got.instrs) == instrs
        assert list(got.labels) == labels
        assert list(got.outputs) == outputs
        assert list(got.inputs) == [(ins.name, i) for i, ins in enumerate(instrs) if ins.op == "input"]
        if got_table is not None:
            assert np.array_equal(got_table, table_codes(got.instrs))


@pytest.mark.parametrize("exponents", [
    (2,), (3,), (2, 3), (2, 2.5), (2, 3, 0.5, "y"), (2.5, "y"),
], ids=["squares", "cubes", "both", "squares-kept", "all", "none"])
@pytest.mark.parametrize("seed", range(4))
def test_the_rewrite_is_the_walk_over_the_instructions(seed, exponents):
    for trace in _traces(seed, exponents):
        _check(trace)
        _check(Trace(trace.instrs, tuple(trace.labels), trace.outputs, trace.source))   # (labels as a tuple)


def test_the_squares_share_one_exponent_constant():
    """Many powers of one constant 2 (the exponent looked up once), and a power whose
    base is that constant itself."""
    trace = to_trace(" + ".join(f"sin({k} * x) ** 2" for k in range(1, 40)) + " + 2 ** x", {"x": (4,)})
    exponents = {ins.args[1] for ins in trace.instrs if ins.op == "pow"}
    assert len(exponents - {dict(trace.inputs)["x"]}) == 1
    _check(trace)


@pytest.mark.parametrize("text, want", [
    ("x ** 3 * y ** 2 + z ** 2.5 + (x * z) ** 3", lambda x, y, z: x ** 3 * y ** 2 + z ** 2.5 + (x * z) ** 3),
    ("sum(x ** 2) * y ** 3 + sum(z ** 3)", lambda x, y, z: np.sum(x ** 2) * y ** 3 + np.sum(z ** 3)),
])
def test_the_generated_function_computes_the_powers(text, want):
    """The rewritten trace's NumPy function against NumPy's power on the same inputs."""
    trace = to_trace(text, SHAPES)
    source, params = numpy_backend.generate(trace, func_name="f")
    assert "**" not in source.split("def f", 1)[1].replace("** 2.5", "")   # (only 2.5 kept as a power)
    fn = numpy_backend.load(source, "f")
    rng = np.random.default_rng(5)
    values = {"x": rng.uniform(0.5, 2, 4), "y": 1.3, "z": rng.uniform(0.5, 2, 4)}
    expected = want(**values)
    got = fn(*(values[name] for name in params))
    np.testing.assert_allclose(np.asarray(got).reshape(np.shape(expected)), expected, rtol=1e-14)
