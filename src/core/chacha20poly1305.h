/*
 * chacha20poly1305.h - ChaCha20, Poly1305 and the ChaCha20-Poly1305 AEAD
 * (RFC 8439), for the sealed storage engine.
 *
 * Portable C11 with no dependency but platform.h (ms_os_wipe).  Constant
 * time: no branch and no memory index depends on a key, plaintext or tag
 * byte; only lengths (public) steer the code.  Every named temporary
 * (keystream blocks, the Poly1305 one-time key, accumulator and working
 * state, the computed tag) is wiped before a function returns.
 *
 * Buffers may be equal (in-place operation) where a comment says so; partly
 * overlapping buffers are not supported.  A pointer may be NULL when its
 * length is 0.
 */
#ifndef MEMSAFE_CHACHA20POLY1305_H
#define MEMSAFE_CHACHA20POLY1305_H

#include <stddef.h>
#include <stdint.h>

#define MS_AEAD_KEY_LEN 32
#define MS_AEAD_NONCE_LEN 12
#define MS_AEAD_TAG_LEN 16

/* P_MAX of RFC 8439 2.8: 2^32 - 1 blocks of 64 bytes (counter 0 makes the
 * one-time Poly1305 key, the data starts at counter 1). */
#define MS_AEAD_MAX_LEN ((uint64_t)0xffffffffU * 64U)

/* One 64-byte ChaCha20 block (RFC 8439 2.3).  Also used as a PRF and as a
 * userspace CSPRNG stream. */
void ms_chacha20_block(const unsigned char key[32], uint32_t counter,
                       const unsigned char nonce[12], unsigned char out[64]);

/* XOR len bytes of keystream starting at block `counter` into in -> out
 * (in == out allowed).  Returns -1 (and writes nothing) if len would
 * overflow the 32-bit block counter, else 0. */
int ms_chacha20_xor(const unsigned char key[32], uint32_t counter,
                    const unsigned char nonce[12], const unsigned char *in,
                    unsigned char *out, size_t len);

/* Poly1305 (RFC 8439 2.5) of len bytes under a one-time 32-byte key. */
void ms_poly1305(const unsigned char key[32], const unsigned char *msg,
                 size_t len, unsigned char tag[16]);

/* AEAD seal: ct (may equal pt) gets len bytes, tag 16 bytes.  Returns 0,
 * or -1 (nothing written) if len is too large for the cipher. */
int ms_aead_seal(const unsigned char key[32], const unsigned char nonce[12],
                 const unsigned char *ad, size_t adlen,
                 const unsigned char *pt, size_t len, unsigned char *ct,
                 unsigned char tag[16]);

/* AEAD open: verifies the tag (constant-time compare) BEFORE writing any
 * plaintext; returns 0 and writes pt (may equal ct) on success, -1 on a bad
 * tag (pt untouched) or bad length. */
int ms_aead_open(const unsigned char key[32], const unsigned char nonce[12],
                 const unsigned char *ad, size_t adlen,
                 const unsigned char *ct, size_t len,
                 const unsigned char tag[16], unsigned char *pt);

#endif /* MEMSAFE_CHACHA20POLY1305_H */
