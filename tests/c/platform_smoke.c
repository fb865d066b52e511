/*
 * platform_smoke.c - exercise the page layer (platform.h) without Python.
 *
 * Build and run on POSIX:
 *   gcc -std=c11 -Wall -Wextra -Werror -Isrc/core tests/c/platform_smoke.c \
 *       src/core/platform_posix.c -o /tmp/ps && /tmp/ps
 * Windows (mingw-w64; run the .exe natively or under wine):
 *   x86_64-w64-mingw32-gcc -std=c11 -Wall -Wextra -Werror -Isrc/core \
 *       tests/c/platform_smoke.c src/core/platform_win.c -lbcrypt -o ps.exe
 *
 * On Windows the descriptors for ms_os_read come from ucrtbase.dll, as
 * CPython's do, even when this program is linked against msvcrt.dll.
 *
 * Prints one line per check and "platform smoke: N passed, M failed";
 * exits non-zero if any check failed.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* pipe, write, close under -std=c11 */
#endif

#include "platform.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#else
#include <unistd.h>
#endif

#define MANY_REGIONS 520 /* more than WER's 512 excluded blocks */

static int passed;
static int failed;

/* Record one check; on failure show the OS error when there is one. */
static void check(int ok, const char *what, const ms_oserr *err)
{
    char text[256];

    if (ok) {
        passed++;
        printf("ok   %s\n", what);
        return;
    }
    failed++;
    if (err != NULL && err->op != NULL) {
        ms_os_describe(err, text, sizeof text);
        printf("FAIL %s: %s: errno %d, winerror %lu: %s\n", what, err->op,
               err->code, err->winerror, text);
    } else {
        printf("FAIL %s\n", what);
    }
}

static void clear_err(ms_oserr *err)
{
    err->code = 0;
    err->winerror = 0;
    err->op = NULL;
}

static int all_equal(const unsigned char *p, size_t len, unsigned char v)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != v) {
            return 0;
        }
    }
    return 1;
}

static void fill_pattern(unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (unsigned char)(i * 7u + 1u);
    }
}

static int has_pattern(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != (unsigned char)(i * 7u + 1u)) {
            return 0;
        }
    }
    return 1;
}

/* A description is usable if it is non-empty, NUL-terminated inside buf
 * and carries no trailing line break. */
static int description_ok(const char *buf, size_t cap)
{
    const char *end = memchr(buf, '\0', cap);
    size_t n;

    if (end == NULL) {
        return 0;
    }
    n = (size_t)(end - buf);
    return n > 0 && buf[n - 1] != '\n' && buf[n - 1] != '\r';
}

static void print_features(void)
{
    const ms_os_features *f = ms_os_features_get();
    long long soft, hard;

    ms_os_lock_limit(&soft, &hard);
    printf("info os_family=%s page_size=%zu\n", f->os_family,
           ms_os_page_size());
    printf("info dump_exclusion=%d (%s)\n", f->dump_exclusion,
           f->dump_mechanism);
    printf("info fork_protection=%d (%s)\n", f->fork_protection,
           f->fork_mechanism);
    printf("info secretmem_offered=%d wipe=%s random=%s lock=%s\n",
           f->secretmem_offered, f->wipe_mechanism, f->random_source,
           f->lock_mechanism);
    printf("info lock limit soft=%lld hard=%lld\n", soft, hard);
}

/* Lock, and after a failure make room once and retry, as the region layer
 * does. */
static int lock_with_retry(void *addr, size_t len, ms_oserr *err)
{
    if (ms_os_lock(addr, len, err) == 0) {
        return 0;
    }
    if (!ms_os_raise_lock_limit(len)) {
        return -1;
    }
    clear_err(err);
    return ms_os_lock(addr, len, err);
}

/* ---- a pipe of C runtime descriptors, to feed ms_os_read ------------- */

#ifdef _WIN32
typedef int(__cdecl *pipe_fn)(int *fds, unsigned int size, int mode);
typedef int(__cdecl *write_fn)(int fd, const void *buf, unsigned int n);
typedef int(__cdecl *close_fn)(int fd);

static pipe_fn crt_pipe;
static write_fn crt_write;
static close_fn crt_close;

/* CPython's descriptors live in the UCRT: use its table when there is one
 * (loading it also makes ms_os_read look there), else our own CRT's. */
static void crt_pick(void)
{
    /* Kept loaded on purpose for the rest of the test: static, not leaked. */
    static HMODULE ucrt;
    ucrt = LoadLibraryW(L"ucrtbase.dll");
    FARPROC p = ucrt ? GetProcAddress(ucrt, "_pipe") : NULL;
    FARPROC w = ucrt ? GetProcAddress(ucrt, "_write") : NULL;
    FARPROC c = ucrt ? GetProcAddress(ucrt, "_close") : NULL;

    if (p != NULL && w != NULL && c != NULL) {
        crt_pipe = (pipe_fn)(void (*)(void))p;
        crt_write = (write_fn)(void (*)(void))w;
        crt_close = (close_fn)(void (*)(void))c;
        printf("info descriptors from ucrtbase.dll\n");
        return;
    }
    crt_pipe = _pipe;
    crt_write = _write;
    crt_close = _close;
    printf("info descriptors from the linked CRT\n");
}

static int make_pipe(int fds[2])
{
    return crt_pipe(fds, 4096, _O_BINARY);
}

static int put(int fd, const void *buf, size_t n)
{
    return crt_write(fd, buf, (unsigned int)n) == (int)n;
}

static void close_fd(int fd)
{
    (void)crt_close(fd);
}
#else
static void crt_pick(void)
{
}

static int make_pipe(int fds[2])
{
    return pipe(fds);
}

static int put(int fd, const void *buf, size_t n)
{
    return write(fd, buf, n) == (ssize_t)n;
}

static void close_fd(int fd)
{
    (void)close(fd);
}
#endif

/* Bytes written to a pipe arrive in the page, then end of file. */
static void read_checks(unsigned char *data, size_t ps)
{
    static const char msg[] = "not a real secret";
    const size_t n = sizeof msg - 1;
    ms_oserr err;
    size_t got = 1234;
    int fds[2];
    int ok;

    crt_pick();
    if (make_pipe(fds) != 0) {
        check(0, "create a pipe for ms_os_read", NULL);
        return;
    }
    ok = put(fds[1], msg, n);
    close_fd(fds[1]);
    check(ok, "write to the pipe", NULL);

    clear_err(&err);
    ok = ms_os_read(fds[0], data, ps, &got, &err) == 0;
    check(ok && got == n && memcmp(data, msg, n) == 0,
          "read from a pipe into the page", &err);
    clear_err(&err);
    got = 1234;
    ok = ms_os_read(fds[0], data, ps, &got, &err) == 0;
    check(ok && got == 0, "read at end of file gives 0 bytes", &err);
    close_fd(fds[0]);

    clear_err(&err);
    ok = ms_os_read(-1, data, ps, &got, &err) != 0;
    check(ok && err.code == EBADF, "read from a bad descriptor is EBADF",
          NULL);
    ms_os_wipe(data, ps);
}

/* The life of one guarded region: [guard][data][guard]. */
static void region_checks(size_t ps)
{
    ms_oserr err;
    int dontfork = 0;
    void *base = NULL;
    unsigned char *data;
    int ok;

    clear_err(&err);
    ok = ms_os_reserve(3 * ps, &base, &err) == 0 && base != NULL;
    check(ok, "reserve 3 pages", &err);
    if (!ok) {
        return;
    }
    check(((uintptr_t)base & (ps - 1)) == 0, "reservation is page-aligned",
          NULL);
    data = (unsigned char *)base + ps;

    clear_err(&err);
    ok = ms_os_protect(data, ps, MS_PROT_RW, &err) == 0;
    check(ok, "protect middle page read-write", &err);
    if (ok) {
        check(all_equal(data, ps, 0), "reserved page reads as zero", NULL);
        fill_pattern(data, ps);
        check(has_pattern(data, ps), "write and read back middle page", NULL);
    }

    clear_err(&err);
    check(lock_with_retry(data, ps, &err) == 0, "lock middle page", &err);

    clear_err(&err);
    check(ms_os_harden(data, ps, 0, &dontfork, &err) == 0,
          "harden middle page", &err);
    clear_err(&err);
    check(ms_os_harden(data, ps, 0, &dontfork, &err) == 0,
          "harden middle page again", &err);

    clear_err(&err);
    ok = ms_os_protect(data, ps, MS_PROT_READ, &err) == 0;
    check(ok, "protect middle page read-only", &err);
    if (ok) {
        check(has_pattern(data, ps), "read-only page keeps its data", NULL);
    }

    clear_err(&err);
    ok = ms_os_protect(data, ps, MS_PROT_RW, &err) == 0;
    check(ok, "protect middle page read-write again", &err);
    if (ok) {
        ms_os_wipe(data, ps);
        check(all_equal(data, ps, 0), "wipe leaves zeros", NULL);

        clear_err(&err);
        check(ms_os_random(data, 64, &err) == 0 && !all_equal(data, 64, 0),
              "random fills 64 bytes (not all zero)", &err);
        check(all_equal(data + 64, ps - 64, 0),
              "random writes no further than asked", NULL);
        clear_err(&err);
        check(ms_os_random(data, 0, &err) == 0, "random of 0 bytes", &err);
        ms_os_wipe(data, ps);
        read_checks(data, ps);
    }

    clear_err(&err);
    check(ms_os_protect(data, ps, MS_PROT_NONE, &err) == 0,
          "protect middle page no-access", &err);

    clear_err(&err);
    check(ms_os_unlock(data, ps, &err) == 0, "unlock middle page", &err);

    clear_err(&err);
    check(ms_os_release(base, 3 * ps, &err) == 0, "release 3 pages", &err);
}

/* More hardened regions than Windows Error Reporting can exclude: past its
 * limit hardening is best effort and must still succeed. */
static void many_regions_check(size_t ps)
{
    static void *bases[MANY_REGIONS];
    ms_oserr err;
    int dontfork = 0;
    int made = 0;
    int ok = 1;

    clear_err(&err);
    while (made < MANY_REGIONS && ok) {
        ok = ms_os_reserve(3 * ps, &bases[made], &err) == 0;
        if (ok) {
            made++;
            ok = ms_os_harden((unsigned char *)bases[made - 1] + ps, ps, 0,
                              &dontfork, &err) == 0;
        }
    }
    check(ok, "reserve and harden 520 regions", &err);
    while (made > 0) {
        made--;
        clear_err(&err);
        if (ms_os_release(bases[made], 3 * ps, &err) != 0) {
            ok = 0;
            break;
        }
    }
    check(ok, "release 520 regions", &err);
}

static void error_checks(size_t ps)
{
    ms_oserr err;
    ms_oserr made_up;
    char text[256];
    char tiny[8];
    void *p = NULL;
    /* Far more address space than any machine has, still page-aligned. */
    size_t huge = (SIZE_MAX / 2) & ~(ps - 1);

    clear_err(&err);
    check(ms_os_reserve(huge, &p, &err) != 0, "absurd reserve fails", NULL);
    check(err.code != 0 && err.op != NULL, "failure fills errno and op",
          NULL);
    if (err.op != NULL) {
        memset(text, 0, sizeof text);
        ms_os_describe(&err, text, sizeof text);
        printf("info absurd reserve: %s: errno %d, winerror %lu: %s\n",
               err.op, err.code, err.winerror, text);
        check(description_ok(text, sizeof text), "describe that failure",
              NULL);
    }

    made_up.code = EINVAL;
    made_up.winerror = 0;
    made_up.op = "test";
    memset(text, 0, sizeof text);
    ms_os_describe(&made_up, text, sizeof text);
    check(description_ok(text, sizeof text), "describe an errno value", NULL);

    memset(tiny, 'x', sizeof tiny);
    ms_os_describe(&made_up, tiny, sizeof tiny);
    check(memchr(tiny, '\0', sizeof tiny) != NULL,
          "describe truncates into a small buffer", NULL);
    tiny[0] = 'x';
    ms_os_describe(&made_up, tiny, 0);
    check(tiny[0] == 'x', "describe into 0 bytes writes nothing", NULL);

#ifdef _WIN32
    made_up.code = EACCES;
    made_up.winerror = ERROR_ACCESS_DENIED;
    memset(text, 0, sizeof text);
    ms_os_describe(&made_up, text, sizeof text);
    printf("info ERROR_ACCESS_DENIED: %s\n", text);
    check(description_ok(text, sizeof text), "describe a Windows error",
          NULL);
#endif
}

static void mutex_checks(void)
{
    ms_mutex m;

    ms_mutex_init(&m);
    ms_mutex_lock(&m);
    ms_mutex_unlock(&m);
    ms_mutex_lock(&m);
    ms_mutex_unlock(&m);
    ms_mutex_destroy(&m);
    check(1, "mutex init, lock, unlock, destroy", NULL);
}

int main(void)
{
    ms_oserr err;
    size_t ps;
    unsigned long generation;

    clear_err(&err);
    if (ms_os_init(&err) != 0) {
        check(0, "init", &err);
        printf("platform smoke: %d passed, %d failed\n", passed, failed);
        return 1;
    }
    check(1, "init", NULL);
    ps = ms_os_page_size();
    check(ps >= 4096 && (ps & (ps - 1)) == 0, "page size is a power of two",
          NULL);
    check(ms_os_features_get() != NULL &&
              ms_os_features_get()->os_family != NULL,
          "features are filled in", NULL);
    print_features();
    generation = ms_os_fork_generation();

    if (ps >= 4096 && (ps & (ps - 1)) == 0) {
        region_checks(ps);
        many_regions_check(ps);
        error_checks(ps);
    }
    mutex_checks();
    check(ms_os_fork_generation() == generation,
          "fork generation unchanged without fork", NULL);

    printf("platform smoke: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
