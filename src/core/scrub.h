/*
 * scrub.h - clear what the CPU itself keeps of secret bytes.
 *
 * Code that handled a secret (memcpy, UTF-8 counting, a hash run by the
 * caller inside a read window) leaves its bytes in vector registers and in
 * dead stack slots.  Nothing wipes those, and the next XSAVE in user space
 * - the dynamic linker's lazy-binding trampoline (_dl_runtime_resolve_xsavec),
 * a signal frame - writes the registers onto the stack, where they stay.
 * A /proc/PID/mem scan of a process finds them there
 * (tests/test_leak_scan.py).  ms_scrub() zeroes the vector registers and a
 * stretch of the stack below its caller; the region layer calls it whenever
 * a secret goes back to no-access and before pages are wiped.
 */
#ifndef MEMSAFE_SCRUB_H
#define MEMSAFE_SCRUB_H

/* Bytes of stack below the caller that ms_scrub() overwrites. */
#define MS_SCRUB_STACK 8192

void ms_scrub_init(void);
void ms_scrub(void);
/* The vector registers only (no stack burn): cheap enough for every
 * seal and open. */
void ms_scrub_registers(void);

#endif /* MEMSAFE_SCRUB_H */
