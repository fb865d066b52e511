/*
 * ingest.h - getting secret bytes into secret memory without a Python
 * object ever holding them: the classmethods SecretBytes.random, from_fd,
 * from_file and SecretStr.getpass.
 */
#ifndef MEMSAFE_INGEST_H
#define MEMSAFE_INGEST_H

#include "ext.h"

/* Defaults of max_size=: no real key file or password comes near them,
 * while /dev/zero or a runaway pipe cannot eat RAM. */
#define MS_MAX_FILE_DEFAULT ((Py_ssize_t)1 << 20)    /* 1 MiB */
#define MS_MAX_PASSWORD_DEFAULT ((Py_ssize_t)65536) /* 64 KiB */

PyObject *ms_ingest_random(PyTypeObject *type, PyObject *args,
                           PyObject *kwds);
PyObject *ms_ingest_from_fd(PyTypeObject *type, PyObject *args,
                            PyObject *kwds);
PyObject *ms_ingest_from_file(PyTypeObject *type, PyObject *args,
                              PyObject *kwds);
PyObject *ms_ingest_getpass(PyTypeObject *type, PyObject *args,
                            PyObject *kwds);

#endif /* MEMSAFE_INGEST_H */
