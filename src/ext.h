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

typedef struct {
    PyObject_HEAD
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

extern PyTypeObject ms_SecretType;    /* abstract base of the three */
extern PyTypeObject ms_MemSafeType;
extern PyTypeObject ms_SecretBytesType;
extern PyTypeObject ms_SecretStrType;
extern PyTypeObject ms_WindowType;

#endif /* MEMSAFE_EXT_H */
