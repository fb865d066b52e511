/*
 * errors.h - core status codes and OS errors as Python exceptions.
 */
#ifndef MEMSAFE_ERRORS_H
#define MEMSAFE_ERRORS_H

#include "ext.h"

/* LockError and LockWarning of a new module (in its state). */
int ms_errors_init(PyObject *module, ms_state *st);

/* Raise the exception for st (busy: the BufferError message for
 * MS_E_BUSY, or NULL for a generic one); always returns NULL. */
PyObject *ms_raise(ms_status st, const ms_oserr *err, const char *busy);
PyObject *ms_raise_oserr(const ms_oserr *err, PyObject *filename);

/* Under the 'warn' policy: one LockWarning for an allocation that could
 * not be locked.  -1 if the warning was turned into an exception. */
int ms_report_lock_failure(size_t len, const ms_lockresult *lr);

/* Take the pending exception (normalized, traceback attached) and put it
 * back: for code that must call Python while an error is pending. */
PyObject *ms_err_take(void);
void ms_err_put(PyObject *exc);

/* "module.QualName" of obj's type, for messages (a new str, or NULL). */
PyObject *ms_type_name(PyObject *obj);

#endif /* MEMSAFE_ERRORS_H */
