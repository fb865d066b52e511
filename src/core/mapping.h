/*
 * mapping.h - one fenced, hardened block of secret pages.
 *
 *   [ guard page, no access ][ data pages ][ guard page, no access ]
 *
 * The data pages are zero when created, locked in RAM (or not, as the lock
 * mode says), excluded from core dumps, kept off transparent huge pages,
 * never inherited readable by a fork child, registered for purge and fork
 * (registry.h), and wiped before they are released.  Under memfd_secret
 * they are secretmem pages, which the kernel itself cannot read.
 *
 * Every secret memory block of the core is one of these: a guarded
 * secret's region, a sealed arena, a window arena, a half of the process
 * key, an ingestion scratch region.
 */
#ifndef MEMSAFE_MAPPING_H
#define MEMSAFE_MAPPING_H

#include <stddef.h>

#include "registry.h"
#include "types.h"

typedef struct {
    unsigned char *base;   /* start of the reservation (leading guard page) */
    size_t total;          /* whole reservation, guards included */
    unsigned char *data;   /* first data page */
    size_t data_len;       /* bytes of data pages */
    ms_prot prot;          /* current protection of the data pages */
    int locked;            /* 1: data pages are locked in RAM */
    int secretmem;         /* 1: data pages are memfd_secret pages */
    int inherit;           /* 1: a fork child inherits them to adopt */
    ms_mapent *ent;        /* registry entry */
} ms_mapping;

/* Round n up to whole pages; 0 on overflow. */
size_t ms_pages_for(size_t n);

/* Create data_len bytes (a multiple of the page size) of data pages,
 * read-write and zero.  On failure nothing is left. */
ms_status ms_mapping_create(ms_mapping *m, size_t data_len,
                            const ms_allocopts *opts, ms_lockresult *lr,
                            ms_oserr *err);

/* Lock the data pages now (a mapping made under the 'off' policy that a
 * stricter one needs); 0, or -1 with lr filled in. */
int ms_mapping_lock(ms_mapping *m, ms_lockresult *lr);

/* In a fork child, make an inherited mapping (opts->inherit) the child's
 * own: memfd_secret pages are copied into the child's own secretmem pages
 * (the parent's are shared until then), ordinary ones locked again (locks
 * are not inherited).  0, or -1 with err: the caller orphans it. */
int ms_mapping_adopt(ms_mapping *m, ms_oserr *err);

/* Change the protection of the data pages (claiming the registry entry). */
int ms_mapping_protect(ms_mapping *m, ms_prot prot, ms_oserr *err);

/* Make the data pages writable, wipe them (and the CPU's copies: vector
 * registers, stack), unlock, unregister and release.  If they cannot be
 * made writable they are released unwiped: unmapped pages are out of
 * reach, which is the best that is left.  Returns 0, or -1 with err set
 * (the mapping is cleared either way). */
int ms_mapping_destroy(ms_mapping *m, ms_oserr *err);

#endif /* MEMSAFE_MAPPING_H */
