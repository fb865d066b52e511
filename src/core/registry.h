/*
 * registry.h - every mapping that holds secret bytes, for the events that
 * must reach all of them at once:
 *
 *   - a fork child: the inherited pages are made no-access there (or
 *     re-reserved no-access where the child did not inherit them), so a
 *     view carried over from a window open in the parent faults on use;
 *   - purge (memsafe.purge(), interpreter exit, a signal after
 *     purge_on_signals()): every registered mapping is wiped.
 *
 * Entries describe mappings (a guarded secret's data pages, a sealed arena,
 * a window arena, a half of the process key, a scratch region), not Python
 * objects, so the walk needs no reference to anything the interpreter owns.
 *
 * The walk is async-signal-safe: it takes no lock and allocates nothing.
 * Entries live in chunks that are never freed, published with atomic
 * stores.  A mapping's owner "claims" its entry around every protection
 * change and before unmapping (a spin flag holding the owner's thread id,
 * held only across one system call); a purge claims it too before touching
 * the pages, and proceeds at once when the claim belongs to the very thread
 * the signal interrupted.  Purge bumps a process-wide epoch before it wipes
 * anything: every store records the epoch at birth, so a secret that was
 * purged knows it (and never mistakes wiped pages for corruption).
 */
#ifndef MEMSAFE_REGISTRY_H
#define MEMSAFE_REGISTRY_H

#include <stddef.h>

#include "platform.h"

typedef struct ms_mapent ms_mapent;

/* Once, after ms_os_init: installs the fork hook. */
void ms_registry_init(void);

/* Register the data pages [addr, addr + len), currently at protection prot.
 * dontfork: a fork child does not inherit them (it gets a hole there).
 * NULL if out of memory (nothing registered). */
ms_mapent *ms_registry_add(void *addr, size_t len, ms_prot prot,
                           int dontfork);

/* Around a protection change: claim, ms_registry_set_prot(target), change,
 * then set the real outcome and release. */
void ms_registry_claim(ms_mapent *e);
void ms_registry_set_prot(ms_mapent *e, ms_prot prot);
void ms_registry_release(ms_mapent *e);

/* Before unmapping: forget the entry (no purge touches the pages after
 * this returns); it is reused for another mapping. */
void ms_registry_remove(ms_mapent *e);

/* The purge epoch: increases with every purge. */
unsigned long ms_registry_epoch(void);

/* Wipe every registered mapping, after bumping the epoch.  in_signal: the
 * caller is a signal handler (nothing but atomics and system calls).
 * Returns how many mappings were wiped. */
size_t ms_registry_purge(int in_signal);

/* For ms_os_purge_on_signals and ms_os_at_exit. */
void ms_registry_purge_signal(int sig);
void ms_registry_purge_at_exit(void);

/* What is registered now (for the self-check and tests). */
void ms_registry_stats(size_t *mappings, size_t *bytes);

/* Run fn in a fork child, after the inherited mappings were made
 * no-access (at most 4 callbacks; the engines reset their state). */
void ms_registry_on_fork_child(void (*fn)(void));

#endif /* MEMSAFE_REGISTRY_H */
