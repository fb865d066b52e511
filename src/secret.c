/*
 * secret.c - the secret objects' behaviour: MemSafe (mutable), SecretBytes
 * (immutable bytes) and SecretStr (immutable UTF-8 text), over the storage
 * interface of the core (core/store.h), whichever engine stores them.
 *
 * No function here builds a Python object out of secret bytes, except the
 * two reveal() methods, which exist to do exactly that on request.
 */
#include "secret.h"

#include <string.h>

#include "args.h"
#include "config.h"
#include "core/ct.h"
#include "errors.h"
#include "text.h"

static const char BUSY_CLOSE[] =
    "cannot close this secret while a window is open on it or views from "
    "one are alive: leave the with-block and release the views (del them "
    "or call view.release()) first";
static const char BUSY_READ[] =
    "a write window is open on this secret (or a writable view from one is "
    "still alive); close it first";
static const char BUSY_GROW[] =
    "cannot grow this secret while a window is open on it or views from "
    "one are alive";

/* ---- basics ----------------------------------------------------------- */

/* Any interpreter's secret types: all derive from a Secret type, whose
 * objects are freed by ms_secret_dealloc (a subclass's layout derives
 * from Secret's, so Secret is on the tp_base chain).  No module state is
 * needed, and a type check costs what PyObject_TypeCheck did. */
int ms_secret_check(PyObject *obj)
{
    for (PyTypeObject *t = Py_TYPE(obj); t != NULL; t = t->tp_base) {
        if (t->tp_dealloc == (destructor)ms_secret_dealloc) {
            return 1;
        }
    }
    return 0;
}

ms_kind ms_secret_kind(PyObject *obj)
{
    return ((SecretObject *)obj)->kind; /* set by ms_secret_alloc */
}

int ms_type_is_text(PyTypeObject *type)
{
    ms_state *st = ms_state_of_type(type);
    if (st == NULL) {
        PyErr_Clear(); /* ms_secret_alloc says it */
        return 0;
    }
    return PyType_IsSubtype(type, st->secretstr_type);
}

/* A class deriving from two of MemSafe, SecretBytes and SecretStr would
 * mix their rules (a writable SecretStr holding invalid UTF-8): refused. */
static int single_kind(PyTypeObject *type, ms_state *st, ms_kind *kind)
{
    if (type == st->secretbytes_type || type == st->secretstr_type ||
        type == st->memsafe_type) { /* the common case, no MRO walk */
        *kind = type == st->secretbytes_type ? MS_KIND_BYTES
                : type == st->secretstr_type ? MS_KIND_STR
                                             : MS_KIND_MEMSAFE;
        return 0;
    }
    int str = PyType_IsSubtype(type, st->secretstr_type);
    int bytes = PyType_IsSubtype(type, st->secretbytes_type);
    int kinds = PyType_IsSubtype(type, st->memsafe_type) + bytes + str;
    *kind = str ? MS_KIND_STR : bytes ? MS_KIND_BYTES : MS_KIND_MEMSAFE;
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

SecretObject *ms_secret_alloc(PyTypeObject *type, ms_engine engine)
{
    return ms_secret_alloc_in(ms_state_of_type(type), type, engine);
}

SecretObject *ms_secret_alloc_in(ms_state *st, PyTypeObject *type,
                                 ms_engine engine)
{
    ms_kind kind;
    if (st == NULL || single_kind(type, st, &kind) < 0) {
        return NULL;
    }
    SecretObject *s = (SecretObject *)type->tp_alloc(type, 0);
    if (s == NULL) {
        return NULL;
    }
    s->state = st;
    s->kind = kind;
    int placed = (int)engine;
    ms_store_init(&s->store, (ms_engine)(placed & MS_ENGINE_MASK));
    s->nchars = 0;
    s->weakreflist = NULL;
    s->fork = placed & MS_FORK_ASKED_INHERIT ? 1
              : placed & MS_FORK_ASKED_WIPE  ? 0
                                             : -1;
    return s;
}

/* The options this secret's memory is made with: today's settings, and
 * the fork policy it asked for (fork=) or the default. */
static ms_allocopts allocopts_for(const SecretObject *s)
{
    ms_allocopts opts = ms_config_allocopts();
    if (s->fork >= 0) {
        opts.inherit = s->fork;
    }
    return opts;
}

/* Short type name for repr: "MemSafe", or a subclass's own name. */
static const char *short_name(PyObject *obj)
{
    const char *name = Py_TYPE(obj)->tp_name;
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

int ms_secret_check_usable(SecretObject *s)
{
    ms_store_lock(&s->store);
    ms_status st = ms_store_usable(&s->store);
    ms_store_unlock(&s->store);
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
    ms_allocopts opts = allocopts_for(s);
    ms_store_lock(&s->store);
    ms_status st = ms_store_alloc(&s->store, len, &opts, &lr, &err);
    *p = st == MS_OK ? ms_store_data(&s->store) : NULL;
    ms_store_unlock(&s->store);
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

/* Make the secret's memory holding a copy of src[0..len) (sealed straight
 * from src by the sealed engine: no plaintext slot, no scrub of a window
 * no consumer code ran in). */
static int fill_from(SecretObject *s, const unsigned char *src, size_t len)
{
    ms_lockresult lr;
    ms_oserr err = {0, 0, NULL};
    ms_allocopts opts = allocopts_for(s);
    ms_store_lock(&s->store);
    ms_status st =
        ms_store_alloc_copy(&s->store, src, len, &opts, &lr, &err);
    ms_oserr ignored;
    if (st != MS_OK) {
        (void)ms_store_free(&s->store, 1, &ignored);
    }
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    if (ms_report_lock_failure(len, &lr) < 0) {
        ms_store_lock(&s->store);
        (void)ms_store_free(&s->store, 1, &ignored);
        ms_store_unlock(&s->store);
        return -1;
    }
    return 0;
}

int ms_secret_end_fill(SecretObject *s)
{
    ms_oserr err = {0, 0, NULL};
    ms_store_lock(&s->store);
    ms_status st = ms_store_close(&s->store, MS_WINDOW_WRITE, &err);
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    return 0;
}

void ms_secret_abort_fill(SecretObject *s)
{
    ms_oserr ignored;
    ms_store_lock(&s->store);
    (void)ms_store_close(&s->store, MS_WINDOW_WRITE, &ignored);
    (void)ms_store_free(&s->store, 1, &ignored);
    ms_store_unlock(&s->store);
}

int ms_secret_view_open(SecretObject *s, const unsigned char **p, size_t *n)
{
    ms_oserr err = {0, 0, NULL};
    ms_store_lock(&s->store);
    ms_status st = ms_store_open(&s->store, MS_WINDOW_READ, &err);
    *p = st == MS_OK ? ms_store_data(&s->store) : NULL;
    *n = ms_store_len(&s->store);
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        ms_raise(st, &err, BUSY_READ);
        return -1;
    }
    return 0;
}

int ms_secret_view_close(SecretObject *s)
{
    ms_oserr err = {0, 0, NULL};
    ms_store_lock(&s->store);
    ms_status st = ms_store_close(&s->store, MS_WINDOW_READ, &err);
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    return 0;
}

/* ---- sizes ------------------------------------------------------------ */

/* A ctypes integer (c_int, c_uint64, ...): ctypes' simple types have no
 * __index__ but do export a buffer, which must not be mistaken for data. */
static int is_ctypes_integer(PyObject *obj)
{
    PyObject *mro = Py_TYPE(obj)->tp_mro;
    int simple = 0;
    for (Py_ssize_t i = 0; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (strcmp(t->tp_name, "_ctypes._SimpleCData") == 0) {
            simple = 1;
            break;
        }
    }
    if (!simple) {
        return 0;
    }
    PyObject *code = PyObject_GetAttrString((PyObject *)Py_TYPE(obj),
                                            "_type_");
    if (code == NULL) {
        PyErr_Clear();
        return 0;
    }
    int integer = PyUnicode_Check(code) && PyUnicode_GET_LENGTH(code) == 1 &&
                  strchr("bBhHiIlLqQ", (int)PyUnicode_READ_CHAR(code, 0)) !=
                      NULL;
    Py_DECREF(code);
    return integer;
}

int ms_is_size(PyObject *obj)
{
    return !PyBool_Check(obj) &&
           (PyIndex_Check(obj) || is_ctypes_integer(obj));
}

/* The integer value of a size-like object (a new reference). */
static PyObject *size_value(PyObject *obj)
{
    if (is_ctypes_integer(obj)) {
        PyObject *v = PyObject_GetAttrString(obj, "value");
        if (v != NULL && !PyLong_Check(v)) {
            Py_SETREF(v, PyNumber_Index(v));
        }
        return v;
    }
    return PyNumber_Index(obj);
}

int ms_size_from(PyObject *obj, const char *what, Py_ssize_t *size)
{
    if (!ms_is_size(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not '%.100s'",
                     what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *v = size_value(obj);
    if (v == NULL) {
        return -1;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && n < 0)) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative", what);
        return -1;
    }
    if (overflow > 0 ||
        (unsigned long long)n > (unsigned long long)PY_SSIZE_T_MAX) {
        PyErr_Format(PyExc_MemoryError,
                     "%s is larger than the address space", what);
        return -1;
    }
    *size = (Py_ssize_t)n;
    return 0;
}

/* ---- sources: another secret or any contiguous bytes-like -------------- */

typedef struct {
    SecretObject *secret;   /* set when the source is a secret */
    Py_buffer buf;          /* set otherwise */
    const unsigned char *p;
    size_t n;
} source;

static int not_bytes_like(PyObject *obj)
{
    PyObject *name = ms_type_name(obj);
    if (name != NULL) {
        PyErr_Format(PyExc_TypeError,
                     "expected a bytes-like object or a memsafe secret, not "
                     "'%U'",
                     name);
        Py_DECREF(name);
    }
    return -1;
}

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
        return not_bytes_like(obj);
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

/* Release the source (wiping a bytes-like one if asked); -1 with an
 * exception if closing the internal window on a secret source failed. */
static int source_put(source *src, int wipe)
{
    int rc = 0;
    if (src->secret != NULL) {
        rc = ms_secret_view_close(src->secret);
    } else {
        if (wipe) {
            ms_os_wipe(src->buf.buf, (size_t)src->buf.len);
        }
        PyBuffer_Release(&src->buf);
    }
    src->secret = NULL;
    return rc;
}

/* The pending exception gets a note saying the source was not wiped (a
 * wipe_source=True copy that fails loses nothing). */
static void note_source_kept(void)
{
    PyObject *value = ms_err_take();
    if (value != NULL) {
        PyObject *r = PyObject_CallMethod(
            value, "add_note", "s",
            "memsafe: the copy failed, so the source buffer was left intact "
            "(not wiped)");
        if (r == NULL) {
            PyErr_Clear(); /* Python 3.10: no notes */
        }
        Py_XDECREF(r);
    }
    ms_err_put(value);
}

/* Fill a new secret with a copy of obj. */
static int fill_copy(SecretObject *s, PyObject *obj, int wipe_source)
{
    source src;
    if (source_get(obj, wipe_source, &src) < 0) {
        return -1;
    }
    if (src.secret != NULL) {
        s->nchars = src.secret->nchars;
    }
    int rc = fill_from(s, src.p, src.n);
    if (rc < 0 && wipe_source) {
        note_source_kept();
    }
    if (source_put(&src, wipe_source && rc == 0) < 0 && rc == 0) {
        rc = -1;
    }
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

static int lone_surrogate(Py_ssize_t bad)
{
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError,
                     "text has a lone surrogate at index %zd and cannot be "
                     "stored as UTF-8",
                     bad);
    }
    return -1;
}

int ms_secret_fill_text(SecretObject *s, PyObject *text)
{
    Py_ssize_t bad = -1;
    Py_ssize_t size = ms_utf8_size(text, &bad);
    if (size < 0) {
        return lone_surrogate(bad);
    }
    unsigned char *p;
    if (ms_secret_begin_fill(s, (size_t)size, &p) < 0) {
        return -1;
    }
    ms_utf8_encode(text, p);
    s->nchars = PyUnicode_GET_LENGTH(text);
    return ms_secret_end_fill(s);
}

/* ---- constructors ----------------------------------------------------- */

/* Parse (data, *, wipe_source, storage) and make the empty object. */
static SecretObject *new_from_args(PyTypeObject *type, PyObject *args,
                                   PyObject *kwds, const char *fmt,
                                   PyObject **data, int *wipe)
{
    static char *kwlist[] = {"", "wipe_source", "storage", "fork", NULL};
    ms_state *st = ms_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    PyObject *const names[] = {st->kw_wipe_source, st->kw_storage,
                               st->kw_fork};
    PyObject *storage = Py_None;
    PyObject *fork = Py_None;
    PyObject *kw[3];
    ms_engine engine;
    *data = NULL;
    *wipe = 0;
    int got = ms_kwonly(names, 3, args, kwds, 1, data, kw);
    if (got > 0) {
        if (kw[0] != NULL && (*wipe = PyObject_IsTrue(kw[0])) < 0) {
            return NULL;
        }
        storage = kw[1] != NULL ? kw[1] : Py_None;
        fork = kw[2] != NULL ? kw[2] : Py_None;
    } else if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, data,
                                            wipe, &storage, &fork)) {
        return NULL;
    }
    if (ms_config_placement_from(storage, fork, &engine) < 0) {
        return NULL;
    }
    return ms_secret_alloc_in(st, type, engine);
}

static PyObject *finish_new(SecretObject *s, int rc)
{
    if (rc < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

PyObject *ms_memsafe_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *data;
    int wipe;
    SecretObject *s =
        new_from_args(type, args, kwds, "|O$pOO:MemSafe", &data, &wipe);
    if (s == NULL) {
        return NULL;
    }
    int rc;
    Py_ssize_t size = 0;
    if (data == NULL) {
        rc = fill_zero(s, 0);
    } else if (PyBool_Check(data)) {
        PyErr_SetString(PyExc_TypeError,
                        "MemSafe() takes a size or a bytes-like object, not "
                        "bool");
        rc = -1;
    } else if (ms_is_size(data)) {
        if (wipe) {
            PyErr_SetString(PyExc_TypeError,
                            "wipe_source=True needs a source buffer, not a "
                            "size");
            rc = -1;
        } else {
            rc = ms_size_from(data, "size", &size) < 0 ? -1
                                                       : fill_zero(s, size);
        }
    } else {
        rc = fill_copy(s, data, wipe);
    }
    return finish_new(s, rc);
}

PyObject *ms_secretbytes_new(PyTypeObject *type, PyObject *args,
                             PyObject *kwds)
{
    PyObject *data;
    int wipe;
    SecretObject *s =
        new_from_args(type, args, kwds, "|O$pOO:SecretBytes", &data, &wipe);
    if (s == NULL) {
        return NULL;
    }
    int rc;
    if (data == NULL) {
        rc = fill_zero(s, 0);
    } else if (PyBool_Check(data) || ms_is_size(data)) {
        PyErr_SetString(PyExc_TypeError,
                        "SecretBytes() copies a bytes-like object; for n "
                        "random bytes use SecretBytes.random(n), for n zero "
                        "bytes MemSafe(n)");
        rc = -1;
    } else {
        rc = fill_copy(s, data, wipe);
        s->nchars = 0;
    }
    return finish_new(s, rc);
}

static int not_text(PyObject *text)
{
    PyObject *name = ms_type_name(text);
    if (name == NULL) {
        return -1;
    }
    int pydantic_like = PyObject_HasAttrString(text, "get_secret_value");
    PyErr_Format(PyExc_TypeError,
                 "SecretStr() takes a str or a memsafe.SecretStr, not "
                 "'%U'%s",
                 name,
                 pydantic_like
                     ? " (use memsafe.SecretStr as the pydantic field type, "
                       "or pass the str its get_secret_value() returns)"
                     : "");
    Py_DECREF(name);
    return -1;
}

PyObject *ms_secretstr_new(PyTypeObject *type, PyObject *args,
                           PyObject *kwds)
{
    static char *kwlist[] = {"", "storage", "fork", NULL};
    ms_state *st = ms_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    PyObject *const names[] = {st->kw_storage, st->kw_fork};
    PyObject *text = NULL;
    PyObject *kw[2] = {NULL, NULL};
    ms_engine engine;
    int got = ms_kwonly(names, 2, args, kwds, 1, &text, kw);
    if ((got == 0 && !PyArg_ParseTupleAndKeywords(args, kwds,
                                                  "|O$OO:SecretStr", kwlist,
                                                  &text, &kw[0], &kw[1])) ||
        ms_config_placement_from(kw[0], kw[1], &engine) < 0) {
        return NULL;
    }
    SecretObject *s = ms_secret_alloc_in(st, type, engine);
    if (s == NULL) {
        return NULL;
    }
    int rc;
    if (text == NULL) {
        rc = fill_zero(s, 0);
    } else if (PyUnicode_Check(text)) {
        rc = ms_secret_fill_text(s, text);
    } else if (ms_secret_check(text) &&
               ms_secret_kind(text) == MS_KIND_STR) {
        rc = fill_copy(s, text, 0);
    } else {
        rc = not_text(text);
    }
    return finish_new(s, rc);
}

/* ---- lifetime --------------------------------------------------------- */

void ms_secret_dealloc(SecretObject *s)
{
    ms_oserr ignored;
    if (s->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)s);
    }
    ms_store_lock(&s->store);
    (void)ms_store_free(&s->store, 1, &ignored);
    ms_store_unlock(&s->store);
    ms_store_fini(&s->store);
    PyTypeObject *type = Py_TYPE(s);
    type->tp_free((PyObject *)s);
    Py_DECREF(type); /* a heap type: its objects hold a reference */
}

PyObject *ms_secret_close(SecretObject *s, PyObject *Py_UNUSED(unused))
{
    ms_oserr err = {0, 0, NULL};
    ms_store_lock(&s->store);
    ms_status st = ms_store_free(&s->store, 0, &err);
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        return ms_raise(st, &err, BUSY_CLOSE);
    }
    Py_RETURN_NONE;
}

PyObject *ms_secret_enter(SecretObject *s, PyObject *Py_UNUSED(unused))
{
    if (ms_secret_check_usable(s) < 0) {
        return NULL;
    }
    return Py_NewRef(s);
}

PyObject *ms_secret_exit(SecretObject *s, PyObject *const *Py_UNUSED(args),
                         Py_ssize_t Py_UNUSED(nargs))
{
    PyObject *r = ms_secret_close(s, NULL);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

PyObject *ms_secret_get_closed(SecretObject *s, void *Py_UNUSED(closure))
{
    ms_store_lock(&s->store);
    int closed = ms_store_usable(&s->store) != MS_OK;
    ms_store_unlock(&s->store);
    return PyBool_FromLong(closed);
}

/* A property of a usable secret: the store's flag, or the error. */
static PyObject *usable_flag(SecretObject *s,
                             int (*flag)(const ms_store *))
{
    ms_store_lock(&s->store);
    ms_status st = ms_store_usable(&s->store);
    int v = st == MS_OK ? flag(&s->store) : 0;
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        return ms_raise(st, NULL, NULL);
    }
    return PyBool_FromLong(v);
}

PyObject *ms_secret_get_locked(SecretObject *s, void *Py_UNUSED(closure))
{
    return usable_flag(s, ms_store_locked);
}

PyObject *ms_secret_get_secretmem(SecretObject *s, void *Py_UNUSED(closure))
{
    return usable_flag(s, ms_store_secretmem);
}

PyObject *ms_secret_get_storage(SecretObject *s, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(ms_config_engine_name(s->store.engine));
}

PyObject *ms_secret_get_fork(SecretObject *s, void *Py_UNUSED(closure))
{
    int inherit = s->store.status == MS_STORE_EMPTY
                      ? (s->fork >= 0 ? s->fork : ms_config_fork())
                      : s->store.inherit;
    return PyUnicode_FromString(ms_config_fork_name(inherit));
}

PyObject *ms_secretstr_get_nbytes(SecretObject *s, void *Py_UNUSED(closure))
{
    ms_store_lock(&s->store);
    ms_status st = ms_store_usable(&s->store);
    size_t n = ms_store_len(&s->store);
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        return ms_raise(st, NULL, NULL);
    }
    return PyLong_FromSize_t(n);
}

Py_ssize_t ms_secret_length(SecretObject *s)
{
    int text = ms_secret_kind((PyObject *)s) == MS_KIND_STR;
    ms_store_lock(&s->store);
    ms_status st = ms_store_usable(&s->store);
    Py_ssize_t n = text ? s->nchars : (Py_ssize_t)ms_store_len(&s->store);
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        ms_raise(st, NULL, NULL);
        return -1;
    }
    return n;
}

/* Characters of a SecretStr change under the lock, like its bytes. */
static void add_chars(SecretObject *s, Py_ssize_t n)
{
    ms_store_lock(&s->store);
    s->nchars += n;
    ms_store_unlock(&s->store);
}

PyObject *ms_secret_repr(SecretObject *s)
{
    ms_store_lock(&s->store);
    int usable = ms_store_usable(&s->store) == MS_OK;
    ms_store_unlock(&s->store);
    if (!usable) {
        return PyUnicode_FromFormat("<closed %s>", short_name((PyObject *)s));
    }
    return PyUnicode_FromFormat("%s('**********')", short_name((PyObject *)s));
}

PyObject *ms_secret_reduce(PyObject *s, PyObject *Py_UNUSED(unused))
{
    return PyErr_Format(PyExc_TypeError,
                        "cannot pickle '%s' object: secrets must not be "
                        "serialized, nor passed to another interpreter "
                        "(concurrent.interpreters pickles what it cannot "
                        "share): make the secret in the interpreter that "
                        "uses it (call reveal() explicitly if you really "
                        "must move the plaintext)",
                        short_name(s));
}

/* ---- copies ----------------------------------------------------------- */

/* 1 if s is one of memsafe's own three types (not a Python subclass):
 * nothing but the secret to copy. */
static int own_type(const SecretObject *s)
{
    const PyTypeObject *t = Py_TYPE(s);
    const ms_state *st = s->state;
    return t == st->secretbytes_type || t == st->secretstr_type ||
           t == st->memsafe_type;
}

/* A copy of the same type; a Python subclass's attributes (__dict__ and
 * __slots__) are copied too, deep-copied for deepcopy (memsafe._copying).
 * memsafe's own types skip that, and with it an import per copy (which,
 * in daemon threads at exit, ran into a deadlock of 3.14t's finalization
 * on sys.modules). */
static PyObject *copy_of(SecretObject *s, PyObject *memo)
{
    SecretObject *c = ms_secret_alloc(Py_TYPE(s), s->store.engine);
    if (c == NULL) {
        return NULL;
    }
    c->fork = s->store.inherit; /* a copy keeps the fork policy */
    PyObject *out = finish_new(c, fill_copy(c, (PyObject *)s, 0));
    if (out == NULL || own_type(s)) {
        return out;
    }
    PyObject *mod = PyImport_ImportModule("memsafe._copying");
    PyObject *r = mod == NULL ? NULL
                              : PyObject_CallMethod(mod, "copy_state", "OOO",
                                                    (PyObject *)s, out, memo);
    Py_XDECREF(mod);
    if (r == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    Py_DECREF(r);
    return out;
}

PyObject *ms_secret_copy(SecretObject *s, PyObject *Py_UNUSED(unused))
{
    return copy_of(s, Py_None);
}

PyObject *ms_secret_deepcopy(SecretObject *s, PyObject *memo)
{
    return copy_of(s, memo);
}

/* ---- the secret exports no buffer ------------------------------------- */

/* Only a window's view exports buffers.  The secret object never does, in
 * a window or not: so `bytearray == secret` falls back to the secret's own
 * constant-time __eq__, no other thread can take a buffer during someone
 * else's window, and no consumer that keeps the key object can read it
 * later. */
int ms_secret_getbuffer(SecretObject *s, Py_buffer *view, int flags)
{
    (void)flags;
    view->obj = NULL;
    PyErr_Format(PyExc_BufferError,
                 "a %s exports no buffer: open a window and pass its view "
                 "(`with secret.read() as view: f(view)`)",
                 short_name((PyObject *)s));
    return -1;
}

/* ---- growing ---------------------------------------------------------- */

/* New memory for extra more bytes; the lock failure (if any) is reported
 * before anything changes, so a warning turned into an error leaves the
 * secret as it was. */
static int grow_prepare(SecretObject *s, size_t extra, ms_growth *g)
{
    ms_lockresult lr;
    ms_oserr err = {0, 0, NULL};
    ms_allocopts opts = allocopts_for(s);
    ms_store_lock(&s->store);
    ms_status st =
        ms_store_grow_prepare(&s->store, extra, &opts, &lr, g, &err);
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        ms_raise(st, &err, BUSY_GROW);
        return -1;
    }
    if (ms_report_lock_failure(g->old_len + extra, &lr) < 0) {
        ms_store_grow_abort(g);
        return -1;
    }
    return 0;
}

static int grow_commit(SecretObject *s, ms_growth *g, unsigned char **tail)
{
    ms_oserr err = {0, 0, NULL};
    ms_store_lock(&s->store);
    ms_status st = ms_store_grow_commit(&s->store, g, tail, &err);
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        ms_raise(st, &err, BUSY_GROW);
        return -1;
    }
    return 0;
}

/* Append the secret's own content to itself. */
static int grow_self(SecretObject *s)
{
    ms_store_lock(&s->store);
    ms_status st = ms_store_usable(&s->store);
    size_t n = ms_store_len(&s->store);
    Py_ssize_t chars = s->nchars;
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        ms_raise(st, NULL, NULL);
        return -1;
    }
    ms_growth g;
    unsigned char *tail;
    if (grow_prepare(s, n, &g) < 0 || grow_commit(s, &g, &tail) < 0) {
        return -1;
    }
    if (n > 0) {
        memcpy(tail, tail - n, n);
    }
    add_chars(s, chars);
    return ms_secret_end_fill(s);
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
    ms_growth g;
    unsigned char *tail;
    if (grow_prepare(s, src.n, &g) < 0 || grow_commit(s, &g, &tail) < 0) {
        (void)source_put(&src, 0);
        return -1;
    }
    if (src.n > 0) {
        memcpy(tail, src.p, src.n);
    }
    if (src.secret != NULL) {
        add_chars(s, src.secret->nchars);
    }
    int rc = ms_secret_end_fill(s);
    if (source_put(&src, 0) < 0) {
        rc = -1;
    }
    return rc;
}

PyObject *ms_memsafe_extend(SecretObject *s, PyObject *data)
{
    if (PyBool_Check(data) || ms_is_size(data)) {
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
        return lone_surrogate(bad);
    }
    if (ms_secret_check_usable(s) < 0) {
        return -1;
    }
    ms_growth g;
    unsigned char *tail;
    if (grow_prepare(s, (size_t)size, &g) < 0 ||
        grow_commit(s, &g, &tail) < 0) {
        return -1;
    }
    ms_utf8_encode(text, tail);
    add_chars(s, PyUnicode_GET_LENGTH(text));
    return ms_secret_end_fill(s);
}

PyObject *ms_secretstr_append(SecretObject *s, PyObject *text)
{
    int rc;
    if (PyUnicode_Check(text)) {
        rc = grow_text(s, text);
    } else if (ms_secret_check(text) &&
               ms_secret_kind(text) == MS_KIND_STR) {
        rc = grow_copy(s, text);
    } else {
        PyObject *name = ms_type_name(text);
        if (name != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "append() takes a str or a memsafe.SecretStr, not "
                         "'%U'",
                         name);
            Py_DECREF(name);
        }
        return NULL;
    }
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- reveal: the one deliberate copy onto the Python heap ------------- */

/* Wipe a copy made by reveal() that is dropped unseen (nobody else holds
 * it yet: it was just made). */
static void wipe_unseen(PyObject *out)
{
    if (PyBytes_Check(out)) {
        ms_os_wipe(PyBytes_AS_STRING(out), (size_t)PyBytes_GET_SIZE(out));
    } else if (PyUnicode_Check(out)) {
        ms_os_wipe(PyUnicode_DATA(out), (size_t)PyUnicode_GET_LENGTH(out) *
                                            PyUnicode_KIND(out));
    }
}

/* out, or NULL (wiping and releasing out) if closing the internal window
 * failed: a purge meanwhile, say, so what was read cannot be trusted. */
static PyObject *close_view_keeping(SecretObject *s, PyObject *out)
{
    if (ms_secret_view_close(s) < 0) {
        if (out != NULL) {
            wipe_unseen(out);
            Py_DECREF(out);
        }
        return NULL;
    }
    return out;
}

PyObject *ms_secretbytes_reveal(SecretObject *s, PyObject *Py_UNUSED(unused))
{
    const unsigned char *p;
    size_t n;
    if (ms_secret_view_open(s, &p, &n) < 0) {
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    return close_view_keeping(s, out);
}

PyObject *ms_secretstr_reveal(SecretObject *s, PyObject *Py_UNUSED(unused))
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
    if (out == NULL) {
        /* Keep the first error; still close the window. */
        PyObject *first = ms_err_take();
        (void)ms_secret_view_close(s);
        PyErr_Clear();
        ms_err_put(first);
        return NULL;
    }
    return close_view_keeping(s, out);
}

/* ---- comparison ------------------------------------------------------- */

static PyObject *bool_result(int eq, int op)
{
    return PyBool_FromLong(op == Py_NE ? !eq : eq);
}

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
    if (ms_secret_view_close((SecretObject *)a) < 0) {
        return NULL;
    }
    if (eq < 0) {
        return NULL;
    }
    return bool_result(eq, op);
}

/* Compare two sources in constant time; -1 with an exception. */
static int compare_sources(PyObject *a, PyObject *b)
{
    source x, y;
    if (source_get(a, 0, &x) < 0) {
        return -1;
    }
    if (source_get(b, 0, &y) < 0) {
        (void)source_put(&x, 0);
        return -1;
    }
    int eq = ms_equal_ct(x.p, x.n, y.p, y.n);
    int bad = source_put(&y, 0) < 0;
    bad |= source_put(&x, 0) < 0;
    return bad ? -1 : eq;
}

PyObject *ms_secret_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op == Py_EQ || op == Py_NE) && PyUnicode_Check(b) &&
        ms_secret_kind(a) == MS_KIND_STR) {
        return compare_text(a, b, op);
    }
    if ((op != Py_EQ && op != Py_NE) ||
        (!ms_secret_check(b) && !PyObject_CheckBuffer(b))) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int eq = compare_sources(a, b);
    if (eq < 0) {
        return NULL;
    }
    return bool_result(eq, op);
}

PyObject *ms_compare_digest(PyObject *a, PyObject *b)
{
    int eq = compare_sources(a, b);
    if (eq < 0) {
        return NULL;
    }
    return PyBool_FromLong(eq);
}

/* ---- introspection for tests and the self-check ------------------------ */

PyObject *ms_secret_region_info(SecretObject *s, PyObject *Py_UNUSED(unused))
{
    ms_info_item items[MS_INFO_MAX];
    ms_store_lock(&s->store);
    ms_status st = ms_store_usable(&s->store);
    size_t n = st == MS_OK ? ms_store_info(&s->store, items) : 0;
    ms_store_unlock(&s->store);
    if (st != MS_OK) {
        return ms_raise(st, NULL, NULL);
    }
    PyObject *d = Py_BuildValue(
        "{s:s}", "storage", ms_config_engine_name(s->store.engine));
    for (size_t i = 0; d != NULL && i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(items[i].value);
        if (v == NULL || PyDict_SetItemString(d, items[i].name, v) < 0) {
            Py_CLEAR(d);
        }
        Py_XDECREF(v);
    }
    return d;
}
