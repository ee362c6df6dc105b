"""SymPy matrix expressions -> tensor trace: the matrix nodes of the SymPy front end.

`from_sympy` walks every expression; this module tells it which nodes are matrix
nodes, which of their arguments are subexpressions, and how each one becomes
builder calls. MatAdd and MatMul are SymPy's Add and Mul for matrices
(``is_Add``/``is_Mul`` are true), so from_sympy's own `_add` and `_mul` convert them,
signs and scalar factors included; a MatMul's matrix factors become one product
here (`chain`).

How SymPy's nodes map:

=============================  ===================================================
MatrixSymbol('X', n, 3)        input X of shape ("n", 3): a Symbol dimension is a
                               dimension name bound at call time, an Integer a size
MatMul(c, X, w)                c * (X @ w); a longer chain is multiplied in the
                               cheapest order (`chain`), so Xᵀ X w is Xᵀ (X w)
MatAdd, HadamardProduct        add/sub, mul (elementwise)
HadamardPower(A, p)            A ** p (elementwise), as SymPy's Pow
Transpose(A)                   transpose(A)
MatPow(A, k), k = 1, 2, ...    products of A (by repeated squaring)
Trace(A)                       sum(diagonal(A)); Trace(P Q) is sum(P * Qᵀ) and
                               Trace(Aᵏ) sum(A * (Aᵏ⁻¹)ᵀ), so the product is not formed
DiagonalOf(A), DiagMatrix(v)   diagonal (as a column), diag
MatrixElement A[i, j]          index with constant i, j
A.applyfunc(sin)               sin(A), for a single function of the op table
=============================  ===================================================

A column MatrixSymbol('w', 3, 1) stays a (3, 1) matrix, not a vector of shape (3,):
every trace variable then has exactly SymPy's shape, so w * w.T is an outer product
and w.T * w a 1×1 matrix, with no bookkeeping of which vectors are rows. A result
of shape (1, 1) is returned as a scalar (its [0, 0] entry), so
``(X*w - y).T*(X*w - y)/2`` is a loss that `compile_grad` differentiates; its
gradient with respect to w has w's shape, (3, 1), and w is passed as a (3, 1) array.

Anything else (Inverse, Determinant, Identity, ZeroMatrix, slices, Kronecker
products...) raises ConversionError naming the node; so do explicit matrices
(Matrix, ImmutableMatrix), whose entries are separate scalar expressions.
"""

from __future__ import annotations

import sympy
from sympy.matrices.expressions import (DiagMatrix, DiagonalOf, HadamardPower, HadamardProduct,
                                        MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol, Trace,
                                        Transpose)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import ConversionError
from ..shapes import shown, user_int

# Nodes of matrix type or built from one (Trace and MatrixElement are scalars).
_NODES = (MatrixExpr, MatrixElement, Trace)
_SUPPORTED = (MatrixSymbol, MatMul, MatAdd, Transpose, HadamardProduct, HadamardPower, MatPow,
              MatrixElement, Trace, DiagonalOf, DiagMatrix, ElementwiseApplyFunction)

# Matrix-chain ordering: a named dimension counts as this size (a batch is usually
# large), and chains longer than _CHAIN_DP are multiplied left to right (the
# dynamic program is cubic in the chain's length).
_NAMED_SIZE = 1000
_CHAIN_DP = 32


def is_matrix_node(node) -> bool:
    return isinstance(node, _NODES)


def children(node) -> tuple:
    """The arguments that are subexpressions: not a MatrixSymbol's name and sizes,
    an element's indices, a power's integer exponent or an applied function."""
    if isinstance(node, MatrixSymbol):
        return ()
    if isinstance(node, (MatrixElement, MatPow)):
        return node.args[:1]
    if isinstance(node, ElementwiseApplyFunction):
        return (node.expr,)
    return node.args


def check(node, show) -> None:
    """Raise ConversionError unless `node` (a matrix node) converts; `show(node)`
    describes it in the message."""
    if type(node) not in _SUPPORTED:     # exactly: Inverse is a MatPow, for one
        raise ConversionError(f"unsupported SymPy matrix node {type(node).__name__!r} (in {show(node)})")
    if isinstance(node, MatrixSymbol):
        symbol_shape(node)
    elif isinstance(node, MatrixElement):
        if not all(i.is_Integer for i in node.args[1:]):
            raise ConversionError(f"matrix element with non-constant indices: {show(node)}")
        if any(user_int(i) is None for i in node.args[1:]):
            raise ConversionError(f"matrix element with an index beyond 2**63: {show(node)}")
    elif isinstance(node, MatPow):
        k = node.args[1]
        if not (k.is_Integer and k > 0 and user_int(k) is not None):
            raise ConversionError(f"matrix power with exponent {show(k)}: only positive integer "
                                  f"powers convert, below 2**63 (in {show(node)})")
    elif isinstance(node, ElementwiseApplyFunction) and _applied(node) is None:
        raise ConversionError(f"applyfunc converts a single function such as sin, not "
                              f"{show(node.function)} (in {show(node)})")


def symbol_shape(node) -> tuple:
    """A MatrixSymbol's shape: Integer sizes as ints, Symbol sizes as dimension names."""
    shape = []
    for d in node.shape:
        size = user_int(d) if d.is_Integer else None
        if size is not None and size > 0:
            shape.append(size)
        elif d.is_Symbol and d.name.isidentifier():
            shape.append(d.name)
        else:
            what = shown(d.name if d.is_Symbol else d)
            raise ConversionError(f"MatrixSymbol {shown(node.name)}: dimension {what} must be a "
                                  f"positive integer or a symbol (a dimension name); sizes are "
                                  f"below 2**63")
    return tuple(shape)


def _applied(node):
    """The function class of ``applyfunc(f)`` when its body is f(d) with f one of SymPy's
    function classes, else None."""
    lam = node.function
    if isinstance(lam, sympy.Lambda) and len(lam.variables) == 1 \
            and lam.expr.args == lam.variables and isinstance(lam.expr, sympy.Function):
        return lam.expr.func
    return None


def build(conv, node) -> int:
    """The variable of a matrix node that is not a MatAdd or MatMul (those are
    from_sympy's Add and Mul); `conv` is the converter (its builder `b`, `_v`,
    `_pow`, `_function_of`)."""
    b, v = conv.b, conv._v
    if isinstance(node, MatrixSymbol):
        return b.input(node.name, symbol_shape(node))
    if isinstance(node, Transpose):
        return b.transpose(v(node.arg))
    if isinstance(node, HadamardProduct):
        acc = v(node.args[0])
        for a in node.args[1:]:
            acc = b.mul(acc, v(a))
        return acc
    if isinstance(node, HadamardPower):
        return conv._pow(*node.args)
    if isinstance(node, MatPow):
        return _power(b, v(node.args[0]), int(node.args[1]))
    if isinstance(node, MatrixElement):
        return b.index(v(node.args[0]), key=tuple(int(i) for i in node.args[1:]))
    if isinstance(node, Trace):
        return _trace(b, v, node.arg)
    if isinstance(node, DiagonalOf):
        return b.reshape(b.diagonal(v(node.args[0])), shape=(-1, 1))
    if isinstance(node, DiagMatrix):
        return b.diag(b.reshape(v(node.args[0]), shape=(-1,)))
    if isinstance(node, ElementwiseApplyFunction):
        return conv._function_of(_applied(node), [v(node.expr)], node)
    raise AssertionError(f"unchecked matrix node {type(node).__name__}")


def as_scalar(b, var) -> int:
    """A 1×1 matrix result as its [0, 0] entry; anything else unchanged (only a matrix
    expression has a shape other than ())."""
    if b.shape(var) == (1, 1):
        return b.index(var, key=(0, 0))
    return var


def _power(b, a, k: int) -> int:
    result, square = None, a
    while True:
        if k & 1:
            result = square if result is None else b.matmul(result, square)
        k >>= 1
        if not k:
            return result
        square = b.matmul(square, square)


def _trace(b, v, arg) -> int:
    """tr(A) = sum(diagonal(A)); for a product, tr(P Q) = sum(P * Qᵀ) without forming P Q
    (with Pᵀ or Qᵀ read off a Transpose node, so tr(Aᵀ A) is sum(A * A))."""
    if type(arg) is MatPow and int(arg.args[1]) > 1:        # tr(Aᵏ) = sum(A * (Aᵏ⁻¹)ᵀ)
        a = v(arg.args[0])
        return b.sum(b.mul(a, b.transpose(_power(b, a, int(arg.args[1]) - 1))))
    mats = [a for a in arg.args if a.is_Matrix] if isinstance(arg, MatMul) else []
    if len(mats) < 2:
        return b.sum(b.diagonal(v(arg)))
    first, rest = mats[0], mats[1:]
    if len(rest) == 1 and isinstance(rest[0], Transpose):
        total = b.sum(b.mul(v(first), v(rest[0].arg)))
    elif isinstance(first, Transpose):
        total = b.sum(b.mul(v(first.arg), chain(b, [v(m) for m in rest])))
    else:
        total = b.sum(b.mul(v(first), b.transpose(chain(b, [v(m) for m in rest]))))
    for s in arg.args:          # scalar factors: tr(c P Q) = c tr(P Q)
        if not s.is_Matrix:
            total = b.mul(v(s), total)
    return total


def _size(d) -> int:
    return d if isinstance(d, int) else _NAMED_SIZE


def untransposed(b, vs: list):
    """[x1, x2, ...] when every variable of `vs` is a transpose (x1ᵀ, x2ᵀ, ...), else None."""
    inner = []
    for v in vs:
        ins = b.instrs[b.source_of(v)]
        if ins.op != "transpose":
            return None
        inner.append(ins.args[0])
    return inner


def chain(b, mats: list) -> int:
    """The product of matrices. Bᵀ Aᵀ is built as (A B)ᵀ, which shares A B with the
    expression's other side: SymPy writes (X w - y)ᵀ as wᵀ Xᵀ - yᵀ."""
    flips = 0
    while len(mats) > 1 and (inner := untransposed(b, mats)) is not None:
        mats, flips = inner[::-1], flips + 1
    product = _ordered_product(b, mats)
    return b.transpose(product) if flips % 2 else product


def _ordered_product(b, mats: list) -> int:
    """The product in the order of fewest multiplications (the classic dynamic
    program), built bottom-up: no recursion."""
    k = len(mats)
    if k == 1:
        return mats[0]
    if k > _CHAIN_DP:
        acc = mats[0]
        for m in mats[1:]:
            acc = b.matmul(acc, m)
        return acc
    dims = [_size(b.shape(mats[0])[0])] + [_size(b.shape(m)[-1]) for m in mats]
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(2, k + 1):
        for i in range(k - length + 1):
            j = i + length - 1
            cost[i][j], split[i][j] = min(
                (cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1], s)
                for s in range(i, j))
    need, todo = [], [(0, k - 1)]     # the intervals the optimal bracketing multiplies
    while todo:
        i, j = todo.pop()
        if i < j:
            need.append((i, j))
            todo += [(i, split[i][j]), (split[i][j] + 1, j)]
    product = {(i, i): m for i, m in enumerate(mats)}
    for i, j in sorted(need, key=lambda ij: ij[1] - ij[0]):
        s = split[i][j]
        product[(i, j)] = b.matmul(product[(i, s)], product[(s + 1, j)])
    return product[(0, k - 1)]


__all__ = ["as_scalar", "build", "chain", "check", "children", "is_matrix_node", "symbol_shape",
           "untransposed"]
