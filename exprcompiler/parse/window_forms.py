"""Statement forms of a whole token window at once, for the plans' fast path.

Where it sits: in `parse` (text → tokens → Trace), between the lexer's token
windows and the statement plans (plans.py). A plan is found by its statement's
form: the statement's tokens, operators and function names kept, every other token
(a name, a number) a slot. Finding it statement by statement (the line's end, a
slice of its tokens, a tuple of their forms, a tuple's hash: ~1 µs a statement at
10⁵ operations) cost as much as the statement's builder calls.

Here a window's tokens are coded once, by one C-level lookup each in a dict of the
window's distinct tokens (small, so its lookups hit the cache): a byte per token
(`SLOT`, `NEWLINE`, `ASSIGN`, or the code of a token a form keeps). Split at the
newlines, the codes are every line's form (bytes: a dict key whose hash is made in
C); a plan function reads its statement's slot tokens at their places in the line
(plan_code.py). Nothing of the text is interpreted here; the codes only say which
tokens are the same.

A line is a statement's form only if it is one whole statement (``name = expr``,
no ';', no newline inside parentheses); any other line has a form that no plan has,
or one whose plan refuses it (plans.py), and goes to the parser.
"""

from __future__ import annotations

from collections import Counter, _count_elements
from itertools import chain, islice, repeat
from operator import itemgetter

from .lexer import LINE

__all__ = ["SLOT", "NEWLINE", "ASSIGN", "codes_of", "Window"]

SLOT = 1          # a name, a number, or any token a form does not keep
NEWLINE = 10      # "\n" (so that bytes.split(b"\n") splits the codes at line ends)
ASSIGN = 61       # "=" ("name =" starts an assignment's form: SLOT, ASSIGN)
_FIRST_CODE = 128   # the codes of the tokens a form keeps: 128, 129, ...


def codes_of(tokens) -> dict:
    """token -> its code: each token of `tokens` (what a form keeps: plans.form_tokens)
    its own code, then the newlines ("\\n", and lexer.LINE of a split window) and "=";
    a token not in the dict is a SLOT."""
    tokens = [tok for tok in tokens if tok not in ("\n", LINE, "=")]
    if _FIRST_CODE + len(tokens) > 256:
        raise ValueError(f"{len(tokens)} tokens do not fit in a byte's codes")
    codes = {tok: _FIRST_CODE + k for k, tok in enumerate(tokens)}
    codes["\n"], codes[LINE], codes["="] = NEWLINE, NEWLINE, ASSIGN
    codes[""] = SLOT   # (the end of a window: the last token of each)
    return codes


class Window:
    """One token window's forms: `codes` (a byte per token) and `lines` (the codes
    split at the newlines: the last piece is not a whole line). A cursor (a token's
    place and the number of newlines before it) makes finding a place cost the
    distance from the last one found, so that a window read in many pieces costs its
    length once."""

    __slots__ = ("toks", "codes", "lines", "distinct", "_at", "_line_at", "_counts")

    def __init__(self, toks: list, code_of: dict, distinct: set | None = None):
        """`toks`: the parser's tokens (constants.TokenReader.toks); `distinct`: their
        distinct strings, where the reader has them (TokenReader.distinct; kept, unchanged,
        for early_inputs.read_names)."""
        self.toks = toks
        self.distinct = distinct
        codes = None
        if distinct is not None:
            # The window's own tokens -> their codes: a small dict, whose lookups hit
            # the cache (the text's token dicts, 10⁵ entries, miss it); one C-level
            # lookup a token
            window_codes = dict.fromkeys(distinct, SLOT)
            window_codes.update(code_of)
            try:
                codes = itemgetter(*toks)(window_codes) if len(toks) > 1 else (window_codes[toks[0]],)
            except KeyError:   # (not expected: distinct holds every token)
                pass
        if codes is None:
            codes = map(code_of.get, toks, repeat(SLOT))
        self.codes = bytes(codes)
        self.lines = self.codes.split(b"\n")
        self._at = self._line_at = 0
        self._counts = None

    def counts(self) -> Counter:
        """How many of the window's lines are of each form (counted when first asked)."""
        if self._counts is None:
            # (counted by Counter's own C helper: Counter(lines) first asks whether a
            # list is a Mapping, an ABC check that walked Mapping's subclasses, ~0.04 ms
            # of a fresh process's first formula)
            self._counts = Counter()
            _count_elements(self._counts, self.lines)
        return self._counts

    def seek(self, i: int):
        """The forms of the statements from token `i` on (a statement's start): whole
        lines, the first one possibly the rest of a line after a ';', then None."""
        codes = self.codes
        if i < self._at:
            self._at = self._line_at = 0
        line = self._line_at + codes.count(NEWLINE, self._at, i)
        self._at, self._line_at = i, line
        whole = len(self.lines) - 1 - line    # whole lines from this one on
        if whole <= 0:
            return iter((None,))
        rest = iter(self.lines)
        rest.__setstate__(line)
        if i and codes[i - 1] != NEWLINE:   # after a ';': the rest of the line
            first = codes[i:codes.index(NEWLINE, i)]
            next(rest)
            return chain((first,), islice(rest, whole - 1), (None,))
        return chain(islice(rest, whole), (None,))
