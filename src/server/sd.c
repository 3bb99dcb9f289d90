/* SPDX-License-Identifier: MIT */
/*
 * sd: thin wrappers over libsystemd's sd-daemon API.
 */
#include "sd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <systemd/sd-daemon.h>

/* What a passed fd named name (NULL: unnamed) is for. */
enum passed_kind { PASSED_STORED, PASSED_METRICS, PASSED_AGENT, PASSED_DATA };

static enum passed_kind passed_kind(const char *name)
{
	if (name && tp_sd_stored_name(name))
		return PASSED_STORED; /* the connection hand-over's (handover.c) */
	if (name && !strcmp(name, "metrics"))
		return PASSED_METRICS;
	if (name && !strcmp(name, "agent"))
		return PASSED_AGENT;
	return PASSED_DATA;
}

int tp_sd_listen_fds_split(int *ret_fds, size_t max, int *ret_metrics_fd, int *ret_agent_fd)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names), ndata = 0;

	*ret_metrics_fd = -1;
	*ret_agent_fd = -1;
	for (int i = 0; i < n && ndata >= 0; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		enum passed_kind k = passed_kind(names ? names[i] : NULL);
		int *named = k == PASSED_METRICS ? ret_metrics_fd : k == PASSED_AGENT ? ret_agent_fd : NULL;
		if (k == PASSED_STORED)
			continue;
		if (named) {
			if (*named >= 0)
				ndata = -EEXIST;
			*named = fd;
		} else if ((size_t)ndata < max)
			ret_fds[ndata++] = fd;
		else
			ndata = -E2BIG;
	}
	tp_sd_names_free(names);
	return n < 0 ? n : ndata;
}

void tp_sd_passed(bool *ret_data, bool *ret_metrics, bool *ret_agent)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(0, &names);

	*ret_data = *ret_metrics = *ret_agent = false;
	for (int i = 0; i < n; i++) {
		enum passed_kind k = passed_kind(names ? names[i] : NULL);
		if (k != PASSED_STORED)
			*(k == PASSED_METRICS ? ret_metrics
			  : k == PASSED_AGENT ? ret_agent
			                      : ret_data) = true;
	}
	tp_sd_names_free(names);
}

bool tp_sd_stored_name(const char *name)
{
	return name[0] == 't' && name[1] == 'p' && name[2] >= 'a' && name[2] <= 'z' && name[3] >= '0' &&
	       name[3] <= '9' && name[4] >= '0' && name[4] <= '9' && name[5] == '\0';
}

int tp_sd_listen_fds_with_names(char ***ret_names)
{
	*ret_names = NULL;
	return sd_listen_fds_with_names(0, ret_names);
}

void tp_sd_names_free(char **names)
{
	for (char **p = names; p && *p; p++)
		free(*p);
	free(names);
}

int tp_sd_listen_fds_start(void)
{
	return SD_LISTEN_FDS_START;
}

int tp_sd_notify_fds(const char *state, const int *fds, size_t n)
{
	return sd_pid_notify_with_fds(0, 0, state, fds, (unsigned)n);
}

int tp_sd_notify_barrier(uint64_t timeout_usec)
{
	return sd_notify_barrier(0, timeout_usec);
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
