/*
 * describe.c - how the extension names things: qualified type names for
 * error messages, and SecretStr.nbytes.
 *
 * Messages that say which type was given use the type's module and
 * qualified name ("pydantic.types.SecretStr", "numpy.int64"), not
 * tp_name's last part: several libraries have a class called SecretStr.
 */
#include "ext.h"

#include <string.h>

PyObject *ms_type_qualname_of(PyTypeObject *type)
{
    PyObject *qual = PyObject_GetAttrString((PyObject *)type, "__qualname__");
    PyObject *mod = qual == NULL ? NULL
                                 : PyObject_GetAttrString((PyObject *)type,
                                                          "__module__");
    PyObject *out = NULL;
    if (qual != NULL && mod != NULL && PyUnicode_Check(qual)) {
        if (PyUnicode_Check(mod) &&
            PyUnicode_CompareWithASCIIString(mod, "builtins") != 0) {
            out = PyUnicode_FromFormat("%U.%U", mod, qual);
        } else {
            out = Py_NewRef(qual);
        }
    }
    Py_XDECREF(qual);
    Py_XDECREF(mod);
    if (out == NULL) {
        /* A type whose __qualname__ or __module__ misbehaves. */
        PyErr_Clear();
        out = PyUnicode_FromString(type->tp_name);
    }
    return out;
}

PyObject *ms_type_qualname(PyObject *obj)
{
    return ms_type_qualname_of(Py_TYPE(obj));
}

int ms_format_type(PyObject *obj, char *buf, size_t n)
{
    if (n == 0) {
        return -1;
    }
    PyObject *name = ms_type_qualname(obj);
    const char *utf8 = name == NULL ? NULL : PyUnicode_AsUTF8(name);
    if (utf8 == NULL) {
        PyErr_Clear();
        utf8 = Py_TYPE(obj)->tp_name;
    }
    PyOS_snprintf(buf, n, "%s", utf8);
    Py_XDECREF(name);
    return 0;
}

/* ---- SecretStr.nbytes -------------------------------------------------- */

static PyObject *secretstr_get_nbytes(SecretObject *s, void *Py_UNUSED(c))
{
    ms_region_lock(&s->region);
    ms_status st = ms_region_usable(&s->region);
    size_t n = ms_region_len(&s->region);
    ms_region_unlock(&s->region);
    if (st != MS_OK) {
        return ms_raise(st, NULL, NULL);
    }
    return PyLong_FromSize_t(n);
}

PyGetSetDef ms_secretstr_getset[] = {
    {"nbytes", (getter)secretstr_get_nbytes, NULL,
     "Length of the text in UTF-8 bytes: the length of a read window's "
     "view (len() counts characters).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}
};
