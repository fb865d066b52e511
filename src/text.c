/*
 * text.c - UTF-8 without the Python codec machinery.
 *
 * SecretStr text is encoded from a str's code points straight into secret
 * memory (PyUnicode_AsUTF8 would leave a cached UTF-8 copy inside the str),
 * counted in place, and bytes from a terminal are validated in place:
 * a UnicodeDecodeError would carry the offending bytes onto the heap.
 */
#include "text.h"

static Py_ssize_t utf8_len_of(Py_UCS4 c)
{
    if (c < 0x80) {
        return 1;
    }
    if (c < 0x800) {
        return 2;
    }
    if (c < 0x10000) {
        return 3;
    }
    return 4;
}

static int is_surrogate(Py_UCS4 c)
{
    return c >= 0xD800 && c <= 0xDFFF;
}

/* Bytes needed to encode str; -1 with *bad_index set (no exception) for a
 * lone surrogate, -1 with an exception for other failures. */
Py_ssize_t ms_utf8_size(PyObject *str, Py_ssize_t *bad_index)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(str) < 0) {
        return -1;
    }
#endif
    return ms_utf8_size_n(str, PyUnicode_GET_LENGTH(str), 0, bad_index);
}

/* U+DC80..U+DCFF: a raw byte 0x80..0xFF that the surrogateescape error
 * handler (sys.stdin's, under a C locale) put in place of undecodable
 * input. */
static int is_escaped_byte(Py_UCS4 c)
{
    return c >= 0xDC80 && c <= 0xDCFF;
}

Py_ssize_t ms_utf8_size_n(PyObject *str, Py_ssize_t n, int escaped,
                          Py_ssize_t *bad_index)
{
    int kind = PyUnicode_KIND(str);
    const void *data = PyUnicode_DATA(str);
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (escaped && is_escaped_byte(c)) {
            size += 1;
            continue;
        }
        if (is_surrogate(c)) {
            *bad_index = i;
            return -1;
        }
        if (size > PY_SSIZE_T_MAX - 4) {
            PyErr_NoMemory();
            return -1;
        }
        size += utf8_len_of(c);
    }
    return size;
}

/* UTF-8 of one code point (not a surrogate) into out; returns its length. */
static size_t encode_one(Py_UCS4 c, unsigned char *out)
{
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (c >> 18));
    out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Encode str (already checked by ms_utf8_size) into out. */
void ms_utf8_encode(PyObject *str, unsigned char *out)
{
    ms_utf8_encode_n(str, PyUnicode_GET_LENGTH(str), 0, out);
}

void ms_utf8_encode_n(PyObject *str, Py_ssize_t n, int escaped,
                      unsigned char *out)
{
    int kind = PyUnicode_KIND(str);
    const void *data = PyUnicode_DATA(str);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (escaped && is_escaped_byte(c)) {
            *out++ = (unsigned char)(c - 0xDC00);
        } else {
            out += encode_one(c, out);
        }
    }
}

/* Compare UTF-8 secret bytes p[0:n] with a str, without encoding the str
 * into a buffer: each code point is encoded into a 4-byte scratch that is
 * wiped afterwards.  The secret's bytes are only ever XORed and ORed into
 * an accumulator (no branch or early exit on them); the loop covers the
 * longer of the two lengths.  Returns 1 equal, 0 different, -1 error. */
int ms_utf8_equal_ct(const unsigned char *p, size_t n, PyObject *str)
{
    Py_ssize_t bad = -1;
    Py_ssize_t size = ms_utf8_size(str, &bad);
    if (size < 0) {
        return bad >= 0 ? 0 : -1; /* a lone surrogate never matches */
    }
    int kind = PyUnicode_KIND(str);
    const void *data = PyUnicode_DATA(str);
    Py_ssize_t len = PyUnicode_GET_LENGTH(str);
    volatile unsigned char diff = (unsigned char)((size_t)size != n);
    unsigned char unit[4];
    size_t pos = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        size_t k = encode_one(PyUnicode_READ(kind, data, i), unit);
        for (size_t j = 0; j < k; j++, pos++) {
            unsigned char y = pos < n ? p[pos] : 0;
            diff |= (unsigned char)(unit[j] ^ y);
        }
    }
    for (; pos < n; pos++) {
        diff |= p[pos];
    }
    ms_os_wipe(unit, sizeof(unit));
    return diff == 0;
}

/* Code points in valid UTF-8: every byte that is not a continuation. */
Py_ssize_t ms_utf8_count(const unsigned char *p, size_t n)
{
    Py_ssize_t count = 0;
    for (size_t i = 0; i < n; i++) {
        count += (p[i] & 0xC0) != 0x80;
    }
    return count;
}

static int is_cont(unsigned char b)
{
    return (b & 0xC0) == 0x80;
}

/* Length of the valid sequence starting at p[0] (at most n bytes), or 0.
 * Rejects overlong forms, surrogates and code points above U+10FFFF
 * (the rules of RFC 3629, as Python's decoder applies them). */
static size_t sequence_len(const unsigned char *p, size_t n)
{
    unsigned char b = p[0];
    if (b < 0x80) {
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        return n >= 2 && is_cont(p[1]) ? 2 : 0;
    }
    if (b >= 0xE0 && b <= 0xEF) {
        if (n < 3 || !is_cont(p[1]) || !is_cont(p[2])) {
            return 0;
        }
        if ((b == 0xE0 && p[1] < 0xA0) || (b == 0xED && p[1] > 0x9F)) {
            return 0;
        }
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (n < 4 || !is_cont(p[1]) || !is_cont(p[2]) || !is_cont(p[3])) {
            return 0;
        }
        if ((b == 0xF0 && p[1] < 0x90) || (b == 0xF4 && p[1] > 0x8F)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

/* 0 if p[0:n] is valid UTF-8; else -1 with the offset of the first bad
 * sequence in *bad_offset. */
int ms_utf8_validate(const unsigned char *p, size_t n, size_t *bad_offset)
{
    size_t i = 0;
    while (i < n) {
        size_t k = sequence_len(p + i, n - i);
        if (k == 0) {
            *bad_offset = i;
            return -1;
        }
        i += k;
    }
    return 0;
}
