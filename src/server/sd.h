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

/*
 * tp_sd_listen_fds() with each fd's name (FileDescriptorName=, FDNAME=)
 * in *ret_names (a NULL-terminated array, free it with tp_sd_names_free();
 * NULL when none were passed).
 */
int tp_sd_listen_fds_with_names(char ***ret_names);
void tp_sd_names_free(char **names);

/* First passed fd (SD_LISTEN_FDS_START). */
int tp_sd_listen_fds_start(void);

/* Send a notification (e.g. "READY=1"). Returns > 0 sent, 0 no NOTIFY_SOCKET, < 0 error. */
int tp_sd_notify(const char *state);

/* Is there a NOTIFY_SOCKET to send to? */
bool tp_sd_notify_socket(void);

/*
 * Send state with the n fds (FDSTORE=1, at most 253: the kernel's limit
 * per message).  Returns > 0 sent, 0 no NOTIFY_SOCKET, < 0 error.
 */
int tp_sd_notify_fds(const char *state, const int *fds, size_t n);

/* Wait until systemd has read every message sent before (BARRIER=1). Returns 0 or < 0. */
int tp_sd_notify_barrier(uint64_t timeout_usec);

/* printf-style tp_sd_notify(). */
int tp_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval in microseconds, 0 when systemd expects no pings. */
uint64_t tp_sd_watchdog_usec(void);

#endif
