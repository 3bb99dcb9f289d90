/* SPDX-License-Identifier: MIT */
/*
 * conn: per-connection input, batching, backpressure and in-order output.
 *
 * Input: sockets are edge-triggered, so `readable` remembers that input may
 * be pending and reading goes on until EAGAIN, a pause, or a fairness budget
 * (then TP_CONN_READ brings the connection back next turn).  Bytes are
 * framed straight from the loop's scratch buffer; only a partial line, or
 * the unframed rest while paused, is kept per connection.
 *
 * Batches: each turn of the loop, up to BATCH lines per connection are
 * parsed into env->batch, which the loop pushes to the queue with one call
 * at the end of the turn.  Requests the queue could not admit wait in its
 * wait list; while any does, the connection reads nothing more (TCP then
 * pushes back on the client), and other connections go on.
 *
 * Output: every request, valid or not, is on the in-order list from the
 * moment its line is framed; replies are written from the head of that list
 * as far as requests are done, with one writev for the lot.  Reply memory
 * (pending_bytes) is bounded by limits.max_unsent_kib: past it, reading
 * stops until the client reads.
 */
#include "conn.h"

#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"
#include "proto.h"
#include "tp_assert.h"

#define BATCH 64       /* lines parsed per connection per turn */
#define READ_BUDGET 16 /* reads per turn before yielding to other connections */

struct tp_conn *tp_conn_new(struct tp_conn_env *env, struct tp_loop *loop, int fd,
                            const struct sockaddr_storage *peer, enum tp_peer_mode mode)
{
	struct tp_conn *c = calloc(1, sizeof(*c));
	struct tp_peer_hdr *h = mode != TP_PEER_DIRECT ? tp_peer_hdr_new(mode, env->now_ns) : NULL;
	struct epoll_event ev;

	if (!c || (mode != TP_PEER_DIRECT && !h)) {
		close(fd);
		free(c);
		free(h);
		errno = ENOMEM;
		return NULL;
	}
	c->hdr = h;
	c->src.kind = TP_SOURCE_CONN;
	c->fd = fd;
	c->loop = loop;
	c->env = env;
	c->writable = true;
	c->read_us = env->now_us;
	tp_framer_init(&c->framer, (size_t)env->cfg->max_line_bytes);
	c->peer = *peer;
	tp_peer_addr_text(peer, c->addr, sizeof(c->addr), &c->port);

	/*
	 * Replies are small and written as soon as they are in order: Nagle's
	 * algorithm would hold one back waiting for the ACK of the last.
	 */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(env->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		close(fd);
		tp_peer_hdr_free(c->hdr);
		free(c);
		errno = e;
		return NULL;
	}
	tp_peer_log(c->addr, c->port, "conn_open", "connection from");
	return c;
}

void tp_conn_env_now(struct tp_conn_env *env, uint64_t now_ns)
{
	env->now_ns = now_ns;
	env->now_us = tp_req_us(now_ns);
	env->wait_until_ns = now_ns + (uint64_t)env->cfg->queue_timeout_ms * 1000000ull;
	env->max_unsent = (size_t)env->cfg->max_unsent_kib * 1024;
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

static void req_done_with(struct tp_conn *c, struct tp_req *r)
{
	c->pending_bytes -= r->cap;
	c->nreqs--;
	tp_req_free(&c->env->reqs, r);
}

/* An immediate reply (parse error, shutting down): done at once, in order. */
static int reply_now(struct tp_conn *c, enum tp_proto_status st, const struct tp_proto_req *pr)
{
	struct tp_req *r = tp_req_new(&c->env->reqs, c, TP_PROTO_MAX_ERR);
	const char *op = st == TP_PROTO_UNKNOWN_OP ? pr->op_name : NULL;
	size_t op_len = st == TP_PROTO_UNKNOWN_OP ? pr->op_len : 0;

	if (!r)
		return -ENOMEM;
	r->arrival_us = c->read_us;
	/* Only an invalid argument follows a known op. */
	r->op = (uint8_t)(st == TP_PROTO_INVALID_ARG ? pr->op : TP_METRICS_OP_NONE);
	r->status = (uint8_t)st;
	r->len = (uint32_t)tp_proto_format_error(st, op, op_len, r->buf);
	r->done = true;
	list_append(c, r);
	return 0;
}

/*
 * Units (req.h): an ECHO line joins its connection's unit at the tail of
 * this turn's batch while the turn's lines fit the queue's room (a waiting
 * unit holds up the waiters after it), laid down as its reply but the "OK ".
 */
static bool join_unit(struct tp_conn *c, const struct tp_proto_req *pr)
{
	struct tp_req *u = c->otail;

	if (!u || u != c->env->batch.tail || u->cap != TP_REQ_UNIT_CAP || u->op != TP_OP_ECHO ||
	    tp_req_lines(u) >= TP_REQ_UNIT_LINES || c->env->batch.lines >= c->env->unit_room ||
	    u->len + pr->text_len + 4 > u->cap)
		return false;
	u->len += (uint32_t)tp_proto_echo_place(pr->text, pr->text_len, u->buf + u->len);
	u->qnode.more++;
	c->env->batch.lines++;
	return true;
}

/*
 * The slot for an ECHO line that starts a request: a unit's when the next
 * line, in what was read, is an ECHO that would join it, else its own size.
 */
static size_t echo_cap(const struct tp_conn *c, const char *line, size_t len, const struct tp_proto_req *pr)
{
	const char *next = line + len + 1;
	size_t room = TP_REQ_UNIT_CAP - (pr->text_len + 4); /* for the next line's text and 4 bytes */

	/* Not when nothing could join it: the turn's share ends with this line, or the room does. */
	if (c->framer.ahead < 6 || pr->text_len + 4 > TP_REQ_UNIT_CAP / 2 || c->bn + 1 >= BATCH ||
	    c->env->batch.lines + 2 > c->env->unit_room || strncasecmp(next, "ECHO ", 5) != 0)
		return pr->text_len + 4;
	/*
	 * "ECHO " and a text that fits the room left, then its newline: at most
	 * room + 1 bytes on; and no further than a line may be (max_line).
	 */
	size_t look = c->framer.ahead < room + 2 ? c->framer.ahead : room + 2;
	if (look > c->framer.max_line + 1)
		look = c->framer.max_line + 1;
	return memchr(next, '\n', look) ? TP_REQ_UNIT_CAP : pr->text_len + 4;
}

/* A request for a parsed line, in the connection's list and the turn's batch; false on ENOMEM. */
static bool add_request(struct tp_conn *c, const char *line, size_t len, const struct tp_proto_req *pr)
{
	struct tp_conn_env *env = c->env;
	struct tp_req *r = tp_req_new(&env->reqs, c, pr->op == TP_OP_ECHO ? echo_cap(c, line, len, pr) : 0);

	if (!r)
		return false;
	r->op = (uint8_t)pr->op;
	r->arrival_us = c->read_us;
	r->pushed = true;
	r->qnode.flow = &c->flow;
	r->qnode.cost_us = pr->op == TP_OP_ECHO ? 0 : pr->sleep_ms * 1000u; /* the queue adds a floor */
	/*
	 * Its wait for space in the queue ends queue_timeout_ms after its line
	 * was read, also when the line waited in the framer (read_us).
	 */
	r->qnode.deadline_ns = env->wait_until_ns - (uint64_t)(uint32_t)(env->now_us - c->read_us) * 1000;
	if (pr->op == TP_OP_ECHO) {
		r->len = (uint32_t)tp_proto_echo_place(pr->text, pr->text_len, r->buf);
		r->qnode.batchable = true;
	} else {
		r->sleep_ms = pr->sleep_ms;
		r->qnode.batchable = pr->sleep_ms == 0;
	}
	list_append(c, r);
	c->ninflight++;
	tp_req_batch_add(&env->batch, r);
	return true;
}

/* The framer callback's context: the connection and what happened to it. */
struct framing {
	struct tp_conn *c;
	unsigned ev;
	int read_err;        /* errno of a failed read */
	const char *refusal; /* why its PROXY header was refused */
};

/* Framer callback: one line (or one over-long line). Non-zero stops framing. */
static int on_line(void *ctx, const char *line, size_t len, bool too_long)
{
	struct framing *fr = ctx;
	struct tp_conn *c = fr->c;
	struct tp_conn_env *env = c->env;
	struct tp_proto_req pr = {0};
	enum tp_proto_status st;

	c->spoke = true;
	fr->ev |= TP_CONN_ACTIVE; /* a line, not a byte: a line sent a byte at a time is idle */
	if (too_long) {
		st = TP_PROTO_TOO_LONG;
	} else if (env->shutting_down && !c->grace && !tp_conn_kept(c)) {
		st = TP_PROTO_SHUTDOWN;
		c->told = c->told ? c->told : 1; /* counting from here */
	} else {
		st = tp_proto_parse(line, len, (uint32_t)env->cfg->max_sleep_ms, &pr);
	}
	if (c->grace)
		c->grace = false; /* its first request is in: later lines get ERR server shutting down */

	if (st != TP_PROTO_OK) {
		if (reply_now(c, st, &pr) < 0) {
			c->failed = true;
			return 1;
		}
		fr->ev |= TP_CONN_WRITE;
		return tp_conn_over_unsent(c);
	}

	if (!(pr.op == TP_OP_ECHO && join_unit(c, &pr)) && !add_request(c, line, len, &pr)) {
		c->failed = true;
		return 1;
	}
	/* One more line in this turn's batch, in a unit or a request of its own. */
	return ++c->bn >= BATCH || tp_conn_over_unsent(c);
}

static unsigned read_error(struct tp_conn *c, int err)
{
	char why[96];
	snprintf(why, sizeof(why), "read: %s", strerror(err));
	return tp_conn_close(c, why);
}

/* Read and decide the first bytes (peer.h); frame what follows the header.  Returns as read_once(). */
static int read_header(struct tp_conn *c, struct framing *fr)
{
	struct tp_peer_outcome o;

	tp_peer_read(c->hdr, c->fd, &c->peer, c->addr, sizeof(c->addr), &c->port, c->env->turned_away, &o);
	if (c->env->metrics) /* the header and what came with it are read too */
		tp_metrics_add(&c->env->metrics->bytes_in, o.nread);
	fr->ev |= (o.got ? TP_CONN_ACTIVE : 0) | (o.done && c->hdr->named ? TP_CONN_NAMED : 0);
	c->eof = o.eof;
	c->readable = o.readable;
	fr->refusal = o.refusal;
	fr->read_err = o.err;
	if (o.refusal || o.err)
		return o.refusal ? -2 : -1;
	if (!o.done)
		return 0;
	size_t n = c->hdr->len - o.start;
	c->read_us = c->env->now_us;
	int r = n ? tp_framer_feed(&c->framer, (const char *)c->hdr->buf + o.start, n, on_line, fr) : 0;
	tp_peer_hdr_free(c->hdr);
	c->hdr = NULL;
	return r < 0 ? -1 : !c->eof;
}

/*
 * One read (or a resume of the stopped framer).  Returns 1 to go on, 0 to
 * stop, -1 on failure: a read error in fr->read_err, else out of memory;
 * -2 for a refused PROXY header (fr->refusal).
 */
static int read_once(struct tp_conn *c, struct framing *fr)
{
	if (c->hdr)
		return read_header(c, fr);
	if (c->framer.stopped)
		return tp_framer_resume(&c->framer, on_line, fr) < 0 ? -1 : 1;

	ssize_t n = read(c->fd, c->env->scratch, c->env->scratch_len);
	if (c->told && c->told <= TP_CONN_TOLD_READS)
		c->told++; /* the reads once told are counted */
	if (n == 0) {
		c->eof = true;
		return 0;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->readable = false;
			return 0;
		}
		if (errno == EINTR)
			return 1;
		fr->read_err = errno;
		return -1;
	}
	c->read_us = c->env->now_us;
	if (c->env->metrics)
		tp_metrics_add(&c->env->metrics->bytes_in, (uint64_t)n);
	/*
	 * A short read drained the socket: data arriving later makes a new
	 * edge, so skip the read that would only say EAGAIN.  Not when the
	 * peer's FIN was already reported: its EOF read is still owed and no
	 * new edge would announce it.
	 */
	if ((size_t)n < c->env->scratch_len && !c->hup)
		c->readable = false;
	return tp_framer_feed(&c->framer, c->env->scratch, (size_t)n, on_line, fr) < 0 ? -1 : 1;
}

unsigned tp_conn_process(struct tp_conn *c)
{
	struct framing fr = {c, 0, 0, NULL};
	int budget = READ_BUDGET;

	if (c->bturn != c->env->turn) {
		c->bturn = c->env->turn;
		c->bn = 0;
	}
	if (c->bn >= BATCH)
		return TP_CONN_READ; /* its share of this turn's batch is full: go on next turn */
	c->framer.max_line = (size_t)c->env->cfg->max_line_bytes;
	while (tp_conn_can_read(c)) {
		if (budget-- == 0 || c->bn >= BATCH) {
			fr.ev |= TP_CONN_READ;
			break;
		}
		int r = read_once(c, &fr);
		if (r == -2)
			return fr.ev | tp_conn_close(c, fr.refusal);
		if (r < 0 && fr.read_err)
			return fr.ev | read_error(c, fr.read_err);
		if (r < 0 || c->failed)
			return fr.ev | tp_conn_close(c, "out of memory");
		if (r == 0)
			break;
	}
	if (c->eof || c->env->shutting_down)
		fr.ev |= TP_CONN_WRITE; /* the flush closes it once everything is answered */
	return fr.ev;
}

unsigned tp_conn_on_event(struct tp_conn *c, uint32_t events)
{
	unsigned ev = 0;
	int err = 0;

	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->hup = true;
	/*
	 * A reset while reading is paused (requests waiting for room, unsent
	 * replies over the bound) would wait for the next write to be seen:
	 * meanwhile its requests hold places and workers.
	 */
	if ((events & EPOLLERR) && !tp_conn_can_read(c) && !c->closed &&
	    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &(socklen_t){sizeof(err)}) == 0 && err)
		return read_error(c, err);
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	if (c->writable && c->ohead && c->ohead->done)
		ev |= TP_CONN_WRITE;
	return ev | tp_conn_process(c);
}

/* w bytes were written from the head of the list: count and free the replies that went out. */
static size_t written(struct tp_conn *c, size_t left)
{
	struct tp_metrics_run run = {0};
	size_t sent = 0;

	while (c->ohead && c->ohead->done && left >= c->ohead->len - c->ohead->woff) {
		struct tp_req *h = c->ohead;
		left -= h->len - h->woff;
		c->ohead = h->onext;
		if (!c->ohead)
			c->otail = NULL;
		sent += tp_req_lines(h);
		tp_metrics_run_add(c->env->metrics, &run, h, c->env->now_ns);
		req_done_with(c, h);
	}
	tp_metrics_run_end(c->env->metrics, &run);
	if (left) {
		/* The head was written in part, so it is still on the list. */
		TP_ASSERT(c->ohead && c->ohead->done);
		c->ohead->woff += (uint32_t)left; /* NOLINT(clang-analyzer-core.NullDereference) */
		c->writable = false;              /* a short write means the socket buffer is full */
	}
	return sent;
}

unsigned tp_conn_flush(struct tp_conn *c, bool more_input)
{
	bool was_over = tp_conn_over_unsent(c);
	size_t sent = 0;
	unsigned ev = 0;
	int cork = c->env->draining; /* leaving: the last reply and the FIN go in one segment */

	if (c->closed)
		return 0;
	if (cork)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
	while (c->writable && c->ohead && c->ohead->done) {
		ssize_t w = tp_req_write_run(c->fd, c->ohead);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->writable = false;
				break;
			}
			if (errno == EINTR)
				continue;
			char why[96];
			snprintf(why, sizeof(why), "write: %s", strerror(errno));
			return ev | tp_conn_close(c, why);
		}
		ev |= TP_CONN_ACTIVE;
		if (c->env->metrics)
			tp_metrics_add(&c->env->metrics->bytes_out, (uint64_t)w);
		sent += written(c, (size_t)w);
	}
	if (sent)
		atomic_fetch_add_explicit(&c->env->served, sent, memory_order_relaxed);

	/*
	 * Handing over: what was read is answered; what was not goes with it
	 * (framer and socket).  Not first bytes still undecided (a PROXY header
	 * in part): the next instance takes every connection as past them.
	 * tp_conn_shutdown() already lets such a connection end as without
	 * keeping; this is the last guard of that rule.
	 */
	if (tp_conn_kept(c) && !c->eof && c->nreqs == 0 && !more_input) {
		if (c->hdr)
			return ev | tp_conn_close(c, "shutting down: PROXY header not complete");
		if (cork) /* the next instance must not find it corked */
			(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &(int){0}, sizeof(int));
		return ev | TP_CONN_HANDOFF;
	}
	if ((c->eof || c->env->shutting_down) && c->nreqs == 0 && !c->framer.stopped && !c->grace &&
	    !more_input) {
		if (c->eof || c->told > TP_CONN_TOLD_READS ||
		    recv(c->fd, &(char){0}, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
			return ev | tp_conn_close(c, c->eof ? "client closed" : "shutting down");
		c->readable = true; /* input came after the last read: read it, a close would reset */
		return ev | TP_CONN_READ;
	}
	if (c->env->draining && sent && c->nreqs == 0 && c->framer.len == 0 && !c->framer.stopped &&
	    !more_input && recv(c->fd, &(char){0}, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN)
		return ev | tp_conn_close(c, "leaving: closed between requests");
	if (cork) /* not closed: uncorking sends what waits */
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &(int){0}, sizeof(int));
	/* Draining below the bound lets reading go on. */
	if (was_over && !tp_conn_over_unsent(c) && tp_conn_can_read(c))
		ev |= TP_CONN_READ;
	return ev;
}

void tp_conn_waiting(struct tp_conn *c, struct tp_req *r)
{
	r->waiting = true;
	c->nwaiting++;
}

unsigned tp_conn_admitted(struct tp_conn *c, struct tp_req *r)
{
	if (!r->waiting)
		return 0;
	r->waiting = false;
	TP_ASSERT(c->nwaiting > 0);
	return --c->nwaiting == 0 && tp_conn_can_read(c) ? TP_CONN_READ : 0;
}

unsigned tp_conn_limits_changed(struct tp_conn *c)
{
	/*
	 * Paused past the old max_unsent_kib, it may read under the new one; no
	 * socket edge would say so when the client has sent everything.
	 */
	return tp_conn_can_read(c) ? TP_CONN_READ : 0;
}
