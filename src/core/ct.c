/*
 * ct.c - small constant-time helpers (see ct.h).
 */
#include "ct.h"

int ms_equal_ct(const unsigned char *a, size_t na, const unsigned char *b,
                size_t nb)
{
    size_t n = na > nb ? na : nb;
    volatile unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < n; i++) {
        /* The conditions depend on the index and the lengths only. */
        unsigned char x = i < na ? a[i] : 0;
        unsigned char y = i < nb ? b[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}
