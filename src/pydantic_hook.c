/*
 * pydantic_hook.c - pydantic v2 support without importing pydantic.
 *
 * The secret types get two classmethods, __get_pydantic_core_schema__ and
 * __get_pydantic_json_schema__, that pydantic looks for on a field's type.
 * They import memsafe._pydantic on first use and forward to it, so a
 * program that never builds a pydantic model never imports pydantic (nor
 * memsafe._pydantic).
 *
 * Also _secretstr_from_utf8(cls, data): a SecretStr made from UTF-8 bytes
 * held by a secret or a buffer, without a Python str of the text (used for
 * pydantic-settings' secrets_dir files).
 */
#include "pydantic_hook.h"

#include <string.h>

#include "config.h"
#include "errors.h"
#include "secret.h"
#include "text.h"

#define SMALL_ARGS 8

/* memsafe._pydantic.<name>(cls, *args, **kwargs) */
static PyObject *forward(const char *name, PyObject *cls,
                         PyObject *const *args, size_t nargsf,
                         PyObject *kwnames)
{
    PyObject *mod = PyImport_ImportModule("memsafe._pydantic");
    if (mod == NULL) {
        return NULL;
    }
    PyObject *fn = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    if (fn == NULL) {
        return NULL;
    }
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[SMALL_ARGS + 1];
    PyObject **stack = small;
    if (total + 1 > SMALL_ARGS + 1) {
        stack = PyMem_New(PyObject *, (size_t)total + 1);
        if (stack == NULL) {
            Py_DECREF(fn);
            return PyErr_NoMemory();
        }
    }
    stack[0] = cls;
    for (Py_ssize_t i = 0; i < total; i++) {
        stack[i + 1] = args[i];
    }
    PyObject *out = PyObject_Vectorcall(fn, stack, (size_t)nargs + 1, kwnames);
    if (stack != small) {
        PyMem_Free(stack);
    }
    Py_DECREF(fn);
    return out;
}

PyObject *ms_pydantic_core_schema(PyObject *cls, PyObject *const *args,
                                  size_t nargsf, PyObject *kwnames)
{
    return forward("get_core_schema", cls, args, nargsf, kwnames);
}

PyObject *ms_pydantic_json_schema(PyObject *cls, PyObject *const *args,
                                  size_t nargsf, PyObject *kwnames)
{
    return forward("get_json_schema", cls, args, nargsf, kwnames);
}

const char ms_pydantic_core_schema_doc[] =
    "__get_pydantic_core_schema__(source, handler)\n--\n\n"
    "pydantic v2: validate str, bytes-like objects, pydantic's own "
    "SecretStr/SecretBytes and memsafe secrets into this type; mask it when "
    "serialized to JSON.  Imports memsafe._pydantic on first use.";

const char ms_pydantic_json_schema_doc[] =
    "__get_pydantic_json_schema__(core_schema, handler)\n--\n\n"
    "pydantic v2: a write-only password string in the JSON schema.";

/* ---- SecretStr from UTF-8 in secret memory ----------------------------- */

static PyObject *secretstr_from_utf8(PyObject *m, PyObject *const *args,
                                     Py_ssize_t nargs)
{
    if (nargs != 2) {
        return PyErr_Format(PyExc_TypeError,
                            "_secretstr_from_utf8() takes exactly 2 "
                            "arguments (%zd given)",
                            nargs);
    }
    PyObject *cls = args[0];
    PyObject *data = args[1];
    ms_state *st = (ms_state *)PyModule_GetState(m);
    if (!PyType_Check(cls) ||
        !PyType_IsSubtype((PyTypeObject *)cls, st->secretstr_type)) {
        PyErr_SetString(PyExc_TypeError,
                        "_secretstr_from_utf8() needs SecretStr or a "
                        "subclass");
        return NULL;
    }
    SecretObject *src = NULL;
    Py_buffer buf;
    const unsigned char *p;
    size_t n;
    if (ms_secret_check(data)) {
        src = (SecretObject *)data;
        if (ms_secret_view_open(src, &p, &n) < 0) {
            return NULL;
        }
    } else if (PyUnicode_Check(data) || !PyObject_CheckBuffer(data)) {
        PyObject *name = ms_type_name(data);
        if (name != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "_secretstr_from_utf8() takes a secret or a "
                         "bytes-like object, not '%U'",
                         name);
            Py_DECREF(name);
        }
        return NULL;
    } else {
        if (PyObject_GetBuffer(data, &buf, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        p = (const unsigned char *)buf.buf;
        n = (size_t)buf.len;
    }
    PyObject *out = NULL;
    size_t bad = 0;
    if (ms_utf8_validate(p, n, &bad) < 0) {
        PyErr_Format(PyExc_ValueError,
                     "the data is not valid UTF-8 (at byte offset %zu)", bad);
    } else {
        SecretObject *s =
            ms_secret_alloc((PyTypeObject *)cls, src != NULL
                                                     ? src->store.engine
                                                     : ms_config_engine());
        unsigned char *dst;
        if (s != NULL && src != NULL) {
            s->fork = src->store.inherit; /* as a copy: the source's policy */
        }
        if (s != NULL && ms_secret_begin_fill(s, n, &dst) == 0) {
            if (n > 0) {
                memcpy(dst, p, n);
            }
            s->nchars = ms_utf8_count(p, n);
            if (ms_secret_end_fill(s) == 0) {
                out = (PyObject *)Py_NewRef(s);
            }
        }
        Py_XDECREF(s);
    }
    if (src == NULL) {
        PyBuffer_Release(&buf);
    } else if (ms_secret_view_close(src) < 0) {
        Py_CLEAR(out);
    }
    return out;
}

static PyMethodDef module_functions[] = {
    {"_secretstr_from_utf8", (PyCFunction)(void (*)(void))secretstr_from_utf8,
     METH_FASTCALL,
     "_secretstr_from_utf8(cls, data, /)\n--\n\nA new cls (SecretStr or a "
     "subclass) holding a copy of UTF-8 data read from a secret or a "
     "bytes-like object, without a Python str of the text.  ValueError if "
     "the data is not valid UTF-8 (the message gives only the offset)."},
    {NULL, NULL, 0, NULL}
};

int ms_pydantic_init(PyObject *module)
{
    return PyModule_AddFunctions(module, module_functions);
}
