/*
 * mapping.c - fenced, hardened blocks of secret pages (see mapping.h).
 */
#include "mapping.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "scrub.h"

size_t ms_pages_for(size_t n)
{
    size_t page = ms_os_page_size();
    if (n > SIZE_MAX - (page - 1)) {
        return 0;
    }
    return (n + page - 1) / page * page;
}

static void mapping_clear(ms_mapping *m)
{
    memset(m, 0, sizeof(*m));
}

static ms_status nomem_or_os(const ms_oserr *err)
{
    return err->code == ENOMEM ? MS_E_NOMEM : MS_E_OS;
}

static void skip_lock(ms_lockresult *lr)
{
    lr->failed = 1;
    lr->err.code = 0;
    lr->err.winerror = 0;
    lr->err.op = "none (lock policy 'off')";
}

static void lock_pages(ms_mapping *m, ms_lockmode mode, ms_lockresult *lr)
{
    if (mode == MS_LOCK_SKIP) {
        skip_lock(lr);
        return;
    }
    if (ms_os_lock(m->data, m->data_len, &lr->err) == 0 ||
        (ms_os_raise_lock_limit(m->data_len) &&
         ms_os_lock(m->data, m->data_len, &lr->err) == 0)) {
        m->locked = 1;
        return;
    }
    lr->failed = 1;
}

/* Give back a reservation whose data pages were never written. */
static void discard(ms_mapping *m)
{
    ms_oserr ignored;
    (void)ms_os_release(m->base, m->total, &ignored);
    mapping_clear(m);
}

/* A failed MAP_FIXED of memfd_secret may have unmapped the data pages
 * already: reserve them again.  If even that fails, give back the guard
 * pages too (nothing is left) and report it. */
static ms_status refill_hole(ms_mapping *m, ms_oserr *err)
{
    if (ms_os_reserve_at(m->data, m->data_len, err) == 0) {
        return MS_OK;
    }
    ms_oserr ignored;
    size_t page = ms_os_page_size();
    (void)ms_os_release(m->base, page, &ignored);
    (void)ms_os_release(m->data + m->data_len, page, &ignored);
    mapping_clear(m);
    return nomem_or_os(err);
}

/* memfd_secret pages in place of the data pages: 0 done, 1 not done (why
 * says why), -1 failed with nothing left. */
static int map_secretmem(ms_mapping *m, ms_oserr *why, ms_oserr *err,
                         ms_status *st)
{
    why->code = ENOSYS;
    why->winerror = 0;
    why->op = "memfd_secret";
    if (!ms_os_secretmem_offered()) {
        return 1;
    }
    for (int attempt = 0;; attempt++) {
        if (ms_os_secretmem_map(m->data, m->data_len, why) == 0) {
            m->secretmem = 1;
            m->locked = 1; /* the kernel locks secretmem pages */
            return 0;
        }
        *st = refill_hole(m, err);
        if (*st != MS_OK) {
            return -1;
        }
        /* Over RLIMIT_MEMLOCK: raise the soft limit once and retry. */
        if (why->code != EAGAIN || attempt > 0 ||
            !ms_os_raise_lock_limit(m->data_len)) {
            return 1;
        }
    }
}

/* Turn the data pages into memfd_secret pages where the policy asks for
 * it.  MS_OK with or without m->secretmem set (the fallback is ordinary
 * pages), or a failure with nothing left. */
static ms_status try_secretmem(ms_mapping *m, const ms_allocopts *opts,
                               ms_lockresult *lr, ms_oserr *err)
{
    if (opts->secretmem == MS_SECRETMEM_OFF) {
        return MS_OK;
    }
    ms_oserr why;
    ms_status st = MS_OK;
    int rc = map_secretmem(m, &why, err, &st);
    if (rc <= 0) {
        return st;
    }
    /* Not offered, or over RLIMIT_MEMLOCK (EAGAIN): under "prefer" the
     * fallback is ordinary pages, whose locking the lock policy judges as
     * for any other secret; under "require" it is an error (a lock failure
     * for EAGAIN). */
    if (opts->secretmem == MS_SECRETMEM_PREFER) {
        return MS_OK;
    }
    *err = why;
    if (why.code == EAGAIN) {
        lr->failed = 1;
        lr->err = why;
        discard(m);
        return MS_E_LOCK;
    }
    discard(m);
    return MS_E_SECRETMEM;
}

ms_status ms_mapping_create(ms_mapping *m, size_t data_len,
                            const ms_allocopts *opts, ms_lockresult *lr,
                            ms_oserr *err)
{
    size_t page = ms_os_page_size();
    lr->failed = 0;
    mapping_clear(m);
    if (data_len == 0 || data_len > SIZE_MAX - 2 * page) {
        err->code = ENOMEM;
        err->winerror = 0;
        err->op = NULL;
        return MS_E_NOMEM;
    }
    void *base = NULL;
    if (ms_os_reserve(data_len + 2 * page, &base, err) != 0) {
        return nomem_or_os(err);
    }
    m->base = (unsigned char *)base;
    m->total = data_len + 2 * page;
    m->data = m->base + page;
    m->data_len = data_len;
    ms_status st = try_secretmem(m, opts, lr, err);
    if (st != MS_OK) {
        return st;
    }
    int dontfork = 0;
    int hflags = (m->secretmem ? MS_HARDEN_SHARED : 0) |
                 (opts->inherit ? MS_HARDEN_INHERIT : 0);
    if (ms_os_protect(m->data, data_len, MS_PROT_RW, err) != 0 ||
        ms_os_harden(m->data, data_len, hflags, &dontfork, err) != 0) {
        st = nomem_or_os(err); /* ENOMEM here: out of commit charge */
        discard(m);
        return st;
    }
    m->prot = MS_PROT_RW;
    if (!m->secretmem) {
        lock_pages(m, opts->lock, lr);
        if (lr->failed && opts->lock == MS_LOCK_REQUIRED) {
            *err = lr->err;
            discard(m);
            return MS_E_LOCK;
        }
    }
    m->inherit = opts->inherit != 0;
    m->ent = ms_registry_add(m->data, data_len, MS_PROT_RW,
                             m->inherit ? MS_FORK_INHERIT
                             : dontfork ? MS_FORK_HOLE
                                        : MS_FORK_WIPED);
    if (m->ent == NULL) {
        discard(m);
        err->code = ENOMEM;
        err->winerror = 0;
        err->op = "the registry of secret memory";
        return MS_E_NOMEM;
    }
    return MS_OK;
}

int ms_mapping_adopt(ms_mapping *m, ms_oserr *err)
{
    if (m->secretmem) {
        return ms_os_secretmem_unshare(m->data, m->data_len, m->prot, err);
    }
    if (!m->locked) {
        return 0;
    }
    /* No-access pages cannot be locked (mlock faults them in): readable
     * for the call, which keeps them shared with the parent until either
     * writes, then back. */
    int rc = -1;
    ms_oserr ignored;
    if (m->prot == MS_PROT_NONE &&
        ms_os_protect(m->data, m->data_len, MS_PROT_READ, err) != 0) {
        return -1;
    }
    if (ms_os_lock(m->data, m->data_len, err) == 0 ||
        (ms_os_raise_lock_limit(m->data_len) &&
         ms_os_lock(m->data, m->data_len, err) == 0)) {
        rc = 0;
    }
    if (m->prot == MS_PROT_NONE &&
        ms_os_protect(m->data, m->data_len, MS_PROT_NONE, &ignored) != 0) {
        rc = -1; /* the caller orphans it, which retries no-access */
    }
    return rc;
}

int ms_mapping_lock(ms_mapping *m, ms_lockresult *lr)
{
    lr->failed = 0;
    if (m->locked) {
        return 0;
    }
    lock_pages(m, MS_LOCK_REQUIRED, lr);
    return lr->failed ? -1 : 0;
}

int ms_mapping_protect(ms_mapping *m, ms_prot prot, ms_oserr *err)
{
    ms_registry_claim(m->ent);
    ms_registry_set_prot(m->ent, prot);
    MS_TESTPOINT("protect"); /* a signal's purge here: the pages are not
                                yet at the protection the entry says */
    int rc = ms_os_protect(m->data, m->data_len, prot, err);
    if (rc == 0) {
        m->prot = prot;
    } else {
        ms_registry_set_prot(m->ent, m->prot);
    }
    ms_registry_release(m->ent);
    return rc;
}

int ms_mapping_destroy(ms_mapping *m, ms_oserr *err)
{
    int rc = 0;
    if (m->prot != MS_PROT_RW && ms_mapping_protect(m, MS_PROT_RW, err) != 0) {
        ms_registry_remove(m->ent);
        ms_oserr ignored;
        (void)ms_os_release(m->base, m->total, &ignored);
        mapping_clear(m);
        return -1;
    }
    ms_scrub();
    ms_os_wipe(m->data, m->data_len);
    if (m->locked && !m->secretmem) {
        ms_oserr ignored;
        (void)ms_os_unlock(m->data, m->data_len, &ignored);
    }
    ms_registry_remove(m->ent);
    if (ms_os_release(m->base, m->total, err) != 0) {
        /* The pages hold zeros now, but stay mapped: at least take every
         * access away so they cannot be mistaken for usable memory. */
        ms_oserr ignored;
        (void)ms_os_protect(m->data, m->data_len, MS_PROT_NONE, &ignored);
        rc = -1;
    }
    mapping_clear(m);
    return rc;
}
