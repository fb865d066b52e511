/*
 * plaintext.h - plaintext(): a fresh bytes/str for consumers that take
 * nothing else, wiped in place afterwards (see plaintext.c).
 */
#ifndef MEMSAFE_PLAINTEXT_H
#define MEMSAFE_PLAINTEXT_H

#include "ext.h"

extern const char ms_plaintext_doc[];
/* PlaintextWarning and the Plaintext type of a new module (its state). */
int ms_plaintext_init(PyObject *module, ms_state *st);
PyObject *ms_plaintext(PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs);
#define MS_PLAINTEXT_METHOD                                                   \
    {"plaintext", (PyCFunction)(void (*)(void))ms_plaintext, METH_FASTCALL,   \
     ms_plaintext_doc}


#endif /* MEMSAFE_PLAINTEXT_H */
