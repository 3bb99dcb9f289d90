/* SPDX-License-Identifier: MIT */
/*
 * fdstore: putting fds in systemd's fd store and taking them out by name,
 * over the notify socket (sd.h).  Two ways in: one by one, TP_FDPASS_BATCH
 * a message, each costing PID 1 a comparison with every fd already stored;
 * or in flight inside one carrier socket (fdpass.h), stored alone with
 * FDPOLL=0, which costs it one.  A message refused with ETOOMANYREFS (fds
 * in flight count against RLIMIT_NOFILE for an unprivileged user) is tried
 * again every 10 ms for up to 1 s, as systemd's reading lowers the count.
 *
 * Passive: never logs; says what it did and why not.  Runs on the thread
 * that stops the server; blocks at most those waits and the barrier's.
 */
#ifndef TP_FDSTORE_H
#define TP_FDSTORE_H

#include <stddef.h>

/* Store the n fds one by one under name.  Returns how many were stored, or -errno with none. */
int tp_fdstore_add(const int *fds, size_t n, const char *name);

/*
 * Store the n fds under name in one carrier socket (FDPOLL=0), and those
 * it could not take one by one.  Returns how many were stored, or -errno
 * with none; *ret_apart is how many went one by one, *ret_err why (an
 * errno) when any did.
 */
int tp_fdstore_add_carried(const int *fds, size_t n, const char *name, size_t *ret_apart, int *ret_err);

/* Tell systemd to forget every fd named name: it stays open in the store until then. */
void tp_fdstore_remove(const char *name);

/*
 * BARRIER=1: returns 0 once systemd has read every message this process
 * sent, or -errno (-ETIMEDOUT after 5 s).
 */
int tp_fdstore_barrier(void);

#endif
