/* SPDX-License-Identifier: MIT */
/*
 * conn: per-connection input, batching, backpressure and in-order output.
 *
 * Input: sockets are edge-triggered, so `readable` remembers that input may
 * be pending and reading goes on until EAGAIN, a pause, or a fairness budget
 * (then the loop's ready list brings the connection back next turn).  Bytes
 * are framed straight from the loop's scratch buffer; only a partial line,
 * or the unframed rest while paused, is kept per connection.
 *
 * Batches: each turn of the loop, up to BATCH lines per connection are
 * parsed into the loop's batch, which goes to the queue with one call at
 * the end of the turn (push_batch() in loop.c).  Requests the queue could not
 * admit wait in its wait list; while any does, the connection reads nothing
 * more (TCP then pushes back on the client), and other connections go on.
 *
 * Output: every request, valid or not, is on the in-order list from the
 * moment its line is framed; replies are written from the head of that list
 * as far as requests are done, with one writev for the lot.  Reply memory
 * (pending_bytes) is bounded by limits.max_unsent_kib: past it, reading
 * stops until the client reads.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "proto.h"
#include "queue.h"
#include "server.h"

#define BATCH 64       /* lines parsed per connection per turn */
#define READ_BUDGET 16 /* reads per turn before yielding to other connections */
#define WRITE_IOV 64   /* replies per writev */

static void addr_to_text(const struct sockaddr_storage *ss, char *buf, size_t len, uint16_t *ret_port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
		*ret_port = ntohs(s6->sin6_port);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
		*ret_port = ntohs(s4->sin_port);
	} else {
		snprintf(buf, len, "unknown");
		*ret_port = 0;
	}
}

static void log_conn(const struct tp_conn *c, const char *event, const char *what)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", c->port);
	struct tp_log_field f[] = {{"CLIENT_ADDR", c->addr}, {"CLIENT_PORT", port}};
	tp_logf(TP_LOG_DEBUG, event, f, 2, "%s %s:%s", what, c->addr, port);
}

struct tp_conn *tp_conn_new(struct tp_loop *loop, int fd, const struct sockaddr_storage *peer)
{
	struct tp_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev;

	if (!c) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	c->tag = TP_TAG_CONN;
	c->fd = fd;
	c->loop = loop;
	c->writable = true;
	tp_framer_init(&c->framer, (size_t)tp_loop_config(loop)->max_line_bytes);
	addr_to_text(peer, c->addr, sizeof(c->addr), &c->port);

	/*
	 * Replies are small and written as soon as they are in order: Nagle's
	 * algorithm would hold one back waiting for the ACK of the last.
	 */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(tp_loop_epfd(loop), EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		close(fd);
		free(c);
		errno = e;
		return NULL;
	}
	log_conn(c, "conn_open", "connection from");
	return c;
}

static void list_append(struct tp_conn *c, struct tp_req *r)
{
	r->onext = NULL;
	if (c->otail)
		c->otail->onext = r;
	else
		c->ohead = r;
	c->otail = r;
	c->nreqs++;
	c->pending_bytes += r->cap;
}

static struct tp_req *req_alloc(struct tp_conn *c, size_t cap)
{
	if (cap < TP_REQ_MIN_CAP)
		cap = TP_REQ_MIN_CAP;
	struct tp_req *r = cap == TP_REQ_MIN_CAP ? tp_loop_req_get(c->loop) : NULL;
	if (!r)
		r = malloc(sizeof(*r) + cap);
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->conn = c;
	r->cap = (uint32_t)cap;
	return r;
}

static void req_free(struct tp_conn *c, struct tp_req *r)
{
	c->pending_bytes -= r->cap;
	c->nreqs--;
	if (r->cap == TP_REQ_MIN_CAP)
		tp_loop_req_put(c->loop, r);
	else
		free(r);
}

/* An immediate reply (parse error, shutting down): done at once, in order. */
static int reply_now(struct tp_conn *c, enum tp_proto_status st, const char *op, size_t op_len)
{
	struct tp_req *r = req_alloc(c, TP_PROTO_MAX_ERR);
	if (!r)
		return -ENOMEM;
	r->status = (uint8_t)st;
	r->len = (uint32_t)tp_proto_format_error(st, op, op_len, r->buf);
	r->done = true;
	list_append(c, r);
	tp_loop_mark_dirty(c->loop, c);
	return 0;
}

static bool over_unsent(const struct tp_conn *c)
{
	return c->pending_bytes > (size_t)tp_loop_config(c->loop)->max_unsent_kib * 1024;
}

static bool can_read(const struct tp_conn *c)
{
	return !c->closed && !c->eof && c->nwaiting == 0 && !over_unsent(c) &&
	       (c->framer.stopped || c->readable);
}

/* Framer callback: one line (or one over-long line). Non-zero stops framing. */
static int on_line(void *ctx, const char *line, size_t len, bool too_long)
{
	struct tp_conn *c = ctx;
	struct tp_loop *l = c->loop;
	const struct tp_config *cfg = tp_loop_config(l);
	struct tp_proto_req pr = {0};
	enum tp_proto_status st;
	struct tp_req *r;

	c->spoke = true;
	if (too_long)
		st = TP_PROTO_TOO_LONG;
	else if (tp_server_shutting_down(tp_loop_server(l)) && !c->grace)
		st = TP_PROTO_SHUTDOWN;
	else
		st = tp_proto_parse(line, len, (uint32_t)cfg->max_sleep_ms, &pr);

	if (st != TP_PROTO_OK) {
		if (reply_now(c, st, pr.op_name, st == TP_PROTO_UNKNOWN_OP ? pr.op_len : 0) < 0) {
			c->failed = true;
			return 1;
		}
		return over_unsent(c);
	}

	size_t cap = pr.op == TP_OP_ECHO ? pr.text_len + 4 : 0;
	r = req_alloc(c, cap);
	if (!r) {
		c->failed = true;
		return 1;
	}
	r->op = (uint8_t)pr.op;
	r->arrival_ns = tp_loop_now_ns(l);
	r->qnode.deadline_ns = r->arrival_ns + (uint64_t)cfg->queue_timeout_ms * 1000000ull;
	if (pr.op == TP_OP_ECHO) {
		memcpy(r->buf + 3, pr.text, pr.text_len);
		r->len = (uint32_t)pr.text_len;
		r->qnode.batchable = true;
	} else {
		r->sleep_ms = pr.sleep_ms;
		r->qnode.batchable = pr.sleep_ms == 0;
	}
	list_append(c, r);
	c->bn++;
	c->ninflight++;
	tp_loop_batch_add(l, r);
	return c->bn >= BATCH || over_unsent(c);
}

static void read_error(struct tp_conn *c, int err)
{
	char why[96];
	snprintf(why, sizeof(why), "read: %s", strerror(err));
	tp_conn_close(c, why);
}

void tp_conn_process(struct tp_conn *c)
{
	int budget = READ_BUDGET;

	if (c->bn >= BATCH) {
		/* Its share of this turn's batch is full: go on next turn. */
		tp_loop_mark_ready(c->loop, c);
		return;
	}
	c->framer.max_line = (size_t)tp_loop_config(c->loop)->max_line_bytes;
	while (can_read(c)) {
		int r;

		if (budget-- == 0 || c->bn >= BATCH) {
			tp_loop_mark_ready(c->loop, c);
			break;
		}
		if (c->framer.stopped) {
			r = tp_framer_resume(&c->framer, on_line, c);
		} else {
			size_t len;
			char *buf = tp_loop_scratch(c->loop, &len);
			ssize_t n = read(c->fd, buf, len);
			if (n == 0) {
				c->eof = true;
				break;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					c->readable = false;
					break;
				}
				if (errno == EINTR)
					continue;
				read_error(c, errno);
				return;
			}
			tp_loop_touch(c->loop, c);
			/*
			 * A short read drained the socket: data arriving later makes
			 * a new edge, so skip the read that would only say EAGAIN.
			 * Not when the peer's FIN was already reported: its EOF
			 * read is still owed and no new edge would announce it.
			 */
			if ((size_t)n < len && !c->hup)
				c->readable = false;
			r = tp_framer_feed(&c->framer, buf, (size_t)n, on_line, c);
		}
		if (r < 0 || c->failed) {
			tp_conn_close(c, "out of memory");
			return;
		}
	}
	if (c->grace && c->spoke)
		c->grace = false; /* its first request is in: later lines get ERR server shutting down */
	if (c->eof || tp_server_shutting_down(tp_loop_server(c->loop)))
		tp_loop_mark_dirty(c->loop, c); /* the flush closes it once everything is answered */
}

void tp_conn_on_event(struct tp_conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->hup = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	if (c->writable && c->ohead && c->ohead->done)
		tp_loop_mark_dirty(c->loop, c);
	tp_conn_process(c);
}

void tp_conn_flush(struct tp_conn *c)
{
	struct iovec iov[WRITE_IOV];
	bool was_over = over_unsent(c);
	size_t sent = 0;

	if (c->closed)
		return;
	while (c->writable && c->ohead && c->ohead->done) {
		struct tp_req *r = c->ohead;
		int n = 0;
		for (; r && r->done && n < WRITE_IOV; r = r->onext, n++)
			iov[n] = (struct iovec){r->buf + r->woff, r->len - r->woff};
		ssize_t w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->writable = false;
				break;
			}
			if (errno == EINTR)
				continue;
			char why[96];
			snprintf(why, sizeof(why), "write: %s", strerror(errno));
			tp_conn_close(c, why);
			return;
		}
		tp_loop_touch(c->loop, c);
		size_t left = (size_t)w;
		while (c->ohead && c->ohead->done && left >= c->ohead->len - c->ohead->woff) {
			struct tp_req *h = c->ohead;
			left -= h->len - h->woff;
			c->ohead = h->onext;
			if (!c->ohead)
				c->otail = NULL;
			sent++;
			req_free(c, h);
		}
		if (left) {
			/* left > 0: the head was written in part, so it is still on the list. */
			c->ohead->woff += (uint32_t)left; /* NOLINT(clang-analyzer-core.NullDereference) */
			c->writable = false;              /* a short write means the socket buffer is full */
		}
	}
	if (sent)
		tp_loop_count_served(c->loop, sent);

	if ((c->eof || tp_server_shutting_down(tp_loop_server(c->loop))) && c->nreqs == 0 &&
	    !c->framer.stopped && !c->grace && !c->in_ready) {
		tp_conn_close(c, c->eof ? "client closed" : "shutting down");
		return;
	}
	/* Draining below the bound lets reading go on. */
	if (was_over && !over_unsent(c) && can_read(c))
		tp_loop_mark_ready(c->loop, c);
}

void tp_conn_complete(struct tp_conn *c, struct tp_req *r)
{
	c->ninflight--;
	if (r->qnode.batchable)
		tp_loop_cheap_done(c->loop);
	tp_conn_admitted(c, r); /* an expired waiter stops waiting as an admitted one does */
	r->done = true;
	if (r->status == TP_PROTO_BUSY)
		tp_loop_count_busy(c->loop);
	if (c->closed) {
		tp_conn_release(c);
		return;
	}
	if (r == c->ohead)
		tp_loop_mark_dirty(c->loop, c);
}

void tp_conn_waiting(struct tp_conn *c, struct tp_req *r)
{
	r->waiting = true;
	c->nwaiting++;
}

void tp_conn_turn_done(struct tp_conn *c)
{
	c->bn = 0;
}

void tp_conn_admitted(struct tp_conn *c, struct tp_req *r)
{
	if (!r->waiting)
		return;
	r->waiting = false;
	if (--c->nwaiting == 0 && can_read(c))
		tp_loop_mark_ready(c->loop, c);
}

void tp_conn_close(struct tp_conn *c, const char *reason)
{
	if (c->closed)
		return;
	atomic_store_explicit(&c->gone, true, memory_order_relaxed);
	c->closed = true;
	close(c->fd); /* also removes it from epoll */
	c->fd = -1;
	tp_framer_release(&c->framer);
	log_conn(c, "conn_close", reason);
	tp_loop_conn_closed(c->loop, c);
	tp_conn_release(c);
}

void tp_conn_release(struct tp_conn *c)
{
	if (!c->closed || c->ninflight > 0 || c->in_ready || c->in_dirty)
		return;
	/* Nothing is in flight: every request left is done or never pushed. */
	for (struct tp_req *r = c->ohead, *next; r; r = next) {
		next = r->onext;
		free(r);
	}
	tp_loop_conn_freed(c->loop);
	free(c);
}

void tp_conn_shutdown(struct tp_conn *c, uint64_t grace_until_ns)
{
	if (c->closed)
		return;
	/*
	 * A client whose connection was accepted just before the signal cannot
	 * tell it from one still in the kernel's backlog, which the next
	 * instance would serve: serve its first request rather than close it
	 * unanswered.
	 */
	if (!c->spoke && c->nreqs == 0) {
		c->grace = true;
		c->grace_until_ns = grace_until_ns;
	}
	/*
	 * One last read before deciding it is idle: a line that reached the
	 * socket before the signal is answered, not reset by the close.
	 */
	c->readable = true;
	if (can_read(c))
		tp_loop_mark_ready(c->loop, c);
	tp_loop_mark_dirty(c->loop, c);
}

void tp_conn_grace_check(struct tp_conn *c, uint64_t now_ns)
{
	if (c->grace && now_ns >= c->grace_until_ns) {
		c->grace = false;
		tp_loop_mark_dirty(c->loop, c);
	}
}
