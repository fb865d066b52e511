/*
 * ext.h - the objects the parts of the extension module share.
 *
 * The module is a thin Python binding over the Python-free core in core/
 * (store.h is its interface).  It is split by job, each part with its own
 * header, and the includes only go down:
 *
 *   _memsafe.c  module set-up, module-level functions
 *   types.c     the type objects and their method tables
 *   window.c    read/write windows and their views      (window.h)
 *   ingest.c    getting bytes into secret memory        (ingest.h)
 *   secret.c    the secret objects' behaviour           (secret.h)
 *   text.c      UTF-8 without the codec machinery       (text.h)
 *   config.c    process-wide settings                   (config.h)
 *   errors.c    core status -> Python exception         (errors.h)
 *
 * Subinterpreters: every interpreter that imports the module gets its own
 * module object, with its own state (ms_state: the heap types, exception
 * classes and cached strings of that interpreter); no Python object is
 * shared between interpreters.  The core's store, registry and keys are
 * process-wide, set up once per process, whichever interpreter is first.
 */
#ifndef MEMSAFE_EXT_H
#define MEMSAFE_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core/platform.h"
#include "core/store.h"

/* Which public type a secret object is (subclasses included). */
typedef enum {
    MS_KIND_MEMSAFE = 0,
    MS_KIND_BYTES = 1,
    MS_KIND_STR = 2
} ms_kind;

/* The per-interpreter state of the module (PyModule_GetState). */
typedef struct {
    PyTypeObject *secret_type;    /* abstract base of the three */
    PyTypeObject *memsafe_type;
    PyTypeObject *secretbytes_type;
    PyTypeObject *secretstr_type;
    PyTypeObject *window_type;
    PyTypeObject *plaintext_type;
    PyObject *lock_error;
    PyObject *lock_warning;
    PyObject *plaintext_warning;
    PyObject *kw_wipe_source;     /* interned keyword names (args.h) */
    PyObject *kw_storage;
    PyObject *kw_fork;
    PyObject *str_release;        /* interned "release" (window.c) */
    PyObject *with_target_fn;     /* memsafe._frames.with_target (plaintext.c) */
} ms_state;

typedef struct {
    PyObject_HEAD
    ms_state *state;       /* of its type's module: lives as long as it */
    ms_kind kind;          /* which of the three its type derives from */
    ms_store store;
    Py_ssize_t nchars;     /* SecretStr: number of code points */
    PyObject *weakreflist;
    int fork;              /* fork= asked: -1 the default, 0 wipe, 1 inherit */
} SecretObject;

typedef enum {
    MS_WSTATE_NEW = 0,
    MS_WSTATE_OPEN = 1,
    MS_WSTATE_CLOSED = 2
} ms_wstate;

typedef struct {
    PyObject_HEAD
    SecretObject *secret;  /* strong reference */
    PyObject *view_ref;    /* weak reference to the with-block's view */
    ms_window kind;
    ms_wstate state;       /* guarded by the secret's store lock */
    Py_ssize_t exports;    /* guarded by the secret's store lock */
} WindowObject;

extern struct PyModuleDef ms_module_def;

/* The state of the module that defined type (or a base of it): NULL with
 * TypeError if it is not one of memsafe's types, RuntimeError if that
 * module was already torn down (interpreter shutdown). */
ms_state *ms_state_of_type(PyTypeObject *type);
/* The state of the module imported last in the running interpreter (for
 * rare paths with no object at hand: raising LockError, warning), or
 * NULL without an exception while the module is not set up there. */
ms_state *ms_state_current(void);

/* types.c: the secret types of a new module (in its state). */
int ms_types_init(PyObject *module, ms_state *st);

/* RuntimeError for a state whose module was torn down (NULL). */
PyObject *ms_state_gone(void);

#endif /* MEMSAFE_EXT_H */
