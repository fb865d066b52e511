/*
 * args.c - keyword-only arguments of the hot constructors (see args.h).
 */
#include "args.h"

/* The names as interned str, made once (under the GIL, or a module-level
 * race that at worst interns a name twice: the same object). */
static int intern_names(ms_kwlist *list)
{
    for (int i = 0; list->names[i] != NULL; i++) {
        if (list->interned[i] == NULL) {
            PyObject *s = PyUnicode_InternFromString(list->names[i]);
            if (s == NULL) {
                return -1;
            }
            list->interned[i] = s;
        }
    }
    return 0;
}

/* The index of key in list, or -1 (an unknown or non-str keyword). */
static int find_name(const ms_kwlist *list, PyObject *key)
{
    for (int i = 0; list->names[i] != NULL; i++) {
        if (key == list->interned[i]) {
            return i;
        }
    }
    if (!PyUnicode_Check(key)) {
        return -1;
    }
    for (int i = 0; list->names[i] != NULL; i++) {
        if (PyUnicode_CompareWithASCIIString(key, list->names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int ms_kwonly(ms_kwlist *list, PyObject *args, PyObject *kwds,
              Py_ssize_t max_pos, PyObject **pos, PyObject **values)
{
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) > max_pos ||
        (kwds != NULL && !PyDict_Check(kwds))) {
        return 0;
    }
    if (intern_names(list) < 0) {
        return -1;
    }
    for (int i = 0; list->names[i] != NULL; i++) {
        values[i] = NULL;
    }
    *pos = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : NULL;
    if (kwds == NULL) {
        return 1;
    }
    Py_ssize_t at = 0;
    PyObject *key, *value;
    while (PyDict_Next(kwds, &at, &key, &value)) {
        int i = find_name(list, key);
        if (i < 0) {
            return 0;
        }
        values[i] = value;
    }
    return 1;
}
