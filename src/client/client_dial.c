/* SPDX-License-Identifier: MIT */
/*
 * client_dial: resolving the server and connecting one client.  See
 * client_dial.h.
 */
#include "client_dial.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct tp_client_dial {
	struct addrinfo *res;
	atomic_uint good; /* the index in res of the address that last accepted: tried first */
};

int tp_client_dial_new(const char *host, const char *port, struct tp_client_dial **ret, const char **ret_why)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct tp_client_dial *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	r = getaddrinfo(host, port, &hints, &d->res);
	if (r != 0) {
		*ret_why = gai_strerror(r);
		free(d);
		return r == EAI_MEMORY ? -ENOMEM : -EHOSTUNREACH;
	}
	*ret = d;
	return 0;
}

void tp_client_dial_free(struct tp_client_dial *d)
{
	if (!d)
		return;
	freeaddrinfo(d->res);
	free(d);
}

/*
 * fd's connect is under way: wait for its end, for timeout_s at most (a
 * millisecond at least), or until stop_fd (if >= 0) is readable.  Returns
 * 0, or -errno: the connect's error, -ETIMEDOUT or -EINTR.
 */
static int connected(int fd, double timeout_s, int stop_fd)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLOUT}, {.fd = stop_fd, .events = POLLIN}};
	double ms = ceil(timeout_s * 1000);
	int err = 0, n = poll(p, stop_fd >= 0 ? 2 : 1, ms < 1 ? 1 : ms > INT_MAX ? INT_MAX : (int)ms);
	socklen_t len = sizeof(err);

	if (n <= 0 || (p[1].revents & POLLIN))
		return n < 0 ? -errno : n == 0 ? -ETIMEDOUT : -EINTR;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

/*
 * Connect one socket to ai from src, bounded by timeout_s and stop_fd.
 * Returns the fd (non-blocking) or -errno.
 */
static int connect_one(const struct addrinfo *ai, const struct tp_client_source *src, double timeout_s,
                       int stop_fd, const char **ret_call)
{
	int one = 1, fd, r;

	*ret_call = "socket";
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (src) {
		/* The port is picked at connect(), per server address: many clients can share a source. */
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		*ret_call = "bind";
		if (bind(fd, &src->addr.sa, src->len) < 0)
			goto fail;
	}
	/* A full accept queue must not hang the start, nor keep a signal from stopping it. */
	*ret_call = "connect";
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
	    (r = errno == EINPROGRESS ? connected(fd, timeout_s, stop_fd) : -errno) < 0)
		goto out;
	/* Small pipelined requests must leave now, not when Nagle decides. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;

fail:
	r = -errno;
out:
	close(fd);
	return r;
}

int tp_client_dial_connect(struct tp_client_dial *d, const struct tp_client_source *src, double timeout_s,
                           int stop_fd, const char **ret_call)
{
	unsigned good = atomic_load_explicit(&d->good, memory_order_relaxed), i = 0;
	int fd = -EAFNOSUPPORT;

	*ret_call = "connect";
	/* The address that answered last first, then the others in resolver order. */
	for (int pass = 0; pass < 2; pass++) {
		i = 0;
		for (const struct addrinfo *ai = d->res; ai; ai = ai->ai_next, i++) {
			if ((pass == 0) != (i == good) || (src && ai->ai_family != src->addr.sa.sa_family))
				continue;
			fd = connect_one(ai, src, timeout_s, stop_fd, ret_call);
			if (fd == -EINTR)
				return fd;
			if (fd >= 0) {
				atomic_store_explicit(&d->good, i, memory_order_relaxed);
				return fd;
			}
		}
	}
	return fd;
}
