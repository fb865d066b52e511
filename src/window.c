/*
 * window.c - read and write windows.
 *
 * A window object is the exporter of the memoryview a with-block receives,
 * so it counts its own live exports (a slice kept past the block) apart
 * from those of other windows open on the same secret in other threads:
 * closing a window raises BufferError only for views of that window.  It
 * keeps only a weak reference to its view, so there is no cycle: a window
 * entered and then dropped closes as soon as the last reference to it (its
 * view holds one) goes, without waiting for the garbage collector.
 *
 * A window is unhashable, and so is its view (memoryview's hash asks the
 * exporter for its hash first): a cached hash of the plaintext would
 * outlive the window.
 *
 * All window state is guarded by the secret's store lock; nothing calls
 * into Python while holding it.
 */
#include "window.h"

#include "errors.h"
#include "frames.h"
#include "secret.h"
#include "text.h"

static char rw_export_mark;

static ms_store *store_of(WindowObject *w)
{
    return &w->secret->store;
}

PyObject *ms_window_new(SecretObject *secret, ms_window kind)
{
    PyTypeObject *type = secret->state->window_type;
    if (type == NULL) {
        return ms_state_gone();
    }
    WindowObject *w = PyObject_New(WindowObject, type);
    if (w == NULL) {
        return NULL;
    }
    w->secret = (SecretObject *)Py_NewRef(secret);
    w->view_ref = NULL;
    w->kind = kind;
    w->state = MS_WSTATE_NEW;
    w->exports = 0;
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

static int open_store_window(WindowObject *w)
{
    ms_oserr err = {0, 0, NULL};
    ms_store_lock(store_of(w));
    if (w->state != MS_WSTATE_NEW) {
        ms_store_unlock(store_of(w));
        PyErr_SetString(PyExc_RuntimeError,
                        "a window can be entered only once: call read() or "
                        "write() again for a new one");
        return -1;
    }
    ms_status st = ms_store_open(store_of(w), w->kind, &err);
    if (st == MS_OK) {
        w->state = MS_WSTATE_OPEN;
    }
    ms_store_unlock(store_of(w));
    if (st != MS_OK) {
        ms_raise(st, &err,
                 w->kind == MS_WINDOW_READ ? BUSY_READ : BUSY_WRITE);
        return -1;
    }
    return 0;
}

/* Close the store's window if this one is still open; the status. */
static ms_status close_store_window(WindowObject *w, ms_oserr *err)
{
    ms_status st = MS_OK;
    ms_store_lock(store_of(w));
    if (w->state == MS_WSTATE_OPEN) {
        w->state = MS_WSTATE_CLOSED;
        st = ms_store_close(store_of(w), w->kind, err);
    }
    ms_store_unlock(store_of(w));
    return st;
}

static PyObject *window_enter(WindowObject *w, PyObject *Py_UNUSED(unused))
{
    if (open_store_window(w) < 0) {
        return NULL;
    }
    PyObject *view = PyMemoryView_FromObject((PyObject *)w);
    PyObject *ref = view != NULL ? PyWeakref_NewRef(view, NULL) : NULL;
    if (ref == NULL) {
        Py_XDECREF(view);
        ms_oserr ignored;
        PyObject *exc = ms_err_take();
        (void)close_store_window(w, &ignored);
        ms_err_put(exc);
        return NULL;
    }
    Py_XSETREF(w->view_ref, ref);
    return view;
}

/* ---- closing ---------------------------------------------------------- */

/* The with-block's view, if it is still alive (a new reference). */
static PyObject *live_view(WindowObject *w)
{
    if (w->view_ref == NULL) {
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *view = NULL;
    if (PyWeakref_GetRef(w->view_ref, &view) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return view;
#else
    PyObject *view = PyWeakref_GetObject(w->view_ref);
    return view == Py_None ? NULL : Py_NewRef(view);
#endif
}

/* Release the with-block's view.  If something still exports from it
 * (memoryview(view)), release() fails; the window then counts as leaked. */
static void release_view(WindowObject *w)
{
    PyObject *view = live_view(w);
    Py_CLEAR(w->view_ref);
    if (view == NULL) {
        return;
    }
    PyObject *name = w->secret->state->str_release;
    PyObject *r = name != NULL ? PyObject_CallMethodNoArgs(view, name)
                               : PyObject_CallMethod(view, "release", NULL);
    if (r == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(r);
    Py_DECREF(view);
}

/* A finished frame of the exception's traceback: release the views of
 * this window its names hold (fn's slices, a helper's parameter).  The
 * frame will never run again; only the traceback keeps it. */
static int release_frame_views(PyFrameObject *f, void *arg)
{
    WindowObject *w = (WindowObject *)arg;
    int snapshot = 0;
    PyObject *names = ms_frame_names(f, &snapshot);
    if (names == NULL) {
        return -1;
    }
    PyObject *values = PyMapping_Values(names);
    Py_DECREF(names);
    if (values == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        if (!PyMemoryView_Check(v) ||
            PyMemoryView_GET_BUFFER(v)->obj != (PyObject *)w) {
            continue;
        }
        PyObject *r = PyObject_CallMethod(v, "release", NULL);
        if (r == NULL) {
            PyErr_Clear(); /* exported further: stays counted as leaked */
        }
        Py_XDECREF(r);
    }
    Py_DECREF(values);
    return 0;
}

/* Release what finished frames of exc's traceback hold from this window. */
static void release_traceback_views(WindowObject *w, PyObject *exc)
{
    if (exc == NULL || exc == Py_None) {
        return;
    }
    ms_store_lock(store_of(w));
    Py_ssize_t own = w->exports;
    ms_store_unlock(store_of(w));
    if (own > 0 && ms_finished_frames(exc, release_frame_views, w) < 0) {
        PyErr_Clear(); /* what is left is reported as leaked */
    }
}

#define LEAKED_FMT                                                            \
    "window closed while %zd view(s) from it are still alive (a slice or "   \
    "memoryview kept past the with-block?); the memory stays accessible "    \
    "until they are released: del them or call view.release()"

static int leaked_error(Py_ssize_t n)
{
    PyErr_Format(PyExc_BufferError, LEAKED_FMT, n);
    return -1;
}

/* Close the window.  0 on success; -1 with an exception when the secret
 * was purged meanwhile or the OS failed.  *leaked: views of this window
 * that outlive it (the window is closed all the same). */
static int window_close(WindowObject *w, Py_ssize_t *leaked)
{
    *leaked = 0;
    ms_store_lock(store_of(w));
    int open = w->state == MS_WSTATE_OPEN;
    ms_store_unlock(store_of(w));
    if (!open) {
        return 0;
    }
    release_view(w);
    ms_oserr err = {0, 0, NULL};
    ms_status st = MS_OK;
    ms_store_lock(store_of(w));
    if (w->state == MS_WSTATE_OPEN) {
        w->state = MS_WSTATE_CLOSED;
        st = ms_store_close(store_of(w), w->kind, &err);
    }
    *leaked = w->exports;
    ms_store_unlock(store_of(w));
    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    return 0;
}

/* Close the window; leaked views raise BufferError. */
static int window_finish(WindowObject *w)
{
    Py_ssize_t leaked = 0;
    if (window_close(w, &leaked) < 0) {
        return -1;
    }
    return leaked > 0 ? leaked_error(leaked) : 0;
}

/* exc.add_note(text); 3.10 has no add_note: __notes__ by hand. */
static int add_note(PyObject *exc, PyObject *text)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *r = PyObject_CallMethod(exc, "add_note", "O", text);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
#else
    PyObject *notes = PyObject_GetAttrString(exc, "__notes__");
    if (notes == NULL) {
        PyErr_Clear();
        notes = PyList_New(0);
        if (notes == NULL || PyObject_SetAttrString(exc, "__notes__", notes) < 0) {
            Py_XDECREF(notes);
            return -1;
        }
    }
    int rc = PyList_Check(notes) ? PyList_Append(notes, text) : -1;
    if (rc < 0 && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "__notes__ is not a list");
    }
    Py_DECREF(notes);
    return rc;
#endif
}

/* Close the window while exc propagates out of it.  exc stays the
 * exception: views that finished frames of its traceback hold are
 * released, and views still alive after that are reported as a note on
 * it (rather than a BufferError that would replace it).  0, or -1 with
 * the window's own error (purge, OS failure, or the note could not be
 * added) set. */
static int finish_with(WindowObject *w, PyObject *exc)
{
    if (exc == NULL) {
        return window_finish(w);
    }
    release_traceback_views(w, exc);
    Py_ssize_t leaked = 0;
    if (window_close(w, &leaked) < 0) {
        return -1;
    }
    if (leaked == 0) {
        return 0;
    }
    PyObject *note = PyUnicode_FromFormat("memsafe: " LEAKED_FMT, leaked);
    if (note == NULL || add_note(exc, note) < 0) {
        Py_XDECREF(note);
        PyErr_Clear();
        return leaked_error(leaked);
    }
    Py_DECREF(note);
    return 0;
}

static PyObject *window_exit(WindowObject *w, PyObject *const *args,
                             Py_ssize_t nargs)
{
    PyObject *exc = nargs >= 2 ? args[1] : NULL;
    int rc = exc != NULL && PyExceptionInstance_Check(exc)
                 ? finish_with(w, exc)
                 : window_finish(w);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_FALSE;
}

/* Close the window after fn raised: fn's exception propagates (with a
 * note for leaked views); the window's own error, if any, is raised with
 * fn's exception as its __context__. */
static void finish_after_error(WindowObject *w)
{
    PyObject *first = ms_err_take();
    if (finish_with(w, first) < 0) {
        PyObject *second = ms_err_take();
        PyException_SetContext(second, first);
        ms_err_put(second);
    } else {
        ms_err_put(first);
    }
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

/* ---- read() and write() ----------------------------------------------- */

static PyObject *window_or_run(SecretObject *s, PyObject *const *args,
                               Py_ssize_t nargs, ms_window kind,
                               const char *name)
{
    if (nargs > 1) {
        return PyErr_Format(PyExc_TypeError,
                            "%s() takes at most 1 argument (%zd given)", name,
                            nargs);
    }
    if (nargs == 0 || args[0] == Py_None) {
        if (ms_secret_check_usable(s) < 0) {
            return NULL;
        }
        return ms_window_new(s, kind);
    }
    if (!PyCallable_Check(args[0])) {
        return PyErr_Format(PyExc_TypeError,
                            "%s() takes a callable that receives the view, "
                            "not '%.100s'",
                            name, Py_TYPE(args[0])->tp_name);
    }
    return ms_window_run(s, kind, args[0]);
}

PyObject *ms_secret_read(SecretObject *s, PyObject *const *args,
                         Py_ssize_t nargs)
{
    return window_or_run(s, args, nargs, MS_WINDOW_READ, "read");
}

PyObject *ms_memsafe_write(SecretObject *s, PyObject *const *args,
                           Py_ssize_t nargs)
{
    return window_or_run(s, args, nargs, MS_WINDOW_WRITE, "write");
}

/* ---- buffer protocol -------------------------------------------------- */

static int window_getbuffer(WindowObject *w, Py_buffer *view, int flags)
{
    int writable = 0;
    ms_status st = MS_OK;
    ms_store_lock(store_of(w));
    int open = w->state == MS_WSTATE_OPEN;
    if (open) {
        st = ms_store_export(store_of(w), w->kind == MS_WINDOW_WRITE,
                             (flags & PyBUF_WRITABLE) != 0, &writable);
        if (st == MS_OK) {
            w->exports++;
        }
    }
    void *p = st == MS_OK && open ? ms_store_data(store_of(w)) : NULL;
    Py_ssize_t n = (Py_ssize_t)ms_store_len(store_of(w));
    ms_store_unlock(store_of(w));
    view->obj = NULL;
    if (!open) {
        PyErr_SetString(PyExc_BufferError,
                        "this window is not open: views exist only inside "
                        "`with secret.read() as view:`");
        return -1;
    }
    if (st != MS_OK) {
        ms_raise(st, NULL, NULL);
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)w, p, n, !writable, flags) < 0) {
        ms_store_lock(store_of(w));
        w->exports--;
        ms_store_unexport(store_of(w), writable);
        ms_store_unlock(store_of(w));
        return -1;
    }
    view->internal = writable ? &rw_export_mark : NULL;
    return 0;
}

static void window_releasebuffer(WindowObject *w, Py_buffer *view)
{
    ms_store_lock(store_of(w));
    w->exports--;
    ms_store_unexport(store_of(w), view->internal == &rw_export_mark);
    ms_store_unlock(store_of(w));
}

/* ---- lifetime --------------------------------------------------------- */

static void window_dealloc(WindowObject *w)
{
    /* Dropped while open (entered without exit): close it now.  Nothing
     * can be raised from here; the next use of the secret reports any
     * failure (e.g. a purge). */
    ms_oserr ignored;
    (void)close_store_window(w, &ignored);
    Py_CLEAR(w->view_ref);
    Py_CLEAR(w->secret);
    PyTypeObject *type = Py_TYPE(w);
    PyObject_Free(w);
    Py_DECREF(type); /* a heap type: its objects hold a reference */
}

/* memoryview's hash asks its exporter: the message is about both. */
static Py_hash_t window_hash(WindowObject *Py_UNUSED(w))
{
    PyErr_SetString(PyExc_TypeError,
                    "unhashable: a memsafe window and the memoryview it gives "
                    "cannot be hashed (a cached hash of the secret would "
                    "outlive the window); hash the view's content inside the "
                    "window with hashlib or hmac instead");
    return -1;
}

static PyObject *window_repr(WindowObject *w)
{
    static const char *const states[] = {"new", "open", "closed"};
    return PyUnicode_FromFormat(
        "<memsafe %s window (%s)>",
        w->kind == MS_WINDOW_READ ? "read" : "write", states[w->state]);
}

static PyObject *window_reduce(PyObject *w, PyObject *Py_UNUSED(unused))
{
    (void)w;
    return PyErr_Format(PyExc_TypeError,
                        "cannot pickle a memsafe window");
}

static PyMethodDef window_methods[] = {
    {"__enter__", (PyCFunction)window_enter, METH_NOARGS,
     "__enter__($self, /)\n--\n\nOpen the window; return a memoryview of "
     "the secret (format 'B')."},
    {"__exit__", (PyCFunction)(void (*)(void))window_exit, METH_FASTCALL,
     "__exit__($self, exc_type, exc, tb, /)\n--\n\nClose the window.  "
     "Raises BufferError if views from it are still alive; when the block "
     "raised, its exception propagates instead, views held by finished "
     "frames of its traceback are released and any still alive are "
     "reported in a note on it."},
    {"__reduce__", (PyCFunction)window_reduce, METH_NOARGS,
     "Windows cannot be pickled."},
    {NULL, NULL, 0, NULL}
};

static PyType_Slot window_slots[] = {
    {Py_tp_dealloc, (void *)window_dealloc},
    {Py_tp_repr, (void *)window_repr},
    {Py_tp_hash, (void *)window_hash},
    {Py_bf_getbuffer, (void *)window_getbuffer},
    {Py_bf_releasebuffer, (void *)window_releasebuffer},
    {Py_tp_doc, (void *)"A read or write window on a secret: use it in a "
                        "with statement.  Returned by read() and write().  "
                        "Unhashable, like the view it gives."},
    {Py_tp_methods, window_methods},
    {0, NULL}
};

/* A heap type per interpreter; made only by read() and write(). */
static PyType_Spec window_spec = {
    .name = "memsafe.Window",
    .basicsize = sizeof(WindowObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = window_slots,
};

int ms_window_init(PyObject *module, ms_state *st)
{
    st->str_release = PyUnicode_InternFromString("release");
    if (st->str_release == NULL) {
        return -1;
    }
    PyObject *type = PyType_FromModuleAndSpec(module, &window_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    st->window_type = (PyTypeObject *)type;
    return PyModule_AddObjectRef(module, "Window", type);
}

/* ---- writers: a write window over a secret being made ------------------ */

/* Under the store lock, with the fill window still open and no view of it
 * alive: is the content acceptable (text: valid UTF-8, counted)? */
static int fill_content_ok(WindowObject *w, int text, size_t *bad)
{
    if (!text) {
        return 1;
    }
    ms_store *st = store_of(w);
    const unsigned char *p = ms_store_data(st);
    size_t n = ms_store_len(st);
    if (ms_utf8_validate(p, n, bad) < 0) {
        return 0;
    }
    w->secret->nchars = ms_utf8_count(p, n);
    return 1;
}

/* End the fill window after fn: keep the content only if fn returned,
 * the window is still the one begin_fill opened, no view of it outlives
 * fn and the content is acceptable; otherwise wipe it first.  All under
 * one hold of the store lock, so no other thread (holding view.obj) can
 * close the window in between.  The outcome, for fill_raise. */
typedef enum {
    FILL_KEPT = 0,
    FILL_FN_FAILED,    /* fn raised */
    FILL_CLOSED_EARLY, /* fn closed the window itself (view.obj.__exit__) */
    FILL_LEAKED,       /* a view or slice outlives fn */
    FILL_NOT_UTF8
} fill_outcome;

static fill_outcome fill_end(WindowObject *w, int fn_ok, int text,
                             size_t *bad, Py_ssize_t *leaked,
                             ms_status *st, ms_oserr *err)
{
    ms_store *s = store_of(w);
    fill_outcome out = FILL_KEPT;
    ms_store_lock(s);
    *leaked = w->exports;
    if (w->state != MS_WSTATE_OPEN) {
        out = FILL_CLOSED_EARLY;
    } else if (!fn_ok) {
        out = FILL_FN_FAILED;
    } else if (w->exports > 0) {
        out = FILL_LEAKED;
    } else if (!fill_content_ok(w, text, bad)) {
        out = FILL_NOT_UTF8;
    }
    if (w->state == MS_WSTATE_OPEN) {
        if (out != FILL_KEPT) {
            ms_os_wipe(ms_store_data(s), ms_store_len(s));
        }
        w->state = MS_WSTATE_CLOSED;
        *st = ms_store_close(s, MS_WINDOW_WRITE, err);
    }
    if (out != FILL_KEPT) {
        /* Refused while a leaked view still holds the memory: the secret
         * (owned by this window, which the view keeps alive) is freed
         * with force when the last view goes. */
        ms_oserr ignored;
        (void)ms_store_free(s, 0, &ignored);
    }
    ms_store_unlock(s);
    return out;
}

static int fill_raise(fill_outcome out, size_t bad, Py_ssize_t leaked)
{
    switch (out) {
    case FILL_CLOSED_EARLY:
        PyErr_SetString(PyExc_RuntimeError,
                        "from_writer(): the write window was closed before "
                        "fn returned (view.obj.__exit__?); nothing was kept");
        return -1;
    case FILL_LEAKED:
        PyErr_Format(PyExc_BufferError,
                     "from_writer(): %zd view(s) of the write window are "
                     "still alive after fn returned (a slice or memoryview "
                     "kept?); the content was wiped and no secret was "
                     "made: release them (del, or view.release()) before "
                     "fn returns",
                     leaked);
        return -1;
    case FILL_NOT_UTF8:
        PyErr_Format(PyExc_ValueError,
                     "from_writer(): what fn wrote is not valid UTF-8 (at "
                     "byte offset %zu); it was wiped and no SecretStr was "
                     "made",
                     bad);
        return -1;
    default:
        return 0;
    }
}

/* fn's result: None, or the number of bytes it wrote (the readinto /
 * derive_into / decrypt_into convention), which must be all of them. */
static int check_result(PyObject *result, size_t size)
{
    if (result == Py_None) {
        return 0;
    }
    if (!PyIndex_Check(result) || PyBool_Check(result)) {
        PyErr_Format(PyExc_TypeError,
                     "from_writer(): fn must return None or the number of "
                     "bytes it wrote, not '%.100s'; nothing was kept",
                     Py_TYPE(result)->tp_name);
        return -1;
    }
    PyObject *count = PyNumber_Index(result);
    if (count == NULL) {
        return -1;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(count, &overflow);
    Py_DECREF(count);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0 || n < 0 || (unsigned long long)n != size) {
        PyErr_Format(PyExc_ValueError,
                     "from_writer(): fn reported writing %R bytes of %zu; a "
                     "partly written secret is not kept (it was wiped)",
                     result, size);
        return -1;
    }
    return 0;
}

int ms_window_fill(SecretObject *secret, size_t size, PyObject *fn, int text)
{
    WindowObject *w = (WindowObject *)ms_window_new(secret, MS_WINDOW_WRITE);
    if (w == NULL) {
        ms_secret_abort_fill(secret);
        return -1;
    }
    w->state = MS_WSTATE_OPEN; /* the fill window begin_fill opened */
    PyObject *view = PyMemoryView_FromObject((PyObject *)w);
    PyObject *ref = view != NULL ? PyWeakref_NewRef(view, NULL) : NULL;
    PyObject *result = NULL;
    if (ref != NULL) {
        w->view_ref = ref;
        result = PyObject_CallOneArg(fn, view);
    }
    Py_XDECREF(view);
    int fn_ok = result != NULL && check_result(result, size) == 0;
    Py_XDECREF(result);
    PyObject *first = fn_ok ? NULL : ms_err_take();
    release_view(w);
    size_t bad = 0;
    Py_ssize_t leaked = 0;
    ms_status st = MS_OK;
    ms_oserr err = {0, 0, NULL};
    fill_outcome out = fill_end(w, fn_ok, text, &bad, &leaked, &st, &err);
    Py_DECREF(w);
    if (first != NULL) {
        /* fn's exception propagates unchanged, unless a view of the
         * window outlives fn: then, as for a with-block, the BufferError
         * is raised with fn's exception as its __context__. */
        if (leaked > 0) {
            (void)fill_raise(FILL_LEAKED, bad, leaked);
            PyObject *second = ms_err_take();
            PyException_SetContext(second, first);
            ms_err_put(second);
        } else {
            ms_err_put(first);
        }
        return -1;
    }
    if (fill_raise(out, bad, leaked) < 0) {
        return -1;
    }
    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    return 0;
}
