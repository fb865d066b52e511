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

#include <string.h>

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
    "\n\n"
    "The report also has 'debugger_attached': False, the tracer's pid "
    "(Linux), True (a debugger is attached, the OS does not say which), or a "
    "str when it could not be told (truthy: treat as attached).\n\n"
    "Idempotent: every call applies the measures again and reports the "
    "state; calling it twice returns the same report.  Irreversible for the "
    "life of the process.";

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

PyObject *ms_py_harden(PyObject *Py_UNUSED(module),
                       PyObject *Py_UNUSED(unused))
{
    ms_harden_report r;
    ms_debugger_state d;
    (void)ms_os_harden_process(&r);
    (void)ms_os_debugger_attached(&d);

    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    if (put_measure(dict, "not_dumpable", &r.not_dumpable) < 0 ||
        put_measure(dict, "deny_attach", &r.deny_attach) < 0 ||
        put_measure(dict, "core_limit_zero", &r.core_limit_zero) < 0 ||
        put_measure(dict, "process_dacl", &r.process_dacl) < 0 ||
        put_measure(dict, "no_crash_dialog", &r.no_crash_dialog) < 0 ||
        put_measure(dict, "wer_no_heap", &r.wer_no_heap) < 0 ||
        put(dict, "debugger_attached", debugger_value(&d)) < 0) {
        Py_DECREF(dict);
        return NULL;
    }
    return dict;
}
