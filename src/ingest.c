/*
 * ingest.c - getting secret bytes into secret memory without a Python
 * object ever holding them: the OS CSPRNG, file descriptors, files and the
 * terminal.  Reads go straight into secret memory; when the final size is
 * not known in advance they go into a guarded scratch region that grows by
 * allocate-copy-wipe, and the exact-size secret (of either engine) is
 * copied out of it at the end (the scratch region is wiped like any
 * other).  Every read is bounded by max_size=, so /dev/zero or a runaway
 * pipe cannot lock all of RAM.
 */
#include "ingest.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "args.h"
#include "config.h"
#include "errors.h"
#include "secret.h"
#include "text.h"

#define SCRATCH_START 4080 /* one page with the canary */

/* ---- a growing scratch region ----------------------------------------- */

typedef struct {
    ms_store r;        /* guarded, write window open while in use */
    unsigned char *p;  /* start of the data */
    size_t cap;
    size_t used;
} scratch;

static ms_allocopts scratch_opts(void)
{
    /* Under 'warn' the final secret reports the failure; the scratch
     * region must not warn a second time. */
    ms_allocopts o = ms_config_allocopts();
    if (o.lock != MS_LOCK_REQUIRED) {
        o.lock = MS_LOCK_TRY;
    }
    o.inherit = 0; /* scratch memory never outlives the call */
    return o;
}

static int scratch_init(scratch *sc)
{
    ms_lockresult lr;
    ms_oserr err = {0, 0, NULL};
    ms_allocopts opts = scratch_opts();
    ms_store_init(&sc->r, MS_ENGINE_GUARDED);
    sc->cap = SCRATCH_START;
    sc->used = 0;
    ms_store_lock(&sc->r);
    ms_status st = ms_store_alloc(&sc->r, sc->cap, &opts, &lr, &err);
    sc->p = st == MS_OK ? ms_store_data(&sc->r) : NULL;
    ms_store_unlock(&sc->r);
    if (st != MS_OK) {
        ms_store_fini(&sc->r);
        ms_raise(st, &err, NULL);
        return -1;
    }
    return 0;
}

/* Double the capacity (the window must be closed for the move). */
static int scratch_grow(scratch *sc)
{
    ms_lockresult lr;
    ms_oserr err = {0, 0, NULL};
    ms_allocopts opts = scratch_opts();
    ms_growth g;
    unsigned char *tail = NULL;
    ms_store_lock(&sc->r);
    ms_status st = ms_store_close(&sc->r, MS_WINDOW_WRITE, &err);
    if (st == MS_OK) {
        st = ms_store_grow_prepare(&sc->r, sc->cap, &opts, &lr, &g, &err);
    }
    if (st == MS_OK) {
        st = ms_store_grow_commit(&sc->r, &g, &tail, &err);
    }
    sc->p = st == MS_OK ? ms_store_data(&sc->r) : NULL;
    ms_store_unlock(&sc->r);
    if (st != MS_OK) {
        ms_raise(st, &err, NULL);
        return -1;
    }
    sc->cap *= 2;
    return 0;
}

static void scratch_free(scratch *sc)
{
    ms_oserr ignored;
    ms_store_lock(&sc->r);
    (void)ms_store_free(&sc->r, 1, &ignored);
    ms_store_unlock(&sc->r);
    ms_store_fini(&sc->r);
}

/* ---- limits ----------------------------------------------------------- */

/* max_size=: None (no limit) or a size; one beyond the address space is
 * no limit either (it is only a bound, never allocated). */
static int limit_from(PyObject *obj, Py_ssize_t *limit)
{
    if (obj == Py_None) {
        *limit = PY_SSIZE_T_MAX;
        return 0;
    }
    if (ms_size_from(obj, "max_size", limit) == 0) {
        return 0;
    }
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
        PyErr_Clear();
        *limit = PY_SSIZE_T_MAX;
        return 0;
    }
    return -1;
}

static int too_large(Py_ssize_t limit)
{
    PyErr_Format(PyExc_ValueError,
                 "input is larger than max_size=%zd bytes; nothing was kept "
                 "(the partial secret was wiped): pass a larger max_size=, "
                 "or max_size=None for no limit",
                 limit);
    return -1;
}

/* ---- reading ---------------------------------------------------------- */

typedef int (*read_fn)(void *ctx, unsigned char *buf, size_t len,
                       size_t *got, ms_oserr *err);

static int read_fd(void *ctx, unsigned char *buf, size_t len, size_t *got,
                   ms_oserr *err)
{
    return ms_os_read(*(int *)ctx, buf, len, got, err);
}

static int read_tty(void *ctx, unsigned char *buf, size_t len, size_t *got,
                    ms_oserr *err)
{
    (void)len;
    return ms_os_tty_read_byte((ms_tty *)ctx, buf, got, err);
}

/* One read with the GIL released; signals are handled (and may raise,
 * e.g. KeyboardInterrupt) when it is interrupted.  -1 with an exception
 * set on failure. */
static int read_some(read_fn rd, void *ctx, unsigned char *buf, size_t len,
                     size_t *got)
{
    for (;;) {
        ms_oserr err = {0, 0, NULL};
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = rd(ctx, buf, len, got, &err);
        Py_END_ALLOW_THREADS
        if (rc == 0) {
            return 0;
        }
        if (err.code != EINTR) {
            ms_raise_oserr(&err, NULL);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
}

/* Fill exactly len bytes at p; EOFError if the input ends first. */
static int read_exact(int fd, unsigned char *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t got = 0;
        if (read_some(read_fd, &fd, p + done, len - done, &got) < 0) {
            return -1;
        }
        if (got == 0) {
            PyErr_Format(PyExc_EOFError,
                         "end of file after %zu of %zu bytes; the partial "
                         "secret was wiped",
                         done, len);
            return -1;
        }
        done += got;
    }
    return 0;
}

/* Drop a trailing "\r" (a line ended by "\r\n": input prepared on
 * Windows; getpass.getpass reads text-mode stdin, which drops it too). */
static void drop_cr(scratch *sc)
{
    if (sc->used > 0 && sc->p[sc->used - 1] == '\r') {
        sc->used--;
        sc->p[sc->used] = 0;
    }
}

/* The rest of a line that was too long is read and dropped (one byte at
 * a time: the input may be shared, nothing past the newline is taken), so
 * the next reader does not get the tail of a password.  At most
 * DRAIN_MAX bytes: endless input without a newline is left alone. */
#define DRAIN_MAX ((size_t)1 << 20)

static int drain_line(read_fn rd, void *ctx)
{
    unsigned char byte = 0;
    int rc = 0;
    for (size_t n = 0; n < DRAIN_MAX; n++) {
        size_t got = 0;
        if (read_some(rd, ctx, &byte, 1, &got) < 0) {
            rc = -1;
            break;
        }
        if (got == 0 || byte == '\n') {
            break;
        }
    }
    ms_os_wipe(&byte, sizeof(byte));
    return rc;
}

/* Read into the scratch region until end of input, or (line mode) until a
 * newline, which is not kept; never more than limit bytes (one more is
 * read to tell "exactly limit" from "more"; in line mode the rest of the
 * line is then dropped).  *eof: input ended. */
static int read_to_scratch(scratch *sc, read_fn rd, void *ctx, int line,
                           Py_ssize_t limit, int *eof)
{
    *eof = 0;
    for (;;) {
        if (sc->used > (size_t)limit) {
            if (line && drain_line(rd, ctx) < 0) {
                return -1;
            }
            return too_large(limit);
        }
        if (sc->used == sc->cap && scratch_grow(sc) < 0) {
            return -1;
        }
        size_t want = line ? 1 : sc->cap - sc->used;
        if (want > (size_t)limit + 1 - sc->used) {
            want = (size_t)limit + 1 - sc->used;
        }
        size_t got = 0;
        if (read_some(rd, ctx, sc->p + sc->used, want, &got) < 0) {
            return -1;
        }
        if (got == 0) {
            *eof = 1;
            return 0;
        }
        if (line && sc->p[sc->used] == '\n') {
            sc->p[sc->used] = 0;
            drop_cr(sc);
            return 0;
        }
        sc->used += got;
    }
}

/* ---- building the final secret ---------------------------------------- */

static int check_text(const scratch *sc)
{
    size_t bad = 0;
    if (ms_utf8_validate(sc->p, sc->used, &bad) < 0) {
        PyErr_Format(PyExc_ValueError,
                     "input is not valid UTF-8 (bad byte sequence at offset "
                     "%zu); nothing was kept",
                     bad);
        return -1;
    }
    return 0;
}

/* A secret of the given type and engine holding a copy of the scratch
 * content. */
static PyObject *secret_from_scratch(PyTypeObject *type, ms_engine engine,
                                     const scratch *sc)
{
    int text = ms_type_is_text(type);
    if (text && check_text(sc) < 0) {
        return NULL;
    }
    SecretObject *s = ms_secret_alloc(type, engine);
    if (s == NULL) {
        return NULL;
    }
    unsigned char *p;
    if (ms_secret_begin_fill(s, sc->used, &p) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    if (sc->used > 0) {
        memcpy(p, sc->p, sc->used);
    }
    if (text) {
        s->nchars = ms_utf8_count(p, sc->used);
    }
    /* A purge that wiped the scratch region while it was read purges the
     * copy too (end_fill then says so). */
    ms_store_lock(&s->store);
    ms_store_inherit_epoch(&s->store, &sc->r);
    ms_store_unlock(&s->store);
    if (ms_secret_end_fill(s) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

/* ---- SecretBytes.random ----------------------------------------------- */

PyObject *ms_ingest_random(PyTypeObject *type, PyObject *args,
                           PyObject *kwds)
{
    static char *kwlist[] = {"", "storage", "fork", NULL};
    ms_state *st = ms_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    PyObject *const names[] = {st->kw_storage, st->kw_fork};
    PyObject *n = NULL;
    PyObject *kw[2] = {NULL, NULL};
    ms_engine engine;
    Py_ssize_t size;
    int got = ms_kwonly(names, 2, args, kwds, 1, &n, kw);
    if (got == 0 || n == NULL) { /* n is required: the error is PyArg's */
        kw[0] = kw[1] = NULL;
        if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OO:random", kwlist,
                                         &n, &kw[0], &kw[1])) {
            return NULL;
        }
    }
    if (ms_config_placement_from(kw[0], kw[1], &engine) < 0) {
        return NULL;
    }
    if (!ms_is_size(n)) {
        return PyErr_Format(PyExc_TypeError,
                            "random() takes an int, not '%.100s'",
                            Py_TYPE(n)->tp_name);
    }
    if (ms_size_from(n, "size", &size) < 0) {
        return NULL;
    }
    SecretObject *s = ms_secret_alloc_in(st, type, engine);
    if (s == NULL) {
        return NULL;
    }
    unsigned char *p;
    if (ms_secret_begin_fill(s, (size_t)size, &p) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    ms_oserr err = {0, 0, NULL};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ms_os_random(p, (size_t)size, &err);
    Py_END_ALLOW_THREADS
    if (rc != 0) {
        ms_secret_abort_fill(s);
        Py_DECREF(s);
        return ms_raise_oserr(&err, NULL);
    }
    if (ms_secret_end_fill(s) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

/* ---- SecretBytes.from_fd / from_file ---------------------------------- */

/* A SecretStr's bytes must be UTF-8: checked in place before the fill
 * ends (the caller aborts the fill, which wipes them, on failure). */
static int text_fill_check(SecretObject *s, const unsigned char *p,
                           size_t len)
{
    size_t bad = 0;
    if (ms_utf8_validate(p, len, &bad) < 0) {
        PyErr_Format(PyExc_ValueError,
                     "input is not valid UTF-8 (bad byte sequence at offset "
                     "%zu); nothing was kept",
                     bad);
        return -1;
    }
    s->nchars = ms_utf8_count(p, len);
    return 0;
}

static PyObject *fd_exact(PyTypeObject *type, ms_engine engine, int fd,
                          size_t size)
{
    int text = ms_type_is_text(type);
    SecretObject *s = ms_secret_alloc(type, engine);
    if (s == NULL) {
        return NULL;
    }
    unsigned char *p;
    if (ms_secret_begin_fill(s, size, &p) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    if (read_exact(fd, p, size) < 0 ||
        (text && text_fill_check(s, p, size) < 0)) {
        ms_secret_abort_fill(s);
        Py_DECREF(s);
        return NULL;
    }
    if (ms_secret_end_fill(s) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

/* strip_newline=True: one line end at the very end of the input ("\n",
 * or "\r\n") is dropped and its bytes wiped in the scratch region, so
 * `printf 'key\n' | app` and `echo "$KEY" > file` give the key alone. */
static void strip_line_end(scratch *sc)
{
    if (sc->used > 0 && sc->p[sc->used - 1] == '\n') {
        sc->used--;
        sc->p[sc->used] = 0;
        drop_cr(sc);
    }
}

static PyObject *fd_to_eof(PyTypeObject *type, ms_engine engine, int fd,
                           Py_ssize_t limit, int strip_newline)
{
    scratch sc;
    if (scratch_init(&sc) < 0) {
        return NULL;
    }
    int eof;
    PyObject *out = NULL;
    if (read_to_scratch(&sc, read_fd, &fd, 0, limit, &eof) == 0) {
        if (strip_newline) {
            strip_line_end(&sc);
        }
        out = secret_from_scratch(type, engine, &sc);
    }
    scratch_free(&sc);
    return out;
}

/* True and False are ints, but never file descriptors (from_fd(True)
 * would read stdout): refused as sizes are. */
static int refuse_bool_fd(PyObject *args, PyObject *kwds)
{
    PyObject *fd = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0)
                   : kwds != NULL ? PyDict_GetItemString(kwds, "fd")
                                  : NULL;
    if (fd != NULL && PyBool_Check(fd)) {
        PyErr_SetString(PyExc_TypeError,
                        "fd must be an int file descriptor, not 'bool'");
        return -1;
    }
    return 0;
}

PyObject *ms_ingest_from_fd(PyTypeObject *type, PyObject *args,
                            PyObject *kwds)
{
    if (refuse_bool_fd(args, kwds) < 0) {
        return NULL;
    }
    static char *kwlist[] = {"fd",      "size",          "max_size",
                             "storage", "strip_newline", "fork", NULL};
    int fd;
    int strip_newline = 0;
    PyObject *size_obj = Py_None;
    PyObject *max_obj = NULL;
    PyObject *storage = Py_None;
    PyObject *fork = Py_None;
    ms_engine engine;
    Py_ssize_t limit = MS_MAX_FILE_DEFAULT;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|O$OOpO:from_fd", kwlist,
                                     &fd, &size_obj, &max_obj, &storage,
                                     &strip_newline, &fork) ||
        ms_config_placement_from(storage, fork, &engine) < 0 ||
        (max_obj != NULL && limit_from(max_obj, &limit) < 0)) {
        return NULL;
    }
    if (fd < 0) {
        return PyErr_Format(PyExc_ValueError,
                            "fd must be a non-negative file descriptor");
    }
    if (size_obj == Py_None) {
        return fd_to_eof(type, engine, fd, limit, strip_newline);
    }
    if (strip_newline) {
        return PyErr_Format(PyExc_ValueError,
                            "strip_newline=True reads to the end of the "
                            "input; it cannot be combined with size= (pass "
                            "size=None, or the exact size without the "
                            "newline)");
    }
    Py_ssize_t size;
    if (!ms_is_size(size_obj)) {
        return PyErr_Format(PyExc_TypeError,
                            "size must be an int or None, not '%.100s'",
                            Py_TYPE(size_obj)->tp_name);
    }
    if (ms_size_from(size_obj, "size", &size) < 0) {
        return NULL;
    }
    if (size > limit) {
        return PyErr_Format(PyExc_ValueError,
                            "size=%zd is larger than max_size=%zd; pass a "
                            "larger max_size= (or None for no limit)",
                            size, limit);
    }
    return fd_exact(type, engine, fd, (size_t)size);
}

static long os_flag(PyObject *os, const char *name)
{
    PyObject *v = PyObject_GetAttrString(os, name);
    if (v == NULL) {
        PyErr_Clear();
        return 0;
    }
    long f = PyLong_AsLong(v);
    Py_DECREF(v);
    if (f == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return f;
}

/* os.close(fdobj) while an exception is pending: the pending exception
 * is kept, any error from close itself is dropped. */
static void close_keeping_error(PyObject *os, PyObject *fdobj)
{
    PyObject *pending = ms_err_take();
    PyObject *closed = PyObject_CallMethod(os, "close", "O", fdobj);
    Py_XDECREF(closed);
    PyErr_Clear();
    ms_err_put(pending);
}

/* os.open() opens a directory on POSIX and read(2) then fails with EISDIR:
 * IsADirectoryError, with the file name like open()'s. */
static void name_directory(PyObject *path)
{
    if (!PyErr_ExceptionMatches(PyExc_IsADirectoryError)) {
        return;
    }
    PyErr_Clear();
    errno = EISDIR;
    PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
}

/* Open with os.open (path-like objects, wide paths on Windows, and the
 * usual FileNotFoundError/PermissionError with the file name), then read
 * the descriptor to its end. */
static PyObject *read_file(PyTypeObject *type, ms_engine engine,
                           PyObject *path, Py_ssize_t limit, int strip_newline)
{
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL) {
        return NULL;
    }
    long flags = os_flag(os, "O_RDONLY") | os_flag(os, "O_CLOEXEC") |
                 os_flag(os, "O_BINARY") | os_flag(os, "O_NOCTTY");
    PyObject *fdobj = PyObject_CallMethod(os, "open", "Ol", path, flags);
    if (fdobj == NULL) {
        Py_DECREF(os);
        return NULL;
    }
    long fd = PyLong_AsLong(fdobj);
    PyObject *out = NULL;
    if (fd >= 0 && fd <= INT_MAX) {
        out = fd_to_eof(type, engine, (int)fd, limit, strip_newline);
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_OSError, "os.open returned a bad descriptor");
    }
    /* os.close must not run with the read error pending (calling Python
     * with an exception set loses it and ends in SystemError); a close
     * error is reported only when the read succeeded. */
    if (out == NULL) {
        name_directory(path);
        close_keeping_error(os, fdobj);
    } else {
        PyObject *closed = PyObject_CallMethod(os, "close", "O", fdobj);
        if (closed == NULL) {
            Py_CLEAR(out);
        }
        Py_XDECREF(closed);
    }
    Py_DECREF(fdobj);
    Py_DECREF(os);
    return out;
}

PyObject *ms_ingest_from_file(PyTypeObject *type, PyObject *args,
                              PyObject *kwds)
{
    static char *kwlist[] = {"",     "max_size", "storage", "strip_newline",
                             "fork", NULL};
    PyObject *path;
    int strip_newline = 0;
    PyObject *max_obj = NULL;
    PyObject *storage = Py_None;
    PyObject *fork = Py_None;
    ms_engine engine;
    Py_ssize_t limit = MS_MAX_FILE_DEFAULT;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOpO:from_file", kwlist,
                                     &path, &max_obj, &storage,
                                     &strip_newline, &fork) ||
        ms_config_placement_from(storage, fork, &engine) < 0 ||
        (max_obj != NULL && limit_from(max_obj, &limit) < 0)) {
        return NULL;
    }
    return read_file(type, engine, path, limit, strip_newline);
}

/* ---- SecretStr.getpass ------------------------------------------------ */

static int warn_no_tty(PyObject *prompt)
{
    PyObject *gp = PyImport_ImportModule("getpass");
    if (gp == NULL) {
        return -1;
    }
    PyObject *cls = PyObject_GetAttrString(gp, "GetPassWarning");
    Py_DECREF(gp);
    if (cls == NULL) {
        return -1;
    }
    int rc = PyErr_WarnEx(cls, "Can not control echo on the terminal.", 1);
    Py_DECREF(cls);
    if (rc < 0) {
        return -1;
    }
    PyObject *err = PySys_GetObject("stderr"); /* borrowed */
    if (err == NULL || err == Py_None) {
        return 0;
    }
    PyObject *r = PyObject_CallMethod(err, "write", "O", prompt);
    Py_XDECREF(r);
    if (r != NULL) {
        r = PyObject_CallMethod(err, "flush", NULL);
        Py_XDECREF(r);
    }
    return r == NULL ? -1 : 0;
}

/* Read one line into the scratch region; EOFError if input ended before
 * anything was typed. */
static int read_line(scratch *sc, read_fn rd, void *ctx, Py_ssize_t limit)
{
    int eof;
    if (read_to_scratch(sc, rd, ctx, 1, limit, &eof) < 0) {
        return -1;
    }
    if (eof && sc->used == 0) {
        PyErr_SetNone(PyExc_EOFError);
        return -1;
    }
    return 0;
}

/* Grow the scratch region to hold at least n bytes. */
static int scratch_reserve(scratch *sc, size_t n)
{
    while (sc->cap < n) {
        if (scratch_grow(sc) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Overwrite a line object that nobody else holds (refcount 1: not
 * interned, not one of the interpreter's shared one-character objects). */
static void wipe_line(PyObject *line)
{
    if (Py_REFCNT(line) != 1) {
        return;
    }
    if (PyBytes_Check(line)) {
        ms_os_wipe(PyBytes_AS_STRING(line), (size_t)PyBytes_GET_SIZE(line));
    } else if (PyUnicode_Check(line) && !PyUnicode_CHECK_INTERNED(line)) {
        ms_os_wipe(PyUnicode_DATA(line),
                   (size_t)PyUnicode_GET_LENGTH(line) *
                       (size_t)PyUnicode_KIND(line));
    }
}

/* Copy a line (str or bytes, its newline already dropped: n units) into
 * the scratch region. */
static int line_to_scratch(scratch *sc, PyObject *line, Py_ssize_t n,
                           Py_ssize_t limit)
{
    if (PyBytes_Check(line)) {
        if (n > limit) {
            return too_large(limit);
        }
        if (scratch_reserve(sc, (size_t)n) < 0) {
            return -1;
        }
        memcpy(sc->p, PyBytes_AS_STRING(line), (size_t)n);
        sc->used = (size_t)n;
        return 0;
    }
    Py_ssize_t bad = -1;
    Py_ssize_t size = ms_utf8_size_n(line, n, 1, &bad);
    if (size < 0) {
        if (bad >= 0) {
            PyErr_SetString(PyExc_ValueError,
                            "input is not valid text (a lone surrogate); "
                            "nothing was kept");
        }
        return -1;
    }
    if (size > limit) {
        return too_large(limit);
    }
    if (scratch_reserve(sc, (size_t)size) < 0) {
        return -1;
    }
    ms_utf8_encode_n(line, n, 1, sc->p);
    sc->used = (size_t)size;
    return 0;
}

/* Length of a line without its "\n" or "\r\n", or -1 at EOF (empty). */
static Py_ssize_t line_length(PyObject *line)
{
    Py_ssize_t n = PyObject_Length(line);
    if (n <= 0) {
        return n == 0 ? -1 : -2;
    }
    if (PyBytes_Check(line)) {
        const char *b = PyBytes_AS_STRING(line);
        if (b[n - 1] == '\n') {
            n--;
            if (n > 0 && b[n - 1] == '\r') {
                n--;
            }
        }
        return n;
    }
    if (PyUnicode_READ_CHAR(line, n - 1) == '\n') {
        n--;
        if (n > 0 && PyUnicode_READ_CHAR(line, n - 1) == '\r') {
            n--;
        }
    }
    return n;
}

/* The rest of a line too long for max_size, through sys.stdin: read in
 * chunks, each wiped, up to the newline (at most DRAIN_MAX). */
static int drain_stdin(PyObject *in)
{
    PyObject *pending = ms_err_take();
    int rc = 0;
    for (size_t n = 0; n < DRAIN_MAX; n += 4096) {
        PyObject *chunk = PyObject_CallMethod(in, "readline", "n",
                                              (Py_ssize_t)4096);
        if (chunk == NULL) {
            PyErr_Clear();
            rc = -1;
            break;
        }
        Py_ssize_t len = PyObject_Length(chunk);
        int done = len <= 0 || line_length(chunk) < len;
        wipe_line(chunk);
        Py_DECREF(chunk);
        if (done) {
            break;
        }
    }
    ms_err_put(pending);
    return rc;
}

/* A strict decoder on sys.stdin met bytes that are not valid text.  Its
 * UnicodeDecodeError names the bytes and carries the raw input chunk (the
 * password and what follows it) in .object: wipe that chunk if nothing
 * else holds it, and raise an error that carries no input instead. */
static int undecodable_stdin(void)
{
    PyObject *exc = ms_err_take();
    PyObject *chunk = exc != NULL ? PyObject_GetAttrString(exc, "object")
                                  : NULL;
    Py_ssize_t start = -1;
    if (exc == NULL || PyUnicodeDecodeError_GetStart(exc, &start) < 0) {
        start = -1;
    }
    PyErr_Clear();
    Py_XDECREF(exc); /* the exception's own reference goes first */
    if (chunk != NULL && PyBytes_Check(chunk) && Py_REFCNT(chunk) == 1) {
        ms_os_wipe(PyBytes_AS_STRING(chunk), (size_t)PyBytes_GET_SIZE(chunk));
    }
    Py_XDECREF(chunk);
    PyErr_Format(PyExc_ValueError,
                 "input is not valid text for sys.stdin's encoding (an "
                 "undecodable byte at offset %zd of what was read); nothing "
                 "was kept",
                 start);
    return -1;
}

/* No terminal: the line comes through sys.stdin, so that input the program
 * has already buffered there (input() for a user name, then getpass for
 * the password, from a pipe) is never skipped and lines stay in order.
 * The line object sys.stdin returns is wiped after the copy; what
 * sys.stdin's own buffers keep cannot be (docs/api.md says so).  Without a
 * sys.stdin at all, file descriptor 0 is read directly. */
static int line_from_stdin(scratch *sc, PyObject *prompt, Py_ssize_t limit)
{
    if (warn_no_tty(prompt) < 0) {
        return -1;
    }
    PyObject *in = PySys_GetObject("stdin"); /* borrowed */
    if (in == NULL || in == Py_None) {
        int fd = 0;
        return read_line(sc, read_fd, &fd, limit);
    }
    Py_ssize_t cap = limit < PY_SSIZE_T_MAX - 3 ? limit + 3 : -1;
    PyObject *line = PyObject_CallMethod(in, "readline", "n", cap);
    if (line == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            return undecodable_stdin();
        }
        return -1;
    }
    int rc = -1;
    Py_ssize_t n = -2;
    if (!PyUnicode_Check(line) && !PyBytes_Check(line)) {
        PyErr_Format(PyExc_TypeError,
                     "sys.stdin.readline() returned '%.100s', not str",
                     Py_TYPE(line)->tp_name);
    } else if ((n = line_length(line)) == -1) {
        PyErr_SetNone(PyExc_EOFError);
    } else if (n >= 0) {
        rc = line_to_scratch(sc, line, n, limit);
        if (rc < 0 && n == PyObject_Length(line) && drain_stdin(in) < 0) {
            PyErr_Clear(); /* keep the first error */
        }
    }
    wipe_line(line);
    Py_DECREF(line);
    return rc;
}

static int line_from_tty(scratch *sc, ms_tty *t, PyObject *prompt,
                         Py_ssize_t limit)
{
    ms_oserr err = {0, 0, NULL};
    Py_ssize_t plen;
    const char *ptext = PyUnicode_AsUTF8AndSize(prompt, &plen);
    if (ptext == NULL) {
        return -1;
    }
    if (ms_os_tty_echo_off(t, &err) != 0) {
        ms_raise_oserr(&err, NULL);
        return -1;
    }
    (void)ms_os_tty_write(t, ptext, (size_t)plen);
    int rc = read_line(sc, read_tty, t, limit);
    /* Restore before anything else can run: on success, on error, and on
     * KeyboardInterrupt alike. */
    ms_oserr rerr = {0, 0, NULL};
    int restored = ms_os_tty_restore(t, &rerr);
    (void)ms_os_tty_write(t, "\n", 1);
    if (rc == 0 && restored != 0) {
        ms_raise_oserr(&rerr, NULL);
        return -1;
    }
    return rc;
}

PyObject *ms_ingest_getpass(PyTypeObject *type, PyObject *args,
                            PyObject *kwds)
{
    static char *kwlist[] = {"prompt", "max_size", "storage", "fork", NULL};
    PyObject *prompt = NULL;
    PyObject *max_obj = NULL;
    PyObject *storage = Py_None;
    PyObject *fork = Py_None;
    ms_engine engine;
    Py_ssize_t limit = MS_MAX_PASSWORD_DEFAULT;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|U$OOO:getpass", kwlist,
                                     &prompt, &max_obj, &storage, &fork) ||
        ms_config_placement_from(storage, fork, &engine) < 0 ||
        (max_obj != NULL && limit_from(max_obj, &limit) < 0)) {
        return NULL;
    }
    PyObject *default_prompt = NULL;
    if (prompt == NULL) {
        default_prompt = PyUnicode_FromString("Password: ");
        if (default_prompt == NULL) {
            return NULL;
        }
        prompt = default_prompt;
    }
    ms_tty t;
    ms_oserr err = {0, 0, NULL};
    int have = ms_os_tty_open(&t, &err);
    if (have < 0) {
        Py_XDECREF(default_prompt);
        return ms_raise_oserr(&err, NULL);
    }
    scratch sc;
    PyObject *out = NULL;
    if (scratch_init(&sc) == 0) {
        int rc = have ? line_from_tty(&sc, &t, prompt, limit)
                      : line_from_stdin(&sc, prompt, limit);
        if (rc == 0) {
            out = secret_from_scratch(type, engine, &sc);
        }
        scratch_free(&sc);
    }
    if (have) {
        ms_os_tty_close(&t);
    }
    Py_XDECREF(default_prompt);
    return out;
}
