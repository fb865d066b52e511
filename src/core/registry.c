/*
 * registry.c - the table of secret mappings (see registry.h for the rules).
 */
#include "registry.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"

#define CHUNK_ENTRIES 512
#define FORK_HOOKS_MAX 4

typedef struct chunk chunk;

struct ms_mapent {
    volatile intptr_t addr;  /* 0: free or forgotten */
    volatile intptr_t len;
    volatile intptr_t prot;  /* ms_prot the pages have (or are about to) */
    volatile intptr_t claim; /* 0, or owner_claim / purge_claim of a thread */
    volatile intptr_t dirty; /* 1: holds data no purge has wiped yet */
    chunk *home;             /* the chunk this entry lives in */
    ms_forkmode fork;
    ms_mapent *next_free; /* under reg_mutex */
};

struct chunk {
    ms_mapent e[CHUNK_ENTRIES];
    volatile intptr_t dirty; /* entries with dirty set */
    volatile intptr_t next;  /* struct chunk *, written before publication */
};

static volatile intptr_t chunks;      /* chunk *: newest first */
static volatile intptr_t started;     /* purges started: the epoch */
static volatile intptr_t finished;    /* purges finished */
static volatile intptr_t last_wiped;  /* mappings the last purge wiped */
static volatile intptr_t live_count;  /* registered mappings */
static volatile intptr_t live_bytes;
static ms_mutex reg_mutex;            /* the free list and chunk growth */
static ms_mapent *free_list;
static void (*fork_hooks[FORK_HOOKS_MAX])(void);
static size_t nfork_hooks;

/* ---- walking ---------------------------------------------------------- */

static chunk *first_chunk(void)
{
    return (chunk *)ms_atomic_load(&chunks); // NOLINT(performance-no-int-to-ptr)
}

static chunk *next_chunk(const chunk *c)
{
    return (chunk *)ms_atomic_load( // NOLINT(performance-no-int-to-ptr)
        (volatile intptr_t *)&c->next);
}

/* ---- claims ----------------------------------------------------------- */

static void spin_pause(void)
{
    /* A claim is held across one system call: yielding is enough. */
    ms_mutex_yield();
}

/* A claim says who holds an entry and why: an owner changing protection
 * or unmapping (even), or a purge wiping it (odd). */
static intptr_t owner_claim(long tid)
{
    return (intptr_t)tid * 2;
}

static intptr_t purging_claim(long tid)
{
    return (intptr_t)tid * 2 + 1;
}

void ms_registry_claim(ms_mapent *e)
{
    intptr_t me = owner_claim(ms_os_thread_id());
    while (!ms_atomic_cas(&e->claim, 0, me)) {
        spin_pause();
    }
}

void ms_registry_set_prot(ms_mapent *e, ms_prot prot)
{
    ms_atomic_store(&e->prot, (intptr_t)prot);
}

void ms_registry_release(ms_mapent *e)
{
    ms_atomic_store(&e->claim, 0);
}

/* How long a purge in a signal handler waits for a claim held by another
 * thread before it leaves that mapping for the next purge.  A claim is held
 * across one system call, but its holder may itself be suspended in a
 * signal handler whose purge waits for a claim of this thread's: waiting
 * without bound there deadlocks (seen with SIGHUP floods on 3.14t). */
#define SIGNAL_CLAIM_SPINS 20000

/* For a purge by thread tid: 1 if it now holds the claim (release it
 * afterwards); 0 if an owner on this very thread holds it (a signal
 * interrupted the owner between its claim and release: go ahead, the owner
 * is suspended); -1 if a purge on this very thread holds it (a fatal signal
 * inside that purge: leave the entry to it), or, in a signal handler, if
 * another thread held it for too long (the entry stays dirty: the next
 * purge wipes it; its secret counts as purged all the same). */
static int purge_claim(ms_mapent *e, long tid, int in_signal)
{
    for (long spins = 0;; spins++) {
        intptr_t c = ms_atomic_load(&e->claim);
        if (c == owner_claim(tid)) {
            return 0;
        }
        if (c == purging_claim(tid)) {
            return -1;
        }
        if (c == 0 && ms_atomic_cas(&e->claim, 0, purging_claim(tid))) {
            return 1;
        }
        if (in_signal && spins >= SIGNAL_CLAIM_SPINS) {
            return -1;
        }
        spin_pause();
    }
}

/* ---- dirty flags ------------------------------------------------------ */

static void mark_dirty(ms_mapent *e)
{
    if (ms_atomic_cas(&e->dirty, 0, 1)) {
        (void)ms_atomic_add(&e->home->dirty, 1);
    }
}

/* 1 if e was dirty and now is not (the caller wipes it). */
static int take_dirty(ms_mapent *e)
{
    if (ms_atomic_cas(&e->dirty, 1, 0)) {
        (void)ms_atomic_add(&e->home->dirty, -1);
        return 1;
    }
    return 0;
}

void ms_registry_touch(ms_mapent *e)
{
    if (e != NULL && ms_atomic_load(&e->dirty) == 0) {
        mark_dirty(e);
    }
}

/* ---- adding and removing ---------------------------------------------- */

static int grow_locked(void)
{
    chunk *c = (chunk *)calloc(1, sizeof(chunk));
    if (c == NULL) {
        return -1;
    }
    for (size_t i = CHUNK_ENTRIES; i-- > 0;) {
        c->e[i].home = c;
        c->e[i].next_free = free_list;
        free_list = &c->e[i];
    }
    c->next = ms_atomic_load(&chunks);
    ms_atomic_store(&chunks, (intptr_t)c);
    return 0;
}

ms_mapent *ms_registry_add(void *addr, size_t len, ms_prot prot,
                           ms_forkmode fork)
{
    ms_mutex_lock(&reg_mutex);
    if (free_list == NULL && grow_locked() < 0) {
        ms_mutex_unlock(&reg_mutex);
        return NULL;
    }
    ms_mapent *e = free_list;
    free_list = e->next_free;
    ms_mutex_unlock(&reg_mutex);
    e->next_free = NULL;
    e->fork = fork;
    ms_atomic_store(&e->claim, 0);
    ms_atomic_store(&e->len, (intptr_t)len);
    ms_atomic_store(&e->prot, (intptr_t)prot);
    ms_atomic_store(&e->addr, (intptr_t)addr);
    mark_dirty(e);
    (void)ms_atomic_add(&live_count, 1);
    (void)ms_atomic_add(&live_bytes, (intptr_t)len);
    return e;
}

void ms_registry_remove(ms_mapent *e)
{
    ms_registry_claim(e);
    intptr_t len = ms_atomic_load(&e->len);
    ms_atomic_store(&e->addr, 0);
    (void)take_dirty(e);
    ms_registry_release(e);
    (void)ms_atomic_add(&live_count, -1);
    (void)ms_atomic_add(&live_bytes, -len);
    ms_mutex_lock(&reg_mutex);
    e->next_free = free_list;
    free_list = e;
    ms_mutex_unlock(&reg_mutex);
}

/* ---- purge ------------------------------------------------------------ */

unsigned long ms_registry_epoch(void)
{
    return (unsigned long)ms_atomic_load(&started);
}

unsigned long ms_registry_quiet_epoch(void)
{
    for (;;) {
        intptr_t s = ms_atomic_load(&started);
        if (ms_atomic_load(&finished) == s) {
            return (unsigned long)s;
        }
        spin_pause();
    }
}

int ms_registry_unchanged(unsigned long e)
{
    ms_atomic_fence();
    return (unsigned long)ms_atomic_load(&started) == e;
}

/* Wipe one mapping whose claim the caller holds (or may ignore).  Pages
 * that cannot be made writable are replaced by fresh no-access ones, which
 * drops their content just as well. */
static int wipe_entry(ms_mapent *e)
{
    intptr_t a = ms_atomic_load(&e->addr);
    if (a == 0) {
        return 0;
    }
    void *addr = (void *)a; // NOLINT(performance-no-int-to-ptr)
    size_t len = (size_t)ms_atomic_load(&e->len);
    ms_prot prot = (ms_prot)ms_atomic_load(&e->prot);
    ms_oserr ignored;
    /* Always made writable first: e->prot is what the pages have *or are
     * about to have*, and a signal's purge may run between an owner's
     * set_prot(RW) and its mprotect on this very thread (the pages still
     * no-access then: a wipe without this would fault inside the handler,
     * with the fatal signals blocked). */
    if (ms_os_protect(addr, len, MS_PROT_RW, &ignored) != 0) {
        (void)ms_os_reserve_at(addr, len, &ignored);
        return 1;
    }
    ms_os_wipe(addr, len);
    if (prot != MS_PROT_RW) {
        (void)ms_os_protect(addr, len, prot, &ignored);
    }
    return 1;
}

/* Wipe entry e of the walk if it still needs it (rule 4). */
static size_t purge_entry(ms_mapent *e, long tid, // NOLINT(misc-no-recursion)
                          int in_signal)
{
    if (ms_atomic_load(&e->dirty) == 0 || ms_atomic_load(&e->addr) == 0) {
        return 0;
    }
    int held = purge_claim(e, tid, in_signal);
    if (held < 0) {
        return 0;
    }
    size_t wiped = 0;
    if (take_dirty(e)) {
        MS_TESTPOINT("purge");
        wiped = (size_t)wipe_entry(e);
    }
    if (held) {
        ms_registry_release(e);
    }
    return wiped;
}

static size_t purge_walk(long tid, int in_signal) // NOLINT(misc-no-recursion)
{
    size_t wiped = 0;
    for (chunk *c = first_chunk(); c != NULL; c = next_chunk(c)) {
        if (ms_atomic_load(&c->dirty) == 0) {
            continue;
        }
        for (size_t i = 0; i < CHUNK_ENTRIES; i++) {
            wiped += purge_entry(&c->e[i], tid, in_signal);
        }
    }
    return wiped;
}

/* Recursive only in fault-injection builds: the "purge" test point runs a
 * purge inside a purge, as a fatal signal would. */
size_t ms_registry_purge(int in_signal) // NOLINT(misc-no-recursion)
{
    /* The walk is the same in a signal handler: no lock, no allocation
     * (the thread id comes from the OS: per-thread storage may allocate
     * on first use).  Outside one, the purge signals wait until the walk
     * is over (rule 3); a handler runs with them blocked already. */
    long tid = in_signal ? ms_os_thread_id_raw() : ms_os_thread_id();
    ms_sigsaved saved;
    if (!in_signal) {
        ms_os_block_purge_signals(&saved);
    }
    (void)ms_atomic_add(&started, 1);
    size_t wiped = purge_walk(tid, in_signal);
    ms_atomic_store(&last_wiped, (intptr_t)wiped);
    (void)ms_atomic_add(&finished, 1);
    if (!in_signal) {
        ms_os_restore_signals(&saved);
    }
    return wiped;
}

void ms_registry_purge_signal(int sig)
{
    (void)sig;
    (void)ms_registry_purge(1);
}

void ms_registry_purge_at_exit(void)
{
    (void)ms_registry_purge(0);
}

void ms_registry_stats(size_t *mappings, size_t *bytes)
{
    *mappings = (size_t)ms_atomic_load(&live_count);
    *bytes = (size_t)ms_atomic_load(&live_bytes);
}

void ms_registry_purge_stats(unsigned long *purges, size_t *wiped)
{
    *purges = (unsigned long)ms_atomic_load(&finished);
    *wiped = (size_t)ms_atomic_load(&last_wiped);
}

/* ---- deterministic interleavings (tests) ------------------------------ */

#if defined(MEMSAFE_FAULT_INJECTION)
static const char *volatile armed_point;
static volatile intptr_t armed_left;

void ms_registry_purge_at(const char *point, unsigned long nth)
{
    ms_atomic_store(&armed_left, 0);
    armed_point = point;
    ms_atomic_store(&armed_left, (intptr_t)nth);
}

void ms_registry_testpoint(const char *point) // NOLINT(misc-no-recursion)
{
    const char *p = armed_point;
    if (ms_atomic_load(&armed_left) <= 0 || p == NULL ||
        strcmp(p, point) != 0) {
        return;
    }
    if (ms_atomic_add(&armed_left, -1) == 0) {
        (void)ms_registry_purge(0);
    }
}
#endif

/* ---- fork ------------------------------------------------------------- */

void ms_registry_on_fork_child(void (*fn)(void))
{
    if (nfork_hooks < FORK_HOOKS_MAX) {
        fork_hooks[nfork_hooks++] = fn;
    }
}

/* Make one inherited mapping no-access here, and forget it: the child does
 * not own it (the parent does) and never unmaps it, so a stale view keeps
 * faulting instead of reaching whatever might be mapped there later. */
static void orphan_entry(ms_mapent *e)
{
    intptr_t a = ms_atomic_load(&e->addr);
    ms_forkmode fork = e->fork;
    ms_atomic_store(&e->claim, 0);
    ms_atomic_store(&e->dirty, 0);
    e->fork = MS_FORK_WIPED;
    if (a == 0) {
        return;
    }
    void *addr = (void *)a; // NOLINT(performance-no-int-to-ptr)
    size_t len = (size_t)ms_atomic_load(&e->len);
    ms_oserr ignored;
    if (fork == MS_FORK_HOLE ||
        ms_os_protect(addr, len, MS_PROT_NONE, &ignored) != 0) {
        (void)ms_os_reserve_at(addr, len, &ignored);
    }
    ms_atomic_store(&e->addr, 0);
}

/* An inherited mapping stays registered, for its secret to adopt (or
 * orphan through ms_registry_orphan); its claim cannot be held by anyone
 * here. */
static void keep_entry(ms_mapent *e)
{
    ms_atomic_store(&e->claim, 0);
    (void)ms_atomic_add(&live_count, 1);
    (void)ms_atomic_add(&live_bytes, ms_atomic_load(&e->len));
    if (ms_atomic_load(&e->dirty)) {
        (void)ms_atomic_add(&e->home->dirty, 1);
    }
}

static int inherited(const ms_mapent *e)
{
    return e->fork == MS_FORK_INHERIT &&
           ms_atomic_load((volatile intptr_t *)&e->addr) != 0;
}

void ms_registry_orphan(ms_mapent *e)
{
    (void)take_dirty(e);
    (void)ms_atomic_add(&live_count, -1);
    (void)ms_atomic_add(&live_bytes, -ms_atomic_load(&e->len));
    orphan_entry(e);
    ms_mutex_lock(&reg_mutex);
    e->next_free = free_list;
    free_list = e;
    ms_mutex_unlock(&reg_mutex);
}

/* Runs once in a fork child, single-threaded (atfork), or in the first
 * thread to notice a raw fork. */
static void on_fork_child(void)
{
    ms_mutex_init(&reg_mutex);
    free_list = NULL;
    ms_atomic_store(&live_count, 0);
    ms_atomic_store(&live_bytes, 0);
    for (chunk *c = first_chunk(); c != NULL; c = next_chunk(c)) {
        ms_atomic_store(&c->dirty, 0);
        for (size_t i = CHUNK_ENTRIES; i-- > 0;) {
            if (inherited(&c->e[i])) {
                keep_entry(&c->e[i]);
                continue;
            }
            orphan_entry(&c->e[i]);
            c->e[i].next_free = free_list;
            free_list = &c->e[i];
        }
    }
    /* A purge that was running in another thread of the parent never
     * finishes here: the child has no such thread. */
    ms_atomic_store(&finished, ms_atomic_load(&started));
    for (size_t i = 0; i < nfork_hooks; i++) {
        fork_hooks[i]();
    }
}

void ms_registry_on_fork_parent(void (*prepare)(void), void (*parent)(void))
{
    ms_os_set_fork_hooks(prepare, parent, on_fork_child);
}

void ms_registry_init(void)
{
    ms_mutex_init(&reg_mutex);
    ms_os_set_fork_hooks(NULL, NULL, on_fork_child);
}
