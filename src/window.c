/*
 * window.c - read and write windows.
 *
 * A window object is the exporter of the memoryview a with-block receives,
 * so it can tell its own live exports (a slice kept past the block) from
 * those of other windows open on the same secret in other threads.  All
 * window state is guarded by the secret's region lock; nothing calls into
 * Python while holding it.
 */
#include "ext.h"

static char rw_export_mark;

static ms_region *region_of(WindowObject *w)
{
    return &w->secret->region;
}

PyObject *ms_window_new(SecretObject *secret, ms_window kind)
{
    WindowObject *w = PyObject_GC_New(WindowObject, &ms_WindowType);
    if (w == NULL) {
        return NULL;
    }
    w->secret = (SecretObject *)Py_NewRef(secret);
    w->view = NULL;
    w->kind = kind;
    w->state = MS_WSTATE_NEW;
    w->exports = 0;
    PyObject_GC_Track(w);
    return (PyObject *)w;
}

/* ---- opening ---------------------------------------------------------- */

static const char BUSY_READ[] =
    "cannot open a read window: a write window is open on this secret (in "
    "this or another thread), or a writable view from one is still alive";
static const char BUSY_WRITE[] =
    "cannot open a write window: another window is open on this secret (in "
    "this or another thread), or views of it are still alive; a write "
    "window needs exclusive access";

static int open_region_window(WindowObject *w)
{
    ms_oserr err = {0, 0, NULL};
    ms_region_lock(region_of(w));
    if (w->state != MS_WSTATE_NEW) {
        ms_region_unlock(region_of(w));
        PyErr_SetString(PyExc_RuntimeError,
                        "a window can be entered only once: call read() or "
                        "write() again for a new one");
        return -1;
    }
    ms_status st = ms_region_open(region_of(w), w->kind, &err);
    if (st == MS_OK) {
        w->state = MS_WSTATE_OPEN;
    }
    ms_region_unlock(region_of(w));
    if (st != MS_OK) {
        ms_raise(st, &err,
                 w->kind == MS_WINDOW_READ ? BUSY_READ : BUSY_WRITE);
        return -1;
    }
    return 0;
}

static void close_region_window(WindowObject *w)
{
    ms_oserr ignored;
    ms_region_lock(region_of(w));
    if (w->state == MS_WSTATE_OPEN) {
        w->state = MS_WSTATE_CLOSED;
        (void)ms_region_close(region_of(w), w->kind, &ignored);
    }
    ms_region_unlock(region_of(w));
}

static PyObject *window_enter(WindowObject *w, PyObject *Py_UNUSED(ignored))
{
    if (open_region_window(w) < 0) {
        return NULL;
    }
    PyObject *view = PyMemoryView_FromObject((PyObject *)w);
    if (view == NULL) {
        close_region_window(w);
        return NULL;
    }
    ms_region_lock(region_of(w));
    PyObject *old = w->view;
    w->view = Py_NewRef(view);
    ms_region_unlock(region_of(w));
    Py_XDECREF(old);
    return view;
}

/* ---- closing ---------------------------------------------------------- */

/* Release the with-block's view.  If something still exports from it
 * (memoryview(view)), release() fails; the window then counts as leaked. */
static void release_view(PyObject *view)
{
    if (Py_REFCNT(view) == 1) {
        /* Nobody else holds the view, so nothing exports from it either
         * (every export holds a reference): dealloc releases the buffer. */
        Py_DECREF(view);
        return;
    }
    PyObject *r = PyObject_CallMethodNoArgs(view, ms_str_release);
    if (r == NULL) {
        PyErr_Clear();
    } else {
        Py_DECREF(r);
    }
    Py_DECREF(view);
}

static int leaked_error(Py_ssize_t n)
{
    PyErr_Format(
        PyExc_BufferError,
        "window closed while %zd view(s) of the secret are still alive (a "
        "slice or memoryview kept past the with-block?); the memory stays "
        "accessible until they are released: del them or call "
        "view.release()",
        n);
    return -1;
}

/* Close the window.  0 on success; -1 with an exception when views of it
 * outlive it (the window is closed all the same) or the OS failed. */
static int window_finish(WindowObject *w)
{
    ms_region_lock(region_of(w));
    if (w->state != MS_WSTATE_OPEN) {
        ms_region_unlock(region_of(w));
        return 0;
    }
    w->state = MS_WSTATE_CLOSED;
    PyObject *view = w->view;
    w->view = NULL;
    ms_region_unlock(region_of(w));

    if (view != NULL) {
        release_view(view);
    }

    ms_oserr err = {0, 0, NULL};
    ms_region_lock(region_of(w));
    ms_status st = ms_region_close(region_of(w), w->kind, &err);
    Py_ssize_t own = w->exports;
    size_t total = ms_region_exports(region_of(w));
    int last = !ms_region_window_open(region_of(w));
    ms_region_unlock(region_of(w));

    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    if (own > 0) {
        return leaked_error(own);
    }
    if (last && total > 0) {
        return leaked_error((Py_ssize_t)total);
    }
    return 0;
}

static PyObject *window_exit(WindowObject *w, PyObject *const *Py_UNUSED(args),
                             Py_ssize_t Py_UNUSED(nargs))
{
    if (window_finish(w) < 0) {
        return NULL;
    }
    Py_RETURN_FALSE;
}

/* Close the window after fn raised: the window's own error, if any, is
 * raised with fn's exception as its __context__. */
static void finish_after_error(WindowObject *w)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *first = PyErr_GetRaisedException();
    if (window_finish(w) < 0) {
        PyObject *second = PyErr_GetRaisedException();
        PyException_SetContext(second, first);
        PyErr_SetRaisedException(second);
    } else {
        PyErr_SetRaisedException(first);
    }
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(v, tb);
    }
    if (window_finish(w) < 0) {
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        PyException_SetContext(v2, Py_NewRef(v));
        PyErr_Restore(t2, v2, tb2);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    } else {
        PyErr_Restore(t, v, tb);
    }
#endif
}

PyObject *ms_window_run(SecretObject *secret, ms_window kind, PyObject *fn)
{
    WindowObject *w = (WindowObject *)ms_window_new(secret, kind);
    if (w == NULL) {
        return NULL;
    }
    PyObject *view = window_enter(w, NULL);
    if (view == NULL) {
        Py_DECREF(w);
        return NULL;
    }
    PyObject *result = PyObject_CallOneArg(fn, view);
    Py_DECREF(view);
    if (result == NULL) {
        finish_after_error(w);
    } else if (window_finish(w) < 0) {
        Py_CLEAR(result);
    }
    Py_DECREF(w);
    return result;
}

/* ---- buffer protocol -------------------------------------------------- */

static int window_getbuffer(WindowObject *w, Py_buffer *view, int flags)
{
    int writable = 0;
    ms_status st = MS_OK;
    ms_region_lock(region_of(w));
    int open = w->state == MS_WSTATE_OPEN;
    if (open) {
        st = ms_region_export(region_of(w), w->kind == MS_WINDOW_WRITE,
                              (flags & PyBUF_WRITABLE) != 0, &writable);
        if (st == MS_OK) {
            w->exports++;
        }
    }
    void *p = ms_region_data(region_of(w));
    Py_ssize_t n = (Py_ssize_t)ms_region_len(region_of(w));
    ms_region_unlock(region_of(w));
    view->obj = NULL;
    if (!open) {
        PyErr_SetString(PyExc_BufferError, "this window is not open");
        return -1;
    }
    if (st != MS_OK) {
        ms_raise(st, NULL, NULL);
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)w, p, n, !writable, flags) < 0) {
        ms_region_lock(region_of(w));
        w->exports--;
        ms_region_unexport(region_of(w), writable);
        ms_region_unlock(region_of(w));
        return -1;
    }
    view->internal = writable ? &rw_export_mark : NULL;
    return 0;
}

static void window_releasebuffer(WindowObject *w, Py_buffer *view)
{
    ms_region_lock(region_of(w));
    w->exports--;
    ms_region_unexport(region_of(w), view->internal == &rw_export_mark);
    ms_region_unlock(region_of(w));
}

/* ---- lifetime --------------------------------------------------------- */

static int window_traverse(WindowObject *w, visitproc visit, void *arg)
{
    Py_VISIT(w->view);
    Py_VISIT(w->secret);
    return 0;
}

static int window_clear(WindowObject *w)
{
    Py_CLEAR(w->view);
    return 0;
}

static void window_dealloc(WindowObject *w)
{
    PyObject_GC_UnTrack(w);
    Py_CLEAR(w->view);
    close_region_window(w);
    Py_CLEAR(w->secret);
    PyObject_GC_Del(w);
}

static PyObject *window_repr(WindowObject *w)
{
    static const char *const states[] = {"new", "open", "closed"};
    return PyUnicode_FromFormat(
        "<memsafe %s window (%s)>",
        w->kind == MS_WINDOW_READ ? "read" : "write", states[w->state]);
}

static PyMethodDef window_methods[] = {
    {"__enter__", (PyCFunction)window_enter, METH_NOARGS,
     "Open the window; return a memoryview of the secret (format 'B')."},
    {"__exit__", (PyCFunction)(void (*)(void))window_exit, METH_FASTCALL,
     "Close the window.  Raises BufferError if views of it are still "
     "alive."},
    {NULL, NULL, 0, NULL}
};

static PyBufferProcs window_as_buffer = {
    (getbufferproc)window_getbuffer,
    (releasebufferproc)window_releasebuffer,
};

PyTypeObject ms_WindowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memsafe.Window",
    .tp_basicsize = sizeof(WindowObject),
    .tp_dealloc = (destructor)window_dealloc,
    .tp_repr = (reprfunc)window_repr,
    .tp_as_buffer = &window_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A read or write window on a secret: use it in a with "
              "statement.  Returned by read() and write().",
    .tp_traverse = (traverseproc)window_traverse,
    .tp_clear = (inquiry)window_clear,
    .tp_methods = window_methods,
};
