"""The C backend's helper functions and the lines that declare what a kernel calls:
each helper's C definition (NumPy's semantics where C has no libm function), the libm
functions libmvec has in vector form, and math_prelude, which writes the helpers a
kernel spells (and those they use) and the libmvec declarations between its
#includes and its code.

Where it sits: c_backend.generate_c, c_tensor's kernels and the VM's source (through
c_backend's names) call math_prelude once the kernel's spellings are known, for the
head of its source; c_export takes HELPERS for a header's. c_special and c_nary add
their helpers to the table.
"""

from __future__ import annotations

import re

from . import c_nary, c_special

# name -> (C definition, helpers it uses)
HELPERS = {
    "xc_square": ("static inline double xc_square(double x) { return x * x; }", ()),
    # Selections without a branch: gcc 12 vectorizes no loop that has both a call (exp,
    # log: libmvec's vector variants) and a branch, and a ternary is a branch to it. The
    # comparisons, where, maximum, the sign and the stable forms below select with this.
    "xc_select": ("/* a if c, else b, by a bit mask */\n"
                  "static inline double xc_select(int c, double a, double b)\n{\n"
                  "    union { double d; unsigned long long u; } x = {a}, y = {b};\n"
                  "    const unsigned long long m = -(unsigned long long)(c != 0);\n"
                  "    x.u = (x.u & m) | (y.u & ~m);\n"
                  "    return x.d;\n}", ()),
    # np.sign: +0.0 for either zero (not x itself, which keeps -0.0), NaN for NaN.
    "xc_sign": ("static inline double xc_sign(double x) "
                "{ return xc_select(x > 0, 1.0, xc_select(x < 0, -1.0, xc_select(x == 0, 0.0, x))); }",
                ("xc_select",)),
    # softplus and sigmoid (max(x, 0) + log1p(e), (1 or e) / (1 + e), e = exp(-|x|): one
    # exp each, which gcc computes once for both, no overflow, no branch; NumPy's
    # logaddexp(0, x) within an ulp or two, runtime.sigmoid's E/(1 + E) too) are
    # c_exp's (SOFTPLUS, SIGMOID), with its own exp and c_log's log inline (their
    # kernels call no libmvec).
    # np.maximum/np.minimum: NaN from either side, and at a tie the second argument,
    # which decides the sign of max(-0.0, 0.0) (NumPy's x86 loops, as SSE's maxpd/minpd).
    "xc_maximum": ("static inline double xc_maximum(double a, double b) "
                   "{ return xc_select((a > b) | isnan(a), a, b); }", ("xc_select",)),
    "xc_minimum": ("static inline double xc_minimum(double a, double b) "
                   "{ return xc_select((a < b) | isnan(a), a, b); }", ("xc_select",)),
    "xc_relu": ("static inline double xc_relu(double x) { return xc_maximum(x, 0.0); }", ("xc_maximum",)),
    "xc_heaviside": ("static inline double xc_heaviside(double x, double h0) "
                     "{ return xc_select(x < 0, 0.0, xc_select(x > 0, 1.0, xc_select(x == x, h0, x))); }",
                     ("xc_select",)),
    # Comparisons give 0/1 doubles, as in the NumPy backend; NaN compares false (!= true).
    **{f"xc_{name}": (f"static inline double xc_{name}(double a, double b) "
                      f"{{ return xc_select(a {op} b, 1.0, 0.0); }}", ("xc_select",))
       for name, op in (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="), ("ne", "!="))},
    "xc_where": ("static inline double xc_where(double c, double a, double b) { return xc_select(c != 0, a, b); }",
                 ("xc_select",)),
    # Constant exponents reach the call inlined, so the compiler keeps only one branch:
    # x**3 becomes two multiplications instead of a call to pow (8x faster for x**3 - 3x).
    # y == 0.5 as sqrt with pow's answers (+0.0 at -0.0, inf at -inf): gcc 12 miscompiles
    # pow(x, 0.5) in an `omp simd` loop of constant trip count (stores dropped:
    # sum(tanh(X) ** 0.5) at X of shape (4, 3) came out 4.0 instead of 11.85).
    "xc_pow": ("static inline double xc_pow(double x, double y)\n{\n"
               "    if (y == 2.0) return x * x;\n"
               "    if (y == 3.0) return x * x * x;\n"
               "    if (y == 0.5) return x == -INFINITY ? INFINITY : sqrt(x) + 0.0;\n"
               "    return pow(x, y);\n}", ()),
    "xc_xlogy": ("static inline double xc_xlogy(double x, double y) "
                 "{ const double l = log(y); return xc_select(x == 0, 0.0, x * l); }", ("xc_select",)),
    **c_special.HELPERS,  # digamma, polygamma, frac, sinc
    **c_nary.HELPERS,  # hypot3, logaddexp3
}


# libm functions that glibc's libmvec provides in vector form (2.35+ for all but
# sin/cos/exp/log/pow). Declaring them `omp declare simd` lets gcc vectorize the loop
# with calls to the vector variants; without -fopenmp-simd the pragmas are ignored.
VECTOR_MATH = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
               "exp", "expm1", "log", "log1p", "pow") + c_special.VECTOR_MATH


def helpers_for(names: set[str]) -> list[str]:
    """The definitions of these helpers and of those they use, each once, dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in HELPERS[name][1]:
            visit(dep)
        order.append(name)

    for name in sorted(names):
        visit(name)
    return [HELPERS[n][0] for n in order]


# What a helper marks XC_ALWAYS is inlined whatever the level: at -O1 (large kernels,
# split units: c_build.SIZED_FLAGS) gcc inlines only small functions, and one call left
# in an `omp simd` loop keeps the whole loop scalar (scalar libm for every other
# function of the kernel, and bits that differ from the VM's vector loops).
ALWAYS_INLINE = ["/* inlined at every optimisation level (an omp simd loop with a call stays scalar) */",
                 "#ifndef XC_ALWAYS", "#if defined(__GNUC__)", "#define XC_ALWAYS __attribute__((always_inline))",
                 "#else", "#define XC_ALWAYS", "#endif", "#endif"]


def math_prelude(spelled: set[str], libm: set[str] = frozenset()) -> list[str]:
    """The lines between a kernel's #includes and its code: the libmvec declarations of
    the vectorizable libm functions it calls (those `spelled` or in `libm`, and those
    its helpers call: xc_softplus calls exp and log), then the helpers among
    `spelled` and those they use."""
    helpers = helpers_for(spelled & set(HELPERS))
    code = re.sub(r"/\*.*?\*/", "", "\n".join(helpers), flags=re.S)
    called = spelled | libm | {f for f in VECTOR_MATH if re.search(rf"\b{f}\(", code)}
    lines = []
    vector = [f for f in VECTOR_MATH if f in called]
    if vector:
        lines.append("/* vector variants from libmvec (used when built with -fopenmp-simd) */")
        for f in vector:
            args = "double, double" if f in c_special.VECTOR_MATH_BINARY else "double"
            lines += ["#pragma omp declare simd notinbranch", f"double {f}({args});"]
        lines.append("")
    if helpers:
        lines += (ALWAYS_INLINE if "XC_ALWAYS" in code else []) + helpers + [""]
    return lines


__all__ = ["HELPERS", "VECTOR_MATH", "math_prelude"]
