/*
 * writer.c - from_writer(size, fn): a secret whose bytes are written by
 * fn straight into its memory, through the fill window (window.c).
 *
 * Everything that can be refused is refused before any memory is made:
 * the size (as the constructors parse it), fn not callable, the storage.
 */
#include "writer.h"

#include "config.h"
#include "secret.h"
#include "window.h"

/* Parse (size, fn, *, storage); 0 with *size, *fn and *engine set. */
static int writer_args(PyObject *args, PyObject *kwds, Py_ssize_t *size,
                       PyObject **fn, ms_engine *engine)
{
    static char *kwlist[] = {"size", "fn", "storage", "fork", NULL};
    PyObject *n = NULL;
    PyObject *storage = NULL;
    PyObject *fork = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OO:from_writer", kwlist,
                                     &n, fn, &storage, &fork)) {
        return -1;
    }
    if (ms_size_from(n, "size", size) < 0) {
        return -1;
    }
    if (!PyCallable_Check(*fn)) {
        PyErr_Format(PyExc_TypeError,
                     "from_writer() takes a callable that receives the "
                     "writable view, not '%.100s'",
                     Py_TYPE(*fn)->tp_name);
        return -1;
    }
    return ms_config_placement_from(storage, fork, engine);
}

PyObject *ms_writer_from_writer(PyTypeObject *type, PyObject *args,
                                PyObject *kwds)
{
    Py_ssize_t size;
    PyObject *fn;
    ms_engine engine;
    if (writer_args(args, kwds, &size, &fn, &engine) < 0) {
        return NULL;
    }
    SecretObject *s = ms_secret_alloc(type, engine);
    if (s == NULL) {
        return NULL;
    }
    unsigned char *p;
    if (ms_secret_begin_fill(s, (size_t)size, &p) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    int text = ms_secret_kind((PyObject *)s) == MS_KIND_STR;
    if (ms_window_fill(s, (size_t)size, fn, text) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}
