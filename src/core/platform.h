/*
 * platform.h - the page layer: what memsafe asks of the operating system.
 *
 * One implementation per OS family (platform_posix.c, platform_win.c), chosen
 * by setup.py at build time.  Nothing here knows about Python: every call
 * returns 0 on success or -1 with *err filled in, so the layers above can turn
 * a failure into the right Python exception (errno for OSError, the Windows
 * error code as OSError's winerror).
 */
#ifndef MEMSAFE_PLATFORM_H
#define MEMSAFE_PLATFORM_H

#include <stddef.h>

#ifdef _WIN32
#include <windows.h>
typedef SRWLOCK ms_mutex;
typedef int ms_sigsaved;
typedef struct {
    HANDLE in;
    HANDLE out;
    DWORD saved_mode;
    int have_saved;
} ms_tty;
#else
#include <pthread.h>
#include <termios.h>
typedef pthread_mutex_t ms_mutex;
/* Room for a sigset_t (checked in platform_posix.c): <signal.h> needs
 * feature macros that not every file of the core defines. */
typedef struct {
    unsigned long words[1024 / (8 * sizeof(unsigned long))];
} ms_sigsaved;
typedef struct {
    int fd;
    struct termios saved;
    int have_saved;
} ms_tty;
#endif

/* Page protections a region moves between. */
typedef enum {
    MS_PROT_NONE = 0,
    MS_PROT_READ = 1,
    MS_PROT_RW = 2
} ms_prot;

/* Why an OS call failed: errno value (always set, mapped on Windows), the
 * native Windows error code (0 elsewhere) and the name of the failing call. */
typedef struct {
    int code;
    unsigned long winerror;
    const char *op;
} ms_oserr;

/* What this OS offers and what the library applies to secret pages.
 * Filled in by ms_os_init(); read-only afterwards. */
typedef struct {
    const char *os_family;        /* "posix" or "windows" */
    int dump_exclusion;           /* 1: pages are kept out of core dumps */
    const char *dump_mechanism;   /* e.g. "MADV_DONTDUMP" */
    int fork_protection;          /* 1: a fork child never sees plaintext */
    const char *fork_mechanism;   /* e.g. "MADV_WIPEONFORK" */
    int secretmem_offered;        /* 1: the kernel offers memfd_secret */
    const char *wipe_mechanism;   /* e.g. "explicit_bzero" */
    const char *random_source;    /* e.g. "getrandom" */
    const char *lock_mechanism;   /* e.g. "mlock" */
} ms_os_features;

/* Once per process, before anything else: page size, fork hook, probes. */
int ms_os_init(ms_oserr *err);
const ms_os_features *ms_os_features_get(void);
size_t ms_os_page_size(void);

/* Address space: reserve len bytes (a multiple of the page size) with no
 * access, and give them back.  Reserved pages read as zero. */
int ms_os_reserve(size_t len, void **out, ms_oserr *err);
int ms_os_release(void *addr, size_t len, ms_oserr *err);

/* Change the protection of whole pages. */
int ms_os_protect(void *addr, size_t len, ms_prot prot, ms_oserr *err);

/* Keep pages in RAM.  The pages must be accessible when ms_os_lock is called
 * (Windows cannot lock no-access pages).  ms_os_raise_lock_limit makes more
 * room (soft RLIMIT_MEMLOCK up to the hard limit, or a larger working set) so
 * that a failed lock can be tried once more; it returns 1 if it changed
 * anything. */
int ms_os_lock(void *addr, size_t len, ms_oserr *err);
int ms_os_unlock(void *addr, size_t len, ms_oserr *err);
int ms_os_raise_lock_limit(size_t more);
/* Current lock limit in bytes; -1 in a field means unlimited / unknown. */
void ms_os_lock_limit(long long *soft, long long *hard);

/* Keep pages out of core dumps, away from transparent huge pages, and away
 * from fork children (wiped or not inherited).  Fails closed: an error means
 * the protection is not in place.  MS_HARDEN_SHARED: the pages are a shared
 * mapping (memfd_secret), which cannot be wiped on fork: they are not
 * inherited instead (MADV_DONTFORK).  *dontfork is set to 1 when the child
 * will not inherit the pages at all (so a fork child must map something
 * no-access there), 0 when it inherits wiped pages. */
#define MS_HARDEN_SHARED 1
/* MS_HARDEN_INHERIT: a fork child inherits the pages as they are (a secret
 * with fork="inherit", which the child adopts: see store.h). */
#define MS_HARDEN_INHERIT 2
int ms_os_harden(void *addr, size_t len, int flags, int *dontfork,
                 ms_oserr *err);

/* Map no-access anonymous memory at exactly [addr, addr + len), replacing
 * whatever was there (a fork child re-reserves pages it did not inherit;
 * a failed memfd_secret MAP_FIXED leaves a hole to fill again). */
int ms_os_reserve_at(void *addr, size_t len, ms_oserr *err);

/* memfd_secret (Linux 5.14+): replace [addr, addr + len) of a reservation
 * with no-access pages that the kernel removes from its direct map.  They
 * are locked by the kernel and charged to RLIMIT_MEMLOCK (EAGAIN when over
 * it).  err->code ENOSYS: not offered here.  On failure the range may
 * already be unmapped: the caller reserves it again (ms_os_reserve_at). */
int ms_os_secretmem_map(void *addr, size_t len, ms_oserr *err);
/* In a fork child: replace the memfd_secret mapping [addr, addr + len),
 * shared with the parent, by memfd_secret pages of the child's own holding
 * the same bytes, at protection prot (a write or close in one process then
 * never touches the other).  On failure the range is left no-access. */
int ms_os_secretmem_unshare(void *addr, size_t len, ms_prot prot,
                            ms_oserr *err);
int ms_os_secretmem_offered(void);

/* Overwrite memory in a way the compiler cannot optimise away. */
void ms_os_wipe(void *addr, size_t len);

/* Fill with bytes from the OS CSPRNG. */
int ms_os_random(void *addr, size_t len, ms_oserr *err);

/* Fork detection.  ms_os_fork_generation() increases in a fork child
 * (never in the parent; always 0 where fork does not exist).  It costs no
 * system call: a one-page sentinel mapped MADV_WIPEONFORK reads as zero in
 * any child, including one made by a raw fork/clone system call that skips
 * pthread_atfork; without MADV_WIPEONFORK the pid is compared instead.
 * The first call in a child to notice the fork (the atfork child handler,
 * or the first ms_os_fork_generation() after a raw fork) runs the child
 * hook once, before any caller sees the new generation.  A region records
 * the generation at birth; a different value means it was inherited
 * through fork and holds no plaintext here. */
typedef void (*ms_fork_hook)(void);
void ms_os_set_fork_hooks(ms_fork_hook prepare, ms_fork_hook parent,
                          ms_fork_hook child);
unsigned long ms_os_fork_generation(void);
/* The generation without fork detection: for the child hooks themselves
 * (which run before the new generation is published: it is this + 1). */
unsigned long ms_os_fork_generation_raw(void);
/* How fork is detected here ("MADV_WIPEONFORK sentinel", "pid", "none"). */
const char *ms_os_fork_detection(void);

/* An identifier of the calling thread: ms_os_thread_id is cached per
 * thread (normal context); ms_os_thread_id_raw asks the OS each time and
 * is the one to use in a signal handler.  Both give the same value. */
long ms_os_thread_id(void);
long ms_os_thread_id_raw(void);

/* One read(2) from a file descriptor into addr; *got = 0 at end of file.
 * Returns -1 with err->code == EINTR when a signal interrupted it (the
 * caller checks for Python signal handlers and retries). */
int ms_os_read(int fd, void *addr, size_t len, size_t *got, ms_oserr *err);

/* The controlling terminal, for reading a password.  ms_os_tty_open
 * returns 1 with *t ready, 0 if the process has no terminal (the caller
 * falls back to standard input), -1 on error.  ms_os_tty_echo_off keeps
 * line editing (backspace, kill-line) and signals; ms_os_tty_restore puts
 * back the saved modes and is safe to call more than once.
 * ms_os_tty_read_byte reads one byte of the line the user typed (*got = 0
 * at end of input; EINTR as for ms_os_read). */
int ms_os_tty_open(ms_tty *t, ms_oserr *err);
int ms_os_tty_echo_off(ms_tty *t, ms_oserr *err);
int ms_os_tty_restore(ms_tty *t, ms_oserr *err);
int ms_os_tty_write(ms_tty *t, const char *s, size_t len);
int ms_os_tty_read_byte(ms_tty *t, unsigned char *byte, size_t *got,
                        ms_oserr *err);
void ms_os_tty_close(ms_tty *t);

/* A short human description of err (strerror / FormatMessage). */
void ms_os_describe(const ms_oserr *err, char *buf, size_t len);

/* Plain mutual exclusion; never held across a call back into Python. */
void ms_mutex_init(ms_mutex *m);
void ms_mutex_destroy(ms_mutex *m);
void ms_mutex_lock(ms_mutex *m);
void ms_mutex_unlock(ms_mutex *m);
/* Give the processor to another thread (spin loops). */
void ms_mutex_yield(void);

/* ==== process hardening (memsafe.harden) ================================
 *
 * Process-wide measures against other processes and crash dumps, one
 * implementation per OS family at the end of platform_posix.c and
 * platform_win.c.  Every measure is in the report on every OS, so that the
 * report has the same fields everywhere: a measure this OS does not have is
 * "not applied" with the reason.  A measure counts as applied only when the
 * call succeeded and, where the OS can say, reading the state back shows it
 * in place.  Calling ms_os_harden_process again re-applies everything and is
 * harmless; before applying a measure it reads the OS's state (already), so
 * that a caller can tell a measure that was still in effect from one that
 * something had undone and this call put back. */

#define MS_HARDEN_WHY_MAX 256

typedef struct {
    int applied;                 /* 1: in place; 0: not (why says why) */
    char why[MS_HARDEN_WHY_MAX]; /* "" when applied */
    int already;                 /* before this call, as the OS says: 1 in
                                    effect, 0 not (or not on this OS), -1
                                    could not tell (before says why) */
    char before[MS_HARDEN_WHY_MAX]; /* "" unless already == -1 */
} ms_harden_measure;

typedef struct {
    ms_harden_measure not_dumpable;    /* Linux prctl(PR_SET_DUMPABLE, 0) */
    ms_harden_measure deny_attach;     /* macOS ptrace(PT_DENY_ATTACH) */
    ms_harden_measure core_limit_zero; /* POSIX RLIMIT_CORE soft = hard = 0 */
    ms_harden_measure process_dacl;    /* Windows: others may not open us */
    ms_harden_measure no_crash_dialog; /* Windows SEM_NOGPFAULTERRORBOX */
    ms_harden_measure wer_no_heap;     /* Windows WER_FAULT_REPORTING_FLAG_NOHEAP */
} ms_harden_report;

/* Whether a debugger is attached to this process now. */
typedef struct {
    int known;        /* 0: could not tell (why says why) */
    int attached;     /* 1: a debugger or tracer is attached */
    long tracer_pid;  /* Linux: TracerPid; 0 where the OS does not say */
    char why[MS_HARDEN_WHY_MAX];
} ms_debugger_state;

/* Apply every measure this OS has and fill in *r; returns the number of
 * measures this OS has that are not in place (0: all applied). */
int ms_os_harden_process(ms_harden_report *r);

/* Fill in *d; returns 0, or -1 when it could not tell (d->known == 0). */
int ms_os_debugger_attached(ms_debugger_state *d);

/* ==== end of process hardening ========================================= */

/* ==== purge at exit and on signals ======================================= */

/* Run fn when the process exits normally (libc atexit: after Python's own
 * atexit callbacks and finalization). */
int ms_os_at_exit(void (*fn)(void), ms_oserr *err);

/* From now on, before SIGTERM, SIGINT, SIGHUP, SIGQUIT and the fatal
 * signals (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL) take effect, call
 * fn(sig) in the signal handler (fn must be async-signal-safe), then hand
 * the signal to whatever handled it before: the previous handler function
 * (Python's, faulthandler's, ...) is called, and the default action is
 * restored and the signal raised again.  A signal that was ignored is left
 * ignored.  Installing again (after someone else replaced a handler) is
 * harmless.  Windows: the C runtime's signals (SIGINT, SIGTERM, SIGABRT,
 * SIGSEGV, SIGFPE, SIGILL), console control events and unhandled
 * exceptions.  Returns the number of signals hooked, or -1 with err. */
int ms_os_purge_on_signals(void (*fn)(int sig), ms_oserr *err);

/* Keep the purge signals above off the calling thread while it purges, so
 * that a signal's purge never interrupts a purge half way (a process-wide
 * signal goes to another thread, or waits until the purge is over); then
 * put the thread's signal mask back.  Async-signal-safe.  Windows: no-op
 * (its signal handlers run on their own threads). */
void ms_os_block_purge_signals(ms_sigsaved *saved);
void ms_os_restore_signals(const ms_sigsaved *saved);

/* ==== end of purge at exit and on signals =============================== */

#endif /* MEMSAFE_PLATFORM_H */
