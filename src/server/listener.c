/* SPDX-License-Identifier: MIT */
/*
 * listener: bind or adopt listening TCP sockets; accept from them.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "proto.h"

#define ACCEPT_BURST 64
#define ACCEPT_PAUSE_MS 100
#define EMFILE_LOG_EVERY_NS 10000000000ull

void tp_listener_describe(int fd, char *buf, size_t len)
{
	/* Zeroed: getsockname() fills it, but the analyzer cannot know that. */
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			(void)inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			port = ntohs(s6->sin6_port);
			snprintf(buf, len, "[%s]:%u", host, port);
			return;
		}
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			(void)inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			port = ntohs(s4->sin_port);
		}
	}
	snprintf(buf, len, "%s:%u", host, port);
}

int tp_listener_bind(const char *host, int port, int backlog, struct tp_listener *ret, char *err,
                     size_t errlen)
{
	struct addrinfo hints = {
	        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	char portstr[8];
	int fd = -1, r, one = 1, saved = 0;

	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve listen address %s: %s", host, gai_strerror(r));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			snprintf(err, errlen, "cannot listen on %s:%d: socket(): %s", host, port,
			         strerror(errno));
			continue;
		}
		/* Restarting must not wait out TIME_WAIT of the previous instance's clients. */
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			saved = errno;
			snprintf(err, errlen, "cannot listen on %s:%d: bind(): %s", host, port,
			         strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		if (listen(fd, backlog) < 0) {
			saved = errno;
			snprintf(err, errlen, "cannot listen on %s:%d: listen(): %s", host, port,
			         strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -(saved ? saved : EADDRNOTAVAIL);
	ret->src.kind = TP_SOURCE_LISTEN;
	ret->fd = fd;
	tp_listener_describe(fd, ret->name, sizeof(ret->name));
	return 0;
}

int tp_listener_adopt(int fd, struct tp_listener *ret, char *err, size_t errlen)
{
	int flags;

	if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
		snprintf(err, errlen,
		         "inherited fd %d is not a listening TCP socket (IPv4 or IPv6); check ListenStream= "
		         "in "
		         "tpserver.socket",
		         fd);
		return -EINVAL;
	}
	/* systemd may pass blocking sockets; the loops need them non-blocking. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "inherited fd %d: fcntl(O_NONBLOCK): %s", fd, strerror(errno));
		return -errno;
	}
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	ret->src.kind = TP_SOURCE_LISTEN;
	ret->fd = fd;
	tp_listener_describe(fd, ret->name, sizeof(ret->name));
	return 0;
}

static int listen_ctl(struct tp_listen_set *s, int op)
{
	for (size_t i = 0; i < s->n; i++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &s->ls[i]};
		if (epoll_ctl(s->epfd, op, s->ls[i].fd, op == EPOLL_CTL_DEL ? NULL : &ev) < 0 &&
		    op != EPOLL_CTL_DEL)
			return -errno;
	}
	return 0;
}

int tp_listener_watch(struct tp_listen_set *s, struct tp_listener *ls, size_t n, int epfd)
{
	*s = (struct tp_listen_set){.ls = ls, .n = n, .epfd = epfd};
	int r = listen_ctl(s, EPOLL_CTL_ADD);
	if (r == 0)
		s->accepting = true;
	return r;
}

void tp_listener_stop(struct tp_listen_set *s)
{
	if (s->accepting)
		(void)listen_ctl(s, EPOLL_CTL_DEL);
	s->accepting = false;
	s->stopped = true;
}

void tp_listener_resume(struct tp_listen_set *s, uint64_t now_ns)
{
	if (!s->accepting && !s->stopped && now_ns >= s->resume_ns && listen_ctl(s, EPOLL_CTL_ADD) == 0)
		s->accepting = true;
}

static void pause_accept(struct tp_listen_set *s, uint64_t now_ns, int err)
{
	if (!s->accepting)
		return;
	(void)listen_ctl(s, EPOLL_CTL_DEL);
	s->accepting = false;
	s->resume_ns = now_ns + ACCEPT_PAUSE_MS * 1000000ull;
	/* At most one line every 10 s: an fd flood must not become a log flood. */
	if (!s->logged_ns || now_ns - s->logged_ns > EMFILE_LOG_EVERY_NS) {
		s->logged_ns = now_ns;
		tp_log(TP_LOG_WARNING, "accept_paused",
		       "accept: %s; not accepting for %d ms (raise LimitNOFILE?)", strerror(err),
		       ACCEPT_PAUSE_MS);
	}
}

/* Refuse a client over max_connections: one line, then close. */
static void refuse(int fd)
{
	const char *msg = tp_proto_error_line(TP_PROTO_TOO_MANY);
	ssize_t w = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w; /* best effort: the client may already be gone */
	close(fd);
}

void tp_listener_accept(struct tp_listen_set *s, struct tp_listener *ls, uint64_t now_ns,
                        tp_listener_take_fn take, void *ctx)
{
	for (int i = 0; i < ACCEPT_BURST && s->accepting; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(ls->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				pause_accept(s, now_ns, errno);
				return;
			}
			tp_log(TP_LOG_ERROR, "accept_error", "accept on %s: %s", ls->name, strerror(errno));
			return;
		}
		if (!take(ctx, fd, &peer))
			refuse(fd);
	}
}
