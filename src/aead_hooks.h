/*
 * aead_hooks.h - test hooks over the core's ChaCha20-Poly1305 (see
 * aead_hooks.c): memsafe._memsafe._chacha20poly1305_seal / _open.
 */
#ifndef MEMSAFE_AEAD_HOOKS_H
#define MEMSAFE_AEAD_HOOKS_H

#include "ext.h"

PyObject *ms_py_aead_seal(PyObject *m, PyObject *const *a, Py_ssize_t n);
PyObject *ms_py_aead_open(PyObject *m, PyObject *const *a, Py_ssize_t n);

#endif /* MEMSAFE_AEAD_HOOKS_H */
