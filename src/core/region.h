/*
 * region.h - the guarded engine: one isolated region per secret.
 *
 *   [ guard page ][ data page(s): ... canary[16] | secret ][ guard page ]
 *
 * The secret is right-aligned against the trailing guard page, so reading or
 * writing one byte past its end faults; the 16 bytes right in front of it
 * hold a random canary, checked whenever a window closes and when the
 * region is freed.  Outside windows the data pages are no-access; the store
 * layer (store.h) decides when they become read-only or read-write.
 */
#ifndef MEMSAFE_REGION_H
#define MEMSAFE_REGION_H

#include <stddef.h>

#include "mapping.h"
#include "types.h"

#define MS_CANARY_LEN 16

typedef struct {
    ms_mapping map;
    unsigned char *secret; /* first byte of the secret */
    size_t len;            /* length of the secret */
    unsigned char canary[MS_CANARY_LEN];
} ms_guarded;

/* len zero bytes, pages read-write, canary in place. */
ms_status ms_guarded_create(ms_guarded *g, size_t len,
                            const ms_allocopts *opts, ms_lockresult *lr,
                            ms_oserr *err);
/* Change the protection of the data pages. */
ms_status ms_guarded_access(ms_guarded *g, ms_prot to, ms_oserr *err);
/* 1 if the canary is intact (the pages must be readable). */
int ms_guarded_intact(const ms_guarded *g);
unsigned char *ms_guarded_data(const ms_guarded *g);
/* Wipe and release (see ms_mapping_destroy). */
int ms_guarded_destroy(ms_guarded *g, ms_oserr *err);
/* Addresses and sizes, for tests and the self-check. */
size_t ms_guarded_info(const ms_guarded *g, ms_info_item *out);

#endif /* MEMSAFE_REGION_H */
