/* SPDX-License-Identifier: MIT */
/*
 * sockets: bind or adopt the data and agent sockets.
 */
#include "sockets.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sd.h"

void tp_sockets_init(struct tp_sockets *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < TP_SOCKETS_MAX; i++)
		s->data[i].fd = -1;
	s->agent.fd = -1;
}

static int adopt_passed(struct tp_sockets *s, int n, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		int fd = tp_sd_listen_fds_start() + i, r;
		const char *name = tp_sd_listen_fd_name(i);

		if (name && strcmp(name, "agent") == 0) {
			if (s->agent.fd >= 0) {
				snprintf(err, errlen, "two sockets named \"agent\" passed by systemd");
				return -EINVAL;
			}
			r = tp_listener_adopt(fd, &s->agent, err, errlen);
			s->agent_activated = r == 0;
		} else if (s->ndata == TP_SOCKETS_MAX) {
			snprintf(err, errlen, "more than %d data sockets passed by systemd", TP_SOCKETS_MAX);
			return -EINVAL;
		} else {
			r = tp_listener_adopt(fd, &s->data[s->ndata], err, errlen);
			s->ndata += r == 0;
		}
		if (r < 0)
			return r;
	}
	s->activated = s->ndata > 0;
	return 0;
}

int tp_sockets_open(struct tp_sockets *s, const struct tp_config *cfg, char *err, size_t errlen)
{
	int n = tp_sd_listen_fds(), r = 0;

	if (n < 0) {
		snprintf(err, errlen, "sd_listen_fds(): %s", strerror(-n));
		return n;
	}
	if (n > 0)
		r = adopt_passed(s, n, err, errlen);
	if (r == 0 && s->ndata == 0) {
		r = tp_listener_bind(cfg->host, cfg->port, cfg->backlog, &s->data[0], err, errlen);
		s->ndata = r == 0;
	}
	if (r == 0 && s->agent.fd < 0 && cfg->agent_enabled)
		r = tp_listener_bind(cfg->agent_host, cfg->agent_port, 64, &s->agent, err, errlen);
	s->agent.src.kind = TP_SOURCE_AGENT;
	return r;
}

void tp_sockets_close(struct tp_sockets *s)
{
	for (size_t i = 0; i < s->ndata; i++)
		if (s->data[i].fd >= 0)
			close(s->data[i].fd);
	if (s->agent.fd >= 0)
		close(s->agent.fd);
	tp_sockets_init(s);
}
