/*
 * args.c - keyword-only arguments of the hot constructors (see args.h).
 */
#include "args.h"

int ms_args_init(ms_state *st)
{
    st->kw_wipe_source = PyUnicode_InternFromString("wipe_source");
    st->kw_storage = PyUnicode_InternFromString("storage");
    st->kw_fork = PyUnicode_InternFromString("fork");
    return st->kw_wipe_source != NULL && st->kw_storage != NULL &&
                   st->kw_fork != NULL
               ? 0
               : -1;
}

/* The index of key among names, or -1 (an unknown or non-str keyword).
 * Keywords from a call site are interned, so identity nearly always
 * decides; the comparison runs no Python code. */
static int find_name(PyObject *const *names, int n, PyObject *key)
{
    for (int i = 0; i < n; i++) {
        if (key == names[i]) {
            return i;
        }
    }
    if (!PyUnicode_Check(key)) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (PyUnicode_Compare(key, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int ms_kwonly(PyObject *const *names, int n, PyObject *args, PyObject *kwds,
              Py_ssize_t max_pos, PyObject **pos, PyObject **values)
{
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) > max_pos ||
        (kwds != NULL && !PyDict_Check(kwds))) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        values[i] = NULL;
    }
    *pos = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : NULL;
    if (kwds == NULL) {
        return 1;
    }
    Py_ssize_t at = 0;
    PyObject *key, *value;
    while (PyDict_Next(kwds, &at, &key, &value)) {
        int i = find_name(names, n, key);
        if (i < 0) {
            return 0;
        }
        values[i] = value;
    }
    return 1;
}
