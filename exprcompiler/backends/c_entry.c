/* exprcompiler's one-point and batch entries into a kernel (backends/c_entry.py). Do not edit. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define XC_DLADDR
#endif

typedef int (*xc_packed)(const double *in, double *out);
/* the kernel's batch entry (c_entry.batch_entry): its pointers and strides in arrays */
typedef int (*xc_batch_fn)(ptrdiff_t n, int threads, const double *const *in, const ptrdiff_t *st,
                           double *const *out, const ptrdiff_t *os);

#define XC_STACK 64    /* doubles on the C stack; a larger point is allocated */
#define XC_DEPTH 8     /* nesting of a result spec */
#define XC_CAPSULE "exprcompiler.entry"
#define XC_RESULTS 8   /* arrays a batch call returns (a Hessian: 3) */

/* What an entry returns is its spec, in prefix code: k in [0, n_out) is float(out[k]);
   -1 - m a tuple of the next m items; n_out + j block j, a new array empty(shapes[j])
   holding out[start_j], ..., out[start_j + size_j - 1] — then assemble(that), if set. */
typedef struct {
    xc_packed fn;
    Py_ssize_t n_in, n_out;
    PyObject *keep, *general, *empty, *assemble;
    PyObject *shapes;  /* the blocks' shapes (a tuple of tuples), or NULL */
    PyObject *names;   /* call: the inputs' names (distinct interned str), or NULL: positional only */
    Py_ssize_t spec_len, n_blocks;
    Py_ssize_t *order; /* at: the kernel's input k is x[order[k]]; NULL: x itself */
    /* run's batch calls (NULL batch: one point only): result r is a new array of shape
       batch + suffix r, or the caller's, holding the next width r outputs of each point */
    xc_batch_fn batch;
    PyObject *ndarray;    /* the type of the arrays taken (exactly) */
    PyObject *suffixes;   /* a tuple of tuples of ints */
    Py_ssize_t n_results, threads, parallel_from;  /* threads 0: one below parallel_from points */
    Py_ssize_t *widths;   /* n_results, then each suffix's length and sizes */
    Py_ssize_t spec[]; /* the spec's items, then (start, size) of each block, then the order */
} xc_entry;

static void xc_release(xc_entry *e)
{
    Py_XDECREF(e->keep);
    Py_XDECREF(e->general);
    Py_XDECREF(e->empty);
    Py_XDECREF(e->assemble);
    Py_XDECREF(e->shapes);
    Py_XDECREF(e->names);
    Py_XDECREF(e->ndarray);
    Py_XDECREF(e->suffixes);
    PyMem_Free(e->widths);
    PyMem_Free(e);
}

static void xc_free(PyObject *capsule)
{
    xc_entry *e = PyCapsule_GetPointer(capsule, XC_CAPSULE);
    if (e != NULL)
        xc_release(e);
}

/* A buffer of doubles in this machine's byte order. */
static int xc_is_double(const Py_buffer *b)
{
    const char *f = b->format;
    if (b->itemsize != (Py_ssize_t)sizeof(double) || f == NULL)
        return 0;
    if (f[0] == '@' || f[0] == '=')
        ++f;
#if PY_LITTLE_ENDIAN
    else if (f[0] == '<')
        ++f;
#else
    else if (f[0] == '>' || f[0] == '!')
        ++f;
#endif
    return f[0] == 'd' && f[1] == '\0';
}

/* n contiguous doubles, one dimension (a stride is irrelevant for n <= 1). */
static int xc_vector(const Py_buffer *b, Py_ssize_t n)
{
    return xc_is_double(b) && b->ndim == 1 && b->shape != NULL && b->shape[0] == n
        && (n <= 1 || b->strides == NULL || b->strides[0] == (Py_ssize_t)sizeof(double));
}

/* A real number as a double; 0 (no exception) for anything else. */
static int xc_number(PyObject *a, double *v)
{
    if (PyFloat_Check(a)) {
        *v = PyFloat_AS_DOUBLE(a);
        return 1;
    }
    if (PyLong_CheckExact(a)) {
        int overflow = 0;
        long long k = PyLong_AsLongLongAndOverflow(a, &overflow);
        if (k == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (overflow || k > (1LL << 53) || k < -(1LL << 53))
            return 0;
        *v = (double)k;
        return 1;
    }
    return 0;
}

static PyObject *xc_failed(void)
{
    return PyErr_Format(PyExc_MemoryError, "the C kernel could not allocate its tape");
}

/* Block j: a new array from empty(shape), checked to be size C-contiguous doubles
   before anything is written to it, holding its run of the outputs. */
static PyObject *xc_block(const xc_entry *e, Py_ssize_t j, const double *out)
{
    const Py_ssize_t start = e->spec[e->spec_len + 2 * j], size = e->spec[e->spec_len + 2 * j + 1];
    PyObject *a = PyObject_CallOneArg(e->empty, PyTuple_GET_ITEM(e->shapes, j));
    if (a == NULL)
        return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(a, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) != 0) {
        Py_DECREF(a);
        return NULL;
    }
    int ok = xc_is_double(&b) && b.len == size * (Py_ssize_t)sizeof(double);
    if (ok && size > 0)
        memcpy(b.buf, out + start, size * sizeof(double));
    PyBuffer_Release(&b);
    if (!ok) {
        Py_DECREF(a);
        return PyErr_Format(PyExc_TypeError, "one-point entry: empty() did not give %zd C-contiguous doubles",
                            size);
    }
    return a;
}

/* The result nested as the spec says, from its item *pos on; checked at creation. */
static PyObject *xc_nest(const xc_entry *e, Py_ssize_t *pos, const double *out)
{
    Py_ssize_t s = e->spec[(*pos)++];
    if (s >= e->n_out)
        return xc_block(e, s - e->n_out, out);
    if (s >= 0)
        return PyFloat_FromDouble(out[s]);
    Py_ssize_t m = -1 - s;
    PyObject *t = PyTuple_New(m);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t j = 0; j < m; ++j) {
        PyObject *item = xc_nest(e, pos, out);
        if (item == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, j, item);
    }
    return t;
}

/* The kernel at the n_in doubles of `in`, and the result built from its outputs. */
static PyObject *xc_result(const xc_entry *e, const double *in)
{
    double small[XC_STACK], *out = small;
    if (e->n_out > XC_STACK && (out = PyMem_Malloc(e->n_out * sizeof(double))) == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    if (e->fn(in, out)) {
        xc_failed();
    } else {
        Py_ssize_t pos = 0;
        result = xc_nest(e, &pos, out);
    }
    if (out != small)
        PyMem_Free(out);
    if (result != NULL && e->assemble != NULL) {
        PyObject *assembled = PyObject_CallOneArg(e->assemble, result);
        Py_DECREF(result);
        result = assembled;
    }
    return result;
}

/* The inputs of a call (borrowed) into items: the arguments from args[skip] on by
   position, the rest by name; 1 if that is every input once, else 0 (-1 with an
   exception). */
static int xc_inputs(const xc_entry *e, PyObject *args, Py_ssize_t skip, PyObject *kwargs, PyObject **items)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args) - skip;
    Py_ssize_t nkw = kwargs == NULL ? 0 : PyDict_GET_SIZE(kwargs);
    /* every name looked up below is there and they are distinct: so the dict holds
       exactly the inputs after the positional ones */
    if (nargs < 0 || nargs > e->n_in || nkw != e->n_in - nargs || (nkw > 0 && e->names == NULL))
        return 0;
    for (Py_ssize_t k = 0; k < e->n_in; ++k) {
        items[k] = k < nargs ? PyTuple_GET_ITEM(args, skip + k)
                             : PyDict_GetItemWithError(kwargs, PyTuple_GET_ITEM(e->names, k));
        if (items[k] == NULL)
            return PyErr_Occurred() ? -1 : 0;
    }
    return 1;
}

/* One point: the result if every input is a number, else NotImplemented. */
static PyObject *xc_point(const xc_entry *e, PyObject *const *items)
{
    double small[XC_STACK], *in = small;
    if (e->n_in > XC_STACK && (in = PyMem_Malloc(e->n_in * sizeof(double))) == NULL)
        return PyErr_NoMemory();
    Py_ssize_t k = 0;
    while (k < e->n_in && xc_number(items[k], &in[k]))
        ++k;
    PyObject *result = k < e->n_in ? Py_NewRef(Py_NotImplemented) : xc_result(e, in);
    if (in != small)
        PyMem_Free(in);
    return result;
}

/* The inputs of a call, then fn(e, items, arg); NotImplemented where they are not
   every input once. */
static PyObject *xc_with_inputs(const xc_entry *e, PyObject *args, Py_ssize_t skip, PyObject *kwargs,
                                PyObject *(*fn)(const xc_entry *, PyObject *const *, PyObject *), PyObject *arg)
{
    PyObject *small[XC_STACK], **items = small;
    if (e->n_in > XC_STACK && (items = PyMem_Malloc(e->n_in * sizeof(PyObject *))) == NULL)
        return PyErr_NoMemory();
    int got = xc_inputs(e, args, skip, kwargs, items);
    PyObject *result = got < 0 ? NULL : got == 0 ? Py_NewRef(Py_NotImplemented) : fn(e, items, arg);
    if (items != small)
        PyMem_Free(items);
    return result;
}

static PyObject *xc_point_of(const xc_entry *e, PyObject *const *items, PyObject *unused)
{
    (void)unused;
    return xc_point(e, items);
}

/* f(*numbers, **numbers): the first arguments by position, the rest by name (every
   input once); anything else NotImplemented. */
static PyObject *xc_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    const xc_entry *e = PyCapsule_GetPointer(self, XC_CAPSULE);
    if (e == NULL)
        return NULL;
    return xc_with_inputs(e, args, 0, kwargs, xc_point_of, NULL);
}

/* The memory a buffer's elements span, [*lo, *hi) (NumPy's may_share_memory bounds);
   0 if it holds none. */
static int xc_span(const Py_buffer *b, const char **lo, const char **hi)
{
    const char *l = b->buf, *h = b->buf;
    for (int d = 0; d < b->ndim; ++d) {
        if (b->shape[d] == 0)
            return 0;
        Py_ssize_t s = b->strides[d] * (b->shape[d] - 1);
        if (s > 0)
            h += s;
        else
            l += s;
    }
    *lo = l;
    *hi = h + b->itemsize;
    return 1;
}

static int xc_overlap(const Py_buffer *a, const Py_buffer *b)
{
    const char *alo, *ahi, *blo, *bhi;
    return xc_span(a, &alo, &ahi) && xc_span(b, &blo, &bhi) && alo < bhi && blo < ahi;
}

/* The same elements: the same start, shape and strides (an input given as out=). */
static int xc_same(const Py_buffer *a, const Py_buffer *b)
{
    return a->buf == b->buf && a->ndim == b->ndim
        && memcmp(a->shape, b->shape, a->ndim * sizeof(Py_ssize_t)) == 0
        && memcmp(a->strides, b->strides, a->ndim * sizeof(Py_ssize_t)) == 0;
}

static int xc_aligned(const Py_buffer *b)
{
    return (uintptr_t)b->buf % sizeof(double) == 0;
}

/* Result r's buffer: a float64 array of the batch's nd dimensions `batch` and its
   suffix (sizes `dims`, `nsfx` of them), C-contiguous and aligned. */
static int xc_result_shape(const Py_buffer *b, int nd, const Py_ssize_t *batch, Py_ssize_t nsfx,
                           const Py_ssize_t *dims)
{
    if (!xc_is_double(b) || !xc_aligned(b) || b->ndim != nd + nsfx || memcmp(b->shape, batch, nd * sizeof(Py_ssize_t)))
        return 0;
    return memcmp(b->shape + nd, dims, nsfx * sizeof(Py_ssize_t)) == 0;
}

/* A batch through the kernel's batch entry: every input a number or a float64 array
   of exactly e->ndarray's type — of the batch's shape (the first array not of size 1
   gives it, else the size-1 array of most dimensions; one dimension at any stride of
   whole items, or C-contiguous) or of size 1 with no more dimensions (a stride of 0),
   at least one array of one dimension or more — and `out` None (new arrays from `empty`)
   or a tuple or list of the n_results arrays of exactly that type, float64, of shape
   batch + suffix, C-contiguous, writable, overlapping neither each other nor an input
   unless they are that input itself. Anything else NotImplemented, before anything is
   written: api.Compiled's general path then says what is wrong. */
static PyObject *xc_batch(const xc_entry *e, PyObject *const *items, PyObject *out)
{
    const Py_ssize_t n_in = e->n_in, n_out = e->n_out, n_res = e->n_results;
    const size_t room = n_in * (sizeof(Py_buffer) + sizeof(double *) + sizeof(ptrdiff_t) + sizeof(double))
        + n_out * (sizeof(double *) + sizeof(ptrdiff_t));
    char *mem = PyMem_Malloc(room);
    if (mem == NULL)
        return PyErr_NoMemory();
    Py_buffer *views = (Py_buffer *)mem;             /* .obj NULL: a number */
    const double **in = (const double **)(views + n_in);
    ptrdiff_t *st = (ptrdiff_t *)(in + n_in);
    double *numbers = (double *)(st + n_in);
    double **outs = (double **)(numbers + n_in);
    ptrdiff_t *os = (ptrdiff_t *)(outs + n_out);
    Py_buffer results[XC_RESULTS];
    PyObject *arrays[XC_RESULTS] = {NULL};
    Py_ssize_t got = 0, got_results = 0;              /* views and results held */
    PyObject *ret = NULL;                             /* NULL, no exception: NotImplemented */
    const Py_buffer *first = NULL;                    /* the array that gives the batch */
    for (; got < n_in; ++got) {
        Py_buffer *b = &views[got];
        if (xc_number(items[got], &numbers[got])) {
            b->obj = NULL;
            in[got] = &numbers[got];
            st[got] = 0;
            continue;
        }
        if (Py_TYPE(items[got]) != (PyTypeObject *)e->ndarray)
            goto done;
        if (PyObject_GetBuffer(items[got], b, PyBUF_RECORDS_RO) != 0) {
            PyErr_Clear();
            goto done;
        }
        if (!xc_is_double(b) || !xc_aligned(b)) {
            ++got;
            goto done;
        }
        /* the batch: the first array not of one point, else the one point of most dimensions */
        if (first == NULL || (first->len == (Py_ssize_t)sizeof(double)
                              && (b->len != (Py_ssize_t)sizeof(double) || b->ndim > first->ndim)))
            first = b;
    }
    if (first == NULL || first->ndim < 1)
        goto done;  /* numbers and 0-d arrays: the general path */
    const int nd = first->ndim;
    const Py_ssize_t points = first->len / (Py_ssize_t)sizeof(double);
    for (Py_ssize_t k = 0; k < n_in; ++k) {
        const Py_buffer *b = &views[k];
        if (b->obj == NULL)
            continue;
        in[k] = b->buf;
        if (b->len == (Py_ssize_t)sizeof(double)) {
            if (b->ndim > nd)
                goto done;  /* it would add dimensions to the batch */
            st[k] = 0;
        } else if (b->ndim != nd || memcmp(b->shape, first->shape, nd * sizeof(Py_ssize_t))) {
            goto done;
        } else if (nd == 1 && b->strides[0] % (Py_ssize_t)sizeof(double) == 0) {
            st[k] = b->strides[0] / (Py_ssize_t)sizeof(double);
        } else if (PyBuffer_IsContiguous(b, 'C')) {
            st[k] = 1;
        } else {
            goto done;
        }
    }
    Py_ssize_t threads = e->threads;
    if (threads == 0) {  /* chosen per call (c_build.ThreadChoice) above parallel_from points */
        if (points >= e->parallel_from)
            goto done;
        threads = 1;
    }
    const Py_ssize_t *layout = e->widths + n_res;     /* each suffix: its length, then its sizes */
    if (out == Py_None) {
        for (const Py_ssize_t *sfx = layout; got_results < n_res; sfx += 1 + sfx[0]) {
            PyObject *shape = PyTuple_New(nd + sfx[0]);
            if (shape == NULL)
                goto done;
            for (Py_ssize_t d = 0; d < nd + sfx[0]; ++d) {
                PyObject *size = PyLong_FromSsize_t(d < nd ? first->shape[d] : sfx[1 + d - nd]);
                if (size == NULL) {
                    Py_DECREF(shape);
                    goto done;
                }
                PyTuple_SET_ITEM(shape, d, size);
            }
            PyObject *a = PyObject_CallOneArg(e->empty, shape);
            Py_DECREF(shape);
            if (a == NULL)
                goto done;
            arrays[got_results] = a;
            if (PyObject_GetBuffer(a, &results[got_results], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE))
                goto done;
            ++got_results;
            if (!xc_result_shape(&results[got_results - 1], nd, first->shape, sfx[0], sfx + 1)) {
                PyErr_SetString(PyExc_TypeError, "batch entry: empty() did not give a C-contiguous float64 array "
                                "of the result's shape");
                goto done;
            }
        }
    } else {
        if (!(PyTuple_CheckExact(out) || PyList_CheckExact(out)) || PySequence_Fast_GET_SIZE(out) != n_res)
            goto done;
        for (const Py_ssize_t *sfx = layout; got_results < n_res; sfx += 1 + sfx[0]) {
            PyObject *o = PySequence_Fast_GET_ITEM(out, got_results);
            if (Py_TYPE(o) != (PyTypeObject *)e->ndarray)
                goto done;
            arrays[got_results] = Py_NewRef(o);
            Py_buffer *b = &results[got_results];
            if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE)) {
                PyErr_Clear();  /* strided or read-only: the general path says which */
                goto done;
            }
            ++got_results;
            if (!xc_result_shape(b, nd, first->shape, sfx[0], sfx + 1))
                goto done;
            for (Py_ssize_t q = 0; q + 1 < got_results; ++q)
                if (xc_overlap(b, &results[q]))
                    goto done;
            for (Py_ssize_t k = 0; k < n_in; ++k)
                if (views[k].obj != NULL && xc_overlap(b, &views[k]) && !xc_same(b, &views[k]))
                    goto done;
        }
    }
    Py_ssize_t j = 0;
    for (Py_ssize_t r = 0; r < n_res; ++r)
        for (Py_ssize_t c = 0; c < e->widths[r]; ++c, ++j) {
            outs[j] = (double *)results[r].buf + c;
            os[j] = e->widths[r];
        }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = e->batch(points, (int)threads, in, st, outs, os);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        PyErr_Format(PyExc_MemoryError, "the C kernel could not allocate its tape for %zd points", points);
        goto done;
    }
    if ((ret = PyTuple_New(n_res)) != NULL)
        for (Py_ssize_t r = 0; r < n_res; ++r) {
            PyTuple_SET_ITEM(ret, r, arrays[r]);
            arrays[r] = NULL;
        }
done:
    for (Py_ssize_t r = 0; r < got_results; ++r)
        PyBuffer_Release(&results[r]);
    for (Py_ssize_t r = 0; r < n_res; ++r)
        Py_XDECREF(arrays[r]);
    for (Py_ssize_t k = 0; k < got; ++k)
        if (views[k].obj != NULL)
            PyBuffer_Release(&views[k]);
    PyMem_Free(mem);
    if (ret == NULL && !PyErr_Occurred())
        ret = Py_NewRef(Py_NotImplemented);
    return ret;
}

static PyObject *xc_run_of(const xc_entry *e, PyObject *const *items, PyObject *out)
{
    if (out == Py_None) {
        PyObject *result = xc_point(e, items);
        if (result != Py_NotImplemented)
            return result;
        Py_DECREF(result);
    }
    return e->batch == NULL ? Py_NewRef(Py_NotImplemented) : xc_batch(e, items, out);
}

/* run(out, *inputs, **inputs): one point (every input a number, out None) or a batch
   (xc_batch); anything else NotImplemented. */
static PyObject *xc_run(PyObject *self, PyObject *args, PyObject *kwargs)
{
    const xc_entry *e = PyCapsule_GetPointer(self, XC_CAPSULE);
    if (e == NULL)
        return NULL;
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "run(out, *inputs, **inputs): out is missing");
        return NULL;
    }
    return xc_with_inputs(e, args, 1, kwargs, xc_run_of, PyTuple_GET_ITEM(args, 0));
}

static PyObject *xc_at(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    const xc_entry *e = PyCapsule_GetPointer(self, XC_CAPSULE);
    if (e == NULL)
        return NULL;
    Py_buffer x;
    if ((kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) || nargs < 1 || nargs > 2
            || (nargs == 2 && args[1] != Py_None))
        return PyObject_Vectorcall(e->general, args, nargs, kwnames);
    if (PyObject_GetBuffer(args[0], &x, PyBUF_RECORDS_RO) != 0) {
        PyErr_Clear();  /* not a buffer (a list, ...): the general path converts it */
        return PyObject_Vectorcall(e->general, args, nargs, kwnames);
    }
    if (!xc_vector(&x, e->n_in)) {  /* strided, another dtype or length: general path */
        PyBuffer_Release(&x);
        return PyObject_Vectorcall(e->general, args, nargs, kwnames);
    }
    PyObject *result;
    if (e->order == NULL) {
        result = xc_result(e, x.buf);
    } else {
        double small[XC_STACK], *in = small;
        const double *xs = x.buf;
        if (e->n_in > XC_STACK && (in = PyMem_Malloc(e->n_in * sizeof(double))) == NULL) {
            PyBuffer_Release(&x);
            return PyErr_NoMemory();
        }
        for (Py_ssize_t k = 0; k < e->n_in; ++k)
            in[k] = xs[e->order[k]];
        result = xc_result(e, in);
        if (in != small)
            PyMem_Free(in);
    }
    PyBuffer_Release(&x);
    return result;
}

static PyMethodDef xc_call_def = {"call", (PyCFunction)(void (*)(void))xc_call, METH_VARARGS | METH_KEYWORDS,
    "f(*numbers, **numbers): one point through the kernel's packed entry (exprcompiler.backends.c_entry)"};
static PyMethodDef xc_run_def = {"run", (PyCFunction)(void (*)(void))xc_run, METH_VARARGS | METH_KEYWORDS,
    "run(out, *inputs, **inputs): one point or a batch through the kernel's entries (exprcompiler.backends.c_entry)"};
static PyMethodDef xc_at_def = {"at", (PyCFunction)(void (*)(void))xc_at, METH_FASTCALL | METH_KEYWORDS,
    "at(x, seed=None, /, **data): one point, the variables packed in x (exprcompiler.packed)"};

static PyObject *xc_function(xc_entry *e, PyMethodDef *def)
{
    PyObject *capsule = PyCapsule_New(e, XC_CAPSULE, xc_free);
    if (capsule == NULL) {
        xc_release(e);
        return NULL;
    }
    PyObject *f = PyCFunction_NewEx(def, capsule, NULL);
    Py_DECREF(capsule);
    return f;
}

/* e->names from `names`: None (positional calls only), or a tuple of the n_in inputs'
   names, distinct str, kept interned; -1 with an exception. */
static int xc_names(xc_entry *e, PyObject *names)
{
    if (names == Py_None)
        return 0;
    if (!PyTuple_Check(names) || PyTuple_GET_SIZE(names) != e->n_in) {
        PyErr_Format(PyExc_ValueError, "one-point entry: names must be None or a tuple of the %zd input names",
                     e->n_in);
        return -1;
    }
    if ((e->names = PyTuple_New(e->n_in)) == NULL)
        return -1;
    for (Py_ssize_t k = 0; k < e->n_in; ++k) {
        PyObject *name = PyTuple_GET_ITEM(names, k);
        if (!PyUnicode_CheckExact(name)) {
            PyErr_SetString(PyExc_ValueError, "one-point entry: every name must be a str");
            return -1;
        }
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        PyTuple_SET_ITEM(e->names, k, name);
    }
    PyObject *distinct = PyFrozenSet_New(e->names);
    if (distinct == NULL)
        return -1;
    Py_ssize_t n = PySet_GET_SIZE(distinct);
    Py_DECREF(distinct);
    if (n != e->n_in) {
        PyErr_SetString(PyExc_ValueError, "one-point entry: the names must be distinct");
        return -1;
    }
    return 0;
}

/* The spec's items into e->spec: one item, well nested, every index an output or a
   block; -1 with an exception. */
static int xc_spec(xc_entry *e, PyObject *spec)
{
    Py_ssize_t open[XC_DEPTH + 1], depth = 0;
    open[0] = 1;
    const char *why = NULL;
    for (Py_ssize_t k = 0; k < e->spec_len && why == NULL; ++k) {
        Py_ssize_t s = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, k));
        if (s == -1 && PyErr_Occurred())
            return -1;
        e->spec[k] = s;
        if (open[depth] == 0)
            why = "more items than it nests";
        else if (s >= e->n_out + e->n_blocks)
            why = "an output index out of range";
        else {
            --open[depth];
            if (s < 0) {
                if (depth == XC_DEPTH)
                    why = "nested too deep";
                else
                    open[++depth] = -1 - s;
            }
            while (depth > 0 && open[depth] == 0)
                --depth;
        }
    }
    if (why == NULL && (depth != 0 || open[0] != 0))
        why = "fewer items than it nests";
    if (why == NULL)
        return 0;
    PyErr_Format(PyExc_ValueError, "one-point entry: bad result spec (%s)", why);
    return -1;
}

/* The blocks, (start, shape) pairs with shape a tuple of ints >= 0, each a run of the
   outputs: their (start, size) after the spec, and their shapes; -1 with an exception. */
static int xc_blocks(xc_entry *e, PyObject *blocks)
{
    if ((e->shapes = PyTuple_New(e->n_blocks)) == NULL)
        return -1;
    for (Py_ssize_t j = 0; j < e->n_blocks; ++j) {
        PyObject *b = PyTuple_GET_ITEM(blocks, j), *shape;
        Py_ssize_t start = 0, size = 1;
        int ok = PyTuple_CheckExact(b) && PyTuple_GET_SIZE(b) == 2 && PyLong_CheckExact(PyTuple_GET_ITEM(b, 0))
            && PyTuple_CheckExact(shape = PyTuple_GET_ITEM(b, 1));
        if (ok) {
            start = PyLong_AsSsize_t(PyTuple_GET_ITEM(b, 0));
            ok = start >= 0 && start <= e->n_out;
            for (Py_ssize_t d = 0; ok && d < PyTuple_GET_SIZE(shape); ++d) {
                PyObject *dim = PyTuple_GET_ITEM(shape, d);
                Py_ssize_t n = PyLong_CheckExact(dim) ? PyLong_AsSsize_t(dim) : -1;
                ok = n >= 0 && (n == 0 || size <= (e->n_out - start) / n);  /* no overflow */
                size *= ok ? n : 1;
            }
            ok = ok && start + size <= e->n_out;
        }
        if (!ok) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "one-point entry: block %zd is not (start, shape) within the %zd "
                         "outputs", j, e->n_out);
            return -1;
        }
        e->spec[e->spec_len + 2 * j] = start;
        e->spec[e->spec_len + 2 * j + 1] = size;
        PyTuple_SET_ITEM(e->shapes, j, Py_NewRef(shape));
    }
    return 0;
}

/* An entry of (address, n_in, n_out, keep) whose result is `result` — a spec (a
   tuple) with `blocks`, or a callable assemble(array of the n_out outputs) — made
   with `empty`, with room for `order_len` order entries; NULL with an exception. */
static xc_entry *xc_new(PyObject *address, Py_ssize_t n_in, Py_ssize_t n_out, PyObject *keep, PyObject *result,
                        PyObject *blocks, PyObject *empty, Py_ssize_t order_len)
{
    if (n_in < 0 || n_out < 1 || n_in > PY_SSIZE_T_MAX / 16 || n_out > PY_SSIZE_T_MAX / 16) {
        PyErr_Format(PyExc_ValueError, "one-point entry: bad sizes n_in=%zd, n_out=%zd", n_in, n_out);
        return NULL;
    }
    int assemble = !PyTuple_Check(result);
    if (!PyTuple_Check(blocks) || (assemble && (!PyCallable_Check(result) || PyTuple_GET_SIZE(blocks) > 0))
            || ((assemble || PyTuple_GET_SIZE(blocks) > 0) && !PyCallable_Check(empty))) {
        PyErr_SetString(PyExc_ValueError, "one-point entry: the result is a spec (a tuple) with a tuple of "
                        "blocks, or a callable assemble(array) and no blocks; blocks need a callable empty");
        return NULL;
    }
    void *fn = PyLong_AsVoidPtr(address);
    if (fn == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "one-point entry: a null function address");
        return NULL;
    }
    Py_ssize_t spec_len = assemble ? 1 : PyTuple_GET_SIZE(result);
    Py_ssize_t n_blocks = assemble ? 1 : PyTuple_GET_SIZE(blocks);
    if (spec_len > PY_SSIZE_T_MAX / 64 || n_blocks > PY_SSIZE_T_MAX / 64) {
        PyErr_NoMemory();
        return NULL;
    }
    xc_entry *e = PyMem_Calloc(1, sizeof(xc_entry) + (spec_len + 2 * n_blocks + order_len) * sizeof(Py_ssize_t));
    if (e == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    e->fn = (xc_packed)(uintptr_t)fn;
    e->n_in = n_in;
    e->n_out = n_out;
    e->keep = Py_NewRef(keep);
    e->spec_len = spec_len;
    e->n_blocks = n_blocks;
    if (empty != Py_None)
        e->empty = Py_NewRef(empty);
    int failed;
    if (assemble) {  /* one block of every output, handed to assemble */
        e->assemble = Py_NewRef(result);
        e->spec[0] = n_out;
        PyObject *all = Py_BuildValue("((n(n)))", (Py_ssize_t)0, n_out);
        failed = all == NULL || xc_blocks(e, all);
        Py_XDECREF(all);
    } else {
        failed = xc_blocks(e, blocks) || xc_spec(e, result);
    }
    if (failed) {
        xc_release(e);
        return NULL;
    }
    return e;
}

static PyObject *call_entry(PyObject *module, PyObject *args)
{
    PyObject *address, *keep, *result, *names = Py_None, *empty = Py_None, *blocks = NULL;
    Py_ssize_t n_in, n_out;
    (void)module;
    if (!PyArg_ParseTuple(args, "OnnOO|OOO!", &address, &n_in, &n_out, &keep, &result, &names, &empty,
                          &PyTuple_Type, &blocks))
        return NULL;
    PyObject *none = PyTuple_New(0);
    if (none == NULL)
        return NULL;
    xc_entry *e = xc_new(address, n_in, n_out, keep, result, blocks ? blocks : none, empty, 0);
    Py_DECREF(none);
    if (e == NULL)
        return NULL;
    if (xc_names(e, names)) {
        xc_release(e);
        return NULL;
    }
    return xc_function(e, &xc_call_def);
}

static PyObject *at_entry(PyObject *module, PyObject *args)
{
    PyObject *address, *keep, *general, *empty, *result, *blocks = NULL, *order = Py_None;
    Py_ssize_t n_in, n_out;
    (void)module;
    if (!PyArg_ParseTuple(args, "OnnOOOO|O!O", &address, &n_in, &n_out, &keep, &general, &empty, &result,
                          &PyTuple_Type, &blocks, &order))
        return NULL;
    if (!PyCallable_Check(general) || (order != Py_None && (!PyTuple_Check(order)
                                                             || PyTuple_GET_SIZE(order) != n_in))) {
        PyErr_SetString(PyExc_ValueError, "one-point entry: general is a callable, order None or a tuple of "
                        "n_in positions in x");
        return NULL;
    }
    PyObject *none = PyTuple_New(0);
    if (none == NULL)
        return NULL;
    xc_entry *e = xc_new(address, n_in, n_out, keep, result, blocks ? blocks : none, empty,
                         order == Py_None ? 0 : n_in);
    Py_DECREF(none);
    if (e == NULL)
        return NULL;
    e->general = Py_NewRef(general);
    if (order != Py_None) {
        e->order = e->spec + e->spec_len + 2 * e->n_blocks;
        for (Py_ssize_t k = 0; k < n_in; ++k) {
            PyObject *p = PyTuple_GET_ITEM(order, k);
            Py_ssize_t i = PyLong_CheckExact(p) ? PyLong_AsSsize_t(p) : -1;
            if (i < 0 || i >= n_in) {
                PyErr_Clear();
                PyErr_SetString(PyExc_ValueError, "one-point entry: an order entry is not a position in x");
                xc_release(e);
                return NULL;
            }
            e->order[k] = i;
        }
    }
    return xc_function(e, &xc_at_def);
}

/* e->widths from `suffixes`, a tuple of 1 to XC_RESULTS tuples of ints >= 0 whose
   products add up to n_out; -1 with an exception. */
static int xc_layout(xc_entry *e, PyObject *suffixes)
{
    const Py_ssize_t n_res = PyTuple_GET_SIZE(suffixes);
    Py_ssize_t room = n_res, total = 0;
    int ok = n_res >= 1 && n_res <= XC_RESULTS;
    for (Py_ssize_t r = 0; ok && r < n_res; ++r) {
        PyObject *sfx = PyTuple_GET_ITEM(suffixes, r);
        ok = PyTuple_CheckExact(sfx) && PyTuple_GET_SIZE(sfx) <= 64;
        room += ok ? 1 + PyTuple_GET_SIZE(sfx) : 0;
    }
    if (ok && (e->widths = PyMem_Calloc(room, sizeof(Py_ssize_t))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t *at = e->widths + n_res;
    for (Py_ssize_t r = 0; ok && r < n_res; ++r) {
        PyObject *sfx = PyTuple_GET_ITEM(suffixes, r);
        Py_ssize_t width = 1;
        *at++ = PyTuple_GET_SIZE(sfx);
        for (Py_ssize_t d = 0; ok && d < PyTuple_GET_SIZE(sfx); ++d) {
            PyObject *dim = PyTuple_GET_ITEM(sfx, d);
            Py_ssize_t size = PyLong_CheckExact(dim) ? PyLong_AsSsize_t(dim) : -1;
            ok = size >= 0 && (size == 0 || width <= e->n_out / size);  /* no overflow */
            width *= ok ? size : 1;
            *at++ = size;
        }
        e->widths[r] = width;
        total += width;
        ok = ok && total <= e->n_out;
    }
    if (ok && total == e->n_out) {
        e->n_results = n_res;
        e->suffixes = Py_NewRef(suffixes);
        return 0;
    }
    PyErr_Clear();
    PyErr_Format(PyExc_ValueError, "batch entry: the suffixes must be 1 to %d tuples of sizes holding the %zd "
                 "outputs", XC_RESULTS, e->n_out);
    return -1;
}

/* The function `name` of the library that holds `fn` (the kernel's batch entry beside
   its packed one), or NULL. */
static xc_batch_fn xc_sibling(xc_packed fn, const char *name)
{
#ifdef XC_DLADDR
    Dl_info own, found;
    if (name == NULL || !dladdr((void *)(uintptr_t)fn, &own) || own.dli_fname == NULL)
        return NULL;
    void *lib = dlopen(own.dli_fname, RTLD_LAZY | RTLD_NOLOAD);  /* loaded: cffi holds it */
    if (lib == NULL) {
        (void)dlerror();
        return NULL;
    }
    void *sym = dlsym(lib, name);
    (void)dlerror();
    dlclose(lib);  /* the reference NOLOAD added; `keep` keeps the library */
    /* the same loaded object (another one of the same file name would be another kernel) */
    if (sym == NULL || !dladdr(sym, &found) || found.dli_fbase != own.dli_fbase)
        return NULL;
    return (xc_batch_fn)(uintptr_t)sym;
#else
    (void)fn;
    (void)name;
    return NULL;
#endif
}

static PyObject *run_entry(PyObject *module, PyObject *args)
{
    PyObject *address, *keep, *result, *names, *empty, *blocks, *symbol, *ndarray, *suffixes;
    Py_ssize_t n_in, n_out, threads, parallel_from;
    (void)module;
    if (!PyArg_ParseTuple(args, "OnnOO!OOO!OOO!nn", &address, &n_in, &n_out, &keep, &PyTuple_Type, &result,
                          &names, &empty, &PyTuple_Type, &blocks, &symbol, &ndarray, &PyTuple_Type, &suffixes,
                          &threads, &parallel_from))
        return NULL;
    /* (the sizes bounded so that xc_batch's room for them cannot overflow) */
    if (!PyType_Check(ndarray) || !PyCallable_Check(empty) || threads < 0 || threads > 1 << 20
            || parallel_from < 0 || !(symbol == Py_None || PyUnicode_Check(symbol)) || n_in > 1 << 24
            || n_out > 1 << 28) {
        PyErr_SetString(PyExc_ValueError, "run_entry: ndarray a type, empty a callable, threads >= 0, "
                        "parallel_from >= 0, symbol None or a str, n_in <= 2**24, n_out <= 2**28");
        return NULL;
    }
    const char *name = symbol == Py_None ? NULL : PyUnicode_AsUTF8(symbol);
    if (symbol != Py_None && name == NULL)
        return NULL;
    xc_entry *e = xc_new(address, n_in, n_out, keep, result, blocks, empty, 0);
    if (e == NULL)
        return NULL;
    if (xc_names(e, names) || xc_layout(e, suffixes)) {
        xc_release(e);
        return NULL;
    }
    e->ndarray = Py_NewRef(ndarray);
    e->threads = threads;
    e->parallel_from = parallel_from;
    e->batch = xc_sibling(e->fn, name);
    return xc_function(e, &xc_run_def);
}

static PyMethodDef xc_methods[] = {
    {"call_entry", call_entry, METH_VARARGS,
     "call_entry(address, n_in, n_out, keep, result, names=None, empty=None, blocks=()) -> f(*numbers, **numbers)"},
    {"at_entry", at_entry, METH_VARARGS,
     "at_entry(address, n_in, n_out, keep, general, empty, result, blocks=(), order=None) -> "
     "at(x, seed=None, /, **data)"},
    {"run_entry", run_entry, METH_VARARGS,
     "run_entry(address, n_in, n_out, keep, result, names, empty, blocks, symbol, ndarray, suffixes, threads, "
     "parallel_from) -> run(out, *inputs, **inputs)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef xc_module = {
    PyModuleDef_HEAD_INIT, "_xc_entry", "exprcompiler's one-point entry (backends/c_entry.py)", -1, xc_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__xc_entry(void)
{
    return PyModule_Create(&xc_module);
}
