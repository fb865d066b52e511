/*
 * region.c - the guarded engine (see region.h).
 */
#include "region.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static unsigned char *canary_of(const ms_guarded *g)
{
    return g->secret - MS_CANARY_LEN;
}

/* Data pages needed for len bytes plus the canary, or 0 if too large (the
 * mapping layer refuses 0). */
static size_t data_size_for(size_t len)
{
    return len > SIZE_MAX / 2 ? 0 : ms_pages_for(len + MS_CANARY_LEN);
}

ms_status ms_guarded_create(ms_guarded *g, size_t len,
                            const ms_allocopts *opts, ms_lockresult *lr,
                            ms_oserr *err)
{
    memset(g, 0, sizeof(*g));
    size_t data_len = data_size_for(len);
    ms_status st = ms_mapping_create(&g->map, data_len, opts, lr, err);
    if (st != MS_OK) {
        return st;
    }
    g->len = len;
    g->secret = g->map.data + data_len - len;
    if (ms_os_random(g->canary, MS_CANARY_LEN, err) != 0) {
        ms_oserr ignored;
        (void)ms_mapping_destroy(&g->map, &ignored);
        return MS_E_OS;
    }
    memcpy(canary_of(g), g->canary, MS_CANARY_LEN);
    return MS_OK;
}

ms_status ms_guarded_access(ms_guarded *g, ms_prot to, ms_oserr *err)
{
    return ms_mapping_protect(&g->map, to, err) == 0 ? MS_OK : MS_E_OS;
}

/* Constant time: the canary is secret from an attacker's point of view. */
int ms_guarded_intact(const ms_guarded *g)
{
    const unsigned char *c = canary_of(g);
    unsigned char diff = 0;
    for (size_t i = 0; i < MS_CANARY_LEN; i++) {
        diff |= (unsigned char)(c[i] ^ g->canary[i]);
    }
    return diff == 0;
}

unsigned char *ms_guarded_data(const ms_guarded *g)
{
    return g->secret;
}

int ms_guarded_destroy(ms_guarded *g, ms_oserr *err)
{
    int rc = ms_mapping_destroy(&g->map, err);
    ms_os_wipe(g->canary, MS_CANARY_LEN);
    g->secret = NULL;
    g->len = 0;
    return rc;
}

size_t ms_guarded_info(const ms_guarded *g, ms_info_item *out)
{
    size_t n = 0;
    out[n++] = (ms_info_item){"base", (uintptr_t)g->map.base};
    out[n++] = (ms_info_item){"total", g->map.total};
    out[n++] = (ms_info_item){"data", (uintptr_t)g->map.data};
    out[n++] = (ms_info_item){"data_len", g->map.data_len};
    out[n++] = (ms_info_item){"secret", (uintptr_t)g->secret};
    out[n++] = (ms_info_item){"canary_len", MS_CANARY_LEN};
    return n;
}
