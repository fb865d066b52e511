/* macOS <sys/ptrace.h>, the parts memsafe uses (values from the macOS SDK). */
#ifndef MEMSAFE_SHIM_SYS_PTRACE_H
#define MEMSAFE_SHIM_SYS_PTRACE_H

#include <sys/types.h>

#define PT_TRACE_ME 0
#define PT_ATTACH 10
#define PT_DETACH 11
#define PT_DENY_ATTACH 31

int ptrace(int request, pid_t pid, caddr_t addr, int data);

#endif
