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
 *
 * Invariants (enforced here and in seal.c):
 *   K1. Only the live key seals or opens.  A key is live for the purge
 *       epoch it was made in (registry.h, rule 1) and fork generation; a
 *       seal or open names the epoch of its secret and is refused unless
 *       the key is live for it (ms_key_live), and the key it rebuilt is
 *       used only if no purge started while it read the halves
 *       (ms_registry_unchanged after the rebuild).  A purge between the two
 *       can therefore never make anything seal under wiped (public) halves.
 *   K2. A (key, nonce) pair is used at most once.  The nonce is a random
 *       32-bit prefix drawn with each key, then a 64-bit counter that is
 *       process-wide and never restarts (not at a new key, not after a
 *       purge, not in a fork child): a nonce taken under one key and used
 *       under the next can never be handed out again.  The counter
 *       refuses to wrap (the seal fails closed).
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
    volatile intptr_t live;   /* 1: halves hold the key of (epoch, generation) */
    volatile intptr_t epoch;
    volatile intptr_t generation;
    unsigned char prefix[4];  /* the nonces' prefix under this key */
    unsigned long made;       /* keys made so far (tests) */
    int inherit;              /* halves a fork child adopts and re-keys */
} ms_key;

void ms_key_init(ms_key *k, int inherit);
/* Make sure a key exists for purge epoch `epoch` (the caller's secret's)
 * and this fork generation (creates or refreshes the halves; the only step
 * that may make system calls).  MS_E_PURGED if a purge started since that
 * epoch: the secret is purged, and the key is left alone. */
ms_status ms_key_prepare(ms_key *k, unsigned long epoch,
                         const ms_allocopts *opts, ms_lockresult *lr,
                         ms_oserr *err);
/* 1 if the halves hold the key of this epoch and fork generation (K1). */
int ms_key_live(ms_key *k, unsigned long epoch);
/* The key, rebuilt into out (the caller wipes it and then checks
 * ms_registry_unchanged(epoch) before using it: K1). */
void ms_key_rebuild(ms_key *k, unsigned char out[MS_KEY_LEN]);
/* A nonce never used before under any key of this process (K2); -1 if
 * the counter is exhausted (never in practice: 2^64 seals). */
int ms_key_nonce(ms_key *k, unsigned char nonce[12]);
/* Nonces handed out so far (tests). */
uint64_t ms_key_nonces_used(void);
int ms_key_locked(const ms_key *k);
int ms_key_secretmem(const ms_key *k);
/* A fork child: the halves were orphaned; start again. */
void ms_key_fork_child(ms_key *k);
/* A fork child, for an inherit key (a hook: single-threaded, before the
 * new fork generation is published): adopt the halves, rebuild the
 * parent's key into old for the caller to re-seal what it sealed (the
 * caller wipes it), and put a fresh key of the child's own in the halves,
 * so that nothing is ever sealed under the parent's key here.  1: old
 * holds the parent's key; 0: there was none; -1: the halves could not be
 * adopted (the key is forgotten and what it sealed cannot be opened). */
int ms_key_fork_rekey(ms_key *k, unsigned char old[MS_KEY_LEN]);

#endif /* MEMSAFE_KEY_H */
