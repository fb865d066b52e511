/*
 * secret.c - the secret types: the abstract base, MemSafe (mutable),
 * SecretBytes (immutable bytes) and SecretStr (immutable UTF-8 text).
 *
 * No function here builds a Python object out of secret bytes, except the
 * two reveal() methods, which exist to do exactly that on request.
 */
#include "ext.h"

#include <string.h>

static const char BUSY_CLOSE[] =
    "cannot close this secret while a window is open on it or buffers "
    "exported from it are alive: leave the with-block and release the "
    "views (del them or call view.release()) first";
static const char BUSY_READ[] =
    "a write window is open on this secret (or a writable buffer from one "
    "is still alive); close it first";
static const char BUSY_GROW[] =
    "cannot grow this secret while a window is open on it or buffers "
    "exported from it are alive";

/* Marks a writable export in Py_buffer.internal. */
static char rw_export_mark;

/* ---- basics ----------------------------------------------------------- */

int ms_secret_check(PyObject *obj)
{
    return PyObject_TypeCheck(obj, &ms_SecretType);
}

ms_kind ms_secret_kind(PyObject *obj)
{
    if (PyObject_TypeCheck(obj, &ms_SecretStrType)) {
        return MS_KIND_STR;
    }
    if (PyObject_TypeCheck(obj, &ms_SecretBytesType)) {
        return MS_KIND_BYTES;
    }
    return MS_KIND_MEMSAFE;
}

/* A class deriving from two of MemSafe, SecretBytes and SecretStr would
 * mix their rules (a writable SecretStr holding invalid UTF-8): refused. */
static int single_kind(PyTypeObject *type)
{
    int kinds = PyType_IsSubtype(type, &ms_MemSafeType) +
                PyType_IsSubtype(type, &ms_SecretBytesType) +
                PyType_IsSubtype(type, &ms_SecretStrType);
    if (kinds > 1) {
        PyErr_Format(PyExc_TypeError,
                     "%.100s derives from more than one of MemSafe, "
                     "SecretBytes and SecretStr; a secret type may extend "
                     "only one of them",
                     type->tp_name);
        return -1;
    }
    return 0;
}

SecretObject *ms_secret_alloc(PyTypeObject *type)
{
    if (single_kind(type) < 0) {
        return NULL;
    }
    SecretObject *s = (SecretObject *)type->tp_alloc(type, 0);
    if (s == NULL) {
        return NULL;
    }
    ms_region_init(&s->region);
    s->nchars = 0;
    s->weakreflist = NULL;
    return s;
}

/* Short type name for messages: "MemSafe", or a subclass's own name. */
static const char *type_name(PyObject *obj)
{
    const char *name = Py_TYPE(obj)->tp_name;
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

/* Raise for an unusable secret; 0 if it is usable. */
static int check_usable(SecretObject *s)
{
    ms_region_lock(&s->region);
    ms_status st = ms_region_usable(&s->region);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        ms_raise(st, NULL, NULL);
        return -1;
    }
    return 0;
}

/* ---- filling a new secret --------------------------------------------- */

int ms_secret_begin_fill(SecretObject *s, size_t len, unsigned char **p)
{
    ms_lockresult lr;
    ms_oserr err = {0, 0, NULL};
    ms_region_lock(&s->region);
    ms_status st = ms_region_alloc(&s->region, len, ms_policy_lockmode(),
                                   &lr, &err);
    *p = ms_region_data(&s->region);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    if (ms_report_lock_failure(len, &lr) < 0) {
        ms_secret_abort_fill(s);
        return -1;
    }
    return 0;
}

int ms_secret_end_fill(SecretObject *s)
{
    ms_oserr err = {0, 0, NULL};
    ms_region_lock(&s->region);
    ms_status st = ms_region_close(&s->region, MS_WINDOW_WRITE, &err);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    return 0;
}

/* Wipe and release a secret whose filling failed; keeps any pending
 * Python exception as it is. */
void ms_secret_abort_fill(SecretObject *s)
{
    ms_oserr ignored;
    ms_region_lock(&s->region);
    (void)ms_region_close(&s->region, MS_WINDOW_WRITE, &ignored);
    (void)ms_region_free(&s->region, 1, &ignored);
    ms_region_unlock(&s->region);
}

/* An internal read window: C code reads the secret, nobody else gets a
 * buffer from it. */
int ms_secret_view_open(SecretObject *s, const unsigned char **p, size_t *n)
{
    ms_oserr err = {0, 0, NULL};
    ms_region_lock(&s->region);
    ms_status st = ms_region_open(&s->region, MS_WINDOW_READ, &err);
    *p = ms_region_data(&s->region);
    *n = ms_region_len(&s->region);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        ms_raise(st, &err, BUSY_READ);
        return -1;
    }
    return 0;
}

void ms_secret_view_close(SecretObject *s)
{
    ms_oserr ignored;
    ms_region_lock(&s->region);
    (void)ms_region_close(&s->region, MS_WINDOW_READ, &ignored);
    ms_region_unlock(&s->region);
}

/* ---- sources: another secret or any contiguous bytes-like -------------- */

typedef struct {
    SecretObject *secret;   /* set when the source is a secret */
    Py_buffer buf;          /* set otherwise */
    const unsigned char *p;
    size_t n;
} source;

static int source_get(PyObject *obj, int writable, source *src)
{
    memset(src, 0, sizeof(*src));
    if (ms_secret_check(obj)) {
        if (writable) {
            PyErr_SetString(PyExc_TypeError,
                            "wipe_source=True cannot wipe a secret; close() "
                            "the source secret instead");
            return -1;
        }
        src->secret = (SecretObject *)obj;
        return ms_secret_view_open(src->secret, &src->p, &src->n);
    }
    if (PyUnicode_Check(obj)) {
        PyErr_SetString(PyExc_TypeError,
                        "expected a bytes-like object, not str: use "
                        "memsafe.SecretStr for text");
        return -1;
    }
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "expected a bytes-like object or a secret, not '%.100s'",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, &src->buf,
                           writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
        if (writable && PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Format(PyExc_TypeError,
                         "wipe_source=True needs a writable buffer (e.g. a "
                         "bytearray); a read-only '%.100s' cannot be wiped",
                         Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    src->p = (const unsigned char *)src->buf.buf;
    src->n = (size_t)src->buf.len;
    return 0;
}

static void source_put(source *src, int wipe)
{
    if (src->secret != NULL) {
        ms_secret_view_close(src->secret);
    } else {
        if (wipe) {
            ms_os_wipe(src->buf.buf, (size_t)src->buf.len);
        }
        PyBuffer_Release(&src->buf);
    }
    src->secret = NULL;
}

/* Fill a new secret with a copy of src. */
static int fill_copy(SecretObject *s, PyObject *obj, int wipe_source)
{
    source src;
    if (source_get(obj, wipe_source, &src) < 0) {
        return -1;
    }
    unsigned char *p;
    if (ms_secret_begin_fill(s, src.n, &p) < 0) {
        source_put(&src, 0);
        return -1;
    }
    if (src.n > 0) {
        memcpy(p, src.p, src.n);
    }
    if (src.secret != NULL) {
        s->nchars = src.secret->nchars;
    }
    int rc = ms_secret_end_fill(s);
    source_put(&src, wipe_source && rc == 0);
    return rc;
}

static int fill_zero(SecretObject *s, Py_ssize_t size)
{
    unsigned char *p;
    if (ms_secret_begin_fill(s, (size_t)size, &p) < 0) {
        return -1;
    }
    return ms_secret_end_fill(s);
}

/* Size argument: negative -> ValueError, beyond memory -> MemoryError. */
int ms_size_from(PyObject *obj, Py_ssize_t *size)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && v < 0)) {
        PyErr_SetString(PyExc_ValueError, "size must not be negative");
        return -1;
    }
    if (overflow > 0 || (unsigned long long)v > (unsigned long long)PY_SSIZE_T_MAX) {
        PyErr_SetString(PyExc_MemoryError,
                        "size is larger than the address space");
        return -1;
    }
    *size = (Py_ssize_t)v;
    return 0;
}

/* ---- constructors ----------------------------------------------------- */

static PyObject *new_from_args(PyTypeObject *type, PyObject *args,
                               PyObject *kwds, const char *fmt,
                               PyObject **data, int *wipe)
{
    static char *kwlist[] = {"", "wipe_source", NULL};
    *data = NULL;
    *wipe = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, data, wipe)) {
        return NULL;
    }
    return (PyObject *)ms_secret_alloc(type);
}

static PyObject *memsafe_new(PyTypeObject *type, PyObject *args,
                             PyObject *kwds)
{
    PyObject *data;
    int wipe;
    SecretObject *s = (SecretObject *)new_from_args(
        type, args, kwds, "|O$p:MemSafe", &data, &wipe);
    if (s == NULL) {
        return NULL;
    }
    int rc;
    if (data == NULL) {
        rc = fill_zero(s, 0);
    } else if (PyBool_Check(data)) {
        PyErr_SetString(PyExc_TypeError,
                        "MemSafe() takes a size or a bytes-like object, not "
                        "bool");
        rc = -1;
    } else if (PyLong_Check(data)) {
        Py_ssize_t size;
        if (wipe) {
            PyErr_SetString(PyExc_TypeError,
                            "wipe_source=True needs a source buffer, not a "
                            "size");
            rc = -1;
        } else {
            rc = ms_size_from(data, &size) < 0 ? -1 : fill_zero(s, size);
        }
    } else {
        rc = fill_copy(s, data, wipe);
    }
    if (rc < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

static PyObject *secretbytes_new(PyTypeObject *type, PyObject *args,
                                 PyObject *kwds)
{
    PyObject *data;
    int wipe;
    SecretObject *s = (SecretObject *)new_from_args(
        type, args, kwds, "|O$p:SecretBytes", &data, &wipe);
    if (s == NULL) {
        return NULL;
    }
    int rc;
    if (data == NULL) {
        rc = fill_zero(s, 0);
    } else if (PyLong_Check(data)) {
        PyErr_SetString(PyExc_TypeError,
                        "SecretBytes() copies a bytes-like object; for n "
                        "random bytes use SecretBytes.random(n), for n zero "
                        "bytes MemSafe(n)");
        rc = -1;
    } else if (ms_secret_check(data) &&
               ms_secret_kind(data) == MS_KIND_STR) {
        rc = fill_copy(s, data, wipe);
        s->nchars = 0;
    } else {
        rc = fill_copy(s, data, wipe);
    }
    if (rc < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

/* Encode a str straight into secret memory (no UTF-8 cache, no bytes). */
static int fill_text(SecretObject *s, PyObject *text)
{
    Py_ssize_t bad = -1;
    Py_ssize_t size = ms_utf8_size(text, &bad);
    if (size < 0) {
        if (bad >= 0) {
            PyErr_Format(PyExc_ValueError,
                         "text has a lone surrogate at index %zd and cannot "
                         "be stored as UTF-8",
                         bad);
        }
        return -1;
    }
    unsigned char *p;
    if (ms_secret_begin_fill(s, (size_t)size, &p) < 0) {
        return -1;
    }
    ms_utf8_encode(text, p);
    s->nchars = PyUnicode_GET_LENGTH(text);
    return ms_secret_end_fill(s);
}

static PyObject *secretstr_new(PyTypeObject *type, PyObject *args,
                               PyObject *kwds)
{
    static char *kwlist[] = {"", NULL};
    PyObject *text = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:SecretStr", kwlist,
                                     &text)) {
        return NULL;
    }
    SecretObject *s = ms_secret_alloc(type);
    if (s == NULL) {
        return NULL;
    }
    int rc;
    if (text == NULL) {
        rc = fill_zero(s, 0);
    } else if (PyUnicode_Check(text)) {
        rc = fill_text(s, text);
    } else if (ms_secret_check(text) &&
               ms_secret_kind(text) == MS_KIND_STR) {
        rc = fill_copy(s, text, 0);
    } else {
        PyObject *name = ms_type_qualname(text);
        if (name != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "SecretStr() takes a str or a SecretStr, not '%U'",
                         name);
            Py_DECREF(name);
        }
        rc = -1;
    }
    if (rc < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

/* ---- lifetime --------------------------------------------------------- */

static void secret_dealloc(SecretObject *s)
{
    ms_oserr ignored;
    if (s->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)s);
    }
    ms_region_lock(&s->region);
    (void)ms_region_free(&s->region, 1, &ignored);
    ms_region_unlock(&s->region);
    ms_region_fini(&s->region);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *secret_close(SecretObject *s, PyObject *Py_UNUSED(ignored))
{
    ms_oserr err = {0, 0, NULL};
    ms_region_lock(&s->region);
    ms_status st = ms_region_free(&s->region, 0, &err);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        return ms_raise(st, &err, BUSY_CLOSE);
    }
    Py_RETURN_NONE;
}

static PyObject *secret_enter(SecretObject *s, PyObject *Py_UNUSED(ignored))
{
    if (check_usable(s) < 0) {
        return NULL;
    }
    return Py_NewRef(s);
}

static PyObject *secret_exit(SecretObject *s, PyObject *const *Py_UNUSED(args),
                             Py_ssize_t Py_UNUSED(nargs))
{
    PyObject *r = secret_close(s, NULL);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *secret_get_closed(SecretObject *s, void *Py_UNUSED(c))
{
    ms_region_lock(&s->region);
    int closed = ms_region_usable(&s->region) != MS_OK;
    ms_region_unlock(&s->region);
    return PyBool_FromLong(closed);
}

static PyObject *secret_get_locked(SecretObject *s, void *Py_UNUSED(c))
{
    ms_region_lock(&s->region);
    ms_status st = ms_region_usable(&s->region);
    int locked = s->region.map.locked;
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        return ms_raise(st, NULL, NULL);
    }
    return PyBool_FromLong(locked);
}

static Py_ssize_t secret_length(SecretObject *s)
{
    int text = ms_secret_kind((PyObject *)s) == MS_KIND_STR;
    ms_region_lock(&s->region);
    ms_status st = ms_region_usable(&s->region);
    Py_ssize_t n = text ? s->nchars : (Py_ssize_t)ms_region_len(&s->region);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        ms_raise(st, NULL, NULL);
        return -1;
    }
    return n;
}

/* Characters of a SecretStr change under the lock, like its bytes. */
static void add_chars(SecretObject *s, Py_ssize_t n)
{
    ms_region_lock(&s->region);
    s->nchars += n;
    ms_region_unlock(&s->region);
}

static PyObject *secret_repr(SecretObject *s)
{
    ms_region_lock(&s->region);
    int usable = ms_region_usable(&s->region) == MS_OK;
    ms_region_unlock(&s->region);
    if (!usable) {
        return PyUnicode_FromFormat("<closed %s>", type_name((PyObject *)s));
    }
    return PyUnicode_FromFormat("%s('**********')", type_name((PyObject *)s));
}

static PyObject *secret_reduce(PyObject *s, PyObject *Py_UNUSED(args))
{
    return PyErr_Format(PyExc_TypeError,
                        "cannot pickle '%s' object: secrets must not be "
                        "serialized (call reveal() explicitly if you really "
                        "must move the plaintext)",
                        type_name(s));
}

/* ---- copies ----------------------------------------------------------- */

static PyObject *secret_copy(SecretObject *s, PyObject *Py_UNUSED(ignored))
{
    SecretObject *c = ms_secret_alloc(Py_TYPE(s));
    if (c == NULL) {
        return NULL;
    }
    if (fill_copy(c, (PyObject *)s, 0) < 0) {
        Py_DECREF(c);
        return NULL;
    }
    return (PyObject *)c;
}

static PyObject *secret_deepcopy(SecretObject *s, PyObject *Py_UNUSED(memo))
{
    return secret_copy(s, NULL);
}

/* ---- windows ---------------------------------------------------------- */

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
        if (check_usable(s) < 0) {
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

static PyObject *secret_read(SecretObject *s, PyObject *const *args,
                             Py_ssize_t nargs)
{
    return window_or_run(s, args, nargs, MS_WINDOW_READ, "read");
}

static PyObject *memsafe_write(SecretObject *s, PyObject *const *args,
                               Py_ssize_t nargs)
{
    return window_or_run(s, args, nargs, MS_WINDOW_WRITE, "write");
}

/* ---- buffer protocol on the secret itself ----------------------------- */

static int secret_getbuffer(SecretObject *s, Py_buffer *view, int flags)
{
    int writable = 0;
    ms_region_lock(&s->region);
    ms_status st = ms_region_export(
        &s->region, ms_secret_kind((PyObject *)s) == MS_KIND_MEMSAFE,
        (flags & PyBUF_WRITABLE) != 0, &writable);
    void *p = ms_region_data(&s->region);
    Py_ssize_t n = (Py_ssize_t)ms_region_len(&s->region);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        view->obj = NULL;
        ms_raise(st, NULL, NULL);
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)s, p, n, !writable, flags) < 0) {
        ms_region_lock(&s->region);
        ms_region_unexport(&s->region, writable);
        ms_region_unlock(&s->region);
        return -1;
    }
    view->internal = writable ? &rw_export_mark : NULL;
    return 0;
}

static void secret_releasebuffer(SecretObject *s, Py_buffer *view)
{
    ms_region_lock(&s->region);
    ms_region_unexport(&s->region, view->internal == &rw_export_mark);
    ms_region_unlock(&s->region);
}

/* ---- growing ---------------------------------------------------------- */

static int grow_begin(SecretObject *s, size_t extra, unsigned char **tail,
                      ms_lockresult *lr)
{
    ms_oserr err = {0, 0, NULL};
    ms_region_lock(&s->region);
    ms_status st = ms_region_grow(&s->region, extra, ms_policy_lockmode(),
                                  lr, tail, &err);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        ms_raise(st, &err, BUSY_GROW);
        return -1;
    }
    return 0;
}

/* Close the write window a grow opened, then warn if unlocked. */
static int grow_end(SecretObject *s, const ms_lockresult *lr)
{
    if (ms_secret_end_fill(s) < 0) {
        return -1;
    }
    ms_region_lock(&s->region);
    size_t len = ms_region_len(&s->region);
    ms_region_unlock(&s->region);
    return ms_report_lock_failure(len, lr);
}

/* Append the secret's own content to itself. */
static int grow_self(SecretObject *s)
{
    ms_region_lock(&s->region);
    ms_status st = ms_region_usable(&s->region);
    size_t n = ms_region_len(&s->region);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        ms_raise(st, NULL, NULL);
        return -1;
    }
    unsigned char *tail;
    ms_lockresult lr;
    if (grow_begin(s, n, &tail, &lr) < 0) {
        return -1;
    }
    memcpy(tail, tail - n, n);
    add_chars(s, s->nchars);
    return grow_end(s, &lr);
}

static int grow_copy(SecretObject *s, PyObject *obj)
{
    if (obj == (PyObject *)s) {
        return grow_self(s);
    }
    source src;
    if (source_get(obj, 0, &src) < 0) {
        return -1;
    }
    unsigned char *tail;
    ms_lockresult lr;
    if (grow_begin(s, src.n, &tail, &lr) < 0) {
        source_put(&src, 0);
        return -1;
    }
    if (src.n > 0) {
        memcpy(tail, src.p, src.n);
    }
    if (src.secret != NULL) {
        add_chars(s, src.secret->nchars);
    }
    source_put(&src, 0);
    return grow_end(s, &lr);
}

static PyObject *memsafe_extend(SecretObject *s, PyObject *data)
{
    if (PyLong_Check(data)) {
        PyErr_SetString(PyExc_TypeError,
                        "extend() takes a bytes-like object or a secret, not "
                        "an int");
        return NULL;
    }
    if (grow_copy(s, data) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static int grow_text(SecretObject *s, PyObject *text)
{
    Py_ssize_t bad = -1;
    Py_ssize_t size = ms_utf8_size(text, &bad);
    if (size < 0) {
        if (bad >= 0) {
            PyErr_Format(PyExc_ValueError,
                         "text has a lone surrogate at index %zd and cannot "
                         "be stored as UTF-8",
                         bad);
        }
        return -1;
    }
    if (check_usable(s) < 0) {
        return -1;
    }
    unsigned char *tail;
    ms_lockresult lr;
    if (grow_begin(s, (size_t)size, &tail, &lr) < 0) {
        return -1;
    }
    ms_utf8_encode(text, tail);
    add_chars(s, PyUnicode_GET_LENGTH(text));
    return grow_end(s, &lr);
}

static PyObject *secretstr_append(SecretObject *s, PyObject *text)
{
    int rc;
    if (PyUnicode_Check(text)) {
        rc = grow_text(s, text);
    } else if (ms_secret_check(text) &&
               ms_secret_kind(text) == MS_KIND_STR) {
        rc = grow_copy(s, text);
    } else {
        PyErr_Format(PyExc_TypeError,
                     "append() takes a str or a SecretStr, not '%.100s'",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- reveal: the one deliberate copy onto the Python heap ------------- */

static PyObject *secretbytes_reveal(SecretObject *s,
                                    PyObject *Py_UNUSED(ignored))
{
    const unsigned char *p;
    size_t n;
    if (ms_secret_view_open(s, &p, &n) < 0) {
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    ms_secret_view_close(s);
    return out;
}

static PyObject *secretstr_reveal(SecretObject *s,
                                  PyObject *Py_UNUSED(ignored))
{
    const unsigned char *p;
    size_t n;
    if (ms_secret_view_open(s, &p, &n) < 0) {
        return NULL;
    }
    /* Always valid UTF-8 by construction; checked anyway so that a
     * UnicodeDecodeError (which carries the bytes) can never be raised. */
    size_t bad = 0;
    PyObject *out = NULL;
    if (ms_utf8_validate(p, n, &bad) < 0) {
        PyErr_Format(PyExc_ValueError,
                     "secret text is not valid UTF-8 at byte offset %zu",
                     bad);
    } else {
        out = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "strict");
    }
    ms_secret_view_close(s);
    return out;
}

/* ---- comparison ------------------------------------------------------- */

/* SecretStr == str: compared code point by code point, in constant time
 * with respect to the secret. */
static PyObject *compare_text(PyObject *a, PyObject *b, int op)
{
    const unsigned char *p;
    size_t n;
    if (ms_secret_view_open((SecretObject *)a, &p, &n) < 0) {
        return NULL;
    }
    int eq = ms_utf8_equal_ct(p, n, b);
    ms_secret_view_close((SecretObject *)a);
    if (eq < 0) {
        return NULL;
    }
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *secret_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op == Py_EQ || op == Py_NE) && PyUnicode_Check(b) &&
        ms_secret_kind(a) == MS_KIND_STR) {
        return compare_text(a, b, op);
    }
    if ((op != Py_EQ && op != Py_NE) ||
        (!ms_secret_check(b) && !PyObject_CheckBuffer(b))) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    source x, y;
    if (source_get(a, 0, &x) < 0) {
        return NULL;
    }
    if (source_get(b, 0, &y) < 0) {
        source_put(&x, 0);
        return NULL;
    }
    int eq = ms_equal_ct(x.p, x.n, y.p, y.n);
    source_put(&y, 0);
    source_put(&x, 0);
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

PyObject *ms_compare_digest(PyObject *a, PyObject *b)
{
    source x, y;
    if (source_get(a, 0, &x) < 0) {
        return NULL;
    }
    if (source_get(b, 0, &y) < 0) {
        source_put(&x, 0);
        return NULL;
    }
    int eq = ms_equal_ct(x.p, x.n, y.p, y.n);
    source_put(&y, 0);
    source_put(&x, 0);
    return PyBool_FromLong(eq);
}

/* Constant time in the longer length: the loop runs max(na, nb) times
 * whatever the bytes are, and folds differences with OR instead of
 * branching or returning early.  The only branches depend on the lengths,
 * which a comparison reveals anyway (as hmac.compare_digest does). */
int ms_equal_ct(const unsigned char *a, size_t na, const unsigned char *b,
                size_t nb)
{
    size_t n = na > nb ? na : nb;
    volatile unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < na ? a[i] : 0;
        unsigned char y = i < nb ? b[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}

/* ---- introspection for tests and the self-check ------------------------ */

static PyObject *secret_region_info(SecretObject *s,
                                    PyObject *Py_UNUSED(ignored))
{
    ms_region_lock(&s->region);
    ms_status st = ms_region_usable(&s->region);
    ms_mapping m = s->region.map;
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        return ms_raise(st, NULL, NULL);
    }
    return Py_BuildValue(
        "{s:K,s:n,s:K,s:n,s:K,s:n,s:n,s:i}", "base",
        (unsigned long long)(uintptr_t)m.base, "total", (Py_ssize_t)m.total,
        "data", (unsigned long long)(uintptr_t)m.data, "data_len",
        (Py_ssize_t)m.data_len, "secret",
        (unsigned long long)(uintptr_t)m.secret, "len", (Py_ssize_t)m.len,
        "canary_len", (Py_ssize_t)MS_CANARY_LEN, "locked", m.locked);
}

/* ---- class methods that ingest ---------------------------------------- */

static PyObject *secretbytes_random(PyTypeObject *type, PyObject *n)
{
    return ms_ingest_random(type, n);
}

static PyObject *secretbytes_from_fd(PyTypeObject *type, PyObject *args,
                                     PyObject *kwds)
{
    static char *kwlist[] = {"fd", "size", NULL};
    int fd;
    PyObject *size_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|O:from_fd", kwlist, &fd,
                                     &size_obj)) {
        return NULL;
    }
    Py_ssize_t size = -1;
    if (size_obj != Py_None) {
        if (!PyLong_Check(size_obj) || PyBool_Check(size_obj)) {
            return PyErr_Format(PyExc_TypeError,
                                "size must be an int or None, not '%.100s'",
                                Py_TYPE(size_obj)->tp_name);
        }
        if (ms_size_from(size_obj, &size) < 0) {
            return NULL;
        }
    }
    return ms_ingest_fd(type, fd, size);
}

static PyObject *secretbytes_from_file(PyTypeObject *type, PyObject *path)
{
    return ms_ingest_file(type, path);
}

/* ---- type objects ----------------------------------------------------- */

#define COMMON_METHODS                                                        \
    {"read", (PyCFunction)(void (*)(void))secret_read, METH_FASTCALL,         \
     "read(fn=None, /)\n--\n\nOpen a read window.  Without an argument, "     \
     "return a context manager whose `with` block receives a read-only "      \
     "memoryview of the secret; with a callable, call it with that view "     \
     "and return its result.  The memory is readable only while the window " \
     "is open."},                                                             \
        {"close", (PyCFunction)secret_close, METH_NOARGS,                     \
         "close()\n--\n\nWipe the secret, unlock and release its memory.  "   \
         "Idempotent.  Raises BufferError while a window is open or views "   \
         "of it are alive."},                                                 \
        {"__enter__", (PyCFunction)secret_enter, METH_NOARGS,                 \
         "Return the secret itself."},                                        \
        {"__exit__", (PyCFunction)(void (*)(void))secret_exit, METH_FASTCALL, \
         "Close the secret."},                                                \
        {"__copy__", (PyCFunction)secret_copy, METH_NOARGS,                   \
         "An independent copy in new secure memory."},                        \
        {"__deepcopy__", (PyCFunction)secret_deepcopy, METH_O,                \
         "An independent copy in new secure memory."},                        \
        {"__reduce__", (PyCFunction)secret_reduce, METH_NOARGS,               \
         "Secrets cannot be pickled."},                                       \
        {"__reduce_ex__", (PyCFunction)secret_reduce, METH_O,                 \
         "Secrets cannot be pickled."},                                       \
        {"_region_info", (PyCFunction)secret_region_info, METH_NOARGS,        \
         "Addresses and sizes of the secret's pages (for tests and the "      \
         "self-check)."},                                                     \
        MS_PLAINTEXT_METHOD, MS_PYDANTIC_METHODS

static PyMethodDef base_methods[] = {
    COMMON_METHODS,
    {NULL, NULL, 0, NULL}
};

static PyMethodDef memsafe_methods[] = {
    {"write", (PyCFunction)(void (*)(void))memsafe_write, METH_FASTCALL,
     "write(fn=None, /)\n--\n\nOpen a write window: like read(), but the "
     "view is writable.  A write window is exclusive: it cannot open while "
     "any other window is open or views are alive."},
    {"extend", (PyCFunction)memsafe_extend, METH_O,
     "extend(data, /)\n--\n\nAppend a bytes-like object or another secret.  "
     "The secret moves to new secure memory; the old pages are wiped."},
    {NULL, NULL, 0, NULL}
};

static PyMethodDef secretbytes_methods[] = {
    {"reveal", (PyCFunction)secretbytes_reveal, METH_NOARGS,
     "reveal()\n--\n\nReturn a copy of the secret as bytes.  The copy lives "
     "on the ordinary Python heap and cannot be wiped: avoid it where a "
     "window's view will do."},
    {"random", (PyCFunction)secretbytes_random, METH_O | METH_CLASS,
     "random(n, /)\n--\n\nn bytes from the OS CSPRNG, written straight into "
     "locked memory."},
    {"from_fd", (PyCFunction)(void (*)(void))secretbytes_from_fd,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "from_fd(fd, size=None)\n--\n\nRead from a file descriptor straight "
     "into locked memory: until end of file, or exactly size bytes "
     "(EOFError if the file ends first)."},
    {"from_file", (PyCFunction)secretbytes_from_file, METH_O | METH_CLASS,
     "from_file(path, /)\n--\n\nRead a whole file straight into locked "
     "memory."},
    {NULL, NULL, 0, NULL}
};

PyObject *ms_getpass(PyTypeObject *type, PyObject *args, PyObject *kwds);

static PyMethodDef secretstr_methods[] = {
    {"reveal", (PyCFunction)secretstr_reveal, METH_NOARGS,
     "reveal()\n--\n\nReturn a copy of the text as str.  The copy lives on "
     "the ordinary Python heap and cannot be wiped."},
    {"append", (PyCFunction)secretstr_append, METH_O,
     "append(text, /)\n--\n\nAppend a str or a SecretStr.  The text moves to "
     "new secure memory; the old pages are wiped."},
    {"getpass", (PyCFunction)(void (*)(void))ms_getpass,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "getpass(prompt='Password: ')\n--\n\nRead a line from the terminal "
     "with echo off, straight into locked memory."},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef secret_getset[] = {
    {"closed", (getter)secret_get_closed, NULL,
     "True once the secret is closed (or was inherited through fork).",
     NULL},
    {"locked", (getter)secret_get_locked, NULL,
     "True when the secret's pages are really locked in RAM.", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyBufferProcs secret_as_buffer = {
    (getbufferproc)secret_getbuffer,
    (releasebufferproc)secret_releasebuffer,
};

static PySequenceMethods secret_as_sequence = {
    .sq_length = (lenfunc)secret_length,
};

PyTypeObject ms_SecretType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memsafe.Secret",
    .tp_basicsize = sizeof(SecretObject),
    .tp_dealloc = (destructor)secret_dealloc,
    .tp_repr = (reprfunc)secret_repr,
    .tp_as_sequence = &secret_as_sequence,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_as_buffer = &secret_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base of memsafe's secret types (MemSafe, SecretBytes, "
              "SecretStr); not instantiable.",
    .tp_richcompare = secret_richcompare,
    .tp_weaklistoffset = offsetof(SecretObject, weakreflist),
    .tp_methods = base_methods,
    .tp_getset = secret_getset,
};

PyTypeObject ms_MemSafeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memsafe.MemSafe",
    .tp_basicsize = sizeof(SecretObject),
    .tp_hash = PyObject_HashNotImplemented,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "MemSafe(size_or_data=0, /, *, wipe_source=False)\n--\n\n"
              "A mutable buffer in guarded, locked, no-access memory.  "
              "Give a size for that many zero bytes, or a bytes-like object "
              "(or another secret) to copy; wipe_source=True wipes a "
              "writable source after the copy.  Access it only through "
              "read() and write() windows.",
    .tp_methods = memsafe_methods,
    .tp_base = &ms_SecretType,
    .tp_richcompare = secret_richcompare,
    .tp_new = memsafe_new,
};

PyTypeObject ms_SecretBytesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memsafe.SecretBytes",
    .tp_basicsize = sizeof(SecretObject),
    .tp_hash = PyObject_HashNotImplemented,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "SecretBytes(data=b'', /, *, wipe_source=False)\n--\n\n"
              "Immutable secret bytes in guarded, locked, no-access memory.  "
              "Copies a bytes-like object (the original stays where it was; "
              "wipe_source=True wipes a writable one).  Compare with == in "
              "constant time; read through read() windows.",
    .tp_methods = secretbytes_methods,
    .tp_base = &ms_SecretType,
    .tp_richcompare = secret_richcompare,
    .tp_new = secretbytes_new,
};

PyTypeObject ms_SecretStrType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memsafe.SecretStr",
    .tp_basicsize = sizeof(SecretObject),
    .tp_hash = PyObject_HashNotImplemented,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "SecretStr(text='', /)\n--\n\nSecret text, stored as UTF-8 in "
              "guarded, locked, no-access memory.  len() counts characters; "
              "read() windows give the UTF-8 bytes.",
    .tp_methods = secretstr_methods,
    .tp_getset = ms_secretstr_getset,
    .tp_base = &ms_SecretType,
    .tp_richcompare = secret_richcompare,
    .tp_new = secretstr_new,
};
