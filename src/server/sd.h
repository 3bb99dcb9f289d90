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

/*
 * What tp_sd_listen_fds_split() will find, without taking it: whether
 * systemd passed a data socket, one named "metrics", one named "agent".
 */
void tp_sd_passed(bool *ret_data, bool *ret_metrics, bool *ret_agent);

/*
 * Is name one of the store's, reserved for what the connection hand-over
 * stores, in this version or another ("tp", a lower-case letter, two
 * digits: "tpc07")?  tp_sd_listen_fds_split() leaves such fds out.
 */
bool tp_sd_stored_name(const char *name);

/*
 * The passed fds' names (FileDescriptorName=, FDNAME=), from
 * SD_LISTEN_FDS_START on, in *ret_names (NULL-terminated, free it with
 * tp_sd_names_free()), without unsetting the environment that
 * tp_sd_listen_fds_split() reads afterwards.  Returns how many, 0 when not
 * socket-activated, or a negative errno.
 */
int tp_sd_listen_fds_with_names(char ***ret_names);
void tp_sd_names_free(char **names);
int tp_sd_listen_fds_start(void);

/*
 * Send state with the n fds (FDSTORE=1, at most 253: the kernel's limit
 * per message).  Returns > 0 sent, 0 no NOTIFY_SOCKET, < 0 error.
 */
int tp_sd_notify_fds(const char *state, const int *fds, size_t n);

/* Wait until systemd has read every message sent before (BARRIER=1). Returns 0 or < 0. */
int tp_sd_notify_barrier(uint64_t timeout_usec);

/* Send a notification (e.g. "READY=1"). Returns > 0 sent, 0 no NOTIFY_SOCKET, < 0 error. */
int tp_sd_notify(const char *state);

/* printf-style tp_sd_notify(). */
int tp_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval in microseconds, 0 when systemd expects no pings. */
uint64_t tp_sd_watchdog_usec(void);

#endif
