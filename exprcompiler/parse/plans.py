"""Statement plans: the parser's fast path for an assignment whose form it has seen.

Where it sits: inside `parse` (text → tokens → Trace), between the lexer's token
windows and the trace builder. At an assignment ``name = expr`` the parser
(parser.py) calls `Plans.run`, which replays it and the assignments after it while
each has a plan; the first that has none goes through the parser's expression loop.

Generated programs repeat a few statement forms with other names: the scaling
benchmark's ``t9 = log(2 + sin(t4)) * t6``, a model's code. The expression loop
tells each token apart, stacks and reduces it (about 2 µs an operation at 10⁵),
to make the same builder calls for every statement of a form. A plan is that
sequence of calls, recorded once per form by running the parser's own expression
loop over the form against a recorder, then replayed with each statement's
variables as a Python function whose body is the calls (plan_code.py): one call a
statement, one builder call per operation.

A statement's form is its line: its tokens up to the end of the line, operators and
function names kept, every other token a slot. The forms of a whole token window are
found at once (window_forms.py: a byte per token, the bytes split at the newlines),
so that a statement costs a dictionary lookup of its form and its plan's call (at
10⁵ operations of that benchmark, the parse without its finish went from 3.3 to
2.5 µs an operation, of which the builder's calls are 1.2 and the lexer 0.6). A
slot is filled with the variable its text reads (the parser's `known`: assigned
names, inputs, constants and numbers read before); a slot whose text is not known
(a first use, a keyword, ';', '[' ...) sends the statement to the parser, so
everything that depends on what a name is (inputs, their first use, errors about
names) stays the parser's. So does every statement whose form the parser refuses or
that asks what a variable is (its shape, for sum() or '@'): the recorder has no
shapes, and such a form gets no plan.

Same trace: the expression loop chooses its builder calls from the tokens' texts
and the known variables, never from their values, so a plan makes the calls the
parser makes for the statement, in the same order, with the same arguments. Where
the builder refuses one (a shape error between declared tensors), the statement
goes to the parser, which makes the same calls again (hash-consed: the same
variables, nothing new) and reports the error at its token.

A form gets a plan the first time it is seen if its token window holds WORTH statements
of it (half as many once the window's plans run), else the RECORD_AT-th time it is seen
(a form spread over windows), so text whose statements all differ, or a short text,
costs a dictionary entry a statement, not a recording; a form that an earlier parse of
the process recorded gets its plan the first time (_RECORDED); at most MAX_PLANS are
kept, and where forms keep coming without statements that share them, plans stop
(TRIAL).
"""

from __future__ import annotations

from ..errors import ShapeError
from ..trace.ir import Builder
from .lexer import EOF
from .plan_code import Stop, new_scope, plan_function
from .window_forms import ASSIGN, NEWLINE, SLOT, Window

__all__ = ["Plans", "form_tokens", "MAX_PLANS", "WORTH", "RECORD_AT", "TRIAL", "PAYS"]

# The operators a form keeps. Not '@' (a product of undeclared inputs is the parser's
# question: scalar_product), nor '[', '.', '=', ';' (indices, options: the parser's).
_OPERATORS = ("+", "-", "*", "/", "**", "<", "<=", ">", ">=", "==", "!=", "(", ")", ",")


def form_tokens(functions) -> dict:
    """The tokens a form keeps (token -> itself): the operators above and the names of
    `functions`. (A name that may also be a variable, as gamma or ln, is kept too: where
    a form reads it as a variable, the parser asks the recorder for an input, and the
    form gets no plan.)"""
    return {tok: tok for tok in (*_OPERATORS, *functions)}


MAX_PLANS = 4096
# A form not recorded yet in the process gets a plan where it pays: a replay saves ~2.5
# µs of a statement's reading, and a form's first plan in a process costs ~70 µs (its
# recording ~22, its plan function's code from the code store ~45; compiled, ~150),
# what reading ~30 statements costs. So a form gets its plan the first time it is seen
# where its window holds at least WORTH statements of it, else the RECORD_AT-th time it
# is seen. (The scaling benchmark's text at 10² operations: 48 statements of 13 forms,
# 8 at most of one: 11 plans and 25 replays made a fresh process's parse 2.1 ms, 1.0-1.2
# without; at 10³, 27-54 statements a form: every form's plan from its first statement.)
# Where a window's plans run (_pays: any window but a text's last; the last, where a form
# has WORTH statements or was recorded before), a statement with no plan costs more than
# its reading: the replay stops there and looks for the form again after it. So there a
# form gets its plan at its first statement from half of WORTH on. (That text at 322
# operations, 143 statements of 13 forms, 1-2 of 16 or more: a process's second such text
# replayed 124 of its statements instead of 81,
# its parse (bench_frontend.py --warm) 1.89 -> 1.10 ms; in a fresh process 1.80 -> 1.21;
# the same text parsed again 1.05 -> 1.04: CPU medians of 4-5 alternating runs, load
# 5-8. From 10³ operations on, every form has 16 a window: the same plans as before.)
# Finding a statement's form costs a quarter of reading it, so where forms keep coming
# (hand-written text, or generated expression by expression) plans do not pay: once
# TRIAL statements had no plan, the parse goes on without plans unless PAYS times as
# many were replayed.
WORTH = 16
RECORD_AT = 16
TRIAL = 256
PAYS = 4
# A form's recording depends on its codes only (and the parser's leniency; the code
# table, the not-targets and the op table are fixed for the process): kept for the
# parses after this one, whose statements of a recorded form are then replayed at
# first sight. (A notebook's second formula, random DAG of 10² operations: its parse
# 1.15-1.33 -> 0.91-1.04 ms; 10³: 3.6-3.9 -> 3.35-3.5 ms, CPU, 5 alternating runs.)
_RECORDED: dict = {}   # (lenient, form) -> wiring, or False
MAX_RECORDED = 4096
_NUMBER_START = frozenset("0123456789.")
_ASSIGNMENT = bytes((SLOT, ASSIGN))   # how an assignment's form starts: its target, '='


class _Unplannable(Exception):
    """The parser asked the recorder something only the builder knows."""


class _Recorder:
    """Stands in for the Builder while the parser reads a form: each op call becomes a
    step (its builder method, its argument registers) and returns its result's register.
    Registers 0..n-1 are the slots; results are numbered on from n."""

    def __init__(self, slots: int):
        self.steps: list[tuple] = []
        self.slots = slots

    def call(self, opname: str, args: tuple) -> int:
        if not 1 <= len(args) <= 2 or any(type(a) is not int for a in args):
            raise _Unplannable(opname)
        fn = Builder.op_call(opname)   # what parser._Methods and Builder.apply call
        self.steps.append((fn, args[0], args[1] if len(args) == 2 else None))
        return self.slots + len(self.steps) - 1

    def apply(self, opname: str, *args, **attrs) -> int:
        if attrs:
            raise _Unplannable(opname)
        return self.call(opname, args)


class _RecordingMethods(dict):
    """The parser's `ops` table (op name -> method(builder, *args)) for a recording."""

    def __missing__(self, opname: str):
        def method(recorder: _Recorder, *args):
            return recorder.call(opname, args)
        self[opname] = method
        return method


class Plans:
    """The plans of one parse: form -> its plan function (plan_code.py), or the times
    it was seen, or False (no plan). A form is a line's codes (window_forms.py),
    bytes: an assignment's starts with SLOT, ASSIGN (its target and '=')."""

    def __init__(self, make_parser, not_target: frozenset, codes: dict, lenient: bool = False):
        # make_parser(text) -> a parser over `text` (made once, its tokens then set to
        # each form's: its class is the caller's, parser.py imports this module); not_target: the tokens
        # that are not a plain name to assign (operators, functions, constants...);
        # codes: token -> its code (window_forms.codes_of(form_tokens(...)))
        self.make_parser = make_parser
        self.lenient = lenient   # (make_parser's: part of a recording's key)
        self.not_target = not_target
        self.code_of = codes
        self.token_of = None   # code -> token, for recordings (made at the first)
        self.plans: dict[bytes, object] = {}
        self.ready: dict[bytes, object] = {}   # the forms with a plan function: form -> it
        self.reader = None   # the parser that reads forms (record)
        self.window = None   # the forms of the parser's token window (window_forms.Window)
        self.scope = None    # the plan functions' globals (plan_code.new_scope)
        self.replayed = 0    # statements replayed so far
        self.recorded = 0    # forms recorded so far
        self.missed = 0      # statements whose form had no plan (yet)
        self.off = False     # (see TRIAL)
        self.idle = False    # no plan can pay in this window (_pays)

    def run(self, parser):
        """Replay the assignments from parser.toks[parser.i] on while each has a plan,
        and leave parser.i at the first that has none (or is no assignment). Returns
        the target and token number of the last one replayed, None if none was."""
        if self.off:
            return None
        toks, i = parser.toks, parser.i
        window = self.window
        if window is None or window.toks is not toks:
            window = self.window_of(parser)
        if self.idle:
            return None
        if self.scope is None:
            self.scope = new_scope(parser.g, parser.known, parser.free, self.not_target)
        ready, forms = self.ready, window.seek(i)
        form, j = None, i
        while True:
            try:
                for form in forms:
                    j = ready[form](toks, j)   # (the next statement's place)
                break
            # KeyError: the form has no plan function (yet: first_of_form), or a slot's
            # token is no known variable; Stop: a target the parser refuses; a builder
            # call refused: the parser reads the statement (again)
            except KeyError:
                if form in ready or form is None:
                    break
                after = self.first_of_form(parser, form, j)
                if after is None:
                    break
                j = after
            except (Stop, ShapeError, IndexError):
                break
        parser.i = j
        if j == i:
            return None
        # (each statement replayed is one line, or the rest of one after a ';')
        self.replayed += window.codes.count(NEWLINE, i, j)
        last = window.codes.rfind(NEWLINE, i, j - 1) + 1 or i
        return toks[last], parser.base + last

    def window_of(self, parser) -> Window:
        """The forms of the parser's token window (made when first asked for)."""
        window = self.window
        if window is None or window.toks is not parser.toks:
            window = self.window = Window(parser.toks, self.code_of, parser.distinct)
            self.idle = not self._pays(window, parser.scanner.pos >= len(parser.text))
        return window

    def _pays(self, window: Window, last: bool) -> bool:
        """Whether a plan may pay in `window` (`last`: the text's last window): a form
        recorded in the process, or one of WORTH statements or RECORD_AT (its sightings
        in this window; those of earlier windows are left out). (A short text goes to
        the parser at once: the scaling benchmark's text at 10² operations, 48
        statements of 13 forms, none of WORTH.)"""
        if not last:
            return True
        lenient, enough = self.lenient, min(WORTH, RECORD_AT)
        return any(n >= enough or (lenient, form) in _RECORDED for form, n in window.counts().items())

    def first_of_form(self, parser, form: bytes, j: int):
        """Replay the statement `form` at token `j`, whose form has no plan function
        yet, if it is a plain assignment and its form gets one now. Returns the next
        statement's place, None if it was not replayed."""
        toks = parser.toks
        target = toks[j]
        # (a name read before it is assigned is the parser's error to report)
        if target in self.not_target or toks[j + 1] != "=" or target[0] in _NUMBER_START or target in parser.free:
            return None
        plan = self.plan_for(form, self.plans.get(form))
        if not plan:
            return None
        try:
            return plan(toks, j)
        except (Stop, KeyError, ShapeError, IndexError):
            return None

    def plan_for(self, form: tuple, mark):
        """The plan of a form not planned yet (`mark`: its entry in `plans`, the times
        it was seen, or False for a form the parser reads), or None for now. (A form an
        earlier parse recorded gets its plan at once: its recording costs nothing.)"""
        self.missed += 1
        if self.missed >= TRIAL and self.replayed < PAYS * self.missed:
            self.off = True   # forms keep coming, few statements share one: plans do not pay
            return None
        if mark is False or mark is None and len(self.plans) >= MAX_PLANS:
            return None
        if (self.lenient, form) not in _RECORDED:
            seen = 1 if mark is None else mark + 1
            if seen < RECORD_AT and self.window.counts()[form] < max(2, WORTH // 2):   # (see WORTH)
                self.plans[form] = seen
                return None
        self.recorded += 1
        plan = self.plans[form] = self.record(form)
        if plan:
            self.ready[form] = plan
        return plan

    def record(self, form: bytes):
        """The plan function of `form`, from its recording (made by this parse, or an
        earlier one of this process); False where it gets none."""
        key = (self.lenient, form)
        wiring = _RECORDED.get(key)
        if wiring is None:
            wiring = self.recording(form)
            if len(_RECORDED) < MAX_RECORDED:
                _RECORDED[key] = wiring
        return wiring and plan_function(self.scope, *wiring)

    def recording(self, form: bytes):
        """The wiring of `form`'s plan function (plan_code.plan_function's arguments
        after its scope), read by the parser's expression loop; False where it gets
        none."""
        if form[:2] != _ASSIGNMENT:
            return False
        words, places = [], []
        if self.token_of is None:
            self.token_of = {code: tok for tok, code in self.code_of.items() if code != SLOT}
        for place, code in enumerate(form[2:], 2):
            if code == SLOT:
                words.append(f"_{len(places)}")
                places.append(place)
            else:
                words.append(self.token_of[code])
        if not places:
            return False
        slots = len(places)
        reader = self.reader
        if reader is None:   # one parser reads every form: its tokens are set, not lexed
            reader = self.reader = self.make_parser("")
            reader.ops = _RecordingMethods()
        reader.toks, reader.i, reader.base, reader.depth = words + [EOF, ""], 0, 0, 0
        recorder = reader.g = _Recorder(slots)
        reader.known = {f"_{k}": k for k in range(slots)}
        try:
            result = reader.expression(None)
        # Whatever the parser says of a form (an error, a question the recorder cannot
        # answer), it says again of the statement, at its tokens: no plan.
        except Exception:   # noqa: BLE001
            return False
        if reader.toks[reader.i - 1] != EOF or type(result) is not int:
            return False
        return tuple(places), len(form) + 1, tuple(recorder.steps), result
