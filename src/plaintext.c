/*
 * plaintext.c - plaintext(): the escape hatch for consumers that accept
 * nothing but bytes or str (bcrypt, PyNaCl, PyJWT, paramiko, ...).
 *
 *     ok = key.plaintext(lambda b: bcrypt.checkpw(b, stored))
 *     with key.plaintext() as b:
 *         ok = bcrypt.checkpw(b, stored)
 *
 * The plaintext is a fresh bytes (str for SecretStr) built inside an
 * internal read window, which closes again before the consumer runs.  It is
 * never a shared object: bytes and str of length 0 and 1 normally come from
 * the interpreter's singletons, so they are built by hand here.  When fn
 * returns or the block ends the object is wiped in place (its data, its
 * cached hash and, for str, a cached UTF-8 copy) if nothing holds it but
 * memsafe and the with-statement's own name.  If anything else does - the
 * consumer kept it, fn returned it, another name or a container holds it,
 * an exception carries it - it is left intact, because wiping an object
 * someone still uses would corrupt them, and PlaintextWarning says so.
 *
 * Counting who holds it: the reference count must equal memsafe's own
 * reference plus the references that are explained by name bindings:
 *   - the with-form: the names (fast locals, cells, class/module namespace,
 *     globals) of the frame running the with-statement; at most one of them
 *     may be bound to the object (the `as` name; none without `as`);
 *   - after an exception: the locals of finished frames in the exception's
 *     tracebacks (fn's own frame holds its parameter, frames below it may
 *     hold it too); frames still running are never discounted.
 * Python 3.10-3.12 read a function frame's names through its f_locals
 * snapshot, a dict that stays attached to the frame and holds one extra
 * reference per name; those are counted too.  3.13+ hands out a write-
 * through proxy (PEP 667) that holds nothing; it is copied into a
 * temporary dict for the count.
 */
#include "plaintext.h"

#include <frameobject.h>
#include <string.h>

#include "errors.h"
#include "secret.h"
#include "text.h"

/* ---- a fresh object --------------------------------------------------- */

/* PyBytes_FromStringAndSize(NULL, n) allocates a new object for n >= 1 (the
 * cached one-byte objects are returned only for a non-NULL source); n == 0
 * always gives the shared empty bytes, so a one-byte object is shrunk. */
static PyObject *fresh_bytes(const unsigned char *p, size_t n)
{
    if (n > (size_t)PY_SSIZE_T_MAX - 1) {
        return PyErr_NoMemory();
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, n > 0 ? (Py_ssize_t)n : 1);
    if (b == NULL) {
        return NULL;
    }
    char *d = PyBytes_AS_STRING(b);
    if (n > 0) {
        memcpy(d, p, n);
    } else {
        Py_SET_SIZE(b, 0);
    }
    d[n] = '\0';
    return b;
}

/* The next code point of valid UTF-8 (validated before). */
static Py_UCS4 next_code_point(const unsigned char *p, size_t *i)
{
    unsigned char c = p[*i];
    Py_UCS4 cp;
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    if (c < 0xE0) {
        cp = ((Py_UCS4)(c & 0x1F) << 6) | (Py_UCS4)(p[*i + 1] & 0x3F);
        *i += 2;
    } else if (c < 0xF0) {
        cp = ((Py_UCS4)(c & 0x0F) << 12) | ((Py_UCS4)(p[*i + 1] & 0x3F) << 6) |
             (Py_UCS4)(p[*i + 2] & 0x3F);
        *i += 3;
    } else {
        cp = ((Py_UCS4)(c & 0x07) << 18) |
             ((Py_UCS4)(p[*i + 1] & 0x3F) << 12) |
             ((Py_UCS4)(p[*i + 2] & 0x3F) << 6) | (Py_UCS4)(p[*i + 3] & 0x3F);
        *i += 4;
    }
    return cp;
}

/* Decoded straight into a new str: PyUnicode_DecodeUTF8 may build the
 * result through a growing intermediate buffer and return cached one-
 * character strings.  PyUnicode_New returns a new object for length >= 1
 * and the shared empty string for 0, so an empty result is a shrunk
 * one-character string. */
static PyObject *fresh_str(const unsigned char *p, size_t n)
{
    size_t bad = 0;
    if (ms_utf8_validate(p, n, &bad) < 0) {
        return PyErr_Format(PyExc_ValueError,
                            "secret text is not valid UTF-8 at byte offset "
                            "%zu",
                            bad);
    }
    Py_ssize_t len = 0;
    Py_UCS4 maxchar = 0;
    for (size_t i = 0; i < n; len++) {
        Py_UCS4 c = next_code_point(p, &i);
        maxchar = c > maxchar ? c : maxchar;
    }
    PyObject *s = PyUnicode_New(len > 0 ? len : 1, maxchar);
    if (s == NULL) {
        return NULL;
    }
    if (len == 0) {
        ((PyASCIIObject *)s)->length = 0;
        PyUnicode_1BYTE_DATA(s)[0] = 0;
        return s;
    }
    int kind = PyUnicode_KIND(s);
    void *data = PyUnicode_DATA(s);
    Py_ssize_t k = 0;
    for (size_t i = 0; i < n; k++) {
        PyUnicode_WRITE(kind, data, k, next_code_point(p, &i));
    }
    return s;
}

static void wipe_plaintext(PyObject *o);

/* A fresh plaintext of s, made inside an internal read window that is
 * closed again before this returns. */
static PyObject *make_plaintext(SecretObject *s)
{
    const unsigned char *p;
    size_t n;
    if (ms_secret_view_open(s, &p, &n) < 0) {
        return NULL;
    }
    PyObject *o = ms_secret_kind((PyObject *)s) == MS_KIND_STR
                      ? fresh_str(p, n)
                      : fresh_bytes(p, n);
    if (ms_secret_view_close(s) < 0) {
        /* Purged, or the window could not close cleanly: what was read
         * cannot be trusted, and nobody but us holds it yet. */
        if (o != NULL) {
            wipe_plaintext(o);
            Py_DECREF(o);
        }
        return NULL;
    }
    return o;
}

/* ---- wiping ----------------------------------------------------------- */

static void wipe_plaintext(PyObject *o)
{
    if (PyBytes_Check(o)) {
        ms_os_wipe(PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
        _Py_COMP_DIAG_PUSH
        _Py_COMP_DIAG_IGNORE_DEPR_DECLS
        ((PyBytesObject *)o)->ob_shash = -1;
        _Py_COMP_DIAG_POP
        return;
    }
    void *data = PyUnicode_DATA(o);
    Py_ssize_t len = PyUnicode_GET_LENGTH(o);
    ms_os_wipe(data, (size_t)len * PyUnicode_KIND(o));
    ((PyASCIIObject *)o)->hash = -1;
    if (PyUnicode_IS_COMPACT_ASCII(o)) {
        return;
    }
    /* A consumer that called PyUnicode_AsUTF8() left a UTF-8 copy cached
     * on the object (freed with it, by the interpreter).  Its first len
     * bytes, now zero, are the UTF-8 of len NULs. */
    PyCompactUnicodeObject *c = (PyCompactUnicodeObject *)o;
    if (c->utf8 != NULL && (void *)c->utf8 != data) {
        ms_os_wipe(c->utf8, (size_t)c->utf8_length);
        c->utf8_length = len;
    }
    /* len NULs, stored one byte each at the same place (a compact non-ASCII
     * string's data follows the same header whatever its kind), so that
     * the wiped object equals and hashes like "\0" * len: == and hash()
     * compare kinds and then the raw data. */
    ((PyASCIIObject *)o)->state.kind = PyUnicode_1BYTE_KIND;
}

static const char *plaintext_type_name(PyObject *o)
{
    return PyBytes_Check(o) ? "bytes" : "str";
}

/* ---- who holds it ------------------------------------------------------ */

/* Values of a mapping that are obj. */
static int count_values(PyObject *map, PyObject *obj, Py_ssize_t *n)
{
    if (PyDict_Check(map)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(map, &pos, &k, &v)) {
            *n += v == obj;
        }
        return 0;
    }
    /* A class body's namespace from a metaclass's __prepare__. */
    PyObject *values = PyMapping_Values(map);
    if (values == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        *n += PyList_GET_ITEM(values, i) == obj;
    }
    Py_DECREF(values);
    return 0;
}

typedef struct {
    Py_ssize_t names;  /* names (or cells) of the frame bound to obj */
    Py_ssize_t extra;  /* references held by a locals snapshot dict */
} frame_refs;

static int code_flags(PyFrameObject *f)
{
    PyCodeObject *code = PyFrame_GetCode(f);
    int flags = code->co_flags;
    Py_DECREF(code);
    return flags;
}

static PyObject *frame_globals(PyFrameObject *f)
{
#if PY_VERSION_HEX >= 0x030B0000
    return PyFrame_GetGlobals(f);
#else
    return Py_NewRef(f->f_globals);
#endif
}

/* Count the names of frame f bound to obj; with_globals adds the frame's
 * globals (a `global` with-target) when they are not its locals. */
static int count_frame(PyFrameObject *f, PyObject *obj, int with_globals,
                       frame_refs *out)
{
    int optimized = (code_flags(f) & CO_OPTIMIZED) != 0;
    Py_ssize_t n = 0;
    int rc = 0;
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *locals = PyFrame_GetLocals(f);
    if (locals == NULL) {
        return -1;
    }
#else
    if (PyFrame_FastToLocalsWithError(f) < 0) {
        return -1;
    }
    PyObject *locals = Py_XNewRef(f->f_locals);
#endif
    if (locals != NULL) {
#if PY_VERSION_HEX >= 0x030D0000
        (void)optimized;
        if (PyFrameLocalsProxy_Check(locals)) {
            /* PEP 667: the proxy holds no references; a copy that does
             * is released before the count is compared. */
            PyObject *snap = PyDict_New();
            rc = snap == NULL ? -1 : PyDict_Update(snap, locals);
            if (rc == 0) {
                rc = count_values(snap, obj, &n);
            }
            Py_XDECREF(snap);
        } else {
            rc = count_values(locals, obj, &n);
        }
#else
        /* A function frame's f_locals is a snapshot dict, synced just now
         * and kept on the frame: one more reference per name bound. */
        rc = count_values(locals, obj, &n);
        if (optimized) {
            out->extra += n;
        }
#endif
    }
    out->names += n;
    if (rc == 0 && with_globals) {
        PyObject *g = frame_globals(f);
        if (g != NULL && g != locals) {
            rc = count_values(g, obj, &out->names);
        }
        Py_XDECREF(g);
    }
    Py_XDECREF(locals);
    return rc;
}

/* Is f running on this thread's stack (the current frame or a caller)? */
static int frame_running(PyFrameObject *f)
{
    PyFrameObject *cur = (PyFrameObject *)Py_XNewRef(PyEval_GetFrame());
    while (cur != NULL) {
        if (cur == f) {
            Py_DECREF(cur);
            return 1;
        }
        PyFrameObject *back = PyFrame_GetBack(cur);
        Py_DECREF(cur);
        cur = back;
    }
    return 0;
}

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

/* References to obj held by the locals of finished function frames in the
 * tracebacks of exc and of the exceptions chained to it.  -1 when the
 * chain is too long to follow (the caller then leaves obj alone). */
static int count_tracebacks(PyObject *exc, PyObject *obj, Py_ssize_t *refs)
{
    seen_set excs = {{NULL}, 0};
    seen_set frames = {{NULL}, 0};
    PyObject *todo[MAX_SEEN];
    int ntodo = 0;
    todo[ntodo++] = exc;
    while (ntodo > 0) {
        PyObject *e = todo[--ntodo];
        int added = seen_add(&excs, e);
        if (added < 0) {
            return -1;
        }
        if (added == 0 || !PyExceptionInstance_Check(e)) {
            continue;
        }
        PyObject *tb = PyException_GetTraceback(e);
        for (PyTracebackObject *t = (PyTracebackObject *)tb; t != NULL;
             t = t->tb_next) {
            PyFrameObject *f = t->tb_frame;
            int fresh = seen_add(&frames, (PyObject *)f);
            if (fresh < 0) {
                Py_XDECREF(tb);
                return -1;
            }
            int flags = code_flags(f);
            if (fresh == 0 || !(flags & CO_OPTIMIZED) ||
                (flags & (CO_GENERATOR | CO_COROUTINE |
                          CO_ASYNC_GENERATOR)) ||
                frame_running(f)) {
                continue;
            }
            frame_refs r = {0, 0};
            if (count_frame(f, obj, 0, &r) < 0) {
                Py_XDECREF(tb);
                return -1;
            }
            *refs += r.names + r.extra;
        }
        Py_XDECREF(tb);
        /* The exceptions stay alive through e, so borrowing is safe. */
        PyObject *linked[2] = {PyException_GetCause(e),
                               PyException_GetContext(e)};
        for (int i = 0; i < 2; i++) {
            if (linked[i] != NULL) {
                if (ntodo < MAX_SEEN) {
                    todo[ntodo++] = linked[i];
                }
                Py_DECREF(linked[i]);
            }
        }
    }
    return 0;
}

/* Wipe obj if every reference to it is explained (memsafe's `own`, the
 * with-frame's one name, finished frames of exc's tracebacks); otherwise
 * leave it and warn.  -1 if the warning was raised as an exception. */
static int settle(PyObject *obj, Py_ssize_t own, int with_frame, PyObject *exc)
{
    Py_ssize_t expected = own;
    int explained = 1;
    if (with_frame) {
        PyFrameObject *f = PyEval_GetFrame();
        if (f != NULL) {
            frame_refs r = {0, 0};
            if (count_frame(f, obj, 1, &r) < 0) {
                PyErr_Clear();
                explained = 0;
            }
            explained &= r.names <= 1;
            expected += r.names + r.extra;
        }
    }
    if (exc != NULL && exc != Py_None) {
        Py_ssize_t refs = 0;
        if (count_tracebacks(exc, obj, &refs) < 0) {
            PyErr_Clear();
            explained = 0;
        }
        expected += refs;
    }
    if (PyUnicode_Check(obj) && PyUnicode_CHECK_INTERNED(obj)) {
        explained = 0; /* sys.intern(b): the interned table holds it */
    }
    if (explained && Py_REFCNT(obj) == expected) {
        wipe_plaintext(obj);
        return 0;
    }
    ms_state *st = ms_state_current();
    return PyErr_WarnFormat(
        st != NULL ? st->plaintext_warning : PyExc_RuntimeWarning, 1,
        "plaintext() left its %s intact: a reference to it was kept after "
        "the call or with-block ended (by the consumer, the function's "
        "result, another name, a container or an exception), so it was not "
        "wiped and stays on the Python heap",
        plaintext_type_name(obj));
}

/* The pending exception (from fn) is kept; if settling raises (the warning
 * as an error), that is raised instead with fn's exception as context. */
static void settle_after_error(PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *first = PyErr_GetRaisedException();
    if (settle(obj, 1, 0, first) < 0) {
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
    if (tb != NULL && v != NULL) {
        PyException_SetTraceback(v, tb);
    }
    if (settle(obj, 1, 0, v) < 0) {
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        if (v != NULL) {
            PyException_SetContext(v2, Py_NewRef(v));
        }
        PyErr_Restore(t2, v2, tb2);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    } else {
        PyErr_Restore(t, v, tb);
    }
#endif
}

/* ---- the closure form -------------------------------------------------- */

static PyObject *run_plaintext(SecretObject *s, PyObject *fn)
{
    PyObject *obj = make_plaintext(s);
    if (obj == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_CallOneArg(fn, obj);
    if (result == NULL) {
        settle_after_error(obj);
        Py_DECREF(obj);
        return NULL;
    }
    int rc = settle(obj, 1, 0, NULL);
    Py_DECREF(obj);
    if (rc < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* ---- the with-form: memsafe.Plaintext ---------------------------------- */

typedef enum { PT_NEW = 0, PT_OPEN = 1, PT_DONE = 2 } pt_state;

typedef struct {
    PyObject_HEAD
    SecretObject *secret; /* strong */
    PyObject *value;      /* the plaintext while the block runs */
    pt_state state;
} PlaintextObject;

static PyObject *new_context(SecretObject *s)
{
    PyTypeObject *type = s->state->plaintext_type;
    if (type == NULL) {
        return ms_state_gone();
    }
    PlaintextObject *c = PyObject_GC_New(PlaintextObject, type);
    if (c == NULL) {
        return NULL;
    }
    c->secret = (SecretObject *)Py_NewRef(s);
    c->value = NULL;
    c->state = PT_NEW;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

/* Forget the plaintext; wipe it if nobody else holds it. */
static void drop_value(PlaintextObject *c)
{
    PyObject *v = c->value;
    c->value = NULL;
    if (v == NULL) {
        return;
    }
    if (Py_REFCNT(v) == 1 &&
        !(PyUnicode_Check(v) && PyUnicode_CHECK_INTERNED(v))) {
        wipe_plaintext(v);
    }
    Py_DECREF(v);
}

/* The context's state changes under its secret's region lock (nothing
 * calls into Python while it is held), so that one context used from two
 * threads at once, free-threaded builds included, never enters twice or
 * releases its value twice. */
static void pt_lock(PlaintextObject *c)
{
    ms_store_lock(&c->secret->store);
}

static void pt_unlock(PlaintextObject *c)
{
    ms_store_unlock(&c->secret->store);
}

static PyObject *pt_enter(PlaintextObject *c, PyObject *Py_UNUSED(ignored))
{
    pt_lock(c);
    int fresh = c->state == PT_NEW;
    if (fresh) {
        c->state = PT_OPEN;
    }
    pt_unlock(c);
    if (!fresh) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a plaintext() context can be entered only once: "
                        "call plaintext() again for a new one");
        return NULL;
    }
    PyObject *obj = make_plaintext(c->secret);
    if (obj == NULL) {
        return NULL;
    }
    Py_INCREF(obj);
    pt_lock(c);
    c->value = obj;
    pt_unlock(c);
    return obj;
}

static PyObject *pt_exit(PlaintextObject *c, PyObject *const *args,
                         Py_ssize_t nargs)
{
    pt_lock(c);
    PyObject *obj = c->value;
    c->value = NULL;
    c->state = PT_DONE;
    pt_unlock(c);
    if (obj == NULL) {
        Py_RETURN_FALSE;
    }
    int rc = settle(obj, 1, 1, nargs >= 2 ? args[1] : NULL);
    Py_DECREF(obj);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_FALSE;
}

static PyObject *pt_reduce(PyObject *Py_UNUSED(c), PyObject *Py_UNUSED(a))
{
    PyErr_SetString(PyExc_TypeError,
                    "cannot pickle 'memsafe.Plaintext' object: it stands for "
                    "plaintext that exists only inside its with-block");
    return NULL;
}

static PyObject *pt_repr(PlaintextObject *c)
{
    static const char *const states[] = {"new", "open", "done"};
    const char *name = Py_TYPE(c->secret)->tp_name;
    const char *dot = strrchr(name, '.');
    return PyUnicode_FromFormat(
        "<memsafe plaintext() of a %s (%s)>", dot ? dot + 1 : name,
        states[c->state]);
}

static int pt_traverse(PlaintextObject *c, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(c)); /* a heap type */
    Py_VISIT(c->secret);
    Py_VISIT(c->value);
    return 0;
}

static int pt_clear(PlaintextObject *c)
{
    drop_value(c);
    return 0;
}

static void pt_dealloc(PlaintextObject *c)
{
    PyObject_GC_UnTrack(c);
    drop_value(c);
    Py_CLEAR(c->secret);
    PyTypeObject *type = Py_TYPE(c);
    PyObject_GC_Del(c);
    Py_DECREF(type); /* a heap type: its objects hold a reference */
}

static PyMethodDef pt_methods[] = {
    {"__enter__", (PyCFunction)pt_enter, METH_NOARGS,
     "Return a fresh copy of the secret (bytes, or str for SecretStr)."},
    {"__exit__", (PyCFunction)(void (*)(void))pt_exit, METH_FASTCALL,
     "Wipe the copy in place unless a reference to it was kept "
     "(PlaintextWarning)."},
    {"__reduce__", (PyCFunction)pt_reduce, METH_NOARGS,
     "Plaintext contexts cannot be pickled."},
    {"__reduce_ex__", (PyCFunction)pt_reduce, METH_O,
     "Plaintext contexts cannot be pickled."},
    {NULL, NULL, 0, NULL}
};

static PyType_Slot pt_slots[] = {
    {Py_tp_dealloc, (void *)pt_dealloc},
    {Py_tp_repr, (void *)pt_repr},
    {Py_tp_hash, (void *)PyObject_HashNotImplemented},
    {Py_tp_doc,
     (void *)"The with-form of plaintext(): `with secret.plaintext() as b:` "
             "gives a fresh bytes (str for SecretStr), wiped when the "
             "block ends unless a reference to it was kept."},
    {Py_tp_traverse, (void *)pt_traverse},
    {Py_tp_clear, (void *)pt_clear},
    {Py_tp_methods, pt_methods},
    {0, NULL}
};

/* A heap type per interpreter; made only by plaintext(). */
static PyType_Spec pt_spec = {
    .name = "memsafe.Plaintext",
    .basicsize = sizeof(PlaintextObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = pt_slots,
};

/* ---- the method ------------------------------------------------------- */

const char ms_plaintext_doc[] =
    "plaintext($self, fn=None, /)\n--\n\n"
    "For consumers that accept only bytes or str.  With a callable, call it "
    "with a fresh bytes copy of the secret (str for SecretStr) and return "
    "its result; without one, return a context manager whose with-block "
    "receives that copy.  The copy is made inside an internal read window "
    "and is never a shared object.  When fn returns or the block ends it is "
    "wiped in place, unless something other than the with-statement's own "
    "name still holds it: then it is left intact and "
    "memsafe.PlaintextWarning says so.  Copies the consumer makes itself "
    "are out of memsafe's reach.";

/* A closed or inherited secret raises at the call, as read() does. */
static int check_open(SecretObject *s)
{
    return ms_secret_check_usable(s);
}

PyObject *ms_plaintext(PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs)
{
    SecretObject *s = (SecretObject *)self;
    if (nargs > 1) {
        return PyErr_Format(PyExc_TypeError,
                            "plaintext() takes at most 1 argument (%zd "
                            "given)",
                            nargs);
    }
    if (nargs == 0 || args[0] == Py_None) {
        if (check_open(s) < 0) {
            return NULL;
        }
        return new_context(s);
    }
    if (!PyCallable_Check(args[0])) {
        PyObject *name = ms_type_name(args[0]);
        if (name != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "plaintext() takes a callable that receives the "
                         "plaintext, not '%U'",
                         name);
            Py_DECREF(name);
        }
        return NULL;
    }
    return run_plaintext(s, args[0]);
}

int ms_plaintext_init(PyObject *module, ms_state *st)
{
    st->plaintext_warning = PyErr_NewExceptionWithDoc(
        "memsafe.PlaintextWarning",
        "Issued when plaintext() could not wipe its bytes or str because "
        "a reference to it was kept (by the consumer, the function's "
        "result, another name, a container or an exception): it is left "
        "intact rather than corrupted, and stays on the Python heap.",
        PyExc_RuntimeWarning, NULL);
    if (st->plaintext_warning == NULL) {
        return -1;
    }
    PyObject *type = PyType_FromModuleAndSpec(module, &pt_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    st->plaintext_type = (PyTypeObject *)type;
    if (PyModule_AddObjectRef(module, "PlaintextWarning",
                              st->plaintext_warning) < 0 ||
        PyModule_AddObjectRef(module, "Plaintext", type) < 0) {
        return -1;
    }
    return 0;
}
