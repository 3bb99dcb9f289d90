/* SPDX-License-Identifier: MIT */
/*
 * reload_status: the outcome of each reload in a file, so that a command
 * that asks for a reload can wait for it ("systemctl reload" through
 * `tpserver --reload-and-wait PID`; systemd 252 has no Type=notify-reload).
 *
 * The file DIR/reload-status (DIR is the unit's RuntimeDirectory=, given
 * in $RUNTIME_DIRECTORY) is replaced atomically (write, then rename) and
 * holds one line for the last outcome, "GEN applied|refused|started
 * MESSAGE" (GEN counts the reloads, 0 at start), and while a read is in
 * progress a second line, "reading GEN+1".  The daemon writes "reading"
 * before the file is read, so a waiter that saw no read in progress knows
 * the next outcome comes from a read that began after it looked.
 *
 * Never logs: errors are returned as negative errnos.
 */
#ifndef TP_RELOAD_STATUS_H
#define TP_RELOAD_STATUS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The status directory from $RUNTIME_DIRECTORY (its first entry), or NULL when unset. */
const char *tp_reload_status_dir(char *buf, size_t len);

/*
 * Replace DIR/reload-status: the outcome gen/state/msg and, when reading,
 * the line saying reload gen + 1 is being read.  Returns 0 or -errno.
 */
int tp_reload_status_write(const char *dir, unsigned long gen, const char *state, const char *msg,
                           bool reading);

/*
 * Signal pid with SIGHUP and wait, up to timeout_ms, for the outcome of a
 * reload whose read began after this call looked at the status.  Returns
 * 0 when it was applied, 1 when it was refused, or a negative errno: -ESRCH
 * when pid is gone (or went away meanwhile) or is another program than
 * tpserver (not signalled), -ETIMEDOUT, -EINTR as soon as *stop is
 * non-zero (a signal handler sets it; pid is not signalled when it is
 * already set; msg untouched).  msg gets the daemon's message (or what
 * went wrong).
 */
int tp_reload_status_wait(const char *dir, pid_t pid, unsigned timeout_ms, const volatile sig_atomic_t *stop,
                          char *msg, size_t msglen);

#endif
