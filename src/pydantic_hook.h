/*
 * pydantic_hook.h - pydantic v2 support for the secret types (see
 * pydantic_hook.c and memsafe/_pydantic.py).
 */
#ifndef MEMSAFE_PYDANTIC_HOOK_H
#define MEMSAFE_PYDANTIC_HOOK_H

#include "ext.h"

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


#endif /* MEMSAFE_PYDANTIC_HOOK_H */
