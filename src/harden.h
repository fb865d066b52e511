/*
 * harden.h - memsafe.harden() (see harden.c).
 */
#ifndef MEMSAFE_HARDEN_H
#define MEMSAFE_HARDEN_H

#include "ext.h"

extern const char ms_py_harden_doc[];
PyObject *ms_py_harden(PyObject *module, PyObject *unused);

/* 1 once harden() has installed the remote debugger veto (Python 3.14+). */
int ms_harden_remote_debug_veto(void);

#endif /* MEMSAFE_HARDEN_H */
