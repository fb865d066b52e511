/*
 * store.c - the storage interface and its window state machine (see
 * store.h), dispatching to the guarded and sealed engines.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "registry.h"
#include "scrub.h"

/* ---- fork="inherit" ---------------------------------------------------- */

/* Every LIVE inherit store of this process, for the fork hook.  Stores live
 * in Python objects, so the list is intrusive; the mutex is held across
 * fork (prepare/parent) so that the child never sees it half-changed. */
static ms_mutex inherit_mutex;
static ms_store *inherit_head;

static void inherit_link(ms_store *s)
{
    ms_mutex_lock(&inherit_mutex);
    s->inh_prev = NULL;
    s->inh_next = inherit_head;
    if (inherit_head != NULL) {
        inherit_head->inh_prev = s;
    }
    inherit_head = s;
    s->inh_linked = 1;
    ms_mutex_unlock(&inherit_mutex);
}

static void inherit_unlink_locked(ms_store *s)
{
    ms_store *prev = (ms_store *)s->inh_prev;
    ms_store *next = (ms_store *)s->inh_next;
    if (prev != NULL) {
        prev->inh_next = next;
    } else {
        inherit_head = next;
    }
    if (next != NULL) {
        next->inh_prev = prev;
    }
    s->inh_prev = s->inh_next = NULL;
    s->inh_linked = 0;
}

static void inherit_unlink(ms_store *s)
{
    if (!s->inh_linked) {
        return;
    }
    ms_mutex_lock(&inherit_mutex);
    inherit_unlink_locked(s);
    ms_mutex_unlock(&inherit_mutex);
}

static void inherit_prepare(void)
{
    ms_mutex_lock(&inherit_mutex);
}

static void inherit_parent(void)
{
    ms_mutex_unlock(&inherit_mutex);
}

static int store_idle(const ms_store *s);

/* Make one inherited store the child's own; MS_OK or why not. */
static ms_status adopt(ms_store *s, unsigned long gen)
{
    if (s->status != MS_STORE_LIVE || s->generation != gen ||
        !ms_registry_unchanged(s->epoch)) {
        return MS_E_FORKED;
    }
    if (!store_idle(s)) {
        return MS_E_BUSY; /* a window or a view was open at fork */
    }
    if (s->engine == MS_ENGINE_SEALED) {
        return ms_sealed_adopt(&s->u.z);
    }
    ms_oserr err;
    return ms_mapping_adopt(&s->u.g.map, &err) == 0 ? MS_OK : MS_E_OS;
}

/* Not adopted: an orphan, as with the default policy. */
static void orphan(ms_store *s)
{
    if (s->status != MS_STORE_LIVE) {
        return;
    }
    if (s->engine == MS_ENGINE_GUARDED && s->u.g.map.ent != NULL) {
        ms_registry_orphan(s->u.g.map.ent);
        s->u.g.map.ent = NULL;
    } else if (s->engine == MS_ENGINE_SEALED && s->u.z.slot != NULL &&
               ms_arena_adopted(s->u.z.arena)) {
        ms_os_wipe(s->u.z.slot, s->u.z.len + MS_SEAL_OVERHEAD);
    }
}

static void inherit_fork_child(void)
{
    ms_mutex_init(&inherit_mutex);
    unsigned long gen = ms_os_fork_generation_raw();
    ms_store *next;
    for (ms_store *s = inherit_head; s != NULL; s = next) {
        next = (ms_store *)s->inh_next;
        if (adopt(s, gen) == MS_OK) {
            s->generation = gen + 1; /* published right after the hooks */
        } else {
            orphan(s);
            inherit_unlink_locked(s);
        }
    }
    ms_seal_adopt_done();
}

void ms_core_init(void)
{
    ms_registry_init();
    ms_seal_init();
    ms_mutex_init(&inherit_mutex);
    ms_registry_on_fork_child(inherit_fork_child);
    ms_registry_on_fork_parent(inherit_prepare, inherit_parent);
}

/* ---- state ------------------------------------------------------------ */

static int is_orphan(const ms_store *s)
{
    return s->generation != ms_os_fork_generation();
}

/* Any purge started since the secret was born (registry.h, rules 1 and
 * 2: a full barrier first, so reads of its memory before this are
 * covered). */
static int is_purged(const ms_store *s)
{
    return !ms_registry_unchanged(s->epoch);
}

static int idle(const ms_store *s)
{
    return s->readers == 0 && !s->writer && ms_store_exports(s) == 0;
}

static int store_idle(const ms_store *s)
{
    return idle(s);
}

static ms_prot wanted_access(const ms_store *s)
{
    if (s->writer || s->exports_rw > 0) {
        return MS_PROT_RW;
    }
    if (s->readers > 0 || s->exports_ro > 0) {
        return MS_PROT_READ;
    }
    return MS_PROT_NONE;
}

/* ---- corruption ------------------------------------------------------- */

/* The process is corrupt (or under attack) and must not go on, as
 * libsodium's sodium_free does.  A purge wipes canaries and ciphertext
 * too: that is not corruption, and the callers check for it first; the
 * epoch is read again here because a purge may have run in between. */
static void corrupt(const ms_store *s)
{
    if (is_purged(s)) {
        return;
    }
    (void)fputs(s->engine == MS_ENGINE_GUARDED
                    ? "memsafe: canary in front of a secret was overwritten "
                      "(buffer underflow or memory corruption); aborting\n"
                    : "memsafe: a sealed secret failed to authenticate (its "
                      "ciphertext, tag or nonce was altered, moved or "
                      "corrupted); aborting\n",
                stderr);
    (void)fflush(stderr);
    abort();
}

static void check_integrity(const ms_store *s)
{
    if (s->engine == MS_ENGINE_GUARDED && !is_purged(s) &&
        !ms_guarded_intact(&s->u.g)) {
        corrupt(s);
    }
}

/* ---- engine dispatch -------------------------------------------------- */

static ms_status engine_create(ms_store *s, size_t len, unsigned long epoch,
                               const ms_allocopts *opts, ms_lockresult *lr,
                               ms_oserr *err)
{
    if (s->engine == MS_ENGINE_SEALED) {
        return ms_sealed_create(&s->u.z, len, epoch, opts, lr, err);
    }
    return ms_guarded_create(&s->u.g, len, opts, lr, err);
}

static ms_status engine_access(ms_store *s, ms_prot to, ms_oserr *err)
{
    if (s->engine == MS_ENGINE_SEALED) {
        ms_status st = ms_sealed_access(&s->u.z, s->access, to, s->epoch, err);
        if (st == MS_E_BROKEN) {
            corrupt(s);
            return MS_E_PURGED; /* wiped by a purge, not tampered with */
        }
        return st;
    }
    if (s->access == MS_PROT_RW && to != MS_PROT_RW && is_purged(s)) {
        /* Written after a purge wiped it (a write window that was open
         * meanwhile): wipe again, as the purge will not come back. */
        ms_os_wipe(ms_guarded_data(&s->u.g), s->len);
    }
    if (to == MS_PROT_NONE) {
        ms_scrub();
    }
    return ms_guarded_access(&s->u.g, to, err);
}

/* Wipe and release the engine's memory; check the canary first if asked
 * and the pages can be read. */
static int engine_destroy(ms_store *s, int check, ms_oserr *err)
{
    if (s->engine == MS_ENGINE_SEALED) {
        ms_sealed_destroy(&s->u.z);
        return 0;
    }
    /* Read-write at once: the canary is checked, then the pages are wiped
     * without another protection change. */
    if (check && s->access != MS_PROT_RW &&
        ms_guarded_access(&s->u.g, MS_PROT_RW, err) == MS_OK) {
        s->access = MS_PROT_RW;
    }
    if (check && s->access != MS_PROT_NONE) {
        check_integrity(s);
    }
    return ms_guarded_destroy(&s->u.g, err);
}

static unsigned char *engine_data(const ms_store *s)
{
    if (s->engine == MS_ENGINE_SEALED) {
        return ms_sealed_data(&s->u.z);
    }
    return ms_guarded_data(&s->u.g);
}

/* Access could not be taken away from unused memory: the secret would
 * stay readable.  Fail closed by destroying it. */
static void poison(ms_store *s)
{
    inherit_unlink(s);
    ms_oserr ignored;
    (void)engine_destroy(s, 0, &ignored);
    s->status = MS_STORE_BROKEN;
    s->access = MS_PROT_NONE;
}

/* Bring the memory to the access the state asks for. */
static ms_status apply_access(ms_store *s, ms_oserr *err)
{
    ms_prot want = wanted_access(s);
    if (want == s->access || s->status != MS_STORE_LIVE || is_orphan(s)) {
        return MS_OK;
    }
    ms_status st = engine_access(s, want, err);
    if (st != MS_OK) {
        /* Raising failed: the caller backs out.  Lowering to read-only
         * failed while windows or exports still use the memory: keep the
         * current access (the next state change tries again).  Lowering
         * to none failed with nobody using it: destroy the secret. */
        if (want == MS_PROT_NONE) {
            poison(s);
        }
        return st;
    }
    s->access = want;
    return MS_OK;
}

/* ---- lifetime --------------------------------------------------------- */

void ms_store_init(ms_store *s, ms_engine engine)
{
    memset(s, 0, sizeof(*s));
    ms_mutex_init(&s->lock);
    s->lock_generation = (intptr_t)ms_os_fork_generation();
    s->engine = engine;
    s->status = MS_STORE_EMPTY;
    s->access = MS_PROT_NONE;
}

void ms_store_fini(ms_store *s)
{
    inherit_unlink(s);
    if (ms_atomic_load(&s->lock_generation) ==
        (intptr_t)ms_os_fork_generation()) {
        ms_mutex_destroy(&s->lock);
    }
}

/* In a fork child the lock may have been copied while a thread of the
 * parent held it: it is made afresh once per generation (-1 while one
 * thread does so; the others wait). */
static void refresh_lock(ms_store *s, intptr_t seen, intptr_t gen)
{
    if (seen != -1 && ms_atomic_cas(&s->lock_generation, seen, -1)) {
        ms_mutex_init(&s->lock);
        ms_atomic_store(&s->lock_generation, gen);
        return;
    }
    while (ms_atomic_load(&s->lock_generation) == -1) {
        ms_mutex_yield();
    }
}

void ms_store_lock(ms_store *s)
{
    intptr_t gen = (intptr_t)ms_os_fork_generation();
    intptr_t seen = ms_atomic_load(&s->lock_generation);
    if (seen != gen) {
        refresh_lock(s, seen, gen);
    }
    ms_mutex_lock(&s->lock);
}

void ms_store_unlock(ms_store *s)
{
    ms_mutex_unlock(&s->lock);
}

void ms_store_inherit_epoch(ms_store *dst, const ms_store *src)
{
    if (src->epoch < dst->epoch) {
        dst->epoch = src->epoch;
    }
}

ms_status ms_store_usable(const ms_store *s)
{
    switch (s->status) {
    case MS_STORE_LIVE:
        if (is_orphan(s)) {
            return MS_E_FORKED;
        }
        return is_purged(s) ? MS_E_PURGED : MS_OK;
    case MS_STORE_BROKEN:
        return MS_E_BROKEN;
    case MS_STORE_EMPTY:
    case MS_STORE_CLOSED:
    default:
        return MS_E_CLOSED;
    }
}

/* Make the engine's memory: with a fill window open (src NULL), or
 * holding a copy of src sealed at rest (the sealed engine only). */
static ms_status make_live(ms_store *s, const unsigned char *src, size_t len,
                           const ms_allocopts *opts, ms_lockresult *lr,
                           ms_oserr *err)
{
    lr->failed = 0;
    if (s->status != MS_STORE_EMPTY) {
        return MS_E_STATE;
    }
    /* Born while no purge runs, and purged by any purge that starts from
     * now on, even one that starts while the memory is being made
     * (registry.h, rule 1). */
    unsigned long epoch = ms_registry_quiet_epoch();
    unsigned long generation = ms_os_fork_generation();
    ms_status st = src == NULL ? engine_create(s, len, epoch, opts, lr, err)
                               : ms_sealed_create_from(&s->u.z, src, len,
                                                       epoch, opts, lr, err);
    if (st != MS_OK) {
        return st;
    }
    MS_TESTPOINT("create");
    s->epoch = epoch;
    s->generation = generation;
    s->status = MS_STORE_LIVE;
    s->inherit = opts->inherit != 0;
    if (s->inherit) {
        inherit_link(s);
    }
    s->len = len;
    s->access = src == NULL ? MS_PROT_RW : MS_PROT_NONE;
    s->writer = src == NULL;
    return MS_OK;
}

ms_status ms_store_alloc(ms_store *s, size_t len, const ms_allocopts *opts,
                         ms_lockresult *lr, ms_oserr *err)
{
    return make_live(s, NULL, len, opts, lr, err);
}

ms_status ms_store_alloc_copy(ms_store *s, const unsigned char *src,
                              size_t len, const ms_allocopts *opts,
                              ms_lockresult *lr, ms_oserr *err)
{
    if (s->engine == MS_ENGINE_SEALED) {
        static const unsigned char nothing[1];
        return make_live(s, len > 0 ? src : nothing, len, opts, lr, err);
    }
    ms_status st = ms_store_alloc(s, len, opts, lr, err);
    if (st != MS_OK) {
        return st;
    }
    if (len > 0) {
        memcpy(ms_store_data(s), src, len);
    }
    return ms_store_close(s, MS_WINDOW_WRITE, err);
}

/* ---- growing ---------------------------------------------------------- */

ms_status ms_store_grow_prepare(ms_store *s, size_t extra,
                                const ms_allocopts *opts, ms_lockresult *lr,
                                ms_growth *g, ms_oserr *err)
{
    lr->failed = 0;
    ms_status st = ms_store_usable(s);
    if (st != MS_OK) {
        return st;
    }
    if (!idle(s)) {
        return MS_E_BUSY;
    }
    if (extra > SIZE_MAX - s->len) {
        err->code = 12;
        err->winerror = 0;
        err->op = NULL;
        return MS_E_NOMEM;
    }
    ms_store_init(&g->fresh, s->engine);
    g->old_len = s->len;
    ms_allocopts o = *opts;
    o.inherit = s->inherit; /* the secret's policy, not today's default */
    st = ms_store_alloc(&g->fresh, s->len + extra, &o, lr, err);
    if (st != MS_OK) {
        ms_store_fini(&g->fresh);
    }
    return st;
}

void ms_store_grow_abort(ms_growth *g)
{
    ms_oserr ignored;
    (void)ms_store_free(&g->fresh, 1, &ignored);
    ms_store_fini(&g->fresh);
}

ms_status ms_store_grow_commit(ms_store *s, ms_growth *g,
                               unsigned char **tail, ms_oserr *err)
{
    ms_status st = ms_store_usable(s);
    if (st == MS_OK && !idle(s)) {
        st = MS_E_BUSY;
    }
    if (st == MS_OK && s->len != g->old_len) {
        st = MS_E_CHANGED;
    }
    if (st == MS_OK) {
        st = engine_access(s, MS_PROT_READ, err);
    }
    if (st != MS_OK) {
        ms_store_grow_abort(g);
        return st;
    }
    s->access = MS_PROT_READ;
    check_integrity(s);
    if (s->len > 0) {
        memcpy(engine_data(&g->fresh), engine_data(s), s->len);
    }
    ms_oserr ignored;
    (void)engine_destroy(s, 0, &ignored);
    s->u = g->fresh.u;
    s->len = g->fresh.len;
    s->epoch = g->fresh.epoch;
    s->access = MS_PROT_RW;
    s->writer = 1;
    *tail = engine_data(s) + g->old_len;
    ms_store_fini(&g->fresh);
    return MS_OK;
}

/* ---- windows ---------------------------------------------------------- */

ms_status ms_store_open(ms_store *s, ms_window kind, ms_oserr *err)
{
    ms_status st = ms_store_usable(s);
    if (st != MS_OK) {
        return st;
    }
    if (kind == MS_WINDOW_WRITE) {
        if (!idle(s)) {
            return MS_E_BUSY;
        }
        s->writer = 1;
    } else {
        if (s->writer || s->exports_rw > 0) {
            return MS_E_BUSY;
        }
        s->readers++;
    }
    st = apply_access(s, err);
    if (st == MS_OK) {
        MS_TESTPOINT("window");
        /* A purge that started while the memory was being made accessible
         * may have wiped it: never hand that out as the secret. */
        st = is_purged(s) ? MS_E_PURGED : MS_OK;
    }
    if (st != MS_OK) {
        if (kind == MS_WINDOW_WRITE) {
            s->writer = 0;
        } else {
            s->readers--;
        }
        ms_oserr ignored; /* back to the access before (a no-op if the
                             raise itself failed) */
        (void)apply_access(s, &ignored);
    }
    return st;
}

ms_status ms_store_close(ms_store *s, ms_window kind, ms_oserr *err)
{
    if (s->status != MS_STORE_LIVE) {
        return MS_OK; /* closed or destroyed while the window was open */
    }
    if (kind == MS_WINDOW_WRITE ? !s->writer : s->readers == 0) {
        return MS_E_STATE;
    }
    MS_TESTPOINT("close");
    if (!is_orphan(s)) {
        check_integrity(s);
    }
    if (kind == MS_WINDOW_WRITE) {
        s->writer = 0;
    } else {
        s->readers--;
    }
    ms_status st = apply_access(s, err);
    if (st == MS_OK && !is_orphan(s) && is_purged(s)) {
        st = MS_E_PURGED;
    }
    return st;
}

int ms_store_window_open(const ms_store *s)
{
    return s->readers > 0 || s->writer;
}

ms_status ms_store_export(ms_store *s, int allow_rw, int want_rw,
                          int *writable)
{
    ms_status st = ms_store_usable(s);
    if (st != MS_OK) {
        return st;
    }
    if (!ms_store_window_open(s)) {
        return MS_E_NOWINDOW;
    }
    int rw = s->writer && allow_rw;
    if (want_rw && !rw) {
        return MS_E_READONLY;
    }
    if (rw) {
        s->exports_rw++;
    } else {
        s->exports_ro++;
    }
    *writable = rw;
    return MS_OK;
}

void ms_store_unexport(ms_store *s, int writable)
{
    if (writable && s->exports_rw > 0) {
        s->exports_rw--;
    } else if (!writable && s->exports_ro > 0) {
        s->exports_ro--;
    }
    ms_oserr ignored;
    (void)apply_access(s, &ignored);
}

size_t ms_store_exports(const ms_store *s)
{
    return s->exports_ro + s->exports_rw;
}

/* ---- freeing ---------------------------------------------------------- */

ms_status ms_store_free(ms_store *s, int force, ms_oserr *err)
{
    if (s->status != MS_STORE_LIVE) {
        if (s->status == MS_STORE_EMPTY) {
            s->status = MS_STORE_CLOSED;
        }
        return MS_OK;
    }
    if (is_orphan(s)) {
        /* Fork child: the pages are the parent's, made no-access here by
         * the registry; the bookkeeping is the parent's too. */
        inherit_unlink(s);
        memset(&s->u, 0, sizeof(s->u));
        s->status = MS_STORE_CLOSED;
        return MS_OK;
    }
    if (!idle(s)) {
        if (!force) {
            return MS_E_BUSY;
        }
        s->readers = 0;
        s->writer = 0;
        s->exports_ro = 0;
        s->exports_rw = 0;
    }
    inherit_unlink(s);
    int rc = engine_destroy(s, !is_purged(s), err);
    s->status = MS_STORE_CLOSED;
    s->access = MS_PROT_NONE;
    return rc == 0 ? MS_OK : MS_E_OS;
}

/* ---- introspection ---------------------------------------------------- */

unsigned char *ms_store_data(const ms_store *s)
{
    return engine_data(s);
}

size_t ms_store_len(const ms_store *s)
{
    return s->len;
}

int ms_store_locked(const ms_store *s)
{
    if (s->engine == MS_ENGINE_SEALED) {
        return s->u.z.locked;
    }
    return s->u.g.map.locked;
}

int ms_store_secretmem(const ms_store *s)
{
    if (s->engine == MS_ENGINE_SEALED) {
        return s->u.z.secretmem;
    }
    return s->u.g.map.secretmem;
}

size_t ms_store_info(const ms_store *s, ms_info_item *out)
{
    size_t n = 0;
    out[n++] = (ms_info_item){"len", s->len};
    out[n++] = (ms_info_item){"locked", (unsigned)ms_store_locked(s)};
    out[n++] = (ms_info_item){"secretmem", (unsigned)ms_store_secretmem(s)};
    if (s->engine == MS_ENGINE_SEALED) {
        n += ms_sealed_info(&s->u.z, out + n);
    } else {
        n += ms_guarded_info(&s->u.g, out + n);
    }
    return n;
}
