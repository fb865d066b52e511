/*
 * rng.c - userspace ChaCha20 CSPRNG with fast key erasure (see rng.h).
 */
#include "rng.h"

#include <string.h>

#include "chacha20poly1305.h"

static const unsigned char zero_nonce[MS_AEAD_NONCE_LEN];

static int seed(ms_rng *r, ms_oserr *err)
{
    if (ms_os_random(r->key, sizeof(r->key), err) != 0) {
        return -1;
    }
    r->avail = 0;
    r->seeded = 1;
    r->generation = ms_os_fork_generation();
    r->reseeds++;
    return 0;
}

/* Two blocks of keystream: the first 32 bytes become the next key, the
 * other 96 are output. */
static void refill(ms_rng *r)
{
    unsigned char block[128];
    ms_chacha20_block(r->key, 0, zero_nonce, block);
    ms_chacha20_block(r->key, 1, zero_nonce, block + 64);
    memcpy(r->key, block, sizeof(r->key));
    memcpy(r->buf, block + 32, sizeof(r->buf));
    ms_os_wipe(block, sizeof(block));
    r->avail = sizeof(r->buf);
}

static int next_u32(ms_rng *r, uint32_t *out, ms_oserr *err)
{
    if (!r->seeded || r->generation != ms_os_fork_generation()) {
        if (seed(r, err) != 0) {
            return -1;
        }
    }
    if (r->avail < 4) {
        refill(r);
    }
    const unsigned char *p = r->buf + sizeof(r->buf) - r->avail;
    *out = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
    ms_os_wipe((void *)p, 4);
    r->avail -= 4;
    return 0;
}

int ms_rng_below(ms_rng *r, uint32_t n, uint32_t *out, ms_oserr *err)
{
    /* Rejection sampling: values below 2^32 mod n would be favoured. */
    uint32_t floor = (uint32_t)(0u - n) % n;
    uint32_t v;
    do {
        if (next_u32(r, &v, err) != 0) {
            return -1;
        }
    } while (v < floor);
    *out = v % n;
    return 0;
}

void ms_rng_forget(ms_rng *r)
{
    unsigned long reseeds = r->reseeds;
    ms_os_wipe(r, sizeof(*r));
    r->reseeds = reseeds;
}
