/* macOS <string.h> adds C11 Annex K's memset_s (10.9+), which glibc lacks. */
#ifndef MEMSAFE_SHIM_STRING_H
#define MEMSAFE_SHIM_STRING_H

#include_next <string.h>

#if defined(__STDC_WANT_LIB_EXT1__) && __STDC_WANT_LIB_EXT1__ >= 1
#ifndef MEMSAFE_SHIM_RSIZE_T
#define MEMSAFE_SHIM_RSIZE_T
typedef size_t rsize_t;
typedef int errno_t;
#endif
errno_t memset_s(void *s, rsize_t smax, int c, rsize_t n);
#endif

#endif
