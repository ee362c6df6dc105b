"""The tape VM, encoding half: a scalar trace becomes a program of the one compiled
interpreter (vm_source.py) instead of a C kernel of its own.

Where it sits: the "vm" backend of registry.py. `encode(trace)` is the whole build of
a function: array operations over the trace and one pass of register allocation (in
the VM library: xc_vm_encode) giving an int32 array of instructions (opcode, dst, a,
b, c), a float64 array of constants and a register count; `Runner` loads it into the
VM library, which c_build compiles once per machine and cache (the first VM function
pays for it; see bench_vm.py) and later loads from the cache.

Registers are rows of a block of points. They are allocated by liveness: a row is
free again after the last instruction that reads its value, and the next result
takes the most recently freed row (a stack: warm in cache), never a row its own
instruction reads (the VM's loops are `restrict`). So a trace needs as many rows as
values are live at once, not one per operation. An input is loaded into a row just
before its first use; an output is stored as soon as its value is computed; copies
are the row of what they copy; x**2 is x*x and expm1 and exp of one value are
expm1_shared and exp_shared, as in the C kernel (one rule for both: c_forms.c_forms).

Safety: user text never reaches the VM's source (it has none of ours); every field of
the program is checked here when it is made (`check`) and by the VM when it loads it
(Runner: vm_source's xc_vm_new, which keeps a copy Python cannot write), so a call
checks only its sizes, not the program again.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .. import ops as _ops
from ..errors import ExprcError
from ..trace.ir import Trace
from . import vm_source as S
from .c_forms import c_forms
from .c_run import c_array
from .naming import assign_names, comment_text, param_alias
from .reserved import C_RESERVED


class VmError(ExprcError, RuntimeError):
    """The VM refused a program or its arguments (here, or an error code from the VM)."""


class Program(NamedTuple):
    code: np.ndarray        # int32 (instructions, 5): opcode, dst, a, b, c
    consts: np.ndarray      # float64
    nregs: int
    n_in: int
    n_out: int
    trace_of: tuple         # per instruction, the trace variable it computes (-1: a move)


def encode(trace: Trace) -> Program:
    """The VM program of a scalar trace (see the module docstring)."""
    return _encode(c_forms(trace))


def _encode(trace: Trace) -> Program:
    """encode, of a trace in c_backend.c_forms's form already. What does not
    depend on the registers (aliases of copies, constants, each value's last reader,
    each instruction's opcode) is worked out with array operations; the one sequential
    part, the register allocation, runs in the VM library (_allocate)."""
    instrs = trace.instrs
    n = len(instrs)
    kind = _op_kinds(instrs)                   # per instruction: _OP_INDEX of its op
    arity = _ARITY[kind]
    args = np.full((n, 3), -1, dtype=np.int64)
    if n:
        flat = np.fromiter((a for ins in instrs for a in ins[1]), dtype=np.int64, count=int(arity.sum()))
        rows = np.repeat(np.arange(n), arity)
        args[rows, np.arange(len(flat)) - np.repeat(np.cumsum(arity) - arity, arity)] = flat
    alias = np.arange(n)                       # copies are what they copy
    copies = np.flatnonzero(kind == _COPY)
    if len(copies):
        alias[copies] = args[copies, 0]
        while True:                            # a copy of a copy: a copy reads an earlier value
            deeper = alias[alias]
            if np.array_equal(deeper, alias):
                break
            alias = deeper
    computes = kind >= _FIRST_OP
    args = np.where(args >= 0, alias[np.maximum(args, 0)], -1)
    args[~computes] = -1
    is_const = (kind == _CONST)[alias]
    last = np.full(n, -1, dtype=np.int64)      # the last instruction reading each (aliased) value
    for j in range(3):
        reads = args[:, j] >= 0
        np.maximum.at(last, args[reads, j], np.flatnonzero(reads))
    where = np.full(n, -1, dtype=np.int64)     # value -> what holds it: a row, or a constant's index
    consts: dict = {}
    for v in np.flatnonzero(kind == _CONST).tolist():
        where[v] = consts.setdefault(float(instrs[v].value).hex(), len(consts))  # -0.0, NaN kept apart
    where = where[alias]
    outputs = alias[[v for _, v in trace.outputs]] if trace.outputs else np.zeros(0, dtype=np.int64)
    is_output = np.zeros(n, dtype=bool)
    is_output[outputs] = True
    live = computes & ((last >= 0) | is_output)
    # opcode by op and by which arguments are constants (bit j: argument j); -1: all are,
    # and then `alt`, the opcode with the first in a register (the VM loads it into one)
    mask = np.zeros(n, dtype=np.int64)
    for j in range(3):
        mask |= np.where(args[:, j] >= 0, is_const[np.maximum(args[:, j], 0)], False).astype(np.int64) << j
    number = _BY_KIND_MASK[kind, mask]
    alt = np.where(live & (number < 0), _BY_KIND_MASK[kind, mask & ~1], -1)
    number = np.where(live, np.maximum(number, alt), -1)
    input_index = np.full(n, -1, dtype=np.int64)
    input_index[[v for _, v in trace.inputs]] = np.arange(len(trace.inputs))
    order = np.argsort(outputs, kind="stable")   # the outputs each value is, in output order
    ostart = np.searchsorted(outputs[order], np.arange(n + 1))
    code, trace_of, nregs, top = _allocate(n, number, alt, args, where, last, input_index, ostart, order,
                                           live.sum() * 5 + len(outputs))
    # outputs that are inputs or constants: at the end, in the order of their first output
    tail = []
    for v in dict.fromkeys(outputs.tolist()):
        ks = order[ostart[v]:ostart[v + 1]].tolist()
        if kind[v] == 0:  # an input (loaded again: its row may be another value's by now)
            if top < 0:
                top, nregs = nregs, nregs + 1
            tail += [(S.LOAD, top, int(input_index[v]), 0, 0)] + [(S.STORE, k, top, 0, 0) for k in ks]
        elif is_const[v]:
            tail += [(S.STORE_CONST, k, int(where[v]), 0, 0) for k in ks]
    if tail:
        code = np.concatenate([code, np.array(tail, dtype=np.int32)])
        trace_of = np.concatenate([trace_of, np.full(len(tail), -1)])
    values = np.array([float.fromhex(h) for h in consts], dtype=np.float64)
    code.flags.writeable = values.flags.writeable = False   # a program is a value
    program = Program(code, values, nregs, len(trace.inputs), len(trace.outputs), tuple(trace_of.tolist()))
    check(program)
    return program


def _allocate(n, number, alt, args, where, last, input_index, ostart, order, cap):
    """(code, trace_of, registers, the free row on top or -1): the VM library's
    xc_vm_encode, the register allocation (sequential: a stack of free rows, the most
    recently freed taken first, so warm in cache), over _encode's arrays."""
    ffi, lib = library()
    i64 = [np.ascontiguousarray(a, dtype=np.int64).reshape(-1) for a in (number, alt, args, where, last,
                                                                         input_index, ostart, order)]
    if [len(a) for a in i64[:-1]] != [n, n, 3 * n, n, n, n, n + 1]:   # what the C function reads
        raise VmError("the VM's encoder: arrays of the wrong lengths")
    code = np.empty((int(cap), S.WIDTH), dtype=np.int32)
    trace_of = np.empty(int(cap), dtype=np.int64)
    work = np.empty(6 * n + 1, dtype=np.int64)
    regs = np.zeros(2, dtype=np.int64)
    buf = ffi.from_buffer
    m = lib.xc_vm_encode(n, *(buf("int64_t[]", a) for a in i64), len(i64[-1]), buf("int[]", code),
                         buf("int64_t[]", trace_of), int(cap), buf("int64_t[]", work), buf("int64_t[]", regs))
    if m < 0:  # a bug of ours: _encode makes the arrays
        raise VmError(f"the VM's encoder refused its arrays: {'too little room' if m == -4 else 'out of range'}")
    return code[:m].copy(), trace_of[:m].copy(), int(regs[0]), int(regs[1])


# The ops an encoded trace may hold, as small integers: the leaves, then the VM's ops
_OP_NAMES = ("input", "const", "copy") + tuple(S.vm_ops())
_OP_INDEX = {name: k for k, name in enumerate(_OP_NAMES)}
_CONST, _COPY, _FIRST_OP = 1, 2, 3
_ARITY = np.array([0, 0, 1] + [_ops.OPS[name].arity for name in _OP_NAMES[3:]], dtype=np.int64)
# opcode by op index and by which arguments are constants (bit j: argument j); -1: all
# are (or a leaf)
_BY_KIND_MASK = np.array([[S.NUMBER.get((name, "".join("rk"[m >> j & 1] for j in range(_ARITY[k]))), -1)
                           if k >= _FIRST_OP and m < 1 << _ARITY[k] else -1 for m in range(8)]
                          for k, name in enumerate(_OP_NAMES)], dtype=np.int64)


def _op_kinds(instrs) -> np.ndarray:
    """_OP_INDEX of every instruction's op; ValueError naming the first the VM cannot run."""
    index = _OP_INDEX.get
    kind = np.fromiter((index(ins[0], -1) if ins[3] == () else -2 for ins in instrs), dtype=np.int64,
                       count=len(instrs))
    bad = np.flatnonzero(kind < 0)
    if len(bad):
        i = int(bad[0])
        ins = instrs[i]
        if ins.shape != ():
            raise ValueError(f"backend 'vm' runs traces of scalars over a batch of points; this trace has a "
                             f"value of shape {ins.shape} (v{i}: {ins.op}): use backend='c' or 'numpy'")
        raise ValueError(f"backend 'vm' cannot run {ins.op!r} (v{i}): not an elementwise op of the table "
                         f"with a C form")
    return kind


_KINDS = np.array([S.field_kinds(c) for c in S.OPCODES], dtype=np.int64)


def check(program: Program) -> None:
    """Raise VmError unless every field of every instruction is within its bound (as the
    VM checks on each call: vm_source's xc_vm_check), the arrays of the types it reads."""
    code, consts = program.code, program.consts
    if not (isinstance(code, np.ndarray) and code.dtype == np.int32 and code.ndim == 2
            and code.shape[1] == S.WIDTH and code.flags.c_contiguous):
        raise VmError(f"VM program: the code must be a C-contiguous int32 array of shape (m, {S.WIDTH})")
    if not (isinstance(consts, np.ndarray) and consts.dtype == np.float64 and consts.ndim == 1
            and consts.flags.c_contiguous):
        raise VmError("VM program: the constants must be a C-contiguous float64 vector")
    if not code.size:
        return
    ops = code[:, 0].astype(np.int64)
    if ops.min() < 0 or ops.max() >= len(S.OPCODES):
        bad = int(np.flatnonzero((ops < 0) | (ops >= len(S.OPCODES)))[0])
        raise VmError(f"VM program: instruction {bad} has no opcode {int(ops[bad])}")
    limits = np.array([1, program.nregs, len(consts), program.n_in, program.n_out], dtype=np.int64)
    kinds = _KINDS[ops]
    fields = code[:, 1:].astype(np.int64)
    bad = (fields < 0) | (fields >= limits[kinds])
    reads_own = (kinds[:, :1] == S.REG) & (kinds[:, 1:] == S.REG) & (fields[:, 1:] == fields[:, :1])
    wrong = bad.any(axis=1) | reads_own.any(axis=1)
    if wrong.any():
        k = int(np.flatnonzero(wrong)[0])
        raise VmError(f"VM program: instruction {k} {code[k].tolist()} has a field out of range "
                      f"(registers {program.nregs}, constants {len(consts)}, inputs {program.n_in}, "
                      f"outputs {program.n_out}) or writes a row it reads")


def listing(trace: Trace, program: Program, description: str = "", squared: bool = False) -> str:
    """The program, one instruction a line, with the trace variable each computes
    (`g.source` of a VM function): registers r0.., constants k0.. (their values in the
    header), inputs in0.., outputs out0..; names through naming (user text escaped).
    `squared`: the trace is in c_backend.c_forms's form already."""
    trace = trace if squared else c_forms(trace)
    named = [ins.op != "const" for ins in trace.instrs]
    names = assign_names(trace, named, set(C_RESERVED))
    spell = {S.REG: "r{%d}", S.CONST: "k{%d}", S.INPUT: "in{%d}", S.OUTPUT: "out{%d}"}
    forms = []
    for c in S.OPCODES:
        shown = [spell[k] % (f + 1) for f, k in enumerate(S.field_kinds(c)) if k]
        forms.append(f"{{0:6d}}  {c.move or c.op:<12} {shown[0]:<6} <- {', '.join(shown[1:])}")
    consts = ", ".join(f"k{k} = {float(v)!r}" for k, v in enumerate(program.consts))
    lines = [f"# exprcompiler tape VM program: {comment_text(description, 160, c=True)}" if description
             else "# exprcompiler tape VM program",
             f"# {len(program.code)} instructions, {program.nregs} registers of {block_size(program.nregs)} "
             f"points, {len(program.consts)} constants{': ' if consts else ''}{consts}",
             "# inputs:  " + ", ".join(f"in{k} = {comment_text(nm, 40, c=True)}"
                                       for k, (nm, _) in enumerate(trace.inputs)),
             "# outputs: " + ", ".join(f"out{k} = {comment_text(nm, 40, c=True)}"
                                       for k, (nm, _) in enumerate(trace.outputs))]
    names = [f"   # {nm}" if nm else "" for nm in names] + [""]   # trace_of -1: the last, no comment
    forms = [f.format for f in forms]
    lines += [forms[op](pc, d, a, b, c) + names[v] for pc, op, d, a, b, c, v in
              zip(range(len(program.code)), *program.code.T.tolist(), program.trace_of)]
    return "\n".join(lines) + "\n"


def block_size(nregs: int) -> int:
    """Points per block for a program of `nregs` registers: a multiple of vm_source.LANES.
    Long rows amortize the dispatch of each instruction; thousands of rows (a reverse
    sweep keeps its primal values) want shorter ones, which stay in cache. Measured with
    `python benchmarks/bench_vm.py --ops 1000 10000 --links 3 6 10 20 --blocks-only`
    (10^4 points, thread CPU ms, min of 7 interleaved rounds, load 3.5), blocks of
    32 / 64 / 128 / 256 / 512 points:
      3-link Jacobian (29 registers)    1.01 / 0.85 / 0.75 / 0.78 / 0.75
      6-link (92)                       5.91 / 4.61 / 4.41 / 4.18 / 3.78
      10-link (232)                     11.3 / 10.9 / 8.62 / 8.75 / 8.15
      20-link (862)                     41.2 / 26.9 / 29.6 / 30.2 / 36.8
      10^3-op gradient (596)            18.6 / 14.4 / 12.3 / 11.8 / 12.8
      10^4-op gradient (5,959)          205 / 181 / 203 / 218 / 237"""
    return 256 if nregs <= 256 else 128 if nregs <= 2048 else 64


_LIBRARY: list = []


def library():
    """(ffi, lib) of the VM, compiled on first use (through the cache) and kept."""
    if not _LIBRARY:
        from . import c_build
        _LIBRARY.append(c_build.load(S.generate(), S.DECL))
    return _LIBRARY[0]


def _raise(rc: int, n: int) -> None:
    if rc == -1:
        raise MemoryError(f"the tape VM could not allocate its registers for {n} points")
    raise VmError(f"the tape VM refused the program: {S.ERRORS.get(rc, f'error {rc}')}")


def _new(ffi, lib, code: np.ndarray, consts: np.ndarray, nregs: int, n_in: int, n_out: int):
    """(the program loaded into the VM: an opaque `xc_vm_program *`, freed with its
    last reference; or None, the VM's return code): xc_vm_new checks it and copies it.
    The arrays must be of the types it reads (a hand-made Program's are checked here,
    before C reads len(code) rows of them); they are copied where not contiguous and
    aligned."""
    if not (isinstance(code, np.ndarray) and code.dtype == np.int32 and code.ndim == 2
            and code.shape[1] == S.WIDTH and isinstance(consts, np.ndarray) and consts.dtype == np.float64
            and consts.ndim == 1):
        raise VmError(f"VM program: expected int32 code of shape (m, {S.WIDTH}) and a float64 vector of "
                      f"constants, got {getattr(code, 'dtype', type(code).__name__)} {np.shape(code)} and "
                      f"{getattr(consts, 'dtype', type(consts).__name__)} {np.shape(consts)}")
    code, consts = c_array(code), c_array(consts)
    rc = ffi.new("int *")
    handle = lib.xc_vm_new(ffi.from_buffer("int[]", code), len(code), ffi.from_buffer("double[]", consts),
                           len(consts), nregs, n_in, n_out, rc)
    if handle == ffi.NULL:
        return None, rc[0]
    return ffi.gc(handle, lib.xc_vm_free), 0


class Runner:
    """A program loaded into the VM library (checked there once: vm_source's xc_vm_new):
    `kernel(n, threads, in0, st0, ..., out0, os0, ...)` as c_run.runner calls a C
    kernel (so batches, output blocks and the thread choice are c_build's), and
    `point_entry()`: point(floats) -> floats for one point. The loaded program is
    reachable only through these two: the VM's run entries take nothing else."""

    def __init__(self, program: Program):
        self.program = program
        self.ffi, self.lib = ffi, lib = library()
        handle, rc = _new(ffi, lib, program.code, program.consts, program.nregs, program.n_in, program.n_out)
        if handle is None:
            if rc == -2:
                check(program)  # says which instruction
            _raise(rc, 0)
        self._handle = handle
        self.block = block_size(program.nregs)

    def kernel(self, n, threads, *pairs):
        p, new = self.program, self.ffi.new
        if len(pairs) != 2 * (p.n_in + p.n_out):
            raise ValueError(f"VM kernel: expected {p.n_in} inputs and {p.n_out} outputs with their strides")
        k = 2 * p.n_in
        rc = self.lib.xc_vm_run(self._handle, n, self.block, threads, p.n_in, new("double *[]", pairs[0:k:2]),
                                new("ptrdiff_t[]", pairs[1:k:2]), p.n_out, new("double *[]", pairs[k::2]),
                                new("ptrdiff_t[]", pairs[k + 1::2]))
        if rc == -1:
            return rc   # c_run.runner says it: no memory
        if rc:
            _raise(rc, n)
        return 0

    def point_entry(self):
        """point(floats) -> floats: one point through the VM's point entry, the scalar
        switch (vm_source's xc_vm_scalar), with the names it uses bound once. One
        buffer per call (calls may run at once in several threads): inputs, then outputs."""
        p, ffi = self.program, self.ffi
        n_in, n_out, handle, run = p.n_in, p.n_out, self._handle, self.lib.xc_vm_point
        new, array, size = ffi.new, ffi.typeof("double[]"), p.n_in + p.n_out
        if n_out < 128:
            unpack = ffi.unpack
        else:  # the same floats through NumPy: 903 of them (a 20-link Jacobian) in 13 us, not 18
            frombuffer, buffer, nbytes = np.frombuffer, ffi.buffer, 8 * n_out

            def unpack(out, n):
                return frombuffer(buffer(out, nbytes)).tolist()

        def point(values) -> list:
            if len(values) != n_in:
                raise ValueError(f"VM point: expected {n_in} numbers, got {len(values)}")
            buf = new(array, size)
            buf[0:n_in] = values
            out = buf + n_in
            rc = run(handle, n_in, buf, n_out, out)
            if rc:
                _raise(rc, 1)
            return unpack(out, n_out)
        return point


def run_raw(code: np.ndarray, consts: np.ndarray, nregs: int, inputs: list, n_out: int,
            threads: int = 1, block: Optional[int] = None, outs: Optional[list] = None) -> tuple[int, list]:
    """(the VM's return code, the outputs) of a program given as arrays, checked only for
    what a C call needs (types, lengths), not for its fields: the VM's own check when it
    loads the program (xc_vm_new) is then all that stands between a corrupted program
    and memory (the tests corrupt programs). `outs`: float64 arrays of the batch's size
    to write into (else new ones)."""
    ffi, lib = library()
    code, consts = np.asarray(code, dtype=np.int32), np.asarray(consts, dtype=np.float64)
    if code.ndim != 2 or code.shape[1] != S.WIDTH:
        raise ValueError(f"code: expected shape (m, {S.WIDTH})")
    arrays = [c_array(a, np.float64).reshape(-1) for a in inputs]
    n = max((a.size for a in arrays), default=1)
    if any(a.size not in (1, n) for a in arrays):
        raise ValueError("inputs: every array of one size, or of size 1")
    if outs is None:
        outs = [np.empty(n) for _ in range(n_out)]
    if len(outs) != n_out or any(not (isinstance(o, np.ndarray) and o.dtype == np.float64 and o.shape == (n,)
                                      and o.flags.c_contiguous and o.flags.aligned and o.flags.writeable)
                                 for o in outs):
        raise ValueError(f"outs: expected {n_out} writable, contiguous, aligned float64 arrays of {n} points")
    handle, rc = _new(ffi, lib, code, consts, nregs, len(arrays), n_out)
    if handle is None:
        return rc, outs
    rc = lib.xc_vm_run(handle, n, block_size(nregs) if block is None else block, threads, len(arrays),
                       ffi.new("double *[]", [ffi.from_buffer("double[]", a) for a in arrays]),
                       ffi.new("ptrdiff_t[]", [int(a.size == n) for a in arrays]), n_out,
                       ffi.new("double *[]", [ffi.from_buffer("double[]", o) for o in outs]),
                       ffi.new("ptrdiff_t[]", [1] * n_out))
    return rc, outs


class VmArtifact(NamedTuple):
    """What VmBackend.generate gives its load: the program and its listing (`source`)."""
    source: str
    func_name: str
    params: tuple
    program: Program
    description: str = ""


def generate(trace: Trace, *, func_name: str, description: str = "", dtype=None) -> VmArtifact:
    """The registry's generate: the trace encoded (the VM computes in float64 only)."""
    if dtype is not None:
        raise ValueError(f"backend 'vm' computes in float64; dtype={np.dtype(dtype).name!r} needs backend='c' or "
                         f"'numpy'")
    trace = c_forms(trace)
    program = _encode(trace)
    params = tuple(map(param_alias, trace.input_names))
    return VmArtifact(listing(trace, program, description, squared=True), func_name, params, program, description)


def vm_kernel(artifact: VmArtifact, threads: Optional[int] = None):
    """The registry's Kernel of a program: batches through c_run.runner (threads=None:
    its ThreadChoice), one point through the VM's point entry. No packed entry: .at()
    goes through the point."""
    from . import c_run
    from .registry import Kernel
    program = artifact.program
    runner = Runner(program)
    run = c_run.runner(runner.ffi, runner.kernel, program.n_out, threads)

    def fn(*arrays):
        """The program on arrays in input order: one array per output."""
        arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
        batch = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        return run(arrays, batch)
    return Kernel(fn, artifact.source, artifact.params, run=run, point=runner.point_entry(), warns=False)


__all__ = ["generate", "VmArtifact", "encode", "check", "listing", "Program", "VmError", "Runner", "run_raw",
           "vm_kernel", "library", "block_size"]

