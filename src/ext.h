/*
 * ext.h - what the parts of the extension module share.
 *
 * The module is split by job: _memsafe.c (module set-up and module-level
 * functions), errors.c (turning region/OS failures into Python exceptions,
 * the lock policy), secret.c (the secret types), window.c (read/write
 * windows), ingest.c (getting bytes into secret memory), text.c (UTF-8).
 */
#ifndef MEMSAFE_EXT_H
#define MEMSAFE_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core/platform.h"
#include "core/region.h"

/* Which public type a secret object is (subclasses included). */
typedef enum {
    MS_KIND_MEMSAFE = 0,
    MS_KIND_BYTES = 1,
    MS_KIND_STR = 2
} ms_kind;

typedef struct {
    PyObject_HEAD
    ms_region region;
    Py_ssize_t nchars;     /* SecretStr: number of code points */
    PyObject *weakreflist;
} SecretObject;

typedef enum {
    MS_WSTATE_NEW = 0,
    MS_WSTATE_OPEN = 1,
    MS_WSTATE_CLOSED = 2
} ms_wstate;

typedef struct {
    PyObject_HEAD
    SecretObject *secret;  /* strong reference */
    PyObject *view;        /* the memoryview handed to the with-block */
    ms_window kind;
    ms_wstate state;       /* guarded by secret->region.lock */
    Py_ssize_t exports;    /* guarded by secret->region.lock */
} WindowObject;

extern PyTypeObject ms_SecretType;    /* abstract base of the three */
extern PyTypeObject ms_MemSafeType;
extern PyTypeObject ms_SecretBytesType;
extern PyTypeObject ms_SecretStrType;
extern PyTypeObject ms_WindowType;

extern PyObject *ms_LockError;
extern PyObject *ms_str_release; /* interned "release" */
extern PyObject *ms_LockWarning;

/* errors.c */
int ms_errors_init(PyObject *module);
PyObject *ms_raise(ms_status st, const ms_oserr *err, const char *busy);
PyObject *ms_raise_oserr(const ms_oserr *err, PyObject *filename);
ms_lockmode ms_policy_lockmode(void);
int ms_policy_set(const char *name);
const char *ms_policy_name(void);
int ms_report_lock_failure(size_t len, const ms_lockresult *lr);

/* secret.c */
int ms_secret_check(PyObject *obj);
int ms_size_from(PyObject *obj, Py_ssize_t *size);
PyObject *ms_compare_digest(PyObject *a, PyObject *b);
PyObject *ms_getpass(PyTypeObject *type, PyObject *args, PyObject *kwds);
ms_kind ms_secret_kind(PyObject *obj);
SecretObject *ms_secret_alloc(PyTypeObject *type);
int ms_secret_begin_fill(SecretObject *s, size_t len, unsigned char **p);
int ms_secret_end_fill(SecretObject *s);
void ms_secret_abort_fill(SecretObject *s);
int ms_secret_view_open(SecretObject *s, const unsigned char **p, size_t *n);
void ms_secret_view_close(SecretObject *s);

/* window.c */
PyObject *ms_window_new(SecretObject *secret, ms_window kind);
PyObject *ms_window_run(SecretObject *secret, ms_window kind, PyObject *fn);

/* ingest.c */
PyObject *ms_ingest_random(PyTypeObject *type, PyObject *n);
PyObject *ms_ingest_fd(PyTypeObject *type, int fd, Py_ssize_t size);
PyObject *ms_ingest_file(PyTypeObject *type, PyObject *path);

/* compare (secret.c) */
int ms_equal_ct(const unsigned char *a, size_t na, const unsigned char *b,
                size_t nb);

/* text.c */
Py_ssize_t ms_utf8_size(PyObject *str, Py_ssize_t *bad_index);
void ms_utf8_encode(PyObject *str, unsigned char *out);
Py_ssize_t ms_utf8_count(const unsigned char *p, size_t n);
int ms_utf8_validate(const unsigned char *p, size_t n, size_t *bad_offset);
int ms_utf8_equal_ct(const unsigned char *p, size_t n, PyObject *str);

/* plaintext.c */
extern PyObject *ms_PlaintextWarning;
extern PyTypeObject ms_PlaintextType;
extern const char ms_plaintext_doc[];
int ms_plaintext_init(PyObject *module);
PyObject *ms_plaintext(PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs);
#define MS_PLAINTEXT_METHOD                                                   \
    {"plaintext", (PyCFunction)(void (*)(void))ms_plaintext, METH_FASTCALL,   \
     ms_plaintext_doc}

/* pydantic_hook.c: pydantic's two classmethods, and (ms_pydantic_init)
 * memsafe._memsafe._secretstr_from_utf8. */
PyObject *ms_pydantic_core_schema(PyObject *cls, PyObject *const *args,
                                  size_t nargsf, PyObject *kwnames);
PyObject *ms_pydantic_json_schema(PyObject *cls, PyObject *const *args,
                                  size_t nargsf, PyObject *kwnames);
extern const char ms_pydantic_core_schema_doc[];
extern const char ms_pydantic_json_schema_doc[];
int ms_pydantic_init(PyObject *module);
#define MS_PYDANTIC_METHODS                                                   \
    {"__get_pydantic_core_schema__",                                          \
     (PyCFunction)(void (*)(void))ms_pydantic_core_schema,                    \
     METH_FASTCALL | METH_KEYWORDS | METH_CLASS,                              \
     ms_pydantic_core_schema_doc},                                            \
        {"__get_pydantic_json_schema__",                                      \
         (PyCFunction)(void (*)(void))ms_pydantic_json_schema,                \
         METH_FASTCALL | METH_KEYWORDS | METH_CLASS,                          \
         ms_pydantic_json_schema_doc}

/* describe.c */
PyObject *ms_type_qualname_of(PyTypeObject *type);  /* "module.Qualname" */
PyObject *ms_type_qualname(PyObject *obj);          /* of type(obj) */
int ms_format_type(PyObject *obj, char *buf, size_t n);
extern PyGetSetDef ms_secretstr_getset[];           /* nbytes */

#endif /* MEMSAFE_EXT_H */
