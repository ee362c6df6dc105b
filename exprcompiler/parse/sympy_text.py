"""A SymPy expression's text as its trace's source shows it: SymPy's own printing,
cut after the characters a header shows.

Where it sits: the SymPy front end (frontend._sympy_text) gives a trace its source,
which generated code shows in its header (at most 200 characters: NumPy's; C's and
the tape VM's 160, `explain` 100). SymPy's printer makes the whole text, and sorts
every sum's terms on the way (str()): on a model whose text is long that was most
of the front end's time (the sum of the 6-link pendulum's forcing entries, 204
operations, 1,748 characters: printed in 3.7-3.9 ms of its 5.0-5.3 ms to_trace).
`shown` prints only up to `limit` characters, the same text as SymPy's there, and
"..." after them (1.0 ms, to_trace 2.1-2.2 ms; CPU medians of 9, three alternating
rounds, load 4-5); `cut` does the same to a text printed whole (the front end prints
a small expression so, where the cut printer's own cost would not pay).

How: SymPy's StrPrinter makes a subexpression's text from its arguments' texts,
printed left to right, each whole, in the order they are written (but for a power,
whose exponent it prints before its base: not counted until the power is done).
So the characters printed so far, the texts of the subexpressions done, are never
more than where the next one starts; once they pass `limit` + `_MARGIN`, a
subexpression is not printed: `_CUT` stands for it. A printer's choice that reads
an argument's text (a sum's " - " before a term printed "-x...") changes at most a
few characters before that argument, which the margin covers. Where the reasoning
fails (a printer that prints a text it then drops, or that reorders its arguments'
texts), a `_CUT` may land inside the first `limit` + `_MARGIN` characters: then the
text is printed whole, and cut; so it is where the cut printing raises, or where a
symbol's name holds `_CUT` itself.
"""

from __future__ import annotations

__all__ = ["shown", "cut"]

_CUT = "\0"     # a subexpression not printed (no printed text holds one, but a symbol's name)
_MARGIN = 16    # see the module's docstring


def shown(expr, order, limit: int) -> str:
    """cut(sstr(expr, order=order), limit), printed only as far as that shows."""
    printer, sstr = _printer()
    try:
        text = printer({"order": order}, limit).doprint(expr)
    except Exception:   # noqa: BLE001  (the whole printing decides)
        text = _CUT
    if _CUT in text[:limit + _MARGIN]:
        text = sstr(expr, order=order)
    return cut(text, limit)


def cut(text: str, limit: int) -> str:
    """`text`'s first `limit` characters, and "..." if it is longer."""
    return text if len(text) <= limit else text[:limit] + "..."


_PRINTER = None


def _printer() -> tuple:
    """The StrPrinter that stops after a limit, and sstr (made and imported at first
    use: SymPy is imported only for SymPy input)."""
    global _PRINTER
    if _PRINTER is None:
        from sympy.printing.str import StrPrinter, sstr

        base_print, base_pow = StrPrinter._print, StrPrinter._print_Pow

        class ShownPrinter(StrPrinter):
            def __init__(self, settings, limit: int):
                super().__init__(settings)
                self.cut_at = limit + _MARGIN
                self.at = 0   # the characters of the subexpressions printed so far
                self.exponent = None   # the exponent of the power being printed

            def _print(self, expr, **kwargs) -> str:
                at = self.at
                if at >= self.cut_at:
                    return _CUT
                text = base_print(self, expr, **kwargs)
                # (a power's exponent, printed before its base, is written after it)
                self.at = at if expr is self.exponent else at + len(text)
                return text

            def _print_Pow(self, expr, *args, **kwargs) -> str:
                outer, self.exponent = self.exponent, expr.exp
                try:
                    return base_pow(self, expr, *args, **kwargs)
                finally:
                    self.exponent = outer

        _PRINTER = ShownPrinter, sstr
    return _PRINTER
