/*
 * frames.c - finished frames of a traceback, and the names of a frame.
 *
 * plaintext() may wipe its object only when every reference to it is
 * explained, and a window may release a view only when the frame that
 * holds it is done.  Both look at the frames of an exception's traceback:
 * a frame there may still be running (the caller's, or another thread's
 * that caught the exception and carries on), or may belong to a generator
 * or coroutine that can resume.  Only the others are finished.
 */
#include "frames.h"

#define MAX_SEEN 64

typedef struct {
    PyObject *item[MAX_SEEN]; /* borrowed: alive while the exception is */
    int n;
} seen_set;

/* 1 if added, 0 if already there, -1 if full. */
static int seen_add(seen_set *s, PyObject *o)
{
    for (int i = 0; i < s->n; i++) {
        if (s->item[i] == o) {
            return 0;
        }
    }
    if (s->n == MAX_SEEN) {
        return -1;
    }
    s->item[s->n++] = o;
    return 1;
}

int ms_frame_flags(PyFrameObject *f)
{
    PyCodeObject *code = PyFrame_GetCode(f);
    int flags = code->co_flags;
    Py_DECREF(code);
    return flags;
}

/* Add f and its callers to the set. */
static int add_stack(PyObject *set, PyFrameObject *f)
{
    Py_XINCREF(f);
    while (f != NULL) {
        if (PySet_Add(set, (PyObject *)f) < 0) {
            Py_DECREF(f);
            return -1;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    return 0;
}

/* The frames on every thread's stack (sys._current_frames() and callers),
 * this thread's included. */
static PyObject *running_frames(void)
{
    PyObject *set = PySet_New(NULL);
    if (set == NULL) {
        return NULL;
    }
    if (add_stack(set, PyEval_GetFrame()) < 0) {
        Py_DECREF(set);
        return NULL;
    }
    PyObject *fn = PySys_GetObject("_current_frames"); /* borrowed */
    PyObject *tops = fn != NULL ? PyObject_CallNoArgs(fn) : NULL;
    if (tops == NULL || !PyDict_Check(tops)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "sys._current_frames() is not available");
        }
        Py_XDECREF(tops);
        Py_DECREF(set);
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(tops, &pos, &k, &v)) {
        if (PyFrame_Check(v) && add_stack(set, (PyFrameObject *)v) < 0) {
            Py_DECREF(tops);
            Py_DECREF(set);
            return NULL;
        }
    }
    Py_DECREF(tops);
    return set;
}

static int too_long(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "exception chain too long to follow");
    return -1;
}

/* Visit the finished frames of one traceback. */
static int visit_tb(PyObject *tb, PyObject *running, seen_set *frames,
                    ms_frame_visit visit, void *arg)
{
    for (PyTracebackObject *t = (PyTracebackObject *)tb; t != NULL;
         t = t->tb_next) {
        PyFrameObject *f = t->tb_frame;
        int fresh = seen_add(frames, (PyObject *)f);
        if (fresh < 0) {
            return too_long();
        }
        int flags = ms_frame_flags(f);
        if (fresh == 0 || !(flags & CO_OPTIMIZED) ||
            (flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR |
                      CO_ITERABLE_COROUTINE))) {
            continue;
        }
        int on_stack = PySet_Contains(running, (PyObject *)f);
        if (on_stack < 0 || (on_stack == 0 && visit(f, arg) < 0)) {
            return -1;
        }
    }
    return 0;
}

int ms_finished_frames(PyObject *exc, ms_frame_visit visit, void *arg)
{
    PyObject *running = running_frames();
    if (running == NULL) {
        return -1;
    }
    seen_set excs = {{NULL}, 0};
    seen_set frames = {{NULL}, 0};
    PyObject *todo[MAX_SEEN];
    int ntodo = 0;
    int rc = 0;
    todo[ntodo++] = exc;
    while (rc == 0 && ntodo > 0) {
        PyObject *e = todo[--ntodo];
        int added = seen_add(&excs, e);
        if (added < 0) {
            rc = too_long();
            break;
        }
        if (added == 0 || !PyExceptionInstance_Check(e)) {
            continue;
        }
        PyObject *tb = PyException_GetTraceback(e);
        rc = visit_tb(tb, running, &frames, visit, arg);
        Py_XDECREF(tb);
        /* The exceptions stay alive through e, so borrowing is safe. */
        PyObject *linked[2] = {PyException_GetCause(e),
                               PyException_GetContext(e)};
        for (int i = 0; i < 2; i++) {
            if (linked[i] == NULL) {
                continue;
            }
            if (ntodo < MAX_SEEN) {
                todo[ntodo++] = linked[i];
            } else if (rc == 0) {
                rc = too_long();
            }
            Py_DECREF(linked[i]);
        }
    }
    Py_DECREF(running);
    return rc;
}

PyObject *ms_frame_names(PyFrameObject *f, int *snapshot)
{
    int optimized = (ms_frame_flags(f) & CO_OPTIMIZED) != 0;
    *snapshot = 0;
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *locals = PyFrame_GetLocals(f);
    if (locals == NULL) {
        return NULL;
    }
#else
    if (PyFrame_FastToLocalsWithError(f) < 0) {
        return NULL;
    }
    PyObject *locals = Py_XNewRef(f->f_locals);
    if (locals == NULL) {
        return PyDict_New();
    }
#endif
#if PY_VERSION_HEX >= 0x030D0000
    (void)optimized;
    if (PyFrameLocalsProxy_Check(locals)) {
        /* PEP 667: the proxy holds no references; a copy that does is
         * released by the caller before it compares counts. */
        PyObject *copy = PyDict_New();
        if (copy != NULL && PyDict_Update(copy, locals) < 0) {
            Py_CLEAR(copy);
        }
        Py_DECREF(locals);
        return copy;
    }
#else
    *snapshot = optimized;
#endif
    return locals;
}

static int in_tuple_attr(PyObject *code, const char *attr, PyObject *name)
{
    PyObject *t = PyObject_GetAttrString(code, attr);
    if (t == NULL) {
        return -1;
    }
    int rc = PySequence_Contains(t, name);
    Py_DECREF(t);
    return rc;
}

int ms_frame_is_cell(PyFrameObject *f, PyObject *name)
{
    PyObject *code = (PyObject *)PyFrame_GetCode(f);
    int rc = in_tuple_attr(code, "co_cellvars", name);
    if (rc == 0) {
        rc = in_tuple_attr(code, "co_freevars", name);
    }
    Py_DECREF(code);
    return rc;
}
