"""The tape VM, encoding half: a scalar trace becomes a program of the one compiled
interpreter (vm_source.py) instead of a C kernel of its own.

Where it sits: the "vm" backend of registry.py. `encode(trace)` is the whole build of
a function: one pass over the trace giving an int32 array of instructions (opcode,
dst, a, b, c), a float64 array of constants and a register count; `load` runs it
through the VM library, which c_build compiles once per machine and cache (the first
VM function pays for it; see bench_vm.py) and later loads from the cache.

Registers are rows of a block of points. They are allocated by liveness: a row is
free again after the last instruction that reads its value, and the next result
takes the most recently freed row (a stack: warm in cache), never a row its own
instruction reads (the VM's loops are `restrict`). So a trace needs as many rows as
values are live at once, not one per operation. An input is loaded into a row just
before its first use; an output is stored as soon as its value is computed; copies
are the row of what they copy; x**2 is x*x (c_backend.squares), as in the C kernel.

Safety: user text never reaches the VM's source (it has none of ours); every field of
the program is checked here when it is made (`check`) and by the VM on every call,
which returns an error code instead of running a program with a field out of range.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .. import ops as _ops
from ..errors import ExprcError
from ..trace.ir import Trace
from . import vm_source as S
from .c_backend import squares
from .naming import assign_names, comment_text
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
    return _encode(squares(trace))


# opcode by op and by which arguments are constants (bit j: argument j), -1: all are
_BY_MASK = {name: [S.NUMBER.get((name, "".join("rk"[m >> j & 1] for j in range(_ops.OPS[name].arity))), -1)
                   for m in range(1 << _ops.OPS[name].arity)] for name in S.vm_ops()}
_LEAVES = frozenset(("input", "const", "copy"))


def _encode(trace: Trace) -> Program:
    """encode, of a trace whose squares are c_backend.squares's already."""
    instrs = trace.instrs
    n = len(instrs)
    for i, ins in enumerate(instrs):
        if ins.shape != ():
            raise ValueError(f"backend 'vm' runs traces of scalars over a batch of points; this trace has a "
                             f"value of shape {ins.shape} (v{i}: {ins.op}): use backend='c' or 'numpy'")
        if ins.op not in _BY_MASK and ins.op not in _LEAVES:
            raise ValueError(f"backend 'vm' cannot run {ins.op!r} (v{i}): not an elementwise op of the table "
                             f"with a C form")
    where = [-1] * n                 # variable -> what holds it: a row, or a constant's index
    is_const = [ins.op == "const" for ins in instrs]
    consts: dict = {}
    alias = list(range(n))           # copies are what they copy
    last = [-1] * n                  # the last instruction reading each (aliased) variable
    for i, ins in enumerate(instrs):
        op = ins.op
        if op == "const":
            where[i] = consts.setdefault(float(ins.value).hex(), len(consts))  # -0.0, NaN kept apart
        elif op == "copy":
            a = alias[i] = alias[ins.args[0]]
            is_const[i], where[i] = is_const[a], where[a]
        else:
            for a in ins.args:
                last[alias[a]] = i
    stores: dict = {}                # variable -> the outputs it is
    for k, (_, v) in enumerate(trace.outputs):
        stores.setdefault(alias[v], []).append(k)
    input_index = {v: k for k, (_, v) in enumerate(trace.inputs)}

    code: list = []
    trace_of: list = []
    free: list = []
    pop, push = free.pop, free.append
    nregs = 0
    emit, mark = code.extend, trace_of.append
    load, load_const, store = S.LOAD, S.LOAD_CONST, S.STORE
    for i, ins in enumerate(instrs):
        op = ins.op
        if op in _LEAVES or (last[i] < 0 and i not in stores):
            continue  # leaves, names, dead values
        args = [alias[a] for a in ins.args]
        mask, fields, temporary = 0, [], -1
        for j, a in enumerate(args):
            if is_const[a]:
                mask |= 1 << j
            elif where[a] < 0:  # an input, first used here
                if free:
                    row = pop()
                else:
                    row, nregs = nregs, nregs + 1
                emit((load, row, input_index[a], 0, 0))
                mark(-1)
                where[a] = row
            fields.append(where[a])
        number = _BY_MASK[op][mask]
        if number < 0:  # all constants: the first into a row
            if free:
                temporary = pop()
            else:
                temporary, nregs = nregs, nregs + 1
            emit((load_const, temporary, fields[0], 0, 0))
            mark(-1)
            fields[0] = temporary
            number = _BY_MASK[op][mask & ~1]
        if free:
            row = pop()
        else:
            row, nregs = nregs, nregs + 1
        where[i] = row
        fields += (0, 0, 0)
        emit((number, row, fields[0], fields[1], fields[2]))
        mark(i)
        if i in stores:
            for k in stores[i]:
                emit((store, k, row, 0, 0))
                mark(-1)
        if last[i] <= i:  # read by nothing after: an output only
            push(row)
        for j, a in enumerate(args):
            if last[a] == i and not is_const[a] and a not in args[:j]:
                push(where[a])
        if temporary >= 0:
            push(temporary)
    # outputs that are inputs or constants: at the end
    for v, ks in stores.items():
        if instrs[v].op == "input":  # (loaded again: its row may be another value's by now)
            row = pop() if free else nregs
            nregs += row == nregs
            emit((load, row, input_index[v], 0, 0))
            mark(-1)
            push(row)
            for k in ks:
                emit((store, k, row, 0, 0))
                mark(-1)
        elif is_const[v]:
            for k in ks:
                emit((S.STORE_CONST, k, where[v], 0, 0))
                mark(-1)
    values = np.array([float.fromhex(h) for h in consts], dtype=np.float64)
    program = Program(np.array(code, dtype=np.int32).reshape(-1, S.WIDTH), values, nregs,
                      len(trace.inputs), len(trace.outputs), tuple(trace_of))
    check(program)
    return program


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
    `squared`: the trace is c_backend.squares's already."""
    trace = trace if squared else squares(trace)
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
    append = lines.append
    for pc, (fields, v) in enumerate(zip(program.code.tolist(), program.trace_of)):
        line = forms[fields[0]].format(pc, *fields[1:])
        append(f"{line}   # {names[v]}" if v >= 0 and names[v] else line)
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


class Runner:
    """A program bound to the VM library: `kernel(n, threads, in0, st0, ..., out0, os0,
    ...)` as c_build.runner calls a C kernel (so batches, output blocks and the thread
    choice are c_build's), and `point_entry()`: point(floats) -> floats for one point."""

    def __init__(self, program: Program):
        check(program)
        self.program = program
        self.ffi, self.lib = ffi, lib = library()
        self._code = ffi.cast("int *", program.code.ctypes.data)   # the arrays are kept by self.program
        self._consts = ffi.cast("double *", program.consts.ctypes.data)
        self._head = (self._code, len(program.code), self._consts, len(program.consts), program.nregs)
        self.block = block_size(program.nregs)

    def kernel(self, n, threads, *pairs):
        p, new = self.program, self.ffi.new
        if len(pairs) != 2 * (p.n_in + p.n_out):
            raise ValueError(f"VM kernel: expected {p.n_in} inputs and {p.n_out} outputs with their strides")
        k = 2 * p.n_in
        rc = self.lib.xc_vm_run(*self._head, n, self.block, threads, p.n_in, new("double *[]", list(pairs[0:k:2])),
                                new("ptrdiff_t[]", list(pairs[1:k:2])), p.n_out,
                                new("double *[]", list(pairs[k::2])), new("ptrdiff_t[]", list(pairs[k + 1::2])))
        if rc == -1:
            return rc   # c_build.runner says it: no memory
        if rc:
            _raise(rc, n)
        return 0

    def point_entry(self):
        """point(floats) -> floats: one point through the VM's point entry, the scalar
        switch (vm_source's xc_vm_scalar), with the names it uses bound once."""
        p, ffi = self.program, self.ffi
        n_in, n_out, head, run = p.n_in, p.n_out, self._head, self.lib.xc_vm_point
        new, unpack, array = ffi.new, ffi.unpack, ffi.typeof("double[]")

        def point(values) -> list:
            if len(values) != n_in:
                raise ValueError(f"VM point: expected {n_in} numbers, got {len(values)}")
            out = new(array, n_out)
            rc = run(*head, n_in, new(array, values), n_out, out)
            if rc:
                _raise(rc, 1)
            return unpack(out, n_out)
        return point


def run_raw(code: np.ndarray, consts: np.ndarray, nregs: int, inputs: list, n_out: int,
            threads: int = 1, block: Optional[int] = None, outs: Optional[list] = None) -> tuple[int, list]:
    """(the VM's return code, the outputs) of a program given as arrays, checked only for
    what a C call needs (types, lengths), not for its fields: the VM's own check is then
    all that stands between a corrupted program and memory (the tests corrupt programs).
    `outs`: float64 arrays of the batch's size to write into (else new ones)."""
    ffi, lib = library()
    code = np.ascontiguousarray(code, dtype=np.int32)
    consts = np.ascontiguousarray(consts, dtype=np.float64)
    if code.ndim != 2 or code.shape[1] != S.WIDTH:
        raise ValueError(f"code: expected shape (m, {S.WIDTH})")
    arrays = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in inputs]
    n = max((a.size for a in arrays), default=1)
    if any(a.size not in (1, n) for a in arrays):
        raise ValueError("inputs: every array of one size, or of size 1")
    if outs is None:
        outs = [np.empty(n) for _ in range(n_out)]
    if len(outs) != n_out or any(not (isinstance(o, np.ndarray) and o.dtype == np.float64 and o.shape == (n,)
                                      and o.flags.c_contiguous and o.flags.writeable) for o in outs):
        raise ValueError(f"outs: expected {n_out} writable contiguous float64 arrays of {n} points")
    rc = lib.xc_vm_run(ffi.cast("int *", code.ctypes.data), len(code), ffi.cast("double *", consts.ctypes.data),
                       len(consts), nregs, n, block_size(nregs) if block is None else block, threads, len(arrays),
                       ffi.new("double *[]", [ffi.cast("double *", a.ctypes.data) for a in arrays]),
                       ffi.new("ptrdiff_t[]", [int(a.size == n) for a in arrays]), n_out,
                       ffi.new("double *[]", [ffi.cast("double *", o.ctypes.data) for o in outs]),
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
    trace = squares(trace)
    program = _encode(trace)
    params = tuple(name.replace(".", "_") for name in trace.input_names)
    return VmArtifact(listing(trace, program, description, squared=True), func_name, params, program, description)


def vm_kernel(artifact: VmArtifact, threads: Optional[int] = None):
    """The registry's Kernel of a program: batches through c_build.runner (threads=None:
    its ThreadChoice), one point through the VM's point entry. No packed entry: .at()
    goes through the point."""
    from . import c_build
    from .registry import Kernel
    program = artifact.program
    runner = Runner(program)
    run = c_build.runner(runner.ffi, runner.kernel, program.n_out, threads)

    def fn(*arrays):
        """The program on arrays in input order: one array per output."""
        arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
        batch = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        return run(arrays, batch)
    return Kernel(fn, artifact.source, artifact.params, run=run, point=runner.point_entry(), warns=False)


__all__ = ["generate", "VmArtifact", "encode", "check", "listing", "Program", "VmError", "Runner", "run_raw",
           "vm_kernel", "library", "block_size"]

