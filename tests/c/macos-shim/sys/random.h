/* macOS <sys/random.h> (10.12+) */
#ifndef MEMSAFE_SHIM_SYS_RANDOM_H
#define MEMSAFE_SHIM_SYS_RANDOM_H

#include <stddef.h>

int getentropy(void *buffer, size_t size);

#endif
