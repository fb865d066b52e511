/* macOS <sys/sysctl.h> (with <sys/proc.h>'s P_TRACED), the parts memsafe
 * uses: the MIB names and values are the SDK's; struct kinfo_proc keeps
 * only the leading members of the SDK's struct extern_proc up to p_flag,
 * the one memsafe reads, and is otherwise NOT the SDK's layout (compile
 * check only).  glibc dropped <sys/sysctl.h> in 2.32, so nothing is
 * included from the system for it. */
#ifndef MEMSAFE_SHIM_SYS_SYSCTL_H
#define MEMSAFE_SHIM_SYS_SYSCTL_H

#include <stddef.h>
#include <sys/time.h>
#include <sys/types.h>

#define CTL_KERN 1
#define KERN_PROC 14
#define KERN_PROC_PID 1

#define P_TRACED 0x00000800 /* <sys/proc.h>: debugged process being traced */

struct proc;
struct vmspace;
struct sigacts;

struct extern_proc {
    union {
        struct {
            struct proc *__p_forw;
            struct proc *__p_back;
        } p_st1;
        struct timeval __p_starttime;
    } p_un;
    struct vmspace *p_vmspace;
    struct sigacts *p_sigacts;
    int p_flag;
    char p_stat;
    pid_t p_pid;
    char __shim_rest[600]; /* the rest of extern_proc and struct eproc */
};

struct kinfo_proc {
    struct extern_proc kp_proc;
};

int sysctl(int *name, unsigned int namelen, void *oldp, size_t *oldlenp,
           void *newp, size_t newlen);

#endif
