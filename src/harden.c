/*
 * harden.c - memsafe.harden(): process-wide hardening and its report.
 *
 * The measures themselves are in the page layer (ms_os_harden_process and
 * ms_os_debugger_attached, at the end of platform.h and of each
 * platform_*.c); this file turns their report into the dict the API
 * promises.  See docs/hardening.md for what each measure stops and what it
 * does not.
 */
#include "harden.h"

#include "core/atomic.h"

#include <string.h>

/* ---- the remote debugger veto (Python 3.14+, PEP 768) -------------------
 *
 * On 3.14 another process that may write this one's memory (same uid while
 * the process is dumpable, or CAP_SYS_PTRACE) can call sys.remote_exec(pid,
 * path): it writes the path into this interpreter's thread state and sets
 * its eval breaker, and at its next check the thread runs the file
 * (_PyRunRemoteDebugger in CPython's Python/ceval_gil.c).  Before reading
 * the file it raises the audit event "cpython.remote_debugger_script" with
 * the path, and if an audit hook fails it reports the exception as
 * unraisable ("Audit hook failed for remote debugger script ...") and runs
 * nothing.  harden() installs a C audit hook (PySys_AddAuditHook) that
 * fails that event, whoever wrote the request: root included.
 *
 * C rather than sys.addaudithook: a C hook is runtime-wide (every
 * interpreter of the process, subinterpreters included, where a Python hook
 * binds one interpreter); it is not a Python object that code in the
 * process could find and patch (its __code__, its globals); and it costs a
 * character compare per audit event instead of a Python call.  Neither kind
 * can be removed.  What it cannot stop: a process allowed to write this
 * one's memory can unlink the hook, clear the interpreter's remote_debug
 * flag or inject code without PEP 768 at all (ptrace, /proc/PID/mem).
 *
 * PySys_AddAuditHook returns 0 without adding the hook when an existing
 * hook refuses "sys.addaudithook" with a RuntimeError, so the hook is
 * confirmed by raising a private probe event and counting that the hook saw
 * it.  Two threads installing at once may both add a hook: harmless. */

#if PY_VERSION_HEX >= 0x030E0000
#define MS_REMOTE_DEBUG_EVENTS 1

static const char remote_event[] = "cpython.remote_debugger_script";
static const char probe_event[] = "memsafe.harden.veto_probe";

static volatile intptr_t veto_installed; /* 1: the hook is confirmed */
static volatile intptr_t probe_seen;     /* probe events the hook saw */

static int veto_hook(const char *event, PyObject *Py_UNUSED(args),
                     void *Py_UNUSED(user))
{
    if (event[0] == 'c' && strcmp(event, remote_event) == 0) {
        PyErr_SetString(PyExc_PermissionError,
                        "memsafe.harden() refuses remote debugger scripts "
                        "(PEP 768: sys.remote_exec, pdb -p) in this process");
        return -1;
    }
    if (event[0] == 'm' && strcmp(event, probe_event) == 0) {
        (void)ms_atomic_add(&probe_seen, 1);
    }
    return 0;
}

/* "not applied: WHAT (Type: message)" from the pending exception, which is
 * cleared.  -1 (exception kept) for MemoryError. */
static int veto_refused(ms_harden_measure *m, const char *what)
{
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
        return -1;
    }
    PyObject *exc = PyErr_GetRaisedException();
    const char *name = exc != NULL ? Py_TYPE(exc)->tp_name : "?";
    PyObject *text = exc != NULL ? PyObject_Str(exc) : NULL;
    const char *msg = text != NULL ? PyUnicode_AsUTF8(text) : NULL;
    PyErr_Clear();
    m->applied = 0;
    (void)snprintf(m->why, sizeof(m->why), "not applied: %s (%s: %s)", what,
                   name, msg != NULL ? msg : "?");
    Py_XDECREF(text);
    Py_XDECREF(exc);
    return 0;
}

/* Install the veto once; m says whether it is in place.  -1: MemoryError. */
static int veto_remote_debugger(ms_harden_measure *m)
{
    memset(m, 0, sizeof(*m));
    if (ms_atomic_load(&veto_installed)) {
        m->already = 1;
        m->applied = 1;
        return 0;
    }
    if (PySys_AddAuditHook(veto_hook, NULL) < 0) {
        return veto_refused(m, "PySys_AddAuditHook failed: an audit hook "
                               "refused sys.addaudithook");
    }
    intptr_t seen = ms_atomic_load(&probe_seen);
    if (PySys_Audit(probe_event, NULL) < 0) {
        /* another hook failed the probe: ours may still have seen it */
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
            return -1;
        }
        PyErr_Clear();
    }
    if (ms_atomic_load(&probe_seen) == seen) {
        (void)snprintf(m->why, sizeof(m->why),
                       "not applied: the audit hook is not called (an "
                       "audit hook refused sys.addaudithook, or failed the "
                       "probe event %s before it)",
                       probe_event);
        return 0;
    }
    ms_atomic_store(&veto_installed, 1);
    m->applied = 1;
    return 0;
}
#else
static int veto_remote_debugger(ms_harden_measure *m)
{
    memset(m, 0, sizeof(*m));
    (void)snprintf(m->why, sizeof(m->why),
                   "not applicable: Python %d.%d has no remote debugger "
                   "scripts (PEP 768 is Python 3.14+)",
                   PY_MAJOR_VERSION, PY_MINOR_VERSION);
    return 0;
}
#endif

int ms_harden_remote_debug_veto(void)
{
#ifdef MS_REMOTE_DEBUG_EVENTS
    return ms_atomic_load(&veto_installed) != 0;
#else
    return 0;
#endif
}

const char ms_py_harden_doc[] =
    "harden()\n--\n\n"
    "Apply process-wide hardening and return a report: a dict with the same "
    "keys on every OS.  Each measure maps to True (applied, and checked "
    "where the OS can say) or a str saying why not (failed, or not "
    "available on this OS):\n\n"
    "- `not_dumpable`: Linux, prctl(PR_SET_DUMPABLE, 0).  Same-uid "
    "processes without CAP_SYS_PTRACE can no longer ptrace or read "
    "/proc/PID/mem; no core dumps.  Root still can.\n"
    "- `deny_attach`: macOS, ptrace(PT_DENY_ATTACH).\n"
    "- `core_limit_zero`: POSIX, RLIMIT_CORE soft and hard 0.\n"
    "- `process_dacl`: Windows, a process DACL that lets other processes "
    "only wait for, query and terminate this one (no memory access, thread "
    "creation or handle duplication).  Administrators with SeDebugPrivilege "
    "still open it.\n"
    "- `no_crash_dialog`: Windows, SetErrorMode(SEM_NOGPFAULTERRORBOX).\n"
    "- `wer_no_heap`: Windows, WerSetFlags(WER_FAULT_REPORTING_FLAG_NOHEAP)."
    "\n"
    "- `remote_debug_veto`: Python 3.14+, an audit hook that refuses remote "
    "debugger scripts (sys.remote_exec, pdb -p; PEP 768) from anyone, root "
    "included.  Root can still write this process's memory."
    "\n\n"
    "The report also has 'debugger_attached': False, the tracer's pid "
    "(Linux), True (a debugger is attached, the OS does not say which), or a "
    "str when it could not be told (truthy: treat as attached); 'already': "
    "for each measure, whether it was in effect before this call as the OS "
    "reports it (True, False, or a str starting with 'unknown'); and "
    "'applied_now': the measures this call put in place that were not known "
    "to be in effect before (after a first call: empty, unless something "
    "undid a measure).\n\n"
    "Every call applies the measures again, so the measures' values are the "
    "same on every call; 'already' and 'applied_now' say what had changed "
    "in between.  Irreversible for the life of the process.";

static int put(PyObject *dict, const char *key, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    int rc = PyDict_SetItemString(dict, key, value);
    Py_DECREF(value);
    return rc;
}

/* The reasons are ASCII but for the system's message: strerror in the C
 * locale (Python leaves LC_MESSAGES alone) or FormatMessageA in the ANSI
 * code page. */
static PyObject *why_text(const char *why)
{
#ifdef _WIN32
    return PyUnicode_DecodeMBCS(why, (Py_ssize_t)strlen(why), "replace");
#else
    return PyUnicode_DecodeUTF8(why, (Py_ssize_t)strlen(why), "replace");
#endif
}

static int put_measure(PyObject *dict, const char *key,
                       const ms_harden_measure *m)
{
    if (m->applied) {
        return put(dict, key, Py_NewRef(Py_True));
    }
    return put(dict, key, why_text(m->why[0] != '\0' ? m->why : "not applied"));
}

static PyObject *debugger_value(const ms_debugger_state *d)
{
    if (!d->known) {
        return why_text(d->why[0] != '\0' ? d->why : "unknown");
    }
    if (!d->attached) {
        return Py_NewRef(Py_False);
    }
    if (d->tracer_pid > 0) {
        return PyLong_FromLong(d->tracer_pid);
    }
    return Py_NewRef(Py_True);
}

static PyObject *already_value(const ms_harden_measure *m)
{
    if (m->already < 0) {
        return why_text(m->before[0] != '\0' ? m->before : "unknown");
    }
    return PyBool_FromLong(m->already);
}

typedef struct {
    const char *key;
    const ms_harden_measure *m;
} named_measure;

/* report[key] for each measure, then "debugger_attached", then "already"
 * ({key: True/False/"unknown..."}) and "applied_now" ([key, ...]: in place
 * now and not known to have been in effect before). */
static int fill_report(PyObject *dict, const named_measure *list, size_t n,
                       const ms_debugger_state *d)
{
    for (size_t i = 0; i < n; i++) {
        if (put_measure(dict, list[i].key, list[i].m) < 0) {
            return -1;
        }
    }
    if (put(dict, "debugger_attached", debugger_value(d)) < 0) {
        return -1;
    }
    PyObject *already = PyDict_New();
    if (put(dict, "already", Py_XNewRef(already)) < 0) {
        Py_XDECREF(already);
        return -1;
    }
    PyObject *now = PyList_New(0);
    int rc = put(dict, "applied_now", Py_XNewRef(now));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const ms_harden_measure *m = list[i].m;
        rc = put(already, list[i].key, already_value(m));
        if (rc == 0 && m->applied && m->already != 1) {
            PyObject *key = PyUnicode_FromString(list[i].key);
            rc = key != NULL ? PyList_Append(now, key) : -1;
            Py_XDECREF(key);
        }
    }
    Py_DECREF(already);
    Py_XDECREF(now);
    return rc;
}

PyObject *ms_py_harden(PyObject *Py_UNUSED(module),
                       PyObject *Py_UNUSED(unused))
{
    ms_harden_report r;
    ms_harden_measure veto;
    ms_debugger_state d;
    (void)ms_os_harden_process(&r);
    if (veto_remote_debugger(&veto) < 0) {
        return NULL;
    }
    (void)ms_os_debugger_attached(&d);

    const named_measure list[] = {
        {"not_dumpable", &r.not_dumpable},
        {"deny_attach", &r.deny_attach},
        {"core_limit_zero", &r.core_limit_zero},
        {"process_dacl", &r.process_dacl},
        {"no_crash_dialog", &r.no_crash_dialog},
        {"wer_no_heap", &r.wer_no_heap},
        {"remote_debug_veto", &veto},
    };
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    if (fill_report(dict, list, sizeof(list) / sizeof(list[0]), &d) < 0) {
        Py_DECREF(dict);
        return NULL;
    }
    return dict;
}
