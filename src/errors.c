/*
 * errors.c - turning core status codes and OS failures into Python
 * exceptions.
 */
#include "errors.h"

#include <errno.h>
#include <string.h>

#include "config.h"

/* ---- exception types -------------------------------------------------- */

/* Each interpreter has its own classes (they are objects); a program's
 * `except memsafe.LockError` sees the ones of its own interpreter. */
int ms_errors_init(PyObject *module, ms_state *st)
{
    st->lock_error = PyErr_NewExceptionWithDoc(
        "memsafe.LockError",
        "Secret memory could not be locked in RAM (mlock/VirtualLock "
        "failed) under the 'strict' lock policy.\n\nA subclass of "
        "OSError; errno tells why.  Raise RLIMIT_MEMLOCK, grant "
        "CAP_IPC_LOCK, or choose another policy with "
        "memsafe.set_lock_policy().",
        PyExc_OSError, NULL);
    if (st->lock_error == NULL) {
        return -1;
    }
    st->lock_warning = PyErr_NewExceptionWithDoc(
        "memsafe.LockWarning",
        "Issued under the 'warn' lock policy for each secret whose "
        "memory could not be locked in RAM (it may be swapped to disk).",
        PyExc_RuntimeWarning, NULL);
    if (st->lock_warning == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "LockError", st->lock_error) < 0 ||
        PyModule_AddObjectRef(module, "LockWarning", st->lock_warning) < 0) {
        return -1;
    }
    return 0;
}

/* ---- OS errors -------------------------------------------------------- */

PyObject *ms_raise_oserr(const ms_oserr *err, PyObject *filename)
{
    char text[256];
    char msg[320];
    ms_os_describe(err, text, sizeof(text));
    PyOS_snprintf(msg, sizeof(msg), "%s failed: %s", err->op, text);
    PyObject *exc;
    if (err->winerror != 0) {
        exc = PyObject_CallFunction(PyExc_OSError, "isOk", err->code, msg,
                                    filename ? filename : Py_None,
                                    err->winerror);
    } else if (filename != NULL) {
        exc = PyObject_CallFunction(PyExc_OSError, "isO", err->code, msg,
                                    filename);
    } else {
        exc = PyObject_CallFunction(PyExc_OSError, "is", err->code, msg);
    }
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static void lock_limit_text(char *buf, size_t len)
{
    long long soft, hard;
    ms_os_lock_limit(&soft, &hard);
    if (soft < 0) {
        PyOS_snprintf(buf, len, "the lock limit is unlimited or unknown");
    } else if (hard < 0) {
        PyOS_snprintf(buf, len, "the lock limit is %lld bytes", soft);
    } else {
        PyOS_snprintf(buf, len,
                      "RLIMIT_MEMLOCK is %lld bytes (hard limit %lld)",
                      soft, hard);
    }
}

static PyObject *raise_lock_error(const ms_oserr *err)
{
    char text[256];
    char limit[128];
    char msg[900];
    ms_os_describe(err, text, sizeof(text));
    lock_limit_text(limit, sizeof(limit));
    PyOS_snprintf(
        msg, sizeof(msg),
        "could not lock secret memory in RAM (%s failed: %s); %s. "
        "Raise the limit (`ulimit -l`, LimitMEMLOCK= in a systemd unit, "
        "'memlock' in /etc/security/limits.conf, `--ulimit memlock=-1` "
        "for a container) or grant CAP_IPC_LOCK; or call "
        "memsafe.set_lock_policy('warn') to go on with unlocked memory",
        err->op, text, limit);
    ms_state *st = ms_state_current();
    PyObject *cls = st != NULL ? st->lock_error : PyExc_OSError;
    PyObject *exc = PyObject_CallFunction(cls, "is", err->code, msg);
    if (exc != NULL) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *raise_secretmem_error(const ms_oserr *err)
{
    char text[256];
    char msg[700];
    ms_oserr e = {ENOSYS, 0, "memfd_secret"};
    if (err != NULL && err->op != NULL) {
        e = *err;
    }
    ms_os_describe(&e, text, sizeof(text));
    PyOS_snprintf(
        msg, sizeof(msg),
        "memfd_secret is required (memsafe.set_secretmem('require')) but "
        "not available (%s failed: %s). It needs Linux 5.14 or later with "
        "secretmem enabled (secretmem.enable=1 on the kernel command line "
        "before 6.5); or call memsafe.set_secretmem('prefer') to fall back "
        "to ordinary locked pages",
        e.op, text);
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", e.code, msg);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* ---- core status ---------------------------------------------------- */

PyObject *ms_raise(ms_status st, const ms_oserr *err, const char *busy)
{
    switch (st) {
    case MS_OK:
        break;
    case MS_E_OS:
        return ms_raise_oserr(err, NULL);
    case MS_E_NOMEM:
        if (err != NULL && err->op != NULL) {
            return PyErr_Format(PyExc_MemoryError,
                                "cannot allocate secure memory (%s failed: "
                                "out of memory)",
                                err->op);
        }
        return PyErr_Format(PyExc_MemoryError,
                            "secret too large for the address space");
    case MS_E_LOCK:
        return raise_lock_error(err);
    case MS_E_CLOSED:
        return PyErr_Format(PyExc_ValueError, "operation on a closed secret");
    case MS_E_BROKEN:
        return PyErr_Format(
            PyExc_ValueError,
            "this secret was destroyed: its memory protection could not be "
            "restored, so it was wiped rather than left readable");
    case MS_E_FORKED:
        return PyErr_Format(
            PyExc_ValueError,
            "this secret belongs to the parent process: a fork child holds "
            "no plaintext of it; create the secret again in the child");
    case MS_E_BUSY:
        return PyErr_Format(PyExc_BufferError, "%s",
                            busy ? busy
                                 : "a conflicting window is open on this "
                                   "secret");
    case MS_E_NOWINDOW:
        return PyErr_Format(
            PyExc_BufferError,
            "secret memory is only accessible inside a window: use "
            "`with secret.read() as view:` and pass `view`");
    case MS_E_READONLY:
        return PyErr_Format(PyExc_BufferError,
                            "writable access needs an open write window "
                            "(`with secret.write() as view:`)");
    case MS_E_STATE:
        return PyErr_Format(PyExc_RuntimeError, "this window is not open");
    case MS_E_PURGED:
        return PyErr_Format(
            PyExc_ValueError,
            "this secret was purged (memsafe.purge(), interpreter exit, or a "
            "signal after memsafe.purge_on_signals()): its memory was wiped; "
            "create the secret again");
    case MS_E_SECRETMEM:
        return raise_secretmem_error(err);
    case MS_E_CHANGED:
        return PyErr_Format(PyExc_BufferError,
                            "the secret changed while it was being grown "
                            "(another thread used it); try again");
    case MS_E_NONCE:
        return PyErr_Format(PyExc_OverflowError,
                            "the sealed engine has used every nonce this "
                            "process may use (2^63 seals); nothing was "
                            "sealed: restart the process");
    }
    return NULL;
}

/* Under 'warn': one LockWarning per allocation that could not be locked.
 * Returns -1 if the warning was turned into an exception. */
int ms_report_lock_failure(size_t len, const ms_lockresult *lr)
{
    if (!lr->failed || ms_config_lockmode() != MS_LOCK_TRY) {
        return 0;
    }
    char text[256];
    char limit[128];
    ms_os_describe(&lr->err, text, sizeof(text));
    lock_limit_text(limit, sizeof(limit));
    ms_state *st = ms_state_current();
    return PyErr_WarnFormat(st != NULL ? st->lock_warning
                                       : PyExc_RuntimeWarning,
                            1,
                            "secret of %zu bytes is NOT locked in RAM and "
                            "may be swapped to disk (%s failed: %s; %s)",
                            len, lr->err.op, text, limit);
}

PyObject *ms_type_name(PyObject *obj)
{
    PyObject *type = (PyObject *)Py_TYPE(obj);
    PyObject *qual = PyObject_GetAttrString(type, "__qualname__");
    if (qual == NULL || !PyUnicode_Check(qual)) {
        Py_XDECREF(qual);
        PyErr_Clear();
        return PyUnicode_FromString(Py_TYPE(obj)->tp_name);
    }
    PyObject *mod = PyObject_GetAttrString(type, "__module__");
    if (mod == NULL || !PyUnicode_Check(mod) ||
        PyUnicode_CompareWithASCIIString(mod, "builtins") == 0) {
        Py_XDECREF(mod);
        PyErr_Clear();
        return qual;
    }
    PyObject *full = PyUnicode_FromFormat("%U.%U", mod, qual);
    Py_DECREF(mod);
    Py_DECREF(qual);
    return full;
}

PyObject *ms_err_take(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL && v != NULL) {
        PyException_SetTraceback(v, tb);
    }
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
#endif
}

void ms_err_put(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL) {
        return;
    }
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, tb);
#endif
}
