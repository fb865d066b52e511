/*
 * core_parts.c - what the parts of a window cost in the core alone (no
 * Python): built against src/core by benchmarks/profile_window.py parts.
 *
 * Each line is the best of 9 batches of 200,000 iterations, in ns of this
 * thread's CPU time per iteration.  The first two lines are whole windows
 * at the store interface (lock, open, unlock ... lock, close, unlock) as the
 * extension makes them; the others are the pieces a sealed window is made
 * of: the AEAD open of 32 bytes with the 16-byte associated data, the key
 * rebuild (one ChaCha20 block), the scrub, the plaintext slot.
 */
#define _GNU_SOURCE 1

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chacha20poly1305.h"
#include "platform.h"
#include "pool.h"
#include "scrub.h"
#include "store.h"

#define ITERS 200000L
#define BATCHES 9

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#define TIME(label, body)                                                  \
    do {                                                                   \
        double best = 1e300;                                               \
        for (int b_ = 0; b_ < BATCHES; b_++) {                             \
            double t0_ = now_ns();                                         \
            for (long i_ = 0; i_ < ITERS; i_++) {                          \
                body;                                                      \
            }                                                              \
            double d_ = (now_ns() - t0_) / (double)ITERS;                  \
            best = d_ < best ? d_ : best;                                  \
        }                                                                  \
        printf("%-60s %8.1f ns\n", label, best);                           \
    } while (0)

static volatile unsigned char sink;

static int make(ms_store *s, ms_engine engine, const ms_allocopts *o)
{
    ms_oserr err;
    ms_lockresult lr;
    ms_store_init(s, engine);
    if (ms_store_alloc(s, 32, o, &lr, &err) != MS_OK) {
        return -1;
    }
    memset(ms_store_data(s), 7, 32);
    return ms_store_close(s, MS_WINDOW_WRITE, &err) == MS_OK ? 0 : -1;
}

static void window(ms_store *s)
{
    ms_oserr err;
    ms_store_lock(s);
    (void)ms_store_open(s, MS_WINDOW_READ, &err);
    ms_store_unlock(s);
    sink = ms_store_data(s)[0];
    ms_store_lock(s);
    (void)ms_store_close(s, MS_WINDOW_READ, &err);
    ms_store_unlock(s);
}

int main(void)
{
    ms_oserr err;
    ms_lockresult lr;
    if (ms_os_init(&err) != 0) {
        fprintf(stderr, "core_parts: ms_os_init failed\n");
        return 1;
    }
    ms_scrub_init();
    ms_core_init();
    ms_allocopts o = {MS_LOCK_TRY, MS_SECRETMEM_OFF, 0};
    ms_store sealed, guarded;
    if (make(&sealed, MS_ENGINE_SEALED, &o) != 0 ||
        make(&guarded, MS_ENGINE_GUARDED, &o) != 0) {
        fprintf(stderr, "core_parts: cannot make the secrets\n");
        return 1;
    }

    TIME("sealed window (store open + close, 32 B)", window(&sealed));
    TIME("guarded window (store open + close, 32 B)", window(&guarded));

    unsigned char key[32] = {1}, nonce[12] = {2}, ad[16] = {3};
    unsigned char pt[32] = {4}, ct[32], tag[16], out[32], blk[64];
    static unsigned char in256[256], out256[256], buf[MS_SCRUB_STACK];
    (void)ms_aead_seal(key, nonce, ad, sizeof ad, pt, sizeof pt, ct, tag);
    TIME("ms_aead_open, 32 B + 16 B AD (2 ChaCha20 blocks, Poly1305)",
         (void)ms_aead_open(key, nonce, ad, sizeof ad, ct, sizeof ct, tag,
                            out));
    TIME("ms_aead_seal, 32 B + 16 B AD",
         (void)ms_aead_seal(key, nonce, ad, sizeof ad, pt, sizeof pt, ct,
                            tag));
    TIME("ms_chacha20_block (the key rebuild's mask, wipes incl.)",
         ms_chacha20_block(key, 0, nonce, blk));
    TIME("ms_chacha20_xor, 256 B (one 4-way vector call)",
         (void)ms_chacha20_xor(key, 1, nonce, in256, out256, 256));
    TIME("ms_poly1305, 64 B (the 4 blocks of an open of 32 B)",
         ms_poly1305(key, in256, 64, tag));
    TIME("ms_scrub (vector registers + stack burn)", ms_scrub());
    TIME("ms_scrub_registers", ms_scrub_registers());
    TIME("ms_os_wipe of MS_SCRUB_STACK bytes", ms_os_wipe(buf, sizeof buf));

    ms_pool pool;
    unsigned char *slot;
    ms_arena *arena;
    ms_pool_init(&pool, 0, 0);
    if (ms_pool_alloc(&pool, 32, &o, &lr, &slot, &arena, &err) != MS_OK) {
        fprintf(stderr, "core_parts: pool allocation failed\n");
        return 1;
    }
    ms_pool_free(&pool, arena, slot);
    TIME("ms_pool_alloc + ms_pool_free (a 32-byte plaintext slot)", {
        (void)ms_pool_alloc(&pool, 32, &o, &lr, &slot, &arena, &err);
        ms_pool_free(&pool, arena, slot);
    });
    TIME("ms_store_lock + ms_store_unlock", {
        ms_store_lock(&sealed);
        ms_store_unlock(&sealed);
    });
    return 0;
}
