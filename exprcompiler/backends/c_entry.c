/* exprcompiler's one-point entry into a kernel (backends/c_entry.py). Do not edit. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef int (*xc_packed)(const double *in, double *out);

#define XC_STACK 64    /* doubles on the C stack; a larger point is allocated */
#define XC_DEPTH 8     /* nesting of a result spec */
#define XC_CAPSULE "exprcompiler.entry"

typedef struct {
    xc_packed fn;
    Py_ssize_t n_in, n_out, skip;
    PyObject *keep, *general, *empty, *size, *assemble;
    Py_ssize_t spec_len;
    Py_ssize_t spec[];
} xc_entry;

static void xc_free(PyObject *capsule)
{
    xc_entry *e = PyCapsule_GetPointer(capsule, XC_CAPSULE);
    if (e == NULL)
        return;
    Py_XDECREF(e->keep);
    Py_XDECREF(e->general);
    Py_XDECREF(e->empty);
    Py_XDECREF(e->size);
    Py_XDECREF(e->assemble);
    PyMem_Free(e);
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

/* The result nested as the spec says, from its item *pos on; depth checked at creation. */
static PyObject *xc_nest(const xc_entry *e, Py_ssize_t *pos, const double *out)
{
    Py_ssize_t s = e->spec[(*pos)++];
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

static PyObject *xc_failed(void)
{
    return PyErr_Format(PyExc_MemoryError, "the C kernel could not allocate its tape");
}

static PyObject *xc_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    const xc_entry *e = PyCapsule_GetPointer(self, XC_CAPSULE);
    if (e == NULL)
        return NULL;
    if (nargs != e->n_in)
        Py_RETURN_NOTIMPLEMENTED;
    double small[XC_STACK], *buf = small;
    Py_ssize_t need = e->n_in + e->n_out;
    if (need > XC_STACK && (buf = PyMem_Malloc(need * sizeof(double))) == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t k;
    for (k = 0; k < nargs; ++k)
        if (!xc_number(args[k], &buf[k]))
            break;
    if (k < nargs) {
        result = Py_NewRef(Py_NotImplemented);
    } else if (e->fn(buf, buf + e->n_in)) {
        xc_failed();
    } else {
        Py_ssize_t pos = 0;
        result = xc_nest(e, &pos, buf + e->n_in);
    }
    if (buf != small)
        PyMem_Free(buf);
    return result;
}

static PyObject *xc_at(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    const xc_entry *e = PyCapsule_GetPointer(self, XC_CAPSULE);
    if (e == NULL)
        return NULL;
    Py_buffer x, r;
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
    PyObject *res = PyObject_Vectorcall(e->empty, &e->size, 1, NULL);
    if (res == NULL) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (PyObject_GetBuffer(res, &r, PyBUF_RECORDS) != 0) {
        PyBuffer_Release(&x);
        Py_DECREF(res);
        return NULL;
    }
    if (!xc_vector(&r, e->n_out - e->skip)) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&r);
        Py_DECREF(res);
        return PyErr_Format(PyExc_TypeError, "one-point entry: the result buffer is not %zd doubles",
                            e->n_out - e->skip);
    }
    double small[XC_STACK], *out = r.buf;
    int failed = 0;
    if (e->skip) {
        out = e->n_out > XC_STACK ? PyMem_Malloc(e->n_out * sizeof(double)) : small;
        if (out == NULL)
            failed = -2;
    }
    if (!failed)
        failed = e->fn(x.buf, out);
    double value = 0.0;
    if (e->skip && out != NULL) {
        if (!failed) {
            value = out[0];
            memcpy(r.buf, out + 1, (e->n_out - 1) * sizeof(double));
        }
        if (out != small)
            PyMem_Free(out);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&r);
    if (failed) {
        Py_DECREF(res);
        return failed == -2 ? PyErr_NoMemory() : xc_failed();
    }
    if (!e->skip) {
        PyObject *assembled = PyObject_CallOneArg(e->assemble, res);
        Py_DECREF(res);
        return assembled;
    }
    PyObject *v = PyFloat_FromDouble(value);
    if (v == NULL) {
        Py_DECREF(res);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(v);
        Py_DECREF(res);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, v);
    PyTuple_SET_ITEM(pair, 1, res);
    return pair;
}

static PyMethodDef xc_call_def = {"call", (PyCFunction)(void (*)(void))xc_call, METH_FASTCALL,
    "f(*numbers): one point through the kernel's packed entry (exprcompiler.backends.c_entry)"};
static PyMethodDef xc_at_def = {"at", (PyCFunction)(void (*)(void))xc_at, METH_FASTCALL | METH_KEYWORDS,
    "at(x, seed=None, /, **data): one point, the variables packed in x (exprcompiler.packed)"};

/* The entry's common fields from (address, n_in, n_out, keep); NULL with an exception. */
static xc_entry *xc_new(PyObject *address, Py_ssize_t n_in, Py_ssize_t n_out, PyObject *keep,
                        Py_ssize_t spec_len)
{
    if (n_in < 0 || n_out < 1 || n_in > PY_SSIZE_T_MAX / 16 || n_out > PY_SSIZE_T_MAX / 16) {
        PyErr_Format(PyExc_ValueError, "one-point entry: bad sizes n_in=%zd, n_out=%zd", n_in, n_out);
        return NULL;
    }
    void *fn = PyLong_AsVoidPtr(address);
    if (fn == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "one-point entry: a null function address");
        return NULL;
    }
    xc_entry *e = PyMem_Calloc(1, sizeof(xc_entry) + spec_len * sizeof(Py_ssize_t));
    if (e == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    e->fn = (xc_packed)(uintptr_t)fn;
    e->n_in = n_in;
    e->n_out = n_out;
    e->keep = Py_NewRef(keep);
    e->spec_len = spec_len;
    return e;
}

static PyObject *xc_function(xc_entry *e, PyMethodDef *def)
{
    PyObject *capsule = PyCapsule_New(e, XC_CAPSULE, xc_free);
    if (capsule == NULL) {
        Py_XDECREF(e->keep);
        PyMem_Free(e);
        return NULL;
    }
    PyObject *f = PyCFunction_NewEx(def, capsule, NULL);
    Py_DECREF(capsule);
    return f;
}

static PyObject *call_entry(PyObject *module, PyObject *args)
{
    PyObject *address, *keep, *spec;
    Py_ssize_t n_in, n_out;
    (void)module;
    if (!PyArg_ParseTuple(args, "OnnOO!", &address, &n_in, &n_out, &keep, &PyTuple_Type, &spec))
        return NULL;
    Py_ssize_t len = PyTuple_GET_SIZE(spec);
    xc_entry *e = xc_new(address, n_in, n_out, keep, len);
    if (e == NULL)
        return NULL;
    /* the spec must be one item, well nested, every index an output */
    Py_ssize_t open[XC_DEPTH + 1], depth = 0;
    open[0] = 1;
    const char *why = NULL;
    for (Py_ssize_t k = 0; k < len && why == NULL; ++k) {
        Py_ssize_t s = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, k));
        if (s == -1 && PyErr_Occurred())
            break;
        e->spec[k] = s;
        if (depth < 0 || open[depth] == 0)
            why = "more items than it nests";
        else if (s >= n_out)
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
    if (why == NULL && !PyErr_Occurred() && (depth != 0 || open[0] != 0))
        why = "fewer items than it nests";
    if (why != NULL || PyErr_Occurred()) {
        if (why != NULL)
            PyErr_Format(PyExc_ValueError, "one-point entry: bad result spec (%s)", why);
        Py_DECREF(e->keep);
        PyMem_Free(e);
        return NULL;
    }
    return xc_function(e, &xc_call_def);
}

static PyObject *at_entry(PyObject *module, PyObject *args)
{
    PyObject *address, *keep, *general, *empty, *assemble;
    Py_ssize_t n_in, n_out, skip;
    (void)module;
    if (!PyArg_ParseTuple(args, "OnnOOOnO", &address, &n_in, &n_out, &keep, &general, &empty, &skip,
                          &assemble))
        return NULL;
    if ((skip != 0 && skip != 1) || (skip == 0) == (assemble == Py_None) || !PyCallable_Check(general)
            || !PyCallable_Check(empty) || (assemble != Py_None && !PyCallable_Check(assemble))) {
        PyErr_SetString(PyExc_ValueError, "one-point entry: skip 1 takes assemble None, skip 0 a callable "
                        "assemble; general and empty are callables");
        return NULL;
    }
    xc_entry *e = xc_new(address, n_in, n_out, keep, 0);
    if (e == NULL)
        return NULL;
    e->skip = skip;
    e->general = Py_NewRef(general);
    e->empty = Py_NewRef(empty);
    e->assemble = Py_NewRef(assemble);
    e->size = PyLong_FromSsize_t(n_out - skip);
    if (e->size == NULL) {
        PyObject *capsule = PyCapsule_New(e, XC_CAPSULE, xc_free);  /* frees it */
        Py_XDECREF(capsule);
        return NULL;
    }
    return xc_function(e, &xc_at_def);
}

static PyMethodDef xc_methods[] = {
    {"call_entry", call_entry, METH_VARARGS, "call_entry(address, n_in, n_out, keep, spec) -> f(*numbers)"},
    {"at_entry", at_entry, METH_VARARGS,
     "at_entry(address, n_in, n_out, keep, general, empty, skip, assemble) -> at(x, seed=None, /, **data)"},
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
