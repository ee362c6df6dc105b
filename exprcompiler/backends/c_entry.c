/* exprcompiler's one-point and batch entries into a kernel (backends/c_entry.py). Do not edit.
   One translation unit: the batch entry (run_entry) is c_batch.c, included below. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef int (*xc_packed)(const double *in, double *out);
/* the kernel's batch entry (c_entry.batch_entry): its pointers and strides in arrays */
typedef int (*xc_batch_fn)(ptrdiff_t n, int threads, const double *const *in, const ptrdiff_t *st,
                           double *const *out, const ptrdiff_t *os);

#define XC_STACK 64    /* doubles on the C stack; a larger point is allocated */
#define XC_DEPTH 8     /* nesting of a result spec */
#define XC_CAPSULE "exprcompiler.entry"

/* What an entry returns is its spec, in prefix code: k in [0, n_out) is float(out[k]);
   -1 - m a tuple of the next m items; n_out + j block j, a new array empty(shapes[j])
   holding out[start_j], ..., out[start_j + size_j - 1] — then assemble(that), if set. */
typedef struct {
    xc_packed fn;
    Py_ssize_t n_in, n_out;
    PyObject *keep, *general, *empty, *assemble;
    PyObject *shapes;  /* the blocks' shapes (a tuple of tuples), or NULL */
    PyObject *names;   /* call: the inputs' names (distinct interned str), or NULL: positional only */
    Py_ssize_t named_out;  /* the input named "out", or -1 (a keyword out= is never an input) */
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

/* A buffer whose address a double * may hold (a misaligned one is undefined behaviour:
   np.frombuffer at an odd offset makes such an array, contiguous all the same). */
static int xc_aligned(const Py_buffer *b)
{
    return (uintptr_t)b->buf % sizeof(double) == 0;
}

/* n contiguous, aligned doubles, one dimension (a stride is irrelevant for n <= 1). */
static int xc_vector(const Py_buffer *b, Py_ssize_t n)
{
    return xc_is_double(b) && xc_aligned(b) && b->ndim == 1 && b->shape != NULL && b->shape[0] == n
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
   position, the rest by name (`has_out`: kwargs also holds the key "out", the out=
   argument, so an input named out is only taken by position, as a Python signature
   (*args, out=None, **kwargs) binds it); 1 if that is every input once, else 0 (-1
   with an exception). */
static int xc_inputs(const xc_entry *e, PyObject *args, Py_ssize_t skip, PyObject *kwargs, int has_out,
                     PyObject **items)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args) - skip;
    Py_ssize_t nkw = (kwargs == NULL ? 0 : PyDict_GET_SIZE(kwargs)) - has_out;
    if (nargs < 0 || nargs > e->n_in || nkw != e->n_in - nargs || (nkw > 0 && e->names == NULL)
            || (has_out && e->named_out >= nargs))
        return 0;
    /* every name looked up below is there and they are distinct: so the dict holds
       exactly the inputs after the positional ones (and out=) */
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

/* The inputs of a call (xc_inputs), then fn(e, items, arg); NotImplemented where they
   are not every input once. */
static PyObject *xc_with_inputs(const xc_entry *e, PyObject *args, Py_ssize_t skip, PyObject *kwargs, int has_out,
                                PyObject *(*fn)(const xc_entry *, PyObject *const *, PyObject *), PyObject *arg)
{
    PyObject *small[XC_STACK], **items = small;
    if (e->n_in > XC_STACK && (items = PyMem_Malloc(e->n_in * sizeof(PyObject *))) == NULL)
        return PyErr_NoMemory();
    int got = xc_inputs(e, args, skip, kwargs, has_out, items);
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
    return xc_with_inputs(e, args, 0, kwargs, 0, xc_point_of, NULL);
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
    if (!xc_vector(&x, e->n_in)) {  /* strided, misaligned, another dtype or length: general path */
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
        if (PyUnicode_CompareWithASCIIString(name, "out") == 0)
            e->named_out = k;
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
    e->named_out = -1;
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

#include "c_batch.c"  /* run_entry: the batch entry of dense Jacobians and Hessians */

static PyMethodDef xc_methods[] = {
    {"call_entry", call_entry, METH_VARARGS,
     "call_entry(address, n_in, n_out, keep, result, names=None, empty=None, blocks=()) -> f(*numbers, **numbers)"},
    {"at_entry", at_entry, METH_VARARGS,
     "at_entry(address, n_in, n_out, keep, general, empty, result, blocks=(), order=None) -> "
     "at(x, seed=None, /, **data)"},
    {"run_entry", run_entry, METH_VARARGS,
     "run_entry(address, n_in, n_out, keep, result, names, empty, blocks, symbol, ndarray, suffixes, threads, "
     "parallel_from) -> run(out, *inputs, **inputs)"},
    {"method_entry", method_entry, METH_VARARGS,
     "method_entry(run, general, owner) -> __call__(*inputs, out=None, **inputs), else general(owner, ...)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef xc_module = {
    PyModuleDef_HEAD_INIT, "_xc_entry", "exprcompiler's one-point entry (backends/c_entry.py)", -1, xc_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__xc_entry(void)
{
    if (xc_out_key == NULL && (xc_out_key = PyUnicode_InternFromString("out")) == NULL)
        return NULL;
    return PyModule_Create(&xc_module);
}
