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

struct ms_mapent {
    volatile intptr_t addr;  /* 0: free or forgotten */
    volatile intptr_t len;
    volatile intptr_t prot;  /* ms_prot the pages have (or are about to) */
    volatile intptr_t claim; /* 0, or the claiming thread's id */
    int dontfork;
    ms_mapent *next_free; /* under reg_mutex */
};

typedef struct chunk {
    ms_mapent e[CHUNK_ENTRIES];
    volatile intptr_t next; /* struct chunk *, written before publication */
} chunk;

static volatile intptr_t chunks;      /* chunk *: newest first */
static volatile intptr_t epoch;       /* bumped by every purge */
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

void ms_registry_claim(ms_mapent *e)
{
    intptr_t me = (intptr_t)ms_os_thread_id();
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

/* For a purge: 1 if it now holds the claim (release it afterwards), 0 if
 * the claim belongs to this very thread (the signal interrupted the owner
 * between its claim and release: go ahead, the owner is suspended). */
static int purge_claim(ms_mapent *e, intptr_t me)
{
    for (;;) {
        intptr_t c = ms_atomic_load(&e->claim);
        if (c == me) {
            return 0;
        }
        if (c == 0 && ms_atomic_cas(&e->claim, 0, me)) {
            return 1;
        }
        spin_pause();
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
        c->e[i].next_free = free_list;
        free_list = &c->e[i];
    }
    c->next = ms_atomic_load(&chunks);
    ms_atomic_store(&chunks, (intptr_t)c);
    return 0;
}

ms_mapent *ms_registry_add(void *addr, size_t len, ms_prot prot,
                           int dontfork)
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
    e->dontfork = dontfork;
    ms_atomic_store(&e->claim, 0);
    ms_atomic_store(&e->len, (intptr_t)len);
    ms_atomic_store(&e->prot, (intptr_t)prot);
    ms_atomic_store(&e->addr, (intptr_t)addr);
    (void)ms_atomic_add(&live_count, 1);
    (void)ms_atomic_add(&live_bytes, (intptr_t)len);
    return e;
}

void ms_registry_remove(ms_mapent *e)
{
    ms_registry_claim(e);
    intptr_t len = ms_atomic_load(&e->len);
    ms_atomic_store(&e->addr, 0);
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
    return (unsigned long)ms_atomic_load(&epoch);
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
    if (prot != MS_PROT_RW &&
        ms_os_protect(addr, len, MS_PROT_RW, &ignored) != 0) {
        (void)ms_os_reserve_at(addr, len, &ignored);
        return 1;
    }
    ms_os_wipe(addr, len);
    if (prot != MS_PROT_RW) {
        (void)ms_os_protect(addr, len, prot, &ignored);
    }
    return 1;
}

size_t ms_registry_purge(int in_signal)
{
    /* The walk is the same in a signal handler: no lock, no allocation
     * (the thread id comes from the OS: per-thread storage may allocate
     * on first use). */
    intptr_t me = (intptr_t)(in_signal ? ms_os_thread_id_raw()
                                       : ms_os_thread_id());
    size_t wiped = 0;
    (void)ms_atomic_add(&epoch, 1);
    for (chunk *c = first_chunk(); c != NULL; c = next_chunk(c)) {
        for (size_t i = 0; i < CHUNK_ENTRIES; i++) {
            ms_mapent *e = &c->e[i];
            if (ms_atomic_load(&e->addr) == 0) {
                continue;
            }
            int held = purge_claim(e, me);
            wiped += (size_t)wipe_entry(e);
            if (held) {
                ms_registry_release(e);
            }
        }
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
    ms_atomic_store(&e->claim, 0);
    if (a == 0) {
        return;
    }
    void *addr = (void *)a; // NOLINT(performance-no-int-to-ptr)
    size_t len = (size_t)ms_atomic_load(&e->len);
    ms_oserr ignored;
    if (e->dontfork || ms_os_protect(addr, len, MS_PROT_NONE, &ignored) != 0) {
        (void)ms_os_reserve_at(addr, len, &ignored);
    }
    ms_atomic_store(&e->addr, 0);
}

/* Runs once in a fork child, single-threaded (atfork), or in the first
 * thread to notice a raw fork. */
static void on_fork_child(void)
{
    ms_mutex_init(&reg_mutex);
    free_list = NULL;
    for (chunk *c = first_chunk(); c != NULL; c = next_chunk(c)) {
        for (size_t i = CHUNK_ENTRIES; i-- > 0;) {
            orphan_entry(&c->e[i]);
            c->e[i].next_free = free_list;
            free_list = &c->e[i];
        }
    }
    ms_atomic_store(&live_count, 0);
    ms_atomic_store(&live_bytes, 0);
    for (size_t i = 0; i < nfork_hooks; i++) {
        fork_hooks[i]();
    }
}

void ms_registry_init(void)
{
    ms_mutex_init(&reg_mutex);
    ms_os_set_fork_hooks(NULL, NULL, on_fork_child);
}
