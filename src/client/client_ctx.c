/* SPDX-License-Identifier: MIT */
/*
 * client_ctx: a worker's shared state for its connections.  See client_ctx.h.
 */
#include "client_ctx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_gen.h"

#define RBUF_SIZE (256 * 1024)
#define OUT_CAP_MAX (64 * 1024) /* one batch; larger windows are written in several */

/* Size one group's share of a worker. Returns 0 or -ENOMEM. */
static int gctx_init(struct tp_client_gctx *g, const struct tp_client_group *group)
{
	g->group = group;
	g->tick_ns = group->rate > 0 ? 1e9 / group->rate : 0;
	/* Room for "ECHO " + text + "\n", and for "SLEEP 4294967295\n" with snprintf's NUL. */
	g->max_request = (size_t)group->echo_hi + 24;
	g->out_cap = (size_t)group->max_inflight * g->max_request;
	if (g->out_cap > OUT_CAP_MAX)
		g->out_cap = g->max_request > OUT_CAP_MAX ? g->max_request : OUT_CAP_MAX;
	bool ops[TP_OP_COUNT] = {false};
	ops[TP_OP_SLEEP] = group->mix != TP_MIX_ECHO;
	ops[TP_OP_ECHO] = group->mix != TP_MIX_SLEEP;
	return tp_client_stats_init(&g->stats, ops, false);
}

int tp_client_ctx_init(struct tp_client_ctx *ctx, const struct tp_client_opts *opts, uint64_t seed, int epfd,
                       bool sample)
{
	uint32_t echo_max = 0;
	int r = 0;

	tp_client_gen_init();
	memset(ctx, 0, sizeof(*ctx));
	ctx->opts = opts;
	ctx->seed = seed;
	ctx->epfd = epfd;
	ctx->recv_timeout_ns = (int64_t)(opts->recv_timeout_s * 1e9);
	ctx->retry_delay_ns = (int64_t)(opts->retry_delay_s * 1e9);
	for (unsigned i = 0; i < opts->ngroups && r == 0; i++) {
		r = gctx_init(&ctx->groups[i], &opts->groups[i]);
		if (opts->groups[i].echo_hi > echo_max)
			echo_max = opts->groups[i].echo_hi;
	}
	ctx->rbuf_size = RBUF_SIZE;
	ctx->rbuf = malloc(ctx->rbuf_size);
	ctx->text = malloc((size_t)echo_max + 1);
	if (sample && !(ctx->recent = tp_hist_new()))
		r = -ENOMEM;
	if (r < 0 || !ctx->rbuf || !ctx->text) {
		tp_client_ctx_release(ctx);
		return -ENOMEM;
	}
	return 0;
}

void tp_client_ctx_start(struct tp_client_ctx *ctx, int64_t start_ns)
{
	ctx->start_ns = start_ns;
	ctx->warm_end_ns = start_ns + (int64_t)(ctx->opts->warmup_s * 1e9);
	ctx->end_ns =
	        ctx->opts->duration_s > 0 ? ctx->warm_end_ns + (int64_t)(ctx->opts->duration_s * 1e9) : 0;
}

void tp_client_ctx_release(struct tp_client_ctx *ctx)
{
	free(ctx->rbuf);
	free(ctx->text);
	ctx->rbuf = ctx->text = NULL;
	tp_hist_free(ctx->recent);
	ctx->recent = NULL;
	for (unsigned i = 0; i < TP_CLIENT_MAX_GROUPS; i++) {
		tp_client_stats_release(&ctx->groups[i].stats);
		tp_client_stats_release(&ctx->groups[i].warm);
	}
}
