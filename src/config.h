/*
 * config.h - process-wide settings: the lock policy, the default storage
 * engine and the memfd_secret policy.  Each is read and written under one
 * mutex, so free-threaded builds see consistent values.
 */
#ifndef MEMSAFE_CONFIG_H
#define MEMSAFE_CONFIG_H

#include "ext.h"

void ms_config_init(void);

ms_lockmode ms_config_lockmode(void);
const char *ms_config_lock_policy(void);
int ms_config_set_lock_policy(PyObject *name);

ms_engine ms_config_engine(void);
const char *ms_config_engine_name(ms_engine e);
int ms_config_set_engine(PyObject *name);
/* storage= argument: None -> the default; else "guarded" / "sealed". */
int ms_config_engine_from(PyObject *arg, ms_engine *out);

ms_secretmem_mode ms_config_secretmem(void);
const char *ms_config_secretmem_name(void);
int ms_config_set_secretmem(PyObject *name);

/* The fork policy: 0 "wipe" (a fork child gets nothing), 1 "inherit". */
int ms_config_fork(void);
const char *ms_config_fork_name(int inherit);
int ms_config_set_fork(PyObject *name);
/* fork= argument: None -> the default; else "wipe" / "inherit". */
int ms_config_fork_from(PyObject *arg, int *inherit);

/* storage= and fork= of a constructor, as one ms_engine value that the
 * ingestion paths pass along to ms_secret_alloc: the engine in the low
 * bits (MS_ENGINE_MASK), the fork policy asked for above them (none: the
 * default at allocation). */
#define MS_ENGINE_MASK 0x0F
#define MS_FORK_ASKED_WIPE 0x10
#define MS_FORK_ASKED_INHERIT 0x20
int ms_config_placement_from(PyObject *storage, PyObject *fork,
                             ms_engine *out);

/* The options a new allocation follows right now. */
ms_allocopts ms_config_allocopts(void);

#endif /* MEMSAFE_CONFIG_H */
