"""C backend, a split kernel's parts in GCC's vector extension: the right-hand sides
over xc_v vectors of XC_VL points (lanes_rhs) and the unit's prelude that declares
the vector type, its loads and stores, and a lane wrapper (or libmvec's variant) of
each function the parts call (lanes_prelude). c_split.part_body and
c_split.split_kernel use them for parts above c_split.VECTOR_UP_TO statements.
"""

from __future__ import annotations

import re


# Above VECTOR_UP_TO statements a part is written in GCC's vector extension (`lanes`):
# every value an xc_v of XC_VL points, + - * / on whole vectors, and each function f
# called through xc_lanes_f, one small function per unit whose `omp simd` loop over
# the lanes gcc vectorizes into one call of libmvec's f (a helper such as xc_sigmoid
# inlined and vectorized there). The parts themselves then need no vectorizer, and gcc
# at -O1 compiles them about as fast as scalar code, which ran 4x slower.
def lanes_rhs(rhs: str, reads) -> str:
    """A right-hand side over xc_v values: calls through their lane wrappers, and a
    constant (no names read) broadcast to all lanes."""
    rhs = _CALL_ANY.sub(lambda m: "xc_v_" + m.group(1) + "(", rhs)
    return rhs if reads else f"XC_V({rhs})"


_CALL_ANY = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")


def _arity(rhs: str, start: int) -> int:
    """The number of arguments of the call whose "(" is at `start`."""
    depth, n = 0, 1
    for ch in rhs[start:]:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return n
        elif ch == "," and depth == 1:
            n += 1
    raise ValueError(f"unbalanced call in {rhs!r}")


# A libm function with a vector variant in glibc's libmvec (`mvec`, c_backend.VECTOR_MATH)
# is called by that variant's own name (the x86-64 vector ABI's _ZGV<isa>N<lanes><v...>_f)
# where the build links libmvec (c_build.MVEC_DEFINE), instead of through a lane wrapper
# whose `omp simd` loop gcc turned into a call of the same variant: a trampoline that
# realigned the stack, 13 instructions a call. Same function on the same lanes, so the
# same bits. The random 10^3-operation gradient's kernel at 10^4 points: 12.46 -> 11.84
# ms (thread CPU, min of 31 interleaved rounds, load 6.8; the one-function kernel 11.50
# ms), 6,866 -> 5,879 instructions a point (callgrind; benchmarks/bench_c_split_gap.py).
# An AVX-512 target takes the AVX2 variants, on 4 lanes (c_driver.VL_LINES): those gcc's
# `omp simd` loops call there (libmvec's AVX-512 variants may differ in the last bit).
MVEC = ["#if defined(XC_LIBMVEC) && defined(__x86_64__) && defined(__GNUC__)",
        "#if defined(__AVX2__)", "#define XC_ISA d",
        "#elif defined(__AVX__)", "#define XC_ISA c", "#else", "#define XC_ISA b", "#endif",
        "#define XC_MVEC3(isa, vl, params, f) _ZGV##isa##N##vl##params##_##f",
        "#define XC_MVEC2(isa, vl, params, f) XC_MVEC3(isa, vl, params, f)",
        "/* the vector variant of f, whose parameters are `params` (v: a vector each) */",
        "#define XC_MVEC(params, f) XC_MVEC2(XC_ISA, XC_VL, params, f)",
        "#endif"]


def lanes_prelude(stmts, mvec=frozenset()) -> list[str]:
    """The vector type, its loads and stores, and a lane wrapper of each function the
    statements call (see lanes_rhs), or for those in `mvec` their libmvec variant (see
    MVEC). Written with `double`, `sizeof(double)` and XC_VL, so that dtypes' float
    rewrite gives vectors of XC_VL floats (and sin's variant that of sinf)."""
    arity: dict = {}
    for _, rhs, _ in stmts:
        for m in _CALL_ANY.finditer(rhs):
            if m.group(1) not in arity:
                arity[m.group(1)] = _arity(rhs, m.end() - 1)
    lines = ["typedef double xc_v __attribute__((vector_size(sizeof(double) * XC_VL)));",
             # the tape's rows are aligned to a double only
             "typedef double xc_vu __attribute__((vector_size(sizeof(double) * XC_VL), aligned(sizeof(double))));",
             "#define XC_LD(p) (*(const xc_vu *)(p))",
             "#define XC_ST(p, x) (*(xc_vu *)(p) = (x))",
             "/* a number to all lanes (x - 0.0 keeps the sign of a zero) */",
             "#define XC_V(x) ((x) - (xc_v){0})",
             # not inlined into the parts (4.4 s more of gcc's CPU on the 10^4-operation
             # gradient), nor specialized to a constant argument (gcc 12 and pow(x, 0.5):
             # see c_backend's xc_pow)
             "#if defined(__GNUC__)", "#define XC_LANES static __attribute__((noipa, unused))",
             "#else", "#define XC_LANES static", "#endif"]
    mvec = arity.keys() & set(mvec)
    lines += MVEC if mvec else []
    for f, n in sorted(arity.items()):
        params = ", ".join(f"xc_v a{k}" for k in range(n))
        args, lane = ", ".join(f"a{k}" for k in range(n)), ", ".join(f"a{k}[q]" for k in range(n))
        call = f"({', '.join(f'XC_V({a})' for a in args.split(', '))})"
        wrapper = [f"XC_LANES xc_v xc_lanes_{f}({params})", "{", "    xc_v r;", "    #pragma omp simd",
                   f"    for (int q = 0; q < XC_VL; ++q) r[q] = {f}({lane});", "    return r;", "}",
                   f"#define xc_v_{f}({args}) xc_lanes_{f}{call}"]
        if f == "xc_square":  # the commonest call (squares()), one multiplication
            lines += [f"static inline xc_v xc_lanes_{f}({params}) {{ return a0 * a0; }}",
                      f"#define xc_v_{f}({args}) xc_lanes_{f}{call}"]
        elif f in mvec:
            variant = f"XC_MVEC({'v' * n}, {f})"
            lines += ["#ifdef XC_MVEC", f"xc_v {variant}({', '.join(['xc_v'] * n)});",
                      f"#define xc_v_{f}({args}) {variant}{call}", "#else", *wrapper, "#endif"]
        else:
            lines += wrapper
    return lines
