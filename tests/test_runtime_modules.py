"""The NumPy runtime's elementwise kernels, split over runtime_elementwise.py,
runtime_exps.py, runtime_log1p.py, runtime_tanh.py and runtime_nary.py
(runtime_blocks.py: their blocked running): every public name of each is re-exported
by runtime.py, the one name space generated code and the op table import from, and is
that module's own function."""

import importlib

import pytest

from exprcompiler import runtime

MODULES = ("runtime_elementwise", "runtime_exps", "runtime_log1p", "runtime_tanh", "runtime_nary")


@pytest.mark.parametrize("name", MODULES)
def test_runtime_reexports_each_kernel_module(name):
    module = importlib.import_module(f"exprcompiler.{name}")
    assert module.__all__, name
    for public in module.__all__:
        assert getattr(runtime, public) is getattr(module, public), public
        assert getattr(module, public).__module__ == module.__name__, public   # defined there, not re-imported


def test_no_kernel_is_defined_twice():
    names = [public for name in MODULES for public in importlib.import_module(f"exprcompiler.{name}").__all__]
    assert len(names) == len(set(names))
