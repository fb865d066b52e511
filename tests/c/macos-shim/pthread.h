/* macOS <pthread.h> adds pthread_threadid_np (10.6+), which glibc lacks. */
#ifndef MEMSAFE_SHIM_PTHREAD_H
#define MEMSAFE_SHIM_PTHREAD_H

#include_next <pthread.h>
#include <stdint.h>

int pthread_threadid_np(pthread_t thread, uint64_t *thread_id);

#endif
