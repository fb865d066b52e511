/*
 * text.h - UTF-8 without the Python codec machinery (see text.c).
 */
#ifndef MEMSAFE_TEXT_H
#define MEMSAFE_TEXT_H

#include "ext.h"

Py_ssize_t ms_utf8_size(PyObject *str, Py_ssize_t *bad_index);
void ms_utf8_encode(PyObject *str, unsigned char *out);
/* The same for the first n code points of a (ready) str; escaped: the
 * surrogates U+DC80..U+DCFF stand for the raw bytes 0x80..0xFF (what the
 * surrogateescape error handler makes of undecodable input). */
Py_ssize_t ms_utf8_size_n(PyObject *str, Py_ssize_t n, int escaped,
                          Py_ssize_t *bad_index);
void ms_utf8_encode_n(PyObject *str, Py_ssize_t n, int escaped,
                      unsigned char *out);
Py_ssize_t ms_utf8_count(const unsigned char *p, size_t n);
int ms_utf8_validate(const unsigned char *p, size_t n, size_t *bad_offset);
int ms_utf8_equal_ct(const unsigned char *p, size_t n, PyObject *str);

#endif /* MEMSAFE_TEXT_H */
