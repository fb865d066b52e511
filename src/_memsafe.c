/*
 * _memsafe.c - the module: set-up and module-level functions.
 *
 * The work is done in the files beside this one (see ext.h): the page
 * layer (platform_*.c), one guarded secret (region.c), the Python types
 * (secret.c, window.c), ingestion (ingest.c), UTF-8 (text.c) and errors
 * and the lock policy (errors.c).
 */
#include "ext.h"
#include "core/scrub.h"

static int os_ready = 0;

PyObject *ms_str_release = NULL;

PyDoc_STRVAR(compare_digest_doc,
"compare_digest(a, b, /)\n--\n\n"
"Compare two secrets and/or bytes-like objects in constant time (in the "
"longer length).  Secrets are read through internal windows; no copy is "
"made.");

static PyObject *mod_compare_digest(PyObject *Py_UNUSED(m),
                                    PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        return PyErr_Format(PyExc_TypeError,
                            "compare_digest() takes exactly 2 arguments "
                            "(%zd given)",
                            nargs);
    }
    for (int i = 0; i < 2; i++) {
        if (PyUnicode_Check(args[i])) {
            return PyErr_Format(PyExc_TypeError,
                                "compare_digest() compares secrets and "
                                "bytes-like objects, not str");
        }
    }
    return ms_compare_digest(args[0], args[1]);
}

PyDoc_STRVAR(set_lock_policy_doc,
"set_lock_policy(policy, /)\n--\n\n"
"What to do when secret memory cannot be locked in RAM: 'strict' (raise "
"memsafe.LockError; the default), 'warn' (issue memsafe.LockWarning and go "
"on unlocked) or 'off' (do not lock).  Applies to secrets created "
"afterwards.");

static PyObject *mod_set_lock_policy(PyObject *Py_UNUSED(m), PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        return PyErr_Format(PyExc_TypeError,
                            "lock policy must be a str ('strict', 'warn' or "
                            "'off'), not '%.100s'",
                            Py_TYPE(arg)->tp_name);
    }
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL || ms_policy_set(name) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_lock_policy_doc,
"get_lock_policy()\n--\n\nThe current lock policy: 'strict', 'warn' or "
"'off'.");

static PyObject *mod_get_lock_policy(PyObject *Py_UNUSED(m),
                                     PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(ms_policy_name());
}

PyDoc_STRVAR(features_doc,
"_features()\n--\n\nWhat the page layer uses on this OS (for the "
"self-check).");

#if defined(MEMSAFE_FAULT_INJECTION)
#define FAULT_INJECTION_BUILT 1
#else
#define FAULT_INJECTION_BUILT 0
#endif

static PyObject *mod_features(PyObject *Py_UNUSED(m),
                              PyObject *Py_UNUSED(ignored))
{
    const ms_os_features *f = ms_os_features_get();
    long long soft, hard;
    ms_os_lock_limit(&soft, &hard);
    return Py_BuildValue(
        "{s:s,s:n,s:O,s:s,s:O,s:s,s:O,s:s,s:s,s:s,s:L,s:L,s:i,s:i}",
        "os_family", f->os_family, "page_size",
        (Py_ssize_t)ms_os_page_size(), "dump_exclusion",
        f->dump_exclusion ? Py_True : Py_False, "dump_mechanism",
        f->dump_mechanism, "fork_protection",
        f->fork_protection ? Py_True : Py_False, "fork_mechanism",
        f->fork_mechanism, "secretmem_offered",
        f->secretmem_offered ? Py_True : Py_False, "wipe_mechanism",
        f->wipe_mechanism, "random_source", f->random_source,
        "lock_mechanism", f->lock_mechanism, "lock_limit_soft", soft,
        "lock_limit_hard", hard, "canary_len", MS_CANARY_LEN,
        "fault_injection", FAULT_INJECTION_BUILT);
}

static PyMethodDef module_methods[] = {
    {"compare_digest", (PyCFunction)(void (*)(void))mod_compare_digest,
     METH_FASTCALL, compare_digest_doc},
    {"set_lock_policy", (PyCFunction)mod_set_lock_policy, METH_O,
     set_lock_policy_doc},
    {"get_lock_policy", (PyCFunction)mod_get_lock_policy, METH_NOARGS,
     get_lock_policy_doc},
    {"_features", (PyCFunction)mod_features, METH_NOARGS, features_doc},
    {NULL, NULL, 0, NULL}
};

static int add_type(PyObject *module, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, name, (PyObject *)type);
}

static int module_exec(PyObject *module)
{
    if (!os_ready) {
        ms_oserr err = {0, 0, NULL};
        if (ms_os_init(&err) != 0) {
            ms_raise_oserr(&err, NULL);
            return -1;
        }
        ms_scrub_init();
        ms_str_release = PyUnicode_InternFromString("release");
        if (ms_str_release == NULL) {
            return -1;
        }
        os_ready = 1;
    }
    if (ms_errors_init(module) < 0 ||
        add_type(module, &ms_SecretType, "Secret") < 0 ||
        add_type(module, &ms_MemSafeType, "MemSafe") < 0 ||
        add_type(module, &ms_SecretBytesType, "SecretBytes") < 0 ||
        add_type(module, &ms_SecretStrType, "SecretStr") < 0 ||
        add_type(module, &ms_WindowType, "Window") < 0 ||
        ms_plaintext_init(module) < 0 || ms_pydantic_init(module) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, (void *)module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* Types and the lock policy are process-wide. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Safe without the GIL: every state change of a secret happens under
     * its own region lock (region.h), and the lock policy under a mutex. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "memsafe._memsafe",
    .m_doc = "The C core of memsafe: guarded, locked, no-access memory for "
             "secrets.  Use the memsafe package, not this module.",
    .m_size = 0,
    .m_methods = module_methods,
    .m_slots = module_slots,
};

PyMODINIT_FUNC PyInit__memsafe(void)
{
    return PyModuleDef_Init(&module_def);
}
