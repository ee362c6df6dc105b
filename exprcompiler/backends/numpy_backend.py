"""NumPy backend: a trace becomes a readable Python function over NumPy arrays.

One statement per named trace variable (rule-internal temporaries are inlined into
their single use), user names kept where they are plain identifiers (naming.py),
constants at round-trip precision, no timestamps: two runs give byte-identical
source. The source is registered with
`linecache`, so tracebacks and `inspect.getsource` show it.

A body of plain lines (`name = expression`: no shared exp, no a.dot(b)) is rendered
as keys, each line's text with `{}` for its variables and constants, and the trace
variables in those holes (trace.render.Renderer's `slots`); the text is the keys
formatted with the names, at once. A long function (PROGRAM_ABOVE) gets the statement
program of those keys and holes instead (numpy_program.Program), which `load` runs
with no text at all (`generated`; registry.Artifact carries it): its text is made
from the program when something asks for it (program_text.py). So does a function of
plain lines of more than TIER_FROM named variables (the batch function and the one-point
variant), until its calls have paid for compiling it (numpy_tier.py).

The text's pieces (spellings, header, lines and keys, the return line) are
numpy_lines.py's; a one-point variant made from its batch function's, numpy_point.py's.
"""

from __future__ import annotations

import linecache
import weakref
from array import array
from itertools import chain, count
from operator import itemgetter
from typing import Optional, Union

import numpy as np

from ..code_store import blake2b
from ..heap_release import release_freed
from ..trace.ir import Trace, gc_paused
from ..trace.ir_trace import instructions
from ..trace.render import named_array, use_counts_and_reads
# (generate reads named_array; tests and benches find these here)
from ..trace.render import named_vars, use_counts  # noqa: F401
from ..trace.columns import keep, kept
from ..trace.render_bulk import FlatSlots, OpCodes, op_codes, op_codes_of_table, table_codes
from .c_forms import QUOTIENT_OPS, hypot_quotients
from .name_firsts import Aliases
from .name_later import input_names, later_texts, run_slots
from .naming import assign_names
from .numpy_program import Program, load_program, load_statements
from .numpy_tier import compile_on_use
from .program_text import LazySource, Lines, Texts, formatted, text_of
from .numpy_render import NumpyRenderer
from .numpy_shares import dead_rows, hoist_shared, share_logs, shared_exps
# (the rewrites and the runner live beside; _prepared_codes calls the rewrites by these names, which
# the benches time, and callers find the runner's names here)
from .numpy_rewrites import _dots, _small_powers, _static_sums, squared_columns
from .numpy_run import BLOCK, MEMORY, _blocked, _flatten, block_for, numpy_runner  # noqa: F401

# (the text's pieces and spellings, numpy_lines.py, and the one-point variant made from
# its batch function's, numpy_point.py: generated calls them by these names, which tests
# replace; BATCH, MATH and RESERVED are read from here)
from .numpy_lines import (BATCH, FALLBACK, MATH, POINT_SPELLING, RESERVED, SPELLING, UNGUARDED,  # noqa: F401
                          _BATCH_ONLY, _MARKED, Generated, ReturnSpec, _guarded, _head, _head_ops, _keeps_inputs,
                          _keyed_lines, _program_slots, _reserved, _respelled, _slot_list, _slots,
                          _text_lines)
from .numpy_point import _point_from, _ProgramParts, _TextParts


def generate(trace: Trace, *, func_name: str = "f", description: str = "",
             returns: Optional[ReturnSpec] = None, point: bool = False,
             guarded: bool = False) -> tuple[str, list[str]]:
    """Python source of `trace` as a function; returns (source, parameter names).

    `returns` nests output positions, e.g. (0, (1, 2)) -> `return v6, (x1_bar, x2_bar)`;
    by default one output is returned bare and several as a flat tuple. `point`: the
    one-point variant over Python floats (see MATH); `guarded`, with it: its body in a
    `try` whose `except` returns FALLBACK(*inputs) (see _guarded, load_point)."""
    source, params, _ = generated(trace, func_name=func_name, description=description, returns=returns,
                                  point=point, guarded=guarded, lazy=False)
    return text_of(source), params


@gc_paused()
def generated(trace: Trace, *, func_name: str = "f", description: str = "",
              returns: Optional[ReturnSpec] = None, point: bool = False, guarded: bool = False,
              like: Optional[Program] = None, lazy: bool = True, keep: Optional[list] = None,
              made_from=None) -> Generated:
    """generate's source and parameter names, and for a long function of plain lines
    (`name = expression`, as most large gradients are) the statement program that
    load(source, func_name, program=...) runs without the text; its source is then a
    program_text.LazySource, the text made only when asked for (str()). `like`: a
    program of the same trace (the batch function's, for its one-point variant) whose
    statements' slots and texts this one's share where they are the same: its names
    and lines, spelled otherwise. `lazy`: a shorter function of plain lines is such a
    program too, which load compiles on use (numpy_tier.py); a guarded one-point
    variant's then takes no `try` (load_point guards it from outside). `keep`: a list
    to which a batch function of plain lines adds what its one-point variant is made
    from (`made_from`, with point=True: _point_from), if it can be."""
    reserved = _reserved(func_name, guarded)
    if point and made_from is not None:
        made = _point_from(made_from, func_name, description, returns, reserved, guarded, lazy)
        if made is not None:
            return made
    given = trace
    trace, ops, codes, given_ops = _prepared_ops(trace, point)   # (the stages below read the ops from codes)
    uses, reads = use_counts_and_reads(trace, take=True)   # (reads: every argument, for assign_names)
    uses = uses.astype(np.int32)   # (held through assign_names: 4 bytes a variable, not 8)
    named_flags = named_array(trace, uses, codes)
    # each gets a line, after its exp's (asked only where it may find one: it reads instructions)
    shared = {} if point or not ops & _SHARES_EXPS else shared_exps(trace, ops, codes)
    named_flags[list(shared)] = True
    dead = dead_rows(trace, shared, uses) if shared else []
    named_flags[dead] = False
    plain = not shared and "matmul" not in ops   # then every line is `name = its right-hand side`
    # The plain lines of a function that may be long enough for a statement program (a
    # line per named variable, but the inputs'), or of a batch function of more than
    # TIER_FROM named variables (`lazy`: compiled on use), are rendered as keys with the
    # slots of their holes (Renderer's `slots`): the program's templates and arguments,
    # and the text is the keys formatted. A shorter one is compiled, and its lines are
    # rendered as text: keys and one format cost more (generate 5.9 -> 9.4 µs an operation).
    n_named = int(np.count_nonzero(named_flags))
    keyed = plain and n_named > min(PROGRAM_ABOVE - _KEYED_MARGIN, TIER_FROM if lazy else PROGRAM_ABOVE)
    # A program compiled on use is named when its text is made, and runs on slots that
    # follow no name (name_later.py): its parameters' names are found without the
    # naming pass (at 10² operations assign_names was ~0.1 ms of a generate). A longer
    # one (run as a program for good) is named now: the trace would be held for its text.
    params = input_names(trace, reserved) if keyed and lazy and n_named <= PROGRAM_ABOVE - _KEYED_MARGIN else None
    constant = codes.among("const") if keyed else None   # (read by run_slots and _slots)
    run = None if params is None else run_slots(named_flags, (named_flags | constant).nonzero()[0], uses, reads, codes)
    later = run is not None
    # (lines, or a program compiled on use, rendered with markers: its variant made from them)
    marked = keep is not None and not point and plain and (later or not keyed) and _MARKED is not None \
        and given_ops.isdisjoint(_BATCH_ONLY)
    # (the flags as a list of bools, 8 bytes a variable, only for the renderer of texts)
    named = None if keyed else named_flags.tolist()
    aliases: Optional[Aliases] = Aliases() if keyed and not later else None
    guard = False
    if later:
        names = None
    else:   # (a long function's as codes, whose strings are made a chunk at a time: name_codes)
        names = assign_names(trace, named_flags if keyed else named, reserved, uses, aliases, reads, coded=keyed,
                             codes=codes)
        inputs = [v for _, v in trace.inputs]
        params = list(map(names.__getitem__, inputs))
        # the one-point variant's body in a `try` (see _guarded), but where it rebinds an
        # input's name (`except` would not see it as given); none in a program compiled on use
        guard = point and guarded and _keeps_inputs(names, inputs)
        del inputs
    if not keyed:
        del reads
        reads = None
    elif not later:   # (the renderer of keys takes named_flags, and needs no use counts without shared exps)
        del uses
        uses = None
    spell = POINT_SPELLING if point else _MARKED if marked else SPELLING
    slots = texts = constants = later_args = None
    if keyed:
        # The keys' holes need only the slots; the text, only the names and constants by
        # slot, in one str (program_text.Texts). So no list of every variable's name or
        # slot outlives this, and no str per name is made but a chunk at a time (the
        # renderer's end was generate's peak of memory: at 10⁵ operations 1.80 kB an
        # operation with them, 1.45 without, in tracemalloc's count; then assign_names'
        # list of names, 155 bytes an operation of it).
        # (Named later: the renderer's slots are the texts', one a variable.)
        slots, first, held_constants = _slots(aliases, named_flags, constant)
        constants = {}   # slot -> text, as the renderer spells them
        constant_texts = {}   # variable -> text, for names made later
        instrs = instructions(trace)
        for i in held_constants.tolist():
            text = constants[int(slots[i])] = spell.const(instrs[i].value)
            if later:
                constant_texts[i] = text
            else:
                names.set_text(i, text)
        # (their str made when the text is first asked for, by a reader or the compile on
        # use: until then their codes, 4 bytes a slot; at 10³ operations ~0.2 ms spared)
        slotted = first.nonzero()[0]   # (np.flatnonzero's Python layers: a fixed cost)
        if later:
            texts = Texts.made_by(later_texts(trace, named_flags, reserved, uses, reads, codes, slotted,
                                              constant_texts))
            size = run[1]
            if marked:   # (what the texts are made from, as the variant's will be: held by them anyway)
                later_args = (trace, named_flags, uses, reads, codes, slotted, constant_texts)
        else:
            texts, size = Texts.made_by(names.deferred(slotted)), len(slotted)
        del names, first, aliases, instrs, slotted, constant_texts
        names = uses = None   # (the renderer of keys asks for none)
    if reads is not None:   # handed over in a list, which the bulk renderer empties (render_bulk.bulk_keys)
        reads = [reads]
    r = NumpyRenderer(trace, spell, None if names is None else names.__getitem__,
                      named=named_flags if keyed else named, shared=shared,
                      taken=set(names) | reserved if shared else reserved, uses=uses.tolist() if shared else None,
                      rhs_all="    " if plain else True, slots=slots, reads=reads, codes=codes, dead=dead)
    del reads, codes

    if returns is None:
        returns = 0 if len(trace.outputs) == 1 else tuple(range(len(trace.outputs)))
    head_ops = _head_ops(trace, r, ops)
    head = "\n".join(_head(*head_ops, point, description, func_name, params))
    if not keyed:
        body = _text_lines(trace, r, names, returns, plain)
        if marked:
            keep.append(_TextParts(body[:-1], [r.expr(v)[0] for _, v in trace.outputs], head_ops, func_name,
                                   params, names, [v for _, v in trace.inputs]))
            body = _respelled(body, SPELLING)
        del r
        if guard and _fits_try(len(body)):
            body = _guarded(body, params, returns)
        return Generated("\n".join([head, *body, ""]), params, None)
    formats, numbered, statement_slots, returned = _keyed_lines(trace, r, returns)
    outputs = None
    if marked:
        marked_formats, formats = formats[:-1], _respelled(formats, SPELLING)
        if len(set(formats)) < len(formats):   # (two keys spelled alike: rendered with SPELLING itself)
            return generated(given, func_name=func_name, description=description, returns=returns,
                             point=point, guarded=guarded, like=like, lazy=lazy)
        outputs = [(r.expr(v)[0], tuple(r.holes[v])) for _, v in trace.outputs]
    param_slots = tuple(int(slots[v]) for _, v in trace.inputs)
    # (the renderer's keys and arrays, and the trace as _prepared rewrote it, a copy of
    # its tuple of instructions: gone before the program is made, but for names made later)
    del r, trace, slots, named_flags
    # (the renderer's freed arrays, holes in the heap, given back: the slot list's ints
    # go to pymalloc's arenas, which cannot use them; heap_release.py)
    release_freed(len(statement_slots.flat) if type(statement_slots) is FlatSlots else 0)
    if later and type(statement_slots) is not FlatSlots:
        # (the per-variable renderer's tuples read once into an array: its bytes are the
        # texts' numbers by hole, its gather through run_slots' the slots the program
        # runs on; a list of the ints, array("i", list) and a map over the list took a
        # third more time: ~790 holes, a text gradient of 10² operations)
        flat = np.fromiter(chain(chain.from_iterable(statement_slots), returned), np.int32)
        texts.holes = array("i", flat.tobytes())
        statement_slots = run[0][flat].tolist()
        del flat
    elif later:
        texts.holes, statement_slots = _program_slots(statement_slots, returned, run[0])
    else:
        statement_slots = _slot_list(statement_slots, returned)
    if later:   # (the texts' numbers by hole, and the slots the program runs on)
        run_of = run[0].tolist()
        param_slots = tuple(run_of[s] for s in param_slots)
        constants = {run_of[s]: text for s, text in constants.items()}
        like = None
        if marked:
            outputs = [(key, holes, tuple(map(run_of.__getitem__, holes))) for key, holes in outputs]
    if like is not None:   # (the same names and slots: shared, not held twice)
        if statement_slots == like.slots:
            statement_slots = like.slots
        if texts.joined == like.texts.joined:
            texts = like.texts
    n_lines = len(numbered)
    if guard and _fits_try(n_lines) and not lazy:
        body = formatted("", formats, numbered, statement_slots, texts.list()).split("\n")[1:-1]
        return Generated("\n".join([head, *_guarded(body, params, returns), ""]), params, None)
    start = head.count("\n")   # the def line's index
    if start + 1 + n_lines <= PROGRAM_ABOVE and not lazy:
        return Generated(formatted(head, formats, numbered, statement_slots, texts.list()), params, None)
    program = Program(formats, numbered, statement_slots, size, param_slots,
                      {slot: _LITERALS[text] if text in _LITERALS else float(text) for slot, text in constants.items()},
                      texts, start, head)
    if marked:
        keep.append(_ProgramParts(marked_formats, outputs, len(returned), head_ops, later_args, program))
    return Generated(LazySource(program), params, program)



# The ops without one of which shared_exps finds nothing (tanh's share needs a sech2).
_SHARES_EXPS = frozenset(("logaddexp", "sigmoid", "softplus", "sech2", "log1p", "expm1", "log1mexp",
                          "hypot3", "logaddexp3", "xlogy", "sigmoid_slope"))

# the constants' texts that are not float literals, and their values (as the text evaluates them)
_LITERALS = {"np.nan": np.nan, "np.inf": np.inf, "-np.inf": -np.inf}


def _prepared(trace: Trace, point: bool) -> tuple[Trace, set[str]]:
    """The trace as generate spells it, and its ops: the rewrites below, each called
    only where the trace has the op it rewrites (one scan of the ops, not one each;
    they do not look again)."""
    return _prepared_codes(trace, point)[:2]


def _prepared_codes(trace: Trace, point: bool) -> tuple[Trace, set[str], OpCodes]:
    """_prepared's trace and ops, and its instructions' ops as OpCodes (the stages
    after it read those, not the instructions)."""
    return _prepared_ops(trace, point)[:3]


def _prepared_ops(trace: Trace, point: bool) -> tuple[Trace, set[str], OpCodes, set[str]]:
    """_prepared_codes', and the ops of the trace given (before the rewrites)."""
    cols = kept(trace)   # (its ops and arguments as arrays, where its maker kept them)
    table = table_codes(trace.instrs) if cols is None else cols.code
    codes = _codes_of(trace, table)
    ops = given_ops = set(codes.names)
    given = trace
    if "xlogy" in ops and not point:
        trace = share_logs(trace)
    if "pow" in ops:
        if trace is given:
            pows = np.flatnonzero(codes.code == codes.names.index("pow"))
            trace, table = _small_powers(trace, pows, table)
            if cols is not None and trace is not given:
                if kept(trace) is None:   # (a trace of columns keeps its own: column_instrs)
                    squared = squared_columns(cols, table, pows)
                    if squared is not None:
                        keep(trace, squared)
                kept(given, take=True)   # (the squares' are read: given's not held)
        else:
            trace, table = _small_powers(trace)
        made = op_codes_of_table(table) if table is not None and trace is not given else None
        if made is not None:   # (its ops, from the rewrite's table: not read again)
            given, codes = trace, made
    if "sum_to" in ops:
        trace = _static_sums(trace)
    if "sum" in ops or ("sum_to" in ops and "sum" in map(itemgetter(0), trace.instrs)):   # (_static_sums makes sums)
        trace = _dots(trace)
    if "logaddexp" in ops and not point:
        trace = hoist_shared(trace)
    if not QUOTIENT_OPS.isdisjoint(ops):   # hypot's and hypot3's partials divided by the value, as C's (c_forms)
        trace = hypot_quotients(trace)
    if trace is given:
        return trace, set(codes.names), codes, given_ops
    codes = _codes_of(trace, table_codes(trace.instrs))
    return trace, set(codes.names), codes, given_ops


def _codes_of(trace: Trace, table) -> OpCodes:
    """The trace's ops as OpCodes: from their op-table codes (`table`,
    table_codes'), or read by name where an op is not in the table."""
    return op_codes_of_table(table) or op_codes(list(map(itemgetter(0), trace.instrs)))


def _fits_try(n_lines: int) -> bool:
    """Whether a body of `n_lines` in a `try` leaves the text short enough to compile:
    a statement program takes no `try` (load_point guards it from outside); the header
    takes at most 8 lines."""
    return n_lines + 5 <= PROGRAM_ABOVE - 8



# A generated function longer than this many lines is not compiled but run as a
# statement program (numpy_program.py). compile() costs 10-14 µs a line whatever the
# size of the unit (CPython's compiler per statement; a 10⁵-operation gradient's 232k
# lines in one piece: 3 s and 600 MB, its parser keeping every token). Measured with
# benchmarks/bench_numpy_program.py (CPU time, one thread, load average 4-16), on the
# gradients of bench_frontend.py: the program loads in 2.3 µs a line at 10⁴ operations
# (23k-25k lines; compile() 10-13) and 3.1-3.3 at 10⁵ and 10⁶ (232k-2.3M lines), and runs
# 1.6x slower at one point (Python floats: a Python call and a few subscripts more
# a statement) and 1.0-1.05x at 1000 points. It replaced compiling such a function in
# pieces of 2000 lines that shared a dict (40 MB instead of 600): the program builds
# 1.8x faster than the pieces and runs as fast (10⁵ operations: within 5% at one
# point and at 1000). Below the threshold compile() takes at most ~0.3 s and a
# function is as fast as it gets; 0 makes every load a program.
PROGRAM_ABOVE = 20_000
# generated renders keys from this many named variables below PROGRAM_ABOVE (the header
# and the return take a few lines; a named variable may take none, an input's)
_KEYED_MARGIN = 64
# generated makes a batch function of more named variables than this a statement
# program whatever its length (`lazy`), which load compiles on use (numpy_tier.py).
# Below, the program's build costs more than compile() of the text, in a fresh process
# (the templates from the code store, the keyed renderer's and the program's first
# use). With a short trace's keys made per variable (numpy_render.KEYS_AT_ONCE_FROM),
# its slot texts made in Python (name_codes._FEW) and only when asked for, and its stub
# not compiled (numpy_program._stub_function), bench_frontend's generate + load, CPU
# µs an operation, against TIER_FROM 500 without those (medians of 5-7 alternating
# runs, load average 4-5): at 10² operations (242-268 named variables) fresh text
# 21.2 -> 17.9, deep 20.9 -> 16.2, SymPy 20.2 -> 17.9; warm (a second formula) 19.9 ->
# 12.2, 19.4 -> 10.3, 18.7 -> 10.4; at 70 operations (172-188 named) fresh 22.2 ->
# 22.6 and 24.9 -> 25.9, warm 22.3 -> 16.9 and 22.6 -> 14.8; at 50 (116-134) fresh
# 27.7 -> 34.8 and 28.9 -> 33.9, warm 25.7 -> 23.0 and 28.1 -> 18.7.
# (With the bulk renderer's keys and NumPy's slot texts, 500 -> 150 had cost a fresh
# process ~2.5 µs an operation at 10².) The rent paid before the compile (numpy_tier):
# bench_numpy_tier.py --parts amortized at 10², compile_grad and N calls at 1000 points,
# 200 against never a program, text 0.92-0.93x for N = 1-3, 1.03-1.05x for N = 10-100;
# deep 0.84-0.88x, 1.00-1.06x; at one point 0.89-0.95x and 0.85-1.00x (medians of 3).
# Measured again with the warm program path cheaper (kept forms and op codes), 45-60
# operations (116-165 named variables), program against compiled, generate + load µs an
# operation, medians of 5-7 fresh processes each way (load average 3-5): text 27.7 ->
# 26.3, 23.3 -> 25.7, 24.0 -> 23.9; deep 24.7 -> 24.4, 24.6 -> 20.7; SymPy 24.5 -> 25.0,
# 23.0 -> 22.1, 20.5 -> 20.0 (even); warm (a second formula) 40-60 operations: text
# 25.1 -> 20.9, 22.5 -> 17.5, 20.4 -> 14.7; deep 23.7 -> 14.9, 22.0 -> 13.9, 20.7 -> 11.9;
# SymPy 24.2 -> 16.4, 19.7 -> 13.7, 20.0 -> 11.8. Amortized (medians of 7, 102-186 named):
# N = 1-3 0.82-1.01x, N = 10 0.87-1.05x, N = 100 1.03-1.07x at 1000 points and
# 0.96-1.00x at one point. At 30-40 operations (74-112 named) a fresh process still
# pays more for the program (text 31.5 -> 40.8, 28.2 -> 30.4).
TIER_FROM = 120


@gc_paused()
def load(source: Union[str, LazySource], func_name: str, values: Optional[dict] = None,
         program: Optional[Program] = None):
    """A function from generated source (compiled, or a statement program above
    PROGRAM_ABOVE lines) whose source `inspect` and tracebacks show; `values`: more
    names of its namespace (ours: never user text); `program`: the source's statement
    program (generated's), which then need not be read back from the text, and which
    runs a shorter function until it is compiled on use (numpy_tier). A LazySource
    with its program is not made text: linecache gets its Lines, which format a line
    when asked for."""
    namespace: dict = {"__name__": "exprcompiler.generated", **(values or {})}
    if program is not None and type(source) is LazySource and source.program is program:
        # named by a count, not by a digest of the text (which is not made)
        filename = f"<exprcompiler {func_name} #{next(_UNMADE)}>"
        lines = Lines(source)
    else:
        source = text_of(source)
        # (BLAKE2, built into Python: OpenSSL's SHA-1 took ~0.06 ms at its first use)
        digest = blake2b(source.encode(), digest_size=6).hexdigest()
        filename = f"<exprcompiler {func_name} {digest}>"
        lines = source.splitlines(True)
    long = len(lines) > PROGRAM_ABOVE
    run = (long or program is not None) and (load_program(lines, func_name, filename, namespace) if program is None
                                             else load_statements(program, lines, func_name, filename, namespace))
    if not run:
        exec(_compiled(text_of(source), filename), namespace)
    fn = namespace[func_name]
    if run and not long:
        compile_on_use(fn, source, filename, namespace, point=FALLBACK in namespace)   # (load_point's)
    if type(lines) is Lines:
        linecache.cache[filename] = (None, None, lines, filename)
        # its own file (by count): gone with the function, and with it the program that
        # linecache's Lines hold (a traceback holds the function while it lives)
        weakref.finalize(fn, linecache.cache.pop, filename, None).atexit = False
    else:
        linecache.cache[filename] = (len(source), None, lines, filename)
    return fn


_UNMADE = count(1)   # numbers of the loaded functions whose text is not made


def _compiled(source: str, filename: str):
    """The code of `source`, our generated text, under `filename` (its digest's): a
    text of at most _CODE_CHARS compiled before in this process is not compiled
    again. Texts recur: load_point's guard of every formula of the same inputs and
    outputs (compile() ~50-130 µs at 5 inputs), a formula compiled again (a
    notebook's cell run again, a test's expression), the variant of each."""
    key = (source, filename)
    code = _CODES.get(key) if len(source) <= _CODE_CHARS else None
    if code is None:
        code = compile(source, filename, "exec")   # our generated source, never user text
        if len(source) <= _CODE_CHARS:
            if len(_CODES) >= _CODES_KEPT:
                _CODES.clear()
            _CODES[key] = code
    return code


# (a code is immutable: each load's exec makes a function of its own in its own
# namespace. At most _CODES_KEPT codes of texts up to _CODE_CHARS, ~300 lines: a few MB.)
_CODES: dict = {}
_CODES_KEPT = 128
_CODE_CHARS = 16_384


def load_point(source: Union[str, LazySource], func_name: str, fallback, returns: ReturnSpec,
               program: Optional[Program] = None):
    """The one-point variant from the `source` of generate(..., point=True,
    guarded=True, returns=returns) (and its `program`, generated's): where math refuses
    (ArithmeticError, ValueError) it returns what `fallback(*inputs)` gives (a list of the
    outputs), nested as the variant nests its results, from its own `try` (no frame in
    between) or, where the text has none (see generate), from a guarded function that
    calls it."""
    fn = load(source, func_name, {FALLBACK: fallback}, program=program)
    if FALLBACK in fn.__code__.co_names:
        return fn
    params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
    lines = [f"def {func_name}({', '.join(params)}):",
             *_guarded([f"    return {UNGUARDED}({', '.join(params)})"], params, returns)]
    return load("\n".join(lines) + "\n", func_name, {FALLBACK: fallback, UNGUARDED: fn})


def compile_numpy(trace: Trace, *, func_name: str = "f", description: str = "",
                  returns: Optional[ReturnSpec] = None):
    """(function, source, parameter names) for `trace`."""
    source, params, program = generated(trace, func_name=func_name, description=description, returns=returns)
    return load(source, func_name, program=program), text_of(source), params


__all__ = ["Generated", "generate", "generated", "load", "load_point", "compile_numpy", "numpy_runner", "block_for",
           "BLOCK"]