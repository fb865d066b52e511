/*
 * ingest.c - getting secret bytes into secret memory without a Python
 * object ever holding them: the OS CSPRNG, file descriptors, files and the
 * terminal.  Reads go straight into region pages; when the final size is
 * not known in advance they go into a scratch region that grows by
 * allocate-copy-wipe, and the exact-size secret is copied out of it at the
 * end (the scratch region is wiped like any other).
 */
#include "ext.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define SCRATCH_START 4080 /* one page with the canary */

/* ---- a growing scratch region ----------------------------------------- */

typedef struct {
    ms_region r;
    unsigned char *p;  /* start of the data, write window open */
    size_t cap;
    size_t used;
} scratch;

static ms_lockmode scratch_lockmode(void)
{
    /* Under 'warn' the final secret reports the failure; the scratch
     * region must not warn a second time. */
    ms_lockmode m = ms_policy_lockmode();
    return m == MS_LOCK_REQUIRED ? m : MS_LOCK_TRY;
}

static int scratch_init(scratch *sc)
{
    ms_lockresult lr;
    ms_oserr err = {0, 0, NULL};
    ms_region_init(&sc->r);
    sc->cap = SCRATCH_START;
    sc->used = 0;
    ms_region_lock(&sc->r);
    ms_status st = ms_region_alloc(&sc->r, sc->cap, scratch_lockmode(), &lr,
                                   &err);
    sc->p = ms_region_data(&sc->r);
    ms_region_unlock(&sc->r);
    if (st != MS_OK) {
        ms_region_fini(&sc->r);
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
    unsigned char *tail;
    ms_region_lock(&sc->r);
    ms_status st = ms_region_close(&sc->r, MS_WINDOW_WRITE, &err);
    if (st == MS_OK) {
        st = ms_region_grow(&sc->r, sc->cap, scratch_lockmode(), &lr, &tail,
                            &err);
    }
    sc->p = ms_region_data(&sc->r);
    ms_region_unlock(&sc->r);
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
    ms_region_lock(&sc->r);
    (void)ms_region_free(&sc->r, 1, &ignored);
    ms_region_unlock(&sc->r);
    ms_region_fini(&sc->r);
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

/* Read into the scratch region until end of input, or (line mode) until a
 * newline, which is not kept.  *eof tells whether input ended. */
static int read_to_scratch(scratch *sc, read_fn rd, void *ctx, int line,
                           int *eof)
{
    *eof = 0;
    for (;;) {
        if (sc->used == sc->cap && scratch_grow(sc) < 0) {
            return -1;
        }
        size_t want = line ? 1 : sc->cap - sc->used;
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
            /* "\r\n" ends a line as well (input prepared on Windows):
             * getpass.getpass reads text-mode stdin, which drops the '\r'
             * too. */
            if (sc->used > 0 && sc->p[sc->used - 1] == '\r') {
                sc->used--;
                sc->p[sc->used] = 0;
            }
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

/* A secret of the given type holding a copy of the scratch content. */
static PyObject *secret_from_scratch(PyTypeObject *type, const scratch *sc)
{
    int text = PyType_IsSubtype(type, &ms_SecretStrType);
    if (text && check_text(sc) < 0) {
        return NULL;
    }
    SecretObject *s = ms_secret_alloc(type);
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
    if (ms_secret_end_fill(s) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

/* ---- SecretBytes.random ----------------------------------------------- */

PyObject *ms_ingest_random(PyTypeObject *type, PyObject *n)
{
    if (!PyLong_Check(n) || PyBool_Check(n)) {
        return PyErr_Format(PyExc_TypeError,
                            "random() takes an int, not '%.100s'",
                            Py_TYPE(n)->tp_name);
    }
    Py_ssize_t size;
    if (ms_size_from(n, &size) < 0) {
        return NULL;
    }
    SecretObject *s = ms_secret_alloc(type);
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

static PyObject *fd_exact(PyTypeObject *type, int fd, size_t size)
{
    SecretObject *s = ms_secret_alloc(type);
    if (s == NULL) {
        return NULL;
    }
    unsigned char *p;
    if (ms_secret_begin_fill(s, size, &p) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    if (read_exact(fd, p, size) < 0) {
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

static PyObject *fd_to_eof(PyTypeObject *type, int fd)
{
    scratch sc;
    if (scratch_init(&sc) < 0) {
        return NULL;
    }
    int eof;
    PyObject *out = NULL;
    if (read_to_scratch(&sc, read_fd, &fd, 0, &eof) == 0) {
        out = secret_from_scratch(type, &sc);
    }
    scratch_free(&sc);
    return out;
}

PyObject *ms_ingest_fd(PyTypeObject *type, int fd, Py_ssize_t size)
{
    if (fd < 0) {
        return PyErr_Format(PyExc_ValueError,
                            "fd must be a non-negative file descriptor");
    }
    return size >= 0 ? fd_exact(type, fd, (size_t)size) : fd_to_eof(type, fd);
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
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *pending = PyErr_GetRaisedException();
    PyObject *closed = PyObject_CallMethod(os, "close", "O", fdobj);
    Py_XDECREF(closed);
    PyErr_Clear();
    PyErr_SetRaisedException(pending);
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyObject *closed = PyObject_CallMethod(os, "close", "O", fdobj);
    Py_XDECREF(closed);
    PyErr_Clear();
    PyErr_Restore(t, v, tb);
#endif
}

/* Open with os.open (path-like objects, wide paths on Windows, and the
 * usual FileNotFoundError/PermissionError with the file name), then read
 * the descriptor to its end. */
PyObject *ms_ingest_file(PyTypeObject *type, PyObject *path)
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
        out = fd_to_eof(type, (int)fd);
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_OSError, "os.open returned a bad descriptor");
    }
    /* os.close must not run with the read error pending (calling Python
     * with an exception set loses it and ends in SystemError); a close
     * error is reported only when the read succeeded. */
    if (out == NULL) {
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
static int read_line(scratch *sc, read_fn rd, void *ctx)
{
    int eof;
    if (read_to_scratch(sc, rd, ctx, 1, &eof) < 0) {
        return -1;
    }
    if (eof && sc->used == 0) {
        PyErr_SetNone(PyExc_EOFError);
        return -1;
    }
    return 0;
}

static int line_from_stdin(scratch *sc, PyObject *prompt)
{
    int fd = 0;
    if (warn_no_tty(prompt) < 0) {
        return -1;
    }
    return read_line(sc, read_fd, &fd);
}

static int line_from_tty(scratch *sc, ms_tty *t, PyObject *prompt)
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
    int rc = read_line(sc, read_tty, t);
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

PyObject *ms_getpass(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"prompt", NULL};
    PyObject *prompt = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|U:getpass", kwlist,
                                     &prompt)) {
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
        int rc = have ? line_from_tty(&sc, &t, prompt)
                      : line_from_stdin(&sc, prompt);
        if (rc == 0) {
            out = secret_from_scratch(type, &sc);
        }
        scratch_free(&sc);
    }
    if (have) {
        ms_os_tty_close(&t);
    }
    Py_XDECREF(default_prompt);
    return out;
}
