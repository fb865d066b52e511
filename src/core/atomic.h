/*
 * atomic.h - the few atomic operations the core needs, for GCC/Clang
 * (__atomic builtins) and MSVC (Interlocked intrinsics).  C11 <stdatomic.h>
 * is not available on every compiler the wheels are built with.
 *
 * Every operation is sequentially consistent: these words coordinate rare
 * events (fork, purge, claims around system calls), never hot loops.
 */
#ifndef MEMSAFE_ATOMIC_H
#define MEMSAFE_ATOMIC_H

#include <stddef.h>
#include <stdint.h>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>

static __inline intptr_t ms_atomic_load(volatile intptr_t *p)
{
    return (intptr_t)_InterlockedCompareExchange64((volatile __int64 *)p, 0,
                                                   0);
}

static __inline void ms_atomic_store(volatile intptr_t *p, intptr_t v)
{
    (void)_InterlockedExchange64((volatile __int64 *)p, (__int64)v);
}

static __inline intptr_t ms_atomic_exchange(volatile intptr_t *p, intptr_t v)
{
    return (intptr_t)_InterlockedExchange64((volatile __int64 *)p,
                                            (__int64)v);
}

/* 1 if *p was expect and is now desired, else 0. */
static __inline int ms_atomic_cas(volatile intptr_t *p, intptr_t expect,
                                  intptr_t desired)
{
    return _InterlockedCompareExchange64((volatile __int64 *)p,
                                         (__int64)desired,
                                         (__int64)expect) == (__int64)expect;
}

static __inline intptr_t ms_atomic_add(volatile intptr_t *p, intptr_t v)
{
    return (intptr_t)_InterlockedExchangeAdd64((volatile __int64 *)p,
                                               (__int64)v) + v;
}

/* A full barrier: plain reads before it (a canary, a key half) are done
 * before the atomic reads after it (the purge counters). */
static __inline void ms_atomic_fence(void)
{
    MemoryBarrier();
}
#else
static inline intptr_t ms_atomic_load(volatile intptr_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void ms_atomic_store(volatile intptr_t *p, intptr_t v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static inline intptr_t ms_atomic_exchange(volatile intptr_t *p, intptr_t v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}

/* 1 if *p was expect and is now desired, else 0. */
static inline int ms_atomic_cas(volatile intptr_t *p, intptr_t expect,
                                intptr_t desired)
{
    return __atomic_compare_exchange_n(p, &expect, desired, 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* Add v; return the new value. */
static inline intptr_t ms_atomic_add(volatile intptr_t *p, intptr_t v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

/* A full barrier: plain reads before it (a canary, a key half) are done
 * before the atomic reads after it (the purge counters). */
static inline void ms_atomic_fence(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
#endif

#endif /* MEMSAFE_ATOMIC_H */
