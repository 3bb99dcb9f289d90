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
 * The sockets passed by socket activation, told apart by name: the one
 * named "metrics" (FileDescriptorName=metrics) in *ret_metrics_fd, the one
 * named "agent" (tpserver-agent.socket) in *ret_agent_fd (-1 when none),
 * every other one, a data socket, in ret_fds.  Returns how many data
 * sockets there are (0 when not socket-activated), -E2BIG for more than
 * max, -EEXIST for a second "metrics" or "agent", or another negative
 * errno.  Unsets the variables so children do not inherit them.
 */
int tp_sd_listen_fds_split(int *ret_fds, size_t max, int *ret_metrics_fd, int *ret_agent_fd);

/* Send a notification (e.g. "READY=1"). Returns > 0 sent, 0 no NOTIFY_SOCKET, < 0 error. */
int tp_sd_notify(const char *state);

/* printf-style tp_sd_notify(). */
int tp_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval in microseconds, 0 when systemd expects no pings. */
uint64_t tp_sd_watchdog_usec(void);

#endif
