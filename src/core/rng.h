/*
 * rng.h - a userspace CSPRNG for the sealed engine's slot placement: a
 * ChaCha20 stream keyed from the OS CSPRNG, with fast key erasure (every
 * refill replaces the key with fresh output, so a later state reveals
 * nothing earlier).  Seeded on first use and again in a fork child (a
 * child must not place its secrets where its parent or sibling would), so
 * steady-state draws make no system call.  Not thread-safe: the owner
 * (a pool) calls it under its own lock.
 */
#ifndef MEMSAFE_RNG_H
#define MEMSAFE_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "platform.h"

typedef struct {
    unsigned char key[32];
    unsigned char buf[96];
    size_t avail;             /* unread bytes at the end of buf */
    unsigned long generation; /* fork generation it was seeded in */
    int seeded;
    unsigned long reseeds;    /* seeds from the OS so far (tests) */
} ms_rng;

/* A number in [0, n) (n > 0), uniformly.  -1 if seeding from the OS
 * failed (err filled in). */
int ms_rng_below(ms_rng *r, uint32_t n, uint32_t *out, ms_oserr *err);

/* Wipe the state (the next draw seeds again). */
void ms_rng_forget(ms_rng *r);

#endif /* MEMSAFE_RNG_H */
