/*
 * ct.h - small constant-time helpers.
 */
#ifndef MEMSAFE_CT_H
#define MEMSAFE_CT_H

#include <stddef.h>

/* 1 if a[0:na] equals b[0:nb], else 0.  Constant time in the longer
 * length: the loop runs max(na, nb) times whatever the bytes are, and
 * folds differences with OR instead of branching or returning early.  The
 * only branches depend on the lengths, which a comparison reveals anyway
 * (as hmac.compare_digest does). */
int ms_equal_ct(const unsigned char *a, size_t na, const unsigned char *b,
                size_t nb);

#endif /* MEMSAFE_CT_H */
