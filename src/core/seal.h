/*
 * seal.h - the sealed engine: ciphertext slots in pooled arenas.
 *
 * At rest a sealed secret exists only as ChaCha20-Poly1305 ciphertext in a
 * slot of a cipher arena (pool.h):
 *
 *   slot = [ nonce (12) | ciphertext (len) | tag (16) ]
 *
 * under the process key (key.h), with a nonce that never repeats under that
 * key and associated data binding the slot's address and the length (a
 * ciphertext moved to another slot, or altered, fails to open).  The store
 * also keeps the nonce it expects, so an old ciphertext written back into
 * its own slot (a rollback) fails as well.
 *
 * A window decrypts into a plaintext slot of a window arena; all read
 * windows on one secret share that copy.  Leaving a write window seals the
 * plaintext again under a fresh nonce; the last window out wipes the
 * plaintext slot (and scrubs registers and stack).  Arena pages never
 * change protection: in the steady state no window makes a system call.
 */
#ifndef MEMSAFE_SEAL_H
#define MEMSAFE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "types.h"

#define MS_SEAL_OVERHEAD 28 /* nonce + tag */

typedef struct {
    unsigned char *slot;    /* [nonce | ciphertext | tag] */
    ms_arena *arena;        /* the slot's cipher arena */
    unsigned char *plain;   /* plaintext while a window needs it, or NULL */
    ms_arena *parena;       /* the plaintext slot's window arena */
    size_t len;
    unsigned char nonce[12]; /* the nonce the slot must carry */
    int secretmem;          /* arenas and key are memfd_secret */
    int inherit;            /* fork="inherit": arenas and key a child adopts */
    int locked;             /* arenas and key are locked */
} ms_sealed;

/* Once, after the registry: the pools and keys. */
void ms_seal_init(void);

/* A sealed secret of len zero bytes with its plaintext slot open for
 * writing (the store's fill window). */
ms_status ms_sealed_create(ms_sealed *z, size_t len, unsigned long epoch,
                           const ms_allocopts *opts, ms_lockresult *lr,
                           ms_oserr *err);

/* A sealed secret holding a copy of src[0..len), sealed straight from src:
 * no plaintext slot, no window left open.  MS_E_PURGED (nothing left) if
 * a purge started since epoch. */
ms_status ms_sealed_create_from(ms_sealed *z, const unsigned char *src,
                                size_t len, unsigned long epoch,
                                const ms_allocopts *opts, ms_lockresult *lr,
                                ms_oserr *err);

/* Move between access levels (none / read / read-write, see store.h):
 * decrypt into a plaintext slot, seal it again, wipe it.  epoch: the
 * secret's purge epoch; once a purge started since, nothing is opened or
 * sealed any more (MS_E_PURGED when opening).  MS_E_BROKEN here means the
 * slot failed to authenticate while no purge ran (the store aborts). */
ms_status ms_sealed_access(ms_sealed *z, ms_prot from, ms_prot to,
                           unsigned long epoch, ms_oserr *err);

unsigned char *ms_sealed_data(const ms_sealed *z);

/* Wipe the plaintext slot (if any) and the cipher slot, give both back. */
void ms_sealed_destroy(ms_sealed *z);

size_t ms_sealed_info(const ms_sealed *z, ms_info_item *out);

/* In a fork child (a hook, after the seal layer's own): re-seal an
 * inherit secret's slot under the child's own key and a fresh nonce,
 * before any Python code runs there, so that no (key, nonce) pair is ever
 * shared by two processes.  MS_E_FORKED (the slot wiped) if it cannot be:
 * the secret is then an orphan, as with the default policy.  When every
 * inherited secret went through this, ms_seal_adopt_done wipes the
 * parent's key. */
ms_status ms_sealed_adopt(ms_sealed *z);
void ms_seal_adopt_done(void);

/* Statistics of the engine (tests, self-check, benchmarks). */
typedef struct {
    size_t cipher_arenas, cipher_mapped, cipher_slots;
    size_t window_arenas, window_mapped, window_slots;
    unsigned long keys_made, rng_seeds;
    uintptr_t key_halves[2][2]; /* [kind][left/right]: data page, or 0 */
    int consistent; /* 1: every pool's bookkeeping checks out */
} ms_seal_stats;
void ms_seal_stats_get(ms_seal_stats *st);

/* Whether the process key (of this kind of memory) is in place and split,
 * locked, no-dump: for the self-check. */
int ms_seal_key_ready(int secretmem);

#endif /* MEMSAFE_SEAL_H */
