/*
 * harden.h - memsafe.harden() (see harden.c).
 */
#ifndef MEMSAFE_HARDEN_H
#define MEMSAFE_HARDEN_H

#include "ext.h"

extern const char ms_py_harden_doc[];
PyObject *ms_py_harden(PyObject *module, PyObject *unused);

#endif /* MEMSAFE_HARDEN_H */
