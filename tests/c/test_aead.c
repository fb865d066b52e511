/*
 * test_aead.c - ChaCha20, Poly1305 and ChaCha20-Poly1305 (src/core/
 * chacha20poly1305.c) against RFC 8439, without Python.
 *
 * Build and run (scripts/aead-check does this with gcc and clang, and once
 * more with ASan+UBSan):
 *   gcc -std=c11 -Wall -Wextra -Werror -O2 -Isrc/core tests/c/test_aead.c \
 *       src/core/chacha20poly1305.c src/core/platform_posix.c -o /tmp/ta
 *   /tmp/ta
 * Windows (mingw-w64): the same with src/core/platform_win.c -lbcrypt.
 *
 * Checks: every test vector of RFC 8439 (2.3.2, 2.4.2, 2.5.2, 2.6.2, 2.8.2
 * and Appendix A.1-A.5); in-place sealing and opening; a tampered tag,
 * ciphertext, associated data, nonce or key fails and leaves the output
 * untouched; lengths 0..300 round-trip and match an independent assembly
 * of the construction from ms_chacha20_xor and ms_poly1305; Poly1305
 * against a slow big-number reference (random and extreme inputs); the
 * block function, keystreams of 1..320 bytes (one block, two at once, four
 * at once, tails) and short AEAD messages (key block and data block at
 * once) against a plain transcription of RFC 8439 2.3 on random keys,
 * nonces and counters up to 2^32 - 1; a long message over many blocks; the
 * 32-bit block counter limit; NULL pointers with length 0.
 *
 * Prints one line per failed check and "test_aead: N passed, M failed";
 * exits non-zero if any check failed.
 */
#include "chacha20poly1305.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed;
static int failed;

static void check(int ok, const char *what)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL: %s\n", what);
    }
}

/* Hex digits to bytes; spaces, colons and newlines between them are
 * ignored.  Returns the byte count; aborts on malformed input (a typo in a
 * vector must not pass silently). */
static size_t unhex(const char *s, unsigned char *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s != '\0'; s++) {
        int v;
        char ch = *s;
        if (ch == ' ' || ch == ':' || ch == '\n') {
            continue;
        }
        if (ch >= '0' && ch <= '9') {
            v = ch - '0';
        } else if (ch >= 'a' && ch <= 'f') {
            v = ch - 'a' + 10;
        } else if (ch >= 'A' && ch <= 'F') {
            v = ch - 'A' + 10;
        } else {
            (void)fprintf(stderr, "unhex: bad character %d\n", ch);
            abort();
        }
        if (hi < 0) {
            hi = v;
        } else {
            if (n == cap) {
                (void)fprintf(stderr, "unhex: output too small\n");
                abort();
            }
            out[n++] = (unsigned char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0) {
        (void)fprintf(stderr, "unhex: odd number of digits\n");
        abort();
    }
    return n;
}

/* ---- the vectors -------------------------------------------------------- */

static const char KEY_SEQ[] = /* 2.3.2, 2.4.2 */
    "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f"
    "10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f";
static const char KEY_80[] = /* 2.6.2, 2.8.2 */
    "80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f"
    "90 91 92 93 94 95 96 97 98 99 9a 9b 9c 9d 9e 9f";
static const char KEY_ZERO[] =
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00";
static const char KEY_ONE[] =
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01";
static const char KEY_1C[] = /* A.2 #3, A.3 #4, A.4 #3, A.5 */
    "1c 92 40 a5 eb 55 d3 8a f3 33 88 86 04 f6 b5 f0"
    "47 39 17 c1 40 2b 80 09 9d ca 5c bc 20 70 75 c0";

static const char SUNSCREEN[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only "
    "one tip for the future, sunscreen would be it.";
static const char IETF[] =
    "Any submission to the IETF intended by the Contributor for "
    "publication as all or part of an IETF Internet-Draft or RFC and any "
    "statement made within the context of an IETF activity is considered "
    "an \"IETF Contribution\". Such statements include oral statements in "
    "IETF sessions, as well as written and electronic communications made "
    "at any time or place, which are addressed to";
static const char JABBERWOCKY[] =
    "'Twas brillig, and the slithy toves\nDid gyre and gimble in the "
    "wabe:\nAll mimsy were the borogoves,\nAnd the mome raths outgrabe.";
static const char DRAFTS[] =
    "Internet-Drafts are draft documents valid for a maximum of six months "
    "and may be updated, replaced, or obsoleted by other documents at any "
    "time. It is inappropriate to use Internet-Drafts as reference "
    "material or to cite them other than as /\xe2\x80\x9cwork in "
    "progress./\xe2\x80\x9d";

typedef struct {
    const char *name;
    const char *key;
    const char *nonce;
    uint32_t counter;
    const char *out; /* the 64 serialized bytes */
} block_vector;

static const block_vector BLOCKS[] = {
    {"2.3.2", KEY_SEQ, "00 00 00 09 00 00 00 4a 00 00 00 00", 1,
     "10 f1 e7 e4 d1 3b 59 15 50 0f dd 1f a3 20 71 c4"
     "c7 d1 f4 c7 33 c0 68 03 04 22 aa 9a c3 d4 6c 4e"
     "d2 82 64 46 07 9f aa 09 14 c2 d7 05 d9 8b 02 a2"
     "b5 12 9c d1 de 16 4e b9 cb d0 83 e8 a2 50 3c 4e"},
    {"A.1 #1", KEY_ZERO, "00 00 00 00 00 00 00 00 00 00 00 00", 0,
     "76 b8 e0 ad a0 f1 3d 90 40 5d 6a e5 53 86 bd 28"
     "bd d2 19 b8 a0 8d ed 1a a8 36 ef cc 8b 77 0d c7"
     "da 41 59 7c 51 57 48 8d 77 24 e0 3f b8 d8 4a 37"
     "6a 43 b8 f4 15 18 a1 1c c3 87 b6 69 b2 ee 65 86"},
    {"A.1 #2", KEY_ZERO, "00 00 00 00 00 00 00 00 00 00 00 00", 1,
     "9f 07 e7 be 55 51 38 7a 98 ba 97 7c 73 2d 08 0d"
     "cb 0f 29 a0 48 e3 65 69 12 c6 53 3e 32 ee 7a ed"
     "29 b7 21 76 9c e6 4e 43 d5 71 33 b0 74 d8 39 d5"
     "31 ed 1f 28 51 0a fb 45 ac e1 0a 1f 4b 79 4d 6f"},
    {"A.1 #3", KEY_ONE, "00 00 00 00 00 00 00 00 00 00 00 00", 1,
     "3a eb 52 24 ec f8 49 92 9b 9d 82 8d b1 ce d4 dd"
     "83 20 25 e8 01 8b 81 60 b8 22 84 f3 c9 49 aa 5a"
     "8e ca 00 bb b4 a7 3b da d1 92 b5 c4 2f 73 f2 fd"
     "4e 27 36 44 c8 b3 61 25 a6 4a dd eb 00 6c 13 a0"},
    {"A.1 #4",
     "00 ff 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     "00 00 00 00 00 00 00 00 00 00 00 00", 2,
     "72 d5 4d fb f1 2e c4 4b 36 26 92 df 94 13 7f 32"
     "8f ea 8d a7 39 90 26 5e c1 bb be a1 ae 9a f0 ca"
     "13 b2 5a a2 6c b4 a6 48 cb 9b 9d 1b e6 5b 2c 09"
     "24 a6 6c 54 d5 45 ec 1b 73 74 f4 87 2e 99 f0 96"},
    {"A.1 #5", KEY_ZERO, "00 00 00 00 00 00 00 00 00 00 00 02", 0,
     "c2 c6 4d 37 8c d5 36 37 4a e2 04 b9 ef 93 3f cd"
     "1a 8b 22 88 b3 df a4 96 72 ab 76 5b 54 ee 27 c7"
     "8a 97 0e 0e 95 5c 14 f3 a8 8e 74 1b 97 c2 86 f7"
     "5f 8f c2 99 e8 14 83 62 fa 19 8a 39 53 1b ed 6d"},
};

typedef struct {
    const char *name;
    const char *key;
    const char *nonce;
    uint32_t counter;
    const char *pt_text; /* plaintext as text, or NULL: */
    size_t pt_zeros;     /* ... this many zero bytes */
    const char *ct;
} stream_vector;

static const stream_vector STREAMS[] = {
    {"2.4.2", KEY_SEQ, "00 00 00 00 00 00 00 4a 00 00 00 00", 1, SUNSCREEN,
     0,
     "6e 2e 35 9a 25 68 f9 80 41 ba 07 28 dd 0d 69 81"
     "e9 7e 7a ec 1d 43 60 c2 0a 27 af cc fd 9f ae 0b"
     "f9 1b 65 c5 52 47 33 ab 8f 59 3d ab cd 62 b3 57"
     "16 39 d6 24 e6 51 52 ab 8f 53 0c 35 9f 08 61 d8"
     "07 ca 0d bf 50 0d 6a 61 56 a3 8e 08 8a 22 b6 5e"
     "52 bc 51 4d 16 cc f8 06 81 8c e9 1a b7 79 37 36"
     "5a f9 0b bf 74 a3 5b e6 b4 0b 8e ed f2 78 5e 42"
     "87 4d"},
    {"A.2 #1", KEY_ZERO, "00 00 00 00 00 00 00 00 00 00 00 00", 0, NULL, 64,
     "76 b8 e0 ad a0 f1 3d 90 40 5d 6a e5 53 86 bd 28"
     "bd d2 19 b8 a0 8d ed 1a a8 36 ef cc 8b 77 0d c7"
     "da 41 59 7c 51 57 48 8d 77 24 e0 3f b8 d8 4a 37"
     "6a 43 b8 f4 15 18 a1 1c c3 87 b6 69 b2 ee 65 86"},
    {"A.2 #2", KEY_ONE, "00 00 00 00 00 00 00 00 00 00 00 02", 1, IETF, 0,
     "a3 fb f0 7d f3 fa 2f de 4f 37 6c a2 3e 82 73 70"
     "41 60 5d 9f 4f 4f 57 bd 8c ff 2c 1d 4b 79 55 ec"
     "2a 97 94 8b d3 72 29 15 c8 f3 d3 37 f7 d3 70 05"
     "0e 9e 96 d6 47 b7 c3 9f 56 e0 31 ca 5e b6 25 0d"
     "40 42 e0 27 85 ec ec fa 4b 4b b5 e8 ea d0 44 0e"
     "20 b6 e8 db 09 d8 81 a7 c6 13 2f 42 0e 52 79 50"
     "42 bd fa 77 73 d8 a9 05 14 47 b3 29 1c e1 41 1c"
     "68 04 65 55 2a a6 c4 05 b7 76 4d 5e 87 be a8 5a"
     "d0 0f 84 49 ed 8f 72 d0 d6 62 ab 05 26 91 ca 66"
     "42 4b c8 6d 2d f8 0e a4 1f 43 ab f9 37 d3 25 9d"
     "c4 b2 d0 df b4 8a 6c 91 39 dd d7 f7 69 66 e9 28"
     "e6 35 55 3b a7 6c 5c 87 9d 7b 35 d4 9e b2 e6 2b"
     "08 71 cd ac 63 89 39 e2 5e 8a 1e 0e f9 d5 28 0f"
     "a8 ca 32 8b 35 1c 3c 76 59 89 cb cf 3d aa 8b 6c"
     "cc 3a af 9f 39 79 c9 2b 37 20 fc 88 dc 95 ed 84"
     "a1 be 05 9c 64 99 b9 fd a2 36 e7 e8 18 b0 4b 0b"
     "c3 9c 1e 87 6b 19 3b fe 55 69 75 3f 88 12 8c c0"
     "8a aa 9b 63 d1 a1 6f 80 ef 25 54 d7 18 9c 41 1f"
     "58 69 ca 52 c5 b8 3f a3 6f f2 16 b9 c1 d3 00 62"
     "be bc fd 2d c5 bc e0 91 19 34 fd a7 9a 86 f6 e6"
     "98 ce d7 59 c3 ff 9b 64 77 33 8f 3d a4 f9 cd 85"
     "14 ea 99 82 cc af b3 41 b2 38 4d d9 02 f3 d1 ab"
     "7a c6 1d d2 9c 6f 21 ba 5b 86 2f 37 30 e3 7c fd"
     "c4 fd 80 6c 22 f2 21"},
    {"A.2 #3", KEY_1C, "00 00 00 00 00 00 00 00 00 00 00 02", 42,
     JABBERWOCKY, 0,
     "62 e6 34 7f 95 ed 87 a4 5f fa e7 42 6f 27 a1 df"
     "5f b6 91 10 04 4c 0d 73 11 8e ff a9 5b 01 e5 cf"
     "16 6d 3d f2 d7 21 ca f9 b2 1e 5f b1 4c 61 68 71"
     "fd 84 c5 4f 9d 65 b2 83 19 6c 7f e4 f6 05 53 eb"
     "f3 9c 64 02 c4 22 34 e3 2a 35 6b 3e 76 43 12 a6"
     "1a 55 32 05 57 16 ea d6 96 25 68 f8 7d 3f 3f 77"
     "04 c6 a8 d1 bc d1 bf 4d 50 d6 15 4b 6d a7 31 b1"
     "87 b5 8d fd 72 8a fa 36 75 7a 79 7a c1 88 d1"},
};

typedef struct {
    const char *name;
    const char *key;     /* r | s, 32 bytes */
    const char *msg_text; /* message as text, or NULL: */
    const char *msg_hex;  /* ... as hex */
    size_t msg_zeros;     /* ... or this many zero bytes */
    const char *tag;
} poly_vector;

static const poly_vector POLYS[] = {
    {"2.5.2",
     "85 d6 be 78 57 55 6d 33 7f 44 52 fe 42 d5 06 a8"
     "01 03 80 8a fb 0d b2 fd 4a bf f6 af 41 49 f5 1b",
     "Cryptographic Forum Research Group", NULL, 0,
     "a8 06 1d c1 30 51 36 c6 c2 2b 8b af 0c 01 27 a9"},
    {"A.3 #1", KEY_ZERO, NULL, NULL, 64,
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
    {"A.3 #2",
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
     "36 e5 f6 b5 c5 e0 60 70 f0 ef ca 96 22 7a 86 3e",
     IETF, NULL, 0, "36 e5 f6 b5 c5 e0 60 70 f0 ef ca 96 22 7a 86 3e"},
    {"A.3 #3",
     "36 e5 f6 b5 c5 e0 60 70 f0 ef ca 96 22 7a 86 3e"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     IETF, NULL, 0, "f3 47 7e 7c d9 54 17 af 89 a6 b8 79 4c 31 0c f0"},
    {"A.3 #4", KEY_1C, JABBERWOCKY, NULL, 0,
     "45 41 66 9a 7e aa ee 61 e7 08 dc 7c bc c5 eb 62"},
    {"A.3 #5",
     "02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     NULL, "FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF", 0,
     "03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
    {"A.3 #6",
     "02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
     "FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF",
     NULL, "02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", 0,
     "03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
    {"A.3 #7",
     "01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     NULL,
     "FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF"
     "F0 FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF"
     "11 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     0, "05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
    {"A.3 #8",
     "01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     NULL,
     "FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF"
     "FB FE FE FE FE FE FE FE FE FE FE FE FE FE FE FE"
     "01 01 01 01 01 01 01 01 01 01 01 01 01 01 01 01",
     0, "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
    {"A.3 #9",
     "02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     NULL, "FD FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF", 0,
     "FA FF FF FF FF FF FF FF FF FF FF FF FF FF FF FF"},
    {"A.3 #10",
     "01 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     NULL,
     "E3 35 94 D7 50 5E 43 B9 00 00 00 00 00 00 00 00"
     "33 94 D7 50 5E 43 79 CD 01 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
     "01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     0, "14 00 00 00 00 00 00 00 55 00 00 00 00 00 00 00"},
    {"A.3 #11",
     "01 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     NULL,
     "E3 35 94 D7 50 5E 43 B9 00 00 00 00 00 00 00 00"
     "33 94 D7 50 5E 43 79 CD 01 00 00 00 00 00 00 00"
     "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
     0, "13 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
};

typedef struct {
    const char *name;
    const char *key;
    const char *nonce;
    const char *otk;
} keygen_vector;

static const keygen_vector KEYGENS[] = {
    {"2.6.2", KEY_80, "00 00 00 00 00 01 02 03 04 05 06 07",
     "8a d5 a0 8b 90 5f 81 cc 81 50 40 27 4a b2 94 71"
     "a8 33 b6 37 e3 fd 0d a5 08 db b8 e2 fd d1 a6 46"},
    {"2.8.2 one-time key", KEY_80, "07 00 00 00 40 41 42 43 44 45 46 47",
     "7b ac 2b 25 2d b4 47 af 09 b6 7a 55 a4 e9 55 84"
     "0a e1 d6 73 10 75 d9 eb 2a 93 75 78 3e d5 53 ff"},
    {"A.4 #1", KEY_ZERO, "00 00 00 00 00 00 00 00 00 00 00 00",
     "76 b8 e0 ad a0 f1 3d 90 40 5d 6a e5 53 86 bd 28"
     "bd d2 19 b8 a0 8d ed 1a a8 36 ef cc 8b 77 0d c7"},
    {"A.4 #2", KEY_ONE, "00 00 00 00 00 00 00 00 00 00 00 02",
     "ec fa 25 4f 84 5f 64 74 73 d3 cb 14 0d a9 e8 76"
     "06 cb 33 06 6c 44 7b 87 bc 26 66 dd e3 fb b7 39"},
    {"A.4 #3", KEY_1C, "00 00 00 00 00 00 00 00 00 00 00 02",
     "96 5e 3b c6 f9 ec 7e d9 56 08 08 f4 d2 29 f9 4b"
     "13 7f f2 75 ca 9b 3f cb dd 59 de aa d2 33 10 ae"},
    {"A.5 one-time key", KEY_1C, "00 00 00 00 01 02 03 04 05 06 07 08",
     "bd f0 4a a9 5c e4 de 89 95 b1 4b b6 a1 8f ec af"
     "26 47 8f 50 c0 54 f5 63 db c0 a2 1e 26 15 72 aa"},
};

typedef struct {
    const char *name;
    const char *key;
    const char *nonce;
    const char *ad;
    const char *pt_text;
    const char *ct;
    const char *tag;
} aead_vector;

static const aead_vector AEADS[] = {
    {"2.8.2", KEY_80, "07 00 00 00 40 41 42 43 44 45 46 47",
     "50 51 52 53 c0 c1 c2 c3 c4 c5 c6 c7", SUNSCREEN,
     "d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2"
     "a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6"
     "3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b"
     "1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36"
     "92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58"
     "fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc"
     "3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b"
     "61 16",
     "1a e1 0b 59 4f 09 e2 6a 7e 90 2e cb d0 60 06 91"},
    {"A.5", KEY_1C, "00 00 00 00 01 02 03 04 05 06 07 08",
     "f3 33 88 86 00 00 00 00 00 00 4e 91", DRAFTS,
     "64 a0 86 15 75 86 1a f4 60 f0 62 c7 9b e6 43 bd"
     "5e 80 5c fd 34 5c f3 89 f1 08 67 0a c7 6c 8c b2"
     "4c 6c fc 18 75 5d 43 ee a0 9e e9 4e 38 2d 26 b0"
     "bd b7 b7 3c 32 1b 01 00 d4 f0 3b 7f 35 58 94 cf"
     "33 2f 83 0e 71 0b 97 ce 98 c8 a8 4a bd 0b 94 81"
     "14 ad 17 6e 00 8d 33 bd 60 f9 82 b1 ff 37 c8 55"
     "97 97 a0 6e f4 f0 ef 61 c1 86 32 4e 2b 35 06 38"
     "36 06 90 7b 6a 7c 02 b0 f9 f6 15 7b 53 c8 67 e4"
     "b9 16 6c 76 7b 80 4d 46 a5 9b 52 16 cd e7 a4 e9"
     "90 40 c5 a4 04 33 22 5e e2 82 a1 b0 a0 6c 52 3e"
     "af 45 34 d7 f8 3f a1 15 5b 00 47 71 8c bc 54 6a"
     "0d 07 2b 04 b3 56 4e ea 1b 42 22 73 f5 48 27 1a"
     "0b b2 31 60 53 fa 76 99 19 55 eb d6 31 59 43 4e"
     "ce bb 4e 46 6d ae 5a 10 73 a6 72 76 27 09 7a 10"
     "49 e6 17 d9 1d 36 10 94 fa 68 f0 ff 77 98 71 30"
     "30 5b ea ba 2e da 04 df 99 7b 71 4d 6c 6f 2c 29"
     "a6 ad 5c b4 02 2b 02 70 9b",
     "ee ad 9d 67 89 0c bb 22 39 23 36 fe a1 85 1f 38"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAXMSG 512

static void test_vectors(void)
{
    unsigned char key[32], nonce[12], want[MAXMSG], got[MAXMSG];
    unsigned char pt[MAXMSG], ad[64], tag[16], want_tag[16];
    char what[128];

    for (size_t i = 0; i < NELEM(BLOCKS); i++) {
        const block_vector *v = &BLOCKS[i];
        check(unhex(v->key, key, sizeof key) == 32 &&
                  unhex(v->nonce, nonce, sizeof nonce) == 12 &&
                  unhex(v->out, want, sizeof want) == 64,
              v->name);
        ms_chacha20_block(key, v->counter, nonce, got);
        (void)snprintf(what, sizeof what, "block function %s", v->name);
        check(memcmp(got, want, 64) == 0, what);
        /* The same block as keystream XORed into zeros. */
        memset(got, 0, 64);
        check(ms_chacha20_xor(key, v->counter, nonce, got, got, 64) == 0 &&
                  memcmp(got, want, 64) == 0,
              what);
    }

    for (size_t i = 0; i < NELEM(STREAMS); i++) {
        const stream_vector *v = &STREAMS[i];
        size_t n;
        (void)snprintf(what, sizeof what, "ChaCha20 encryption %s", v->name);
        unhex(v->key, key, sizeof key);
        unhex(v->nonce, nonce, sizeof nonce);
        n = unhex(v->ct, want, sizeof want);
        if (v->pt_text != NULL) {
            check(strlen(v->pt_text) == n, what);
            memcpy(pt, v->pt_text, n);
        } else {
            check(v->pt_zeros == n, what);
            memset(pt, 0, n);
        }
        check(ms_chacha20_xor(key, v->counter, nonce, pt, got, n) == 0 &&
                  memcmp(got, want, n) == 0,
              what);
        /* Decryption is the same operation, here in place. */
        check(ms_chacha20_xor(key, v->counter, nonce, got, got, n) == 0 &&
                  memcmp(got, pt, n) == 0,
              what);
    }

    for (size_t i = 0; i < NELEM(POLYS); i++) {
        const poly_vector *v = &POLYS[i];
        size_t n;
        (void)snprintf(what, sizeof what, "Poly1305 %s", v->name);
        unhex(v->key, key, sizeof key);
        unhex(v->tag, want_tag, sizeof want_tag);
        if (v->msg_text != NULL) {
            n = strlen(v->msg_text);
            memcpy(pt, v->msg_text, n);
        } else if (v->msg_hex != NULL) {
            n = unhex(v->msg_hex, pt, sizeof pt);
        } else {
            n = v->msg_zeros;
            memset(pt, 0, n);
        }
        ms_poly1305(key, pt, n, tag);
        check(memcmp(tag, want_tag, 16) == 0, what);
    }

    for (size_t i = 0; i < NELEM(KEYGENS); i++) {
        const keygen_vector *v = &KEYGENS[i];
        (void)snprintf(what, sizeof what, "Poly1305 key generation %s",
                       v->name);
        unhex(v->key, key, sizeof key);
        unhex(v->nonce, nonce, sizeof nonce);
        check(unhex(v->otk, want, sizeof want) == 32, what);
        ms_chacha20_block(key, 0, nonce, got);
        check(memcmp(got, want, 32) == 0, what);
    }

    for (size_t i = 0; i < NELEM(AEADS); i++) {
        const aead_vector *v = &AEADS[i];
        size_t n = strlen(v->pt_text), adlen;
        (void)snprintf(what, sizeof what, "AEAD %s", v->name);
        unhex(v->key, key, sizeof key);
        unhex(v->nonce, nonce, sizeof nonce);
        adlen = unhex(v->ad, ad, sizeof ad);
        check(unhex(v->ct, want, sizeof want) == n, what);
        unhex(v->tag, want_tag, sizeof want_tag);
        memset(got, 0xa5, sizeof got);
        check(ms_aead_seal(key, nonce, ad, adlen,
                           (const unsigned char *)v->pt_text, n, got,
                           tag) == 0,
              what);
        check(memcmp(got, want, n) == 0 && memcmp(tag, want_tag, 16) == 0,
              what);
        check(got[n] == 0xa5, what); /* nothing written past len */
        memset(got, 0xa5, sizeof got);
        check(ms_aead_open(key, nonce, ad, adlen, want, n, want_tag, got) ==
                      0 &&
                  memcmp(got, v->pt_text, n) == 0 && got[n] == 0xa5,
              what);
    }
}

/* ---- construction checks ------------------------------------------------ */

/* Deterministic filler (a 64-bit LCG; the data need not be random). */
static uint64_t lcg_state = 0x853c49e6748fea9bULL;

static void fill(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (unsigned char)(lcg_state >> 56);
    }
}

/* The AEAD built from the exported pieces exactly as RFC 8439 2.8.1
 * writes it: one buffer ad | pad16 | ct | pad16 | le64 | le64 for Poly1305. */
static void reference_seal(const unsigned char key[32],
                           const unsigned char nonce[12],
                           const unsigned char *ad, size_t adlen,
                           const unsigned char *pt, size_t len,
                           unsigned char *ct, unsigned char tag[16])
{
    unsigned char block0[64];
    size_t padded_ad = (adlen + 15U) / 16U * 16U;
    size_t padded_ct = (len + 15U) / 16U * 16U;
    size_t total = padded_ad + padded_ct + 16U;
    unsigned char *mac = calloc(total, 1);
    if (mac == NULL) {
        abort();
    }
    ms_chacha20_block(key, 0, nonce, block0);
    if (ms_chacha20_xor(key, 1, nonce, pt, ct, len) != 0) {
        abort();
    }
    if (adlen > 0) {
        memcpy(mac, ad, adlen);
    }
    if (len > 0) {
        memcpy(mac + padded_ad, ct, len);
    }
    for (int i = 0; i < 8; i++) {
        mac[padded_ad + padded_ct + (size_t)i] =
            (unsigned char)(((uint64_t)adlen >> (8 * i)) & 0xffU);
        mac[padded_ad + padded_ct + 8U + (size_t)i] =
            (unsigned char)(((uint64_t)len >> (8 * i)) & 0xffU);
    }
    ms_poly1305(block0, mac, total, tag);
    free(mac);
}

static void test_lengths(void)
{
    unsigned char key[32], nonce[12], ad[64];
    unsigned char pt[301], ct[301], ref[301], back[301], tag[16], reftag[16];
    int roundtrip_ok = 1, reference_ok = 1, inplace_ok = 1, tail_ok = 1;

    for (size_t n = 0; n <= 300; n++) {
        size_t adlen = (n * 7U) % 41U; /* 0..40: short, one block, more */
        fill(key, sizeof key);
        fill(nonce, sizeof nonce);
        fill(ad, adlen);
        fill(pt, n);
        memset(ct, 0x5a, sizeof ct);
        if (ms_aead_seal(key, nonce, ad, adlen, pt, n, ct, tag) != 0 ||
            ct[n] != 0x5a) {
            tail_ok = 0;
        }
        reference_seal(key, nonce, ad, adlen, pt, n, ref, reftag);
        if (memcmp(ct, ref, n) != 0 || memcmp(tag, reftag, 16) != 0) {
            reference_ok = 0;
        }
        memset(back, 0x5a, sizeof back);
        if (ms_aead_open(key, nonce, ad, adlen, ct, n, tag, back) != 0 ||
            memcmp(back, pt, n) != 0 || back[n] != 0x5a) {
            roundtrip_ok = 0;
        }
        /* In place: seal pt into itself, open it back into itself. */
        memcpy(back, pt, n);
        if (ms_aead_seal(key, nonce, ad, adlen, back, n, back, reftag) != 0 ||
            memcmp(back, ct, n) != 0 || memcmp(reftag, tag, 16) != 0 ||
            ms_aead_open(key, nonce, ad, adlen, back, n, tag, back) != 0 ||
            memcmp(back, pt, n) != 0) {
            inplace_ok = 0;
        }
    }
    check(roundtrip_ok, "lengths 0..300 round-trip");
    check(reference_ok, "lengths 0..300 match the RFC 2.8.1 assembly");
    check(inplace_ok, "lengths 0..300 in place (ct == pt)");
    check(tail_ok, "nothing written past len");
}

/* ---- ChaCha20 against a plain reference --------------------------------- */

/* RFC 8439 2.1-2.3 as plainly as possible: the state in an array, the
 * quarter round as a function on four indices, no unrolling, no vectors.
 * It shares nothing with chacha20poly1305.c, whose blocks come from a
 * scalar core (one block), rows in vectors (two blocks at once) or words
 * in vectors (four at once). */
static uint32_t ref_rotl(uint32_t v, int n)
{
    return (v << n) | (v >> (32 - n));
}

static void ref_quarterround(uint32_t s[16], int a, int b, int c, int d)
{
    s[a] += s[b];
    s[d] = ref_rotl(s[d] ^ s[a], 16);
    s[c] += s[d];
    s[b] = ref_rotl(s[b] ^ s[c], 12);
    s[a] += s[b];
    s[d] = ref_rotl(s[d] ^ s[a], 8);
    s[c] += s[d];
    s[b] = ref_rotl(s[b] ^ s[c], 7);
}

static uint32_t ref_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void ref_block(const unsigned char key[32], uint32_t counter,
                      const unsigned char nonce[12], unsigned char out[64])
{
    uint32_t st[16], w[16];

    st[0] = 0x61707865U;
    st[1] = 0x3320646eU;
    st[2] = 0x79622d32U;
    st[3] = 0x6b206574U;
    for (size_t i = 0; i < 8; i++) {
        st[4 + i] = ref_le32(key + 4 * i);
    }
    st[12] = counter;
    for (size_t i = 0; i < 3; i++) {
        st[13 + i] = ref_le32(nonce + 4 * i);
    }
    memcpy(w, st, sizeof w);
    for (int i = 0; i < 10; i++) {
        ref_quarterround(w, 0, 4, 8, 12);
        ref_quarterround(w, 1, 5, 9, 13);
        ref_quarterround(w, 2, 6, 10, 14);
        ref_quarterround(w, 3, 7, 11, 15);
        ref_quarterround(w, 0, 5, 10, 15);
        ref_quarterround(w, 1, 6, 11, 12);
        ref_quarterround(w, 2, 7, 8, 13);
        ref_quarterround(w, 3, 4, 9, 14);
    }
    for (size_t i = 0; i < 16; i++) {
        uint32_t v = w[i] + st[i];
        for (size_t k = 0; k < 4; k++) {
            out[4 * i + k] = (unsigned char)(v >> (8 * k));
        }
    }
}

/* 1 if ms_chacha20_xor over len bytes of zeros from counter gives the
 * reference keystream (and writes nothing past len). */
static int stream_matches(const unsigned char key[32], uint32_t counter,
                          const unsigned char nonce[12], size_t len)
{
    unsigned char buf[321], want[64];

    if (len > 320) {
        return 0;
    }
    memset(buf, 0, sizeof buf);
    buf[len] = 0x77;
    if (ms_chacha20_xor(key, counter, nonce, buf, buf, len) != 0 ||
        buf[len] != 0x77) {
        return 0;
    }
    for (size_t off = 0; off < len; off += 64) {
        size_t m = len - off < 64 ? len - off : 64;
        ref_block(key, counter + (uint32_t)(off / 64), nonce, want);
        if (memcmp(buf + off, want, m) != 0) {
            return 0;
        }
    }
    return 1;
}

static void test_block_reference(void)
{
    unsigned char key[32], nonce[12], c4[4], got[64], want[64];
    unsigned char pt[64], ct[64], back[64], tag[16], reftag[16], ref[64];
    int block_ok = 1, stream_ok = 1, last_ok = 1, aead_ok = 1;

    for (int t = 0; t < 2000; t++) {
        uint32_t counter;
        size_t len = 1U + (size_t)t * 7U % 320U, blocks = (len + 63U) / 64U;
        size_t n = 1U + (size_t)t % 64U, adlen = (size_t)t % 3U * 8U;

        fill(key, sizeof key);
        fill(nonce, sizeof nonce);
        fill(c4, sizeof c4);
        counter = ref_le32(c4);
        switch (t % 4) {
        case 0:
            counter = 0xffffffffU;
            break;
        case 1:
            counter = 0xfffffffeU;
            break;
        case 2:
            counter = (uint32_t)t; /* small, 0 first */
            break;
        default:
            break; /* random */
        }
        /* One block. */
        ms_chacha20_block(key, counter, nonce, got);
        ref_block(key, counter, nonce, want);
        if (memcmp(got, want, 64) != 0) {
            block_ok = 0;
        }
        /* A keystream of len bytes, moved down to end at the last counter
         * when it would pass it. */
        if ((uint64_t)counter + blocks > (uint64_t)0x100000000U) {
            counter = (uint32_t)((uint64_t)0x100000000U - blocks);
        }
        if (!stream_matches(key, counter, nonce, len)) {
            stream_ok = 0;
        }
        /* A short AEAD message: ciphertext = pt ^ block 1, the tag as the
         * RFC 2.8.1 assembly makes it, and back. */
        fill(pt, n);
        fill(ref, adlen); /* associated data */
        if (ms_aead_seal(key, nonce, ref, adlen, pt, n, ct, tag) != 0) {
            aead_ok = 0;
        }
        ref_block(key, 1, nonce, want);
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)(pt[i] ^ want[i]) != ct[i]) {
                aead_ok = 0;
            }
        }
        reference_seal(key, nonce, ref, adlen, pt, n, back, reftag);
        if (memcmp(tag, reftag, 16) != 0 ||
            ms_aead_open(key, nonce, ref, adlen, ct, n, tag, back) != 0 ||
            memcmp(back, pt, n) != 0) {
            aead_ok = 0;
        }
    }
    /* Two and three blocks ending at the last counter, and the last block
     * alone, at every length. */
    for (size_t len = 1; len <= 192; len++) {
        size_t blocks = (len + 63U) / 64U;
        fill(key, sizeof key);
        fill(nonce, sizeof nonce);
        if (!stream_matches(key, (uint32_t)(0x100000000ULL - blocks), nonce,
                            len)) {
            last_ok = 0;
        }
    }
    check(block_ok, "block function = reference (2000 random inputs)");
    check(stream_ok, "keystream of 1..320 bytes = reference");
    check(last_ok, "keystream ending at counter 2^32-1 = reference");
    check(aead_ok, "AEAD of 1..64 bytes = reference keystream and tag");
}

/* ---- Poly1305 against a plain big-number reference ---------------------- */

/* Numbers below 2^320 as twenty 16-bit limbs (in uint32_t), little end
 * first: slow, branchy and obviously right, the "naive 288-bit" approach of
 * RFC 8439 section 3. */
#define BIG_LIMBS 20
typedef struct {
    uint32_t w[BIG_LIMBS];
} big;

static void big_zero(big *a)
{
    memset(a, 0, sizeof *a);
}

static void big_from_le(big *a, const unsigned char *p, size_t n)
{
    big_zero(a);
    for (size_t i = 0; i < n; i++) {
        a->w[i / 2] |= (uint32_t)p[i] << (8 * (i % 2));
    }
}

static void big_norm(big *a)
{
    uint32_t c = 0;
    for (int i = 0; i < BIG_LIMBS; i++) {
        a->w[i] += c;
        c = a->w[i] >> 16;
        a->w[i] &= 0xffffU;
    }
    if (c != 0) {
        abort(); /* past 2^320: cannot happen below */
    }
}

static void big_add(big *a, const big *b)
{
    for (int i = 0; i < BIG_LIMBS; i++) {
        a->w[i] += b->w[i];
    }
    big_norm(a);
}

static void big_mul(big *out, const big *a, const big *b)
{
    uint64_t acc[2 * BIG_LIMBS] = {0};
    for (int i = 0; i < BIG_LIMBS; i++) {
        for (int j = 0; j < BIG_LIMBS; j++) {
            acc[i + j] += (uint64_t)a->w[i] * b->w[j];
        }
    }
    for (int i = 0; i < 2 * BIG_LIMBS - 1; i++) {
        acc[i + 1] += acc[i] >> 16;
        acc[i] &= 0xffffU;
    }
    for (int i = BIG_LIMBS; i < 2 * BIG_LIMBS; i++) {
        if (acc[i] != 0) {
            abort();
        }
    }
    for (int i = 0; i < BIG_LIMBS; i++) {
        out->w[i] = (uint32_t)acc[i];
    }
}

static int big_ge(const big *a, const big *b)
{
    for (int i = BIG_LIMBS - 1; i >= 0; i--) {
        if (a->w[i] != b->w[i]) {
            return a->w[i] > b->w[i];
        }
    }
    return 1;
}

static void big_sub(big *a, const big *b) /* a >= b */
{
    int64_t borrow = 0;
    for (int i = 0; i < BIG_LIMBS; i++) {
        int64_t d = (int64_t)a->w[i] - (int64_t)b->w[i] - borrow;
        borrow = d < 0;
        a->w[i] = (uint32_t)(d + (borrow ? 0x10000 : 0));
    }
}

/* a mod 2^130 - 5: fold a = lo + 2^130 hi into lo + 5 hi, then subtract. */
static void big_mod_p(big *a)
{
    big p, hi, five;
    big_zero(&p);
    for (int i = 0; i < 8; i++) {
        p.w[i] = 0xffffU;
    }
    p.w[8] = 3;
    p.w[0] = 0xfffbU; /* 2^130 - 5 */
    big_zero(&five);
    five.w[0] = 5;
    for (;;) {
        int top = 0;
        big_zero(&hi);
        for (int i = 8; i < BIG_LIMBS; i++) { /* hi = a >> 130 */
            uint32_t v = a->w[i] >> 2;
            if (i + 1 < BIG_LIMBS) {
                v |= (a->w[i + 1] & 3U) << 14;
            }
            hi.w[i - 8] = v;
            top |= v != 0;
        }
        if (!top) {
            break;
        }
        a->w[8] &= 3U;
        for (int i = 9; i < BIG_LIMBS; i++) {
            a->w[i] = 0;
        }
        big_mul(&hi, &hi, &five);
        big_add(a, &hi);
    }
    while (big_ge(a, &p)) {
        big_sub(a, &p);
    }
}

static void ref_poly1305(const unsigned char key[32],
                         const unsigned char *msg, size_t len,
                         unsigned char tag[16])
{
    unsigned char rb[16], blk[17];
    big r, s, acc, n;

    memcpy(rb, key, 16);
    rb[3] &= 15;
    rb[7] &= 15;
    rb[11] &= 15;
    rb[15] &= 15;
    rb[4] &= 252;
    rb[8] &= 252;
    rb[12] &= 252;
    big_from_le(&r, rb, 16);
    big_from_le(&s, key + 16, 16);
    big_zero(&acc);
    for (size_t off = 0; off < len; off += 16) {
        size_t m = len - off < 16 ? len - off : 16;
        memset(blk, 0, sizeof blk);
        memcpy(blk, msg + off, m);
        blk[m] = 1;
        big_from_le(&n, blk, m + 1);
        big_add(&acc, &n);
        big_mul(&acc, &acc, &r);
        big_mod_p(&acc);
    }
    big_add(&acc, &s);
    for (int i = 0; i < 16; i++) {
        tag[i] = (unsigned char)(acc.w[i / 2] >> (8 * (i % 2)));
    }
}

static void test_poly_reference(void)
{
    unsigned char key[32], msg[300], t1[16], t2[16];
    int random_ok = 1, extreme_ok = 1;

    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)i % sizeof msg;
        fill(key, sizeof key);
        fill(msg, n);
        ms_poly1305(key, msg, n, t1);
        ref_poly1305(key, msg, n, t2);
        if (memcmp(t1, t2, 16) != 0) {
            random_ok = 0;
        }
    }
    check(random_ok, "Poly1305 = big-number reference (2000 random)");
    /* Largest limbs: r and s all ones (r as clamped as it gets), messages
     * of 0xff; also all-zero keys and mixed patterns. */
    for (int k = 0; k < 4; k++) {
        for (int b = 0; b < 3; b++) {
            const unsigned char kb[4] = {0xff, 0x00, 0xff, 0x00};
            const unsigned char sb[4] = {0xff, 0x00, 0x00, 0xff};
            const unsigned char mb[3] = {0xff, 0x00, 0xfe};
            memset(key, kb[k], 16);
            memset(key + 16, sb[k], 16);
            memset(msg, mb[b], sizeof msg);
            for (size_t n = 0; n <= sizeof msg; n++) {
                ms_poly1305(key, msg, n, t1);
                ref_poly1305(key, msg, n, t2);
                if (memcmp(t1, t2, 16) != 0) {
                    extreme_ok = 0;
                }
            }
        }
    }
    check(extreme_ok, "Poly1305 = big-number reference (extreme limbs)");
}

static int unchanged(const unsigned char *p, size_t n, unsigned char byte)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != byte) {
            return 0;
        }
    }
    return 1;
}

static void test_tamper(void)
{
    enum { N = 100, ADLEN = 20 };
    unsigned char key[32], nonce[12], ad[ADLEN], pt[N], ct[N], tag[16];
    unsigned char out[N], bad[N];
    int tag_ok = 1, ct_ok = 1, ad_ok = 1, nonce_ok = 1, key_ok = 1;

    fill(key, sizeof key);
    fill(nonce, sizeof nonce);
    fill(ad, sizeof ad);
    fill(pt, sizeof pt);
    check(ms_aead_seal(key, nonce, ad, ADLEN, pt, N, ct, tag) == 0, "seal");

    for (int bit = 0; bit < 128; bit++) {
        unsigned char t[16];
        memcpy(t, tag, 16);
        t[bit / 8] ^= (unsigned char)(1U << (bit % 8));
        memset(out, 0xc3, N);
        if (ms_aead_open(key, nonce, ad, ADLEN, ct, N, t, out) != -1 ||
            !unchanged(out, N, 0xc3)) {
            tag_ok = 0;
        }
    }
    check(tag_ok, "every flipped tag bit fails, output untouched");

    for (int i = 0; i < N; i++) {
        memcpy(bad, ct, N);
        bad[i] ^= (unsigned char)(1U << (i % 8));
        memset(out, 0xc3, N);
        if (ms_aead_open(key, nonce, ad, ADLEN, bad, N, tag, out) != -1 ||
            !unchanged(out, N, 0xc3)) {
            ct_ok = 0;
        }
        /* In place: the ciphertext buffer stays as it was. */
        memcpy(out, bad, N);
        if (ms_aead_open(key, nonce, ad, ADLEN, out, N, tag, out) != -1 ||
            memcmp(out, bad, N) != 0) {
            ct_ok = 0;
        }
    }
    /* A truncated ciphertext fails too. */
    memset(out, 0xc3, N);
    if (ms_aead_open(key, nonce, ad, ADLEN, ct, N - 1, tag, out) != -1 ||
        !unchanged(out, N, 0xc3)) {
        ct_ok = 0;
    }
    check(ct_ok, "every altered ciphertext byte fails, output untouched");

    for (int i = 0; i < ADLEN; i++) {
        unsigned char a[ADLEN];
        memcpy(a, ad, ADLEN);
        a[i] ^= 0x80;
        memset(out, 0xc3, N);
        if (ms_aead_open(key, nonce, a, ADLEN, ct, N, tag, out) != -1 ||
            !unchanged(out, N, 0xc3)) {
            ad_ok = 0;
        }
    }
    memset(out, 0xc3, N);
    if (ms_aead_open(key, nonce, ad, ADLEN - 1, ct, N, tag, out) != -1 ||
        ms_aead_open(key, nonce, NULL, 0, ct, N, tag, out) != -1 ||
        !unchanged(out, N, 0xc3)) {
        ad_ok = 0;
    }
    check(ad_ok, "altered or shortened associated data fails");

    for (int i = 0; i < 12; i++) {
        unsigned char nn[12];
        memcpy(nn, nonce, 12);
        nn[i] ^= 0x01;
        memset(out, 0xc3, N);
        if (ms_aead_open(key, nn, ad, ADLEN, ct, N, tag, out) != -1 ||
            !unchanged(out, N, 0xc3)) {
            nonce_ok = 0;
        }
    }
    check(nonce_ok, "another nonce fails");

    for (int i = 0; i < 32; i++) {
        unsigned char k[32];
        memcpy(k, key, 32);
        k[i] ^= 0x40;
        memset(out, 0xc3, N);
        if (ms_aead_open(k, nonce, ad, ADLEN, ct, N, tag, out) != -1 ||
            !unchanged(out, N, 0xc3)) {
            key_ok = 0;
        }
    }
    check(key_ok, "another key fails");

    check(ms_aead_open(key, nonce, ad, ADLEN, ct, N, tag, out) == 0 &&
              memcmp(out, pt, N) == 0,
          "the untampered message still opens");
}

static void test_long(void)
{
    const size_t n = ((size_t)1 << 20) + 7; /* 16385 blocks, partial last */
    const size_t split = (size_t)64 * 1000; /* blocks 1..1000, 1001.. */
    unsigned char key[32], nonce[12], tag[16], tag2[16], blk[64];
    unsigned char *pt = malloc(n), *ct = malloc(n), *out = malloc(n);
    int ok = 1;

    if (pt == NULL || ct == NULL || out == NULL) {
        check(0, "long message: malloc");
        free(pt);
        free(ct);
        free(out);
        return;
    }
    fill(key, sizeof key);
    fill(nonce, sizeof nonce);
    fill(pt, n);
    check(ms_aead_seal(key, nonce, NULL, 0, pt, n, ct, tag) == 0,
          "long message: seal");
    /* The keystream is block after block: compare a few against the block
     * function (first, second, one in the middle, the partial last). */
    {
        const size_t picks[] = {0, 1, 4097, n / 64};
        for (size_t i = 0; i < NELEM(picks); i++) {
            size_t b = picks[i], off = b * 64U;
            size_t m = n - off < 64 ? n - off : 64;
            ms_chacha20_block(key, (uint32_t)(b + 1U), nonce, blk);
            for (size_t j = 0; j < m; j++) {
                if ((unsigned char)(pt[off + j] ^ blk[j]) != ct[off + j]) {
                    ok = 0;
                }
            }
        }
    }
    check(ok, "long message: keystream block by block");
    /* Encrypting in pieces on block boundaries gives the same stream. */
    memcpy(out, pt, n);
    ok = ms_chacha20_xor(key, 1, nonce, out, out, split) == 0 &&
         ms_chacha20_xor(key, 1001, nonce, out + split, out + split,
                         n - split) == 0 &&
         memcmp(out, ct, n) == 0;
    check(ok, "long message: split at a block boundary");
    ok = ms_aead_open(key, nonce, NULL, 0, ct, n, tag, out) == 0 &&
         memcmp(out, pt, n) == 0;
    check(ok, "long message: open");
    reference_seal(key, nonce, NULL, 0, pt, n, out, tag2);
    check(memcmp(out, ct, n) == 0 && memcmp(tag, tag2, 16) == 0,
          "long message: matches the RFC 2.8.1 assembly");
    ct[n / 2] ^= 1;
    memset(out, 0, n);
    check(ms_aead_open(key, nonce, NULL, 0, ct, n, tag, out) == -1 &&
              unchanged(out, n, 0),
          "long message: one flipped bit fails, output untouched");
    free(pt);
    free(ct);
    free(out);
}

static void test_limits(void)
{
    unsigned char key[32] = {0}, nonce[12] = {0}, blk[64], buf[200], tag[16];

    fill(key, sizeof key);
    /* Block counter 2^32 - 1 is the last one. */
    memset(buf, 0, sizeof buf);
    ms_chacha20_block(key, 0xffffffffU, nonce, blk);
    check(ms_chacha20_xor(key, 0xffffffffU, nonce, buf, buf, 64) == 0 &&
              memcmp(buf, blk, 64) == 0,
          "counter 2^32-1 with one block");
    memset(buf, 0x11, sizeof buf);
    check(ms_chacha20_xor(key, 0xffffffffU, nonce, buf, buf, 65) == -1 &&
              unchanged(buf, sizeof buf, 0x11),
          "counter 2^32-1 with 65 bytes: -1, nothing written");
    check(ms_chacha20_xor(key, 0xfffffffeU, nonce, buf, buf, 128) == 0,
          "counter 2^32-2 with two blocks");
    memset(buf, 0x11, sizeof buf);
    check(ms_chacha20_xor(key, 0xfffffffeU, nonce, buf, buf, 129) == -1 &&
              unchanged(buf, sizeof buf, 0x11),
          "counter 2^32-2 with 129 bytes: -1");
    check(ms_chacha20_xor(key, 0xffffffffU, nonce, NULL, NULL, 0) == 0,
          "zero bytes at the last counter");
    /* Four blocks at once (the vector path) up to the last counter. */
    {
        unsigned char four[256], want[256];
        for (uint32_t b = 0; b < 4; b++) {
            ms_chacha20_block(key, 0xfffffffcU + b, nonce,
                              want + (size_t)64 * b);
        }
        memset(four, 0, sizeof four);
        check(ms_chacha20_xor(key, 0xfffffffcU, nonce, four, four, 256) ==
                      0 &&
                  memcmp(four, want, 256) == 0,
              "counters 2^32-4 .. 2^32-1 in one call");
        check(ms_chacha20_xor(key, 0xfffffffcU, nonce, four, four, 257) ==
                      -1 &&
                  memcmp(four, want, 256) == 0,
              "counter 2^32-4 with 257 bytes: -1, nothing written");
    }

#if SIZE_MAX > 0xffffffffU
    /* One byte more than P_MAX (RFC 8439 2.8) is refused before any byte
     * is read or written, so a small buffer is safe here. */
    {
        size_t too_long = (size_t)MS_AEAD_MAX_LEN + 1U;
        memset(buf, 0x22, sizeof buf);
        memset(tag, 0x22, sizeof tag);
        check(ms_aead_seal(key, nonce, NULL, 0, buf, too_long, buf, tag) ==
                      -1 &&
                  unchanged(buf, sizeof buf, 0x22) &&
                  unchanged(tag, sizeof tag, 0x22),
              "seal of P_MAX + 1 bytes: -1, nothing written");
        check(ms_aead_open(key, nonce, NULL, 0, buf, too_long, tag, buf) ==
                      -1 &&
                  unchanged(buf, sizeof buf, 0x22),
              "open of P_MAX + 1 bytes: -1");
        check(ms_chacha20_xor(key, 1, nonce, buf, buf,
                              (size_t)MS_AEAD_MAX_LEN + 64U) == -1,
              "xor of 2^32 blocks from counter 1: -1");
    }
#else
    (void)tag;
#endif

    /* Empty everything, with NULL pointers. */
    {
        unsigned char t1[16], t2[16];
        check(ms_aead_seal(key, nonce, NULL, 0, NULL, 0, NULL, t1) == 0 &&
                  ms_aead_open(key, nonce, NULL, 0, NULL, 0, t1, NULL) == 0,
              "empty message and AD with NULL pointers");
        reference_seal(key, nonce, NULL, 0, NULL, 0, NULL, t2);
        check(memcmp(t1, t2, 16) == 0, "empty message tag");
        t1[0] ^= 1;
        check(ms_aead_open(key, nonce, NULL, 0, NULL, 0, t1, NULL) == -1,
              "empty message with a bad tag fails");
        ms_poly1305(key, NULL, 0, t1);
        check(memcmp(t1, key + 16, 16) == 0,
              "Poly1305 of nothing is s");
    }
}

int main(void)
{
    test_vectors();
    test_lengths();
    test_block_reference();
    test_poly_reference();
    test_tamper();
    test_long();
    test_limits();
    printf("test_aead: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
