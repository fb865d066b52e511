/*
 * region.c - one guarded secret: layout, canary, protection state machine,
 * export counting, wipe-and-release.  See region.h for the rules.
 */
#include "region.h"
#include "scrub.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- layout ----------------------------------------------------------- */

/* Round n up to a multiple of the page size; 0 on overflow. */
static size_t round_to_pages(size_t n)
{
    size_t page = ms_os_page_size();
    if (n > SIZE_MAX - (page - 1)) {
        return 0;
    }
    return (n + page - 1) / page * page;
}

/* Data pages needed for len bytes plus the canary, or 0 if too large. */
static size_t data_size_for(size_t len)
{
    size_t page = ms_os_page_size();
    if (len > SIZE_MAX - MS_CANARY_LEN - 2 * page) {
        return 0;
    }
    return round_to_pages(len + MS_CANARY_LEN);
}

static unsigned char *canary_of(const ms_mapping *m)
{
    return m->secret - MS_CANARY_LEN;
}

/* ---- canary ----------------------------------------------------------- */

static int canary_intact(const ms_mapping *m, const unsigned char *expect)
{
    const unsigned char *c = canary_of(m);
    unsigned char diff = 0;
    for (size_t i = 0; i < MS_CANARY_LEN; i++) {
        diff |= (unsigned char)(c[i] ^ expect[i]);
    }
    return diff == 0;
}

/* Memory in front of the secret was overwritten: the process is corrupt
 * and must not go on (as libsodium's sodium_free does). */
static void canary_check_or_abort(const ms_mapping *m,
                                  const unsigned char *expect)
{
    if (canary_intact(m, expect)) {
        return;
    }
    (void)fputs("memsafe: canary in front of a secret was overwritten "
                "(buffer underflow or memory corruption); aborting\n",
                stderr);
    (void)fflush(stderr);
    abort();
}

/* ---- mappings --------------------------------------------------------- */

static void mapping_clear(ms_mapping *m)
{
    memset(m, 0, sizeof(*m));
}

static void lock_pages(ms_mapping *m, ms_lockmode mode, ms_lockresult *lr,
                       ms_oserr *err)
{
    lr->failed = 0;
    if (mode == MS_LOCK_SKIP) {
        lr->failed = 1;
        lr->err.code = 0;
        lr->err.winerror = 0;
        lr->err.op = "none (lock policy 'off')";
        return;
    }
    if (ms_os_lock(m->data, m->data_len, &lr->err) == 0 ||
        (ms_os_raise_lock_limit(m->data_len) &&
         ms_os_lock(m->data, m->data_len, &lr->err) == 0)) {
        m->locked = 1;
        return;
    }
    lr->failed = 1;
    *err = lr->err;
}

/* Reserve, open the data pages read-write, harden and lock them.  On
 * success the pages are read-write and zero; on failure nothing is left. */
static ms_status mapping_create(ms_mapping *m, size_t len, ms_lockmode mode,
                                ms_lockresult *lr, ms_oserr *err)
{
    size_t page = ms_os_page_size();
    size_t data_len = data_size_for(len);
    if (data_len == 0 || data_len > SIZE_MAX - 2 * page) {
        err->code = ENOMEM;
        err->winerror = 0;
        err->op = NULL;
        return MS_E_NOMEM;
    }
    mapping_clear(m);
    void *base = NULL;
    if (ms_os_reserve(data_len + 2 * page, &base, err) != 0) {
        return err->code == ENOMEM ? MS_E_NOMEM : MS_E_OS;
    }
    m->base = (unsigned char *)base;
    m->total = data_len + 2 * page;
    m->data = m->base + page;
    m->data_len = data_len;
    m->len = len;
    m->secret = m->data + data_len - len;
    if (ms_os_protect(m->data, data_len, MS_PROT_RW, err) != 0 ||
        ms_os_harden(m->data, data_len, err) != 0) {
        ms_oserr ignored;
        (void)ms_os_release(m->base, m->total, &ignored);
        mapping_clear(m);
        /* ENOMEM making fresh pages writable: out of commit charge. */
        return err->code == ENOMEM ? MS_E_NOMEM : MS_E_OS;
    }
    lock_pages(m, mode, lr, err);
    if (lr->failed && mode == MS_LOCK_REQUIRED) {
        ms_oserr ignored;
        (void)ms_os_release(m->base, m->total, &ignored);
        mapping_clear(m);
        return MS_E_LOCK;
    }
    return MS_OK;
}

/* Wipe and give back a mapping whose pages are read-write.  Errors from
 * unlock are ignored (release unlocks too); the first error is reported. */
static int mapping_wipe_release(ms_mapping *m, ms_oserr *err)
{
    ms_scrub();
    ms_os_wipe(m->data, m->data_len);
    if (m->locked) {
        ms_oserr ignored;
        (void)ms_os_unlock(m->data, m->data_len, &ignored);
    }
    int rc = ms_os_release(m->base, m->total, err);
    if (rc != 0) {
        /* The pages hold zeros now, but stay mapped: at least take every
         * access away so they cannot be mistaken for usable memory. */
        ms_oserr ignored;
        (void)ms_os_protect(m->data, m->data_len, MS_PROT_NONE, &ignored);
    }
    mapping_clear(m);
    return rc;
}

/* Make the pages writable, check the canary (when expect is given), then
 * wipe and release them.  If they cannot be
 * made writable they are released unwiped: unmapped pages are out of reach
 * of this process, which is the best that is left. */
static int mapping_destroy(ms_mapping *m, ms_prot current,
                           const unsigned char *expect, ms_oserr *err)
{
    if (current != MS_PROT_RW &&
        ms_os_protect(m->data, m->data_len, MS_PROT_RW, err) != 0) {
        ms_oserr ignored;
        (void)ms_os_release(m->base, m->total, &ignored);
        mapping_clear(m);
        return -1;
    }
    if (expect != NULL) {
        canary_check_or_abort(m, expect);
    }
    return mapping_wipe_release(m, err);
}

/* ---- protection state machine ----------------------------------------- */

static ms_prot wanted_prot(const ms_region *r)
{
    if (r->writer || r->exports_rw > 0) {
        return MS_PROT_RW;
    }
    if (r->readers > 0 || r->exports_ro > 0) {
        return MS_PROT_READ;
    }
    return MS_PROT_NONE;
}

static int is_orphan(const ms_region *r)
{
    return r->generation != ms_os_fork_generation();
}

/* Protection could not be lowered: the secret would stay readable.  Fail
 * closed by destroying it (wipe if at all possible, then release). */
static void poison(ms_region *r)
{
    ms_oserr ignored;
    (void)mapping_destroy(&r->map, r->prot, NULL, &ignored);
    r->status = MS_REGION_BROKEN;
    r->prot = MS_PROT_NONE;
}

/* Bring the pages to the protection the state asks for. */
static ms_status apply_prot(ms_region *r, ms_oserr *err)
{
    ms_prot want = wanted_prot(r);
    if (want == r->prot || is_orphan(r) || r->status != MS_REGION_LIVE) {
        return MS_OK;
    }
    if (want == MS_PROT_NONE) {
        ms_scrub();
    }
    if (ms_os_protect(r->map.data, r->map.data_len, want, err) != 0) {
        /* Raising failed: the caller backs out.  Lowering to read-only
         * failed while windows or exports still use the pages: keep the
         * current protection (the next state change tries again); nobody
         * may touch unmapped memory.  Lowering to no-access failed with
         * nobody using the pages: destroy the secret. */
        if (want == MS_PROT_NONE) {
            poison(r);
        }
        return MS_E_OS;
    }
    r->prot = want;
    return MS_OK;
}

/* ---- public ----------------------------------------------------------- */

void ms_region_init(ms_region *r)
{
    memset(r, 0, sizeof(*r));
    ms_mutex_init(&r->lock);
    r->status = MS_REGION_EMPTY;
    r->prot = MS_PROT_NONE;
}

void ms_region_fini(ms_region *r)
{
    ms_mutex_destroy(&r->lock);
}

void ms_region_lock(ms_region *r)
{
    ms_mutex_lock(&r->lock);
}

void ms_region_unlock(ms_region *r)
{
    ms_mutex_unlock(&r->lock);
}

ms_status ms_region_usable(const ms_region *r)
{
    switch (r->status) {
    case MS_REGION_LIVE:
        return is_orphan(r) ? MS_E_FORKED : MS_OK;
    case MS_REGION_BROKEN:
        return MS_E_BROKEN;
    case MS_REGION_EMPTY:
    case MS_REGION_CLOSED:
    default:
        return MS_E_CLOSED;
    }
}

ms_status ms_region_alloc(ms_region *r, size_t len, ms_lockmode mode,
                          ms_lockresult *lr, ms_oserr *err)
{
    if (r->status != MS_REGION_EMPTY) {
        return MS_E_STATE;
    }
    ms_status st = mapping_create(&r->map, len, mode, lr, err);
    if (st != MS_OK) {
        return st;
    }
    if (ms_os_random(r->canary, MS_CANARY_LEN, err) != 0) {
        ms_oserr ignored;
        (void)mapping_wipe_release(&r->map, &ignored);
        return MS_E_OS;
    }
    memcpy(canary_of(&r->map), r->canary, MS_CANARY_LEN);
    r->status = MS_REGION_LIVE;
    r->generation = ms_os_fork_generation();
    r->prot = MS_PROT_RW;
    r->writer = 1;
    return MS_OK;
}

static int idle(const ms_region *r)
{
    return r->readers == 0 && !r->writer && ms_region_exports(r) == 0;
}

ms_status ms_region_grow(ms_region *r, size_t extra, ms_lockmode mode,
                         ms_lockresult *lr, unsigned char **tail,
                         ms_oserr *err)
{
    ms_status st = ms_region_usable(r);
    if (st != MS_OK) {
        return st;
    }
    if (!idle(r)) {
        return MS_E_BUSY;
    }
    if (extra > SIZE_MAX - r->map.len) {
        return MS_E_NOMEM;
    }
    ms_mapping fresh;
    st = mapping_create(&fresh, r->map.len + extra, mode, lr, err);
    if (st != MS_OK) {
        return st;
    }
    if (ms_os_protect(r->map.data, r->map.data_len, MS_PROT_READ, err) != 0) {
        ms_oserr ignored;
        (void)mapping_wipe_release(&fresh, &ignored);
        return MS_E_OS;
    }
    canary_check_or_abort(&r->map, r->canary);
    memcpy(fresh.secret, r->map.secret, r->map.len);
    ms_oserr ignored;
    (void)mapping_destroy(&r->map, MS_PROT_READ, NULL, &ignored);
    r->map = fresh;
    memcpy(canary_of(&r->map), r->canary, MS_CANARY_LEN);
    r->prot = MS_PROT_RW;
    r->writer = 1;
    *tail = r->map.secret + r->map.len - extra;
    return MS_OK;
}

ms_status ms_region_open(ms_region *r, ms_window kind, ms_oserr *err)
{
    ms_status st = ms_region_usable(r);
    if (st != MS_OK) {
        return st;
    }
    if (kind == MS_WINDOW_WRITE) {
        if (!idle(r)) {
            return MS_E_BUSY;
        }
        r->writer = 1;
    } else {
        if (r->writer || r->exports_rw > 0) {
            return MS_E_BUSY;
        }
        r->readers++;
    }
    st = apply_prot(r, err);
    if (st != MS_OK) {
        if (kind == MS_WINDOW_WRITE) {
            r->writer = 0;
        } else {
            r->readers--;
        }
    }
    return st;
}

ms_status ms_region_close(ms_region *r, ms_window kind, ms_oserr *err)
{
    if (r->status != MS_REGION_LIVE) {
        return MS_OK; /* closed or destroyed while the window was open */
    }
    if (kind == MS_WINDOW_WRITE ? !r->writer : r->readers == 0) {
        return MS_E_STATE;
    }
    if (!is_orphan(r)) {
        canary_check_or_abort(&r->map, r->canary);
    }
    if (kind == MS_WINDOW_WRITE) {
        r->writer = 0;
    } else {
        r->readers--;
    }
    return apply_prot(r, err);
}

int ms_region_window_open(const ms_region *r)
{
    return r->readers > 0 || r->writer;
}

ms_status ms_region_export(ms_region *r, int allow_rw, int want_rw,
                           int *writable)
{
    ms_status st = ms_region_usable(r);
    if (st != MS_OK) {
        return st;
    }
    if (!ms_region_window_open(r)) {
        return MS_E_NOWINDOW;
    }
    int rw = r->writer && allow_rw;
    if (want_rw && !rw) {
        return MS_E_READONLY;
    }
    if (rw) {
        r->exports_rw++;
    } else {
        r->exports_ro++;
    }
    *writable = rw;
    return MS_OK;
}

void ms_region_unexport(ms_region *r, int writable)
{
    if (writable && r->exports_rw > 0) {
        r->exports_rw--;
    } else if (!writable && r->exports_ro > 0) {
        r->exports_ro--;
    }
    ms_oserr ignored;
    (void)apply_prot(r, &ignored);
}

size_t ms_region_exports(const ms_region *r)
{
    return r->exports_ro + r->exports_rw;
}

unsigned char *ms_region_data(const ms_region *r)
{
    return r->map.secret;
}

size_t ms_region_len(const ms_region *r)
{
    return r->map.len;
}

ms_status ms_region_free(ms_region *r, int force, ms_oserr *err)
{
    if (r->status != MS_REGION_LIVE) {
        if (r->status == MS_REGION_EMPTY) {
            r->status = MS_REGION_CLOSED;
        }
        return MS_OK;
    }
    if (is_orphan(r)) {
        /* Fork child: the pages were wiped (or not inherited) by the
         * kernel and may not be ours to unmap.  Leave them alone. */
        memset(&r->map, 0, sizeof(r->map));
        r->status = MS_REGION_CLOSED;
        return MS_OK;
    }
    if (!idle(r)) {
        if (!force) {
            return MS_E_BUSY;
        }
        r->readers = 0;
        r->writer = 0;
        r->exports_ro = 0;
        r->exports_rw = 0;
    }
    int rc = mapping_destroy(&r->map, r->prot, r->canary, err);
    ms_os_wipe(r->canary, MS_CANARY_LEN);
    r->status = MS_REGION_CLOSED;
    r->prot = MS_PROT_NONE;
    return rc == 0 ? MS_OK : MS_E_OS;
}
