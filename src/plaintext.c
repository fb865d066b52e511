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

#include <string.h>

#include "core/scrub.h"
#include "errors.h"
#include "frames.h"
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

/* 3.10/3.11: PyUnicode_AsUnicode() and PyUnicode_AsUnicodeAndSize() (used
 * by ctypes' c_wchar_p, some C extensions and Windows APIs) cache a
 * wchar_t copy of the text on the str, freed with it but never wiped.  It
 * shares the data when the kinds match (UCS-4 with a 4-byte wchar_t). */
static void wipe_wstr(PyObject *o, const void *data)
{
#if PY_VERSION_HEX < 0x030C0000
    _Py_COMP_DIAG_PUSH
    _Py_COMP_DIAG_IGNORE_DEPR_DECLS
    PyASCIIObject *a = (PyASCIIObject *)o;
    if (a->wstr == NULL || (const void *)a->wstr == data) {
        return;
    }
    Py_ssize_t n = PyUnicode_IS_COMPACT_ASCII(o)
                       ? a->length
                       : ((PyCompactUnicodeObject *)o)->wstr_length;
    ms_os_wipe(a->wstr, (size_t)n * sizeof(wchar_t));
    _Py_COMP_DIAG_POP
#else
    (void)o;
    (void)data;
#endif
}

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
    wipe_wstr(o, data);
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

/* What accounts for references to the plaintext.  `names` are bindings
 * whose holders are done with it (the with-statement's own target, locals
 * of finished frames); `extra` are references held by a frame's f_locals
 * snapshot dict (3.10-3.12).  `unproven` is set when something could hold
 * it that cannot be counted: the object is then left intact. */
typedef struct {
    PyObject *obj;
    Py_ssize_t names;
    Py_ssize_t extra;
    int unproven;
} tally;

/* A snapshot dict holding obj that someone else also holds (d = locals()
 * kept in a variable) is a reference memsafe cannot account for: only the
 * frame and the caller's reference may hold it. */
static void count_snapshot(PyObject *names, tally *t)
{
    Py_ssize_t pos = 0, n = 0;
    PyObject *k, *v;
    while (PyDict_Next(names, &pos, &k, &v)) {
        n += v == t->obj;
    }
    t->extra += n;
    if (n > 0 && Py_REFCNT(names) != 2) {
        t->unproven = 1;
    }
}

/* A finished frame of the traceback: each of its plain locals bound to the
 * object is explained; a cell or free variable is not (a closure made in
 * the frame may hold the same cell: KEEP.append(lambda: pw)). */
static int count_finished(PyFrameObject *f, void *arg)
{
    tally *t = (tally *)arg;
    int snapshot = 0;
    PyObject *names = ms_frame_names(f, &snapshot);
    if (names == NULL) {
        return -1;
    }
    int rc = 0;
    if (!PyDict_Check(names)) {
        t->unproven = 1;
    } else {
        if (snapshot) {
            count_snapshot(names, t);
        }
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (rc == 0 && PyDict_Next(names, &pos, &k, &v)) {
            if (v != t->obj) {
                continue;
            }
            rc = ms_frame_is_cell(f, k);
            t->names += rc == 0;
            t->unproven |= rc == 1;
            rc = rc < 0 ? -1 : 0;
        }
    }
    Py_DECREF(names);
    return rc;
}

/* How the with-statement stored __enter__'s result (memsafe._frames). */
enum { TGT_NOTHING = 0, TGT_FAST = 1, TGT_NAME = 2, TGT_GLOBAL = 3,
       TGT_POP = 4, TGT_CELL = 5 };

typedef struct {
    const void *frame; /* identity only: the frame that entered */
    int kind;
    PyObject *name;    /* strong; NULL unless kind names one */
} with_target;

/* st->with_target_fn: memsafe._frames.with_target of the interpreter,
 * loaded on first use. */
static int find_target(ms_state *st, with_target *out)
{
    out->frame = NULL;
    out->kind = TGT_NOTHING;
    out->name = NULL;
    PyFrameObject *f = PyEval_GetFrame();
    if (f == NULL) {
        return 0;
    }
    if (st->with_target_fn == NULL) {
        PyObject *mod = PyImport_ImportModule("memsafe._frames");
        if (mod == NULL) {
            return -1;
        }
        PyObject *fn = PyObject_GetAttrString(mod, "with_target");
        Py_DECREF(mod);
        if (fn == NULL) {
            return -1;
        }
        /* Set once and never replaced (a free thread that lost the race
         * drops its own): no reader ever sees it freed. */
        if (st->with_target_fn == NULL) {
            st->with_target_fn = fn;
        } else {
            Py_DECREF(fn);
        }
    }
    PyObject *r = PyObject_CallOneArg(st->with_target_fn, (PyObject *)f);
    if (r == NULL) {
        return -1;
    }
    int kind = 0;
    PyObject *name = NULL;
    if (!PyArg_ParseTuple(r, "iO", &kind, &name)) {
        Py_DECREF(r);
        return -1;
    }
    out->frame = f;
    out->kind = PyUnicode_Check(name) || kind == TGT_POP || kind == TGT_CELL
                    ? kind
                    : TGT_NOTHING;
    out->name = PyUnicode_Check(name) ? Py_NewRef(name) : NULL;
    Py_DECREF(r);
    return 0;
}

/* The value bound to name in a mapping (a new reference or NULL). */
static PyObject *lookup(PyObject *map, PyObject *name)
{
    PyObject *v = PyObject_GetItem(map, name);
    if (v == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
    }
    return v;
}

/* The running with-frame: its target name explains one reference if it is
 * bound to the object; nothing else in the frame does.  Its f_locals
 * snapshot (3.10-3.12) holds references of its own, counted as such. */
static int count_with_frame(const with_target *w, tally *t)
{
    PyFrameObject *f = PyEval_GetFrame();
    if (f == NULL || (const void *)f != w->frame) {
        return 0; /* __exit__ called from elsewhere: nothing explained */
    }
    if (w->kind == TGT_CELL && Py_REFCNT(t->obj) > 1) {
        t->unproven = 1; /* a closure may share the cell */
    }
    int snapshot = 0;
    PyObject *names = ms_frame_names(f, &snapshot);
    if (names == NULL) {
        return -1;
    }
    if (snapshot && PyDict_Check(names)) {
        count_snapshot(names, t);
    }
    PyObject *space = NULL;
    if (w->kind == TGT_FAST || w->kind == TGT_NAME) {
        space = Py_NewRef(names);
    } else if (w->kind == TGT_GLOBAL) {
#if PY_VERSION_HEX >= 0x030B0000
        space = PyFrame_GetGlobals(f);
#else
        space = Py_NewRef(f->f_globals);
#endif
    }
    Py_DECREF(names);
    if (space == NULL || w->name == NULL) {
        Py_XDECREF(space);
        return 0;
    }
    PyObject *v = lookup(space, w->name);
    Py_DECREF(space);
    if (v == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    t->names += v == t->obj;
    Py_DECREF(v);
    return 0;
}

/* This interpreter's PlaintextWarning. */
static PyObject *plaintext_warning(void)
{
    ms_state *st = ms_state_current();
    return st != NULL ? st->plaintext_warning : PyExc_RuntimeWarning;
}

static int warn_interned(PyObject *obj)
{
    return PyErr_WarnFormat(
        plaintext_warning(), 1,
        "plaintext() left its %s intact: it was interned (sys.intern(), or "
        "setattr()/a class or module attribute of that name), and the "
        "interpreter's intern table keeps it, possibly until exit; it was "
        "not wiped and stays on the Python heap.  Do not intern plaintext "
        "or use it as an attribute name",
        plaintext_type_name(obj));
}

static int warn_kept(PyObject *obj, int unproven)
{
    return PyErr_WarnFormat(
        plaintext_warning(), 1,
        "plaintext() left its %s intact: %s, so it was not wiped and stays "
        "on the Python heap",
        plaintext_type_name(obj),
        unproven ? "memsafe could not prove that nothing else holds it (a "
                   "closure or cell, another thread, a generator or "
                   "coroutine, a kept locals() dict, or the exception's "
                   "arguments or notes may)"
                 : "a reference to it was kept after the call or "
                   "with-block ended (by the consumer, the function's "
                   "result, another name, a container, a closure, or an "
                   "exception: its arguments, its notes, the locals of a "
                   "running frame, an AttributeError's name)");
}

/* Every reference explained? */
static int all_explained(PyObject *obj, Py_ssize_t own, const tally *t)
{
    return !t->unproven && Py_REFCNT(obj) == own + t->names + t->extra;
}

/* Wipe obj if every reference to it is explained (memsafe's `own`, the
 * with-statement's target, locals of finished frames of exc's tracebacks);
 * otherwise leave it intact and warn.  -1 if the warning was raised as an
 * exception. */
static int settle(PyObject *obj, Py_ssize_t own, const with_target *w,
                  PyObject *exc)
{
    if (PyUnicode_Check(obj) && PyUnicode_CHECK_INTERNED(obj)) {
        return warn_interned(obj);
    }
    tally t = {obj, 0, 0, 0};
    if (w != NULL && count_with_frame(w, &t) < 0) {
        PyErr_Clear();
        t.unproven = 1;
    }
    if (exc != NULL && exc != Py_None && Py_REFCNT(obj) > own &&
        ms_finished_frames(exc, count_finished, &t) < 0) {
        PyErr_Clear();
        t.unproven = 1;
    }
    /* getattr(o, t): the type attribute cache may keep the name (a strong
     * reference on 3.10/3.11 and 3.13) until another lookup evicts it.
     * Cleared only on this path, which would otherwise leave it intact. */
    if (PyUnicode_Check(obj) && !t.unproven && !all_explained(obj, own, &t)) {
        PyType_ClearCache();
    }
    if (all_explained(obj, own, &t)) {
        wipe_plaintext(obj);
        /* What the consumer's C code left in vector registers and dead
         * stack below this frame (a wchar_t conversion, a hash). */
        ms_scrub();
        return 0;
    }
    return warn_kept(obj, t.unproven);
}

/* The pending exception (from fn) is kept; if settling raises (the warning
 * as an error), that is raised instead with fn's exception as context. */
static void settle_after_error(PyObject *obj)
{
    PyObject *first = ms_err_take();
    if (settle(obj, 1, NULL, first) < 0) {
        PyObject *second = ms_err_take();
        if (first != NULL) {
            PyException_SetContext(second, first);
        }
        ms_err_put(second);
    } else {
        ms_err_put(first);
    }
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
    int rc = settle(obj, 1, NULL, NULL);
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
    with_target target;   /* where the with-statement stored it */
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
    c->target.frame = NULL;
    c->target.kind = TGT_NOTHING;
    c->target.name = NULL;
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
    with_target target;
    if (find_target(c->secret->state, &target) < 0) {
        return NULL;
    }
    PyObject *obj = make_plaintext(c->secret);
    if (obj == NULL) {
        Py_XDECREF(target.name);
        return NULL;
    }
    Py_INCREF(obj);
    Py_XSETREF(c->target.name, target.name);
    c->target.frame = target.frame;
    c->target.kind = target.kind;
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
    int rc = settle(obj, 1, &c->target, nargs >= 2 ? args[1] : NULL);
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
    Py_CLEAR(c->target.name);
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
