/*
 * writer.h - SecretBytes.from_writer and SecretStr.from_writer: a secret
 * made by a function that writes it straight into secret memory (a KDF's
 * derive_into, an AEAD's decrypt_into, a readinto).
 */
#ifndef MEMSAFE_WRITER_H
#define MEMSAFE_WRITER_H

#include "ext.h"

PyObject *ms_writer_from_writer(PyTypeObject *type, PyObject *args,
                                PyObject *kwds);

#define MS_FROM_WRITER_DOC                                                    \
    "from_writer($type, size, fn, *, storage=None)\n--\n\n"                   \
    "Make a secret of size bytes by calling fn(view) once: view is a "        \
    "writable memoryview (format 'B', len == size) of zero bytes in fresh "   \
    "secret memory, and what fn writes into it becomes the immutable "        \
    "secret, never passing through a Python object.  fn returns None or "     \
    "the number of bytes it wrote, which must be size (the readinto / "       \
    "derive_into / decrypt_into convention).  The view is revoked when fn "   \
    "returns; a view or slice kept past that is a BufferError.  If fn "       \
    "raises, the memory is wiped and released and the exception "             \
    "propagates.  SecretStr.from_writer also requires valid UTF-8 "           \
    "(ValueError otherwise); size counts bytes."

#endif /* MEMSAFE_WRITER_H */
