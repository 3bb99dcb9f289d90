/* SPDX-License-Identifier: MIT */
/*
 * client_conn: one connection of tpclient.  See client_conn.h; the design
 * notes for the whole engine are at the top of client_load.c.
 */
#include "client_conn.h"
#include "client_conn_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_failure.h"
#include "client_gen.h"
#include "client_req.h"
#include "client_window.h"
#include "clock.h"
#include "framer.h"
#include "log.h"
#include "verify.h"

#define LATE_NS 1000000LL /* open loop: a send this far behind schedule counts as late */

int tp_client_conn_attach(struct tp_client_conn *c, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    epoll_ctl(c->ctx->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	c->fd = fd;
	c->want_out = false;
	return 0;
}

int tp_client_conn_new(struct tp_client_ctx *ctx, unsigned group, unsigned index, unsigned gindex, int fd,
                       struct tp_client_conn **ret)
{
	struct tp_client_conn *c = calloc(1, sizeof(*c));
	uint64_t x = index;
	int r;

	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
	c->g = &ctx->groups[group];
	c->index = index;
	c->gindex = gindex;
	c->fd = -1;
	/* Mixing the client number through the generator decorrelates neighbouring clients. */
	c->rng = ctx->seed ^ tp_client_gen_next(&x);
	tp_framer_init(&c->framer, c->g->max_request + 64); /* error replies are short; 64 is ample */
	c->out = malloc(c->g->out_cap);
	if (tp_client_window_init(&c->win, c->g->group->max_inflight) < 0 || !c->out ||
	    (ctx->retry_delay_ns && tp_client_window_init(&c->retry, c->g->group->max_inflight) < 0)) {
		r = -ENOMEM;
		goto fail;
	}
	if (fd >= 0) {
		r = tp_client_conn_attach(c, fd);
		if (r < 0)
			goto fail;
		ctx->open++;
	}
	*ret = c;
	return 0;
fail:
	tp_client_conn_free(c);
	return r;
}

int64_t tp_client_conn_due_ns(const struct tp_client_conn *c, uint64_t k)
{
	const struct tp_client_gctx *g = c->g;
	double due = (double)c->ctx->start_ns +
	             ((double)c->gindex + (double)k * (double)g->group->clients) * g->tick_ns;

	/* A tiny --rate puts far requests past what int64_t holds: never, not overdue. */
	return due < 0x1p62 ? (int64_t)due : INT64_MAX;
}

bool tp_client_conn_done(const struct tp_client_conn *c)
{
	const struct tp_client_group *group = c->g->group;

	return c->fd < 0 || (group->requests && c->counted >= group->requests);
}

/* Past --duration (or stopping): nothing more is sent, retries included. */
static bool issuing_over(const struct tp_client_ctx *ctx)
{
	return ctx->stopping || (ctx->end_ns && ctx->now_ns >= ctx->end_ns);
}

bool tp_client_conn_more_to_send(const struct tp_client_conn *c, int64_t *ret_start)
{
	const struct tp_client_ctx *ctx = c->ctx;
	const struct tp_client_group *group = c->g->group;

	if (ctx->stopping || (group->requests && c->counted >= group->requests))
		return false;
	*ret_start = c->g->tick_ns > 0 ? tp_client_conn_due_ns(c, c->issued) : ctx->now_ns;
	return !ctx->end_ns || *ret_start < ctx->end_ns;
}

/* A connection the server broke: news, unless --reconnect says it is expected (the report counts it). */
static enum tp_log_level closed_level(const struct tp_client_conn *c)
{
	return c->ctx->opts->reconnect ? TP_LOG_INFO : TP_LOG_WARNING;
}

/* The requests outstanding on c get no reply: timeouts (timeout) or lost. Returns how many count in
 * the totals (not in the --warmup). */
static unsigned count_unanswered(struct tp_client_conn *c, bool timeout)
{
	unsigned measured = 0;

	for (unsigned i = 0; i < c->win.count; i++) {
		const struct tp_client_req *p = tp_client_window_at(&c->win, i);
		tp_client_stats_unanswered(stats_of(c, p->measured), (enum tp_op)p->op, timeout);
		measured += p->measured;
	}
	return measured;
}

/* --retry-busy: the refused requests that will not be sent again, given up. */
void tp_client_conn_drop_retries(struct tp_client_conn *c)
{
	while (c->retry.count > 0) {
		struct tp_client_req req = tp_client_window_pop(&c->retry);
		tp_client_stats_gave_up(stats_of(c, req.measured), (enum tp_op)req.op);
	}
}

static void close_conn(struct tp_client_conn *c, enum close_why why)
{
	struct tp_client_ctx *ctx = c->ctx;
	int64_t start;

	if (c->fd < 0)
		return;
	switch (why) {
	case CLOSE_DONE:
		break;
	case CLOSE_TIMEOUT:
		/* Its client stops: when only --warmup requests timed out, the totals count it a
		 * disconnect, so a run whose clients all ended in the warmup does not pass. */
		if (count_unanswered(c, true) == 0)
			c->g->stats.counts.disconnects++;
		break;
	case CLOSE_BROKEN:
		count_unanswered(c, false);
		/* --reconnect: the worker reopens it (and counts a reconnect or the disconnect). */
		if (ctx->opts->reconnect && tp_client_conn_more_to_send(c, &start)) {
			tp_client_conn_wait(c, start);
			ctx->open++; /* still in the run, while it waits */
			break;
		}
		c->g->stats.counts.disconnects++; /* in the totals even during --warmup, as above */
		break;
	case CLOSE_ABORT:
		count_unanswered(c, false);
		break;
	}
	tp_client_window_clear(&c->win);
	if (!c->broken)
		tp_client_conn_drop_retries(c); /* a connection to reopen sends them then */
	c->out_off = c->out_len = 0;
	close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	tp_framer_release(&c->framer);
	ctx->open--;
}

void tp_client_conn_free(struct tp_client_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		close(c->fd);
		c->ctx->open--;
	}
	tp_framer_release(&c->framer);
	tp_client_window_release(&c->win);
	tp_client_window_release(&c->retry);
	free(c->out);
	free(c);
}

static void append_request(struct tp_client_conn *c, int64_t start_ns)
{
	struct tp_client_ctx *ctx = c->ctx;
	struct tp_client_gctx *g = c->g;
	bool was_empty = c->win.count == 0;
	struct tp_client_req *p = tp_client_window_push(&c->win);

	tp_client_req_draw(g->group, &c->rng, p);
	p->start_ns = start_ns;
	p->measured = start_ns >= ctx->warm_end_ns;
	/* The loop in pump() left max_request bytes free: always enough. */
	c->out_len += tp_client_req_write(p, c->out + c->out_len, g->max_request);
	if (was_empty)
		c->last_progress_ns = ctx->now_ns; /* the receive timeout counts from here */
	c->issued++;
	c->counted += p->measured;
	tp_client_stats_sent(stats_of(c, p->measured), (enum tp_op)p->op,
	                     g->tick_ns > 0 && ctx->now_ns - start_ns >= LATE_NS);
}

static void set_want_out(struct tp_client_conn *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = c};

	if (c->want_out == on)
		return;
	if (epoll_ctl(c->ctx->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		tp_log(TP_LOG_ERROR, "epoll", "client %u: epoll_ctl(): %s", c->index, strerror(errno));
	c->want_out = on;
}

/* Write what is buffered. Returns 0 (all written, or the rest waits for EPOLLOUT) or -errno. */
static int flush(struct tp_client_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n >= 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			set_want_out(c, true);
			return 0;
		}
		return -errno;
	}
	c->out_off = c->out_len = 0;
	set_want_out(c, false);
	return 0;
}

/* --retry-busy: send the refused requests whose delay is over, oldest first, before any new one. */
static void append_retries(struct tp_client_conn *c)
{
	struct tp_client_ctx *ctx = c->ctx;

	if (issuing_over(ctx))
		tp_client_conn_drop_retries(c);
	while (tp_client_window_due(&c->retry, ctx->now_ns) &&
	       c->out_len + c->g->max_request <= c->g->out_cap) {
		struct tp_client_req *p = tp_client_window_push(&c->win);
		*p = tp_client_window_pop(&c->retry);
		if (c->win.count == 1)
			c->last_progress_ns = ctx->now_ns;
		c->out_len += tp_client_req_write(p, c->out + c->out_len, c->g->max_request);
		tp_client_stats_retried(stats_of(c, p->measured), (enum tp_op)p->op);
	}
	if (c->retry.count > 0) {
		int64_t due = tp_client_window_at(&c->retry, 0)->due_ns;
		if (!ctx->retry_wake_ns || due < ctx->retry_wake_ns)
			ctx->retry_wake_ns = due;
	}
}

void tp_client_conn_pump(struct tp_client_conn *c)
{
	struct tp_client_ctx *ctx = c->ctx;
	size_t before;
	int64_t start = 0;
	bool more;

	if (c->fd < 0)
		return;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	before = c->out_len;
	append_retries(c);
	while ((more = tp_client_conn_more_to_send(c, &start)) && start <= ctx->now_ns &&
	       c->win.count + c->retry.count < c->g->group->max_inflight &&
	       c->out_len + c->g->max_request <= c->g->out_cap)
		append_request(c, start);

	/* With EPOLLOUT armed the socket is full: the writable event sends the batch. */
	if (c->out_len > before && !c->want_out) {
		int r = flush(c);
		if (r < 0) {
			tp_log(closed_level(c), "send", "client %u: send(): %s", c->index, strerror(-r));
			close_conn(c, CLOSE_BROKEN);
			return;
		}
	}
	if (!more && c->win.count == 0 && c->retry.count == 0 && c->out_len == 0)
		close_conn(c, CLOSE_DONE);
}

void tp_client_conn_begin(struct tp_client_conn *c)
{
	c->last_progress_ns = c->ctx->now_ns;
	if (c->g->tick_ns == 0)
		tp_client_conn_pump(c);
}

/* tp_framer callback: one reply line, checked against the oldest outstanding request. */
static int on_reply(void *arg, const char *line, size_t len, bool too_long)
{
	struct tp_client_conn *c = arg;
	struct tp_client_ctx *ctx = c->ctx;
	enum tp_verify_result r = TP_VERIFY_MISMATCH;
	struct tp_client_req req;
	uint64_t latency_ns;

	c->replies++;
	if (c->win.count == 0) {
		tp_client_stats_unasked(stats_of(c, now_measured(ctx)), line, len, too_long);
		tp_client_failure_log(&ctx->failures_logged, c->index, NULL, r, too_long ? NULL : line, len);
		return 0;
	}
	req = tp_client_window_pop(&c->win);
	if (!too_long)
		r = tp_client_req_check(&req, ctx->text, line, len);
	latency_ns = ctx->now_ns > req.start_ns ? (uint64_t)(ctx->now_ns - req.start_ns) : 0;
	tp_client_stats_reply(stats_of(c, req.measured), (enum tp_op)req.op, r, latency_ns);
	if (r == TP_VERIFY_BUSY && ctx->retry_delay_ns &&
	    (issuing_over(ctx) || !tp_client_window_defer(&c->retry, &req, ctx->now_ns + ctx->retry_delay_ns,
	                                                  ctx->opts->retry_budget)))
		tp_client_stats_gave_up(stats_of(c, req.measured), (enum tp_op)req.op);
	c->answered |= r == TP_VERIFY_OK;
	if (r == TP_VERIFY_OK && ctx->recent)
		tp_hist_record(ctx->recent, latency_ns);
	if (r != TP_VERIFY_OK)
		tp_client_failure_log(&ctx->failures_logged, c->index, &req, r, too_long ? NULL : line, len);
	return 0;
}

/* peer_closed (the FIN came, more to send): read on to the EOF first, as to a host that left. */
static void on_readable(struct tp_client_conn *c, bool peer_closed)
{
	struct tp_client_ctx *ctx = c->ctx;

	/* A few reads at most, so one fast connection cannot starve the others. */
	for (int i = 0; i < 4; i++) {
		ssize_t n = read(c->fd, ctx->rbuf, ctx->rbuf_size);
		if (n > 0) {
			uint64_t before = c->replies;
			ctx->now_ns = (int64_t)tp_clock_ns();
			if (tp_framer_feed(&c->framer, ctx->rbuf, (size_t)n, on_reply, c) < 0) {
				tp_log(TP_LOG_ERROR, "reply", "client %u: out of memory framing replies",
				       c->index);
				close_conn(c, CLOSE_BROKEN);
				return;
			}
			if (c->replies != before)
				c->last_progress_ns = ctx->now_ns;
			if ((size_t)n < ctx->rbuf_size && !peer_closed)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0)
			tp_log(c->win.count           ? closed_level(c)
			       : ctx->opts->reconnect ? TP_LOG_INFO
			                              : TP_LOG_NOTICE,
			       "closed",
			       "client %u: server closed the connection with %u requests outstanding",
			       c->index, c->win.count);
		else
			tp_log(closed_level(c), "closed", "client %u: read(): %s", c->index, strerror(errno));
		close_conn(c, CLOSE_BROKEN);
		return;
	}
	char b; /* --reconnect: a server that closed right after its reply must not get the next request */
	int64_t start;
	if (ctx->opts->reconnect && c->win.count == 0 && tp_client_conn_more_to_send(c, &start) &&
	    recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
		close_conn(c, CLOSE_BROKEN);
		return;
	}
	tp_client_conn_pump(c);
}

void tp_client_conn_event(struct tp_client_conn *c, uint32_t events)
{
	if (c->fd >= 0 && (events & EPOLLOUT)) {
		int r = flush(c);
		if (r < 0) {
			tp_log(closed_level(c), "send", "client %u: send(): %s", c->index, strerror(-r));
			close_conn(c, CLOSE_BROKEN);
		}
	}
	if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
		on_readable(c, (events & (EPOLLRDHUP | EPOLLHUP)) &&
		                       tp_client_conn_more_to_send(c, &(int64_t){0}));
	else if (c->fd >= 0 && (events & EPOLLOUT))
		tp_client_conn_pump(c); /* room in the socket again: send what waited */
}

void tp_client_conn_sweep(struct tp_client_conn *c)
{
	struct tp_client_ctx *ctx = c->ctx;

	if (c->fd < 0)
		return;
	if (c->win.count > 0 && ctx->now_ns - c->last_progress_ns >= ctx->recv_timeout_ns) {
		tp_log(TP_LOG_WARNING, "timeout",
		       "client %u: no reply for %.3f s, %u requests outstanding; closing", c->index,
		       (double)(ctx->now_ns - c->last_progress_ns) / 1e9, c->win.count);
		close_conn(c, CLOSE_TIMEOUT);
		return;
	}
	/* An idle connection may have become due (open loop) or done (end, stop); busy ones are
	 * pumped on reads. */
	if (c->win.count == 0 || c->retry.count > 0)
		tp_client_conn_pump(c);
}

void tp_client_conn_abort(struct tp_client_conn *c)
{
	if (c->broken) {
		/* Waiting to be reopened: what it had outstanding is already counted lost. */
		c->broken = false;
		tp_client_conn_drop_retries(c);
		c->ctx->open--;
		return;
	}
	close_conn(c, CLOSE_ABORT);
}
