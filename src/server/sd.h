/* SPDX-License-Identifier: MIT */
/*
 * sd: the systemd side: inherited listening sockets, sd_notify messages,
 * and the watchdog's interval.  Every function is a no-op (or reports
 * "not under systemd") when the corresponding environment is absent, so
 * the daemon runs the same by hand.  Never logs.
 */
#ifndef TP_SD_H
#define TP_SD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Number of sockets passed by socket activation (LISTEN_FDS), starting at
 * fd 3; 0 when not socket-activated; negative errno on a malformed
 * environment.  Unsets the variables so children do not inherit them.
 */
int tp_sd_listen_fds(void);

/* The FileDescriptorName= of passed socket i (from 0), or NULL; valid after tp_sd_listen_fds(). */
const char *tp_sd_listen_fd_name(int i);

/* First passed fd (SD_LISTEN_FDS_START). */
int tp_sd_listen_fds_start(void);

/* Send a notification (e.g. "READY=1"). Returns > 0 sent, 0 no NOTIFY_SOCKET, < 0 error. */
int tp_sd_notify(const char *state);

/* printf-style tp_sd_notify(). */
int tp_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval in microseconds, 0 when systemd expects no pings. */
uint64_t tp_sd_watchdog_usec(void);

#endif
