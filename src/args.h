/*
 * args.h - keyword-only arguments of the hot constructors, without
 * PyArg_ParseTupleAndKeywords' per-call work (it turns each C keyword name
 * into a str and hashes it on every call: a tenth of a sealed create).
 *
 * ms_kwonly() handles the common case only - at most max_pos positional
 * arguments, and keywords that are all in names - and returns 0 for the
 * caller to fall back to PyArg_ParseTupleAndKeywords, which handles
 * everything else and writes the error messages.
 */
#ifndef MEMSAFE_ARGS_H
#define MEMSAFE_ARGS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MS_KWONLY_MAX 4

typedef struct {
    const char *const names[MS_KWONLY_MAX + 1]; /* NULL-terminated */
    PyObject *interned[MS_KWONLY_MAX];          /* made by ms_kwonly */
} ms_kwlist;

/* 1: handled - *pos is the positional argument or NULL, values[i] the
 * value of names[i] or NULL (borrowed); 0: fall back; -1: error. */
int ms_kwonly(ms_kwlist *list, PyObject *args, PyObject *kwds,
              Py_ssize_t max_pos, PyObject **pos, PyObject **values);

#endif /* MEMSAFE_ARGS_H */
