"""The backends behind one interface: trace -> Artifact (generated source) -> Kernel.

Where it sits: between the passes and the compiled object. `api._build` asks
`BACKENDS[name]` for an artifact of the trace to compile and loads it as a kernel;
everything about one backend (the NumPy source and its blocked runner; the C
source, its build through the cache, the scalar-or-tensor generator, the thread
choice) stays behind `generate` and `load` (a long NumPy function's text is made only
when its `source` is asked for: program_text.py):

    artifact = backend.generate(trace, func_name=..., description=..., returns=..., columns=...)
    kernel = backend.load(artifact, signature, threads=...)

(the Signature of the trace — signature.py — whose binding of a call's shapes the C
tensor kernel shares, so a call binds once).

A Kernel is what api.Compiled runs: `fn(*arrays)` the generated function itself
(arguments in trace input order), and for traces of scalars evaluated over a batch
`run(arrays, batch, blocks=None)` (one array per output, or the outputs stored into
the columns of `blocks`: see c_run.runner and numpy_backend.numpy_runner),
`packed(in, out)` for one point packed in buffers and `point(floats) -> floats`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

from ..trace.ir import Trace
from .naming import param_alias
from .program_text import text_of


class Artifact(NamedTuple):
    text: object                # the generated program text: a str, or NumPy's LazySource (program_text.py)
    func_name: str              # its entry point
    params: tuple               # the generated function's parameter names, in input order
    decl: str = ""              # C: the declarations cffi loads
    tensor: bool = False        # C: the loop-nest kernel over exact shapes
    description: str = ""       # what the source's header says it computes
    returns: object = None      # NumPy: how the function nests its results
    dtype: object = None        # None: float64; np.dtype(float32): a float32 kernel (dtypes.py)
    program: object = None      # NumPy: the long source's statement program, if generated (numpy_program.Program)
    point: object = None        # NumPy: what its one-point variant is made from (numpy_backend.generated's `keep`)

    @property
    def source(self) -> str:
        """The text (a LazySource's made at the first call)."""
        return text_of(self.text)


class Kernel(NamedTuple):
    fn: Callable
    text: object                        # its source text: a str, or NumPy's LazySource (program_text.py)
    params: tuple
    run: Optional[Callable] = None      # traces of scalars; None for tensor traces
    packed: Optional[Callable] = None   # None: PackedCall goes through `point`
    point: Optional[Callable] = None
    warns: bool = True                  # fn may raise NumPy's floating-point warnings

    @property
    def source(self) -> str:
        """The text (a LazySource's made at the first call)."""
        return text_of(self.text)


class NumpyBackend:
    name = "numpy"

    def generate(self, trace: Trace, *, func_name: str, description: str, returns=None,
                 columns: bool = False, dtype=None) -> Artifact:
        from .numpy_backend import generated
        keep: Optional[list] = [] if dtype is None else None   # (a float32 kernel's point: dtypes.numpy_point)
        source, params, program = generated(trace, func_name=func_name, description=description, returns=returns,
                                            keep=keep)
        return Artifact(source, func_name, tuple(params), description=description, returns=returns,
                        dtype=dtype, program=program, point=keep[0] if keep else None)

    def load(self, artifact: Artifact, signature, *, threads=None) -> Kernel:
        from .numpy_backend import block_for, load, numpy_runner
        fn = load(artifact.text, artifact.func_name, program=artifact.program)
        block = block_for(artifact.text)
        if signature.tensor:
            return Kernel(fn, artifact.text, artifact.params)
        if artifact.dtype is not None:  # float32: the point on float32 scalars, not math's doubles
            from ..dtypes import numpy_point
            return Kernel(fn, artifact.text, artifact.params, run=numpy_runner(fn, block), point=numpy_point(fn))
        return Kernel(fn, artifact.text, artifact.params, run=numpy_runner(fn, block),
                      point=_MathPoint(artifact, signature.trace, fn))


class _MathPoint:
    """run(floats) -> floats for a NumPy kernel: the one-point variant of its source
    (numpy_backend.MATH), generated at the first call with plain numbers (a large
    expression called only with arrays never pays for it; made from its batch
    function's lines or statements where the artifact kept them: Artifact.point),
    which answers where math raises with the NumPy function at NumPy scalars
    (_numpy_answer) itself: its callers (api.Compiled's call, call_plan.point_plan,
    packed's `at`) only call it."""

    def __init__(self, artifact: Artifact, trace: Trace, fn):
        from .numpy_backend import MATH
        # (not the artifact's program: its one use was the batch function's load)
        self.artifact, self.trace, self.fn, self.run = artifact._replace(program=None), trace, fn, None
        # Only math and arithmetic: nothing for NumPy to warn about, so no errstate (~0.7 µs)
        self.pure = all(ins.op in MATH or ins.op in ("input", "const", "copy", "add", "sub", "mul", "div", "neg")
                        for ins in trace.instrs)

    def __call__(self, values):
        if self.run is None:
            # every output in a flat tuple, one included: (v,) — what Compiled nests
            fast = self._variant(tuple(range(len(self.trace.outputs))))
            if self.pure:  # floats in, floats out
                self.run = lambda values: fast(*values)
            else:  # NumPy may be called on floats: its warnings off, its scalars made floats
                from ..call_args import quiet
                self.run = quiet(lambda values: [float(r) for r in fast(*values)])
        return self.run(values)

    def nested(self, returns):
        """The one-point variant returning its outputs nested as `returns` says (the
        compiled object's own nesting, so a call returns what it returns), for a
        trace of math and arithmetic only, whose results are Python floats; None
        otherwise. Where math refuses it returns NumPy's answer, nested the same."""
        return self._variant(returns) if self.pure else None

    def _variant(self, returns):
        from .numpy_backend import generated, load_point
        a = self.artifact
        like = getattr(a.text, "program", None)   # (the batch function's, LazySource's: slots shared)
        source, _, program = generated(self.trace, func_name=a.func_name, description=a.description,
                                       returns=returns, point=True, guarded=True, like=like, made_from=a.point)
        # a variant that is not pure runs in call_args.quiet already (__call__)
        return load_point(source, a.func_name, _numpy_answer(self.fn, quiet=self.pure), returns, program)


def _numpy_answer(fn, quiet: bool):
    """f(*floats) -> the outputs of `fn` (a generated NumPy function) at NumPy scalars,
    a list of floats: what the array call gives where math refuses (inf, NaN, signed
    zeros). `quiet`: under call_args.quiet, its IEEE results returned, not warned
    about (else its caller runs it so)."""
    from .numpy_backend import _flatten
    import numpy as np

    def answer(*values):
        return [float(r) for r in _flatten((fn(*map(np.float64, values)),))]
    if quiet:
        from ..call_args import quiet as quieted
        return quieted(answer)
    return answer


class CBackend:
    name = "c"

    def generate(self, trace: Trace, *, func_name: str, description: str, returns=None,
                 columns: bool = False, dtype=None) -> Artifact:
        from . import c_source
        generated = c_source.generate(trace, func_name=func_name, description=description, columns=columns,
                                      dtype=dtype)
        params = tuple(map(param_alias, trace.input_names))
        return Artifact(generated.text, func_name, params, generated.decl, generated.tensor, dtype=dtype)

    def load(self, artifact: Artifact, signature, *, threads=None) -> Kernel:
        trace = signature.trace
        if artifact.tensor:  # loops over the shapes; called with exact shapes
            from .c_tensor import compile_c_tensor
            fn, source, params = compile_c_tensor(trace, func_name=artifact.func_name, threads=threads,
                                                  generated=(artifact.source, artifact.decl), signature=signature,
                                                  dtype=artifact.dtype)
            return Kernel(fn, source, tuple(params), warns=False)  # C does the arithmetic
        from ..packed import c_packed, c_point
        from ..dtypes import c_type
        from . import c_build, c_run
        ffi, lib = c_build.load(artifact.source, artifact.decl)
        fn = getattr(lib, artifact.func_name)
        packed = getattr(lib, f"{artifact.func_name}_packed")
        if artifact.dtype is not None:  # float buffers: .at() goes through the point (dtypes.py)
            return Kernel(fn, artifact.source, artifact.params,
                          run=c_run.runner(ffi, fn, len(trace.outputs), threads, dtype=artifact.dtype),
                          point=c_point(ffi, packed, len(trace.outputs), ctype=c_type(artifact.dtype)))
        return Kernel(fn, artifact.source, artifact.params,
                      run=c_run.runner(ffi, fn, len(trace.outputs), threads),
                      packed=c_packed(ffi, packed),
                      point=c_point(ffi, packed, len(trace.outputs), len(trace.inputs), names=tuple(signature.inputs)))


class VmBackend:
    """Scalar traces as programs of the tape VM (vm_source.py, compiled once per cache):
    the build is vm_backend.encode, no compiler run. Float64 only."""
    name = "vm"

    def generate(self, trace: Trace, *, func_name: str, description: str, returns=None,
                 columns: bool = False, dtype=None):
        from .vm_backend import generate
        return generate(trace, func_name=func_name, description=description, dtype=dtype)

    def load(self, artifact, signature, *, threads=None) -> Kernel:
        from .vm_backend import vm_kernel
        return vm_kernel(artifact, threads)


BACKENDS = {"numpy": NumpyBackend(), "c": CBackend(), "vm": VmBackend()}

__all__ = ["Artifact", "Kernel", "BACKENDS"]
