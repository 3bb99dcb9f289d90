/* SPDX-License-Identifier: MIT */
/*
 * sd: thin wrappers over libsystemd's sd-daemon API.
 */
#include "sd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-daemon.h>

#define MAX_NAMED 32

static char names[MAX_NAMED][64];

int tp_sd_listen_fds(void)
{
	char **list = NULL;
	int n = sd_listen_fds_with_names(1, &list);

	for (int i = 0; list && list[i]; i++) {
		if (i < MAX_NAMED)
			snprintf(names[i], sizeof(names[i]), "%s", list[i]);
		free(list[i]);
	}
	free(list);
	return n;
}

const char *tp_sd_listen_fd_name(int i)
{
	return i >= 0 && i < MAX_NAMED && names[i][0] ? names[i] : NULL;
}

int tp_sd_listen_fds_start(void)
{
	return SD_LISTEN_FDS_START;
}

int tp_sd_notify(const char *state)
{
	return sd_notify(0, state);
}

int tp_sd_notifyf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return sd_notify(0, buf);
}

uint64_t tp_sd_watchdog_usec(void)
{
	uint64_t usec = 0;
	/* > 0 only in the process WATCHDOG_PID names (or when it is unset). */
	if (sd_watchdog_enabled(0, &usec) > 0)
		return usec;
	return 0;
}
