/*
 * scrub.c - zero the vector registers and burn stack (see scrub.h).
 *
 * This is CPU code, not OS code: x86-64 and AArch64 with GCC/Clang get
 * inline assembly; MSVC gets the AVX intrinsic where the CPU has AVX; any
 * other target gets the stack burn alone.
 */
#include "scrub.h"

#include <stddef.h>

#include "platform.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MS_SCRUB_X86_GNU 1
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define MS_SCRUB_ARM64_GNU 1
#elif defined(_MSC_VER) && defined(_M_X64)
#define MS_SCRUB_X86_MSVC 1
#include <immintrin.h>
#include <intrin.h>
#endif

/* Widest vector unit, detected once at import (ms_scrub_init): 0 SSE,
 * 1 AVX, 2 AVX-512.  Written before any thread can use a secret. */
static int vector_level;

#if defined(MS_SCRUB_X86_GNU)
#define XMM_LO                                                               \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",  \
        "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

__attribute__((target("avx512f"))) static void zero_avx512(void)
{
    __asm__ volatile(
        "vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
        "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
        "vpxord %%zmm18, %%zmm18, %%zmm18\n\t"
        "vpxord %%zmm19, %%zmm19, %%zmm19\n\t"
        "vpxord %%zmm20, %%zmm20, %%zmm20\n\t"
        "vpxord %%zmm21, %%zmm21, %%zmm21\n\t"
        "vpxord %%zmm22, %%zmm22, %%zmm22\n\t"
        "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
        "vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
        "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
        "vpxord %%zmm26, %%zmm26, %%zmm26\n\t"
        "vpxord %%zmm27, %%zmm27, %%zmm27\n\t"
        "vpxord %%zmm28, %%zmm28, %%zmm28\n\t"
        "vpxord %%zmm29, %%zmm29, %%zmm29\n\t"
        "vpxord %%zmm30, %%zmm30, %%zmm30\n\t"
        "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
        "vzeroall" ::: XMM_LO,
        "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
        "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",
        "xmm30", "xmm31", "memory");
}

__attribute__((target("avx"))) static void zero_avx(void)
{
    __asm__ volatile("vzeroall" ::: XMM_LO, "memory");
}

static void zero_sse(void)
{
    __asm__ volatile(
        "pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\t"
        "pxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t"
        "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
        "pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\t"
        "pxor %%xmm8, %%xmm8\n\tpxor %%xmm9, %%xmm9\n\t"
        "pxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
        "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\t"
        "pxor %%xmm14, %%xmm14\n\tpxor %%xmm15, %%xmm15" ::: XMM_LO,
        "memory");
}

void ms_scrub_init(void)
{
    __builtin_cpu_init();
    vector_level = __builtin_cpu_supports("avx512f") ? 2
                   : __builtin_cpu_supports("avx")   ? 1
                                                     : 0;
}

static void zero_vectors(void)
{
    if (vector_level == 2) {
        zero_avx512();
    } else if (vector_level == 1) {
        zero_avx();
    } else {
        zero_sse();
    }
}

#elif defined(MS_SCRUB_ARM64_GNU)
void ms_scrub_init(void)
{
}

static void zero_vectors(void)
{
    __asm__ volatile(
        "movi v0.16b, #0\n\tmovi v1.16b, #0\n\tmovi v2.16b, #0\n\t"
        "movi v3.16b, #0\n\tmovi v4.16b, #0\n\tmovi v5.16b, #0\n\t"
        "movi v6.16b, #0\n\tmovi v7.16b, #0\n\tmovi v16.16b, #0\n\t"
        "movi v17.16b, #0\n\tmovi v18.16b, #0\n\tmovi v19.16b, #0\n\t"
        "movi v20.16b, #0\n\tmovi v21.16b, #0\n\tmovi v22.16b, #0\n\t"
        "movi v23.16b, #0\n\tmovi v24.16b, #0\n\tmovi v25.16b, #0\n\t"
        "movi v26.16b, #0\n\tmovi v27.16b, #0\n\tmovi v28.16b, #0\n\t"
        "movi v29.16b, #0\n\tmovi v30.16b, #0\n\tmovi v31.16b, #0" :::
        "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17",
        "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26",
        "v27", "v28", "v29", "v30", "v31", "memory");
}

#elif defined(MS_SCRUB_X86_MSVC)
void ms_scrub_init(void)
{
    int info[4];
    __cpuid(info, 1);
    vector_level = (info[2] & (1 << 28)) ? 1 : 0; /* AVX */
}

static void zero_vectors(void)
{
    if (vector_level) {
        _mm256_zeroall();
    }
}

#else
void ms_scrub_init(void)
{
}

static void zero_vectors(void)
{
}
#endif

/* A stack frame of MS_SCRUB_STACK bytes, wiped: it lies where the frames of
 * whatever ran just before (at the same call depth) left their locals. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#elif defined(_MSC_VER)
__declspec(noinline)
#endif
static void burn_stack(void)
{
    unsigned char frame[MS_SCRUB_STACK];
    ms_os_wipe(frame, sizeof(frame));
#if defined(__GNUC__) || defined(__clang__)
    __asm__ volatile("" : : "r"(frame) : "memory");
#endif
}

void ms_scrub(void)
{
    zero_vectors();
    burn_stack();
    zero_vectors();
}

void ms_scrub_registers(void)
{
    zero_vectors();
}
