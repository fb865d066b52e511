/*
 * types.h - what every layer of the core shares: status codes, the lock
 * and memfd_secret policies an allocation follows, window kinds.
 */
#ifndef MEMSAFE_TYPES_H
#define MEMSAFE_TYPES_H

#include <stddef.h>

#include "platform.h"

typedef enum {
    MS_OK = 0,
    MS_E_OS,        /* an OS call failed; the ms_oserr says which */
    MS_E_NOMEM,     /* out of address space or memory (err->op: which call,
                     * NULL when the size alone is too large) */
    MS_E_LOCK,      /* locking failed and the lock mode requires it */
    MS_E_CLOSED,    /* the secret was closed */
    MS_E_BROKEN,    /* the secret was destroyed to fail closed */
    MS_E_FORKED,    /* inherited through fork: holds no plaintext here */
    MS_E_BUSY,      /* conflicting window or live exports */
    MS_E_NOWINDOW,  /* a buffer was asked for while no window is open */
    MS_E_READONLY,  /* a writable buffer was asked for outside a write window */
    MS_E_STATE,     /* closing a window that is not open */
    MS_E_PURGED,    /* wiped by a purge (memsafe.purge(), exit, a signal) */
    MS_E_SECRETMEM, /* memfd_secret is required but not available */
    MS_E_CHANGED,   /* the secret changed under a two-step operation */
    MS_E_NONCE      /* the sealing nonces are exhausted (key.h, K2) */
} ms_status;

typedef enum {
    MS_LOCK_REQUIRED = 0, /* fail the allocation if the pages can't be locked */
    MS_LOCK_TRY = 1,      /* lock if possible, report failure, go on */
    MS_LOCK_SKIP = 2      /* do not lock */
} ms_lockmode;

typedef enum {
    MS_SECRETMEM_OFF = 0,     /* ordinary anonymous pages */
    MS_SECRETMEM_PREFER = 1,  /* memfd_secret where offered, else ordinary */
    MS_SECRETMEM_REQUIRE = 2  /* memfd_secret or fail (MS_E_SECRETMEM) */
} ms_secretmem_mode;

/* How new secret memory is to be made. */
typedef struct {
    ms_lockmode lock;
    ms_secretmem_mode secretmem;
    int inherit; /* 1: a fork child gets its own copy (fork="inherit") */
} ms_allocopts;

typedef enum {
    MS_WINDOW_READ = 0,
    MS_WINDOW_WRITE = 1
} ms_window;

/* Outcome of a lock attempt under MS_LOCK_TRY. */
typedef struct {
    int failed;      /* 1: pages are not locked */
    ms_oserr err;    /* why */
} ms_lockresult;

/* One name/value pair describing a secret's memory (tests, self-check). */
typedef struct {
    const char *name;
    unsigned long long value;
} ms_info_item;

#define MS_INFO_MAX 12

#endif /* MEMSAFE_TYPES_H */
