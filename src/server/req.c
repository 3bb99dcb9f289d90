/* SPDX-License-Identifier: MIT */
/*
 * req: allocation of requests, with a loop's cache of small slots.
 */
#include "req.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Replies one write takes at most. */
#define WRITE_RUN_MAX 64
/* Up to this many bytes a run is copied into one buffer and written with write(). */
#define GATHER_BYTES 4096

struct tp_req *tp_req_alloc(struct tp_conn *conn, size_t cap)
{
	struct tp_req *r;

	if (cap < TP_REQ_MIN_CAP)
		cap = TP_REQ_MIN_CAP;
	r = malloc(sizeof(*r) + cap);
	if (!r)
		return NULL;
	tp_req_zero(r);
	r->conn = conn;
	r->cap = (uint32_t)cap;
	return r;
}

static void free_list(struct tp_req *r)
{
	while (r) {
		struct tp_req *next = r->bnext;
		free(r);
		r = next;
	}
}

void tp_req_cache_clear(struct tp_req_cache *cache)
{
	free_list(cache->head);
	free_list(cache->units);
	*cache = (struct tp_req_cache){0};
}

/* The run from r as segments, for writev. */
static ssize_t writev_run(int fd, struct tp_req *r)
{
	struct iovec iov[WRITE_RUN_MAX];
	int n = 0;

	for (; r && r->done && n < WRITE_RUN_MAX; r = r->onext, n++)
		iov[n] = (struct iovec){r->buf + r->woff, r->len - r->woff};
	return writev(fd, iov, n);
}

ssize_t tp_req_write_run(int fd, struct tp_req *r)
{
	char gather[GATHER_BYTES];
	size_t total = 0;
	int n = 0;

	/* Small replies: one copy here costs less than the kernel's walk of n segments. */
	for (struct tp_req *s = r; s && s->done && n < WRITE_RUN_MAX; s = s->onext, n++) {
		size_t len = s->len - s->woff;
		if (len > sizeof(gather) - total)
			return n == 0 ? write(fd, r->buf + r->woff, len) : writev_run(fd, r);
		tp_copy_short(gather + total, s->buf + s->woff, len);
		total += len;
	}
	return write(fd, gather, total);
}
