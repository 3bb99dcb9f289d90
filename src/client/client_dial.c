/* SPDX-License-Identifier: MIT */
/*
 * client_dial: resolving the server and connecting one client.  See
 * client_dial.h.
 */
#include "client_dial.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
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

/* Connect one socket to ai from src, blocking, bounded by timeout_s. Returns the fd or -errno. */
static int connect_one(const struct addrinfo *ai, const struct tp_client_source *src, double timeout_s,
                       const char **ret_call)
{
	struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
	int one = 1, fd, r;

	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1; /* below a microsecond: 0 would mean no bound at all */

	*ret_call = "socket";
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (src) {
		/* The port is picked at connect(), per server address: many clients can share a source. */
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		*ret_call = "bind";
		if (bind(fd, &src->addr.sa, src->len) < 0)
			goto fail;
	}
	/* SO_SNDTIMEO also bounds connect(): a full accept queue must not hang the start. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	*ret_call = "connect";
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno == EINPROGRESS)
			errno = ETIMEDOUT;
		goto fail;
	}
	/* Small pipelined requests must leave now, not when Nagle decides. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;

fail:
	r = -errno;
	close(fd);
	return r;
}

int tp_client_dial_connect(struct tp_client_dial *d, const struct tp_client_source *src, double timeout_s,
                           const char **ret_call)
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
			fd = connect_one(ai, src, timeout_s, ret_call);
			if (fd >= 0) {
				atomic_store_explicit(&d->good, i, memory_order_relaxed);
				return fd;
			}
		}
	}
	return fd;
}
