/* SPDX-License-Identifier: MIT */
/*
 * fdpass: open file descriptors sent in flight over a unix stream socket
 * (SCM_RIGHTS), TP_FDPASS_BATCH a message of one byte.  A stream socket
 * does not merge two messages' fds into one read, nor split one's.  The
 * hand-over (handover.c) uses it to carry every kept connection inside one
 * socket of systemd's fd store.
 *
 * Passive: no logging, no state; never blocks (MSG_DONTWAIT).
 */
#ifndef TP_FDPASS_H
#define TP_FDPASS_H

#include <stdbool.h>
#include <stddef.h>

#define TP_FDPASS_BATCH 253 /* SCM_MAX_FD: the most one message carries */

/*
 * Send the n fds into sock, copies of them: the caller still owns its own.
 * Returns how many were sent; when fewer than n, *ret_err is the errno
 * that stopped the rest (ETOOMANYREFS: fds in flight count against
 * RLIMIT_NOFILE; EAGAIN: the socket's buffer is full).
 */
size_t tp_fdpass_send(int sock, const int *fds, size_t n, int *ret_err);

/*
 * Receive the next message's fds into ret_fds (room for TP_FDPASS_BATCH),
 * close-on-exec.  Returns how many (0 is possible), -ENODATA when nothing
 * more is waiting or the sender's end is closed, or -errno.  *ret_truncated is
 * set when the kernel closed some it could not install (RLIMIT_NOFILE).
 */
int tp_fdpass_recv(int sock, int *ret_fds, bool *ret_truncated);

#endif
