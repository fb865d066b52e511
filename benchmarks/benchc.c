/*
 * benchc.c - a tiny CPython extension that the benchmark builds for itself:
 * the C floors of floors.c, callable from Python, plus the reference for the
 * window benchmark: "two mprotect calls with a small Python block between".
 *
 * ref_window(fn) makes the data page of a region (made exactly like memsafe
 * makes one) readable, calls fn(view) with a memoryview of the 32 secret
 * bytes made once in advance, and makes the page no-access again.  It is
 * what a read window costs with nothing of memsafe's own around it: the two
 * system calls, the Python call and the TLB/cache refills that the
 * protection changes cause.  memsafe's own share of a window is the
 * difference between k.read(fn) and ref_window(fn).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "floors.c"

static region ref;
static PyObject *ref_view;

static PyObject *ref_setup(PyObject *m, PyObject *arg)
{
    (void)m;
    Py_ssize_t len = PyLong_AsSsize_t(arg);
    if (len <= 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "length must be > 0");
        }
        return NULL;
    }
    if (ref_view == NULL) {
        int rc = region_alloc(&ref, (size_t)len);
        if (rc != 0) {
            errno = -rc;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        ref_view = PyMemoryView_FromMemory((char *)ref.secret, len,
                                           PyBUF_READ);
        if (ref_view == NULL) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *ref_window(PyObject *m, PyObject *fn)
{
    (void)m;
    if (ref_view == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "call ref_setup() first");
        return NULL;
    }
    if (mprotect(ref.data, ref.data_len, PROT_READ) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *result = PyObject_CallOneArg(fn, ref_view);
    if (mprotect(ref.data, ref.data_len, PROT_NONE) != 0) {
        Py_XDECREF(result);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return result;
}

/* The with-statement form of the reference: one preallocated object whose
 * __enter__ makes the page readable and returns the prepared view, and whose
 * __exit__ makes it no-access again. */
typedef struct {
    PyObject_HEAD
} RefCtx;

static PyObject *refctx_enter(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    if (mprotect(ref.data, ref.data_len, PROT_READ) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_NewRef(ref_view);
}

static PyObject *refctx_exit(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    if (mprotect(ref.data, ref.data_len, PROT_NONE) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_FALSE;
}

static PyMethodDef refctx_methods[] = {
    {"__enter__", refctx_enter, METH_NOARGS, NULL},
    {"__exit__", refctx_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyTypeObject RefCtxType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_benchc.RefCtx",
    .tp_basicsize = sizeof(RefCtx),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = refctx_methods,
};

static PyObject *ref_singleton;

static PyObject *ref_ctx(PyObject *m, PyObject *noargs)
{
    (void)m;
    (void)noargs;
    if (ref_view == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "call ref_setup() first");
        return NULL;
    }
    return Py_NewRef(ref_singleton);
}

static PyObject *py_floor_window(PyObject *m, PyObject *args)
{
    (void)m;
    Py_ssize_t len;
    long n;
    int touch;
    if (!PyArg_ParseTuple(args, "nlp", &len, &n, &touch)) {
        return NULL;
    }
    double r;
    Py_BEGIN_ALLOW_THREADS
    r = floor_window((size_t)len, n, touch);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(r);
}

static PyObject *py_floor_alloc(PyObject *m, PyObject *args)
{
    (void)m;
    Py_ssize_t len;
    long n;
    if (!PyArg_ParseTuple(args, "nl", &len, &n)) {
        return NULL;
    }
    double r;
    Py_BEGIN_ALLOW_THREADS
    r = floor_alloc((size_t)len, n);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(r);
}

static PyObject *py_sodium_alloc(PyObject *m, PyObject *args)
{
    (void)m;
    Py_ssize_t len;
    long n;
    if (!PyArg_ParseTuple(args, "nl", &len, &n)) {
        return NULL;
    }
    double r;
    Py_BEGIN_ALLOW_THREADS
    r = sodium_alloc((size_t)len, n);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(r);
}

static PyObject *py_have_sodium(PyObject *m, PyObject *noargs)
{
    (void)m;
    (void)noargs;
    return PyBool_FromLong(have_sodium());
}

static PyObject *py_big_setup(PyObject *m, PyObject *args)
{
    (void)m;
    Py_ssize_t len;
    int lock;
    if (!PyArg_ParseTuple(args, "np", &len, &lock)) {
        return NULL;
    }
    if (len <= 0) {
        PyErr_SetString(PyExc_ValueError, "length must be > 0");
        return NULL;
    }
    int rc = big_setup((size_t)len, lock);
    if (rc != 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *py_big_mprotect_pair(PyObject *m, PyObject *arg)
{
    (void)m;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    double r;
    Py_BEGIN_ALLOW_THREADS
    r = big_mprotect_pair(n);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(r);
}

/* big_window(fn): the reference for the throughput benchmark - mprotect the
 * big region READ, fn(view of all of it), mprotect NONE. */
static PyObject *py_big_window(PyObject *m, PyObject *fn)
{
    (void)m;
    if (big.base == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "call big_setup() first");
        return NULL;
    }
    PyObject *view = PyMemoryView_FromMemory((char *)big.secret,
                                             (Py_ssize_t)big.len, PyBUF_READ);
    if (view == NULL) {
        return NULL;
    }
    if (mprotect(big.data, big.data_len, PROT_READ) != 0) {
        Py_DECREF(view);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *result = PyObject_CallOneArg(fn, view);
    if (mprotect(big.data, big.data_len, PROT_NONE) != 0) {
        Py_XDECREF(result);
        Py_DECREF(view);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_DECREF(view);
    return result;
}

static PyObject *py_big_teardown(PyObject *m, PyObject *noargs)
{
    (void)m;
    (void)noargs;
    big_teardown();
    Py_RETURN_NONE;
}

static PyObject *py_hold(PyObject *m, PyObject *args)
{
    (void)m;
    int kind;
    Py_ssize_t len;
    long n;
    if (!PyArg_ParseTuple(args, "inl", &kind, &len, &n)) {
        return NULL;
    }
    int err = 0;
    long made = hold(kind, (size_t)len, n, &err);
    return Py_BuildValue("(li)", made, err);
}

/* demo(which): one operation, for the strace comparison.  which is one of
 * "alloc", "window", "close", "sodium_alloc", "sodium_window",
 * "sodium_close"; returns the C function's status (0 = ok). */
static PyObject *py_demo(PyObject *m, PyObject *arg)
{
    (void)m;
    const char *which = PyUnicode_AsUTF8(arg);
    if (which == NULL) {
        return NULL;
    }
    int rc;
    if (strcmp(which, "alloc") == 0) {
        rc = demo_alloc(32);
    } else if (strcmp(which, "window") == 0) {
        rc = demo_window();
    } else if (strcmp(which, "close") == 0) {
        rc = demo_close();
    } else if (strcmp(which, "sodium_alloc") == 0) {
        rc = sodium_demo_alloc(32);
    } else if (strcmp(which, "sodium_window") == 0) {
        rc = sodium_demo_window();
    } else if (strcmp(which, "sodium_close") == 0) {
        rc = sodium_demo_close();
    } else {
        PyErr_Format(PyExc_ValueError, "unknown demo %R", arg);
        return NULL;
    }
    return PyLong_FromLong(rc);
}

static PyMethodDef methods[] = {
    {"demo", py_demo, METH_O,
     "demo(which): one operation of the floors or libsodium (for strace)."},
    {"ref_setup", ref_setup, METH_O,
     "ref_setup(len): make the reference region (once)."},
    {"ref_window", ref_window, METH_O,
     "ref_window(fn): mprotect(READ); fn(view); mprotect(NONE)."},
    {"ref_ctx", ref_ctx, METH_NOARGS,
     "ref_ctx() -> context manager: mprotect(READ) in, mprotect(NONE) out."},
    {"floor_window", py_floor_window, METH_VARARGS,
     "floor_window(len, n, touch) -> ns per mprotect pair."},
    {"floor_alloc", py_floor_alloc, METH_VARARGS,
     "floor_alloc(len, n) -> ns per allocate+close (memsafe's syscalls)."},
    {"sodium_alloc", py_sodium_alloc, METH_VARARGS,
     "sodium_alloc(len, n) -> ns per sodium_malloc..sodium_free."},
    {"have_sodium", py_have_sodium, METH_NOARGS,
     "True if built with libsodium."},
    {"big_setup", py_big_setup, METH_VARARGS,
     "big_setup(len, lock): make a big region (once), locked if lock."},
    {"big_mprotect_pair", py_big_mprotect_pair, METH_O,
     "big_mprotect_pair(n) -> ns per mprotect pair on the big region."},
    {"big_window", py_big_window, METH_O,
     "big_window(fn): mprotect(READ); fn(view); mprotect(NONE) on the big "
     "region."},
    {"big_teardown", py_big_teardown, METH_NOARGS, "free the big region."},
    {"hold", py_hold, METH_VARARGS,
     "hold(kind, len, n) -> (made, errno): n live allocations, never "
     "freed (kind 0: memsafe's syscalls, 1: sodium_malloc)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_benchc",
    "C baselines for the memsafe benchmarks.", -1, methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__benchc(void)
{
    if (PyType_Ready(&RefCtxType) < 0) {
        return NULL;
    }
    ref_singleton = PyObject_New(PyObject, &RefCtxType);
    if (ref_singleton == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
#ifdef Py_GIL_DISABLED
    if (m != NULL) {
        PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
    }
#endif
    return m;
}
