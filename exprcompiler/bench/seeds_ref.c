/* Hand-written value and value + gradient kernels for the seed functions: the
 * reference that `exprc bench seeds` compares the generated C against.
 *
 *   cubic:    y = x^3 - 3x
 *   griewank: y = (sin(x1/x2) + x1/x2 - exp(x2)) * (x1/x2 - exp(x2))
 *   logsin:   y = log(x1) + x1*x2 - sin(x2)
 *   explog:   y = exp(x*z) + x*z/log(x) + sin(log(x))/(x*z)
 *   square:   y = (x^2 + 1)^2
 *
 * Written as a careful C programmer would: common subexpressions computed once,
 * gradients from hand-derived formulas, as few divisions as the formulas allow.
 *
 * Every kernel evaluates n points; inputs and outputs are contiguous arrays of n
 * doubles. `threads` is the number of OpenMP threads (ignored in a build without
 * OpenMP, which runs serially). A _grad kernel writes the value to y and then one
 * partial derivative per input, in the inputs' order. The Python side
 * (exprcompiler/bench/reference.py) declares the kernels from their definitions
 * below, so each definition keeps its signature on one line.
 *
 * One source, two builds (exprcompiler/bench/reference.py):
 *   scalar:     -O3, no OpenMP. The pragmas are ignored and the loop stays scalar
 *               (a call to libm blocks vectorization); `threads` is ignored.
 *   vectorized: the generated C's flags (-fopenmp -fdisable-tree-sincos
 *               -march=native, -lmvec). `omp declare simd` lets gcc call glibc's
 *               libmvec vector variants of sin/cos/exp/log; with sincos fusion on,
 *               gcc would turn sin(q), cos(q) into a scalar sincos call. */
#include <math.h>
#include <stddef.h>

#pragma omp declare simd notinbranch
double sin(double);
#pragma omp declare simd notinbranch
double cos(double);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);

#define PARALLEL_LOOP _Pragma("omp parallel for simd num_threads(threads) schedule(static) if(parallel: threads > 1)")

/* ---- cubic: y = x (x^2 - 3);  dy/dx = 3 (x^2 - 1) ---- */

void cubic_value(ptrdiff_t n, int threads, const double *x, double *y)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i)
        y[i] = x[i] * (x[i] * x[i] - 3.0);
}

void cubic_grad(ptrdiff_t n, int threads, const double *x, double *y, double *gx)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double s = x[i] * x[i];
        y[i] = x[i] * (s - 3.0);
        gx[i] = 3.0 * (s - 1.0);
    }
}

/* ---- square: s = x^2 + 1, y = s^2;  dy/dx = 4 x s ---- */

void square_value(ptrdiff_t n, int threads, const double *x, double *y)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double s = x[i] * x[i] + 1.0;
        y[i] = s * s;
    }
}

void square_grad(ptrdiff_t n, int threads, const double *x, double *y, double *gx)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double s = x[i] * x[i] + 1.0;
        y[i] = s * s;
        gx[i] = 4.0 * x[i] * s;
    }
}

/* ---- griewank: q = x1/x2, e = exp(x2), d = q - e, a = sin(q) + d, y = a*d ---- */

void griewank_value(ptrdiff_t n, int threads, const double *x1, const double *x2, double *y)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double q = x1[i] / x2[i];
        const double d = q - exp(x2[i]);
        y[i] = (sin(q) + d) * d;
    }
}

/* dy/dd (sin q held) = a + d;  dy/dq = d cos q + dy/dd;
 * dy/dx1 = (dy/dq) / x2;  dy/dx2 = -(dy/dq) q / x2 - (dy/dd) e = -(dy/dx1 q + dy/dd e) */
void griewank_grad(ptrdiff_t n, int threads, const double *x1, const double *x2, double *y, double *g1, double *g2)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double q = x1[i] / x2[i];
        const double e = exp(x2[i]);
        const double d = q - e;
        const double a = sin(q) + d;
        const double gd = a + d;
        const double gx1 = (d * cos(q) + gd) / x2[i];
        y[i] = a * d;
        g1[i] = gx1;
        g2[i] = -(gx1 * q + gd * e);
    }
}

/* ---- logsin: y = log(x1) + x1 x2 - sin(x2);  dy/dx1 = 1/x1 + x2, dy/dx2 = x1 - cos(x2) ---- */

void logsin_value(ptrdiff_t n, int threads, const double *x1, const double *x2, double *y)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i)
        y[i] = log(x1[i]) + x1[i] * x2[i] - sin(x2[i]);
}

void logsin_grad(ptrdiff_t n, int threads, const double *x1, const double *x2, double *y, double *g1, double *g2)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i) {
        y[i] = log(x1[i]) + x1[i] * x2[i] - sin(x2[i]);
        g1[i] = 1.0 / x1[i] + x2[i];
        g2[i] = x1[i] - cos(x2[i]);
    }
}

/* ---- explog: p = x z, L = log x, E = exp(p), y = E + p/L + sin(L)/p ----
 * dy/dp (L held) = E + 1/L - sin(L)/p^2;  dy/dL (p held) = -p/L^2 + cos(L)/p;
 * dy/dx = z dy/dp + (dy/dL)/x;  dy/dz = x dy/dp */

void explog_value(ptrdiff_t n, int threads, const double *x, const double *z, double *y)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double p = x[i] * z[i];
        const double L = log(x[i]);
        y[i] = exp(p) + p / L + sin(L) / p;
    }
}

void explog_grad(ptrdiff_t n, int threads, const double *x, const double *z, double *y, double *gx, double *gz)
{
    PARALLEL_LOOP
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double p = x[i] * z[i];
        const double L = log(x[i]);
        const double E = exp(p);
        const double iL = 1.0 / L;
        const double ip = 1.0 / p;
        const double u = p * iL;             /* p/L */
        const double w = sin(L) * ip;        /* sin(L)/p */
        const double gp = E + iL - w * ip;
        const double gL = cos(L) * ip - u * iL;
        y[i] = E + u + w;
        gx[i] = gp * z[i] + gL / x[i];
        gz[i] = gp * x[i];
    }
}
