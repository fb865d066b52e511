/*
 * window.h - read and write windows: the only way to reach a secret's
 * bytes from Python, and the only exporters of buffers.
 */
#ifndef MEMSAFE_WINDOW_H
#define MEMSAFE_WINDOW_H

#include "ext.h"

/* At module set-up: the Window type (and what window.c caches) of a new
 * module, in its state. */
int ms_window_init(PyObject *module, ms_state *st);

PyObject *ms_window_new(SecretObject *secret, ms_window kind);
/* Open a window, call fn(view), close it; fn's result or NULL. */
PyObject *ms_window_run(SecretObject *secret, ms_window kind, PyObject *fn);

/* secret.read(fn=None) and memsafe.write(fn=None). */
PyObject *ms_secret_read(SecretObject *s, PyObject *const *args,
                         Py_ssize_t nargs);
PyObject *ms_memsafe_write(SecretObject *s, PyObject *const *args,
                           Py_ssize_t nargs);

/* from_writer: call fn(view) on the write window ms_secret_begin_fill
 * left open on secret (size bytes), then close it.  0: the secret holds
 * what fn wrote, at rest (text: valid UTF-8, its characters counted).
 * -1 with an exception (fn's own, unchanged, if it raised): the content
 * was wiped and the memory released, or, while a view leaked from fn is
 * alive, is released with the secret when the last one goes. */
int ms_window_fill(SecretObject *secret, size_t size, PyObject *fn, int text);

#endif /* MEMSAFE_WINDOW_H */
