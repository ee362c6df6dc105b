"""SymPy -> Trace: the SymPy front end.

Sits beside the string parser at the start of the pipeline: it turns a SymPy
expression into the same kind of trace (through a `Builder`), which the passes
(simplify, forward, reverse) and the backends then consume. The reverse bridge,
Trace -> SymPy, is `exprcompiler.trace.to_sympy` (the tests' oracle). An
expression is converted on a `ColumnBuilder` (sympy_columns.py), which makes the
Builder's trace with its tuples made once; where it declines (matrices, an identity
the Builder would apply...), the walk goes on with a Builder in its state.

Only the structural nodes (Symbol, numbers, Add, Mul, Pow) are handled here by
hand; every function node is found through the op table's ``sympy_head`` (the
tables and the node check are sympy_nodes.py's), so an
op added to the table with a SymPy head is converted with no change here. Matrix
expressions (MatrixSymbol, MatMul, Transpose, Trace...) become tensor traces
through `from_sympy_matrix`, which documents how each node maps.

The walk is iterative (explicit stack, post-order), never recursive on the
expression's depth, and memoised on node identity, so shared subtrees are walked
once and a 10^5-deep expression converts.
"""

from __future__ import annotations

import math
from functools import reduce
from types import FunctionType as _FunctionType
from typing import Optional

import sympy
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.core.operations import LatticeOp
from sympy.logic.boolalg import Boolean

from ..errors import ConversionError
from ..trace.ir import Builder, Trace, max_ops_limit, output_names, trace_from_builder
from . import from_sympy_matrix as _matrix
from .sympy_columns import ColumnBuilder, Declined
from .sympy_nodes import (_BRANCHING, _CHECKED, _CONDITIONS, _DEFAULT_TRAILING_ARGS, _E, _EXACT, _HEADS,
                          _MINUS_ONE, _RELATIONS, _RENAMED, _check, _float, _is_negative, _show)


class _Converter:
    def __init__(self, max_ops: Optional[int] = None, builder=Builder):
        self.b = builder(max_ops=max_ops)   # a Builder, or a ColumnBuilder (sympy_columns)
        self.var: dict[int, int] = {}          # id(node) -> its variable
        # The nodes of `var` that the root does not hold through their parents' _args,
        # so their ids stay theirs (the caller holds the root).
        self.alive: list = []
        self.magnitude: dict[int, int] = {}    # id(Mul with coefficient < 0) -> var of -Mul
        # ids of the arguments an Add or a Mul must look at: with none, it is a plain
        # chain of add or mul (_add, _mul). Terms: numbers, matrices, Muls with a
        # coefficient < 0 (subtracted); factors: matrices, reciprocals b**-e.
        self.odd_terms: set[int] = set()
        self.odd_factors: set[int] = set()
        self.below: dict[int, int] = {}        # id(reciprocal b**-e) -> var of b**e
        self.numbers: dict[int, tuple] = {}    # id(number) -> (a negative Number, its float)
        self.symbols: dict[str, object] = {}   # input name -> the symbol that has it
        self.methods: dict[str, object] = {}   # op name -> its builder method (Builder.op_call)

    def convert(self, root) -> int:
        # Memo keys are ids, not the nodes: SymPy's __eq__ (run on a hash match)
        # recurses into distinct-but-equal subtrees. Equal subtrees that are
        # distinct objects are still built once, by the Builder's hash-consing.
        # A node with children goes back on the stack under the method that builds
        # it, then its children: when the method comes back, they are built and it
        # builds the node. What a node is depends on its class only (SymPy's is_Add,
        # is_Symbol... are class attributes): the method is found once per class.
        # Post-order with the arguments in order, as a recursion would build them.
        if type(root) not in _CHECKED:
            _check(root)   # (before the loop, which takes a function on its stack for a method)
        stack = [root]
        pop, push = stack.pop, stack.append
        var, alive, checked = self.var, self.alive, _CHECKED
        how_by_class = _BUILD_BY_CLASS.setdefault(type(self.b), {})
        while stack:
            node = pop()
            try:
                if type(node) is _FunctionType:   # a method, the node it builds below it
                    build = node
                    node = pop()
                    var[id(node)] = build(self, node)
                    continue
                if id(node) in var:
                    continue
                cls = type(node)
                if cls in checked:
                    args = node._args   # (held by the node: their ids stay theirs)
                else:
                    _check(node)
                    args = _matrix.children(node) if _matrix.is_matrix_node(node) else node.args
                    alive.append(node)
                    alive.append(args)  # (.args may make its tuple: keep what it holds)
                build = how_by_class.get(cls)
                if build is None:
                    build = how_by_class[cls] = _how_to_build(node, type(self.b))
                # Arguments built already are not stacked: most nodes have one or two, and
                # in a DAG they are often built (shared), so the node is built at once.
                if len(args) == 2:
                    first, second = args
                    if id(second) in var:
                        if id(first) in var:
                            var[id(node)] = build(self, node)
                            continue
                        stack += (node, build, first)
                    else:
                        stack += (node, build, second, first)
                elif len(args) == 1:
                    if id(args[0]) in var:
                        var[id(node)] = build(self, node)
                    else:
                        stack += (node, build, args[0])
                elif args:
                    push(node)
                    push(build)
                    stack += args[::-1]   # (those built already are passed over)
                else:
                    var[id(node)] = build(self, node)
            except Declined:   # (the ColumnBuilder's, building `node`: the Builder goes on)
                self._to_builder()
                how_by_class = _BUILD_BY_CLASS[Builder]
                for i, item in enumerate(stack):   # (the methods stacked: the Builder's)
                    if type(item) is _FunctionType:
                        stack[i] = _build_of(stack[i - 1], how_by_class)
                var[id(node)] = _build_of(node, how_by_class)(self, node)
        return var[id(root)]

    def _to_builder(self) -> None:
        """Go on with a Builder in the ColumnBuilder's state (its variables are the
        Builder's, so `var` and the other tables stay valid; what a declined node
        built before it declined, the Builder finds built)."""
        self.b = self.b.builder()
        self.methods = {}

    def _v(self, node) -> int:
        return self.var[id(node)]

    def _matrix_node(self, node) -> int:
        if type(self.b) is ColumnBuilder:
            raise Declined   # (shapes: the Builder's)
        self.odd_terms.add(id(node))
        self.odd_factors.add(id(node))
        return _matrix.build(self, node)

    def _symbol(self, node) -> int:
        # (a plain Symbol prints as its name: read, not printed, ~6 µs less a symbol;
        # a subclass may print otherwise, a Dummy('x') as _x)
        name = node.name if type(node) is sympy.Symbol else str(node)
        first = self.symbols.setdefault(name, node)
        if first != node:  # Dummy('x') twice, or x with and without assumptions: one input would be wrong
            raise ConversionError(f"two different SymPy symbols are both named {name!r} ({sympy.srepr(first)} "
                                  f"and {sympy.srepr(node)}); give them different names")
        return self.b.input(name)

    def _number(self, node) -> int:
        # (its sign and value for the Adds and Pows above it: numbers are few objects)
        value = _float(node)
        self.numbers[id(node)] = (node.is_Number and _is_negative(node), value)
        self.odd_terms.add(id(node))
        return self.b.const(value)

    def _pow_node(self, node) -> int:
        """A Pow: what _pow builds (_power_of inline), with each numeric exponent's
        value and sign found once (_number: exponents are few numbers, 2, 1/2, -1...)."""
        base, exp = node._args if type(node) in _CHECKED else node.args   # (see _CHECKED)
        b = self.b
        if base is _E:
            return b.exp(self.var[id(exp)])
        if not exp.is_Number:
            return b.pow(self.var[id(base)], self.var[id(exp)])
        negative, value = self.numbers[id(exp)]
        x = self.var[id(base)]
        if negative:   # b**-e: a Mul puts b**e below its fraction bar
            value = -value
        power = x if value == 1.0 else b.sqrt(x) if value == 0.5 else b.pow(x, value)
        if negative:
            self.below[id(node)] = power
            self.odd_factors.add(id(node))
            return b.div(1.0, power)
        return power

    def _conditional(self, node) -> int:
        """A Piecewise, or a condition as a 0/1 float (see _RELATIONS)."""
        b = self.b
        if isinstance(node, ExprCondPair):
            return self._v(node.expr)         # (its Piecewise reads both parts)
        if node is sympy.true or node is sympy.false:
            return b.const(1.0 if node is sympy.true else 0.0)
        if type(node) in _RELATIONS:
            return b.apply(_RELATIONS[type(node)], self._v(node.lhs), self._v(node.rhs))
        parts = [self._v(a) for a in node.args]
        if isinstance(node, sympy.Not):
            return b.sub(1.0, parts[0])
        if isinstance(node, (sympy.And, sympy.Or)):
            acc = parts[0]
            for p in parts[1:]:
                acc = b.mul(acc, p) if isinstance(node, sympy.And) else b.maximum(acc, p)
            return acc
        acc = None                            # a Piecewise, built from its last pair out
        for pair in reversed(node.args):
            value = self._v(pair.expr)
            if acc is None:
                acc = value if pair.cond is sympy.true else b.where(self._v(pair.cond), value, math.nan)
            else:
                acc = b.where(self._v(pair.cond), value, acc)
        return acc

    def _pow(self, base, exp) -> int:
        """base**exp: a Pow, or a HadamardPower (the same, elementwise on a matrix)."""
        if base is sympy.E:
            return self.b.exp(self._v(exp))
        if exp.is_Number and _is_negative(exp):
            return self.b.div(1.0, self._power(base, -exp))
        return self._power(base, exp)

    def _power(self, base, exp) -> int:
        """base**exp for an exponent that is not negative-numeric: 1 and 1/2 get
        their own forms (x, sqrt x), so x/sqrt(y) is div(x, sqrt(y))."""
        if exp.is_Number:
            return self._power_of(base, _float(exp))
        return self.b.pow(self._v(base), self._v(exp))

    def _power_of(self, base, value: float) -> int:
        """base**value for a number `value` (as _power: -e of a SymPy number e is -_float(e),
        both exact, so it takes no SymPy arithmetic)."""
        if value == 1.0:
            return self._v(base)
        if value == 0.5:
            return self.b.sqrt(self._v(base))
        return self.b.pow(self._v(base), value)

    def _add(self, node) -> int:
        # Numbers last (SymPy puts them first: x + 1 has args (1, x)). A term with
        # a negative coefficient is subtracted as its magnitude: x - 3*y is
        # sub(x, mul(3, y)), never add(x, mul(-3, y)).
        b, var, magnitude = self.b, self.var, self.magnitude
        args = node._args if type(node) in _CHECKED else node.args   # (see _CHECKED)
        if len(args) == 2 and not node.is_Matrix:   # most Adds: the cases below, without lists
            i, j = id(args[0]), id(args[1])
            odd = self.odd_terms
            if i not in odd:
                if j not in odd:
                    return b.add(var[i], var[j])
                if j in magnitude:
                    return b.sub(var[i], magnitude[j])
            elif j not in odd:
                if i in magnitude:
                    return b.sub(var[j], magnitude[i])
                number = self.numbers.get(i)
                if number is not None:   # 1 + x: SymPy's order
                    negative, value = number
                    if negative:
                        return b.sub(var[j], b.const(-value))
                    return b.add(var[j], var[i])
        if node.is_Matrix:
            self.odd_terms.add(id(node))
            self.odd_factors.add(id(node))
        elif self.odd_terms.isdisjoint(map(id, args)):   # terms that are all added, in order
            return reduce(b.add, map(var.__getitem__, map(id, args)))
        signed = []      # (positive, variable) a term
        numbers = []
        for t in args:
            if t.is_Number or t.is_NumberSymbol:
                numbers.append(t)
            elif id(t) in magnitude:
                signed.append((False, magnitude[id(t)]))
            else:
                signed.append((True, var[id(t)]))
        for t in numbers:
            if t.is_Number and _is_negative(t):
                signed.append((False, b.const(-_float(t))))
            else:
                signed.append((True, var[id(t)]))
        inner = _matrix.untransposed(b, [v for _, v in signed]) if node.is_MatAdd else None
        if inner is not None:        # Aᵀ - Bᵀ as (A - B)ᵀ: shares A - B (see _matrix.chain)
            signed = [(positive, v) for (positive, _), v in zip(signed, inner)]
        # Start from the first positive term so -x + y is sub(y, x), not add(neg(x), y);
        # the other terms keep SymPy's order (which lets equal partial sums share).
        first = 0
        while first < len(signed) and not signed[first][0]:
            first += 1
        if first == len(signed):
            acc = b.neg(signed.pop(0)[1])
        else:
            acc = signed.pop(first)[1]
        add, sub = b.add, b.sub
        for positive, v in signed:
            acc = add(acc, v) if positive else sub(acc, v)
        return acc if inner is None else b.transpose(acc)

    def _mul(self, node) -> int:
        b, var = self.b, self.var
        args = node._args if type(node) in _CHECKED else node.args   # (see _CHECKED)
        if len(args) == 2:   # (most Muls: the plain cases below without iterators)
            first, second = args
            i, j = id(first), id(second)
            odd = self.odd_factors
            if i not in odd and not node.is_Matrix:
                if j not in odd:
                    if not first.is_Number:
                        return b.mul(var[i], var[j])
                    if first is _MINUS_ONE:
                        self.odd_terms.add(id(node))
                        self.magnitude[id(node)] = var[j]
                        return b.neg(var[j])
                elif j in self.below and not first.is_Number:   # x/y: _fraction of x over y
                    return b.div(var[i], self.below[j])
        if node.is_Matrix:
            self.odd_terms.add(id(node))
            self.odd_factors.add(id(node))
        elif self.odd_factors.isdisjoint(map(id, args)):
            # What the general path below builds for factors that are all above the bar
            # and a coefficient 1 (none) or -1 (the negation of the rest's product).
            first = args[0]
            if not first.is_Number:
                return reduce(b.mul, map(var.__getitem__, map(id, args)))
            if first is _MINUS_ONE and len(args) > 1:
                self.odd_terms.add(id(node))
                rest = list(map(var.__getitem__, map(id, args[1:])))
                magnitude = self.magnitude[id(node)] = reduce(b.mul, rest)
                return b.neg(magnitude)
        if not args[0].is_Number:
            coeff, factors, top_coeff, bottom_coeff = None, args, 1.0, 1.0   # (a coefficient 1)
        else:
            coeff, factors = args[0], args[1:]
            # A Rational coefficient p/q puts p above and q below the bar, so x/3 is
            # div(x, 3) (exact), not mul(0.333..., x).
            if coeff.is_Rational and abs(coeff.p) < _EXACT and coeff.q < _EXACT:
                top_coeff, bottom_coeff = float(coeff.p), float(coeff.q)
            else:
                top_coeff, bottom_coeff = _float(coeff), 1.0
        top, matrices, bottom = [], [], []   # variables above the bar; matrices; below
        below = self.below   # (the reciprocals among the factors: _pow_node)
        for f in factors:
            if f.is_Matrix:
                matrices.append(var[id(f)])
            elif id(f) in below:
                bottom.append(below[id(f)])
            else:
                top.append(var[id(f)])
        if matrices:                 # a MatMul: its matrices make one product, scaled
            top.append(_matrix.chain(b, matrices))
        if coeff is not None and _is_negative(coeff):
            # Recorded for an enclosing Add, which subtracts the magnitude.
            self.odd_terms.add(id(node))
            self.magnitude[id(node)] = _fraction(b, -top_coeff, top, bottom_coeff, bottom)
            if top_coeff == -1.0 and top:
                return b.neg(self.magnitude[id(node)])
        return _fraction(b, top_coeff, top, bottom_coeff, bottom)

    def _function(self, node) -> int:
        var = self.var
        args = [var[id(a)] for a in node.args]
        func = node.func
        if func in _RENAMED:
            return _RENAMED[func](self.b, args)
        op = _HEADS.get(func)
        if op is not None and len(args) == op.arity:   # what _function_of does then
            method = self.methods.get(op.name)
            if method is None:
                method = self.methods[op.name] = self.b.op_call(op.name)
            return method(self.b, *args)
        return self._function_of(func, args, node)

    def _function_of(self, func, args, node) -> int:
        """SymPy function class `func` applied to the variables `args` (`node` is
        the node that applies it, for messages)."""
        op, given = _HEADS.get(func), len(args)
        if op is None:            # (only applyfunc gets here unchecked)
            raise ConversionError(f"unsupported SymPy function {func.__name__!r} (in {_show(node)})")
        defaults = _DEFAULT_TRAILING_ARGS.get(func, ())
        missing = op.arity - len(args)
        if 0 < missing <= len(defaults):
            args += defaults[len(defaults) - missing:]
        if op.arity == 2 and len(args) > 2 and issubclass(func, LatticeOp):
            acc = args[0]            # n-ary Max/Min (lattice ops): a left-to-right chain
            for v in args[1:]:
                acc = self.b.apply(op.name, acc, v)
            return acc
        if len(args) != op.arity:
            raise ConversionError(f"SymPy {func.__name__} with {given} arguments "
                                  f"cannot become {op.name} (takes {op.arity}) (in {_show(node)})")
        return self.b.apply(op.name, *args)


def _product(b: Builder, c: float, vs: list) -> Optional[int]:
    """c·v1·v2···, left to right (c left out when 1); None for 1."""
    acc = None if c == 1.0 else b.const(c)
    for v in vs:
        acc = v if acc is None else b.mul(acc, v)
    return acc


def _fraction(b: Builder, top_coeff: float, top: list, bottom_coeff: float, bottom: list) -> int:
    """(top_coeff·top...) / (bottom_coeff·bottom...)."""
    num = _product(b, top_coeff, top)
    num = b.const(1.0) if num is None else num
    den = _product(b, bottom_coeff, bottom)
    return num if den is None else b.div(num, den)


def _how_to_build(node, builder):
    """The _Converter method that builds nodes of `node`'s class: a plain function
    (convert tells it from a node on its stack by its type), for a converter on a
    `builder` (the class: Builder or ColumnBuilder)."""
    if _matrix.is_matrix_node(node) and not (node.is_Add or node.is_Mul):
        return _Converter._matrix_node      # (MatAdd and MatMul are an Add and a Mul)
    if node.is_Symbol:
        return _Converter._symbol
    if node.is_Number or node.is_NumberSymbol:
        return _Converter._number
    if node.is_Add:
        return _Converter._add
    if node.is_Mul:
        return _Converter._mul
    if node.is_Pow:
        return _Converter._pow_node
    if isinstance(node, _BRANCHING + _CONDITIONS):
        return _Converter._conditional
    op = _HEADS.get(type(node))
    if op is not None and type(node) not in _RENAMED and op.arity in (1, 2):
        return _function_builder(op, type(node).args is sympy.Basic.args, builder)
    return _Converter._function


def _build_of(node, how_by_class: dict):
    """The build method of `node`'s class in `how_by_class` (a Builder's), made if new."""
    build = how_by_class.get(type(node))
    if build is None:
        build = how_by_class[type(node)] = _how_to_build(node, Builder)
    return build


def _function_builder(op, plain: bool, builder):
    """What _Converter._function does for a node of a SymPy function class whose op
    is `op`, with the op's `builder` method looked up once for the class. `plain`: the
    class's args are Basic's (its nodes' _args, read without a property call)."""
    method = builder.op_call(op.name)
    if op.arity == 1:
        def build(conv, node):
            args = node._args if plain else node.args
            if len(args) != 1:
                return conv._function(node)
            return method(conv.b, conv.var[id(args[0])])
    else:
        def build(conv, node):
            args = node._args if plain else node.args
            if len(args) != 2:
                return conv._function(node)
            var = conv.var
            return method(conv.b, var[id(args[0])], var[id(args[1])])
    return build


_BUILD_BY_CLASS: dict = {Builder: {}, ColumnBuilder: {}}   # builder class -> SymPy class -> build

# Convert with a ColumnBuilder (sympy_columns: the same trace, made once), going on
# with a Builder where it declines. Tests turn it off to compare the two.
COLUMNS = True


def from_sympy(expr, *, source: Optional[str] = None, max_ops: Optional[int] = None) -> Trace:
    """Convert a SymPy expression into a trace with one output, "y" ("f" if y is an input).

    A matrix expression gives a tensor-valued output, a 1×1 one a scalar.
    Raises `ConversionError` naming any node that has no op (Integral, an undefined
    function, Inverse...), and for explicit matrices, booleans outside a Piecewise
    and non-SymPy objects. `max_ops`: the input-size limit (default:
    trace.ir.max_ops_limit()); past it, InputTooLarge.
    """
    if isinstance(expr, Boolean) and not getattr(expr, "is_Symbol", False):
        raise ConversionError(f"relationals and booleans are not supported: {_show(expr)} "
                              f"(as a number, write Piecewise((1, condition), (0, True)))")
    conv = _Converter(max_ops_limit(max_ops), ColumnBuilder if COLUMNS else Builder)
    out = conv.convert(expr)
    b = conv.b
    if type(b) is ColumnBuilder:   # (nothing declined)
        name, = output_names(1, b._inputs)
        b.release()
        return b.trace([(name, out)], source)
    out = _matrix.as_scalar(b, out)
    name, = output_names(1, b._inputs)  # the output must not shadow an input
    b.release()   # converted: no more sharing to find
    return trace_from_builder(b, [(name, out)], source=source)


__all__ = ["from_sympy"]
