/*
 * ct_aead.c - constant-time check of src/core/chacha20poly1305.c with
 * valgrind's memcheck (the ctgrind technique, Adam Langley 2010).
 *
 * Secret bytes are marked undefined with VALGRIND_MAKE_MEM_UNDEFINED.
 * memcheck then reports every conditional jump, conditional move and
 * memory address that depends on them: exactly the secret-dependent
 * branches and table indices that constant-time code must not have.
 * Arithmetic on undefined bytes is not reported, so the cipher runs
 * normally.
 *
 * Build and run (scripts/aead-check does this with gcc and clang):
 *   gcc -std=c11 -Wall -Wextra -Werror -O2 -g -Isrc/core \
 *       tests/c/ct_aead.c src/core/platform_posix.c -o ct_aead
 *   valgrind -q --error-exitcode=99 ./ct_aead            # must exit 0
 *   valgrind -q --error-exitcode=99 ./ct_aead --control=branch  # must exit 99
 *   valgrind -q --error-exitcode=99 ./ct_aead --control=index   # must exit 99
 *   valgrind -q --error-exitcode=99 ./ct_aead --control=verdict # must exit 99
 * Needs valgrind/memcheck.h (Debian: package valgrind).  Outside valgrind
 * the client requests do nothing and the program only checks results.
 *
 * What is secret: the key and the plaintext for seal; the key, the
 * ciphertext and the tag for open (so the plaintext it derives is secret
 * too), and the associated data in both (public in the AEAD's model, but
 * nothing should branch on it either).  Nonces and lengths are public.
 * The library declassifies one value, the verdict of its constant-time
 * tag comparison, just before ms_aead_open branches on it: it includes
 * chacha20poly1305.c below with MS_CT_DECLASSIFY defined to
 * VALGRIND_MAKE_MEM_DEFINED.  The harness itself checks results with a
 * constant-time comparison and declassifies only that verdict.
 *
 * Positive controls (--control=branch, --control=index) run a deliberately
 * variable-time compare (early exit) and a table lookup indexed by a secret
 * byte the same way; valgrind must report them, which shows that it sees
 * secret-dependent branches and indices in this build at all.  A third,
 * --control=verdict, opens one message without the library's
 * declassification: valgrind must then report ms_aead_open's branch on the
 * verdict, which shows that the secrets' taint reaches the end of the
 * cipher and the MAC (nothing in between launders it).
 */
#include <stddef.h>
/* Without valgrind's header (a machine that only runs static analysis) the
 * client requests do nothing: the harness then reports "NOT under
 * valgrind" and scripts/aead-check fails it, controls unreported. */
#if defined(__has_include)
/* cppcheck-suppress preprocessorErrorDirective ; it has no __has_include */
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK_H 1
#endif
#else
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK_H 1
#endif
#ifndef HAVE_MEMCHECK_H
#define VALGRIND_MAKE_MEM_DEFINED(addr, len) ((void)(addr), (void)(len), 0)
#define VALGRIND_MAKE_MEM_UNDEFINED(addr, len) ((void)(addr), (void)(len), 0)
#define RUNNING_ON_VALGRIND 0
#endif

/* The library's one declassification; --control=verdict turns it off. */
static int declassify_verdict = 1;

static void ct_declassify(void *addr, size_t len)
{
    if (declassify_verdict) {
        (void)VALGRIND_MAKE_MEM_DEFINED(addr, len);
    }
}

#define MS_CT_DECLASSIFY(addr, len) ct_declassify((addr), (len))
/* The library itself, compiled here with the hook above. */
#include "chacha20poly1305.c" /* NOLINT(bugprone-suspicious-include) */

#include <stdio.h>
#include <string.h>

#define SECRET(p, n) ((void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n)))
#define PUBLIC(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))

static int failures;

static void expect(int ok, const char *what, size_t len)
{
    if (!ok) {
        failures++;
        printf("FAIL: %s (len %zu)\n", what, len);
    }
}

/* 1 if equal, 0 if not, constant time; the verdict is made public. */
static int equal_ct(const unsigned char *a, const unsigned char *b,
                    size_t n)
{
    unsigned d = 0;
    int eq;
    for (size_t i = 0; i < n; i++) {
        d |= (unsigned)(a[i] ^ b[i]);
    }
    eq = (int)(((d - 1U) >> 8) & 1U);
    PUBLIC(&eq, sizeof eq);
    return eq;
}

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)((i * 131U + (size_t)seed * 29U + 7U) & 0xffU);
    }
}

enum { MAXLEN = 1000, ADLEN = 13 };

static void run_length(size_t len)
{
    static unsigned char pt[MAXLEN], ct[MAXLEN], back[MAXLEN];
    static unsigned char want_pt[MAXLEN];
    unsigned char key[32], nonce[12], ad[ADLEN], tag[16], blk[64], mac[16];
    int rc;

    if (len > MAXLEN) {
        expect(0, "length within the buffers", len);
        return;
    }
    pattern(key, sizeof key, 1);
    pattern(nonce, sizeof nonce, 2);
    pattern(ad, sizeof ad, 3);
    pattern(pt, len, 4);
    memcpy(want_pt, pt, len);

    /* Seal: key, plaintext (and AD) secret. */
    SECRET(key, sizeof key);
    SECRET(pt, len);
    SECRET(ad, sizeof ad);
    rc = ms_aead_seal(key, nonce, ad, sizeof ad, pt, len, ct, tag);
    expect(rc == 0, "seal", len);

    /* Open: key, ciphertext, tag secret; the plaintext comes out secret. */
    SECRET(ct, len);
    SECRET(tag, sizeof tag);
    memset(back, 0, len);
    rc = ms_aead_open(key, nonce, ad, sizeof ad, ct, len, tag, back);
    expect(rc == 0, "open", len);
    expect(equal_ct(back, want_pt, len), "open gives the plaintext", len);

    /* In place both ways. */
    memcpy(back, pt, len);
    rc = ms_aead_seal(key, nonce, ad, sizeof ad, back, len, back, mac);
    expect(rc == 0 && equal_ct(back, ct, len) && equal_ct(mac, tag, 16),
           "seal in place", len);
    rc = ms_aead_open(key, nonce, ad, sizeof ad, back, len, mac, back);
    expect(rc == 0 && equal_ct(back, want_pt, len), "open in place", len);

    /* A wrong tag (still secret) must fail and leave the output alone. */
    tag[len % 16] ^= 0x10;
    memset(back, 0x5a, len);
    rc = ms_aead_open(key, nonce, ad, sizeof ad, ct, len, tag, back);
    expect(rc == -1, "bad tag fails", len);
    for (size_t i = 0; i < len; i++) {
        expect(back[i] == 0x5a, "bad tag leaves the output alone", len);
    }

    /* The exported pieces on their own. */
    ms_chacha20_block(key, (uint32_t)len, nonce, blk);
    rc = ms_chacha20_xor(key, 1, nonce, pt, back, len);
    expect(rc == 0, "xor", len);
    ms_poly1305(key, pt, len, mac);
}

/* ---- positive controls ---------------------------------------------- */

/* Kept out of the optimiser's sight: with everything known at compile
 * time, clang -O3 turns the early-exit loop below into a branch-free OR of
 * all 32 bytes (and the control would rightly pass). */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif
static volatile size_t control_len = 32;

/* Variable time on purpose: returns at the first differing byte. */
static NOINLINE int leaky_compare(const unsigned char *a, const unsigned char *b,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return -1;
        }
    }
    return 0;
}

/* Variable time on purpose: the address read depends on a secret byte. */
static const unsigned char sbox[256] = {
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b,
    0xfe, 0xd7, 0xab, 0x76, /* the rest: zero, it is the index that counts */
};

static volatile unsigned char sink;

static int control(const char *kind)
{
    unsigned char key[32], guess[32];
    int rc;

    pattern(key, sizeof key, 9);
    memcpy(guess, key, sizeof guess);
    guess[31] ^= 1;
    SECRET(key, sizeof key);
    if (strcmp(kind, "branch") == 0) {
        rc = leaky_compare(key, guess, control_len);
        PUBLIC(&rc, sizeof rc); /* report only the compare's own branches */
        sink = (unsigned char)rc;
    } else if (strcmp(kind, "index") == 0) {
        sink = sbox[key[5]];
    } else if (strcmp(kind, "verdict") == 0) {
        unsigned char nonce[12] = {0}, msg[40], tag[16];
        pattern(msg, sizeof msg, 10);
        SECRET(msg, sizeof msg);
        rc = ms_aead_seal(key, nonce, NULL, 0, msg, sizeof msg, msg, tag);
        declassify_verdict = 0;
        rc |= ms_aead_open(key, nonce, NULL, 0, msg, sizeof msg, tag, msg);
        PUBLIC(&rc, sizeof rc); /* only the library's own branch counts */
        sink = (unsigned char)rc;
    } else {
        printf("ct_aead: unknown control %s\n", kind);
        return 2;
    }
    printf("ct_aead: control %s ran (valgrind must report it)\n", kind);
    return 0;
}

int main(int argc, char **argv)
{
    /* Every path: the key block alone (0), with the data block (1..64),
     * then pairs of blocks, four at once and tails (65..1000). */
    static const size_t lengths[] = {0,   1,   15,  16,  17,  63,
                                     64,  65,  128, 129, 192, 1000};

    if (argc == 2 && strncmp(argv[1], "--control=", 10) == 0) {
        return control(argv[1] + 10);
    }
    if (argc != 1) {
        printf("usage: ct_aead [--control=branch|index|verdict]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        run_length(lengths[i]);
    }
    printf("ct_aead: %zu lengths, %s, %s valgrind\n",
           sizeof lengths / sizeof lengths[0],
           failures == 0 ? "results correct" : "RESULTS WRONG",
           RUNNING_ON_VALGRIND ? "under" : "NOT under");
    return failures == 0 ? 0 : 1;
}
