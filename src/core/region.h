/*
 * region.h - one guarded secret.
 *
 * Layout of a region (one reservation from the page layer):
 *
 *   [ guard page ][ data page(s): ... canary[16] | secret ][ guard page ]
 *
 * The secret is right-aligned against the trailing guard page, so reading or
 * writing one byte past its end faults; the 16 bytes right in front of it
 * hold a random canary that is checked whenever a window closes and when the
 * region is freed.
 *
 * State machine: the data pages are no-access unless a window is open.  Any
 * number of read windows may be open at once (pages read-only), or exactly
 * one write window (pages read-write).  Buffers exported to Python
 * ("exports") keep the protection they were handed out with until they are
 * released, so a leaked memoryview can never point at no-access memory.
 *
 * Locking rule: every ms_region_* function except init/fini must be called
 * with r->lock held (ms_region_lock).  Nothing here calls back into Python,
 * so the lock is only ever held for a few system calls.
 */
#ifndef MEMSAFE_REGION_H
#define MEMSAFE_REGION_H

#include <stddef.h>

#include "platform.h"

#define MS_CANARY_LEN 16

typedef enum {
    MS_OK = 0,
    MS_E_OS,        /* an OS call failed; the ms_oserr says which */
    MS_E_NOMEM,     /* out of address space or memory (err->op: which call,
                     * NULL when the size alone is too large) */
    MS_E_LOCK,      /* locking failed and the lock mode requires it */
    MS_E_CLOSED,    /* the region was closed */
    MS_E_BROKEN,    /* the region was destroyed to fail closed */
    MS_E_FORKED,    /* inherited through fork: holds no plaintext here */
    MS_E_BUSY,      /* conflicting window or live exports */
    MS_E_NOWINDOW,  /* a buffer was asked for while no window is open */
    MS_E_READONLY,  /* a writable buffer was asked for outside a write window */
    MS_E_STATE      /* closing a window that is not open */
} ms_status;

typedef enum {
    MS_LOCK_REQUIRED = 0, /* fail the allocation if the pages can't be locked */
    MS_LOCK_TRY = 1,      /* lock if possible, report failure, go on */
    MS_LOCK_SKIP = 2      /* do not lock */
} ms_lockmode;

typedef enum {
    MS_WINDOW_READ = 0,
    MS_WINDOW_WRITE = 1
} ms_window;

typedef enum {
    MS_REGION_EMPTY = 0, /* never allocated */
    MS_REGION_LIVE,
    MS_REGION_CLOSED,
    MS_REGION_BROKEN
} ms_region_status;

/* One reservation: guard pages, data pages, where the secret sits. */
typedef struct {
    unsigned char *base;   /* start of the reservation (leading guard page) */
    size_t total;          /* whole reservation, guards included */
    unsigned char *data;   /* first data page */
    size_t data_len;       /* bytes of data pages */
    unsigned char *secret; /* first byte of the secret */
    size_t len;            /* length of the secret */
    int locked;            /* 1: data pages are locked in RAM */
} ms_mapping;

typedef struct {
    ms_mutex lock;
    ms_mapping map;
    ms_region_status status;
    ms_prot prot;               /* current protection of the data pages */
    size_t readers;             /* open read windows */
    int writer;                 /* 1: a write window is open */
    size_t exports_ro;          /* live read-only buffer exports */
    size_t exports_rw;          /* live writable buffer exports */
    unsigned long generation;   /* ms_os_fork_generation() at birth */
    unsigned char canary[MS_CANARY_LEN];
} ms_region;

/* Outcome of a lock attempt under MS_LOCK_TRY. */
typedef struct {
    int failed;      /* 1: pages are not locked */
    ms_oserr err;    /* why */
} ms_lockresult;

void ms_region_init(ms_region *r);
void ms_region_fini(ms_region *r);
void ms_region_lock(ms_region *r);
void ms_region_unlock(ms_region *r);

/* Allocate len zero bytes.  On success the region is LIVE with a write
 * window already open (pages read-write) so the caller can fill it; the
 * caller closes it with ms_region_close(r, MS_WINDOW_WRITE, ...). */
ms_status ms_region_alloc(ms_region *r, size_t len, ms_lockmode mode,
                          ms_lockresult *lr, ms_oserr *err);

/* Grow by extra bytes: a new reservation receives the old content, the old
 * one is wiped and released.  Needs no open window and no live export.  On
 * success a write window is open on the new pages and *tail points at the
 * first new (zero) byte. */
ms_status ms_region_grow(ms_region *r, size_t extra, ms_lockmode mode,
                         ms_lockresult *lr, unsigned char **tail,
                         ms_oserr *err);

/* Check that the region can be used here (LIVE and not a fork orphan). */
ms_status ms_region_usable(const ms_region *r);

/* Windows.  Opening never blocks: a conflict returns MS_E_BUSY. */
ms_status ms_region_open(ms_region *r, ms_window kind, ms_oserr *err);
ms_status ms_region_close(ms_region *r, ms_window kind, ms_oserr *err);
int ms_region_window_open(const ms_region *r);

/* Buffer exports.  ms_region_export needs an open window; the export is
 * writable only inside a write window and when want_rw asks for it or
 * allow_rw permits it. */
ms_status ms_region_export(ms_region *r, int allow_rw, int want_rw,
                           int *writable);
/* Cannot fail: if protection cannot be lowered, the secret is destroyed. */
void ms_region_unexport(ms_region *r, int writable);
size_t ms_region_exports(const ms_region *r);

/* Wipe and release.  Refused (MS_E_BUSY) while a window is open or an
 * export is alive, unless force is set (only when nothing can reach the
 * memory any more, e.g. the owner is being deallocated).  Closing a closed
 * region is a no-op.  In a fork child the pages are left alone (they hold no
 * plaintext and may not even be mapped) and the region just becomes CLOSED. */
ms_status ms_region_free(ms_region *r, int force, ms_oserr *err);

/* Where the secret is, while a window is open. */
unsigned char *ms_region_data(const ms_region *r);
size_t ms_region_len(const ms_region *r);

#endif /* MEMSAFE_REGION_H */
