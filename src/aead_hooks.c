/*
 * aead_hooks.c - test hooks: the core's ChaCha20-Poly1305 from Python.
 *
 *   memsafe._memsafe._chacha20poly1305_seal(key, nonce, ad, plaintext)
 *       -> ciphertext + 16-byte tag (bytes)
 *   memsafe._memsafe._chacha20poly1305_open(key, nonce, ad, data)
 *       -> plaintext (bytes); ValueError if the tag does not verify
 *
 * They exist so that tests can hold src/core/chacha20poly1305.c against
 * RFC 8439, the cryptography-vectors files and cryptography's
 * ChaCha20Poly1305 (tests/test_aead.py).  Private: the results are
 * ordinary bytes objects, so nothing secret should go through them.
 *
 * Arguments: any C-contiguous bytes-like objects (buffer protocol), the
 * key 32 bytes and the nonce 12.  A wrong type raises TypeError, a wrong
 * length ValueError.  The GIL is released while large inputs are
 * processed.
 */
#include "aead_hooks.h"

#include "core/chacha20poly1305.h"

/* Above this many bytes of AD + text, let other threads run meanwhile. */
#define RELEASE_GIL_AT 65536

static void release_views(Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++) {
        PyBuffer_Release(&views[i]);
    }
}

/* key, nonce, ad, text as buffers; checks the count and the two fixed
 * lengths.  On failure raises and holds no view. */
static int get_views(const char *fname, const char *text_name,
                     PyObject *const *args, Py_ssize_t nargs,
                     Py_buffer views[4])
{
    static const char *const names[3] = {"key", "nonce", "ad"};

    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes exactly 4 arguments (key, nonce, ad, %s) "
                     "(%zd given)",
                     fname, text_name, nargs);
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        if (PyObject_GetBuffer(args[i], &views[i], PyBUF_C_CONTIGUOUS) < 0) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Format(PyExc_TypeError,
                             "%s() argument '%s' must be a bytes-like "
                             "object, not '%.100s'",
                             fname, i < 3 ? names[i] : text_name,
                             Py_TYPE(args[i])->tp_name);
            }
            release_views(views, i);
            return -1;
        }
    }
    if (views[0].len != MS_AEAD_KEY_LEN) {
        PyErr_Format(PyExc_ValueError, "%s(): key must be %d bytes, not %zd",
                     fname, MS_AEAD_KEY_LEN, views[0].len);
        release_views(views, 4);
        return -1;
    }
    if (views[1].len != MS_AEAD_NONCE_LEN) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): nonce must be %d bytes, not %zd", fname,
                     MS_AEAD_NONCE_LEN, views[1].len);
        release_views(views, 4);
        return -1;
    }
    return 0;
}

PyObject *ms_py_aead_seal(PyObject *Py_UNUSED(module), PyObject *const *args,
                          Py_ssize_t nargs)
{
    Py_buffer v[4];
    PyObject *out;
    unsigned char *o;
    size_t len;
    int rc;

    if (get_views("_chacha20poly1305_seal", "plaintext", args, nargs, v) <
        0) {
        return NULL;
    }
    len = (size_t)v[3].len;
    if (v[3].len > PY_SSIZE_T_MAX - MS_AEAD_TAG_LEN ||
        (uint64_t)len > MS_AEAD_MAX_LEN) {
        release_views(v, 4);
        return PyErr_Format(PyExc_ValueError,
                            "_chacha20poly1305_seal(): plaintext too long "
                            "(%zd bytes)",
                            v[3].len);
    }
    out = PyBytes_FromStringAndSize(NULL, v[3].len + MS_AEAD_TAG_LEN);
    if (out == NULL) {
        release_views(v, 4);
        return NULL;
    }
    o = (unsigned char *)PyBytes_AS_STRING(out);
    if ((size_t)v[2].len + (size_t)v[3].len >= RELEASE_GIL_AT) {
        Py_BEGIN_ALLOW_THREADS
        rc = ms_aead_seal(v[0].buf, v[1].buf, v[2].buf, (size_t)v[2].len,
                          v[3].buf, len, o, o + len);
        Py_END_ALLOW_THREADS
    } else {
        rc = ms_aead_seal(v[0].buf, v[1].buf, v[2].buf, (size_t)v[2].len,
                          v[3].buf, len, o, o + len);
    }
    release_views(v, 4);
    if (rc != 0) { /* cannot happen after the length check above */
        Py_DECREF(out);
        return PyErr_Format(PyExc_ValueError,
                            "_chacha20poly1305_seal(): plaintext too long");
    }
    return out;
}

PyObject *ms_py_aead_open(PyObject *Py_UNUSED(module), PyObject *const *args,
                          Py_ssize_t nargs)
{
    Py_buffer v[4];
    PyObject *out;
    const unsigned char *data;
    size_t len;
    int rc;

    if (get_views("_chacha20poly1305_open", "data", args, nargs, v) < 0) {
        return NULL;
    }
    if (v[3].len < MS_AEAD_TAG_LEN) {
        release_views(v, 4);
        return PyErr_Format(PyExc_ValueError,
                            "_chacha20poly1305_open(): data must hold at "
                            "least the %d-byte tag, not %zd bytes",
                            MS_AEAD_TAG_LEN, v[3].len);
    }
    len = (size_t)v[3].len - MS_AEAD_TAG_LEN;
    if ((uint64_t)len > MS_AEAD_MAX_LEN) {
        release_views(v, 4);
        return PyErr_Format(PyExc_ValueError,
                            "_chacha20poly1305_open(): data too long "
                            "(%zd bytes)",
                            v[3].len);
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
    if (out == NULL) {
        release_views(v, 4);
        return NULL;
    }
    data = v[3].buf;
    if ((size_t)v[2].len + (size_t)v[3].len >= RELEASE_GIL_AT) {
        Py_BEGIN_ALLOW_THREADS
        rc = ms_aead_open(v[0].buf, v[1].buf, v[2].buf, (size_t)v[2].len,
                          data, len, data + len,
                          (unsigned char *)PyBytes_AS_STRING(out));
        Py_END_ALLOW_THREADS
    } else {
        rc = ms_aead_open(v[0].buf, v[1].buf, v[2].buf, (size_t)v[2].len,
                          data, len, data + len,
                          (unsigned char *)PyBytes_AS_STRING(out));
    }
    release_views(v, 4);
    if (rc != 0) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError,
                        "_chacha20poly1305_open(): authentication failed "
                        "(bad tag, or the wrong key, nonce or associated "
                        "data)");
        return NULL;
    }
    return out;
}
