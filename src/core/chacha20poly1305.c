/*
 * chacha20poly1305.c - ChaCha20, Poly1305 and AEAD_CHACHA20_POLY1305,
 * written from RFC 8439.
 *
 * ChaCha20 works on sixteen 32-bit words: one block at a time, and with
 * gcc and clang in generic vectors (SSE2, NEON) two blocks at a time for
 * short messages (the AEAD's key block with the first data block) and
 * four at a time for long ones.  Poly1305 keeps the accumulator and r in
 * five 26-bit limbs and multiplies 32 x 32 -> 64 bits, so nothing wider
 * than uint64_t is needed (gcc, clang, mingw-w64 and MSVC alike).
 *
 * Constant time: the only branches and loop bounds are on lengths, which
 * are public; keys, plaintext, ciphertext and tags only ever flow through
 * additions, XORs, shifts, multiplications and masks, never into a branch
 * or an array index.  The final reduction modulo 2^130 - 5 and the tag
 * comparison select with masks.  ms_aead_open branches on exactly one
 * secret-derived value, the verdict of the tag comparison, after handing it
 * to MS_CT_DECLASSIFY (a no-op unless a constant-time harness such as
 * tests/c/ct_aead.c defines it to tell valgrind that the value is public).
 *
 * Wiping: the ChaCha20 input and working states, keystream bytes, the
 * one-time key, the Poly1305 state and the computed tag live in named
 * buffers that are wiped with ms_os_wipe before each function returns.
 * Copies the compiler keeps in registers or spills to the stack are the
 * scrub layer's business (scrub.h), as for the rest of the core.
 */
#include "chacha20poly1305.h"

#include "platform.h"

#ifndef MS_CT_DECLASSIFY
#define MS_CT_DECLASSIFY(addr, len) ((void)(addr), (void)(len))
#endif

/* ---- little-endian loads and stores ---------------------------------- */

static uint32_t load32_le(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void store32_le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xffU);
    p[1] = (unsigned char)((v >> 8) & 0xffU);
    p[2] = (unsigned char)((v >> 16) & 0xffU);
    p[3] = (unsigned char)((v >> 24) & 0xffU);
}

static void store64_le(unsigned char *p, uint64_t v)
{
    store32_le(p, (uint32_t)(v & 0xffffffffU));
    store32_le(p + 4, (uint32_t)(v >> 32));
}

/* ---- ChaCha20 (RFC 8439 2.1-2.4) --------------------------------------- */

#define ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))

/* constants | key | counter | nonce (2.3) */
static void chacha20_setup(uint32_t st[16], const unsigned char key[32],
                           uint32_t counter, const unsigned char nonce[12])
{
    st[0] = 0x61707865U;
    st[1] = 0x3320646eU;
    st[2] = 0x79622d32U;
    st[3] = 0x6b206574U;
    for (size_t i = 0; i < 8; i++) {
        st[4 + i] = load32_le(key + 4 * i);
    }
    st[12] = counter;
    st[13] = load32_le(nonce);
    st[14] = load32_le(nonce + 4);
    st[15] = load32_le(nonce + 8);
}

/* x = the 20-round block function of st (before serialisation).  The
 * working state is sixteen locals, which compilers keep in registers. */
#define QR(a, b, c, d)                                                     \
    do {                                                                   \
        (a) += (b);                                                        \
        (d) ^= (a);                                                        \
        (d) = ROTL32((d), 16);                                             \
        (c) += (d);                                                        \
        (b) ^= (c);                                                        \
        (b) = ROTL32((b), 12);                                             \
        (a) += (b);                                                        \
        (d) ^= (a);                                                        \
        (d) = ROTL32((d), 8);                                              \
        (c) += (d);                                                        \
        (b) ^= (c);                                                        \
        (b) = ROTL32((b), 7);                                              \
    } while (0)

static void chacha20_core(uint32_t x[16], const uint32_t st[16])
{
    uint32_t x0 = st[0], x1 = st[1], x2 = st[2], x3 = st[3], x4 = st[4],
             x5 = st[5], x6 = st[6], x7 = st[7], x8 = st[8], x9 = st[9],
             x10 = st[10], x11 = st[11], x12 = st[12], x13 = st[13],
             x14 = st[14], x15 = st[15];

    for (int i = 0; i < 10; i++) {
        QR(x0, x4, x8, x12);
        QR(x1, x5, x9, x13);
        QR(x2, x6, x10, x14);
        QR(x3, x7, x11, x15);
        QR(x0, x5, x10, x15);
        QR(x1, x6, x11, x12);
        QR(x2, x7, x8, x13);
        QR(x3, x4, x9, x14);
    }
    x[0] = x0 + st[0];
    x[1] = x1 + st[1];
    x[2] = x2 + st[2];
    x[3] = x3 + st[3];
    x[4] = x4 + st[4];
    x[5] = x5 + st[5];
    x[6] = x6 + st[6];
    x[7] = x7 + st[7];
    x[8] = x8 + st[8];
    x[9] = x9 + st[9];
    x[10] = x10 + st[10];
    x[11] = x11 + st[11];
    x[12] = x12 + st[12];
    x[13] = x13 + st[13];
    x[14] = x14 + st[14];
    x[15] = x15 + st[15];
}

static void chacha20_serialize(unsigned char out[64], const uint32_t x[16])
{
    for (size_t i = 0; i < 16; i++) {
        store32_le(out + 4 * i, x[i]);
    }
}

/* Where the compiler has generic vectors (gcc, clang), several blocks at
 * once go through them, and the compiler maps a u32x4 onto SSE2 on x86-64
 * and NEON on arm64:
 * - two blocks (the AEAD's Poly1305 key block with the keystream of a
 *   message of up to 64 bytes, and the last blocks of a stream) with the
 *   4 x 4 state of each as four rows, one vector per row: the column round
 *   is the quarter round on the four vectors, the diagonal round the same
 *   after rotating rows 1, 2 and 3 by one, two and three lanes (and back
 *   after it); the two blocks' dependency chains overlap, and the pair
 *   takes little more than one scalar block;
 * - four consecutive blocks for long messages, word i of the four blocks
 *   in vector i, about twice the speed of one block at a time.
 * A single block stays scalar: it is one chain of 80 dependent quarter-
 * round steps (add, xor, rotate) whichever way it is laid out, and the
 * row form of one block alone is slower than the scalar core (a shuffle
 * in every half round, and no one-instruction rotate in SSE2: measured
 * on Zen 2 with gcc 12 and clang 14).  Elsewhere (MSVC), or with
 * -DMS_CHACHA20_NO_VECTORS, every block goes through chacha20_core;
 * tests/c/test_aead.c is run both ways.  The shuffles' lane numbers are
 * constants: nothing secret picks a lane. */
#if (defined(__GNUC__) || defined(__clang__)) && \
    !defined(MS_CHACHA20_NO_VECTORS)
#define MS_CHACHA20_VECTORS 1
#define LANES 4
#define LANES_BYTES ((size_t)64 * LANES)
typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef uint16_t u16x8 __attribute__((vector_size(16)));
#define V_SET(v, a, b, c, d) ((v) = (u32x4){(a), (b), (c), (d)})
#define V_LANE(v, j) ((v)[j])
#define V_ADD(a, b) ((a) += (b))
#define V_XORROT(d, a, n)                                                  \
    ((d) ^= (a), (d) = ((d) << (n)) | ((d) >> (32 - (n))))
/* The rotation by 16 as a swap of the 16-bit halves of each word (the
 * same on either byte order): a shuffle, so that not every rotation waits
 * for the vector shifter (about 4% on two blocks and on four).
 * V_ROTLANES(v, n): lane j of the result is lane (j + n) mod 4 of v. */
#if defined(__clang__)
#define V_XORROT16(d, a)                                                   \
    ((d) ^= (a), (d) = (u32x4)__builtin_shufflevector(                     \
                     (u16x8)(d), (u16x8)(d), 1, 0, 3, 2, 5, 4, 7, 6))
#define V_ROTLANES(v, n)                                                   \
    __builtin_shufflevector((v), (v), (n)&3, ((n) + 1) & 3, ((n) + 2) & 3, \
                            ((n) + 3) & 3)
#else
#define V_XORROT16(d, a)                                                   \
    ((d) ^= (a),                                                           \
     (d) = (u32x4)__builtin_shuffle((u16x8)(d),                            \
                                    (u16x8){1, 0, 3, 2, 5, 4, 7, 6}))
#define V_ROTLANES(v, n)                                                   \
    __builtin_shuffle((v), (u32x4){(n)&3U, ((n) + 1U) & 3U,                \
                                   ((n) + 2U) & 3U, ((n) + 3U) & 3U})
#endif

/* ---- two blocks, a row of the state per vector ---- */

/* The quarter round on the four columns of two blocks (rows a-d and e-h),
 * step by step alternating between the blocks so that their dependency
 * chains overlap. */
#define QUARTERROUND_ROWS2(a, b, c, d, e, f, g, h)                         \
    do {                                                                   \
        V_ADD(a, b);                                                       \
        V_ADD(e, f);                                                       \
        V_XORROT16(d, a);                                                  \
        V_XORROT16(h, e);                                                  \
        V_ADD(c, d);                                                       \
        V_ADD(g, h);                                                       \
        V_XORROT(b, c, 12);                                                \
        V_XORROT(f, g, 12);                                                \
        V_ADD(a, b);                                                       \
        V_ADD(e, f);                                                       \
        V_XORROT(d, a, 8);                                                 \
        V_XORROT(h, e, 8);                                                 \
        V_ADD(c, d);                                                       \
        V_ADD(g, h);                                                       \
        V_XORROT(b, c, 7);                                                 \
        V_XORROT(f, g, 7);                                                 \
    } while (0)

/* Column round, then the diagonal round: with rows 1, 2, 3 rotated by 1,
 * 2, 3 lanes, lane j holds the diagonal (j, 4 + (j + 1) % 4, 8 + (j + 2)
 * % 4, 12 + (j + 3) % 4), e.g. words 0, 5, 10, 15 in lane 0. */
#define DOUBLEROUND_ROWS2(a, b, c, d, e, f, g, h)                          \
    do {                                                                   \
        QUARTERROUND_ROWS2(a, b, c, d, e, f, g, h);                        \
        (b) = V_ROTLANES(b, 1);                                            \
        (c) = V_ROTLANES(c, 2);                                            \
        (d) = V_ROTLANES(d, 3);                                            \
        (f) = V_ROTLANES(f, 1);                                            \
        (g) = V_ROTLANES(g, 2);                                            \
        (h) = V_ROTLANES(h, 3);                                            \
        QUARTERROUND_ROWS2(a, b, c, d, e, f, g, h);                        \
        (b) = V_ROTLANES(b, 3);                                            \
        (c) = V_ROTLANES(c, 2);                                            \
        (d) = V_ROTLANES(d, 1);                                            \
        (f) = V_ROTLANES(f, 3);                                            \
        (g) = V_ROTLANES(g, 2);                                            \
        (h) = V_ROTLANES(h, 1);                                            \
    } while (0)

/* out = serialized v, four little-endian words: one 16-byte store where
 * the machine is little-endian, else word by word. */
static void v_store_le(unsigned char out[16], u32x4 v)
{
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&                        \
    !defined(MS_CHACHA20_STORE_LANES)
    __builtin_memcpy(out, &v, sizeof v);
#else
    for (size_t j = 0; j < 4; j++) {
        store32_le(out + 4 * j, V_LANE(v, j));
    }
#endif
}

/* ks = blocks st[12] and st[12] + 1, serialized.  The working state is
 * vector locals, which compilers keep in registers. */
static void chacha20_core2(unsigned char ks[128], const uint32_t st[16])
{
    u32x4 r0, r1, r2, r3, r3n, a, b, c, d, e, f, g, h;

    V_SET(r0, st[0], st[1], st[2], st[3]);
    V_SET(r1, st[4], st[5], st[6], st[7]);
    V_SET(r2, st[8], st[9], st[10], st[11]);
    V_SET(r3, st[12], st[13], st[14], st[15]);
    V_SET(r3n, st[12] + 1U, st[13], st[14], st[15]);
    a = e = r0;
    b = f = r1;
    c = g = r2;
    d = r3;
    h = r3n;
    for (int i = 0; i < 10; i++) {
        DOUBLEROUND_ROWS2(a, b, c, d, e, f, g, h);
    }
    v_store_le(ks, a + r0);
    v_store_le(ks + 16, b + r1);
    v_store_le(ks + 32, c + r2);
    v_store_le(ks + 48, d + r3);
    v_store_le(ks + 64, e + r0);
    v_store_le(ks + 80, f + r1);
    v_store_le(ks + 96, g + r2);
    v_store_le(ks + 112, h + r3n);
}

/* ---- four blocks, a word of the state per vector ---- */

#define QUARTERROUND4(x, a, b, c, d)                                       \
    do {                                                                   \
        V_ADD((x)[a], (x)[b]);                                             \
        V_XORROT16((x)[d], (x)[a]);                                        \
        V_ADD((x)[c], (x)[d]);                                             \
        V_XORROT((x)[b], (x)[c], 12);                                      \
        V_ADD((x)[a], (x)[b]);                                             \
        V_XORROT((x)[d], (x)[a], 8);                                       \
        V_ADD((x)[c], (x)[d]);                                             \
        V_XORROT((x)[b], (x)[c], 7);                                       \
    } while (0)

/* Four consecutive blocks (counters st[12] .. st[12] + 3): x[i] holds
 * word i of the four blocks. */
static void chacha20_core4(u32x4 x[16], const uint32_t st[16])
{
    u32x4 in[16];

    for (int i = 0; i < 16; i++) {
        V_SET(in[i], st[i], st[i], st[i], st[i]);
    }
    V_SET(in[12], st[12], st[12] + 1U, st[12] + 2U, st[12] + 3U);
    for (int i = 0; i < 16; i++) {
        x[i] = in[i];
    }
    for (int i = 0; i < 10; i++) {
        QUARTERROUND4(x, 0, 4, 8, 12);
        QUARTERROUND4(x, 1, 5, 9, 13);
        QUARTERROUND4(x, 2, 6, 10, 14);
        QUARTERROUND4(x, 3, 7, 11, 15);
        QUARTERROUND4(x, 0, 5, 10, 15);
        QUARTERROUND4(x, 1, 6, 11, 12);
        QUARTERROUND4(x, 2, 7, 8, 13);
        QUARTERROUND4(x, 3, 4, 9, 14);
    }
    for (int i = 0; i < 16; i++) {
        V_ADD(x[i], in[i]);
    }
    ms_os_wipe(in, sizeof in);
}
#endif /* MS_CHACHA20_VECTORS */

/* ks = n (1 or 2) serialized keystream blocks from counter st[12]
 * (the second one's counter is st[12] + 1, mod 2^32). */
static void chacha20_keystream(unsigned char *ks, const uint32_t st[16],
                               size_t n)
{
    uint32_t x[16];

#if defined(MS_CHACHA20_VECTORS)
    if (n == 2) {
        chacha20_core2(ks, st);
        return;
    }
#endif
    chacha20_core(x, st);
    chacha20_serialize(ks, x);
    if (n == 2) {
        uint32_t s[16];
        for (size_t i = 0; i < 16; i++) {
            s[i] = st[i];
        }
        s[12]++;
        chacha20_core(x, s);
        chacha20_serialize(ks + 64, x);
        ms_os_wipe(s, sizeof s);
    }
    ms_os_wipe(x, sizeof x);
}

void ms_chacha20_block(const unsigned char key[32], uint32_t counter,
                       const unsigned char nonce[12], unsigned char out[64])
{
    uint32_t st[16];
    uint32_t x[16];

    chacha20_setup(st, key, counter, nonce);
    chacha20_core(x, st);
    chacha20_serialize(out, x);
    ms_os_wipe(st, sizeof st);
    ms_os_wipe(x, sizeof x);
}

/* Keystream for blocks counter .. counter + n - 1 must not pass 2^32 - 1. */
static int chacha20_fits(uint32_t counter, size_t len)
{
    uint64_t blocks = (uint64_t)(len / 64U) + (uint64_t)(len % 64U != 0U);
    return blocks <= (uint64_t)0x100000000U - (uint64_t)counter;
}

/* The XOR itself; the caller has checked chacha20_fits. */
static void chacha20_stream(const unsigned char key[32], uint32_t counter,
                            const unsigned char nonce[12],
                            const unsigned char *in, unsigned char *out,
                            size_t len)
{
    uint32_t st[16];
    uint32_t x[16];

    if (len == 0) {
        return;
    }
    chacha20_setup(st, key, counter, nonce);
#if defined(MS_CHACHA20_VECTORS)
    if (len >= LANES_BYTES) {
        u32x4 x4[16];
        while (len >= LANES_BYTES) {
            chacha20_core4(x4, st);
            for (size_t j = 0; j < LANES; j++) {
                for (size_t i = 0; i < 16; i++) {
                    store32_le(out + 64 * j + 4 * i,
                               load32_le(in + 64 * j + 4 * i) ^
                                   V_LANE(x4[i], j));
                }
            }
            st[12] += LANES; /* wraps only after the last block */
            len -= LANES_BYTES;
            if (len == 0) {
                break;
            }
            in += LANES_BYTES;
            out += LANES_BYTES;
        }
        ms_os_wipe(x4, sizeof x4);
    }
    /* The last blocks two at a time, while more than one is left. */
    if (len > 64) {
        unsigned char ks[128];
        while (len > 64) {
            size_t m = len < 128 ? len : 128;
            chacha20_keystream(ks, st, 2);
            for (size_t i = 0; i < m; i++) {
                out[i] = (unsigned char)(in[i] ^ ks[i]);
            }
            st[12] += 2; /* wraps only after the last block */
            len -= m;
            in += m;
            out += m;
        }
        ms_os_wipe(ks, sizeof ks);
    }
#endif
    while (len >= 64) {
        chacha20_core(x, st);
        for (size_t i = 0; i < 16; i++) {
            store32_le(out + 4 * i, load32_le(in + 4 * i) ^ x[i]);
        }
        st[12]++; /* wraps only after the last block (chacha20_fits) */
        len -= 64;
        if (len == 0) {
            break;
        }
        in += 64;
        out += 64;
    }
    if (len > 0) {
        unsigned char ks[64];
        chacha20_core(x, st);
        chacha20_serialize(ks, x);
        for (size_t i = 0; i < len; i++) {
            out[i] = (unsigned char)(in[i] ^ ks[i]);
        }
        ms_os_wipe(ks, sizeof ks);
    }
    ms_os_wipe(st, sizeof st);
    ms_os_wipe(x, sizeof x);
}

int ms_chacha20_xor(const unsigned char key[32], uint32_t counter,
                    const unsigned char nonce[12], const unsigned char *in,
                    unsigned char *out, size_t len)
{
    if (!chacha20_fits(counter, len)) {
        return -1;
    }
    chacha20_stream(key, counter, nonce, in, out, len);
    return 0;
}

/* ---- Poly1305 (RFC 8439 2.5) ------------------------------------------- */

#define LIMB 0x3ffffffU    /* 26 bits */
#define HIBIT (1U << 24)   /* 2^128 in the top limb (bit 24 of limb 4) */

typedef struct {
    uint32_t r[5]; /* clamped r, 26-bit limbs */
    uint32_t h[5]; /* accumulator, 26-bit limbs (partly reduced) */
    uint32_t s[4]; /* s, little-endian 32-bit words */
} poly1305_state;

static void poly1305_init(poly1305_state *p, const unsigned char key[32])
{
    uint32_t t0 = load32_le(key);
    uint32_t t1 = load32_le(key + 4);
    uint32_t t2 = load32_le(key + 8);
    uint32_t t3 = load32_le(key + 12);

    /* r &= 0x0ffffffc0ffffffc0ffffffc0fffffff, split into 26-bit limbs. */
    p->r[0] = t0 & 0x3ffffffU;
    p->r[1] = ((t0 >> 26) | (t1 << 6)) & 0x3ffff03U;
    p->r[2] = ((t1 >> 20) | (t2 << 12)) & 0x3ffc0ffU;
    p->r[3] = ((t2 >> 14) | (t3 << 18)) & 0x3f03fffU;
    p->r[4] = (t3 >> 8) & 0x00fffffU;
    for (int i = 0; i < 5; i++) {
        p->h[i] = 0;
    }
    for (size_t i = 0; i < 4; i++) {
        p->s[i] = load32_le(key + 16 + 4 * i);
    }
}

/* h = (h + m) * r mod 2^130 - 5 for each 16-byte block of m; hibit is
 * 2^128 (HIBIT) for a full block, 0 for the padded final block. */
static void poly1305_blocks(poly1305_state *p, const unsigned char *m,
                            size_t nblocks, uint32_t hibit)
{
    const uint32_t r0 = p->r[0], r1 = p->r[1], r2 = p->r[2], r3 = p->r[3],
                   r4 = p->r[4];
    /* 2^130 = 5 mod p: limb products that pass 2^130 come back times 5. */
    const uint32_t s1 = r1 * 5U, s2 = r2 * 5U, s3 = r3 * 5U, s4 = r4 * 5U;
    uint32_t h0 = p->h[0], h1 = p->h[1], h2 = p->h[2], h3 = p->h[3],
             h4 = p->h[4];

    while (nblocks-- > 0) {
        uint32_t t0 = load32_le(m);
        uint32_t t1 = load32_le(m + 4);
        uint32_t t2 = load32_le(m + 8);
        uint32_t t3 = load32_le(m + 12);
        uint64_t d0, d1, d2, d3, d4, c;

        h0 += t0 & LIMB;
        h1 += ((t0 >> 26) | (t1 << 6)) & LIMB;
        h2 += ((t1 >> 20) | (t2 << 12)) & LIMB;
        h3 += ((t2 >> 14) | (t3 << 18)) & LIMB;
        h4 += (t3 >> 8) | hibit;

        d0 = (uint64_t)h0 * r0 + (uint64_t)h1 * s4 + (uint64_t)h2 * s3 +
             (uint64_t)h3 * s2 + (uint64_t)h4 * s1;
        d1 = (uint64_t)h0 * r1 + (uint64_t)h1 * r0 + (uint64_t)h2 * s4 +
             (uint64_t)h3 * s3 + (uint64_t)h4 * s2;
        d2 = (uint64_t)h0 * r2 + (uint64_t)h1 * r1 + (uint64_t)h2 * r0 +
             (uint64_t)h3 * s4 + (uint64_t)h4 * s3;
        d3 = (uint64_t)h0 * r3 + (uint64_t)h1 * r2 + (uint64_t)h2 * r1 +
             (uint64_t)h3 * r0 + (uint64_t)h4 * s4;
        d4 = (uint64_t)h0 * r4 + (uint64_t)h1 * r3 + (uint64_t)h2 * r2 +
             (uint64_t)h3 * r1 + (uint64_t)h4 * r0;

        /* Carry back to 26-bit limbs (partial reduction). */
        c = d0 >> 26;
        h0 = (uint32_t)d0 & LIMB;
        d1 += c;
        c = d1 >> 26;
        h1 = (uint32_t)d1 & LIMB;
        d2 += c;
        c = d2 >> 26;
        h2 = (uint32_t)d2 & LIMB;
        d3 += c;
        c = d3 >> 26;
        h3 = (uint32_t)d3 & LIMB;
        d4 += c;
        c = d4 >> 26;
        h4 = (uint32_t)d4 & LIMB;
        d0 = (uint64_t)h0 + c * 5U;
        h0 = (uint32_t)d0 & LIMB;
        h1 += (uint32_t)(d0 >> 26);

        m += 16;
    }
    p->h[0] = h0;
    p->h[1] = h1;
    p->h[2] = h2;
    p->h[3] = h3;
    p->h[4] = h4;
}

/* Feed len bytes as whole blocks, zero-padding the last one to 16 bytes
 * (the AEAD's pad16; the padding is part of the message, so each block
 * still gets 2^128). */
static void poly1305_update_pad16(poly1305_state *p, const unsigned char *m,
                                  size_t len)
{
    size_t full = len / 16U, rest = len % 16U;

    if (full > 0) {
        poly1305_blocks(p, m, full, HIBIT);
    }
    if (rest > 0) {
        unsigned char block[16] = {0};
        const unsigned char *tail = m + full * 16U;
        for (size_t i = 0; i < rest; i++) {
            block[i] = tail[i];
        }
        poly1305_blocks(p, block, 1, HIBIT);
        ms_os_wipe(block, sizeof block);
    }
}

/* Carry h all the way, reduce it mod 2^130 - 5, add s, write the tag and
 * wipe the state. */
static void poly1305_finish(poly1305_state *p, unsigned char tag[16])
{
    uint32_t h0 = p->h[0], h1 = p->h[1], h2 = p->h[2], h3 = p->h[3],
             h4 = p->h[4];
    uint32_t g0, g1, g2, g3, g4, c, mask;
    uint64_t f;

    /* One carry pass leaves every limb below 2^26 (h < 2^130).  On entry
     * h0, h2, h3, h4 < 2^26 and h1 < 2^26 + 2^7 (poly1305_blocks).  A carry
     * can come round into h0 only if one left h1, and then h1 is below 2^7
     * when it takes that last carry. */
    c = h1 >> 26;
    h1 &= LIMB;
    h2 += c;
    c = h2 >> 26;
    h2 &= LIMB;
    h3 += c;
    c = h3 >> 26;
    h3 &= LIMB;
    h4 += c;
    c = h4 >> 26;
    h4 &= LIMB;
    h0 += c * 5U;
    c = h0 >> 26;
    h0 &= LIMB;
    h1 += c;

    /* g = h + 5 - 2^130; keep g when it did not go negative (h >= p). */
    g0 = h0 + 5U;
    c = g0 >> 26;
    g0 &= LIMB;
    g1 = h1 + c;
    c = g1 >> 26;
    g1 &= LIMB;
    g2 = h2 + c;
    c = g2 >> 26;
    g2 &= LIMB;
    g3 = h3 + c;
    c = g3 >> 26;
    g3 &= LIMB;
    g4 = h4 + c - (1U << 26);

    mask = (g4 >> 31) - 1U; /* all ones: use g; zero: keep h */
    h0 = (h0 & ~mask) | (g0 & mask);
    h1 = (h1 & ~mask) | (g1 & mask);
    h2 = (h2 & ~mask) | (g2 & mask);
    h3 = (h3 & ~mask) | (g3 & mask);
    h4 = (h4 & ~mask) | (g4 & mask);

    /* h mod 2^128 as four words, plus s mod 2^128. */
    h0 = h0 | (h1 << 26);
    h1 = (h1 >> 6) | (h2 << 20);
    h2 = (h2 >> 12) | (h3 << 14);
    h3 = (h3 >> 18) | (h4 << 8);

    f = (uint64_t)h0 + p->s[0];
    store32_le(tag, (uint32_t)f);
    f = (uint64_t)h1 + p->s[1] + (f >> 32);
    store32_le(tag + 4, (uint32_t)f);
    f = (uint64_t)h2 + p->s[2] + (f >> 32);
    store32_le(tag + 8, (uint32_t)f);
    f = (uint64_t)h3 + p->s[3] + (f >> 32);
    store32_le(tag + 12, (uint32_t)f);

    ms_os_wipe(p, sizeof *p);
}

void ms_poly1305(const unsigned char key[32], const unsigned char *msg,
                 size_t len, unsigned char tag[16])
{
    poly1305_state p;
    size_t full = len / 16U, rest = len % 16U;

    poly1305_init(&p, key);
    if (full > 0) {
        poly1305_blocks(&p, msg, full, HIBIT);
    }
    if (rest > 0) {
        /* The short last block gets its 2^(8 * rest) as a 0x01 byte. */
        unsigned char block[16] = {0};
        const unsigned char *tail = msg + full * 16U;
        for (size_t i = 0; i < rest; i++) {
            block[i] = tail[i];
        }
        block[rest] = 1;
        poly1305_blocks(&p, block, 1, 0);
        ms_os_wipe(block, sizeof block);
    }
    poly1305_finish(&p, tag);
}

/* ---- AEAD_CHACHA20_POLY1305 (RFC 8439 2.8) ----------------------------- */

/* Keystream block 0, whose first 32 bytes are the one-time Poly1305 key,
 * into ks[0..63]; for a message of 1..64 bytes also block 1, all of its
 * keystream, into ks[64..127], computed together with block 0 (returns 1
 * then, else 0: the message goes through chacha20_stream). */
static int aead_blocks(unsigned char ks[128], const unsigned char key[32],
                       const unsigned char nonce[12], size_t len)
{
    uint32_t st[16];
    size_t n = len > 0 && len <= 64 ? 2 : 1;

    chacha20_setup(st, key, 0, nonce);
    chacha20_keystream(ks, st, n);
    ms_os_wipe(st, sizeof st);
    return n == 2;
}

/* Poly1305 over ad | pad16 | ct | pad16 | le64(adlen) | le64(len), keyed by
 * otk (the first 32 bytes of ChaCha20 block 0). */
static void aead_tag(const unsigned char otk[32], const unsigned char *ad,
                     size_t adlen, const unsigned char *ct, size_t len,
                     unsigned char tag[16])
{
    unsigned char lengths[16];
    poly1305_state p;

    poly1305_init(&p, otk);
    poly1305_update_pad16(&p, ad, adlen);
    poly1305_update_pad16(&p, ct, len);
    store64_le(lengths, (uint64_t)adlen);
    store64_le(lengths + 8, (uint64_t)len);
    poly1305_blocks(&p, lengths, 1, HIBIT);
    ms_os_wipe(lengths, sizeof lengths);
    poly1305_finish(&p, tag);
}

/* 0 if the 16 bytes are equal, -1 if not, without a data-dependent
 * branch. */
static int tag_verify(const unsigned char a[16], const unsigned char b[16])
{
    uint32_t d = 0;
    for (int i = 0; i < 16; i++) {
        d |= (uint32_t)(a[i] ^ b[i]);
    }
    /* d is 0..255; d - 1 wraps to all ones (bit 8 set) only for d == 0. */
    return (int)((d - 1U) >> 8 & 1U) - 1;
}

int ms_aead_seal(const unsigned char key[32], const unsigned char nonce[12],
                 const unsigned char *ad, size_t adlen,
                 const unsigned char *pt, size_t len, unsigned char *ct,
                 unsigned char tag[16])
{
    unsigned char ks[128];

    if ((uint64_t)len > MS_AEAD_MAX_LEN) {
        return -1;
    }
    if (aead_blocks(ks, key, nonce, len)) {
        for (size_t i = 0; i < len; i++) {
            ct[i] = (unsigned char)(pt[i] ^ ks[64 + i]);
        }
    } else {
        chacha20_stream(key, 1, nonce, pt, ct, len);
    }
    aead_tag(ks, ad, adlen, ct, len, tag);
    ms_os_wipe(ks, sizeof ks);
    return 0;
}

int ms_aead_open(const unsigned char key[32], const unsigned char nonce[12],
                 const unsigned char *ad, size_t adlen,
                 const unsigned char *ct, size_t len,
                 const unsigned char tag[16], unsigned char *pt)
{
    unsigned char ks[128];
    unsigned char expected[16];
    int verdict, short_msg;

    if ((uint64_t)len > MS_AEAD_MAX_LEN) {
        return -1;
    }
    short_msg = aead_blocks(ks, key, nonce, len);
    aead_tag(ks, ad, adlen, ct, len, expected);
    verdict = tag_verify(expected, tag);
    ms_os_wipe(expected, sizeof expected);
    /* The one secret-derived value the code branches on: public once the
     * comparison is done (an attacker learns it from the return value). */
    MS_CT_DECLASSIFY(&verdict, sizeof verdict);
    if (verdict != 0) {
        ms_os_wipe(ks, sizeof ks);
        return -1;
    }
    if (short_msg) {
        for (size_t i = 0; i < len; i++) {
            pt[i] = (unsigned char)(ct[i] ^ ks[64 + i]);
        }
    } else {
        chacha20_stream(key, 1, nonce, ct, pt, len);
    }
    ms_os_wipe(ks, sizeof ks);
    return 0;
}
