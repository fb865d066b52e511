/*
 * pool.c - slots in pooled arenas (see pool.h).
 */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

/* Slot sizes: 16-byte multiples, so every slot is 16-byte aligned. */
static const size_t class_size[MS_POOL_CLASSES] = {
    16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
    3072, 4096};

#define LARGE ((size_t)MS_POOL_CLASSES) /* an arena of its own */

struct ms_arena {
    ms_mapping map;
    size_t cls;          /* class index, or LARGE */
    size_t slot_len;
    size_t nslots;
    size_t nfree;
    ms_oserr lock_err;   /* why it is not locked, if it is not */
    ms_arena *next;      /* next arena of the class (or large list) */
    uint64_t used[];     /* bit i set: slot i is in use */
};

void ms_pool_init(ms_pool *p, int secretmem, int inherit)
{
    memset(p, 0, sizeof(*p));
    ms_mutex_init(&p->lock);
    p->secretmem = secretmem;
    p->inherit = inherit;
}

static size_t class_for(size_t n)
{
    for (size_t i = 0; i < MS_POOL_CLASSES; i++) {
        if (n <= class_size[i]) {
            return i;
        }
    }
    return LARGE;
}

static ms_arena **list_of(ms_pool *p, size_t cls)
{
    return cls == LARGE ? &p->large : &p->classes[cls];
}

static ms_status nomem(ms_oserr *err, const char *op)
{
    err->code = ENOMEM;
    err->winerror = 0;
    err->op = op;
    return MS_E_NOMEM;
}

/* ---- bitmaps ---------------------------------------------------------- */

static unsigned lowest_bit(uint64_t v)
{
#if defined(_MSC_VER) && !defined(__clang__)
    unsigned long i;
    _BitScanForward64(&i, v);
    return (unsigned)i;
#else
    return (unsigned)__builtin_ctzll(v);
#endif
}

static size_t words_for(size_t nslots)
{
    return (nslots + 63) / 64;
}

static void mark(ms_arena *a, size_t i, int used)
{
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (used) {
        a->used[i / 64] |= bit;
    } else {
        a->used[i / 64] &= ~bit;
    }
}

static unsigned count_bits(uint64_t v)
{
#if defined(_MSC_VER) && !defined(__clang__)
    return (unsigned)__popcnt64(v);
#else
    return (unsigned)__builtin_popcountll(v);
#endif
}

/* The k-th free slot (0-based, k < nfree): every free slot is equally
 * likely when k is uniform.  Bits past the last slot count as used. */
static size_t kth_free(const ms_arena *a, size_t k)
{
    size_t nw = words_for(a->nslots);
    for (size_t w = 0; w < nw; w++) {
        uint64_t free_bits = ~a->used[w];
        unsigned n = count_bits(free_bits);
        if (k >= n) {
            k -= n;
            continue;
        }
        while (k-- > 0) {
            free_bits &= free_bits - 1; /* drop the lowest free slot */
        }
        return w * 64 + lowest_bit(free_bits);
    }
    return a->nslots; /* not reached while k < nfree */
}

/* ---- arenas ----------------------------------------------------------- */

static size_t arena_data_len(ms_pool *p, size_t cls, size_t n)
{
    if (cls == LARGE) {
        return ms_pages_for(n);
    }
    if (p->next_pages[cls] == 0) {
        p->next_pages[cls] = 1;
    }
    return p->next_pages[cls] * ms_os_page_size();
}

static ms_status arena_create(ms_pool *p, size_t cls, size_t n,
                              const ms_allocopts *opts, ms_arena **out,
                              ms_oserr *err)
{
    size_t data_len = arena_data_len(p, cls, n);
    if (data_len == 0) {
        return nomem(err, NULL);
    }
    size_t slot_len = cls == LARGE ? n : class_size[cls];
    size_t nslots = cls == LARGE ? 1 : data_len / slot_len;
    size_t nw = words_for(nslots);
    ms_arena *a = (ms_arena *)calloc(1, sizeof(*a) + nw * sizeof(uint64_t));
    if (a == NULL) {
        return nomem(err, "malloc (arena bookkeeping)");
    }
    ms_allocopts o = *opts;
    o.secretmem = p->secretmem ? MS_SECRETMEM_REQUIRE : MS_SECRETMEM_OFF;
    o.inherit = p->inherit;
    ms_lockresult lr;
    ms_status st = ms_mapping_create(&a->map, data_len, &o, &lr, err);
    if (st != MS_OK) {
        free(a);
        return st;
    }
    a->lock_err = lr.err;
    a->cls = cls;
    a->slot_len = slot_len;
    a->nslots = nslots;
    a->nfree = nslots;
    for (size_t i = nslots; i < nw * 64; i++) {
        mark(a, i, 1); /* bits past the last slot are never chosen */
    }
    ms_arena **list = list_of(p, cls);
    a->next = *list;
    *list = a;
    if (cls != LARGE &&
        p->next_pages[cls] * ms_os_page_size() < MS_ARENA_MAX) {
        p->next_pages[cls] *= 2;
    }
    p->arenas++;
    p->mapped += data_len;
    *out = a;
    return MS_OK;
}

static void arena_destroy(ms_pool *p, ms_arena *a)
{
    ms_arena **link = list_of(p, a->cls);
    while (*link != NULL && *link != a) {
        link = &(*link)->next;
    }
    if (*link == a) {
        *link = a->next;
    }
    p->arenas--;
    p->mapped -= a->map.data_len;
    ms_oserr ignored;
    (void)ms_mapping_destroy(&a->map, &ignored);
    free(a);
}

/* Whether an arena may take a secret under this lock mode.  Pass 0 looks
 * for an arena locked as the mode asks (locked; unlocked under 'off', which
 * leaves the locked budget alone); pass 1, under 'warn' only, settles for
 * an unlocked arena rather than making a new one that would fail to lock
 * again. */
static int acceptable(const ms_arena *a, ms_lockmode mode, int pass)
{
    if (a->nfree == 0) {
        return 0;
    }
    if (mode == MS_LOCK_SKIP) {
        return !a->map.locked;
    }
    return a->map.locked || (pass == 1 && mode == MS_LOCK_TRY);
}

/* A uniformly random acceptable arena of the class (reservoir sampling),
 * or NULL.  -1 if the random stream failed. */
static int choose_arena(ms_pool *p, size_t cls, ms_lockmode mode,
                        ms_arena **out, ms_oserr *err)
{
    *out = NULL;
    for (int pass = 0; pass < 2 && *out == NULL; pass++) {
        uint32_t seen = 0;
        for (ms_arena *a = p->classes[cls]; a != NULL; a = a->next) {
            if (!acceptable(a, mode, pass)) {
                continue;
            }
            uint32_t r;
            if (ms_rng_below(&p->rng, ++seen, &r, err) != 0) {
                return -1;
            }
            if (r == 0) {
                *out = a;
            }
        }
    }
    return 0;
}

static void report_lock(const ms_arena *a, ms_lockresult *lr)
{
    lr->failed = !a->map.locked;
    lr->err = a->lock_err;
    if (lr->failed && lr->err.op == NULL) {
        lr->err.op = "mlock";
    }
}

static ms_status alloc_locked(ms_pool *p, size_t n, const ms_allocopts *opts,
                              ms_lockresult *lr, unsigned char **slot,
                              ms_arena **arena, ms_oserr *err)
{
    size_t cls = class_for(n);
    ms_arena *a = NULL;
    if (cls != LARGE &&
        choose_arena(p, cls, opts->lock, &a, err) != 0) {
        return MS_E_OS;
    }
    if (a == NULL) {
        ms_status st = arena_create(p, cls, n, opts, &a, err);
        if (st != MS_OK) {
            return st;
        }
    }
    uint32_t r = 0;
    if (a->nfree > 1 &&
        ms_rng_below(&p->rng, (uint32_t)a->nfree, &r, err) != 0) {
        return MS_E_OS;
    }
    size_t i = kth_free(a, r);
    mark(a, i, 1);
    a->nfree--;
    p->slots++;
    *slot = a->map.data + i * a->slot_len;
    *arena = a;
    /* The slot is written after this: a purge that wiped the arena before
     * must come back for it (registry.h, rule 4). */
    ms_registry_touch(a->map.ent);
    report_lock(a, lr);
    return MS_OK;
}

ms_status ms_pool_alloc(ms_pool *p, size_t n, const ms_allocopts *opts,
                        ms_lockresult *lr, unsigned char **slot,
                        ms_arena **arena, ms_oserr *err)
{
    lr->failed = 0;
    ms_mutex_lock(&p->lock);
    ms_status st = alloc_locked(p, n, opts, lr, slot, arena, err);
    ms_mutex_unlock(&p->lock);
    return st;
}

void ms_pool_free(ms_pool *p, ms_arena *a, unsigned char *slot)
{
    ms_mutex_lock(&p->lock);
    size_t i = (size_t)(slot - a->map.data) / a->slot_len;
    ms_os_wipe(slot, a->slot_len);
    mark(a, i, 0);
    a->nfree++;
    p->slots--;
    if (a->cls == LARGE) {
        arena_destroy(p, a);
    }
    ms_mutex_unlock(&p->lock);
}

size_t ms_arena_slot_len(const ms_arena *a)
{
    return a->slot_len;
}

int ms_arena_locked(const ms_arena *a)
{
    return a->map.locked;
}

int ms_arena_secretmem(const ms_arena *a)
{
    return a->map.secretmem;
}

const ms_mapping *ms_arena_mapping(const ms_arena *a)
{
    return &a->map;
}

/* An inherit pool in a fork child: its arenas are the child's own now
 * (ms_mapping_adopt); one that cannot be adopted is orphaned, and its
 * slots with it (the secrets in them find it out: ms_arena_adopted). */
static void adopt_arenas(ms_pool *p)
{
    ms_mutex_init(&p->lock);
    for (size_t c = 0; c <= MS_POOL_CLASSES; c++) {
        for (ms_arena *a = *list_of(p, c); a != NULL; a = a->next) {
            ms_oserr ignored;
            if (a->map.ent != NULL && ms_mapping_adopt(&a->map, &ignored) != 0) {
                ms_registry_orphan(a->map.ent);
                a->map.ent = NULL;
            }
        }
    }
}

int ms_arena_adopted(const ms_arena *a)
{
    return a->map.ent != NULL;
}

void ms_pool_fork_child(ms_pool *p)
{
    if (p->inherit) {
        adopt_arenas(p);
        ms_rng_forget(&p->rng); /* reseeded on next use */
        return;
    }
    /* The arenas' pages are the parent's (orphaned by the registry); their
     * bookkeeping is left behind: freeing it could take a malloc lock that
     * a thread of the parent held when it forked. */
    int secretmem = p->secretmem;
    unsigned long reseeds = p->rng.reseeds;
    ms_rng_forget(&p->rng);
    memset(p, 0, sizeof(*p));
    ms_mutex_init(&p->lock);
    p->secretmem = secretmem;
    p->rng.reseeds = reseeds;
}

static int arena_consistent(const ms_arena *a)
{
    size_t used = 0;
    for (size_t i = 0; i < a->nslots; i++) {
        used += (a->used[i / 64] >> (i % 64)) & 1u;
    }
    return used + a->nfree == a->nslots;
}

int ms_pool_check(ms_pool *p)
{
    size_t arenas = 0, mapped = 0, slots = 0;
    int bad = 0;
    ms_mutex_lock(&p->lock);
    for (size_t c = 0; c <= MS_POOL_CLASSES; c++) {
        for (ms_arena *a = *list_of(p, c); a != NULL; a = a->next) {
            bad |= !arena_consistent(a) || a->cls != c;
            arenas++;
            mapped += a->map.data_len;
            slots += a->nslots - a->nfree;
        }
    }
    bad |= arenas != p->arenas || mapped != p->mapped || slots != p->slots;
    ms_mutex_unlock(&p->lock);
    return bad ? -1 : 0;
}
