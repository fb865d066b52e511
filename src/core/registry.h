/*
 * registry.h - every mapping that holds secret bytes, for the events that
 * must reach all of them at once:
 *
 *   - a fork child: the inherited pages are made no-access there (or
 *     re-reserved no-access where the child did not inherit them), so a
 *     view carried over from a window open in the parent faults on use;
 *     mappings of secrets made with fork="inherit" stay, for the child to
 *     adopt (store.h);
 *   - purge (memsafe.purge(), interpreter exit, a signal after
 *     purge_on_signals()): every registered mapping is wiped.
 *
 * Entries describe mappings (a guarded secret's data pages, a sealed arena,
 * a window arena, a half of the process key, a scratch region), not Python
 * objects, so the walk needs no reference to anything the interpreter owns.
 *
 * Purge rules (the invariants the store and the sealed engine rely on):
 *
 *   1. Every purge bumps the "started" counter before it touches a page and
 *      the "finished" counter when it is done.  The epoch is the started
 *      counter.  A secret is born only while no purge runs
 *      (ms_registry_quiet_epoch waits for one to finish) and records that
 *      epoch; it is purged from the moment any later purge starts
 *      (ms_registry_unchanged).  So a secret is either purged (some purge
 *      started after its birth and may have wiped it) or intact (no purge
 *      has started since, so nothing wiped it): never half-wiped while
 *      reported usable.
 *   2. An operation that reads secret memory (a canary check, a key half,
 *      an open) and then trusts what it read checks ms_registry_unchanged
 *      AFTER reading: the counter is bumped before any wipe, and a full
 *      barrier orders the reads before the check, so wiped bytes are never
 *      mistaken for corruption or used as a key.
 *   3. A purge never interrupts a purge on the same thread: the purging
 *      thread blocks the purge signals (and a signal's handler runs with
 *      them blocked).  A purge that meets an entry claimed by a purge of
 *      its own thread (a fatal signal inside a purge) leaves it to that
 *      purge; one claimed by its own thread's owner (the signal interrupted
 *      a protection change) proceeds, the owner being suspended.
 *   4. Each entry is wiped at most once per content: a purge clears the
 *      entry's dirty flag as it wipes it, and only registration or
 *      ms_registry_touch (new data in an arena that a purge wiped) sets it
 *      again.  Each chunk counts its dirty entries, so a purge (or a flood
 *      of signals) costs the entries not yet wiped, plus one look at each
 *      chunk of 512 entries.
 *
 * The walk is async-signal-safe: it takes no lock and allocates nothing.
 * Entries live in chunks that are never freed, published with atomic
 * stores.  A mapping's owner "claims" its entry around every protection
 * change and before unmapping (a spin flag holding the owner's thread id,
 * held only across one system call); a purge claims it too before touching
 * the pages.
 */
#ifndef MEMSAFE_REGISTRY_H
#define MEMSAFE_REGISTRY_H

#include <stddef.h>

#include "platform.h"

typedef struct ms_mapent ms_mapent;

/* Once, after ms_os_init: installs the fork hook. */
void ms_registry_init(void);

/* How a fork child gets a mapping. */
typedef enum {
    MS_FORK_WIPED = 0,    /* wiped pages (MADV_WIPEONFORK): made no-access */
    MS_FORK_HOLE = 1,     /* not inherited: re-reserved no-access */
    MS_FORK_INHERIT = 2   /* inherited as is: the child adopts it (store.h) */
} ms_forkmode;

/* Register the data pages [addr, addr + len), currently at protection prot.
 * NULL if out of memory (nothing registered). */
ms_mapent *ms_registry_add(void *addr, size_t len, ms_prot prot,
                           ms_forkmode fork);

/* In a fork child, for an inherited (MS_FORK_INHERIT) mapping that is not
 * adopted after all: make it no-access and forget it, as for the others. */
void ms_registry_orphan(ms_mapent *e);

/* Around a protection change: claim, ms_registry_set_prot(target), change,
 * then set the real outcome and release. */
void ms_registry_claim(ms_mapent *e);
void ms_registry_set_prot(ms_mapent *e, ms_prot prot);
void ms_registry_release(ms_mapent *e);

/* Before unmapping: forget the entry (no purge touches the pages after
 * this returns); it is reused for another mapping. */
void ms_registry_remove(ms_mapent *e);

/* New data in the mapping (a slot handed out in an arena, a new key in a
 * key half): the next purge must wipe it even if an earlier one did. */
void ms_registry_touch(ms_mapent *e);

/* The purge epoch: the number of purges started so far. */
unsigned long ms_registry_epoch(void);

/* Wait (yielding) until no purge is running, then return the epoch: what
 * a secret born now records (rule 1).  Never call it from a purge or with
 * an entry claimed. */
unsigned long ms_registry_quiet_epoch(void);

/* 1 if no purge has started since epoch e (rule 2: a full barrier first,
 * so the caller's reads of secret memory before it are covered). */
int ms_registry_unchanged(unsigned long e);

/* Wipe every registered mapping, after bumping the epoch.  in_signal: the
 * caller is a signal handler (nothing but atomics and system calls).
 * Returns how many mappings were wiped. */
size_t ms_registry_purge(int in_signal);

/* For ms_os_purge_on_signals and ms_os_at_exit. */
void ms_registry_purge_signal(int sig);
void ms_registry_purge_at_exit(void);

/* What is registered now (for the self-check and tests). */
void ms_registry_stats(size_t *mappings, size_t *bytes);

/* Purges run so far, and how many mappings the last one wiped (tests: a
 * purge of a purged process wipes nothing). */
void ms_registry_purge_stats(unsigned long *purges, size_t *last_wiped);

/* Deterministic interleavings for the tests (fault-injection builds only):
 * ms_registry_purge_at(point, n) makes the n-th time the core reaches the
 * named point (MS_TESTPOINT below) run a purge right there, on that thread,
 * as a signal would; n == 0 disarms.  Points: "create" (a secret's memory
 * made, before it is filled), "seal" (nonce taken, before the key is
 * rebuilt), "seal-key" (key rebuilt, before sealing), "open-key" (key
 * rebuilt, before opening), "close" (before a window's canary check),
 * "window" (a window's memory made accessible, before it is handed out),
 * "purge" (inside a purge, after it claimed an entry: a purge of a purge),
 * "protect" (an owner claimed its mapping and set the protection it is
 * about to apply, before the mprotect: what a signal may interrupt). */
#if defined(MEMSAFE_FAULT_INJECTION)
void ms_registry_purge_at(const char *point, unsigned long nth);
void ms_registry_testpoint(const char *point);
#define MS_TESTPOINT(p) ms_registry_testpoint(p)
#else
#define MS_TESTPOINT(p) ((void)0)
#endif

/* Run fn in a fork child, after the inherited mappings were made
 * no-access (at most 4 callbacks; the engines reset their state). */
void ms_registry_on_fork_child(void (*fn)(void));
/* Run prepare before a fork and parent after it, in the parent (one pair:
 * the store layer's list of fork="inherit" secrets). */
void ms_registry_on_fork_parent(void (*prepare)(void), void (*parent)(void));

#endif /* MEMSAFE_REGISTRY_H */
