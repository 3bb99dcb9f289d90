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
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "metrics.h"
#include "proto.h"

#define ACCEPT_BURST 64
#define ACCEPT_PAUSE_MS 100
#define EMFILE_LOG_EVERY_NS 10000000000ull
#define REFUSE_DRAIN_MS 100
/* A refused client's events: its input and its end, edge-triggered. */
#define REFUSED_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

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
		} else if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			(void)inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			port = ntohs(s4->sin_port);
		}
	}
	tp_log_host_port(buf, len, host, port);
}

/* Whether addr is one this host can listen on: a bind to any port there, at once closed. */
static bool local_address(const struct addrinfo *ai)
{
	struct sockaddr_storage ss;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0 || ai->ai_addrlen > sizeof(ss)) {
		if (fd >= 0)
			close(fd);
		return true; /* nothing to learn here: the start says what it finds */
	}
	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	r = bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0 ? errno : 0;
	close(fd);
	return r != EADDRNOTAVAIL;
}

int tp_listener_check(const char *what, const char *host, int port, bool resolve, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	char portstr[8];
	bool numeric = strchr(host, ':') || host[strspn(host, "0123456789.")] == '\0', local = false;
	int r;

	if (!numeric && !resolve)
		return 0;
	if (numeric)
		hints.ai_flags |= AI_NUMERICHOST;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s address %s: %s", what, host,
		         numeric ? "not a valid IPv4 or IPv6 address" : gai_strerror(r));
		/* EAI_AGAIN: no DNS yet (at boot, say), not the file's fault */
		return r == EAI_AGAIN ? -EAGAIN : -EINVAL;
	}
	for (const struct addrinfo *ai = res; ai && !local; ai = ai->ai_next)
		local = !resolve || local_address(ai);
	freeaddrinfo(res);
	if (!local) {
		snprintf(err, errlen, "%s address %s is not one of this host's addresses", what, host);
		return -EADDRNOTAVAIL;
	}
	return 0;
}

int tp_listener_bind(const char *what, const char *host, int port, int backlog, struct tp_listener *ret,
                     char *err, size_t errlen)
{
	struct addrinfo hints = {
	        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	char portstr[8];
	int fd = -1, r, one = 1, saved = 0;

	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s address %s: %s", what, host, gai_strerror(r));
		return r == EAI_AGAIN ? -EAGAIN : -EINVAL;
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
	*s = (struct tp_listen_set){.ls = ls, .n = n, .epfd = epfd, .metrics = s->metrics /* the owner's */};
	for (size_t i = 0; i < TP_LISTENER_MAX_REFUSED; i++)
		s->refused[i] = (struct tp_refused){.src.kind = TP_SOURCE_REFUSED, .fd = -1};
	int r = listen_ctl(s, EPOLL_CTL_ADD);
	if (r == 0)
		s->accepting = true;
	return r;
}

/* An accept failed for want of fds or memory: the socket stays readable with nothing to accept. */
static bool out_of_fds(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* At most one warning of a kind every EMFILE_LOG_EVERY_NS: an fd flood must not become a log flood. */
static bool log_due(uint64_t *logged_ns, uint64_t now_ns)
{
	if (*logged_ns && now_ns - *logged_ns <= EMFILE_LOG_EVERY_NS)
		return false;
	*logged_ns = now_ns;
	return true;
}

static int other_ctl(struct tp_listen_set *s, struct tp_listen_other *o, int op)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = o->src};

	return epoll_ctl(s->epfd, op, o->fd, op == EPOLL_CTL_DEL ? NULL : &ev) < 0 ? -errno : 0;
}

int tp_listener_watch_other(struct tp_listen_set *s, int fd, struct tp_source *src, const char *what)
{
	if (fd < 0)
		return 0;
	if (s->nother == TP_LISTENER_MAX_OTHER)
		return -ENOSPC;
	struct tp_listen_other *o = &s->other[s->nother];
	*o = (struct tp_listen_other){.fd = fd, .src = src, .what = what};
	int r = other_ctl(s, o, EPOLL_CTL_ADD);
	if (r == 0)
		s->nother++;
	return r;
}

void tp_listener_pause_other(struct tp_listen_set *s, const struct tp_source *src, int err, uint64_t now_ns)
{
	struct tp_listen_other *o = NULL;
	char name[64];

	if (!out_of_fds(err))
		return;
	for (size_t i = 0; i < s->nother && !o; i++)
		if (s->other[i].src == src)
			o = &s->other[i];
	if (!o || o->paused || other_ctl(s, o, EPOLL_CTL_DEL) < 0)
		return;
	o->paused = true;
	o->resume_ns = now_ns + ACCEPT_PAUSE_MS * 1000000ull;
	if (!log_due(&o->logged_ns, now_ns))
		return;
	tp_listener_describe(o->fd, name, sizeof(name));
	tp_log(TP_LOG_WARNING, "accept_paused",
	       "%s on %s: accept: %s; not accepting for %d ms (raise LimitNOFILE?)", o->what, name,
	       strerror(err), ACCEPT_PAUSE_MS);
}

/* The other sockets whose pause is over are watched again; one that cannot be waits another pause. */
static void resume_others(struct tp_listen_set *s, uint64_t now_ns)
{
	for (size_t i = 0; i < s->nother; i++) {
		struct tp_listen_other *o = &s->other[i];
		if (!o->paused || now_ns < o->resume_ns)
			continue;
		if (other_ctl(s, o, EPOLL_CTL_ADD) == 0)
			o->paused = false;
		else
			o->resume_ns = now_ns + ACCEPT_PAUSE_MS * 1000000ull; /* rather than spin */
	}
}

static void refused_close(struct tp_listen_set *s, struct tp_refused *rf)
{
	close(rf->fd); /* also leaves the epoll set */
	rf->fd = -1;
	s->nrefusing--;
}

void tp_listener_stop(struct tp_listen_set *s)
{
	for (size_t i = 0; i < TP_LISTENER_MAX_REFUSED && s->nrefusing; i++)
		if (s->refused[i].fd >= 0)
			refused_close(s, &s->refused[i]);
	if (s->accepting)
		(void)listen_ctl(s, EPOLL_CTL_DEL);
	s->accepting = false;
	s->stopped = true;
}

uint64_t tp_listener_next_timer(const struct tp_listen_set *s)
{
	uint64_t next = s->accepting || s->stopped ? 0 : s->resume_ns;

	for (size_t i = 0; i < s->nother; i++)
		if (s->other[i].paused && (!next || s->other[i].resume_ns < next))
			next = s->other[i].resume_ns;
	for (size_t i = 0; i < TP_LISTENER_MAX_REFUSED && s->nrefusing; i++)
		if (s->refused[i].fd >= 0 && (!next || s->refused[i].until_ns < next))
			next = s->refused[i].until_ns;
	return next;
}

void tp_listener_timers(struct tp_listen_set *s, uint64_t now_ns)
{
	for (size_t i = 0; i < TP_LISTENER_MAX_REFUSED && s->nrefusing; i++)
		if (s->refused[i].fd >= 0 && now_ns >= s->refused[i].until_ns)
			refused_close(s, &s->refused[i]);
	resume_others(s, now_ns);
	int r;

	if (s->accepting || s->stopped || now_ns < s->resume_ns)
		return;
	r = listen_ctl(s, EPOLL_CTL_ADD);
	if (r == 0) {
		s->accepting = true;
		return;
	}
	/*
	 * One socket could not be watched again: take the others out too, so
	 * that the next try starts from the same state instead of failing on
	 * them with EEXIST for good, and wait before it rather than spin.
	 */
	if (log_due(&s->logged_ns, now_ns))
		tp_log(TP_LOG_WARNING, "accept_paused",
		       "cannot watch the listening sockets again: %s; retrying every %d ms", strerror(-r),
		       ACCEPT_PAUSE_MS);
	(void)listen_ctl(s, EPOLL_CTL_DEL);
	s->resume_ns = now_ns + ACCEPT_PAUSE_MS * 1000000ull;
}

static void pause_accept(struct tp_listen_set *s, uint64_t now_ns, int err)
{
	if (!s->accepting)
		return;
	(void)listen_ctl(s, EPOLL_CTL_DEL);
	s->accepting = false;
	s->resume_ns = now_ns + ACCEPT_PAUSE_MS * 1000000ull;
	if (log_due(&s->logged_ns, now_ns))
		tp_log(TP_LOG_WARNING, "accept_paused",
		       "accept: %s; not accepting for %d ms (raise LimitNOFILE?)", strerror(err),
		       ACCEPT_PAUSE_MS);
}

enum tp_listener_discard tp_listener_discard(int epfd, int fd, struct epoll_event *ev, size_t *ret_dropped)
{
	char buf[4096];

	for (size_t got = 0; got < TP_LISTENER_DISCARD_MAX;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			got += (size_t)n;
			*ret_dropped += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? TP_LISTENER_DISCARD_EMPTY
			                                                          : TP_LISTENER_DISCARD_END;
		}
	}
	if (epfd >= 0)
		(void)epoll_ctl(epfd, EPOLL_CTL_MOD, fd, ev); /* MOD looks at readiness again */
	return TP_LISTENER_DISCARD_MORE;
}

void tp_listener_drain(struct tp_listen_set *s, struct tp_refused *rf)
{
	struct epoll_event ev = {.events = REFUSED_EVENTS, .data.ptr = rf};
	size_t dropped = 0;

	if (tp_listener_discard(s->epfd, rf->fd, &ev, &dropped) == TP_LISTENER_DISCARD_END)
		refused_close(s, rf);
}

/* A free drain slot, or NULL when they are all in use. */
static struct tp_refused *refused_slot(struct tp_listen_set *s)
{
	for (size_t i = 0; i < TP_LISTENER_MAX_REFUSED && s->nrefusing < TP_LISTENER_MAX_REFUSED; i++)
		if (s->refused[i].fd < 0)
			return &s->refused[i];
	return NULL;
}

size_t tp_listener_say_too_many(int fd)
{
	const char *msg = tp_proto_error_line(TP_PROTO_TOO_MANY);
	ssize_t w = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);

	return w > 0 ? (size_t)w : 0; /* best effort: the client may already be gone */
}

void tp_listener_refuse(struct tp_listen_set *s, int fd, uint64_t now_ns)
{
	struct tp_refused *rf = refused_slot(s);

	size_t said = tp_listener_say_too_many(fd);

	if (s->metrics)
		tp_metrics_add(&s->metrics->bytes_out, said);
	(void)shutdown(fd, SHUT_WR);
	if (rf) {
		struct epoll_event ev = {.events = REFUSED_EVENTS, .data.ptr = rf};
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
			rf->fd = fd;
			rf->until_ns = now_ns + REFUSE_DRAIN_MS * 1000000ull;
			s->nrefusing++;
			tp_listener_drain(s, rf); /* what it sent already */
			return;
		}
	}
	/* No slot: only what it sent already is read, which spares most a reset. */
	size_t dropped = 0;
	(void)tp_listener_discard(-1, fd, NULL, &dropped);
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
			if (errno == EINVAL) /* no longer listening: the stop (tp_sockets_stop_listening) */
				return;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (out_of_fds(errno)) {
				pause_accept(s, now_ns, errno);
				return;
			}
			tp_log(TP_LOG_ERROR, "accept_error", "accept on %s: %s", ls->name, strerror(errno));
			return;
		}
		if (!take(ctx, fd, &peer))
			tp_listener_refuse(s, fd, now_ns);
	}
}
