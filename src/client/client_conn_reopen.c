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

struct tp_client_conn *tp_client_conn_next_broken(struct tp_client_ctx *ctx)
{
	struct tp_client_conn *c = ctx->broken;

	if (c) {
		ctx->broken = c->next_broken;
		c->next_broken = NULL;
	}
	return c;
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
	stats_of(c, now_measured(c->ctx))->counts.reconnects++;
	c->last_progress_ns = c->ctx->now_ns;
	tp_client_conn_pump(c);
	return 0;
}

void tp_client_conn_give_up(struct tp_client_conn *c)
{
	if (!c->broken)
		return;
	c->broken = false;
	stats_of(c, now_measured(c->ctx))->counts.disconnects++;
	tp_client_conn_drop_retries(c);
	c->ctx->open--;
}
