/*
 * platform_posix.c - the page layer for Linux, macOS and the BSDs.
 *
 * Everything OS-specific about secret pages lives here.  Features that only
 * some kernels have (MADV_DONTDUMP, MADV_WIPEONFORK, memfd_secret, ...) are
 * chosen by the macros the system headers define and, where a kernel can say
 * "not supported" at run time, probed with a fallback.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#define _DARWIN_C_SOURCE 1
#endif
#define __STDC_WANT_LIB_EXT1__ 1

#include "platform.h"

#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#endif
#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__) || \
    defined(__OpenBSD__) || defined(__NetBSD__)
#include <sys/random.h>
#endif
#if defined(__APPLE__)
#include <mach/vm_inherit.h>
#endif

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

/* memfd_secret has the same number on every architecture that has it. */
#if defined(__linux__) && !defined(__NR_memfd_secret) && \
    (defined(__x86_64__) || defined(__aarch64__) || defined(__riscv))
#define __NR_memfd_secret 447
#endif

static size_t page_size;
static ms_os_features features;

/* ---- errors ---------------------------------------------------------- */

static int fail(ms_oserr *err, const char *op, int code)
{
    if (err != NULL) {
        err->code = code;
        err->winerror = 0;
        err->op = op;
    }
    return -1;
}

void ms_os_describe(const ms_oserr *err, char *buf, size_t len)
{
    if (len == 0) {
        return;
    }
    buf[0] = '\0';
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    /* GNU strerror_r: returns the message, maybe in a static table. */
    const char *text = strerror_r(err->code, buf, len);
    if (text != buf) {
        (void)snprintf(buf, len, "%s", text);
    }
#else
    /* XSI strerror_r: fills buf. */
    if (strerror_r(err->code, buf, len) != 0) {
        (void)snprintf(buf, len, "error %d", err->code);
    }
#endif
}

/* ---- fault injection (test builds only) ------------------------------- */

#if defined(MEMSAFE_FAULT_INJECTION)
/*
 * Compiled only with -DMEMSAFE_FAULT_INJECTION (scripts/coverage and the
 * test builds); in normal builds FAULT(op, failed, call) is just `call`.
 *
 * MEMSAFE_FAULT="OP:N:ERRNO[,OP:N:ERRNO...]" makes the N-th call (1-based)
 * of the OS call OP fail with ERRNO; "N+" fails the N-th and every later
 * call.  OP is a call name as the error messages give it ("mmap",
 * "mprotect", "madvise(MADV_DONTDUMP)", "open(/dev/tty)", ...); a bare name
 * ("madvise", "open") matches all its variants.  ERRNO is a symbolic name
 * (ENOMEM, EINTR, ...) or a number.  The variable is read at every call and
 * calls are counted from the moment it took its current value, so a test
 * can set up its secrets first and then set os.environ["MEMSAFE_FAULT"]: a
 * new value resets the counts.  Every injected failure is reported on
 * stderr ("memsafe: fault injected: OP call N: ERRNO"); a malformed value
 * ends the process with status 125, so that a typo cannot let a test pass
 * without injecting anything (exit, not abort: coverage data is written).
 */
#include <stdlib.h>

#define FAULT_RULES_MAX 8
#define FAULT_OP_MAX 64
#define FAULT_SPEC_MAX 512

typedef struct {
    char op[FAULT_OP_MAX];
    unsigned long nth;
    int sticky;
    int code;
    unsigned long seen;
} fault_rule;

static pthread_mutex_t fault_mutex = PTHREAD_MUTEX_INITIALIZER;
static char fault_spec[FAULT_SPEC_MAX];
static int fault_spec_valid;
static fault_rule fault_rules[FAULT_RULES_MAX];
static size_t fault_nrules;

static const struct {
    const char *name;
    int code;
} fault_errnos[] = {
    {"EPERM", EPERM},   {"ENOENT", ENOENT}, {"EINTR", EINTR},
    {"EIO", EIO},       {"ENXIO", ENXIO},   {"EBADF", EBADF},
    {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES},
    {"EFAULT", EFAULT}, {"EBUSY", EBUSY},   {"ENODEV", ENODEV},
    {"EINVAL", EINVAL}, {"ENFILE", ENFILE}, {"EMFILE", EMFILE},
    {"ENOTTY", ENOTTY}, {"ENOSPC", ENOSPC}, {"ENOSYS", ENOSYS},
};

#define FAULT_NERRNOS (sizeof(fault_errnos) / sizeof(fault_errnos[0]))

static void fault_say(const char *a, const char *b, const char *c)
{
    char line[FAULT_SPEC_MAX + 160];
    int n = snprintf(line, sizeof(line), "memsafe: %s%s%s\n", a, b, c);
    if (n > 0) {
        size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
    }
}

#define FAULT_EXIT_BAD_SPEC 125

static void fault_bad_spec(const char *why, const char *entry)
{
    fault_say("MEMSAFE_FAULT: ", why, entry);
    /* The test's own mistake: end the process on the spot.  exit() is not
     * thread safe, but nothing is to survive this anyway. */
    /* NOLINTNEXTLINE(concurrency-mt-unsafe) */
    exit(FAULT_EXIT_BAD_SPEC);
}

static int fault_errno_parse(const char *s)
{
    for (size_t i = 0; i < FAULT_NERRNOS; i++) {
        if (strcmp(s, fault_errnos[i].name) == 0) {
            return fault_errnos[i].code;
        }
    }
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v <= 0 || v > 4095) {
        return 0;
    }
    return (int)v;
}

/* Parse fault_spec into fault_rules, all counts at zero. */
static void fault_parse(void)
{
    char buf[FAULT_SPEC_MAX];
    char *save = NULL;
    fault_nrules = 0;
    memcpy(buf, fault_spec, sizeof(buf));
    for (char *e = strtok_r(buf, ",", &save); e != NULL;
         e = strtok_r(NULL, ",", &save)) {
        char *c1 = strchr(e, ':');
        char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (fault_nrules == FAULT_RULES_MAX) {
            fault_bad_spec("too many entries at ", e);
        }
        if (c2 == NULL || c1 == e || (size_t)(c1 - e) >= FAULT_OP_MAX) {
            fault_bad_spec("expected OP:N:ERRNO, got ", e);
        }
        fault_rule *r = &fault_rules[fault_nrules];
        memset(r, 0, sizeof(*r));
        memcpy(r->op, e, (size_t)(c1 - e));
        *c2 = '\0';
        char *end = NULL;
        r->nth = strtoul(c1 + 1, &end, 10);
        if (*end == '+') {
            r->sticky = 1;
            end++;
        }
        if (end == c1 + 1 || *end != '\0' || r->nth == 0) {
            fault_bad_spec("bad call number in ", e);
        }
        r->code = fault_errno_parse(c2 + 1);
        if (r->code == 0) {
            fault_bad_spec("unknown errno in ", e);
        }
        fault_nrules++;
    }
}

/* A rule "madvise" matches "madvise" and "madvise(...)". */
static int fault_matches(const char *rule, const char *op)
{
    size_t n = strlen(rule);
    return strncmp(rule, op, n) == 0 && (op[n] == '\0' || op[n] == '(');
}

/* 1, with errno set, if this call of op is to fail. */
static int fault_hit(const char *op)
{
    /* Test builds only: the tests set the variable from the one thread
     * that then makes the calls, so getenv's lack of thread safety (a
     * concurrent setenv) cannot bite. */
    /* NOLINTNEXTLINE(concurrency-mt-unsafe) */
    const char *spec = getenv("MEMSAFE_FAULT");
    int code = 0;
    unsigned long nth = 0;
    if (spec == NULL) {
        spec = "";
    }
    pthread_mutex_lock(&fault_mutex);
    if (!fault_spec_valid || strcmp(spec, fault_spec) != 0) {
        size_t n = strlen(spec);
        if (n >= sizeof(fault_spec)) {
            fault_bad_spec("value too long: ", spec);
        }
        memset(fault_spec, 0, sizeof(fault_spec));
        memcpy(fault_spec, spec, n);
        fault_spec_valid = 1;
        fault_parse();
    }
    for (size_t i = 0; i < fault_nrules; i++) {
        fault_rule *r = &fault_rules[i];
        if (!fault_matches(r->op, op)) {
            continue;
        }
        r->seen++;
        if (code == 0 &&
            (r->seen == r->nth || (r->sticky && r->seen > r->nth))) {
            code = r->code;
            nth = r->seen;
        }
    }
    pthread_mutex_unlock(&fault_mutex);
    if (code == 0) {
        return 0;
    }
    char what[FAULT_OP_MAX + 48];
    char name[24];
    (void)snprintf(what, sizeof(what), "%s call %lu: ", op, nth);
    (void)snprintf(name, sizeof(name), "%d", code);
    for (size_t i = 0; i < FAULT_NERRNOS; i++) {
        if (fault_errnos[i].code == code) {
            (void)snprintf(name, sizeof(name), "%s", fault_errnos[i].name);
            break;
        }
    }
    fault_say("fault injected: ", what, name);
    errno = code;
    return 1;
}

/* The OS call `call`, or -- when the fault plan says so -- `failed` with
 * errno set, as if the call had failed. */
#define FAULT(op, failed, call) (fault_hit(op) ? (failed) : (call))
#else
#define FAULT(op, failed, call) (call)
#endif

/* ---- fork detection ---------------------------------------------------- */

/* One word in a private page marked MADV_WIPEONFORK: 1 while armed, 0 in
 * any fork child (the kernel wiped it), 2 while a child is handling the
 * fork.  NULL when MADV_WIPEONFORK is not available: the pid is compared
 * instead (pid_seen, with pid_busy as the handling flag). */
static volatile intptr_t *sentinel;
static volatile intptr_t fork_generation;
static volatile intptr_t pid_seen;
static volatile intptr_t pid_busy;
static ms_fork_hook hook_prepare;
static ms_fork_hook hook_parent;
static ms_fork_hook hook_child;

/* Not subject to fault injection: fork detection is infrastructure that
 * the fault tests rely on, not a protection of secret pages. */
static void sentinel_arm(void)
{
    size_t len = page_size;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return;
    }
#if defined(MADV_WIPEONFORK)
    if (madvise(p, len, MADV_WIPEONFORK) == 0) {
        sentinel = (volatile intptr_t *)p;
        ms_atomic_store(sentinel, 1);
        return;
    }
#endif
    (void)munmap(p, len);
}

/* 1 on the thread that runs the child hooks, while it does: what they
 * call must not wait for the fork to be handled (it is being handled), and
 * sees the parent's generation until the hooks are done. */
static _Thread_local int in_child_work;

static void child_work(void)
{
    in_child_work = 1;
    if (hook_child != NULL) {
        hook_child();
    }
    in_child_work = 0;
    (void)ms_atomic_add(&fork_generation, 1);
}

static int fork_seen(void)
{
    if (sentinel != NULL) {
        return ms_atomic_load(sentinel) != 1;
    }
    return (intptr_t)getpid() != ms_atomic_load(&pid_seen);
}

/* Exactly one thread of the child runs child_work; the others wait for it
 * (only a child made by a raw fork that then started threads has any). */
static void handle_fork(void)
{
    volatile intptr_t *flag = sentinel != NULL ? sentinel : &pid_busy;
    intptr_t settled = sentinel != NULL ? 1 : 0; /* value once handled */
    if (ms_atomic_cas(flag, 0, 2)) {
        if (sentinel != NULL ||
            (intptr_t)getpid() != ms_atomic_load(&pid_seen)) {
            child_work();
            ms_atomic_store(&pid_seen, (intptr_t)getpid());
        }
        ms_atomic_store(flag, settled);
        return;
    }
    while (ms_atomic_load(flag) == 2) {
        (void)sched_yield();
    }
}

static void on_fork_prepare(void)
{
    if (hook_prepare != NULL) {
        hook_prepare();
    }
}

static void on_fork_parent(void)
{
    if (hook_parent != NULL) {
        hook_parent();
    }
}

static void on_fork_child(void)
{
    if (fork_seen()) {
        handle_fork();
    }
}

void ms_os_set_fork_hooks(ms_fork_hook prepare, ms_fork_hook parent,
                          ms_fork_hook child)
{
    hook_prepare = prepare;
    hook_parent = parent;
    hook_child = child;
}

unsigned long ms_os_fork_generation_raw(void)
{
    return (unsigned long)ms_atomic_load(&fork_generation);
}

unsigned long ms_os_fork_generation(void)
{
    if (in_child_work) {
        return ms_os_fork_generation_raw();
    }
    if (fork_seen()) {
        handle_fork();
    }
    return (unsigned long)ms_atomic_load(&fork_generation);
}

const char *ms_os_fork_detection(void)
{
    return sentinel != NULL ? "MADV_WIPEONFORK sentinel page" : "pid";
}

long ms_os_thread_id_raw(void)
{
#if defined(__linux__) && defined(SYS_gettid)
    return (long)syscall(SYS_gettid);
#elif defined(__APPLE__)
    uint64_t tid = 0;
    (void)pthread_threadid_np(pthread_self(), &tid);
    return (long)tid;
#else
    return (long)(uintptr_t)pthread_self();
#endif
}

/* The id costs a system call (gettid): it is kept per thread, for the
 * fork generation it was read in (a fork child's thread has a new id). */
static _Thread_local long tid_cached;
static _Thread_local unsigned long tid_generation;

long ms_os_thread_id(void)
{
    if (in_child_work) {
        return ms_os_thread_id_raw(); /* a fork hook: the child's one thread */
    }
    unsigned long gen = ms_os_fork_generation();
    if (tid_cached == 0 || tid_generation != gen) {
        tid_cached = ms_os_thread_id_raw();
        tid_generation = gen;
    }
    return tid_cached;
}

/* ---- process-wide set-up ---------------------------------------------- */

static int secretmem_probe(void)
{
#if defined(__linux__) && defined(__NR_memfd_secret)
    long fd = FAULT("memfd_secret", -1L,
                    syscall(__NR_memfd_secret, (unsigned long)O_CLOEXEC));
    if (fd < 0) {
        return 0;
    }
    close((int)fd);
    return 1;
#else
    return 0;
#endif
}

static void features_fill(void)
{
    features.os_family = "posix";
#if defined(MADV_DONTDUMP)
    features.dump_exclusion = 1;
    features.dump_mechanism = "MADV_DONTDUMP";
#elif defined(MADV_NOCORE)
    features.dump_exclusion = 1;
    features.dump_mechanism = "MADV_NOCORE";
#else
    features.dump_exclusion = 0;
    features.dump_mechanism = "none (this OS has no per-mapping dump exclusion)";
#endif
#if defined(MADV_WIPEONFORK)
    features.fork_protection = 1;
    features.fork_mechanism = "MADV_WIPEONFORK";
#elif defined(VM_INHERIT_NONE) || defined(INHERIT_NONE)
    features.fork_protection = 1;
    features.fork_mechanism = "minherit(INHERIT_NONE)";
#elif defined(MADV_DONTFORK)
    features.fork_protection = 1;
    features.fork_mechanism = "MADV_DONTFORK";
#else
    features.fork_protection = 0;
    features.fork_mechanism = "none";
#endif
    features.secretmem_offered = secretmem_probe();
#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__)
    features.wipe_mechanism = "explicit_bzero";
#elif defined(__APPLE__)
    features.wipe_mechanism = "memset_s";
#else
    features.wipe_mechanism = "volatile loop";
#endif
#if defined(__linux__)
    features.random_source = "getrandom";
#else
    features.random_source = "getentropy";
#endif
    features.lock_mechanism = "mlock";
}

int ms_os_init(ms_oserr *err)
{
    long ps = FAULT("sysconf", -1L, sysconf(_SC_PAGESIZE));
    if (ps <= 0) {
        return fail(err, "sysconf(_SC_PAGESIZE)", errno ? errno : EINVAL);
    }
    page_size = (size_t)ps;
    ms_atomic_store(&pid_seen, (intptr_t)getpid());
    sentinel_arm();
    int rc = FAULT("pthread_atfork", errno,
                   pthread_atfork(on_fork_prepare, on_fork_parent,
                                  on_fork_child));
    if (rc != 0) {
        return fail(err, "pthread_atfork", rc);
    }
    features_fill();
    return 0;
}

const ms_os_features *ms_os_features_get(void)
{
    return &features;
}

size_t ms_os_page_size(void)
{
    return page_size;
}

/* ---- address space ---------------------------------------------------- */

int ms_os_reserve(size_t len, void **out, ms_oserr *err)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#if defined(MAP_NOCORE)
    flags |= MAP_NOCORE;
#endif
    void *p = FAULT("mmap", MAP_FAILED,
                    mmap(NULL, len, PROT_NONE, flags, -1, 0));
    if (p == MAP_FAILED) {
        return fail(err, "mmap", errno);
    }
    *out = p;
    return 0;
}

int ms_os_release(void *addr, size_t len, ms_oserr *err)
{
    if (FAULT("munmap", -1, munmap(addr, len)) != 0) {
        return fail(err, "munmap", errno);
    }
    return 0;
}

int ms_os_reserve_at(void *addr, size_t len, ms_oserr *err)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
#if defined(MAP_NOCORE)
    flags |= MAP_NOCORE;
#endif
    void *p = FAULT("mmap(MAP_FIXED)", MAP_FAILED,
                    mmap(addr, len, PROT_NONE, flags, -1, 0));
    if (p == MAP_FAILED) {
        return fail(err, "mmap(MAP_FIXED)", errno);
    }
    /* The caller owns the range it named: nothing new to keep track of. */
    // cppcheck-suppress memleak
    return 0;
}

int ms_os_secretmem_offered(void)
{
    return features.secretmem_offered;
}

int ms_os_secretmem_map(void *addr, size_t len, ms_oserr *err)
{
#if defined(__linux__) && defined(__NR_memfd_secret)
    long fd = FAULT("memfd_secret", -1L,
                    syscall(__NR_memfd_secret, (unsigned long)O_CLOEXEC));
    if (fd < 0) {
        return fail(err, "memfd_secret", errno);
    }
    if (FAULT("ftruncate", -1, ftruncate((int)fd, (off_t)len)) != 0) {
        int code = errno;
        close((int)fd);
        return fail(err, "ftruncate(memfd_secret)", code);
    }
    void *p = FAULT("mmap(memfd_secret)", MAP_FAILED,
                    mmap(addr, len, PROT_NONE, MAP_SHARED | MAP_FIXED,
                         (int)fd, 0));
    int code = errno;
    close((int)fd); /* the mapping keeps the pages */
    if (p == MAP_FAILED) {
        return fail(err, "mmap(memfd_secret)", code);
    }
    return 0;
#else
    (void)addr;
    (void)len;
    return fail(err, "memfd_secret", ENOSYS);
#endif
}

static int prot_flags(ms_prot prot);

int ms_os_secretmem_unshare(void *addr, size_t len, ms_prot prot,
                            ms_oserr *err)
{
#if defined(__linux__) && defined(__NR_memfd_secret)
    long fd = FAULT("memfd_secret", -1L,
                    syscall(__NR_memfd_secret, (unsigned long)O_CLOEXEC));
    if (fd < 0) {
        return fail(err, "memfd_secret", errno);
    }
    int code = 0;
    const char *op = NULL;
    void *tmp = MAP_FAILED;
    if (FAULT("ftruncate", -1, ftruncate((int)fd, (off_t)len)) != 0) {
        code = errno;
        op = "ftruncate(memfd_secret)";
    } else if ((tmp = FAULT("mmap(memfd_secret)", MAP_FAILED,
                            mmap(NULL, len, PROT_READ | PROT_WRITE,
                                 MAP_SHARED, (int)fd, 0))) == MAP_FAILED) {
        code = errno;
        op = "mmap(memfd_secret)";
    } else if (FAULT("mprotect", -1,
                     mprotect(addr, len, PROT_READ)) != 0) {
        code = errno;
        op = "mprotect";
    } else {
        memcpy(tmp, addr, len);
        if (FAULT("mmap(memfd_secret)", MAP_FAILED,
                  mmap(addr, len, prot_flags(prot), MAP_SHARED | MAP_FIXED,
                       (int)fd, 0)) == MAP_FAILED) {
            code = errno;
            op = "mmap(memfd_secret)";
        }
    }
    if (tmp != MAP_FAILED) {
        /* The same pages as the new mapping at addr (one file): unmapped,
         * not wiped. */
        (void)munmap(tmp, len);
    }
    close((int)fd);
    if (op != NULL) {
        ms_oserr ignored;
        (void)ms_os_reserve_at(addr, len, &ignored); /* fail closed */
        return fail(err, op, code);
    }
    return 0;
#else
    (void)addr;
    (void)len;
    (void)prot;
    return fail(err, "memfd_secret", ENOSYS);
#endif
}

static int prot_flags(ms_prot prot)
{
    switch (prot) {
    case MS_PROT_READ:
        return PROT_READ;
    case MS_PROT_RW:
        return PROT_READ | PROT_WRITE;
    case MS_PROT_NONE:
    default:
        return PROT_NONE;
    }
}

int ms_os_protect(void *addr, size_t len, ms_prot prot, ms_oserr *err)
{
    if (FAULT("mprotect", -1, mprotect(addr, len, prot_flags(prot))) != 0) {
        return fail(err, "mprotect", errno);
    }
    return 0;
}

/* ---- locking ---------------------------------------------------------- */

int ms_os_lock(void *addr, size_t len, ms_oserr *err)
{
    if (FAULT("mlock", -1, mlock(addr, len)) != 0) {
        return fail(err, "mlock", errno);
    }
    return 0;
}

int ms_os_unlock(void *addr, size_t len, ms_oserr *err)
{
    if (FAULT("munlock", -1, munlock(addr, len)) != 0) {
        return fail(err, "munlock", errno);
    }
    return 0;
}

int ms_os_raise_lock_limit(size_t more)
{
    (void)more;
    struct rlimit rl;
    if (FAULT("getrlimit", -1, getrlimit(RLIMIT_MEMLOCK, &rl)) != 0 ||
        rl.rlim_cur == rl.rlim_max) {
        return 0;
    }
    rl.rlim_cur = rl.rlim_max;
    return FAULT("setrlimit", -1, setrlimit(RLIMIT_MEMLOCK, &rl)) == 0;
}

static long long rlim_value(rlim_t v)
{
    if (v == RLIM_INFINITY || v > (rlim_t)INT64_MAX) {
        return -1;
    }
    return (long long)v;
}

void ms_os_lock_limit(long long *soft, long long *hard)
{
    struct rlimit rl;
    if (FAULT("getrlimit", -1, getrlimit(RLIMIT_MEMLOCK, &rl)) != 0) {
        *soft = *hard = -1;
        return;
    }
    *soft = rlim_value(rl.rlim_cur);
    *hard = rlim_value(rl.rlim_max);
}

/* ---- hardening -------------------------------------------------------- */

static int exclude_from_dumps(void *addr, size_t len, ms_oserr *err)
{
#if defined(MADV_DONTDUMP)
    if (FAULT("madvise(MADV_DONTDUMP)", -1,
              madvise(addr, len, MADV_DONTDUMP)) != 0) {
        return fail(err, "madvise(MADV_DONTDUMP)", errno);
    }
#elif defined(MADV_NOCORE)
    if (FAULT("madvise(MADV_NOCORE)", -1,
              madvise(addr, len, MADV_NOCORE)) != 0) {
        return fail(err, "madvise(MADV_NOCORE)", errno);
    }
#else
    (void)addr;
    (void)len;
    (void)err;
#endif
    return 0;
}

/* khugepaged collapses small pages into a huge page by copying them, which
 * would leave a stale copy of the secret in freed memory. */
static int refuse_huge_pages(void *addr, size_t len, ms_oserr *err)
{
#if defined(MADV_NOHUGEPAGE)
    /* EINVAL: kernel built without transparent huge pages - nothing to do. */
    if (FAULT("madvise(MADV_NOHUGEPAGE)", -1,
              madvise(addr, len, MADV_NOHUGEPAGE)) != 0 &&
        errno != EINVAL) {
        return fail(err, "madvise(MADV_NOHUGEPAGE)", errno);
    }
#else
    (void)addr;
    (void)len;
    (void)err;
#endif
    return 0;
}

/* Not inherited at all: the child has a hole there (fills it, see
 * platform.h). */
static int dont_fork(void *addr, size_t len, int *dontfork, ms_oserr *err)
{
#if defined(MADV_DONTFORK)
    if (FAULT("madvise(MADV_DONTFORK)", -1,
              madvise(addr, len, MADV_DONTFORK)) != 0) {
        return fail(err, "madvise(MADV_DONTFORK)", errno);
    }
    *dontfork = 1;
    return 0;
#elif defined(__APPLE__)
    if (FAULT("minherit(VM_INHERIT_NONE)", -1,
              minherit(addr, len, VM_INHERIT_NONE)) != 0) {
        return fail(err, "minherit(VM_INHERIT_NONE)", errno);
    }
    *dontfork = 1;
    return 0;
#elif defined(INHERIT_NONE)
    if (FAULT("minherit(INHERIT_NONE)", -1,
              minherit(addr, len, INHERIT_NONE)) != 0) {
        return fail(err, "minherit(INHERIT_NONE)", errno);
    }
    *dontfork = 1;
    return 0;
#else
    (void)addr;
    (void)len;
    (void)dontfork;
    return fail(err, "fork protection", ENOSYS);
#endif
}

static int keep_from_fork_children(void *addr, size_t len, int flags,
                                   int *dontfork, ms_oserr *err)
{
#if defined(MADV_WIPEONFORK)
    if (!(flags & MS_HARDEN_SHARED)) {
        if (FAULT("madvise(MADV_WIPEONFORK)", -1,
                  madvise(addr, len, MADV_WIPEONFORK)) == 0) {
            return 0;
        }
        if (errno != EINVAL) {
            return fail(err, "madvise(MADV_WIPEONFORK)", errno);
        }
        /* Kernels before 4.14: the child gets no mapping at all instead. */
    }
#else
    (void)flags;
#endif
    return dont_fork(addr, len, dontfork, err);
}

int ms_os_harden(void *addr, size_t len, int flags, int *dontfork,
                 ms_oserr *err)
{
    *dontfork = 0;
    if (exclude_from_dumps(addr, len, err) != 0) {
        return -1;
    }
    /* memfd_secret pages are never huge (nor migrated). */
    if (!(flags & MS_HARDEN_SHARED) &&
        refuse_huge_pages(addr, len, err) != 0) {
        return -1;
    }
    if (flags & MS_HARDEN_INHERIT) {
        return 0; /* the child adopts the pages (store.h) */
    }
    return keep_from_fork_children(addr, len, flags, dontfork, err);
}

/* ---- wiping and randomness -------------------------------------------- */

void ms_os_wipe(void *addr, size_t len)
{
    if (len == 0) {
        return;
    }
#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__)
    explicit_bzero(addr, len);
#elif defined(__APPLE__)
    (void)memset_s(addr, len, 0, len);
#else
    volatile unsigned char *p = (volatile unsigned char *)addr;
    while (len-- > 0) {
        *p++ = 0;
    }
#endif
}

int ms_os_random(void *addr, size_t len, ms_oserr *err)
{
    unsigned char *p = (unsigned char *)addr;
    while (len > 0) {
#if defined(__linux__)
        ssize_t got = FAULT("getrandom", -1, getrandom(p, len, 0));
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(err, "getrandom", errno);
        }
        size_t n = (size_t)got;
#else
        size_t n = len < 256 ? len : 256; /* getentropy's limit per call */
        if (FAULT("getentropy", -1, getentropy(p, n)) != 0) {
            return fail(err, "getentropy", errno);
        }
#endif
        p += n;
        len -= n;
    }
    return 0;
}

/* ---- files ----------------------------------------------------------- */

int ms_os_read(int fd, void *addr, size_t len, size_t *got, ms_oserr *err)
{
    if (len > (size_t)SSIZE_MAX) {
        len = (size_t)SSIZE_MAX;
    }
    ssize_t n = FAULT("read", -1, read(fd, addr, len));
    if (n < 0) {
        return fail(err, "read", errno);
    }
    *got = (size_t)n;
    return 0;
}

/* ---- terminal -------------------------------------------------------- */

int ms_os_tty_open(ms_tty *t, ms_oserr *err)
{
    t->have_saved = 0;
    t->fd = FAULT("open(/dev/tty)", -1,
                  open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (t->fd < 0) {
        if (errno == ENXIO || errno == ENOENT || errno == EACCES ||
            errno == ENODEV || errno == ENOTTY) {
            return 0; /* no controlling terminal */
        }
        return fail(err, "open(/dev/tty)", errno);
    }
    return 1;
}

int ms_os_tty_echo_off(ms_tty *t, ms_oserr *err)
{
    struct termios quiet;
    if (FAULT("tcgetattr", -1, tcgetattr(t->fd, &t->saved)) != 0) {
        return fail(err, "tcgetattr", errno);
    }
    t->have_saved = 1;
    quiet = t->saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    quiet.c_lflag |= ICANON;
    while (FAULT("tcsetattr", -1, tcsetattr(t->fd, TCSAFLUSH, &quiet)) != 0) {
        if (errno != EINTR) {
            t->have_saved = 0;
            return fail(err, "tcsetattr", errno);
        }
    }
    return 0;
}

int ms_os_tty_restore(ms_tty *t, ms_oserr *err)
{
    if (!t->have_saved) {
        return 0;
    }
    while (FAULT("tcsetattr", -1, tcsetattr(t->fd, TCSAFLUSH, &t->saved)) !=
           0) {
        if (errno != EINTR) {
            return fail(err, "tcsetattr", errno);
        }
    }
    t->have_saved = 0;
    return 0;
}

int ms_os_tty_write(ms_tty *t, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = FAULT("write", -1, write(t->fd, s, len));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Wait for input at most this long before reporting EINTR, so that the
 * caller checks for Python signal handlers: a Ctrl-C that arrived just
 * before the read started (and so did not interrupt it) is acted on within
 * this time instead of after the next keystroke. */
#define TTY_POLL_MS 200

int ms_os_tty_read_byte(ms_tty *t, unsigned char *byte, size_t *got,
                        ms_oserr *err)
{
    struct pollfd pfd = {t->fd, POLLIN, 0};
    int ready = poll(&pfd, 1, TTY_POLL_MS);
    if (ready == 0) {
        return fail(err, "poll", EINTR);
    }
    if (ready < 0) {
        return fail(err, "poll", errno);
    }
    return ms_os_read(t->fd, byte, 1, got, err);
}

void ms_os_tty_close(ms_tty *t)
{
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
}

/* ---- mutex ------------------------------------------------------------ */

void ms_mutex_init(ms_mutex *m)
{
    (void)pthread_mutex_init(m, NULL);
}

void ms_mutex_destroy(ms_mutex *m)
{
    (void)pthread_mutex_destroy(m);
}

void ms_mutex_lock(ms_mutex *m)
{
    (void)pthread_mutex_lock(m);
}

void ms_mutex_unlock(ms_mutex *m)
{
    (void)pthread_mutex_unlock(m);
}

void ms_mutex_yield(void)
{
    (void)sched_yield();
}
/* ==== process hardening (memsafe.harden) ================================
 *
 * ms_os_harden_process and ms_os_debugger_attached (platform.h).
 *
 * Linux: prctl(PR_SET_DUMPABLE, 0), read back with PR_GET_DUMPABLE.  A
 *   non-dumpable process refuses ptrace attaches and /proc/PID/mem,
 *   /proc/PID/environ, process_vm_readv... to every process without
 *   CAP_SYS_PTRACE (same uid included), and the kernel writes no core of
 *   it.  Root (CAP_SYS_PTRACE) still reads it.
 * macOS: ptrace(PT_DENY_ATTACH): later ptrace attaches fail.  If a debugger
 *   is already attached, PT_DENY_ATTACH ends the process (status ENOTSUP),
 *   so then it is not called and the report says why.
 * Both: RLIMIT_CORE soft and hard 0 (read back), so that no core is written
 *   and the limit cannot be raised again without privilege.
 * Debugger: Linux TracerPid in /proc/self/status; macOS P_TRACED from
 *   sysctl(KERN_PROC_PID).  Other POSIX systems: reported as unknown.
 * Before applying a measure its state is read from the kernel (already):
 *   PR_GET_DUMPABLE, getrlimit(RLIMIT_CORE).  macOS has no call that reads
 *   PT_DENY_ATTACH back; the flag cannot be cleared, so it counts as in
 *   effect once a call of ours succeeded, and as unknown before that.
 */
#include <stdlib.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#if defined(__APPLE__)
#include <sys/types.h>
#include <sys/ptrace.h>
#include <sys/sysctl.h>
#endif

static void measure_ok(ms_harden_measure *m)
{
    m->applied = 1;
    m->why[0] = '\0';
}

static void measure_not(ms_harden_measure *m, const char *why)
{
    m->applied = 0;
    (void)snprintf(m->why, sizeof(m->why), "%s", why);
}

/* "OP failed: <strerror> (errno N)" */
static void measure_failed(ms_harden_measure *m, const char *op, int code)
{
    char text[128];
    ms_oserr e = {code, 0, op};
    ms_os_describe(&e, text, sizeof(text));
    m->applied = 0;
    (void)snprintf(m->why, sizeof(m->why), "%s failed: %s (errno %d)", op,
                   text, code);
}

/* The state before this call could not be read: "unknown: OP failed: ..." */
static void before_failed(ms_harden_measure *m, const char *op, int code)
{
    char text[128];
    ms_oserr e = {code, 0, op};
    ms_os_describe(&e, text, sizeof(text));
    m->already = -1;
    (void)snprintf(m->before, sizeof(m->before),
                   "unknown: %s failed: %s (errno %d)", op, text, code);
}

#if defined(__linux__)
/* already: whether the process was non-dumpable before this call. */
static void dumpable_before(ms_harden_measure *m)
{
    int was = FAULT("prctl(PR_GET_DUMPABLE)", -1,
                    prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL));
    if (was < 0) {
        before_failed(m, "prctl(PR_GET_DUMPABLE)", errno);
        return;
    }
    m->already = was == 0;
}
#endif

static int harden_dumpable(ms_harden_measure *m)
{
#if defined(__linux__)
    dumpable_before(m);
    if (FAULT("prctl(PR_SET_DUMPABLE)", -1,
              prctl(PR_SET_DUMPABLE, 0UL, 0UL, 0UL, 0UL)) != 0) {
        measure_failed(m, "prctl(PR_SET_DUMPABLE, 0)", errno);
        return 1;
    }
    int now = FAULT("prctl(PR_GET_DUMPABLE)", -1,
                    prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL));
    if (now < 0) {
        measure_failed(m, "prctl(PR_GET_DUMPABLE)", errno);
        return 1;
    }
    if (now != 0) {
        (void)snprintf(m->why, sizeof(m->why),
                       "prctl(PR_SET_DUMPABLE, 0) succeeded but "
                       "PR_GET_DUMPABLE still says %d",
                       now);
        m->applied = 0;
        return 1;
    }
    measure_ok(m);
    return 0;
#elif defined(__APPLE__)
    measure_not(m, "Linux only (prctl PR_SET_DUMPABLE); macOS has "
                   "deny_attach instead");
    return 0;
#else
    measure_not(m, "Linux only (prctl PR_SET_DUMPABLE); not implemented on "
                   "this OS");
    return 0;
#endif
}

/* already: whether RLIMIT_CORE was 0 (soft and hard) before this call. */
static void core_limit_before(ms_harden_measure *m)
{
    struct rlimit rl;
    if (FAULT("getrlimit(RLIMIT_CORE)", -1, getrlimit(RLIMIT_CORE, &rl)) !=
        0) {
        before_failed(m, "getrlimit(RLIMIT_CORE)", errno);
        return;
    }
    m->already = rl.rlim_cur == 0 && rl.rlim_max == 0;
}

static int harden_core_limit(ms_harden_measure *m)
{
    struct rlimit rl;
    core_limit_before(m);
    rl.rlim_cur = 0;
    rl.rlim_max = 0;
    if (FAULT("setrlimit(RLIMIT_CORE)", -1, setrlimit(RLIMIT_CORE, &rl)) !=
        0) {
        measure_failed(m, "setrlimit(RLIMIT_CORE, 0)", errno);
        return 1;
    }
    if (FAULT("getrlimit(RLIMIT_CORE)", -1, getrlimit(RLIMIT_CORE, &rl)) !=
        0) {
        measure_failed(m, "getrlimit(RLIMIT_CORE)", errno);
        return 1;
    }
    if (rl.rlim_cur != 0 || rl.rlim_max != 0) {
        measure_not(m, "setrlimit(RLIMIT_CORE, 0) succeeded but "
                       "getrlimit does not say 0");
        return 1;
    }
    measure_ok(m);
    return 0;
}

#if defined(__APPLE__)
/* 1 once ptrace(PT_DENY_ATTACH) succeeded in this process: the flag cannot
 * be cleared, and no call reads it back. */
static volatile intptr_t deny_attach_done;
#endif

static int harden_deny_attach(ms_harden_measure *m)
{
#if defined(__APPLE__)
    ms_debugger_state d;
    if (ms_atomic_load(&deny_attach_done)) {
        m->already = 1;
    } else {
        m->already = -1;
        (void)snprintf(m->before, sizeof(m->before),
                       "unknown: macOS has no call that reads PT_DENY_ATTACH "
                       "back, and memsafe had not applied it");
    }
    if (ms_os_debugger_attached(&d) != 0) {
        (void)snprintf(m->why, sizeof(m->why),
                       "not applied: cannot tell whether a debugger is "
                       "attached (%s), and PT_DENY_ATTACH would end a "
                       "traced process",
                       d.why);
        m->applied = 0;
        return 1;
    }
    if (d.attached) {
        measure_not(m, "not applied: a debugger is attached, and "
                       "PT_DENY_ATTACH would end the process");
        return 1;
    }
    if (FAULT("ptrace(PT_DENY_ATTACH)", -1,
              ptrace(PT_DENY_ATTACH, 0, 0, 0)) != 0) {
        measure_failed(m, "ptrace(PT_DENY_ATTACH)", errno);
        return 1;
    }
    ms_atomic_store(&deny_attach_done, 1);
    measure_ok(m);
    return 0;
#elif defined(__linux__)
    measure_not(m, "macOS only (ptrace PT_DENY_ATTACH); Linux has "
                   "not_dumpable instead");
    return 0;
#else
    measure_not(m, "macOS only (ptrace PT_DENY_ATTACH)");
    return 0;
#endif
}

int ms_os_harden_process(ms_harden_report *r)
{
    int missing = 0;
    memset(r, 0, sizeof(*r));
    missing += harden_dumpable(&r->not_dumpable);
    missing += harden_deny_attach(&r->deny_attach);
    missing += harden_core_limit(&r->core_limit_zero);
    measure_not(&r->process_dacl, "Windows only (process DACL)");
    measure_not(&r->no_crash_dialog,
                "Windows only (SEM_NOGPFAULTERRORBOX); see core_limit_zero");
    measure_not(&r->wer_no_heap, "Windows only (WerSetFlags)");
    return missing;
}

static int debugger_unknown(ms_debugger_state *d, const char *op, int code)
{
    char text[128];
    ms_oserr e = {code, 0, op};
    ms_os_describe(&e, text, sizeof(text));
    d->known = 0;
    d->attached = 0;
    d->tracer_pid = 0;
    (void)snprintf(d->why, sizeof(d->why), "unknown: %s failed: %s (errno %d)",
                   op, text, code);
    return -1;
}

#if defined(__linux__)
static int tracer_pid(ms_debugger_state *d)
{
    static const char path[] = "/proc/self/status";
    static const char field[] = "\nTracerPid:";
    char buf[8192];
    size_t used = 0;
    int fd = FAULT("open(/proc/self/status)", -1,
                   open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0) {
        return debugger_unknown(d, "open(/proc/self/status)", errno);
    }
    while (used < sizeof(buf) - 1) {
        ssize_t n = FAULT("read(/proc/self/status)", -1,
                          read(fd, buf + used, sizeof(buf) - 1 - used));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int code = errno;
            close(fd);
            return debugger_unknown(d, "read(/proc/self/status)", code);
        }
        if (n == 0) {
            break;
        }
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    const char *at = strstr(buf, field);
    if (at == NULL) {
        d->known = 0;
        d->attached = 0;
        d->tracer_pid = 0;
        (void)snprintf(d->why, sizeof(d->why),
                       "unknown: no TracerPid in /proc/self/status");
        return -1;
    }
    at += sizeof(field) - 1;
    char *end = NULL;
    errno = 0;
    long pid = strtol(at, &end, 10);
    if (end == at || errno != 0 || pid < 0) {
        d->known = 0;
        d->attached = 0;
        d->tracer_pid = 0;
        (void)snprintf(d->why, sizeof(d->why),
                       "unknown: unreadable TracerPid in /proc/self/status");
        return -1;
    }
    d->known = 1;
    d->attached = pid != 0;
    d->tracer_pid = pid;
    d->why[0] = '\0';
    return 0;
}
#endif

int ms_os_debugger_attached(ms_debugger_state *d)
{
    memset(d, 0, sizeof(*d));
#if defined(__linux__)
    return tracer_pid(d);
#elif defined(__APPLE__)
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)getpid()};
    struct kinfo_proc info;
    size_t size = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (FAULT("sysctl(KERN_PROC_PID)", -1,
              sysctl(mib, 4, &info, &size, NULL, 0)) != 0) {
        return debugger_unknown(d, "sysctl(KERN_PROC_PID)", errno);
    }
    d->known = 1;
    d->attached = (info.kp_proc.p_flag & P_TRACED) != 0;
    d->tracer_pid = 0;
    d->why[0] = '\0';
    return 0;
#else
    d->known = 0;
    (void)snprintf(d->why, sizeof(d->why),
                   "unknown: no debugger check on this OS");
    return -1;
#endif
}

/* ==== end of process hardening ========================================= */

/* ==== purge at exit and on signals ======================================= */

#include <signal.h>

int ms_os_at_exit(void (*fn)(void), ms_oserr *err)
{
    if (FAULT("atexit", -1, atexit(fn)) != 0) {
        return fail(err, "atexit", ENOMEM);
    }
    return 0;
}

static const int purge_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGSEGV,
                                    SIGBUS,  SIGABRT, SIGFPE, SIGILL};

#define NPURGE (sizeof(purge_signals) / sizeof(purge_signals[0]))

/* What handled each signal before us; written before our handler is
 * installed for it, read only by the handler. */
static struct sigaction purge_previous[NPURGE];
static void (*purge_fn)(int);
static pthread_mutex_t purge_mutex = PTHREAD_MUTEX_INITIALIZER;

static int purge_slot(int sig)
{
    for (size_t i = 0; i < NPURGE; i++) {
        if (purge_signals[i] == sig) {
            return (int)i;
        }
    }
    return -1;
}

/* Hand the signal on: to the previous handler function, or to the default
 * action (restored, then the signal raised again: it stays blocked until
 * this handler returns, then acts). */
static void purge_chain(const struct sigaction *old, int sig, siginfo_t *info,
                        void *ctx)
{
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction != NULL) {
            old->sa_sigaction(sig, info, ctx);
            return;
        }
    } else if (old->sa_handler == SIG_IGN) {
        return;
    } else if (old->sa_handler != SIG_DFL) {
        old->sa_handler(sig);
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(sig, &dfl, NULL);
    (void)raise(sig);
}

static void on_purge_signal(int sig, siginfo_t *info, void *ctx)
{
    int saved = errno;
    int i = purge_slot(sig);
    if (purge_fn != NULL) {
        purge_fn(sig);
    }
    if (i >= 0) {
        purge_chain(&purge_previous[i], sig, info, ctx);
    }
    errno = saved;
}

static void add_purge_signals(sigset_t *set)
{
    for (size_t i = 0; i < NPURGE; i++) {
        (void)sigaddset(set, purge_signals[i]);
    }
}

_Static_assert(sizeof(sigset_t) <= sizeof(ms_sigsaved),
               "ms_sigsaved must hold a sigset_t");

void ms_os_block_purge_signals(ms_sigsaved *saved)
{
    sigset_t block, old;
    (void)sigemptyset(&block);
    add_purge_signals(&block);
    (void)pthread_sigmask(SIG_BLOCK, &block, &old);
    memcpy(saved, &old, sizeof(old));
}

void ms_os_restore_signals(const ms_sigsaved *saved)
{
    sigset_t old;
    memcpy(&old, saved, sizeof(old));
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int is_ours(const struct sigaction *a)
{
    return (a->sa_flags & SA_SIGINFO) && a->sa_sigaction == on_purge_signal;
}

static int is_ignored(const struct sigaction *a)
{
    return !(a->sa_flags & SA_SIGINFO) && a->sa_handler == SIG_IGN;
}

/* Hook one signal; 1 hooked (now or before), 0 left alone (ignored). */
static int hook_signal(size_t i, ms_oserr *err)
{
    struct sigaction cur;
    if (FAULT("sigaction", -1, sigaction(purge_signals[i], NULL, &cur)) != 0) {
        return fail(err, "sigaction", errno);
    }
    if (is_ours(&cur)) {
        return 1;
    }
    if (is_ignored(&cur)) {
        return 0;
    }
    purge_previous[i] = cur;
    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_sigaction = on_purge_signal;
    /* While our handler runs, the other purge signals wait: a purge is
     * never interrupted by another one on the same thread. */
    act.sa_mask = cur.sa_mask;
    add_purge_signals(&act.sa_mask);
    act.sa_flags = SA_SIGINFO | SA_ONSTACK | (cur.sa_flags & SA_RESTART);
    if (FAULT("sigaction", -1, sigaction(purge_signals[i], &act, NULL)) != 0) {
        return fail(err, "sigaction", errno);
    }
    return 1;
}

int ms_os_purge_on_signals(void (*fn)(int sig), ms_oserr *err)
{
    int hooked = 0;
    pthread_mutex_lock(&purge_mutex);
    purge_fn = fn;
    for (size_t i = 0; i < NPURGE; i++) {
        int rc = hook_signal(i, err);
        if (rc < 0) {
            hooked = -1;
            break;
        }
        hooked += rc;
    }
    pthread_mutex_unlock(&purge_mutex);
    return hooked;
}

/* ==== end of purge at exit and on signals =============================== */
