/* exprcompiler's batch entry into a kernel, run_entry (backends/c_entry.py). Do not edit.
   Part of c_entry.c, which includes it after the one-point entries whose entry
   (xc_entry, xc_new, xc_names), inputs (xc_with_inputs) and one point (xc_point) it uses. */
#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define XC_DLADDR
#endif

#define XC_RESULTS 8   /* arrays a batch call returns (a Hessian: 3) */

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
    return xc_with_inputs(e, args, 1, kwargs, 0, xc_run_of, PyTuple_GET_ITEM(args, 0));
}

static PyMethodDef xc_run_def = {"run", (PyCFunction)(void (*)(void))xc_run, METH_VARARGS | METH_KEYWORDS,
    "run(out, *inputs, **inputs): one point or a batch through the kernel's entries (exprcompiler.backends.c_entry)"};

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

/* An object's own __call__ (method_entry): a run's entry, and the general path of the
   calls it does not take, general(owner, *args, **kwargs). The owner (the object whose
   class holds this function) is held by a weak reference: the object holds its class,
   the class this function, and a capsule's references are invisible to the cycle
   collector, so a strong one would keep a dropped object alive. */
typedef struct {
    PyObject *run;      /* run_entry's function, which owns `e` */
    const xc_entry *e;
    PyObject *general;
    PyObject *owner;    /* a weak reference */
} xc_method;

#define XC_METHOD_CAPSULE "exprcompiler.method"

static PyObject *xc_out_key;  /* "out", interned (module init) */

static void xc_method_free(PyObject *capsule)
{
    xc_method *m = PyCapsule_GetPointer(capsule, XC_METHOD_CAPSULE);
    if (m == NULL)
        return;
    Py_XDECREF(m->run);
    Py_XDECREF(m->general);
    Py_XDECREF(m->owner);
    PyMem_Free(m);
}

/* general(owner, *args, **kwargs): every call the entry does not take. */
static PyObject *xc_general(const xc_method *m, PyObject *args, PyObject *kwargs)
{
    PyObject *owner;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyWeakref_GetRef(m->owner, &owner) < 0)
        return NULL;
#else
    owner = PyWeakref_GetObject(m->owner);
    if (owner == NULL)
        return NULL;
    owner = owner == Py_None ? NULL : Py_NewRef(owner);
#endif
    if (owner == NULL)
        return PyErr_Format(PyExc_ReferenceError, "the compiled function whose __call__ this is was freed");
    const Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *full = PyTuple_New(n + 1);
    if (full == NULL) {
        Py_DECREF(owner);
        return NULL;
    }
    PyTuple_SET_ITEM(full, 0, owner);
    for (Py_ssize_t k = 0; k < n; ++k)
        PyTuple_SET_ITEM(full, k + 1, Py_NewRef(PyTuple_GET_ITEM(args, k)));
    PyObject *result = PyObject_Call(m->general, full, kwargs);
    Py_DECREF(full);
    return result;
}

/* f(*inputs, out=None, **inputs): run's call with the keyword out= among the inputs'
   names (CPython hands the caller's arguments straight in: a class's __call__ that is
   not a descriptor gets no self), else general's answer. */
static PyObject *xc_method_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    const xc_method *m = PyCapsule_GetPointer(self, XC_METHOD_CAPSULE);
    if (m == NULL)
        return NULL;
    PyObject *out = NULL;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0
            && (out = PyDict_GetItemWithError(kwargs, xc_out_key)) == NULL && PyErr_Occurred())
        return NULL;
    PyObject *result = xc_with_inputs(m->e, args, 0, kwargs, out != NULL, xc_run_of, out == NULL ? Py_None : out);
    if (result != Py_NotImplemented)
        return result;
    Py_DECREF(result);
    return xc_general(m, args, kwargs);
}

static PyMethodDef xc_method_def = {"__call__", (PyCFunction)(void (*)(void))xc_method_call,
    METH_VARARGS | METH_KEYWORDS,
    "__call__($self, /, *args, out=None, **kwargs)\n--\n\n"
    "Evaluate at a point or a batch of points, as exprcompiler.api.Compiled.__call__: one point of "
    "numbers, or a batch of float64 arrays with or without out=, straight to the kernel "
    "(exprcompiler.dense_point); every other call to the general path, which says what is wrong."};

static PyObject *method_entry(PyObject *module, PyObject *args)
{
    PyObject *run, *general, *owner;
    (void)module;
    if (!PyArg_ParseTuple(args, "OOO", &run, &general, &owner))
        return NULL;
    if (!PyCFunction_Check(run) || PyCFunction_GET_FUNCTION(run) != (PyCFunction)(void (*)(void))xc_run
            || !PyCallable_Check(general)) {
        PyErr_SetString(PyExc_ValueError, "method_entry: run is run_entry's function, general a callable");
        return NULL;
    }
    const xc_entry *e = PyCapsule_GetPointer(PyCFunction_GET_SELF(run), XC_CAPSULE);
    if (e == NULL)
        return NULL;
    xc_method *m = PyMem_Calloc(1, sizeof(xc_method));
    if (m == NULL)
        return PyErr_NoMemory();
    if ((m->owner = PyWeakref_NewRef(owner, NULL)) == NULL) {
        PyMem_Free(m);
        return NULL;
    }
    m->run = Py_NewRef(run);
    m->e = e;
    m->general = Py_NewRef(general);
    PyObject *capsule = PyCapsule_New(m, XC_METHOD_CAPSULE, xc_method_free);
    if (capsule == NULL) {
        Py_DECREF(m->run);
        Py_DECREF(m->general);
        Py_DECREF(m->owner);
        PyMem_Free(m);
        return NULL;
    }
    PyObject *f = PyCFunction_NewEx(&xc_method_def, capsule, NULL);
    Py_DECREF(capsule);
    return f;
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
