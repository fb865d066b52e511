/*
 * frames.h - which frames are finished, and what their names hold (see
 * frames.c).  Shared by plaintext() and the read/write windows, which treat
 * the finished frames of an exception's traceback the same way.
 */
#ifndef MEMSAFE_FRAMES_H
#define MEMSAFE_FRAMES_H

#include "ext.h"

#include <frameobject.h>

/* Called for each finished frame; < 0 stops the walk (exception set). */
typedef int (*ms_frame_visit)(PyFrameObject *f, void *arg);

/* Visit the finished function frames in the tracebacks of exc and of the
 * exceptions chained to it (__cause__, __context__, exception groups'
 * members are not followed).  A frame is finished when it is a plain
 * function frame (not a generator's or coroutine's, which may resume) that
 * is not on any thread's stack.  -1 with an exception set if the walk
 * failed or the chain was too long to follow: the caller then proves
 * nothing. */
int ms_finished_frames(PyObject *exc, ms_frame_visit visit, void *arg);

/* Frame f's names: a new reference to a mapping of name -> value.  On
 * 3.10-3.12 a function frame's own f_locals snapshot dict (synced now, kept
 * on the frame, one reference per name it binds): *snapshot is set to 1.
 * Otherwise a dict copy (3.13+ function frames) or the frame's namespace
 * (module and class bodies), and *snapshot is 0. */
PyObject *ms_frame_names(PyFrameObject *f, int *snapshot);

/* 1 if name is one of code's cell or free variables (shared with closures,
 * so not the frame's alone), 0 if not, -1 on error. */
int ms_frame_is_cell(PyFrameObject *f, PyObject *name);

/* The code flags of f. */
int ms_frame_flags(PyFrameObject *f);

#endif /* MEMSAFE_FRAMES_H */
