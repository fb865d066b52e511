/*
 * store.h - where one secret's bytes live: the one interface in front of
 * both storage engines.
 *
 *   guarded (region.h): one isolated region per secret, no-access outside
 *                       windows, canary checked when a window closes;
 *   sealed  (seal.h):   ciphertext in a pooled slot, plaintext only inside
 *                       windows, tag checked when a window opens.
 *
 * The window and export counting is the same for both and lives here.
 * Every secret has an access level: none outside windows, read inside read
 * windows, read-write inside a write window.  Any number of read windows
 * may be open at once, or exactly one write window; buffers exported to
 * Python keep the access they were handed out with until they are released,
 * so a leaked memoryview never points at memory that was taken away.
 *
 * fork="inherit" (opts->inherit): the secret's memory is inherited by a
 * fork child, which adopts it in a fork hook, before any Python code runs
 * there: memfd_secret pages are copied into the child's own, ordinary ones
 * locked again, sealed slots re-sealed under the child's own key.  A
 * secret that cannot be adopted (a window or export open at fork, purged,
 * a lock or copy that fails) is an orphan there, as with the default
 * policy.  The parent's copy is never touched.
 *
 * Locking rule: every ms_store_* function except init/fini/lock/unlock must
 * be called with the store's lock held.  Nothing here calls back into
 * Python, so the lock is only ever held for a few system calls (guarded) or
 * one seal/open (sealed).  In a fork child a store inherited from the parent
 * is an orphan: every operation refuses it (MS_E_FORKED) without touching
 * its memory, and its lock is made usable again even if a thread of the
 * parent held it when the process forked.
 */
#ifndef MEMSAFE_STORE_H
#define MEMSAFE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"
#include "seal.h"
#include "types.h"

typedef enum {
    MS_ENGINE_GUARDED = 0,
    MS_ENGINE_SEALED = 1
} ms_engine;

typedef enum {
    MS_STORE_EMPTY = 0, /* never allocated */
    MS_STORE_LIVE,
    MS_STORE_CLOSED,
    MS_STORE_BROKEN     /* destroyed to fail closed */
} ms_store_status;

typedef struct {
    ms_mutex lock;
    volatile intptr_t lock_generation; /* fork generation the lock is for */
    ms_engine engine;
    ms_store_status status;
    ms_prot access;           /* current access to the plaintext */
    size_t len;
    size_t readers;           /* open read windows */
    int writer;               /* 1: a write window is open */
    size_t exports_ro;        /* live read-only buffer exports */
    size_t exports_rw;        /* live writable buffer exports */
    unsigned long generation; /* ms_os_fork_generation() at birth (or adoption) */
    unsigned long epoch;      /* ms_registry_epoch() at birth */
    int inherit;              /* fork="inherit": a fork child adopts it */
    void *inh_prev, *inh_next; /* the list of linked inherit stores */
    int inh_linked;
    union {
        ms_guarded g;
        ms_sealed z;
    } u;
} ms_store;

/* Once per process, after ms_os_init: registry, engines. */
void ms_core_init(void);

void ms_store_init(ms_store *s, ms_engine engine);
void ms_store_fini(ms_store *s);
void ms_store_lock(ms_store *s);
void ms_store_unlock(ms_store *s);

/* Allocate len zero bytes.  On success the store is LIVE with a write
 * window already open so the caller can fill it; the caller closes it
 * with ms_store_close(s, MS_WINDOW_WRITE, ...). */
ms_status ms_store_alloc(ms_store *s, size_t len, const ms_allocopts *opts,
                         ms_lockresult *lr, ms_oserr *err);

/* An empty store made to hold a copy of src[0..len), at rest (no window
 * open) when it returns MS_OK.  The sealed engine seals straight from src;
 * the guarded one copies into its pages and closes them.  On an error
 * after the memory was made (the guarded close) the store is as
 * ms_store_close left it: the caller frees it. */
ms_status ms_store_alloc_copy(ms_store *s, const unsigned char *src,
                              size_t len, const ms_allocopts *opts,
                              ms_lockresult *lr, ms_oserr *err);

/* Grow by extra bytes, in two steps so that the caller can report a lock
 * failure (which may raise) before anything changes:
 *   prepare: new memory of the new size, filled with nothing yet;
 *   commit:  the old content moves over, the old memory is wiped and
 *            released, a write window is open on the result and *tail
 *            points at the first new (zero) byte;
 *   abort:   the new memory is wiped and released; the secret is as it
 *            was.
 * Both steps need no open window and no live export (MS_E_BUSY); commit
 * fails with MS_E_CHANGED if the secret changed in between. */
typedef struct {
    ms_store fresh;
    size_t old_len;
} ms_growth;
ms_status ms_store_grow_prepare(ms_store *s, size_t extra,
                                const ms_allocopts *opts, ms_lockresult *lr,
                                ms_growth *g, ms_oserr *err);
ms_status ms_store_grow_commit(ms_store *s, ms_growth *g,
                               unsigned char **tail, ms_oserr *err);
void ms_store_grow_abort(ms_growth *g);

/* dst was filled from src: if src was born before dst and a purge ran in
 * between (src's content may have been wiped while it was copied), dst
 * counts as purged too.  A copy is never more intact than its source. */
void ms_store_inherit_epoch(ms_store *dst, const ms_store *src);

/* MS_OK if the secret can be used here (LIVE, not a fork orphan, not
 * purged); otherwise why not. */
ms_status ms_store_usable(const ms_store *s);

/* Windows.  Opening never blocks: a conflict returns MS_E_BUSY.  Closing a
 * window of a secret that was purged meanwhile returns MS_E_PURGED (the
 * window is closed all the same): what was computed in it used wiped
 * memory. */
ms_status ms_store_open(ms_store *s, ms_window kind, ms_oserr *err);
ms_status ms_store_close(ms_store *s, ms_window kind, ms_oserr *err);
int ms_store_window_open(const ms_store *s);

/* Buffer exports.  ms_store_export needs an open window; the export is
 * writable only inside a write window and when want_rw asks for it or
 * allow_rw permits it. */
ms_status ms_store_export(ms_store *s, int allow_rw, int want_rw,
                          int *writable);
/* Cannot fail: if access cannot be taken away, the secret is destroyed. */
void ms_store_unexport(ms_store *s, int writable);
size_t ms_store_exports(const ms_store *s);

/* Wipe and release.  Refused (MS_E_BUSY) while a window is open or an
 * export is alive, unless force is set (only when nothing can reach the
 * memory any more, e.g. the owner is being deallocated).  Closing a closed
 * store is a no-op.  An orphan just becomes CLOSED (its pages are the
 * parent's). */
ms_status ms_store_free(ms_store *s, int force, ms_oserr *err);

/* The plaintext, while a window is open. */
unsigned char *ms_store_data(const ms_store *s);
size_t ms_store_len(const ms_store *s);
int ms_store_locked(const ms_store *s);
int ms_store_secretmem(const ms_store *s);

/* Name/value pairs describing the memory (at most MS_INFO_MAX). */
size_t ms_store_info(const ms_store *s, ms_info_item *out);

#endif /* MEMSAFE_STORE_H */
