/* Hand-written reference kernels for the three seed functions (see seeds_ref.c).
 *
 * Every kernel evaluates n points; inputs and outputs are contiguous arrays of n
 * doubles. `threads` is the number of OpenMP threads (ignored in a build without
 * OpenMP, which runs serially). A _grad kernel writes the value to y and the
 * partial derivatives to g1 (first input) and g2 (second input). */
#ifndef SEEDS_REF_H
#define SEEDS_REF_H
#include <stddef.h>

void griewank_value(ptrdiff_t n, int threads, const double *x1, const double *x2, double *y);
void griewank_grad(ptrdiff_t n, int threads, const double *x1, const double *x2, double *y, double *g1, double *g2);
void logsin_value(ptrdiff_t n, int threads, const double *x1, const double *x2, double *y);
void logsin_grad(ptrdiff_t n, int threads, const double *x1, const double *x2, double *y, double *g1, double *g2);
void explog_value(ptrdiff_t n, int threads, const double *x, const double *z, double *y);
void explog_grad(ptrdiff_t n, int threads, const double *x, const double *z, double *y, double *gx, double *gz);

#endif
