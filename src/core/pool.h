/*
 * pool.h - slots in pooled arenas, for the sealed engine.
 *
 * An arena is one fenced, hardened mapping (mapping.h: guard pages at both
 * ends, locked, no-dump, wiped on fork, no huge pages) cut into slots of
 * one size class.  A new slot is placed at a random free slot of a random
 * arena of its class (a userspace ChaCha20 stream, rng.h, so that this
 * costs no system call), and a freed slot is wiped at once.  Arenas of a
 * class grow geometrically, from one page to MS_ARENA_MAX bytes, so a
 * process with few secrets locks little memory and one with a million
 * needs only a few hundred mappings.  Requests larger than the biggest
 * class get an arena of their own.
 *
 * Arena pages are always readable and writable: what the sealed engine
 * keeps in them is ciphertext (the cipher pools) or the plaintext of open
 * windows (the window pools), so no protection ever changes and neither
 * allocating nor freeing a slot makes a system call once the arenas exist.
 *
 * Thread-safe: every pool has its own mutex.
 */
#ifndef MEMSAFE_POOL_H
#define MEMSAFE_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "mapping.h"
#include "rng.h"
#include "types.h"

#define MS_POOL_CLASSES 16
#define MS_ARENA_MAX ((size_t)1 << 20)

typedef struct ms_arena ms_arena;

typedef struct {
    ms_mutex lock;
    ms_arena *classes[MS_POOL_CLASSES]; /* arenas of each size class */
    ms_arena *large;                    /* arenas of one slot each */
    size_t next_pages[MS_POOL_CLASSES]; /* size of the class's next arena */
    ms_rng rng;
    int secretmem;                      /* 1: memfd_secret arenas only */
    int inherit;                        /* 1: arenas a fork child adopts */
    size_t arenas;                      /* stats: live arenas */
    size_t mapped;                      /* stats: bytes of data pages */
    size_t slots;                       /* stats: live slots */
} ms_pool;

void ms_pool_init(ms_pool *p, int secretmem, int inherit);

/* A slot of at least n bytes, zero.  Under MS_LOCK_REQUIRED only locked
 * arenas are used; *lr tells whether the chosen arena is locked. */
ms_status ms_pool_alloc(ms_pool *p, size_t n, const ms_allocopts *opts,
                        ms_lockresult *lr, unsigned char **slot,
                        ms_arena **arena, ms_oserr *err);

/* Wipe the slot and give it back. */
void ms_pool_free(ms_pool *p, ms_arena *a, unsigned char *slot);

size_t ms_arena_slot_len(const ms_arena *a);
int ms_arena_locked(const ms_arena *a);
int ms_arena_secretmem(const ms_arena *a);
const ms_mapping *ms_arena_mapping(const ms_arena *a);

/* A fork child: the arenas were orphaned (registry.h); forget them.  An
 * inherit pool's arenas are adopted instead (or orphaned one by one). */
void ms_pool_fork_child(ms_pool *p);
/* 0 if the arena was inherited but could not be adopted here. */
int ms_arena_adopted(const ms_arena *a);

/* Check the pool's bookkeeping (counts against bitmaps); 0 if consistent
 * (tests and debug builds). */
int ms_pool_check(ms_pool *p);

#endif /* MEMSAFE_POOL_H */
