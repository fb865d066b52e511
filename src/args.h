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

#include "ext.h"

/* The keyword names, interned at module import (ms_args_init) in the
 * module's state, before any thread can call a constructor; read-only
 * afterwards.  Per interpreter: objects are never shared between them. */
int ms_args_init(ms_state *st);

/* names: n interned keyword names.  1: handled - *pos is the positional
 * argument or NULL, values[i] the value of names[i] or NULL (borrowed);
 * 0: fall back. */
int ms_kwonly(PyObject *const *names, int n, PyObject *args, PyObject *kwds,
              Py_ssize_t max_pos, PyObject **pos, PyObject **values);

#endif /* MEMSAFE_ARGS_H */
