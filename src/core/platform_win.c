/*
 * platform_win.c - the page layer for Windows.
 *
 * Everything Windows-specific about secret pages lives here: VirtualAlloc /
 * VirtualProtect / VirtualLock for the pages, SecureZeroMemory for wiping,
 * BCryptGenRandom for randomness, ReadFile for reading a descriptor
 * straight into secret pages, ReadConsoleW (echo off) for getpass, and
 * WerRegisterExcludedMemoryBlock (looked
 * up at run time: Windows 10 1703+, absent from older systems, from wine and
 * from some mingw headers) to keep secret pages out of WER crash dumps.
 *
 * Link with -lbcrypt.
 */
#include "platform.h"

#include <bcrypt.h>
#include <errno.h>
#include <io.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t page_size;

/* Everything but the dump exclusion is fixed on Windows; ms_os_init fills
 * in the dump fields once it knows whether WER can exclude memory. */
static ms_os_features features = {
    .os_family = "windows",
    .dump_exclusion = 0,
    .dump_mechanism = "none (WerRegisterExcludedMemoryBlock unavailable)",
    .fork_protection = 1,
    .fork_mechanism = "no fork on Windows",
    .secretmem_offered = 0,
    .wipe_mechanism = "SecureZeroMemory",
    .random_source = "BCryptGenRandom",
    .lock_mechanism = "VirtualLock",
};

/* ---- errors ---------------------------------------------------------- */

/* The errno value an OSError should carry for a Windows error code. */
static int errno_from_winerror(DWORD winerror)
{
    switch (winerror) {
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_WORKING_SET_QUOTA:
        return ENOMEM;
    case ERROR_ACCESS_DENIED:
        return EACCES;
    case ERROR_INVALID_PARAMETER:
    case ERROR_INVALID_ADDRESS:
        return EINVAL;
    case ERROR_INVALID_HANDLE:
        return EBADF;
    case ERROR_OPERATION_ABORTED: /* Ctrl+C during a console read */
        return EINTR;
    default:
        return EIO;
    }
}

static int fail_win(ms_oserr *err, const char *op, DWORD winerror)
{
    if (err != NULL) {
        err->code = errno_from_winerror(winerror);
        err->winerror = winerror;
        err->op = op;
    }
    return -1;
}

/* A failure reported the way the C runtime's _read reports it: an errno
 * value and no Windows error code, so that OSError carries exactly that
 * errno (given a winerror, OSError derives errno from it instead), as
 * os.read's errors do on Windows. */
static int fail_crt(ms_oserr *err, const char *op, int code)
{
    if (err != NULL) {
        err->code = code;
        err->winerror = 0;
        err->op = op;
    }
    return -1;
}

/* For the Win32 calls that report failure through GetLastError(). */
static int fail_last(ms_oserr *err, const char *op)
{
    return fail_win(err, op, GetLastError());
}

/* WER reports failures as HRESULTs.  Those wrapping a Win32 error
 * (FACILITY_WIN32, which includes E_OUTOFMEMORY and E_INVALIDARG) are
 * unwrapped; any other HRESULT (e.g. WER_E_INVALID_STATE) is kept whole,
 * which FormatMessage can still describe.  The arithmetic is done on the
 * unsigned value: shifting a negative HRESULT is implementation-defined. */
static int fail_hresult(ms_oserr *err, const char *op, HRESULT hr)
{
    unsigned long bits = (unsigned long)hr;

    if (((bits >> 16) & 0x1fffUL) == FACILITY_WIN32) {
        return fail_win(err, op, (DWORD)(bits & 0xffffUL));
    }
    return fail_win(err, op, (DWORD)bits);
}

/* BCrypt reports NTSTATUS values; RtlNtStatusToDosError (ntdll, always
 * loaded, documented in winternl.h) turns them into Win32 errors.  Looked up
 * at run time so that callers need not link ntdll. */
typedef ULONG(WINAPI *rtl_status_fn)(NTSTATUS status);

static DWORD winerror_from_ntstatus(NTSTATUS status)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    FARPROC proc;

    if (ntdll == NULL) {
        return ERROR_GEN_FAILURE;
    }
    proc = GetProcAddress(ntdll, "RtlNtStatusToDosError");
    if (proc == NULL) {
        return ERROR_GEN_FAILURE;
    }
    /* Through void (*)(void): the generic function pointer type, so the
     * compiler does not warn about the cast from FARPROC. */
    return ((rtl_status_fn)(void (*)(void))proc)(status);
}

static int fail_ntstatus(ms_oserr *err, const char *op, NTSTATUS status)
{
    return fail_win(err, op, winerror_from_ntstatus(status));
}

/* Copy the system's text for a Windows error into buf (len > 0), without
 * the trailing CR/LF FormatMessage appends.  Returns 0 if there is none. */
static int describe_winerror(DWORD winerror, char *buf, size_t len)
{
    char text[512];
    DWORD n;

    n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                           FORMAT_MESSAGE_IGNORE_INSERTS,
                       NULL, winerror, 0, text, (DWORD)sizeof text, NULL);
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n' ||
                     text[n - 1] == ' ')) {
        n--;
    }
    if (n > 0) {
        text[n] = '\0';
        (void)snprintf(buf, len, "%s", text);
    }
    SecureZeroMemory(text, sizeof text);
    return n > 0;
}

void ms_os_describe(const ms_oserr *err, char *buf, size_t len)
{
    if (len == 0) {
        return;
    }
    if (err->winerror != 0 &&
        describe_winerror((DWORD)err->winerror, buf, len)) {
        return;
    }
    if (strerror_s(buf, len, err->code) != 0) {
        (void)snprintf(buf, len, "error %d", err->code);
    }
}

/* ---- dump exclusion (Windows Error Reporting) ------------------------- */

/*
 * WerRegisterExcludedMemoryBlock keeps a block out of the dumps WER writes.
 * It does not bind other dump writers (a debugger, procdump, or a
 * MiniDumpWriteDump call in another process), and it takes at most
 * WER_MAX_REGISTERED_ENTRIES (512) blocks per process: beyond that memsafe
 * goes on unexcluded, which the feature report says.
 *
 * The region layer hardens only the data pages but releases the whole
 * reservation (guard pages included), so the registered blocks are kept in
 * a table: ms_os_release unregisters every block inside what it frees.
 */
typedef HRESULT(WINAPI *wer_register_fn)(const void *address, DWORD size);
typedef HRESULT(WINAPI *wer_unregister_fn)(const void *address);

#define WER_MAX_BLOCKS 512 /* WER_MAX_REGISTERED_ENTRIES */

typedef struct {
    uintptr_t addr; /* 0: free slot */
    size_t len;
} wer_block;

static wer_register_fn wer_register;
static wer_unregister_fn wer_unregister;
static SRWLOCK wer_table_lock = SRWLOCK_INIT;
static wer_block wer_table[WER_MAX_BLOCKS]; /* under wer_table_lock */

/* Both WER entry points from one module, or 0. */
static int wer_resolve(HMODULE module)
{
    FARPROC reg, unreg;

    if (module == NULL) {
        return 0;
    }
    reg = GetProcAddress(module, "WerRegisterExcludedMemoryBlock");
    unreg = GetProcAddress(module, "WerUnregisterExcludedMemoryBlock");
    if (reg == NULL || unreg == NULL) {
        return 0;
    }
    wer_register = (wer_register_fn)(void (*)(void))reg;
    wer_unregister = (wer_unregister_fn)(void (*)(void))unreg;
    return 1;
}

/* kernel32 exports them (1703+); wer.dll is the fallback, loaded from
 * System32 only and never unloaded since we keep pointers into it. */
static int wer_load(void)
{
    if (wer_resolve(GetModuleHandleW(L"kernel32.dll"))) {
        return 1;
    }
    return wer_resolve(
        LoadLibraryExW(L"wer.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32));
}

/* Index of the slot holding addr (0 finds a free slot), or -1. */
static int wer_slot(uintptr_t addr)
{
    for (int i = 0; i < WER_MAX_BLOCKS; i++) {
        if (wer_table[i].addr == addr) {
            return i;
        }
    }
    return -1;
}

/* Caller holds wer_table_lock.  A block already registered with the same
 * length is left alone; one with another length is registered afresh. */
static int wer_exclude_locked(void *addr, size_t len, ms_oserr *err)
{
    const uintptr_t key = (uintptr_t)addr;
    int slot = wer_slot(key);
    HRESULT hr;

    if (slot >= 0 && wer_table[slot].len == len) {
        return 0;
    }
    if (slot >= 0) {
        (void)wer_unregister(addr);
        wer_table[slot].addr = 0;
    }
    if (len == 0 || len > MAXDWORD) {
        return fail_win(err, "WerRegisterExcludedMemoryBlock",
                        ERROR_INVALID_PARAMETER);
    }
    slot = wer_slot(0);
    if (slot < 0) {
        return 0; /* our 512 blocks are in: WER would refuse; best effort */
    }
    hr = wer_register(addr, (DWORD)len);
    if (hr == HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER)) {
        return 0; /* others in this process used up the 512; best effort */
    }
    if (FAILED(hr)) {
        return fail_hresult(err, "WerRegisterExcludedMemoryBlock", hr);
    }
    wer_table[slot].addr = key;
    wer_table[slot].len = len;
    return 0;
}

static int wer_exclude(void *addr, size_t len, ms_oserr *err)
{
    int rc;

    if (wer_register == NULL) {
        return 0; /* not offered here; the feature report says so */
    }
    AcquireSRWLockExclusive(&wer_table_lock);
    rc = wer_exclude_locked(addr, len, err);
    ReleaseSRWLockExclusive(&wer_table_lock);
    return rc;
}

/* Caller holds wer_table_lock.  Unregisters every block starting inside
 * [addr, addr + len); addresses compare as integers, since comparing
 * pointers into different objects is undefined. */
static void wer_forget_range_locked(void *addr, size_t len)
{
    const uintptr_t lo = (uintptr_t)addr;

    for (int i = 0; i < WER_MAX_BLOCKS; i++) {
        uintptr_t a = wer_table[i].addr;
        if (a != 0 && a >= lo && a - lo < len) {
            (void)wer_unregister((const void *)a); // NOLINT(performance-no-int-to-ptr)
            wer_table[i].addr = 0;
            wer_table[i].len = 0;
        }
    }
}

/* ---- process-wide set-up ---------------------------------------------- */

int ms_os_init(ms_oserr *err)
{
    SYSTEM_INFO si;

    GetSystemInfo(&si);
    if (si.dwPageSize == 0) {
        return fail_win(err, "GetSystemInfo", ERROR_INVALID_PARAMETER);
    }
    page_size = si.dwPageSize;
    if (wer_load()) {
        features.dump_exclusion = 1;
        features.dump_mechanism =
            "WerRegisterExcludedMemoryBlock (best effort, 512 blocks)";
    }
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

/* Windows has no fork: nothing is ever inherited. */
void ms_os_set_fork_hooks(ms_fork_hook prepare, ms_fork_hook parent,
                          ms_fork_hook child)
{
    (void)prepare;
    (void)parent;
    (void)child;
}

unsigned long ms_os_fork_generation(void)
{
    return 0;
}

unsigned long ms_os_fork_generation_raw(void)
{
    return 0;
}

const char *ms_os_fork_detection(void)
{
    return "none (no fork on Windows)";
}

long ms_os_thread_id(void)
{
    return (long)GetCurrentThreadId();
}

long ms_os_thread_id_raw(void)
{
    return (long)GetCurrentThreadId();
}

/* ---- address space ---------------------------------------------------- */

/* Committed at once: commit-on-first-touch would make a later access fail
 * with an exception rather than an error here.  Committed pages read as
 * zero.  The base is 64 KiB-aligned (allocation granularity). */
int ms_os_reserve(size_t len, void **out, ms_oserr *err)
{
    void *p = VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT, PAGE_NOACCESS);

    if (p == NULL) {
        DWORD e = GetLastError();
        /* A size beyond the address space comes back as "invalid
         * parameter" (the other arguments are always valid): it is out of
         * memory all the same, as ENOMEM from mmap is. */
        fail_win(err, "VirtualAlloc", e);
        if (e == ERROR_INVALID_PARAMETER && err != NULL) {
            err->code = ENOMEM;
        }
        return -1;
    }
    *out = p;
    return 0;
}

/* MEM_RELEASE frees the whole reservation and wants size 0.  The WER table
 * stays locked across the free so no other thread can reserve, harden and
 * register the same addresses before their old entries are dropped. */
int ms_os_release(void *addr, size_t len, ms_oserr *err)
{
    int rc = 0;

    AcquireSRWLockExclusive(&wer_table_lock);
    if (!VirtualFree(addr, 0, MEM_RELEASE)) {
        rc = fail_last(err, "VirtualFree");
    } else if (wer_unregister != NULL) {
        wer_forget_range_locked(addr, len);
    }
    ReleaseSRWLockExclusive(&wer_table_lock);
    return rc;
}

static DWORD page_protection(ms_prot prot)
{
    switch (prot) {
    case MS_PROT_READ:
        return PAGE_READONLY;
    case MS_PROT_RW:
        return PAGE_READWRITE;
    case MS_PROT_NONE:
    default:
        return PAGE_NOACCESS;
    }
}

int ms_os_protect(void *addr, size_t len, ms_prot prot, ms_oserr *err)
{
    DWORD old; /* VirtualProtect fails if this pointer is NULL */

    if (!VirtualProtect(addr, len, page_protection(prot), &old)) {
        return fail_last(err, "VirtualProtect");
    }
    return 0;
}

/* ---- locking ---------------------------------------------------------- */

/* PAGE_NOACCESS pages cannot be locked: the caller locks while the pages
 * are accessible.  A full working-set minimum fails with
 * ERROR_WORKING_SET_QUOTA (ENOMEM), which ms_os_raise_lock_limit answers. */
int ms_os_lock(void *addr, size_t len, ms_oserr *err)
{
    if (!VirtualLock(addr, len)) {
        return fail_last(err, "VirtualLock");
    }
    return 0;
}

/* ERROR_NOT_LOCKED: some pages were not locked; they are unlocked now all
 * the same, which is what the caller asked for. */
int ms_os_unlock(void *addr, size_t len, ms_oserr *err)
{
    if (!VirtualUnlock(addr, len)) {
        DWORD e = GetLastError();
        if (e != ERROR_NOT_LOCKED) {
            return fail_win(err, "VirtualUnlock", e);
        }
    }
    return 0;
}

/* A process may lock about its minimum working set "minus a small
 * overhead" (VirtualLock docs); this much more covers the overhead. */
#define WS_SLACK_PAGES 16

/* *sum = a + b, or 0 if that overflows. */
static int add_size(size_t a, size_t b, size_t *sum)
{
    if (a > SIZE_MAX - b) {
        return 0;
    }
    *sum = a + b;
    return 1;
}

int ms_os_raise_lock_limit(size_t more)
{
    HANDLE self = GetCurrentProcess();
    SIZE_T lo, hi;
    size_t extra;

    if (!GetProcessWorkingSetSize(self, &lo, &hi)) {
        return 0;
    }
    if (page_size > SIZE_MAX / WS_SLACK_PAGES ||
        !add_size(more, page_size * WS_SLACK_PAGES, &extra) ||
        !add_size(lo, extra, &lo) || !add_size(hi, extra, &hi)) {
        return 0;
    }
    return SetProcessWorkingSetSize(self, lo, hi) != 0;
}

/* The minimum working set is what bounds VirtualLock; how far it may grow
 * depends on system memory and privileges, so the hard limit is unknown. */
void ms_os_lock_limit(long long *soft, long long *hard)
{
    SIZE_T lo, hi;

    *hard = -1;
    if (!GetProcessWorkingSetSize(GetCurrentProcess(), &lo, &hi) ||
        lo > (SIZE_T)LLONG_MAX) {
        *soft = -1;
        return;
    }
    *soft = (long long)lo;
}

/* ---- hardening -------------------------------------------------------- */

/* Windows has no fork and no transparent huge pages; what is left is
 * keeping the pages out of crash dumps. */
int ms_os_harden(void *addr, size_t len, int flags, int *dontfork,
                 ms_oserr *err)
{
    (void)flags;
    *dontfork = 0;
    return wer_exclude(addr, len, err);
}

/* Only a fork child or a failed memfd_secret mapping needs this. */
int ms_os_reserve_at(void *addr, size_t len, ms_oserr *err)
{
    (void)addr;
    (void)len;
    return fail_crt(err, "reserve at a fixed address", ENOSYS);
}

int ms_os_secretmem_offered(void)
{
    return 0;
}

int ms_os_secretmem_map(void *addr, size_t len, ms_oserr *err)
{
    (void)addr;
    (void)len;
    return fail_crt(err, "memfd_secret", ENOSYS);
}

int ms_os_secretmem_unshare(void *addr, size_t len, ms_prot prot,
                            ms_oserr *err)
{
    (void)addr;
    (void)len;
    (void)prot;
    return fail_crt(err, "memfd_secret", ENOSYS);
}

/* ---- wiping and randomness -------------------------------------------- */

/* SecureZeroMemory writes through a volatile pointer, so the stores are
 * never optimised away. */
void ms_os_wipe(void *addr, size_t len)
{
    if (len == 0) {
        return;
    }
    SecureZeroMemory(addr, len);
}

/* BCryptGenRandom takes a ULONG (32-bit) length: fill in chunks. */
int ms_os_random(void *addr, size_t len, ms_oserr *err)
{
    unsigned char *p = (unsigned char *)addr;

    while (len > 0) {
        ULONG n = len > ULONG_MAX ? ULONG_MAX : (ULONG)len;
        NTSTATUS st =
            BCryptGenRandom(NULL, p, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
        if (!BCRYPT_SUCCESS(st)) {
            return fail_ntstatus(err, "BCryptGenRandom", st);
        }
        p += n;
        len -= n;
    }
    return 0;
}

/* ---- files ----------------------------------------------------------- */

/*
 * A file descriptor is an index into one C runtime's table, and each CRT
 * DLL has its own.  Every CPython since 3.5 keeps its descriptors in the
 * UCRT (ucrtbase.dll), while mingw-w64 (as packaged by Debian) links this
 * file against msvcrt.dll: looking the descriptor up in our own table would
 * read from whatever file that table has under the same number.  So the
 * UCRT's table is used whenever the UCRT is loaded, and this file's own CRT
 * only when it is not (then the process has no other CRT to speak of).
 */
typedef intptr_t(__cdecl *get_osfhandle_fn)(int fd);
typedef _invalid_parameter_handler(__cdecl *set_iph_fn)(
    _invalid_parameter_handler handler);

/* The UCRT reports a bad descriptor to the invalid-parameter handler, which
 * by default ends the process; this one lets _get_osfhandle return -1. */
static void __cdecl ignore_invalid_parameter(const wchar_t *expression,
                                             const wchar_t *function,
                                             const wchar_t *file,
                                             unsigned int line,
                                             uintptr_t reserved)
{
    (void)expression;
    (void)function;
    (void)file;
    (void)line;
    (void)reserved;
}

/* fd's OS handle from the UCRT's table; 0 if the UCRT is not loaded. */
static int ucrt_handle_of(int fd, intptr_t *handle)
{
    HMODULE ucrt = GetModuleHandleW(L"ucrtbase.dll");
    FARPROC get, set;
    _invalid_parameter_handler old;

    if (ucrt == NULL) {
        return 0;
    }
    get = GetProcAddress(ucrt, "_get_osfhandle");
    set = GetProcAddress(ucrt, "_set_thread_local_invalid_parameter_handler");
    if (get == NULL || set == NULL) {
        return 0;
    }
    /* Thread-local, as CPython's _Py_BEGIN_SUPPRESS_IPH does it. */
    old = ((set_iph_fn)(void (*)(void))set)(ignore_invalid_parameter);
    *handle = ((get_osfhandle_fn)(void (*)(void))get)(fd);
    ((set_iph_fn)(void (*)(void))set)(old);
    return 1;
}

/* INVALID_HANDLE_VALUE for a closed descriptor; -2 for one with no stream
 * (stdin of a GUI program): both are "no handle". */
static HANDLE handle_of(int fd)
{
    intptr_t h;

    if (!ucrt_handle_of(fd, &h)) {
        h = _get_osfhandle(fd);
    }
    if (h == -1 || h == -2) {
        return INVALID_HANDLE_VALUE;
    }
    return (HANDLE)h; // NOLINT(performance-no-int-to-ptr): a CRT handle value
}

/* ReadFile straight into addr: no CRT buffer in between, and binary
 * semantics (no CR/LF translation, no stop at Ctrl+Z) whatever the
 * descriptor's mode.  Capped at INT_MAX bytes per call, as CPython's
 * os.read is on Windows. */
int ms_os_read(int fd, void *addr, size_t len, size_t *got, ms_oserr *err)
{
    HANDLE h = handle_of(fd);
    DWORD want = len > (size_t)INT_MAX ? (DWORD)INT_MAX : (DWORD)len;
    DWORD n = 0;

    if (h == INVALID_HANDLE_VALUE) {
        return fail_crt(err, "_get_osfhandle", EBADF);
    }
    if (!ReadFile(h, addr, want, &n, NULL)) {
        DWORD e = GetLastError();
        switch (e) {
        case ERROR_BROKEN_PIPE: /* the writer closed the pipe */
        case ERROR_HANDLE_EOF:
            *got = 0; /* end of file, as _read reports it */
            return 0;
        case ERROR_ACCESS_DENIED: /* a descriptor not open for reading */
            return fail_crt(err, "ReadFile", EBADF);
        case ERROR_NO_DATA: /* an empty non-blocking pipe (PIPE_NOWAIT) */
            return fail_crt(err, "ReadFile", EAGAIN);
        default:
            return fail_win(err, "ReadFile", e);
        }
    }
    *got = n;
    return 0;
}

/* ---- the console, for getpass ----------------------------------------- */

/*
 * The console is Windows' terminal.  CONIN$/CONOUT$ are this process's
 * console whatever standard input and output were redirected to, as
 * /dev/tty is on POSIX.  The password is read with ReadConsoleW in line
 * mode with echo off (the console still does backspace and Esc editing and
 * turns Ctrl+C into a console event), one UTF-16 unit per call into a stack
 * variable; each character is turned into UTF-8 here and handed out one
 * byte at a time, so the caller's locked scratch region receives only
 * UTF-8 and no CRT or Python buffer ever holds a character.
 *
 * What stays out of reach: the console host keeps the line the user typed
 * in its own input buffer (conhost.exe, or the terminal application), which
 * no API lets a program wipe.
 *
 * The UTF-8 bytes still to be handed out live in per-thread state below
 * rather than in ms_tty: a getpass call opens, reads and closes its console
 * in one thread, and platform.h's ms_tty has no room for them.  The state
 * is wiped after every byte handed out, at open and at close.
 */
typedef struct {
    unsigned char bytes[8]; /* UTF-8 waiting to be handed out */
    unsigned char count;    /* bytes[0..count) hold data */
    unsigned char next;     /* the next one to hand out */
    unsigned char eof;      /* input ended after these bytes */
    WCHAR high;             /* a high surrogate waiting for its pair */
} tty_utf8;

#if defined(_MSC_VER)
#define MS_THREAD_LOCAL __declspec(thread)
#else
#define MS_THREAD_LOCAL _Thread_local
#endif

static MS_THREAD_LOCAL tty_utf8 tty_state;

static void tty_state_wipe(void)
{
    SecureZeroMemory(&tty_state, sizeof tty_state);
}

/* Append code point cp as UTF-8.  A lone surrogate (0xD800-0xDFFF) comes
 * out as its 3-byte form, which is not valid UTF-8: the caller's validation
 * rejects the line rather than keep a guessed character. */
static void tty_put(tty_utf8 *st, unsigned long cp)
{
    unsigned char *b = st->bytes + st->count;

    if (cp < 0x80UL) {
        b[0] = (unsigned char)cp;
        st->count += 1;
    } else if (cp < 0x800UL) {
        b[0] = (unsigned char)(0xC0UL | (cp >> 6));
        b[1] = (unsigned char)(0x80UL | (cp & 0x3FUL));
        st->count += 2;
    } else if (cp < 0x10000UL) {
        b[0] = (unsigned char)(0xE0UL | (cp >> 12));
        b[1] = (unsigned char)(0x80UL | ((cp >> 6) & 0x3FUL));
        b[2] = (unsigned char)(0x80UL | (cp & 0x3FUL));
        st->count += 3;
    } else {
        b[0] = (unsigned char)(0xF0UL | (cp >> 18));
        b[1] = (unsigned char)(0x80UL | ((cp >> 12) & 0x3FUL));
        b[2] = (unsigned char)(0x80UL | ((cp >> 6) & 0x3FUL));
        b[3] = (unsigned char)(0x80UL | (cp & 0x3FUL));
        st->count += 4;
    }
}

static int is_high_surrogate(unsigned long u)
{
    return u >= 0xD800UL && u <= 0xDBFFUL;
}

static int is_low_surrogate(unsigned long u)
{
    return u >= 0xDC00UL && u <= 0xDFFFUL;
}

/* One UTF-16 unit from the console.  The line ends in CR LF: the CR is
 * dropped and the LF ends the caller's line.  Ctrl+Z (0x1A) is end of
 * input, as for any Windows console read.  At most 6 bytes are added
 * (a lone high surrogate, then a 3-byte character). */
static void tty_take(tty_utf8 *st, unsigned long u)
{
    if (st->high != 0) {
        unsigned long high = st->high;
        st->high = 0;
        if (is_low_surrogate(u)) {
            tty_put(st, 0x10000UL + ((high - 0xD800UL) << 10) +
                            (u - 0xDC00UL));
            return;
        }
        tty_put(st, high);
    }
    if (is_high_surrogate(u)) {
        st->high = (WCHAR)u;
    } else if (u == 0x1AUL) {
        st->eof = 1;
    } else if (u != L'\r') {
        tty_put(st, u);
    }
}

/* Handles that fail to open mean "no console" (a service, a GUI program,
 * a process started detached); the caller then reads standard input. */
static HANDLE open_console(const wchar_t *name)
{
    return CreateFileW(name, GENERIC_READ | GENERIC_WRITE,
                       FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                       OPEN_EXISTING, 0, NULL);
}

int ms_os_tty_open(ms_tty *t, ms_oserr *err)
{
    DWORD mode;

    (void)err;
    t->have_saved = 0;
    t->saved_mode = 0;
    t->out = INVALID_HANDLE_VALUE;
    tty_state_wipe();
    t->in = open_console(L"CONIN$");
    if (t->in == INVALID_HANDLE_VALUE) {
        return 0;
    }
    if (!GetConsoleMode(t->in, &mode)) {
        CloseHandle(t->in);
        t->in = INVALID_HANDLE_VALUE;
        return 0;
    }
    /* Without an output handle the prompt is simply not shown. */
    t->out = open_console(L"CONOUT$");
    return 1;
}

int ms_os_tty_echo_off(ms_tty *t, ms_oserr *err)
{
    DWORD quiet;

    if (!GetConsoleMode(t->in, &t->saved_mode)) {
        return fail_last(err, "GetConsoleMode");
    }
    t->have_saved = 1;
    /* Echo off; line input keeps the console's own editing (backspace,
     * Esc); processed input turns Ctrl+C into a console control event. */
    quiet = (t->saved_mode & ~(DWORD)ENABLE_ECHO_INPUT) | ENABLE_LINE_INPUT |
            ENABLE_PROCESSED_INPUT;
    if (!SetConsoleMode(t->in, quiet)) {
        t->have_saved = 0;
        return fail_last(err, "SetConsoleMode");
    }
    /* Like TCSAFLUSH: what was typed before the prompt is not the
     * password. */
    (void)FlushConsoleInputBuffer(t->in);
    return 0;
}

int ms_os_tty_restore(ms_tty *t, ms_oserr *err)
{
    if (!t->have_saved) {
        return 0;
    }
    if (!SetConsoleMode(t->in, t->saved_mode)) {
        return fail_last(err, "SetConsoleMode");
    }
    t->have_saved = 0;
    return 0;
}

/* The prompt is UTF-8 (not secret): converted to UTF-16 for WriteConsoleW,
 * which shows it right whatever the console's code page. */
int ms_os_tty_write(ms_tty *t, const char *s, size_t len)
{
    wchar_t small[256];
    wchar_t *w = small;
    int n;
    int rc = 0;
    DWORD done = 0;

    if (t->out == INVALID_HANDLE_VALUE || len > (size_t)INT_MAX) {
        return -1;
    }
    if (len == 0) {
        return 0;
    }
    n = MultiByteToWideChar(CP_UTF8, 0, s, (int)len, NULL, 0);
    if (n <= 0) {
        return -1;
    }
    if ((size_t)n > sizeof small / sizeof small[0]) {
        w = (wchar_t *)malloc((size_t)n * sizeof(wchar_t));
        if (w == NULL) {
            return -1;
        }
    }
    if (MultiByteToWideChar(CP_UTF8, 0, s, (int)len, w, n) != n) {
        rc = -1;
    }
    for (int off = 0; rc == 0 && off < n; off += (int)done) {
        if (!WriteConsoleW(t->out, w + off, (DWORD)(n - off), &done, NULL) ||
            done == 0) {
            rc = -1;
        }
    }
    if (w != small) {
        free(w);
    }
    return rc;
}

int ms_os_tty_read_byte(ms_tty *t, unsigned char *byte, size_t *got,
                        ms_oserr *err)
{
    tty_utf8 *st = &tty_state;

    for (;;) {
        WCHAR unit = 0;
        DWORD n = 0;

        if (st->next < st->count) {
            *byte = st->bytes[st->next];
            st->bytes[st->next] = 0;
            st->next++;
            *got = 1;
            return 0;
        }
        st->next = 0;
        st->count = 0;
        if (st->eof) {
            *got = 0;
            return 0;
        }
        SetLastError(ERROR_SUCCESS);
        if (!ReadConsoleW(t->in, &unit, 1, &n, NULL)) {
            return fail_last(err, "ReadConsoleW");
        }
        if (n == 0) {
            if (GetLastError() == ERROR_OPERATION_ABORTED) {
                /* Ctrl+C: the console runs the control handler in
                 * another thread; give it time to flag SIGINT before
                 * the caller checks for signals (CPython waits likewise). */
                Sleep(100);
                return fail_win(err, "ReadConsoleW", ERROR_OPERATION_ABORTED);
            }
            st->eof = 1;
        } else {
            tty_take(st, unit);
            SecureZeroMemory(&unit, sizeof unit);
        }
        if (st->eof && st->high != 0) {
            tty_put(st, st->high); /* a lone surrogate: rejected later */
            st->high = 0;
        }
    }
}

void ms_os_tty_close(ms_tty *t)
{
    tty_state_wipe();
    if (t->out != INVALID_HANDLE_VALUE) {
        CloseHandle(t->out);
        t->out = INVALID_HANDLE_VALUE;
    }
    if (t->in != INVALID_HANDLE_VALUE) {
        CloseHandle(t->in);
        t->in = INVALID_HANDLE_VALUE;
    }
}

/* ---- mutex ------------------------------------------------------------ */

void ms_mutex_init(ms_mutex *m)
{
    InitializeSRWLock(m);
}

/* An SRW lock holds no resources. */
void ms_mutex_destroy(ms_mutex *m)
{
    (void)m;
}

void ms_mutex_lock(ms_mutex *m)
{
    AcquireSRWLockExclusive(m);
}

void ms_mutex_unlock(ms_mutex *m)
{
    ReleaseSRWLockExclusive(m);
}

void ms_mutex_yield(void)
{
    (void)SwitchToThread();
}
/* ==== process hardening (memsafe.harden) ================================
 *
 * ms_os_harden_process and ms_os_debugger_attached (platform.h).
 *
 * process_dacl: a protected DACL on this process (SetSecurityInfo on
 *   GetCurrentProcess()) that grants this user and SYSTEM only SYNCHRONIZE,
 *   PROCESS_TERMINATE and PROCESS_QUERY_LIMITED_INFORMATION - so a parent
 *   can still wait for it and end it, Task Manager can list it - and denies
 *   everything else by omission: PROCESS_VM_READ / VM_WRITE / VM_OPERATION
 *   (ReadProcessMemory, WriteProcessMemory, MiniDumpWriteDump, debuggers),
 *   PROCESS_CREATE_THREAD (DLL injection), PROCESS_DUP_HANDLE (which gives
 *   the rest back), PROCESS_SET_INFORMATION, PROCESS_SUSPEND_RESUME.  An
 *   OWNER RIGHTS ACE (READ_CONTROL) takes away the owner's implicit
 *   WRITE_DAC, without which any process of the same user could rewrite the
 *   DACL first.  The DACL is read back and checked.  Not stopped: holders
 *   of SeDebugPrivilege (administrators, elevated), handles opened before
 *   (the parent gets a full-access handle from CreateProcess), and a
 *   process that takes ownership (SeTakeOwnershipPrivilege).
 * no_crash_dialog: SetErrorMode(SEM_NOGPFAULTERRORBOX) added to the current
 *   mode (read back with GetErrorMode): an unhandled exception ends the
 *   process without the Windows Error Reporting UI.  Inherited by child
 *   processes.
 * wer_no_heap: WerSetFlags(WER_FAULT_REPORTING_FLAG_NOHEAP) (read back with
 *   WerGetFlags): reports WER does make carry no heap.  Looked up at run
 *   time in kernel32.
 * Debugger: IsDebuggerPresent (a debugger attached to this process) and
 *   CheckRemoteDebuggerPresent (the kernel's debug port).
 * Before applying a measure its state is read (already): the DACL on the
 *   process (present, and no ACE grants more than the rights above), the
 *   error mode, the WER flags.
 *
 * advapi32 provides the security calls: mingw-w64 links it by default; MSVC
 * is told so here.
 */
#include <aclapi.h>

#if defined(_MSC_VER)
#pragma comment(lib, "advapi32.lib")
#endif

#ifndef WER_FAULT_REPORTING_FLAG_NOHEAP
#define WER_FAULT_REPORTING_FLAG_NOHEAP 1
#endif

#define MS_OTHERS_MAY                                                         \
    (SYNCHRONIZE | PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION)
#define MS_OWNER_MAY READ_CONTROL

static void measure_ok(ms_harden_measure *m)
{
    m->applied = 1;
    m->why[0] = '\0';
}

static void measure_not(ms_harden_measure *m, const char *why)
{
    m->applied = 0;
    (void)snprintf(m->why, sizeof m->why, "%s", why);
}

/* "OP failed: <FormatMessage text> (winerror N)" */
static void measure_failed(ms_harden_measure *m, const char *op, DWORD code)
{
    char text[160];

    if (!describe_winerror(code, text, sizeof text)) {
        (void)snprintf(text, sizeof text, "error");
    }
    m->applied = 0;
    (void)snprintf(m->why, sizeof m->why, "%s failed: %s (winerror %lu)", op,
                   text, (unsigned long)code);
}

/* "OP failed: <text> (HRESULT 0x...)" */
static void measure_failed_hr(ms_harden_measure *m, const char *op,
                              HRESULT hr)
{
    char text[160];
    unsigned long bits = (unsigned long)hr;

    if (!describe_winerror((DWORD)bits, text, sizeof text)) {
        (void)snprintf(text, sizeof text, "error");
    }
    m->applied = 0;
    (void)snprintf(m->why, sizeof m->why, "%s failed: %s (HRESULT 0x%08lx)",
                   op, text, bits);
}

/* Reads the DACL on this process: *n_aces its ACE count and *narrow 1
 * when there is a DACL and every ACE in it is an allowed ACE granting no
 * more than MS_OTHERS_MAY | MS_OWNER_MAY.  Returns ERROR_SUCCESS or the
 * error of GetSecurityInfo. */
static DWORD read_dacl(DWORD *n_aces, int *narrow)
{
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD rc;

    *n_aces = 0;
    *narrow = 0;
    rc = GetSecurityInfo(GetCurrentProcess(), SE_KERNEL_OBJECT,
                         DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL,
                         &sd);
    if (rc != ERROR_SUCCESS) {
        return rc;
    }
    if (dacl != NULL) {
        *n_aces = dacl->AceCount;
        *narrow = 1;
    }
    for (DWORD i = 0; *narrow && i < *n_aces; i++) {
        void *ace = NULL;
        if (!GetAce(dacl, i, &ace) ||
            ((ACE_HEADER *)ace)->AceType != ACCESS_ALLOWED_ACE_TYPE ||
            (((ACCESS_ALLOWED_ACE *)ace)->Mask &
             ~(ACCESS_MASK)(MS_OTHERS_MAY | MS_OWNER_MAY)) != 0) {
            *narrow = 0;
        }
    }
    LocalFree(sd);
    return ERROR_SUCCESS;
}

/* The state before this call could not be read. */
static void before_failed(ms_harden_measure *m, const char *op, DWORD code)
{
    char text[160];

    if (!describe_winerror(code, text, sizeof text)) {
        (void)snprintf(text, sizeof text, "error");
    }
    m->already = -1;
    (void)snprintf(m->before, sizeof m->before,
                   "unknown: %s failed: %s (winerror %lu)", op, text,
                   (unsigned long)code);
}

/* already: a DACL that grants other processes no more than ours does. */
static void dacl_before(ms_harden_measure *m)
{
    DWORD n_aces;
    int narrow;
    DWORD rc = read_dacl(&n_aces, &narrow);

    if (rc != ERROR_SUCCESS) {
        before_failed(m, "GetSecurityInfo (reading the DACL)", rc);
        return;
    }
    m->already = narrow;
}

/* 1 if the DACL now on this process is the one harden_dacl set: n_aces
 * allowed ACEs, none granting more than MS_OTHERS_MAY | MS_OWNER_MAY.  (Not
 * checked: SE_DACL_PROTECTED, which only matters for objects that inherit
 * ACEs - a process does not - and which wine does not keep.) */
static int dacl_in_place(DWORD n_aces, ms_harden_measure *m)
{
    DWORD count;
    int narrow;
    DWORD rc = read_dacl(&count, &narrow);
    int ok;

    if (rc != ERROR_SUCCESS) {
        measure_failed(m, "GetSecurityInfo (reading the DACL back)", rc);
        return 0;
    }
    ok = narrow && count == n_aces;
    if (!ok) {
        measure_not(m, "SetSecurityInfo succeeded but the DACL read back is "
                       "not the one set");
    }
    return ok;
}

static int harden_dacl(ms_harden_measure *m)
{
    union {
        TOKEN_USER user;
        BYTE bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } tu;
    union {
        SID sid;
        BYTE bytes[SECURITY_MAX_SID_SIZE];
    } system_sid, owner_rights;
    union {
        ACL acl;
        BYTE bytes[sizeof(ACL) + 3 * (sizeof(ACCESS_ALLOWED_ACE) +
                                      SECURITY_MAX_SID_SIZE)];
    } acl;
    HANDLE token = NULL;
    DWORD size = 0;
    DWORD n_aces = 2;
    int have_owner_rights;
    DWORD rc;

    dacl_before(m);
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        measure_failed(m, "OpenProcessToken", GetLastError());
        return 1;
    }
    if (!GetTokenInformation(token, TokenUser, &tu, (DWORD)sizeof tu,
                             &size)) {
        DWORD code = GetLastError();
        CloseHandle(token);
        measure_failed(m, "GetTokenInformation(TokenUser)", code);
        return 1;
    }
    CloseHandle(token);
    size = (DWORD)sizeof system_sid;
    if (!CreateWellKnownSid(WinLocalSystemSid, NULL, &system_sid, &size)) {
        measure_failed(m, "CreateWellKnownSid(LocalSystem)", GetLastError());
        return 1;
    }
    size = (DWORD)sizeof owner_rights;
    have_owner_rights = CreateWellKnownSid(WinCreatorOwnerRightsSid, NULL,
                                           &owner_rights, &size) != 0;
    if (!InitializeAcl(&acl.acl, (DWORD)sizeof acl, ACL_REVISION) ||
        !AddAccessAllowedAce(&acl.acl, ACL_REVISION, MS_OTHERS_MAY,
                             tu.user.User.Sid) ||
        !AddAccessAllowedAce(&acl.acl, ACL_REVISION, MS_OTHERS_MAY,
                             &system_sid)) {
        measure_failed(m, "building the DACL", GetLastError());
        return 1;
    }
    if (have_owner_rights) {
        if (!AddAccessAllowedAce(&acl.acl, ACL_REVISION, MS_OWNER_MAY,
                                 &owner_rights)) {
            measure_failed(m, "building the DACL", GetLastError());
            return 1;
        }
        n_aces = 3;
    }
    rc = SetSecurityInfo(GetCurrentProcess(), SE_KERNEL_OBJECT,
                         DACL_SECURITY_INFORMATION |
                             PROTECTED_DACL_SECURITY_INFORMATION,
                         NULL, NULL, &acl.acl, NULL);
    if (rc != ERROR_SUCCESS) {
        measure_failed(m, "SetSecurityInfo(process DACL)", rc);
        return 1;
    }
    if (!dacl_in_place(n_aces, m)) {
        return 1;
    }
    if (!have_owner_rights) {
        measure_not(m, "partly: the DACL is set, but without an OWNER RIGHTS "
                       "ACE (CreateWellKnownSid failed), so processes of "
                       "this user keep the owner's WRITE_DAC and can "
                       "replace it");
        return 1;
    }
    measure_ok(m);
    return 0;
}

static int harden_error_mode(ms_harden_measure *m)
{
    m->already = (GetErrorMode() & SEM_NOGPFAULTERRORBOX) != 0;
    (void)SetErrorMode(GetErrorMode() | SEM_NOGPFAULTERRORBOX);
    if ((GetErrorMode() & SEM_NOGPFAULTERRORBOX) == 0) {
        measure_not(m, "SetErrorMode(SEM_NOGPFAULTERRORBOX) did not stick "
                       "(GetErrorMode)");
        return 1;
    }
    measure_ok(m);
    return 0;
}

typedef HRESULT(WINAPI *wer_set_flags_fn)(DWORD flags);
typedef HRESULT(WINAPI *wer_get_flags_fn)(HANDLE process, PDWORD flags);

static int harden_wer_flags(ms_harden_measure *m)
{
    HMODULE k32 = GetModuleHandleW(L"kernel32.dll");
    FARPROC set = k32 != NULL ? GetProcAddress(k32, "WerSetFlags") : NULL;
    FARPROC get = k32 != NULL ? GetProcAddress(k32, "WerGetFlags") : NULL;
    DWORD flags = 0;
    HRESULT hr;

    if (set == NULL || get == NULL) {
        measure_not(m, "WerSetFlags/WerGetFlags not offered by kernel32");
        return 1;
    }
    hr = ((wer_get_flags_fn)(void (*)(void))get)(GetCurrentProcess(), &flags);
    if (FAILED(hr)) {
        flags = 0; /* none set yet: WerGetFlags fails until WerSetFlags */
    }
    m->already = (flags & WER_FAULT_REPORTING_FLAG_NOHEAP) != 0;
    hr = ((wer_set_flags_fn)(void (*)(void))set)(
        flags | WER_FAULT_REPORTING_FLAG_NOHEAP);
    if (FAILED(hr)) {
        measure_failed_hr(m, "WerSetFlags(WER_FAULT_REPORTING_FLAG_NOHEAP)",
                          hr);
        return 1;
    }
    hr = ((wer_get_flags_fn)(void (*)(void))get)(GetCurrentProcess(), &flags);
    if (FAILED(hr)) {
        measure_failed_hr(m, "WerGetFlags (reading the flags back)", hr);
        return 1;
    }
    if ((flags & WER_FAULT_REPORTING_FLAG_NOHEAP) == 0) {
        measure_not(m, "WerSetFlags succeeded but WerGetFlags does not show "
                       "WER_FAULT_REPORTING_FLAG_NOHEAP");
        return 1;
    }
    measure_ok(m);
    return 0;
}

int ms_os_harden_process(ms_harden_report *r)
{
    int missing = 0;

    memset(r, 0, sizeof *r);
    measure_not(&r->not_dumpable, "Linux only (prctl PR_SET_DUMPABLE); "
                                  "Windows has process_dacl instead");
    measure_not(&r->deny_attach, "macOS only (ptrace PT_DENY_ATTACH); "
                                 "Windows has process_dacl instead");
    measure_not(&r->core_limit_zero,
                "POSIX only (RLIMIT_CORE); Windows has no_crash_dialog and "
                "wer_no_heap instead");
    missing += harden_dacl(&r->process_dacl);
    missing += harden_error_mode(&r->no_crash_dialog);
    missing += harden_wer_flags(&r->wer_no_heap);
    return missing;
}

int ms_os_debugger_attached(ms_debugger_state *d)
{
    BOOL remote = FALSE;

    memset(d, 0, sizeof *d);
    if (IsDebuggerPresent()) {
        d->known = 1;
        d->attached = 1;
        return 0;
    }
    if (!CheckRemoteDebuggerPresent(GetCurrentProcess(), &remote)) {
        char text[160];
        DWORD code = GetLastError();
        if (!describe_winerror(code, text, sizeof text)) {
            (void)snprintf(text, sizeof text, "error");
        }
        (void)snprintf(d->why, sizeof d->why,
                       "unknown: CheckRemoteDebuggerPresent failed: %s "
                       "(winerror %lu)",
                       text, (unsigned long)code);
        return -1;
    }
    d->known = 1;
    d->attached = remote != FALSE;
    return 0;
}

/* ==== end of process hardening ========================================= */

/* ==== purge at exit and on signals ======================================= */

#include <signal.h>

int ms_os_at_exit(void (*fn)(void), ms_oserr *err)
{
    if (atexit(fn) != 0) {
        return fail_crt(err, "atexit", ENOMEM);
    }
    return 0;
}

typedef void(__cdecl *crt_handler)(int);

static const int purge_signals[] = {SIGINT,  SIGTERM, SIGABRT,
                                    SIGSEGV, SIGFPE,  SIGILL};

#define NPURGE (sizeof(purge_signals) / sizeof(purge_signals[0]))

static crt_handler purge_previous[NPURGE];
static void (*purge_fn)(int);
static LPTOP_LEVEL_EXCEPTION_FILTER purge_previous_filter;
static int purge_console_hooked;
static SRWLOCK purge_lock = SRWLOCK_INIT;

static void __cdecl on_purge_signal(int sig);

static int purge_slot(int sig)
{
    for (size_t i = 0; i < NPURGE; i++) {
        if (purge_signals[i] == sig) {
            return (int)i;
        }
    }
    return -1;
}

/* The C runtime resets a signal to SIG_DFL before calling its handler. */
static void __cdecl on_purge_signal(int sig)
{
    int i = purge_slot(sig);
    if (purge_fn != NULL) {
        purge_fn(sig);
    }
    if (i < 0) {
        return;
    }
    crt_handler old = purge_previous[i];
    if (old == SIG_IGN) {
        (void)signal(sig, on_purge_signal);
        return;
    }
    if (old == SIG_DFL || old == NULL) {
        (void)signal(sig, SIG_DFL);
        (void)raise(sig);
        return;
    }
    (void)signal(sig, on_purge_signal);
    old(sig);
}

/* Console control events (Ctrl+C, Ctrl+Break, closing the console, log
 * off, shut down) arrive on a thread of their own. */
static BOOL WINAPI on_purge_console(DWORD event)
{
    (void)event;
    if (purge_fn != NULL) {
        purge_fn(SIGINT);
    }
    return FALSE; /* the next handler (Python's, the default) runs too */
}

static LONG WINAPI on_purge_exception(EXCEPTION_POINTERS *e)
{
    if (purge_fn != NULL) {
        purge_fn(SIGSEGV);
    }
    return purge_previous_filter != NULL ? purge_previous_filter(e)
                                         : EXCEPTION_CONTINUE_SEARCH;
}

int ms_os_purge_on_signals(void (*fn)(int sig), ms_oserr *err)
{
    int hooked = 0;
    AcquireSRWLockExclusive(&purge_lock);
    purge_fn = fn;
    for (size_t i = 0; i < NPURGE; i++) {
        crt_handler cur = signal(purge_signals[i], on_purge_signal);
        if (cur == SIG_ERR) {
            ReleaseSRWLockExclusive(&purge_lock);
            return fail_crt(err, "signal", EINVAL);
        }
        if (cur == SIG_IGN) {
            (void)signal(purge_signals[i], SIG_IGN); /* stays ignored */
            continue;
        }
        if (cur != on_purge_signal) {
            purge_previous[i] = cur;
        }
        hooked++;
    }
    if (!purge_console_hooked) {
        if (!SetConsoleCtrlHandler(on_purge_console, TRUE)) {
            ReleaseSRWLockExclusive(&purge_lock);
            return fail_last(err, "SetConsoleCtrlHandler");
        }
        purge_console_hooked = 1;
        LPTOP_LEVEL_EXCEPTION_FILTER prev =
            SetUnhandledExceptionFilter(on_purge_exception);
        if (prev != on_purge_exception) {
            purge_previous_filter = prev;
        }
    }
    ReleaseSRWLockExclusive(&purge_lock);
    return hooked;
}

/* The C runtime runs a signal handler on the thread that raised the signal
 * (SIGINT and SIGTERM on a thread of their own): there is nothing to mask. */
void ms_os_block_purge_signals(ms_sigsaved *saved)
{
    *saved = 0;
}

void ms_os_restore_signals(const ms_sigsaved *saved)
{
    (void)saved;
}

/* ==== end of purge at exit and on signals =============================== */
