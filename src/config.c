/*
 * config.c - process-wide settings (see config.h).
 */
#include "config.h"

#include <string.h>

static ms_mutex config_mutex;
static ms_lockmode lockmode = MS_LOCK_REQUIRED;
static ms_engine engine = MS_ENGINE_GUARDED;
static ms_secretmem_mode secretmem = MS_SECRETMEM_OFF;
static int fork_inherit;

static const char *const lock_names[] = {"strict", "warn", "off"};
static const char *const engine_names[] = {"guarded", "sealed"};
static const char *const secretmem_names[] = {"off", "prefer", "require"};
static const char *const fork_names[] = {"wipe", "inherit"};

void ms_config_init(void)
{
    ms_mutex_init(&config_mutex);
}

/* Index of name among n choices, or -1 with ValueError/TypeError set. */
static int choose(PyObject *name, const char *const *choices, int n,
                  const char *what, const char *listed)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str (%s), not '%.100s'",
                     what, listed, Py_TYPE(name)->tp_name);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (PyUnicode_CompareWithASCIIString(name, choices[i]) == 0) {
            return i;
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown %s %R: use %s", what, name,
                 listed);
    return -1;
}

ms_lockmode ms_config_lockmode(void)
{
    ms_mutex_lock(&config_mutex);
    ms_lockmode m = lockmode;
    ms_mutex_unlock(&config_mutex);
    return m;
}

const char *ms_config_lock_policy(void)
{
    return lock_names[ms_config_lockmode()];
}

int ms_config_set_lock_policy(PyObject *name)
{
    int i = choose(name, lock_names, 3, "lock policy",
                   "'strict', 'warn' or 'off'");
    if (i < 0) {
        return -1;
    }
    ms_mutex_lock(&config_mutex);
    lockmode = (ms_lockmode)i;
    ms_mutex_unlock(&config_mutex);
    return 0;
}

ms_engine ms_config_engine(void)
{
    ms_mutex_lock(&config_mutex);
    ms_engine e = engine;
    ms_mutex_unlock(&config_mutex);
    return e;
}

const char *ms_config_engine_name(ms_engine e)
{
    return engine_names[e];
}

int ms_config_set_engine(PyObject *name)
{
    int i = choose(name, engine_names, 2, "storage",
                   "'guarded' or 'sealed'");
    if (i < 0) {
        return -1;
    }
    ms_mutex_lock(&config_mutex);
    engine = (ms_engine)i;
    ms_mutex_unlock(&config_mutex);
    return 0;
}

int ms_config_engine_from(PyObject *arg, ms_engine *out)
{
    if (arg == NULL || arg == Py_None) {
        *out = ms_config_engine();
        return 0;
    }
    int i = choose(arg, engine_names, 2, "storage",
                   "'guarded' or 'sealed' (None: the default)");
    if (i < 0) {
        return -1;
    }
    *out = (ms_engine)i;
    return 0;
}

ms_secretmem_mode ms_config_secretmem(void)
{
    ms_mutex_lock(&config_mutex);
    ms_secretmem_mode m = secretmem;
    ms_mutex_unlock(&config_mutex);
    return m;
}

const char *ms_config_secretmem_name(void)
{
    return secretmem_names[ms_config_secretmem()];
}

int ms_config_set_secretmem(PyObject *name)
{
    int i = choose(name, secretmem_names, 3, "secretmem mode",
                   "'off', 'prefer' or 'require'");
    if (i < 0) {
        return -1;
    }
    ms_mutex_lock(&config_mutex);
    secretmem = (ms_secretmem_mode)i;
    ms_mutex_unlock(&config_mutex);
    return 0;
}

int ms_config_fork(void)
{
    ms_mutex_lock(&config_mutex);
    int f = fork_inherit;
    ms_mutex_unlock(&config_mutex);
    return f;
}

const char *ms_config_fork_name(int inherit)
{
    return fork_names[inherit ? 1 : 0];
}

int ms_config_set_fork(PyObject *name)
{
    int i = choose(name, fork_names, 2, "fork policy",
                   "'wipe' or 'inherit'");
    if (i < 0) {
        return -1;
    }
    ms_mutex_lock(&config_mutex);
    fork_inherit = i;
    ms_mutex_unlock(&config_mutex);
    return 0;
}

int ms_config_fork_from(PyObject *arg, int *inherit)
{
    if (arg == NULL || arg == Py_None) {
        *inherit = ms_config_fork();
        return 0;
    }
    int i = choose(arg, fork_names, 2, "fork policy",
                   "'wipe' or 'inherit' (None: the default)");
    if (i < 0) {
        return -1;
    }
    *inherit = i;
    return 0;
}

int ms_config_placement_from(PyObject *storage, PyObject *fork,
                             ms_engine *out)
{
    ms_engine e;
    if (ms_config_engine_from(storage, &e) < 0) {
        return -1;
    }
    int flags = 0;
    if (fork != NULL && fork != Py_None) {
        int inherit;
        if (ms_config_fork_from(fork, &inherit) < 0) {
            return -1;
        }
        flags = inherit ? MS_FORK_ASKED_INHERIT : MS_FORK_ASKED_WIPE;
    }
    *out = (ms_engine)((int)e | flags);
    return 0;
}

ms_allocopts ms_config_allocopts(void)
{
    ms_allocopts o;
    ms_mutex_lock(&config_mutex);
    o.lock = lockmode;
    o.secretmem = secretmem;
    o.inherit = fork_inherit;
    ms_mutex_unlock(&config_mutex);
    return o;
}
