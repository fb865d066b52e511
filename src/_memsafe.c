/*
 * _memsafe.c - the module: set-up and module-level functions.
 *
 * The work is done in the files beside this one (see ext.h) and in the
 * Python-free core under core/ (store.h is its interface).
 */
#include "ext.h"

#include "aead_hooks.h"
#include "config.h"
#include "core/atomic.h"
#include "core/key.h"
#include "core/registry.h"
#include "core/scrub.h"
#include "args.h"
#include "errors.h"
#include "harden.h"
#include "plaintext.h"
#include "pydantic_hook.h"
#include "secret.h"
#include "window.h"

/* Process-wide set-up (the page layer, the core, the settings, the exit
 * hook): done once, by whichever interpreter imports the module first.
 * Interpreters with their own GIL (3.12+) or free threads may race here:
 * 0 not yet, 1 under way (the others wait), 2 done. */
static volatile intptr_t os_ready = 0;

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
    if (ms_config_set_lock_policy(arg) < 0) {
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
    return PyUnicode_FromString(ms_config_lock_policy());
}

PyDoc_STRVAR(set_default_storage_doc,
"set_default_storage(storage, /)\n--\n\n"
"The storage engine of secrets created without storage=: 'guarded' (one "
"isolated region per secret, no-access outside windows; the default) or "
"'sealed' (encrypted at rest in pooled arenas; scales to millions of "
"secrets, windows make no system call).");

static PyObject *mod_set_default_storage(PyObject *Py_UNUSED(m),
                                         PyObject *arg)
{
    if (ms_config_set_engine(arg) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_default_storage_doc,
"get_default_storage()\n--\n\nThe default storage engine: 'guarded' or "
"'sealed'.");

static PyObject *mod_get_default_storage(PyObject *Py_UNUSED(m),
                                         PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(ms_config_engine_name(ms_config_engine()));
}

PyDoc_STRVAR(set_secretmem_doc,
"set_secretmem(mode, /)\n--\n\n"
"Whether new secret memory comes from memfd_secret (Linux 5.14+), which "
"even the kernel cannot read: 'off' (the default), 'prefer' (where the "
"kernel offers it, else ordinary pages) or 'require' (creating a secret "
"raises OSError where it is not offered).  While any memfd_secret memory "
"exists, the kernel refuses to hibernate.");

static PyObject *mod_set_secretmem(PyObject *Py_UNUSED(m), PyObject *arg)
{
    if (ms_config_set_secretmem(arg) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(set_fork_policy_doc,
"set_fork_policy(policy, /)\n--\n\n"
"What a fork child gets of the secrets made from now on (fork=None): "
"'wipe' (the default: nothing; using one there raises ValueError) or "
"'inherit' (its own copy, adopted before any Python code runs in the "
"child: locked again, no-dump, guard-fenced, no-access outside windows, "
"sealed ones re-sealed under the child's own key, memfd_secret pages "
"copied).  MEMSAFE_FORK sets it at import.");

static PyObject *mod_set_fork_policy(PyObject *Py_UNUSED(m), PyObject *arg)
{
    if (ms_config_set_fork(arg) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_fork_policy_doc,
"get_fork_policy()\n--\n\nThe default fork policy: 'wipe' or 'inherit'.");

static PyObject *mod_get_fork_policy(PyObject *Py_UNUSED(m),
                                     PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(ms_config_fork_name(ms_config_fork()));
}

PyDoc_STRVAR(get_secretmem_doc,
"get_secretmem()\n--\n\nThe memfd_secret mode: 'off', 'prefer' or "
"'require'.");

static PyObject *mod_get_secretmem(PyObject *Py_UNUSED(m),
                                   PyObject *Py_UNUSED(ignored))
{
    return PyUnicode_FromString(ms_config_secretmem_name());
}

PyDoc_STRVAR(purge_doc,
"purge()\n--\n\n"
"Wipe every live secret of the process, guarded and sealed, and the "
"sealing key.  Using one of them afterwards raises ValueError; new "
"secrets can be made.  A window open in another thread reads zeros from "
"then on, and closing it raises ValueError.");

static PyObject *mod_purge(PyObject *Py_UNUSED(m),
                           PyObject *Py_UNUSED(ignored))
{
    size_t n;
    Py_BEGIN_ALLOW_THREADS
    n = ms_registry_purge(0);
    Py_END_ALLOW_THREADS
    (void)n;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(purge_on_signals_doc,
"purge_on_signals()\n--\n\n"
"Opt in: from now on, every live secret is wiped (as by purge()) before "
"SIGTERM, SIGINT, SIGHUP, SIGQUIT or a fatal signal (SIGSEGV, SIGBUS, "
"SIGABRT, SIGFPE, SIGILL) takes its usual effect.  The handler is "
"async-signal-safe (it takes no lock a signalled thread may hold) and then "
"hands the signal to the handler that was there before (Python's, "
"faulthandler's) or to the default action; an ignored signal stays "
"ignored.  A signal that the program handles and survives (e.g. "
"KeyboardInterrupt) leaves every secret purged.  Call it again after "
"installing handlers of your own with signal.signal().  Returns the number "
"of signals hooked.");

static PyObject *mod_purge_on_signals(PyObject *Py_UNUSED(m),
                                      PyObject *Py_UNUSED(ignored))
{
    ms_oserr err = {0, 0, NULL};
    int n = ms_os_purge_on_signals(ms_registry_purge_signal, &err);
    if (n < 0) {
        return ms_raise_oserr(&err, NULL);
    }
    return PyLong_FromLong(n);
}

PyDoc_STRVAR(stats_doc,
"_stats()\n--\n\nCounts of secret memory in the process (for tests, "
"benchmarks and the self-check).");

static PyObject *mod_stats(PyObject *Py_UNUSED(m),
                           PyObject *Py_UNUSED(ignored))
{
    size_t mappings, bytes, last_wiped;
    unsigned long purges;
    ms_seal_stats st;
    ms_registry_stats(&mappings, &bytes);
    ms_registry_purge_stats(&purges, &last_wiped);
    ms_seal_stats_get(&st);
    return Py_BuildValue(
        "{s:n,s:n,s:k,s:k,s:n,s:K,s:k,s:n,s:n,s:n,s:n,s:n,s:n,s:k,s:k,s:O,"
        "s:O,s:O,s:(KK),s:(KK)}",
        "mappings", (Py_ssize_t)mappings, "mapped_bytes", (Py_ssize_t)bytes,
        "purges", purges, "purge_last_wiped", (Py_ssize_t)last_wiped,
        "nonces_used", (unsigned long long)ms_key_nonces_used(),
        "purge_epoch", ms_registry_epoch(), "fork_generation",
        ms_os_fork_generation(), "cipher_arenas",
        (Py_ssize_t)st.cipher_arenas, "cipher_mapped",
        (Py_ssize_t)st.cipher_mapped, "cipher_slots",
        (Py_ssize_t)st.cipher_slots, "window_arenas",
        (Py_ssize_t)st.window_arenas, "window_mapped",
        (Py_ssize_t)st.window_mapped, "window_slots",
        (Py_ssize_t)st.window_slots, "keys_made", st.keys_made, "rng_seeds",
        st.rng_seeds, "pools_consistent", st.consistent ? Py_True : Py_False,
        "key_ready", ms_seal_key_ready(0) ? Py_True : Py_False,
        "key_ready_secretmem", ms_seal_key_ready(1) ? Py_True : Py_False,
        "key_halves", (unsigned long long)st.key_halves[0][0],
        (unsigned long long)st.key_halves[0][1], "key_halves_secretmem",
        (unsigned long long)st.key_halves[1][0],
        (unsigned long long)st.key_halves[1][1]);
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
        "{s:s,s:n,s:O,s:s,s:O,s:s,s:O,s:s,s:s,s:s,s:L,s:L,s:i,s:i,s:s,s:O}",
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
        "fault_injection", FAULT_INJECTION_BUILT, "fork_detection",
        ms_os_fork_detection(), "remote_debug_veto",
        ms_harden_remote_debug_veto() ? Py_True : Py_False);
}

PyDoc_STRVAR(purge_at_doc,
"_purge_at(point, n, /)\n--\n\n"
"Test hook (fault-injection builds only): the n-th time the core reaches "
"point, a purge runs right there on that thread; n == 0 disarms.  Points: "
"create, seal, seal-key, open-key, close, window, purge.");

static PyObject *mod_purge_at(PyObject *Py_UNUSED(m), PyObject *const *args,
                              Py_ssize_t nargs)
{
#if defined(MEMSAFE_FAULT_INJECTION)
    static const char *const points[] = {"create", "seal",   "seal-key",
                                         "open-key", "close", "window",
                                         "purge", "protect"};
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_purge_at(point: str, n: int)");
        return NULL;
    }
    unsigned long n = PyLong_AsUnsignedLong(args[1]);
    if (n == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        if (PyUnicode_CompareWithASCIIString(args[0], points[i]) == 0) {
            ms_registry_purge_at(points[i], n);
            Py_RETURN_NONE;
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown purge point %R", args[0]);
    return NULL;
#else
    (void)args;
    (void)nargs;
    PyErr_SetString(PyExc_NotImplementedError,
                    "_purge_at needs a build with -DMEMSAFE_FAULT_INJECTION");
    return NULL;
#endif
}

static PyMethodDef module_methods[] = {
    {"_purge_at", (PyCFunction)(void (*)(void))mod_purge_at, METH_FASTCALL,
     purge_at_doc},
    {"compare_digest", (PyCFunction)(void (*)(void))mod_compare_digest,
     METH_FASTCALL, compare_digest_doc},
    {"set_lock_policy", (PyCFunction)mod_set_lock_policy, METH_O,
     set_lock_policy_doc},
    {"get_lock_policy", (PyCFunction)mod_get_lock_policy, METH_NOARGS,
     get_lock_policy_doc},
    {"set_default_storage", (PyCFunction)mod_set_default_storage, METH_O,
     set_default_storage_doc},
    {"get_default_storage", (PyCFunction)mod_get_default_storage,
     METH_NOARGS, get_default_storage_doc},
    {"set_secretmem", (PyCFunction)mod_set_secretmem, METH_O,
     set_secretmem_doc},
    {"get_secretmem", (PyCFunction)mod_get_secretmem, METH_NOARGS,
     get_secretmem_doc},
    {"set_fork_policy", (PyCFunction)mod_set_fork_policy, METH_O,
     set_fork_policy_doc},
    {"get_fork_policy", (PyCFunction)mod_get_fork_policy, METH_NOARGS,
     get_fork_policy_doc},
    {"purge", (PyCFunction)mod_purge, METH_NOARGS, purge_doc},
    {"purge_on_signals", (PyCFunction)mod_purge_on_signals, METH_NOARGS,
     purge_on_signals_doc},
    {"_stats", (PyCFunction)mod_stats, METH_NOARGS, stats_doc},
    {"_features", (PyCFunction)mod_features, METH_NOARGS, features_doc},
    {"harden", (PyCFunction)ms_py_harden, METH_NOARGS, ms_py_harden_doc},
    {"_chacha20poly1305_seal", (PyCFunction)(void (*)(void))ms_py_aead_seal,
     METH_FASTCALL,
     "_chacha20poly1305_seal(key, nonce, ad, plaintext, /)\n--\n\n"
     "Test hook: the core's ChaCha20-Poly1305; ciphertext + 16-byte tag."},
    {"_chacha20poly1305_open", (PyCFunction)(void (*)(void))ms_py_aead_open,
     METH_FASTCALL,
     "_chacha20poly1305_open(key, nonce, ad, data, /)\n--\n\n"
     "Test hook: the plaintext; ValueError if the tag does not verify."},
    {NULL, NULL, 0, NULL}
};

/* ---- per-interpreter state -------------------------------------------- */

/* Where the running interpreter's module is found by ms_state_current
 * (its per-interpreter dict, PyInterpreterState_GetDict). */
#define CURRENT_KEY "memsafe._memsafe"

#if PY_VERSION_HEX < 0x030B0000
/* PyType_GetModuleByDef (3.11+) for 3.10: the first heap type in the MRO
 * whose module was made from def, as CPython does it. */
static PyObject *module_by_def(PyTypeObject *type, PyModuleDef *def)
{
    PyObject *mro = type->tp_mro;
    Py_ssize_t n = mro != NULL ? PyTuple_GET_SIZE(mro) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            continue;
        }
        PyObject *m = ((PyHeapTypeObject *)t)->ht_module;
        if (m != NULL && PyModule_GetDef(m) == def) {
            return m;
        }
    }
    PyErr_Format(PyExc_TypeError,
                 "PyType_GetModuleByDef: No superclass of '%s' has the "
                 "given module",
                 type->tp_name);
    return NULL;
}
#define PyType_GetModuleByDef(type, def) module_by_def(type, def)
#endif

PyObject *ms_state_gone(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "memsafe's module in this interpreter was torn down "
                    "(the interpreter is shutting down)");
    return NULL;
}

ms_state *ms_state_of_type(PyTypeObject *type)
{
    PyObject *m = PyType_GetModuleByDef(type, &ms_module_def);
    if (m == NULL) {
        return NULL;
    }
    ms_state *st = (ms_state *)PyModule_GetState(m);
    if (st->secret_type == NULL) { /* cleared: module_clear */
        ms_state_gone();
        return NULL;
    }
    return st;
}

ms_state *ms_state_current(void)
{
    PyObject *d = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (d == NULL) {
        return NULL;
    }
    /* Borrowed: the dict keeps the module until the interpreter ends. */
    PyObject *m = PyDict_GetItemString(d, CURRENT_KEY);
    if (m == NULL || !PyModule_Check(m) ||
        PyModule_GetDef(m) != &ms_module_def) {
        return NULL;
    }
    ms_state *st = (ms_state *)PyModule_GetState(m);
    return st != NULL && st->secret_type != NULL ? st : NULL;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    ms_state *st = (ms_state *)PyModule_GetState(module);
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->secret_type);
    Py_VISIT(st->memsafe_type);
    Py_VISIT(st->secretbytes_type);
    Py_VISIT(st->secretstr_type);
    Py_VISIT(st->window_type);
    Py_VISIT(st->plaintext_type);
    Py_VISIT(st->lock_error);
    Py_VISIT(st->lock_warning);
    Py_VISIT(st->plaintext_warning);
    Py_VISIT(st->kw_wipe_source);
    Py_VISIT(st->kw_storage);
    Py_VISIT(st->kw_fork);
    Py_VISIT(st->str_release);
    Py_VISIT(st->with_target_fn);
    return 0;
}

static int module_clear(PyObject *module)
{
    ms_state *st = (ms_state *)PyModule_GetState(module);
    if (st == NULL) {
        return 0;
    }
    Py_CLEAR(st->secret_type);
    Py_CLEAR(st->memsafe_type);
    Py_CLEAR(st->secretbytes_type);
    Py_CLEAR(st->secretstr_type);
    Py_CLEAR(st->window_type);
    Py_CLEAR(st->plaintext_type);
    Py_CLEAR(st->lock_error);
    Py_CLEAR(st->lock_warning);
    Py_CLEAR(st->plaintext_warning);
    Py_CLEAR(st->kw_wipe_source);
    Py_CLEAR(st->kw_storage);
    Py_CLEAR(st->kw_fork);
    Py_CLEAR(st->str_release);
    Py_CLEAR(st->with_target_fn);
    return 0;
}

static void module_free(void *module)
{
    (void)module_clear((PyObject *)module);
}

/* ---- set-up ------------------------------------------------------------ */

/* The process-wide part, once per process (see os_ready); *did: whether
 * this call did it. */
static int process_init(int *did)
{
    *did = 0;
    for (;;) {
        intptr_t v = ms_atomic_load(&os_ready);
        if (v == 2) {
            return 0;
        }
        if (v == 0 && ms_atomic_cas(&os_ready, 0, 1)) {
            break;
        }
        Py_BEGIN_ALLOW_THREADS
        ms_mutex_yield();
        Py_END_ALLOW_THREADS
    }
    ms_oserr err = {0, 0, NULL};
    if (ms_os_init(&err) != 0) {
        ms_atomic_store(&os_ready, 0);
        ms_raise_oserr(&err, NULL);
        return -1;
    }
    ms_scrub_init();
    ms_config_init();
    ms_core_init();
    /* The last resort at exit (after Python's own atexit callbacks,
     * where the package purges too): for exit() called from C. */
    if (ms_os_at_exit(ms_registry_purge_at_exit, &err) != 0) {
        ms_atomic_store(&os_ready, 0);
        ms_raise_oserr(&err, NULL);
        return -1;
    }
    ms_atomic_store(&os_ready, 2);
    *did = 1;
    return 0;
}

/* Make module the one ms_state_current finds in this interpreter. */
static int set_current(PyObject *module)
{
    PyObject *d = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (d == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "memsafe: no per-interpreter dict");
        return -1;
    }
    return PyDict_SetItemString(d, CURRENT_KEY, module);
}

static int module_exec(PyObject *module)
{
    ms_state *st = (ms_state *)PyModule_GetState(module);
    int did;
    if (process_init(&did) < 0 || set_current(module) < 0) {
        return -1;
    }
    /* Only the main interpreter's exit purges every secret of the process,
     * and a subinterpreter's import applies the MEMSAFE_* variables only if
     * it is the process's first (memsafe/__init__.py): the settings are
     * process-wide. */
    PyObject *main = PyInterpreterState_Get() == PyInterpreterState_Main()
                         ? Py_True
                         : Py_False;
    if (PyModule_AddObjectRef(module, "_main_interpreter", main) < 0 ||
        PyModule_AddObjectRef(module, "_process_setup",
                              did ? Py_True : Py_False) < 0 ||
        ms_errors_init(module, st) < 0 || ms_window_init(module, st) < 0 ||
        ms_args_init(st) < 0 || ms_types_init(module, st) < 0 ||
        ms_plaintext_init(module, st) < 0 || ms_pydantic_init(module) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, (void *)module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* Each interpreter has its own types and objects (ms_state); the core
     * and the settings are process-wide, behind their own locks. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Safe without the GIL: every state change of a secret happens under
     * its own region lock (region.h), and the lock policy under a mutex. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}
};

struct PyModuleDef ms_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "memsafe._memsafe",
    .m_doc = "The C core of memsafe: guarded, locked, no-access memory for "
             "secrets.  Use the memsafe package, not this module.",
    .m_size = sizeof(ms_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__memsafe(void)
{
    return PyModuleDef_Init(&ms_module_def);
}
