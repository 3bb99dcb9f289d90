/* SPDX-License-Identifier: MIT */
/*
 * client_conn_priv: what client_conn.c and client_conn_reopen.c share of a
 * connection: its fields and a few helpers.  Not for the rest of tpclient.
 */
#ifndef TP_CLIENT_CONN_PRIV_H
#define TP_CLIENT_CONN_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "client_ctx.h"
#include "client_window.h"
#include "framer.h"

struct tp_client_conn {
	struct tp_client_ctx *ctx;
	struct tp_client_gctx *g; /* its group's share of ctx */
	unsigned index;           /* over all groups: logs and the request generator */
	unsigned gindex;          /* in its group: the open-loop schedule and its source address */
	bool broken;              /* closed by the server, waiting in ctx->broken to be reopened */
	struct tp_client_conn *next_broken;
	bool answered;      /* an OK reply came since it was last (re)opened */
	int64_t backoff_ns; /* --reconnect: the last wait before a redial (0: none since an OK) */
	int64_t redial_ns;  /* --reconnect: while broken, when to dial again */
	int64_t broke_ns;   /* --reconnect: when the server closed it (redials that fail keep it) */
	int fd;             /* -1 once closed */
	bool want_out;
	uint64_t rng;
	uint64_t issued;          /* requests drawn: the open-loop schedule's round */
	uint64_t counted;         /* of those, sent after --warmup: what --requests bounds */
	uint64_t replies;         /* lines read */
	int64_t last_progress_ns; /* last reply, or when the window last left empty */
	struct tp_framer framer;
	struct tp_client_window win;   /* outstanding requests: max-inflight entries */
	struct tp_client_window retry; /* --retry-busy: refused, waiting; each holds a slot of the window */
	char *out;                     /* unsent requests: out[out_off..out_len) */
	size_t out_off, out_len;
};

enum close_why { CLOSE_DONE, CLOSE_TIMEOUT, CLOSE_BROKEN, CLOSE_ABORT };

/* Where what happens counts: the totals, or (during --warmup) apart from them. */
static inline struct tp_client_stats *stats_of(struct tp_client_conn *c, bool measured)
{
	return measured ? &c->g->stats : &c->g->warm;
}

/* Does what happens now count in the totals (--warmup is over)? */
static inline bool now_measured(const struct tp_client_ctx *ctx)
{
	return ctx->now_ns >= ctx->warm_end_ns;
}

/* Is there another request to issue? *ret_start: when it counts from. */
bool tp_client_conn_more_to_send(const struct tp_client_conn *c, int64_t *ret_start);

/*
 * --reconnect: c, closed by the server with requests still to send (the
 * next one counting from next_ns), waits in ctx->broken until its redial
 * time: at once after an OK reply, else after a backoff that doubles from
 * one break to the next, and in the open loop not before next_ns; never
 * past the run's end.
 */
void tp_client_conn_wait(struct tp_client_conn *c, int64_t next_ns);

/* Take over the connected socket fd: non-blocking, in the epoll set. Returns 0 or -errno. */
int tp_client_conn_attach(struct tp_client_conn *c, int fd);

/* --retry-busy: give up the refused requests still waiting (counted in gave_up). */
void tp_client_conn_drop_retries(struct tp_client_conn *c);

#endif
