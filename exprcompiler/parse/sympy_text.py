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

What the cut printer does per node is SymPy's, with three costs taken out, each
giving the same text (`_print`): a subexpression met again (a DAG's shared node,
written out once per use) takes its text printed before, whole, from a memo by
object (its text is the same wherever it is: StrPrinter keeps no state but the
depth, which only a Float at the top reads); the print method a class dispatches
to (Printer._print's walk over the MRO, by names) is found once per class; and a
precedence in `parenthesize` is found once per class where SymPy's is a class's
value (precedence() walks the MRO per call). A random SymPy DAG of 10² operations
printed to its first 256 characters: 1.03-1.18 -> 0.34-0.38 ms (the front end's
third at 10²).
"""

from __future__ import annotations

__all__ = ["shown", "cut"]

_CUT = "\0"     # a subexpression not printed (no printed text holds one, but a symbol's name)
_MARGIN = 16    # see the module's docstring
_CLASSES_KEPT = 4096   # classes whose print method and precedence are kept (_printer)


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
        from sympy.core.function import AppliedUndef, Function, UndefinedFunction
        from sympy.printing.precedence import PRECEDENCE, PRECEDENCE_FUNCTIONS, PRECEDENCE_VALUES
        from sympy.printing.printer import Printer
        from sympy.printing.str import StrPrinter, sstr

        base_print, base_pow = Printer._print, StrPrinter._print_Pow
        methods: dict = {}   # class -> the name of the print method Printer._print dispatches it to
        precedences: dict = {}   # class -> its precedence, or the function of the node that gives it

        def method_of(printer, cls) -> str | None:
            """Printer._print's choice for a node of class `cls` (not a class itself,
            nor one that prints itself): its walk, once."""
            classes = cls.__mro__
            if AppliedUndef in classes:
                classes = classes[classes.index(AppliedUndef):]
            if UndefinedFunction in classes:
                classes = classes[classes.index(UndefinedFunction):]
            if Function in classes:
                i = classes.index(Function)
                classes = tuple(c for c in classes[:i] if c.__name__ == classes[0].__name__
                                or c.__name__.endswith("Base")) + classes[i:]
            for c in classes:
                name = "_print_" + c.__name__
                if getattr(printer, name, None) is not None:
                    return name
            return None   # (the emptyPrinter's: left to Printer._print)

        def precedence(item) -> int:
            """sympy.printing.precedence.precedence(item), its walk over the MRO once per class."""
            if hasattr(item, "precedence"):
                return item.precedence
            cls = type(item)
            got = precedences.get(cls)
            if got is None:
                got = PRECEDENCE["Atom"]
                if not isinstance(item, type):
                    for c in cls.mro():
                        if c.__name__ in PRECEDENCE_FUNCTIONS:
                            got = PRECEDENCE_FUNCTIONS[c.__name__]
                            break
                        if c.__name__ in PRECEDENCE_VALUES:
                            got = PRECEDENCE_VALUES[c.__name__]
                            break
                if len(precedences) >= _CLASSES_KEPT:
                    precedences.clear()
                precedences[cls] = got
            return got if type(got) is int else got(item)

        class ShownPrinter(StrPrinter):
            def __init__(self, settings, limit: int):
                super().__init__(settings)
                self.cut_at = limit + _MARGIN
                self.at = 0   # the characters of the subexpressions printed so far
                self.exponent = None   # the exponent of the power being printed
                # id(node) -> (node, its whole text): held, so that no node the printer
                # makes and drops (_print_Mul's) leaves its id to another
                self.memo: dict = {}
                self.ranks: dict = {}   # id(node) -> (node, its precedence), where precedence() reads the node

            def _print(self, expr, **kwargs) -> str:
                at = self.at
                if at >= self.cut_at:
                    return _CUT
                known = self.memo.get(id(expr)) if not kwargs else None
                if known is not None and known[0] is expr:
                    text = known[1]
                else:
                    cls = type(expr)
                    name = methods.get(cls)
                    if name is None and cls not in methods and not isinstance(expr, type) \
                            and not hasattr(expr, self.printmethod):
                        if len(methods) >= _CLASSES_KEPT:   # (a user's Function('f') is a class per name)
                            methods.clear()
                        name = methods[cls] = method_of(self, cls)
                    if name is None or hasattr(expr, self.printmethod):
                        text = base_print(self, expr, **kwargs)
                    else:   # (Printer._print's call, its depth count included)
                        self._print_level += 1
                        try:
                            text = getattr(self, name)(expr, **kwargs)
                        finally:
                            self._print_level -= 1
                    if _CUT not in text and not kwargs:
                        self.memo[id(expr)] = (expr, text)
                # (a power's exponent, printed before its base, is written after it)
                self.at = at if expr is self.exponent else at + len(text)
                return text

            def _print_Pow(self, expr, *args, **kwargs) -> str:
                outer, self.exponent = self.exponent, expr.exp
                try:
                    return base_pow(self, expr, *args, **kwargs)
                finally:
                    self.exponent = outer

            def parenthesize(self, item, level, strict=False) -> str:
                # (StrPrinter.parenthesize, its precedence found once per class, and once
                # per node where it reads the node: a product's sign, a number's)
                known = self.ranks.get(id(item))
                if known is not None and known[0] is item:
                    prec = known[1]
                else:
                    prec = precedence(item)
                    if type(precedences.get(type(item))) is not int:
                        self.ranks[id(item)] = (item, prec)
                if prec < level or (not strict and prec <= level):
                    return "(%s)" % self._print(item)
                return self._print(item)

        _PRINTER = ShownPrinter, sstr
    return _PRINTER
