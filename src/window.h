/*
 * window.h - read and write windows: the only way to reach a secret's
 * bytes from Python, and the only exporters of buffers.
 */
#ifndef MEMSAFE_WINDOW_H
#define MEMSAFE_WINDOW_H

#include "ext.h"

/* Once, at module set-up. */
int ms_window_init(void);

PyObject *ms_window_new(SecretObject *secret, ms_window kind);
/* Open a window, call fn(view), close it; fn's result or NULL. */
PyObject *ms_window_run(SecretObject *secret, ms_window kind, PyObject *fn);

/* secret.read(fn=None) and memsafe.write(fn=None). */
PyObject *ms_secret_read(SecretObject *s, PyObject *const *args,
                         Py_ssize_t nargs);
PyObject *ms_memsafe_write(SecretObject *s, PyObject *const *args,
                           Py_ssize_t nargs);

#endif /* MEMSAFE_WINDOW_H */
