"""C backend, source half: a scalar trace becomes a C99 kernel over a batch of points.

    void f_grad(ptrdiff_t n, int threads, const double *in0, ptrdiff_t st0, ..., double *out0, ...)

One loop over the n points (split over `threads` OpenMP threads when built with
OpenMP, vectorized with `omp simd`); inside it one straight-line statement per named
trace variable, SSA values as local doubles. Input k of point i is
in{k}[i * st{k}], so a stride of 0 broadcasts a scalar against arrays. Spellings
come from the op table's `c` field; ops without a libm function get small
helpers that reproduce NumPy's semantics (NaN propagation of maximum, the
logaddexp formula of softplus/sigmoid). User names are made into plain ASCII
identifiers and never reach the source otherwise; comments carry no user text
that could close them.
"""

from __future__ import annotations

import re
from .. import __version__
from .. import ops as _ops
from ..trace.ir import Trace
from ..trace.render import Renderer, named_vars, target_spelling
from .naming import assign_names, comment_text

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while _Bool _Complex _Imaginary n i NAN INFINITY isnan
M_PI M_E ptrdiff_t size_t""".split())

# name -> (C definition, helpers it uses)
HELPERS = {
    "xc_square": ("static inline double xc_square(double x) { return x * x; }", ()),
    "xc_sign": ("static inline double xc_sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : x); }", ()),
    "xc_logaddexp0": (
        "/* log(1 + exp(y)) computed as NumPy's logaddexp(0, y) */\n"
        "static inline double xc_logaddexp0(double y)\n{\n"
        "    if (y == 0) return 0.6931471805599453;\n"
        "    double t = -y;\n"
        "    if (t > 0) return log1p(exp(-t));\n"
        "    if (t <= 0) return y + log1p(exp(t));\n"
        "    return t;\n}", ()),
    "xc_softplus": ("static inline double xc_softplus(double x) { return xc_logaddexp0(x); }",
                    ("xc_logaddexp0",)),
    "xc_sigmoid": ("static inline double xc_sigmoid(double x) { return exp(-xc_logaddexp0(-x)); }",
                   ("xc_logaddexp0",)),
    "xc_maximum": ("static inline double xc_maximum(double a, double b) "
                   "{ return (a >= b || isnan(a)) ? a : b; }", ()),
    "xc_minimum": ("static inline double xc_minimum(double a, double b) "
                   "{ return (a <= b || isnan(a)) ? a : b; }", ()),
    "xc_relu": ("static inline double xc_relu(double x) { return xc_maximum(x, 0.0); }", ("xc_maximum",)),
    "xc_heaviside": ("static inline double xc_heaviside(double x, double h0) "
                     "{ return isnan(x) ? x : (x < 0 ? 0.0 : (x > 0 ? 1.0 : h0)); }", ()),
    "xc_xlogy": ("static inline double xc_xlogy(double x, double y) { return x == 0 ? 0.0 : x * log(y); }", ()),
}


# libm functions that glibc's libmvec provides in vector form (2.35+ for all but
# sin/cos/exp/log/pow). Declaring them `omp declare simd` lets gcc vectorize the loop
# with calls to the vector variants; without -fopenmp-simd the pragmas are ignored.
VECTOR_MATH = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
               "exp", "expm1", "log", "log1p", "pow")


SPELLING = target_spelling("c", nan="NAN", inf="INFINITY")


def c_identifier(name: str) -> str:
    """Plain ASCII: every other character becomes _uXXXX_."""
    return re.sub(r"[^A-Za-z0-9_]", lambda m: f"_u{ord(m.group()):x}_", name)


def _helpers_for(names: set[str]) -> list[str]:
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


def generate_c(trace: Trace, *, func_name: str = "f", description: str = "") -> tuple[str, str]:
    """(C source, the function's declaration) of `trace` as a batch kernel."""
    for ins in trace.instrs:
        if ins.shape != ():
            raise NotImplementedError("the C backend compiles scalar traces only (tensors: later)")
    n_in, n_out = len(trace.inputs), len(trace.outputs)
    reserved = C_KEYWORDS | {op.c for op in _ops.OPS.values() if op.c} | set(HELPERS) | {func_name}
    reserved |= {f"in{k}" for k in range(n_in)} | {f"st{k}" for k in range(n_in)}
    reserved |= {f"out{k}" for k in range(n_out)}
    named = named_vars(trace)
    names = [c_identifier(n) if n is not None else None for n in assign_names(trace, named, reserved)]
    r = Renderer(trace, SPELLING, lambda i: names[i], named=named)

    params = ["ptrdiff_t n", "int threads"]
    params += [f"const double *in{k}, ptrdiff_t st{k}" for k in range(n_in)]
    params += [f"double *out{k}" for k in range(n_out)]
    decl = f"void {func_name}({', '.join(params)})"

    body, declared = [], set()
    for k, (_, v) in enumerate(trace.inputs):
        body.append(f"        const double {names[v]} = in{k}[i * st{k}];")
        declared.add(names[v])
    for i, ins in enumerate(trace.instrs):
        if r.named[i] and ins.op != "input":
            kw = "" if names[i] in declared else "double "
            declared.add(names[i])
            body.append(f"        {kw}{names[i]} = {r.rhs(i)};")
    for k, (_, v) in enumerate(trace.outputs):
        body.append(f"        out{k}[i] = {r.expr(v)[0]};")

    spelled = {_ops.OPS[ins.op].c for ins in trace.instrs}
    used = spelled & set(HELPERS)
    head = [f"/* Generated by exprcompiler {__version__}. Do not edit. */"]
    if description:
        head.append(f"/* {comment_text(description, 160, c=True)} */")
    head.append(f"/* inputs: {', '.join(f'in{k} = {comment_text(nm, 40, c=True)}' for k, (nm, _) in enumerate(trace.inputs))};"
                f" outputs: {', '.join(f'out{k} = {comment_text(nm, 40, c=True)}' for k, (nm, _) in enumerate(trace.outputs))} */")
    head += ["#include <math.h>", "#include <stddef.h>", ""]
    helpers = _helpers_for(used)
    libm = spelled | ({"exp", "log1p"} if "xc_logaddexp0" in "".join(helpers) else set())
    vector = [f for f in VECTOR_MATH if f in libm]
    if vector:
        head.append("/* vector variants from libmvec (used when built with -fopenmp-simd) */")
        for f in vector:
            args = "double, double" if f == "pow" else "double"
            head += ["#pragma omp declare simd notinbranch", f"double {f}({args});"]
        head.append("")
    if helpers:
        head += helpers + [""]
    # `if(parallel: ...)`, not a bare `if`: a bare one also turns off the simd part.
    loop = ["    #pragma omp parallel for simd num_threads(threads) schedule(static) "
            "if(parallel: threads > 1)", "    for (ptrdiff_t i = 0; i < n; ++i) {"]
    unused = ["    (void)threads;  /* unused in a build without OpenMP */"]
    lines = head + [decl, "{"] + unused + loop + body + ["    }", "}"]
    return "\n".join(lines) + "\n", decl + ";"


__all__ = ["generate_c", "c_identifier", "SPELLING"]

