/* SPDX-License-Identifier: MIT */
/*
 * client_conn_reopen: a connection the server broke (--reconnect): the
 * list it waits on, the address to dial again from, reopening it on a new
 * socket or giving it up.  See client_conn.h.
 */
#include "client_conn.h"
#include "client_conn_priv.h"

#include <errno.h>
#include <stddef.h>

#include "client_window.h"

#define BACKOFF_MIN_NS (10 * 1000000LL) /* the first wait after a break with no OK reply */
#define BACKOFF_MAX_NS 1000000000LL     /* the longest */

/* In ctx->broken, waking the worker at its redial time. */
static void queue(struct tp_client_conn *c)
{
	struct tp_client_ctx *ctx = c->ctx;

	c->next_broken = ctx->broken;
	ctx->broken = c;
	if (!ctx->redial_wake_ns || c->redial_ns < ctx->redial_wake_ns)
		ctx->redial_wake_ns = c->redial_ns;
}

void tp_client_conn_wait(struct tp_client_conn *c, int64_t next_ns)
{
	struct tp_client_ctx *ctx = c->ctx;
	int64_t at = ctx->now_ns;

	/* A server that refuses at once would otherwise be redialled as fast as it answers. */
	if (c->answered)
		c->backoff_ns = 0;
	else
		c->backoff_ns = !c->backoff_ns                        ? BACKOFF_MIN_NS
		                : c->backoff_ns >= BACKOFF_MAX_NS / 2 ? BACKOFF_MAX_NS
		                                                      : 2 * c->backoff_ns;
	if (!c->broken)
		c->broke_ns = at;
	at += c->backoff_ns;
	if (c->retry.count > 0 && tp_client_window_at(&c->retry, 0)->due_ns < next_ns)
		next_ns = tp_client_window_at(&c->retry, 0)->due_ns;
	if (c->g->tick_ns > 0 && next_ns > at)
		at = next_ns; /* open loop: nothing to send before then */
	if (ctx->end_ns && at > ctx->end_ns)
		at = ctx->end_ns;
	c->broken = true;
	c->redial_ns = at;
	queue(c);
}

/* Closed for good while it waited: given up, or the run ended or is stopping. */
static void release(struct tp_client_conn *c)
{
	c->broken = false;
	tp_client_conn_drop_retries(c);
	c->ctx->open--;
}

struct tp_client_conn *tp_client_conn_next_broken(struct tp_client_ctx *ctx)
{
	struct tp_client_conn *c;
	int64_t start;

	/* A round looks at each waiting connection once; one that breaks again waits for the next. */
	if (!ctx->redialing) {
		if (!ctx->broken || (ctx->now_ns < ctx->redial_wake_ns && !ctx->stopping))
			return NULL;
		ctx->redialing = ctx->broken;
		ctx->broken = NULL;
		ctx->redial_wake_ns = 0;
	}
	while ((c = ctx->redialing)) {
		ctx->redialing = c->next_broken;
		c->next_broken = NULL;
		if (!tp_client_conn_more_to_send(c, &start))
			release(c);
		else if (c->redial_ns <= ctx->now_ns)
			return c;
		else
			queue(c);
	}
	return NULL;
}

const struct tp_client_source *tp_client_conn_source(const struct tp_client_conn *c)
{
	const struct tp_client_group *g = c->g->group;

	return g->nsources ? &g->sources[c->gindex % g->nsources] : NULL;
}

unsigned tp_client_conn_index(const struct tp_client_conn *c)
{
	return c->index;
}

int tp_client_conn_reopen(struct tp_client_conn *c, int fd)
{
	int r;

	if (!c->broken)
		return -EINVAL;
	tp_framer_init(&c->framer, c->g->max_request + 64);
	r = tp_client_conn_attach(c, fd);
	if (r < 0)
		return r;
	c->broken = false;
	c->answered = false;
	stats_of(c, now_measured(c->ctx))->counts.reconnects++;
	c->last_progress_ns = c->ctx->now_ns;
	tp_client_conn_pump(c);
	return 0;
}

bool tp_client_conn_redial_failed(struct tp_client_conn *c)
{
	struct tp_client_ctx *ctx = c->ctx;
	int64_t start;

	if (!c->broken || ctx->now_ns - c->broke_ns >= ctx->recv_timeout_ns ||
	    !tp_client_conn_more_to_send(c, &start))
		return false;
	c->answered = false; /* the backoff grows, as after a close with no OK reply */
	tp_client_conn_wait(c, start);
	return true;
}

void tp_client_conn_give_up(struct tp_client_conn *c)
{
	if (!c->broken)
		return;
	/* In the totals even during --warmup: the client ends here, and the run must say so. */
	c->g->stats.counts.disconnects++;
	release(c);
}
