/*
 * seal.c - the sealed engine (see seal.h).
 */
#include "seal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "atomic.h"
#include "chacha20poly1305.h"
#include "key.h"
#include "registry.h"
#include "scrub.h"

/* Kinds of sealed memory: bit 0, memfd_secret pages; bit 1, fork="inherit"
 * (arenas and key a fork child adopts).  A secret's slot and its key
 * always come from the same kind, its plaintext slot from the window pool
 * of the same memory (window arenas are never inherited). */
#define KINDS 4
static ms_pool cipher_pools[KINDS];
static ms_pool window_pools[2];
static ms_key keys[KINDS];

/* In a fork child, between the seal layer's hook and the store layer's:
 * the parent's inherit keys, for the adopted secrets to be re-sealed under
 * the child's own (ms_sealed_adopt); wiped by ms_seal_adopt_done. */
static unsigned char adopt_old[2][MS_KEY_LEN];
static int adopt_have[2];

#define AD_LEN 16

static int kind_of(const ms_sealed *z)
{
    return z->secretmem + 2 * z->inherit;
}

static void fork_child(void)
{
    for (int i = 0; i < 2; i++) {
        ms_pool_fork_child(&cipher_pools[i]);
        ms_pool_fork_child(&window_pools[i]);
        ms_key_fork_child(&keys[i]);
    }
    for (int i = 2; i < KINDS; i++) {
        ms_pool_fork_child(&cipher_pools[i]); /* adopts its arenas */
        adopt_have[i - 2] = ms_key_fork_rekey(&keys[i], adopt_old[i - 2]) == 1;
    }
}

void ms_seal_init(void)
{
    for (int i = 0; i < KINDS; i++) {
        ms_pool_init(&cipher_pools[i], i & 1, i >> 1);
        ms_key_init(&keys[i], i >> 1);
    }
    for (int i = 0; i < 2; i++) {
        ms_pool_init(&window_pools[i], i, 0);
    }
    ms_registry_on_fork_child(fork_child);
}

/* ---- sealing and opening ---------------------------------------------- */

static void put_le64(unsigned char *p, uint64_t v)
{
    for (size_t i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* The slot's identity and the length: a ciphertext is valid only where
 * it was sealed. */
static void make_ad(const ms_sealed *z, unsigned char ad[AD_LEN])
{
    put_le64(ad, (uint64_t)(uintptr_t)z->slot);
    put_le64(ad + 8, (uint64_t)z->len);
}

static unsigned char *ct_of(const ms_sealed *z)
{
    return z->slot + MS_AEAD_NONCE_LEN;
}

static unsigned char *tag_of(const ms_sealed *z)
{
    return z->slot + MS_AEAD_NONCE_LEN + z->len;
}

/* Seal len plaintext bytes from plain (z->plain, or the source of a
 * copy) into the slot under a fresh nonce, with the live key of the
 * secret's purge epoch (key.h, K1 and K2).  MS_E_PURGED if a purge started
 * since that epoch: nothing was sealed under wiped halves, and whatever
 * reached the slot is wiped. */
static ms_status seal_from(ms_sealed *z, const unsigned char *plain,
                           unsigned long epoch)
{
    ms_key *k = &keys[kind_of(z)];
    unsigned char key[MS_KEY_LEN];
    unsigned char ad[AD_LEN];
    unsigned char nonce[MS_AEAD_NONCE_LEN];
    if (!ms_key_live(k, epoch)) {
        return MS_E_PURGED;
    }
    if (ms_key_nonce(k, nonce) != 0) {
        return MS_E_NONCE;
    }
    MS_TESTPOINT("seal");
    make_ad(z, ad);
    ms_key_rebuild(k, key);
    MS_TESTPOINT("seal-key");
    if (!ms_registry_unchanged(epoch)) {
        ms_os_wipe(key, sizeof(key));
        return MS_E_PURGED;
    }
    (void)ms_aead_seal(key, nonce, ad, sizeof(ad), plain, z->len, ct_of(z),
                       tag_of(z));
    ms_os_wipe(key, sizeof(key));
    memcpy(z->slot, nonce, sizeof(nonce));
    memcpy(z->nonce, nonce, sizeof(nonce));
    if (!ms_registry_unchanged(epoch)) {
        /* Sealed under the live key, which the purge is now wiping: the
         * secret is purged, and its slot is wiped like the rest. */
        ms_os_wipe(z->slot, z->len + MS_SEAL_OVERHEAD);
        return MS_E_PURGED;
    }
    return MS_OK;
}

/* Decrypt the slot into z->plain with the live key of the secret's purge
 * epoch.  MS_E_PURGED if a purge started since that epoch (whatever the
 * slot held then; z->plain is wiped).  MS_E_BROKEN if the nonce is not the
 * one expected (an old ciphertext put back) or the tag fails (altered,
 * moved, or corrupted memory) while no purge ran; z->plain is left
 * untouched then. */
static ms_status open_slot(ms_sealed *z, unsigned long epoch)
{
    if (!ms_key_live(&keys[kind_of(z)], epoch)) {
        return MS_E_PURGED;
    }
    if (memcmp(z->slot, z->nonce, MS_AEAD_NONCE_LEN) != 0) {
        return ms_registry_unchanged(epoch) ? MS_E_BROKEN : MS_E_PURGED;
    }
    ms_key *k = &keys[kind_of(z)];
    unsigned char key[MS_KEY_LEN];
    unsigned char ad[AD_LEN];
    make_ad(z, ad);
    ms_key_rebuild(k, key);
    MS_TESTPOINT("open-key");
    int rc = ms_registry_unchanged(epoch)
                 ? ms_aead_open(key, z->nonce, ad, sizeof(ad), ct_of(z),
                                z->len, tag_of(z), z->plain)
                 : -2;
    ms_os_wipe(key, sizeof(key));
    if (!ms_registry_unchanged(epoch)) {
        ms_os_wipe(z->plain, z->len);
        return MS_E_PURGED;
    }
    return rc == 0 ? MS_OK : MS_E_BROKEN;
}

/* ---- plaintext slots --------------------------------------------------- */

static ms_status plain_alloc(ms_sealed *z, ms_lockmode mode, ms_lockresult *lr,
                             ms_oserr *err)
{
    ms_allocopts o = {mode, MS_SECRETMEM_OFF, 0}; /* never inherited */
    size_t n = z->len > 0 ? z->len : 1;
    return ms_pool_alloc(&window_pools[z->secretmem], n, &o, lr, &z->plain,
                         &z->parena, err);
}

static void plain_free(ms_sealed *z)
{
    ms_scrub();
    ms_pool_free(&window_pools[z->secretmem], z->parena, z->plain);
    z->plain = NULL;
    z->parena = NULL;
}

/* ---- creation --------------------------------------------------------- */

static void merge_lock(ms_lockresult *into, const ms_lockresult *lr)
{
    if (lr->failed && !into->failed) {
        *into = *lr;
    }
}

/* The key, a cipher slot and (with_plain) a plaintext slot, in memfd_secret
 * memory or not (sm). */
static ms_status create_in(ms_sealed *z, int sm, int with_plain,
                           unsigned long epoch, const ms_allocopts *opts,
                           ms_lockresult *lr, ms_oserr *err)
{
    ms_lockresult klr, clr, plr;
    z->secretmem = sm;
    z->inherit = opts->inherit != 0;
    int kind = kind_of(z);
    /* The key's halves are the same kind of memory as the arenas. */
    ms_allocopts ko = {opts->lock,
                       sm ? MS_SECRETMEM_REQUIRE : MS_SECRETMEM_OFF,
                       z->inherit};
    ms_status st = ms_key_prepare(&keys[kind], epoch, &ko, &klr, err);
    if (st != MS_OK) {
        *lr = klr;
        return st;
    }
    ms_allocopts o = {opts->lock, MS_SECRETMEM_OFF, z->inherit};
    st = ms_pool_alloc(&cipher_pools[kind], z->len + MS_SEAL_OVERHEAD, &o,
                       &clr, &z->slot, &z->arena, err);
    if (st != MS_OK) {
        *lr = clr;
        return st;
    }
    plr.failed = 0;
    st = with_plain ? plain_alloc(z, opts->lock, &plr, err) : MS_OK;
    if (st != MS_OK) {
        ms_pool_free(&cipher_pools[kind], z->arena, z->slot);
        z->slot = NULL;
        *lr = plr;
        return st;
    }
    lr->failed = 0;
    merge_lock(lr, &klr);
    merge_lock(lr, &clr);
    merge_lock(lr, &plr);
    z->locked = !lr->failed;
    return MS_OK;
}

static ms_status create(ms_sealed *z, size_t len, int with_plain,
                        unsigned long epoch, const ms_allocopts *opts,
                        ms_lockresult *lr, ms_oserr *err)
{
    memset(z, 0, sizeof(*z));
    lr->failed = 0;
    if (len > SIZE_MAX - MS_SEAL_OVERHEAD - ms_os_page_size() ||
        (uint64_t)len > MS_AEAD_MAX_LEN) {
        err->code = ENOMEM;
        err->winerror = 0;
        err->op = NULL;
        return MS_E_NOMEM;
    }
    z->len = len;
    if (opts->secretmem == MS_SECRETMEM_OFF) {
        return create_in(z, 0, with_plain, epoch, opts, lr, err);
    }
    if (!ms_os_secretmem_offered()) {
        if (opts->secretmem == MS_SECRETMEM_REQUIRE) {
            err->code = ENOSYS;
            err->winerror = 0;
            err->op = "memfd_secret";
            return MS_E_SECRETMEM;
        }
        return create_in(z, 0, with_plain, epoch, opts, lr, err);
    }
    ms_status st = create_in(z, 1, with_plain, epoch, opts, lr, err);
    if (st != MS_OK && st != MS_E_PURGED &&
        opts->secretmem == MS_SECRETMEM_PREFER) {
        z->len = len;
        st = create_in(z, 0, with_plain, epoch, opts, lr, err);
    }
    return st;
}

ms_status ms_sealed_create(ms_sealed *z, size_t len, unsigned long epoch,
                           const ms_allocopts *opts, ms_lockresult *lr,
                           ms_oserr *err)
{
    return create(z, len, 1, epoch, opts, lr, err);
}

ms_status ms_sealed_create_from(ms_sealed *z, const unsigned char *src,
                                size_t len, unsigned long epoch,
                                const ms_allocopts *opts, ms_lockresult *lr,
                                ms_oserr *err)
{
    ms_status st = create(z, len, 0, epoch, opts, lr, err);
    if (st == MS_OK) {
        st = seal_from(z, src, epoch);
        ms_scrub_registers();
        if (st != MS_OK) {
            ms_sealed_destroy(z);
        }
    }
    return st;
}

/* ---- windows ---------------------------------------------------------- */

ms_status ms_sealed_access(ms_sealed *z, ms_prot from, ms_prot to,
                           unsigned long epoch, ms_oserr *err)
{
    if (from == MS_PROT_NONE) {
        if (!ms_registry_unchanged(epoch)) {
            return MS_E_PURGED;
        }
        ms_lockresult lr;
        ms_status st = plain_alloc(z, z->locked ? MS_LOCK_REQUIRED
                                                : MS_LOCK_TRY,
                                   &lr, err);
        if (st != MS_OK) {
            return st;
        }
        st = open_slot(z, epoch);
        ms_scrub_registers();
        if (st != MS_OK) {
            plain_free(z);
        }
        return st;
    }
    ms_status st = MS_OK;
    if (from == MS_PROT_RW && ms_registry_unchanged(epoch)) {
        st = seal_from(z, z->plain, epoch);
    }
    if (to == MS_PROT_NONE) {
        plain_free(z);
    }
    return st == MS_E_PURGED ? MS_OK : st;
}

unsigned char *ms_sealed_data(const ms_sealed *z)
{
    return z->plain;
}

void ms_sealed_destroy(ms_sealed *z)
{
    if (z->plain != NULL) {
        plain_free(z);
    }
    if (z->slot != NULL) {
        ms_pool_free(&cipher_pools[kind_of(z)], z->arena, z->slot);
    }
    memset(z, 0, sizeof(*z));
}

size_t ms_sealed_info(const ms_sealed *z, ms_info_item *out)
{
    const ms_mapping *m = ms_arena_mapping(z->arena);
    size_t n = 0;
    out[n++] = (ms_info_item){"slot", (uintptr_t)z->slot};
    out[n++] = (ms_info_item){"slot_len", z->len + MS_SEAL_OVERHEAD};
    out[n++] = (ms_info_item){"arena", (uintptr_t)m->data};
    out[n++] = (ms_info_item){"arena_len", m->data_len};
    out[n++] = (ms_info_item){"plaintext", (uintptr_t)z->plain};
    return n;
}

/* ---- fork="inherit" ---------------------------------------------------- */

ms_status ms_sealed_adopt(ms_sealed *z)
{
    int kind = kind_of(z);
    if (!z->inherit || z->slot == NULL || !ms_arena_adopted(z->arena)) {
        return MS_E_FORKED;
    }
    if (!adopt_have[kind - 2] ||
        memcmp(z->slot, z->nonce, MS_AEAD_NONCE_LEN) != 0) {
        ms_os_wipe(z->slot, z->len + MS_SEAL_OVERHEAD);
        return MS_E_FORKED;
    }
    ms_lockresult lr;
    ms_oserr err;
    if (plain_alloc(z, z->locked ? MS_LOCK_REQUIRED : MS_LOCK_TRY, &lr,
                    &err) != MS_OK) {
        ms_os_wipe(z->slot, z->len + MS_SEAL_OVERHEAD);
        return MS_E_FORKED;
    }
    unsigned char ad[AD_LEN];
    unsigned char key[MS_KEY_LEN];
    unsigned char nonce[MS_AEAD_NONCE_LEN];
    make_ad(z, ad);
    ms_status st = MS_OK;
    if (ms_aead_open(adopt_old[kind - 2], z->nonce, ad, sizeof(ad), ct_of(z),
                     z->len, tag_of(z), z->plain) != 0 ||
        ms_key_nonce(&keys[kind], nonce) != 0) {
        st = MS_E_FORKED;
    } else {
        /* K1 and K2 in the child: its own key, a nonce of its own. */
        ms_key_rebuild(&keys[kind], key);
        (void)ms_aead_seal(key, nonce, ad, sizeof(ad), z->plain, z->len,
                           ct_of(z), tag_of(z));
        ms_os_wipe(key, sizeof(key));
        memcpy(z->slot, nonce, sizeof(nonce));
        memcpy(z->nonce, nonce, sizeof(nonce));
    }
    plain_free(z);
    ms_scrub_registers();
    if (st != MS_OK) {
        ms_os_wipe(z->slot, z->len + MS_SEAL_OVERHEAD);
    }
    return st;
}

void ms_seal_adopt_done(void)
{
    ms_os_wipe(adopt_old, sizeof(adopt_old));
    adopt_have[0] = 0;
    adopt_have[1] = 0;
}

/* ---- statistics ------------------------------------------------------- */

void ms_seal_stats_get(ms_seal_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->consistent = 1;
    for (int i = 0; i < KINDS; i++) {
        ms_pool *c = &cipher_pools[i];
        ms_pool *w = &window_pools[i & 1];
        if (ms_pool_check(c) != 0 || (i < 2 && ms_pool_check(w) != 0)) {
            st->consistent = 0;
        }
        ms_mutex_lock(&c->lock);
        st->cipher_arenas += c->arenas;
        st->cipher_mapped += c->mapped;
        st->cipher_slots += c->slots;
        st->rng_seeds += c->rng.reseeds;
        ms_mutex_unlock(&c->lock);
        st->keys_made += keys[i].made;
        if (i >= 2) {
            continue;
        }
        ms_mutex_lock(&w->lock);
        st->window_arenas += w->arenas;
        st->window_mapped += w->mapped;
        st->window_slots += w->slots;
        st->rng_seeds += w->rng.reseeds;
        ms_mutex_unlock(&w->lock);
        ms_mutex_lock(&keys[i].lock);
        st->key_halves[i][0] = (uintptr_t)keys[i].left.data;
        st->key_halves[i][1] = (uintptr_t)keys[i].right.data;
        ms_mutex_unlock(&keys[i].lock);
    }
}

int ms_seal_key_ready(int secretmem)
{
    ms_key *k = &keys[secretmem ? 1 : 0];
    ms_mutex_lock(&k->lock);
    int ready = (int)ms_atomic_load(&k->live) && ms_key_locked(k);
    ms_mutex_unlock(&k->lock);
    return ready;
}
