/*
 * key.c - the split process key (see key.h).
 */
#include "key.h"

#include <string.h>

#include "atomic.h"
#include "chacha20poly1305.h"
#include "registry.h"
#include "scrub.h"

static const unsigned char zero_nonce[MS_AEAD_NONCE_LEN];

/* K2: the nonce counter of the whole process.  Never reset; a fork child
 * goes on from the parent's value (under a key of its own anyway). */
static volatile intptr_t nonce_counter;

void ms_key_init(ms_key *k, int inherit)
{
    memset((void *)k, 0, sizeof(*k));
    ms_mutex_init(&k->lock);
    k->inherit = inherit;
}

static void mask_of(const unsigned char right[MS_KEY_LEN],
                    unsigned char mask[MS_KEY_LEN])
{
    unsigned char block[64];
    ms_chacha20_block(right, 0, zero_nonce, block);
    memcpy(mask, block, MS_KEY_LEN);
    ms_os_wipe(block, sizeof(block));
}

static ms_status create_halves(ms_key *k, const ms_allocopts *kopts,
                               ms_lockresult *lr, ms_oserr *err)
{
    size_t page = ms_os_page_size();
    ms_lockresult lr2;
    ms_allocopts o = *kopts;
    o.inherit = k->inherit;
    const ms_allocopts *opts = &o;
    ms_status st = ms_mapping_create(&k->left, page, opts, lr, err);
    if (st != MS_OK) {
        return st;
    }
    st = ms_mapping_create(&k->right, page, opts, &lr2, err);
    if (st != MS_OK) {
        ms_oserr ignored;
        (void)ms_mapping_destroy(&k->left, &ignored);
        *lr = lr2;
        return st;
    }
    if (lr2.failed && !lr->failed) {
        *lr = lr2;
    }
    return MS_OK;
}

static int halves_writable(ms_key *k, ms_prot prot, ms_oserr *err)
{
    if (ms_mapping_protect(&k->left, prot, err) != 0) {
        return -1;
    }
    if (ms_mapping_protect(&k->right, prot, err) != 0) {
        ms_oserr ignored;
        (void)ms_mapping_protect(&k->left, MS_PROT_READ, &ignored);
        return -1;
    }
    return 0;
}

/* A fresh random key, split into the halves (which are writable). */
static int fill_halves(ms_key *k, ms_oserr *err)
{
    unsigned char key[MS_KEY_LEN];
    unsigned char mask[MS_KEY_LEN];
    if (ms_os_random(key, sizeof(key), err) != 0 ||
        ms_os_random(k->right.data, MS_KEY_LEN, err) != 0) {
        ms_os_wipe(key, sizeof(key));
        return -1;
    }
    mask_of(k->right.data, mask);
    for (size_t i = 0; i < MS_KEY_LEN; i++) {
        k->left.data[i] = (unsigned char)(key[i] ^ mask[i]);
    }
    ms_os_wipe(key, sizeof(key));
    ms_os_wipe(mask, sizeof(mask));
    ms_scrub();
    /* After the writes (registry.h, rule 4): if a purge wiped the halves
     * in between, the next one wipes this key as well. */
    ms_registry_touch(k->left.ent);
    ms_registry_touch(k->right.ent);
    return 0;
}

static ms_status refresh(ms_key *k, unsigned long epoch,
                         const ms_allocopts *opts, ms_lockresult *lr,
                         ms_oserr *err)
{
    lr->failed = 0;
    ms_atomic_store(&k->live, 0);
    if (k->left.data == NULL) {
        ms_status st = create_halves(k, opts, lr, err);
        if (st != MS_OK) {
            return st;
        }
    } else if (halves_writable(k, MS_PROT_RW, err) != 0) {
        return MS_E_OS;
    }
    if (fill_halves(k, err) != 0 ||
        ms_os_random(k->prefix, sizeof(k->prefix), err) != 0) {
        ms_oserr ignored;
        ms_os_wipe(k->left.data, MS_KEY_LEN);
        (void)halves_writable(k, MS_PROT_READ, &ignored);
        return MS_E_OS;
    }
    /* If the halves cannot go back to read-only they stay writable,
     * which exposes nothing more: go on. */
    ms_oserr ignored;
    (void)halves_writable(k, MS_PROT_READ, &ignored);
    ms_atomic_store(&k->epoch, (intptr_t)epoch);
    ms_atomic_store(&k->generation, (intptr_t)ms_os_fork_generation());
    ms_atomic_store(&k->live, 1);
    k->made++;
    return MS_OK;
}

int ms_key_live(ms_key *k, unsigned long epoch)
{
    return ms_atomic_load(&k->live) == 1 &&
           ms_atomic_load(&k->epoch) == (intptr_t)epoch &&
           ms_atomic_load(&k->generation) ==
               (intptr_t)ms_os_fork_generation();
}

ms_status ms_key_prepare(ms_key *k, unsigned long epoch,
                         const ms_allocopts *opts, ms_lockresult *lr,
                         ms_oserr *err)
{
    ms_mutex_lock(&k->lock);
    ms_status st = MS_OK;
    lr->failed = 0;
    if (!ms_registry_unchanged(epoch)) {
        st = MS_E_PURGED; /* never bring back the key of an old epoch */
    } else if (!ms_key_live(k, epoch)) {
        st = refresh(k, epoch, opts, lr, err);
    } else if (opts->lock != MS_LOCK_SKIP &&
               (ms_mapping_lock(&k->left, lr) != 0 ||
                ms_mapping_lock(&k->right, lr) != 0)) {
        /* Made under the 'off' policy; a stricter one needs it locked. */
        if (opts->lock == MS_LOCK_REQUIRED) {
            *err = lr->err;
            st = MS_E_LOCK;
        }
    } else if (opts->lock == MS_LOCK_SKIP && !ms_key_locked(k)) {
        lr->failed = 1;
        lr->err.code = 0;
        lr->err.winerror = 0;
        lr->err.op = "none (lock policy 'off')";
    }
    ms_mutex_unlock(&k->lock);
    return st;
}

/* No lock: the halves change only when the key is made afresh (after a
 * purge or in a fork child), and every secret that can reach this took the
 * key's lock in ms_key_prepare after that, before its first seal.  A store
 * made before such a change was purged or is an orphan, and its caller
 * finds so with ms_registry_unchanged after the rebuild (K1). */
void ms_key_rebuild(ms_key *k, unsigned char out[MS_KEY_LEN])
{
    unsigned char mask[MS_KEY_LEN];
    mask_of(k->right.data, mask);
    for (size_t i = 0; i < MS_KEY_LEN; i++) {
        out[i] = (unsigned char)(k->left.data[i] ^ mask[i]);
    }
    ms_os_wipe(mask, sizeof(mask));
}

int ms_key_nonce(ms_key *k, unsigned char nonce[12])
{
    intptr_t n = ms_atomic_add(&nonce_counter, 1);
    if (n <= 0) {
        /* Wrapped (2^63 seals, or 2^31 where intptr_t is 32 bits): keep it
         * there, and refuse every seal from now on. */
        ms_atomic_store(&nonce_counter, INTPTR_MIN);
        return -1;
    }
    memcpy(nonce, k->prefix, 4);
    uint64_t u = (uint64_t)n;
    for (size_t i = 0; i < 8; i++) {
        nonce[4 + i] = (unsigned char)(u >> (8 * i));
    }
    return 0;
}

uint64_t ms_key_nonces_used(void)
{
    intptr_t n = ms_atomic_load(&nonce_counter);
    return n < 0 ? UINT64_MAX : (uint64_t)n;
}

int ms_key_locked(const ms_key *k)
{
    return k->left.locked && k->right.locked;
}

int ms_key_secretmem(const ms_key *k)
{
    return k->left.secretmem && k->right.secretmem;
}

void ms_key_fork_child(ms_key *k)
{
    unsigned long made = k->made;
    int inherit = k->inherit;
    memset((void *)k, 0, sizeof(*k));
    ms_mutex_init(&k->lock);
    k->made = made;
    k->inherit = inherit;
}

/* The halves of an inherit key that cannot be adopted: orphan them. */
static void forget_halves(ms_key *k)
{
    if (k->left.ent != NULL) {
        ms_registry_orphan(k->left.ent);
    }
    if (k->right.ent != NULL) {
        ms_registry_orphan(k->right.ent);
    }
    ms_key_fork_child(k);
}

int ms_key_fork_rekey(ms_key *k, unsigned char old[MS_KEY_LEN])
{
    ms_mutex_init(&k->lock);
    unsigned long gen = ms_os_fork_generation_raw();
    if (ms_atomic_load(&k->live) != 1 || k->left.data == NULL ||
        ms_atomic_load(&k->generation) != (intptr_t)gen) {
        forget_halves(k);
        return 0;
    }
    ms_oserr err;
    if (ms_mapping_adopt(&k->left, &err) != 0 ||
        ms_mapping_adopt(&k->right, &err) != 0) {
        forget_halves(k);
        return -1;
    }
    ms_key_rebuild(k, old);
    if (halves_writable(k, MS_PROT_RW, &err) != 0 ||
        fill_halves(k, &err) != 0 ||
        ms_os_random(k->prefix, sizeof(k->prefix), &err) != 0) {
        ms_os_wipe(old, MS_KEY_LEN);
        forget_halves(k);
        return -1;
    }
    ms_oserr ignored;
    (void)halves_writable(k, MS_PROT_READ, &ignored);
    ms_atomic_store(&k->generation, (intptr_t)(gen + 1));
    k->made++;
    return 1;
}
