/*
 * floors.c - the C baselines of the memsafe benchmarks.
 *
 * Built by benchmarks/run.py into a shared library and called through
 * ctypes, once per batch (the ctypes call costs well under 1 us and is paid
 * once per batch of thousands of iterations), so the floors run in the same
 * process, the same address space and interleaved with the Python
 * measurements.
 *
 * Every floor makes exactly the system calls memsafe makes for the same
 * operation (checked with strace; see docs/benchmarks.md):
 *
 *   allocate (SecretBytes.random(n)):
 *     mmap(PROT_NONE, guard+data+guard)  mprotect(data, RW)
 *     madvise(DONTDUMP) madvise(NOHUGEPAGE) madvise(WIPEONFORK)
 *     mlock(data)  getrandom(canary, 16)  getrandom(secret, n)
 *     mprotect(data, NONE)
 *   close:
 *     mprotect(data, RW)  [canary check, wipe]  munlock(data)  munmap(all)
 *   read window:
 *     mprotect(data, READ) ... mprotect(data, NONE)
 *
 * With -DHAVE_SODIUM it also offers libsodium's equivalent loop.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SODIUM
#include <sodium.h>
#endif

#define CANARY_LEN 16

typedef struct {
    unsigned char *base;
    size_t total;
    unsigned char *data;
    size_t data_len;
    unsigned char *secret;
    size_t len;
} region;

static size_t page(void)
{
    static size_t ps;
    if (ps == 0) {
        ps = (size_t)sysconf(_SC_PAGESIZE);
    }
    return ps;
}

/* CPU time of this thread (user + system), as Python's time.thread_time_ns:
 * on a shared machine, time other processes run in is not counted. */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int fill_random(void *p, size_t n)
{
    unsigned char *q = p;
    while (n > 0) {
        ssize_t got = getrandom(q, n, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        q += got;
        n -= (size_t)got;
    }
    return 0;
}

/* 0: skip mlock (only for the big region when the lock limit is too small,
 * as memsafe does under the lock policy 'off'). */
static int lock_pages = 1;

/* memsafe's allocation, system call for system call.  0 or -errno. */
static int region_alloc(region *r, size_t len)
{
    size_t ps = page();
    size_t data_len = (len + CANARY_LEN + ps - 1) / ps * ps;
    unsigned char canary[CANARY_LEN];
    r->total = data_len + 2 * ps;
    void *base = mmap(NULL, r->total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (base == MAP_FAILED) {
        return -errno;
    }
    r->base = base;
    r->data = r->base + ps;
    r->data_len = data_len;
    r->len = len;
    r->secret = r->data + data_len - len;
    if (mprotect(r->data, data_len, PROT_READ | PROT_WRITE) != 0 ||
        madvise(r->data, data_len, MADV_DONTDUMP) != 0 ||
        madvise(r->data, data_len, MADV_NOHUGEPAGE) != 0 ||
        madvise(r->data, data_len, MADV_WIPEONFORK) != 0 ||
        (lock_pages && mlock(r->data, data_len) != 0) ||
        fill_random(canary, CANARY_LEN) != 0 ||
        fill_random(r->secret, len) != 0) {
        int e = errno;
        munmap(r->base, r->total);
        return -e;
    }
    memcpy(r->secret - CANARY_LEN, canary, CANARY_LEN);
    if (mprotect(r->data, data_len, PROT_NONE) != 0) {
        int e = errno;
        munmap(r->base, r->total);
        return -e;
    }
    return 0;
}

/* memsafe's close: make writable, wipe, unlock, unmap. */
static int region_free(region *r)
{
    if (mprotect(r->data, r->data_len, PROT_READ | PROT_WRITE) != 0) {
        return -errno;
    }
    explicit_bzero(r->data, r->data_len);
    if (lock_pages) {
        munlock(r->data, r->data_len);
    }
    if (munmap(r->base, r->total) != 0) {
        return -errno;
    }
    return 0;
}

/* ---- 1. window floor ---------------------------------------------------- */

/* ns per pair of mprotect(READ) + mprotect(NONE) on the data pages of a
 * region of len bytes made like memsafe makes it; < 0 on error.  touch=1
 * also reads the first and last byte in between (the TLB refill part). */
double floor_window(size_t len, long n, int touch)
{
    region r;
    if (region_alloc(&r, len) != 0) {
        return -1;
    }
    volatile unsigned char sink = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        mprotect(r.data, r.data_len, PROT_READ);
        if (touch) {
            sink ^= r.secret[0];
            sink ^= r.secret[r.len - 1];
        }
        mprotect(r.data, r.data_len, PROT_NONE);
    }
    double t1 = now_ns();
    (void)sink;
    region_free(&r);
    return (t1 - t0) / (double)n;
}

/* ---- 2. allocation floor ------------------------------------------------ */

/* ns per allocate+close of a len-byte secret; < 0 on error. */
double floor_alloc(size_t len, long n)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        region r;
        if (region_alloc(&r, len) != 0 || region_free(&r) != 0) {
            return -1;
        }
    }
    return (now_ns() - t0) / (double)n;
}

int have_sodium(void)
{
#ifdef HAVE_SODIUM
    return sodium_init() >= 0;
#else
    return 0;
#endif
}

/* ns per sodium_malloc + randombytes_buf + sodium_mprotect_noaccess +
 * sodium_free; < 0 when libsodium is not built in or fails. */
double sodium_alloc(size_t len, long n)
{
#ifdef HAVE_SODIUM
    if (sodium_init() < 0) {
        return -1;
    }
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        void *p = sodium_malloc(len);
        if (p == NULL) {
            return -1;
        }
        randombytes_buf(p, len);
        sodium_mprotect_noaccess(p);
        sodium_free(p);
    }
    return (now_ns() - t0) / (double)n;
#else
    (void)len;
    (void)n;
    return -1;
#endif
}

/* ---- 3. throughput: the two mprotect calls of a big region -------------- */

static region big;

/* Make (once) a region of len bytes the way memsafe does, locked unless
 * lock is 0. */
int big_setup(size_t len, int lock)
{
    if (big.base != NULL) {
        return 0;
    }
    lock_pages = lock;
    int rc = region_alloc(&big, len);
    lock_pages = 1;
    return rc;
}

/* ns per mprotect(READ) + mprotect(NONE) of the big region. */
double big_mprotect_pair(long n)
{
    if (big.base == NULL) {
        return -1;
    }
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        mprotect(big.data, big.data_len, PROT_READ);
        mprotect(big.data, big.data_len, PROT_NONE);
    }
    return (now_ns() - t0) / (double)n;
}

void big_teardown(void)
{
    if (big.base != NULL) {
        /* munlock of unlocked pages is harmless */
        region_free(&big);
        memset(&big, 0, sizeof(big));
    }
}

/* ---- one operation at a time, for the strace comparison ------------------ */

static region demo;

int demo_alloc(size_t len)
{
    return region_alloc(&demo, len);
}

int demo_window(void)
{
    volatile unsigned char sink;
    if (mprotect(demo.data, demo.data_len, PROT_READ) != 0) {
        return -errno;
    }
    sink = demo.secret[0];
    (void)sink;
    if (mprotect(demo.data, demo.data_len, PROT_NONE) != 0) {
        return -errno;
    }
    return 0;
}

int demo_close(void)
{
    return region_free(&demo);
}

#ifdef HAVE_SODIUM
static void *sodium_demo;
#endif

int sodium_demo_alloc(size_t len)
{
#ifdef HAVE_SODIUM
    if (sodium_init() < 0 || (sodium_demo = sodium_malloc(len)) == NULL) {
        return -1;
    }
    randombytes_buf(sodium_demo, len);
    sodium_mprotect_noaccess(sodium_demo);
    return 0;
#else
    (void)len;
    return -1;
#endif
}

int sodium_demo_window(void)
{
#ifdef HAVE_SODIUM
    volatile unsigned char sink;
    sodium_mprotect_readonly(sodium_demo);
    sink = *(unsigned char *)sodium_demo;
    (void)sink;
    sodium_mprotect_noaccess(sodium_demo);
    return 0;
#else
    return -1;
#endif
}

int sodium_demo_close(void)
{
#ifdef HAVE_SODIUM
    sodium_free(sodium_demo);
    sodium_demo = NULL;
    return 0;
#else
    return -1;
#endif
}

/* ---- 4. memory per secret: keep n live allocations ---------------------- */

/* Allocate n live len-byte secrets the memsafe way (kind 0) or with
 * sodium_malloc (kind 1) and never free them (the caller is a child process
 * that exits).  Returns how many were made before the first failure, and
 * the failing errno in *err (0 if all n were made; negative: libsodium gave
 * memory that sodium_mprotect_noaccess could not protect). */
long hold(int kind, size_t len, long n, int *err)
{
    *err = 0;
    for (long i = 0; i < n; i++) {
        if (kind == 0) {
            region r;
            int rc = region_alloc(&r, len);
            if (rc != 0) {
                *err = -rc;
                return i;
            }
        } else {
#ifdef HAVE_SODIUM
            if (sodium_init() < 0) {
                *err = ENOSYS;
                return i;
            }
            errno = 0;
            void *p = sodium_malloc(len);
            if (p == NULL) {
                *err = errno ? errno : ENOMEM;
                return i;
            }
            randombytes_buf(p, len);
            /* libsodium ignores failures of its guard-page mprotect and of
             * mlock, and hands the memory out anyway (at vm.max_map_count it
             * comes back without guard pages); count the first allocation
             * that cannot be made no-access as the failure (negative
             * errno), as memsafe fails closed there. */
            errno = 0;
            if (sodium_mprotect_noaccess(p) != 0) {
                *err = -(errno ? errno : EFAULT);
                return i;
            }
#else
            *err = ENOSYS;
            return i;
#endif
        }
    }
    return n;
}
