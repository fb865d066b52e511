/*
 * types.c - the type objects of the three secret types and their method
 * tables.  The behaviour is in secret.c (the objects), window.c (read and
 * write) and ingest.c (the classmethods that read input).
 */
#include "ext.h"

#include <structmember.h>

#include "ingest.h"
#include "plaintext.h"
#include "pydantic_hook.h"
#include "secret.h"
#include "window.h"
#include "writer.h"

#define READ_DOC                                                              \
    "read($self, fn=None, /)\n--\n\n"                                         \
    "Open a read window.  Without an argument, return a Window whose "        \
    "`with` block receives a read-only memoryview of the secret; with a "     \
    "callable, call it with that view and return its result.  The "           \
    "plaintext is reachable only while the window is open."

#define COMMON_METHODS                                                        \
    {"read", (PyCFunction)(void (*)(void))ms_secret_read, METH_FASTCALL,      \
     READ_DOC},                                                               \
        {"close", (PyCFunction)ms_secret_close, METH_NOARGS,                  \
         "close($self, /)\n--\n\nWipe the secret and release its memory.  "   \
         "Idempotent.  Raises BufferError while a window is open on it or "   \
         "views from one are alive."},                                        \
        {"__enter__", (PyCFunction)ms_secret_enter, METH_NOARGS,              \
         "__enter__($self, /)\n--\n\nReturn the secret itself."},             \
        {"__exit__", (PyCFunction)(void (*)(void))ms_secret_exit,             \
         METH_FASTCALL,                                                       \
         "__exit__($self, exc_type, exc, tb, /)\n--\n\nClose the secret."},   \
        {"__copy__", (PyCFunction)ms_secret_copy, METH_NOARGS,                \
         "__copy__($self, /)\n--\n\nAn independent copy in new secure "       \
         "memory (same storage engine)."},                                    \
        {"__deepcopy__", (PyCFunction)ms_secret_deepcopy, METH_O,             \
         "__deepcopy__($self, memo, /)\n--\n\nAn independent copy in new "    \
         "secure memory (same storage engine)."},                             \
        {"__reduce__", (PyCFunction)ms_secret_reduce, METH_NOARGS,            \
         "__reduce__($self, /)\n--\n\nSecrets cannot be pickled."},           \
        {"__reduce_ex__", (PyCFunction)ms_secret_reduce, METH_O,              \
         "__reduce_ex__($self, protocol, /)\n--\n\nSecrets cannot be "        \
         "pickled."},                                                         \
        {"_region_info", (PyCFunction)ms_secret_region_info, METH_NOARGS,     \
         "_region_info($self, /)\n--\n\nWhere the secret's memory is "        \
         "(addresses and sizes, for tests and the self-check)."},             \
        MS_PLAINTEXT_METHOD, MS_PYDANTIC_METHODS

static PyMethodDef base_methods[] = {
    COMMON_METHODS,
    {NULL, NULL, 0, NULL}
};

static PyMethodDef memsafe_methods[] = {
    {"write", (PyCFunction)(void (*)(void))ms_memsafe_write, METH_FASTCALL,
     "write($self, fn=None, /)\n--\n\nOpen a write window: like read(), but "
     "the view is writable.  A write window is exclusive: it cannot open "
     "while any other window is open or views are alive."},
    {"extend", (PyCFunction)ms_memsafe_extend, METH_O,
     "extend($self, data, /)\n--\n\nAppend a bytes-like object or another "
     "secret.  The secret moves to new secure memory; the old memory is "
     "wiped.  A call that fails changes nothing."},
    {NULL, NULL, 0, NULL}
};

/* from_fd of SecretBytes and SecretStr: one C function, two docstrings. */
#define MS_FROM_FD_METHOD(what)                                            \
    {"from_fd", (PyCFunction)(void (*)(void))ms_ingest_from_fd,              \
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,                              \
     "from_fd($type, fd, size=None, *, max_size=1048576, storage=None, "     \
     "strip_newline=False)\n--\n\n"                                          \
     "Read " what " from a file descriptor straight into secret memory: "   \
     "until end of file, or exactly size bytes (EOFError if the file ends "  \
     "first).  More than max_size bytes (None: no limit) is a ValueError, "  \
     "and the partial secret is wiped.  strip_newline=True drops one line "  \
     "end (``\"\\n\"`` or ``\"\\r\\n\"``) at the very end of the input, "    \
     "wiping it in secret memory (for ``printf 'key\\n' | app``); not "   \
     "with size=."}

static PyMethodDef secretbytes_methods[] = {
    {"from_writer", (PyCFunction)(void (*)(void))ms_writer_from_writer,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, MS_FROM_WRITER_DOC},
    {"reveal", (PyCFunction)ms_secretbytes_reveal, METH_NOARGS,
     "reveal($self, /)\n--\n\nReturn a copy of the secret as bytes.  The "
     "copy lives on the ordinary Python heap and cannot be wiped: avoid it "
     "where a window's view will do."},
    {"random", (PyCFunction)(void (*)(void))ms_ingest_random,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "random($type, n, /, *, storage=None)\n--\n\nn bytes from the OS CSPRNG, "
     "written straight into secret memory."},
    MS_FROM_FD_METHOD("bytes"),
    {"from_file", (PyCFunction)(void (*)(void))ms_ingest_from_file,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "from_file($type, path, /, *, max_size=1048576, storage=None, "
     "strip_newline=False)\n--\n\n"
     "Read a whole file straight into secret memory.  A file larger than "
     "max_size bytes (None: no limit) is a ValueError, and the partial "
     "secret is wiped.  strip_newline=True drops one line end (``\"\\n\"`` "
     "or ``\"\\r\\n\"``) at the very end of the file, wiping it in secret memory "
     "(a key file written by echo)."},
    {NULL, NULL, 0, NULL}
};

static PyMethodDef secretstr_methods[] = {
    {"from_writer", (PyCFunction)(void (*)(void))ms_writer_from_writer,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, MS_FROM_WRITER_DOC},
    {"reveal", (PyCFunction)ms_secretstr_reveal, METH_NOARGS,
     "reveal($self, /)\n--\n\nReturn a copy of the text as str.  The copy "
     "lives on the ordinary Python heap and cannot be wiped."},
    {"append", (PyCFunction)ms_secretstr_append, METH_O,
     "append($self, text, /)\n--\n\nAppend a str or a SecretStr.  The text "
     "moves to new secure memory; the old memory is wiped.  A call that "
     "fails changes nothing."},
    {"getpass", (PyCFunction)(void (*)(void))ms_ingest_getpass,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "getpass($type, prompt='Password: ', *, max_size=65536, storage=None)\n--\n\n"
     "Read a line from the terminal with echo off, straight into secret "
     "memory.  Without a terminal the line is read through sys.stdin (with "
     "getpass.GetPassWarning), so input already buffered there is not "
     "skipped.  A line longer than max_size bytes is a ValueError."},
    MS_FROM_FD_METHOD("UTF-8 text (ValueError naming the offset of a bad "
                      "byte sequence, never the bytes)"),
    {NULL, NULL, 0, NULL}
};

#define COMMON_GETSET                                                         \
    {"closed", (getter)ms_secret_get_closed, NULL,                            \
     "True once the secret is closed (or purged, or was inherited through "   \
     "fork).",                                                                \
     NULL},                                                                   \
        {"locked", (getter)ms_secret_get_locked, NULL,                        \
         "True when the secret's memory is really locked in RAM.", NULL},     \
        {"storage", (getter)ms_secret_get_storage, NULL,                      \
         "The storage engine: 'guarded' or 'sealed'.", NULL},                 \
        {"fork", (getter)ms_secret_get_fork, NULL,                            \
         "The fork policy: 'wipe' (a fork child gets nothing) or 'inherit' "  \
         "(a fork child gets its own protected copy).", NULL},                \
        {"secretmem", (getter)ms_secret_get_secretmem, NULL,                  \
         "True when the secret's memory (and, for sealed secrets, the "       \
         "process key's) is memfd_secret memory.",                            \
         NULL}

static PyGetSetDef secret_getset[] = {
    COMMON_GETSET,
    {NULL, NULL, NULL, NULL, NULL}
};

static PyGetSetDef secretstr_getset[] = {
    {"nbytes", (getter)ms_secretstr_get_nbytes, NULL,
     "Length of the UTF-8 encoding (the view's len); len() counts "
     "characters.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

/* Heap types (PyType_FromModuleAndSpec), one set per interpreter: each
 * type refers to its module, whose state (ext.h) refers back to it.
 * Immutable like the static types they replace: nobody can monkeypatch
 * reveal() or read() on memsafe's classes. */
#define MS_TYPE_FLAGS                                                         \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE)

static PyMemberDef secret_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SecretObject, weakreflist),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL}
};

static PyType_Slot secret_slots[] = {
    {Py_tp_dealloc, (void *)ms_secret_dealloc},
    {Py_tp_repr, (void *)ms_secret_repr},
    {Py_sq_length, (void *)ms_secret_length},
    {Py_tp_hash, (void *)PyObject_HashNotImplemented},
    {Py_bf_getbuffer, (void *)ms_secret_getbuffer},
    {Py_tp_doc, (void *)"Base of memsafe's secret types (MemSafe, "
                        "SecretBytes, SecretStr); not instantiable."},
    {Py_tp_richcompare, (void *)ms_secret_richcompare},
    {Py_tp_methods, base_methods},
    {Py_tp_getset, secret_getset},
    {Py_tp_members, secret_members},
    {0, NULL}
};

static PyType_Spec secret_spec = {
    .name = "memsafe.Secret",
    .basicsize = sizeof(SecretObject),
    .flags = MS_TYPE_FLAGS | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = secret_slots,
};

static PyType_Slot memsafe_slots[] = {
    {Py_tp_hash, (void *)PyObject_HashNotImplemented},
    {Py_tp_doc,
     (void *)"MemSafe(size_or_data=0, /, *, wipe_source=False, "
             "storage=None)\n--\n\n"
             "A mutable secret buffer.  Give a size for that many zero "
             "bytes, or a bytes-like object (or another secret) to copy; "
             "wipe_source=True wipes a writable source after the copy.  "
             "storage: 'guarded' or 'sealed' (None: the default).  Reach "
             "the bytes only through read() and write() windows."},
    {Py_tp_methods, memsafe_methods},
    {Py_tp_richcompare, (void *)ms_secret_richcompare},
    {Py_tp_new, (void *)ms_memsafe_new},
    {0, NULL}
};

static PyType_Spec memsafe_spec = {
    .name = "memsafe.MemSafe",
    .basicsize = sizeof(SecretObject),
    .flags = MS_TYPE_FLAGS,
    .slots = memsafe_slots,
};

static PyType_Slot secretbytes_slots[] = {
    {Py_tp_hash, (void *)PyObject_HashNotImplemented},
    {Py_tp_doc,
     (void *)"SecretBytes(data=b'', /, *, wipe_source=False, storage=None)"
             "\n--\n\n"
             "Immutable secret bytes.  Copies a bytes-like object (the "
             "original stays where it was; wipe_source=True wipes a "
             "writable one).  storage: 'guarded' or 'sealed' (None: the "
             "default).  Compare with == in constant time; read through "
             "read() windows."},
    {Py_tp_methods, secretbytes_methods},
    {Py_tp_richcompare, (void *)ms_secret_richcompare},
    {Py_tp_new, (void *)ms_secretbytes_new},
    {0, NULL}
};

static PyType_Spec secretbytes_spec = {
    .name = "memsafe.SecretBytes",
    .basicsize = sizeof(SecretObject),
    .flags = MS_TYPE_FLAGS,
    .slots = secretbytes_slots,
};

static PyType_Slot secretstr_slots[] = {
    {Py_tp_hash, (void *)PyObject_HashNotImplemented},
    {Py_tp_doc,
     (void *)"SecretStr(text='', /, *, storage=None)\n--\n\n"
             "Secret text, stored as UTF-8.  len() counts characters, "
             "nbytes the UTF-8 bytes that read() windows give.  storage: "
             "'guarded' or 'sealed' (None: the default)."},
    {Py_tp_methods, secretstr_methods},
    {Py_tp_getset, secretstr_getset},
    {Py_tp_richcompare, (void *)ms_secret_richcompare},
    {Py_tp_new, (void *)ms_secretstr_new},
    {0, NULL}
};

static PyType_Spec secretstr_spec = {
    .name = "memsafe.SecretStr",
    .basicsize = sizeof(SecretObject),
    .flags = MS_TYPE_FLAGS,
    .slots = secretstr_slots,
};

/* A new type of the module from spec (derived from base, if any), added
 * to the module as name; NULL on error. */
static PyTypeObject *add_type(PyObject *module, PyType_Spec *spec,
                              PyTypeObject *base, const char *name)
{
    PyObject *type =
        PyType_FromModuleAndSpec(module, spec, (PyObject *)base);
    if (type == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, name, type) < 0) {
        Py_DECREF(type);
        return NULL;
    }
    return (PyTypeObject *)type;
}

int ms_types_init(PyObject *module, ms_state *st)
{
    st->secret_type = add_type(module, &secret_spec, NULL, "Secret");
    if (st->secret_type == NULL) {
        return -1;
    }
    st->memsafe_type =
        add_type(module, &memsafe_spec, st->secret_type, "MemSafe");
    if (st->memsafe_type == NULL) {
        return -1;
    }
    st->secretbytes_type =
        add_type(module, &secretbytes_spec, st->secret_type, "SecretBytes");
    if (st->secretbytes_type == NULL) {
        return -1;
    }
    st->secretstr_type =
        add_type(module, &secretstr_spec, st->secret_type, "SecretStr");
    return st->secretstr_type != NULL ? 0 : -1;
}
