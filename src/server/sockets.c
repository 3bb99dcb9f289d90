/* SPDX-License-Identifier: MIT */
/*
 * sockets: the listening sockets at start, from systemd by name or bound
 * from the settings (see sockets.h).
 */
#include "sockets.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sd.h"

static void raise_nofile(void)
{
	struct rlimit rl;
	/* Connections are fds: take all the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int open_data(struct tp_sockets *s, const struct tp_config *cfg, int *metrics_fd, int *agent_fd,
                     char *err, size_t errlen)
{
	int fds[TP_SOCKETS_MAX];
	int n = tp_sd_listen_fds_split(fds, TP_SOCKETS_MAX, metrics_fd, agent_fd);

	if (n == -E2BIG || n == -EEXIST) {
		snprintf(err, errlen,
		         "sockets passed by systemd: %s (at most %d, and one each named \"metrics\" and "
		         "\"agent\")",
		         n == -E2BIG ? "too many" : "two with the same name", TP_SOCKETS_MAX);
		return -EINVAL;
	}
	if (n < 0) {
		snprintf(err, errlen, "sd_listen_fds_with_names(): %s", strerror(-n));
		return n;
	}
	if (n == 0 && (*metrics_fd >= 0 || *agent_fd >= 0)) {
		snprintf(err, errlen, "systemd passed a metrics or agent socket but no socket for requests");
		return -EINVAL;
	}
	if (n > 0) {
		s->activated = true;
		for (int i = 0; i < n; i++) {
			int r = tp_listener_adopt(fds[i], &s->data[i], err, errlen);
			if (r < 0)
				return r;
			s->ndata++;
		}
		return 0;
	}
	int r = tp_listener_bind("listen", cfg->host, cfg->port, cfg->backlog, &s->data[0], err, errlen);
	if (r < 0)
		return r;
	s->ndata = 1;
	return 0;
}

int tp_sockets_open(struct tp_sockets *s, const struct tp_config *cfg, char *err, size_t errlen)
{
	int metrics_fd = -1, agent_fd = -1, r;

	*s = (struct tp_sockets){.metrics.fd = -1, .agent.fd = -1};
	for (size_t i = 0; i < TP_SOCKETS_MAX; i++)
		s->data[i].fd = -1;
	raise_nofile();
	r = open_data(s, cfg, &metrics_fd, &agent_fd, err, errlen);
	if (r == 0 && metrics_fd >= 0) {
		r = tp_listener_adopt(metrics_fd, &s->metrics, err, errlen);
		metrics_fd = r < 0 ? metrics_fd : -1;
	} else if (r == 0 && cfg->metrics_enabled && !s->activated) {
		r = tp_listener_bind("metrics", cfg->metrics_host, cfg->metrics_port, cfg->backlog,
		                     &s->metrics, err, errlen);
	}
	if (r == 0 && agent_fd >= 0) {
		r = tp_listener_adopt(agent_fd, &s->agent, err, errlen);
		s->agent_activated = r == 0;
		agent_fd = r < 0 ? agent_fd : -1;
	} else if (r == 0 && cfg->agent_enabled && !s->activated) {
		r = tp_listener_bind("agent", cfg->agent_host, cfg->agent_port, cfg->backlog, &s->agent, err,
		                     errlen);
	}
	s->agent.src.kind = TP_SOURCE_AGENT;
	if (metrics_fd >= 0)
		close(metrics_fd);
	if (agent_fd >= 0)
		close(agent_fd);
	return r;
}

void tp_sockets_stop_listening(struct tp_sockets *s)
{
	if (s->activated)
		return;
	for (size_t i = 0; i < s->ndata; i++)
		if (s->data[i].fd >= 0)
			(void)shutdown(s->data[i].fd, SHUT_RDWR); /* a listener: it stops listening */
}

void tp_sockets_close(struct tp_sockets *s)
{
	for (size_t i = 0; i < s->ndata; i++)
		if (s->data[i].fd >= 0)
			close(s->data[i].fd);
	if (s->metrics.fd >= 0)
		close(s->metrics.fd);
	if (s->agent.fd >= 0)
		close(s->agent.fd);
	s->ndata = 0;
	s->metrics.fd = -1;
	s->agent.fd = -1;
}
