/*
 * secret.h - the secret objects: creating and filling them, internal read
 * windows for C code, sizes, and the behaviour behind their methods (the
 * method tables are in types.c).
 */
#ifndef MEMSAFE_SECRET_H
#define MEMSAFE_SECRET_H

#include "ext.h"

int ms_secret_check(PyObject *obj);
ms_kind ms_secret_kind(PyObject *obj);
/* 1 if type derives from its interpreter's SecretStr. */
int ms_type_is_text(PyTypeObject *type);

/* A new, empty secret object of type (refused for a class mixing two of
 * the three kinds) that will be stored by engine. */
SecretObject *ms_secret_alloc(PyTypeObject *type, ms_engine engine);
/* The same with type's module state already at hand (NULL: the error of
 * ms_state_of_type is pending). */
SecretObject *ms_secret_alloc_in(ms_state *st, PyTypeObject *type,
                                 ms_engine engine);

/* Filling a new secret: begin_fill allocates len zero bytes with a write
 * window open and gives their address; end_fill closes the window;
 * abort_fill wipes and releases (keeping any pending exception).  A lock
 * failure under 'warn' is reported by begin_fill (and may raise). */
int ms_secret_begin_fill(SecretObject *s, size_t len, unsigned char **p);
int ms_secret_end_fill(SecretObject *s);
void ms_secret_abort_fill(SecretObject *s);

/* An internal read window: C code reads the secret, nobody else gets a
 * buffer from it.  view_close reports what went wrong on the way out
 * (e.g. the secret was purged meanwhile): -1 with an exception set. */
int ms_secret_view_open(SecretObject *s, const unsigned char **p, size_t *n);
int ms_secret_view_close(SecretObject *s);

/* Raise for an unusable secret; 0 if it can be used. */
int ms_secret_check_usable(SecretObject *s);

/* Sizes: anything operator.index accepts (numpy integers included) and
 * ctypes integers, but not bool.  ms_is_size tells whether obj is one;
 * ms_size_from converts it (ValueError if negative, MemoryError if beyond
 * the address space, TypeError if not an integer). */
int ms_is_size(PyObject *obj);
int ms_size_from(PyObject *obj, const char *what, Py_ssize_t *size);

/* A secret built from a str (UTF-8 encoded straight into its memory). */
int ms_secret_fill_text(SecretObject *s, PyObject *text);

/* ---- behaviour behind the methods (types.c) ---------------------------- */

PyObject *ms_memsafe_new(PyTypeObject *type, PyObject *args, PyObject *kwds);
PyObject *ms_secretbytes_new(PyTypeObject *type, PyObject *args,
                             PyObject *kwds);
PyObject *ms_secretstr_new(PyTypeObject *type, PyObject *args,
                           PyObject *kwds);
void ms_secret_dealloc(SecretObject *s);
PyObject *ms_secret_repr(SecretObject *s);
Py_ssize_t ms_secret_length(SecretObject *s);
PyObject *ms_secret_richcompare(PyObject *a, PyObject *b, int op);
int ms_secret_getbuffer(SecretObject *s, Py_buffer *view, int flags);

PyObject *ms_secret_close(SecretObject *s, PyObject *unused);
PyObject *ms_secret_enter(SecretObject *s, PyObject *unused);
PyObject *ms_secret_exit(SecretObject *s, PyObject *const *args,
                         Py_ssize_t nargs);
PyObject *ms_secret_copy(SecretObject *s, PyObject *unused);
PyObject *ms_secret_deepcopy(SecretObject *s, PyObject *memo);
PyObject *ms_secret_reduce(PyObject *s, PyObject *unused);
PyObject *ms_secret_region_info(SecretObject *s, PyObject *unused);
PyObject *ms_memsafe_extend(SecretObject *s, PyObject *data);
PyObject *ms_secretstr_append(SecretObject *s, PyObject *text);
PyObject *ms_secretbytes_reveal(SecretObject *s, PyObject *unused);
PyObject *ms_secretstr_reveal(SecretObject *s, PyObject *unused);

PyObject *ms_secret_get_closed(SecretObject *s, void *closure);
PyObject *ms_secret_get_locked(SecretObject *s, void *closure);
PyObject *ms_secret_get_storage(SecretObject *s, void *closure);
PyObject *ms_secret_get_fork(SecretObject *s, void *closure);
PyObject *ms_secret_get_secretmem(SecretObject *s, void *closure);
PyObject *ms_secretstr_get_nbytes(SecretObject *s, void *closure);

/* memsafe.compare_digest(a, b). */
PyObject *ms_compare_digest(PyObject *a, PyObject *b);

#endif /* MEMSAFE_SECRET_H */
