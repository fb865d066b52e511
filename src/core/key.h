/*
 * key.h - the process key of the sealed engine.
 *
 * One random 256-bit ChaCha20-Poly1305 key per process (and per kind of
 * memory: ordinary pages, or memfd_secret pages), never whole at rest: it
 * is stored split across two fenced, locked, no-dump, wipe-on-fork
 * mappings as right = random and left = key XOR H(right), where H(right)
 * is the first 32 bytes of the ChaCha20 block keyed by right (a PRF: the
 * key cannot be recovered from one half).  The halves stay readable so
 * that a window needs no system call; the key is rebuilt on the caller's
 * stack for one seal or open and wiped right after (memguard's Coffer).
 *
 * A purge wipes both halves (they are registered mappings) and a fork child
 * inherits them wiped: either way the key is made afresh, lazily, before
 * the next seal.  Secrets sealed under the old key were purged or belong to
 * the parent, so nothing ever needs it again.
 */
#ifndef MEMSAFE_KEY_H
#define MEMSAFE_KEY_H

#include <stdint.h>

#include "mapping.h"
#include "types.h"

#define MS_KEY_LEN 32

typedef struct {
    ms_mutex lock;
    ms_mapping left;
    ms_mapping right;
    int ready;                /* halves hold a key for (epoch, generation) */
    unsigned long epoch;
    unsigned long generation;
    volatile intptr_t nonces; /* nonces handed out under this key */
    unsigned long made;       /* keys made so far (tests) */
} ms_key;

void ms_key_init(ms_key *k);
/* Make sure a key exists for this epoch and fork generation (creates or
 * refreshes the halves; the only step that may make system calls). */
ms_status ms_key_prepare(ms_key *k, const ms_allocopts *opts,
                         ms_lockresult *lr, ms_oserr *err);
/* The key, rebuilt into out (the caller wipes it). */
void ms_key_rebuild(ms_key *k, unsigned char out[MS_KEY_LEN]);
/* A nonce never used before under the current key. */
void ms_key_nonce(ms_key *k, unsigned char nonce[12]);
int ms_key_locked(const ms_key *k);
int ms_key_secretmem(const ms_key *k);
/* A fork child: the halves were orphaned; start again. */
void ms_key_fork_child(ms_key *k);

#endif /* MEMSAFE_KEY_H */
