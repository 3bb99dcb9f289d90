/* SPDX-License-Identifier: MIT */
/*
 * dispatch: run requests on workers and post them back to their loops.
 */
#include "dispatch.h"

#include "clock.h"
#include "conn.h"
#include "loop.h"
#include "ops.h"
#include "pool.h"
#include "req.h"

/* Post a run of finished requests, stamped with one end time for the metrics. */
static uint32_t post_run(struct tp_loop *l, struct tp_req *first, struct tp_req *last, size_t n)
{
	uint32_t now_us = tp_req_us(tp_clock_ns());

	for (struct tp_req *r = first; r; r = r->dnext)
		r->end_us = now_us;
	tp_loop_post_done(l, first, last, n);
	return now_us;
}

/* When r's line was read, on CLOCK_MONOTONIC (its stamp is in wrapping microseconds). */
static uint64_t accepted_ns(const struct tp_req *r)
{
	uint64_t now_ns = tp_clock_ns();
	return now_ns - (uint64_t)(uint32_t)(tp_req_us(now_ns) - r->arrival_us) * 1000;
}

/* r was popped but is answered without running: an expensive one's cost goes back to its flow. */
static void unrun(struct tp_dispatch *d, struct tp_req *r)
{
	if (d->queue && !r->qnode.batchable) /* a cheap one's cost is within the floor's noise */
		tp_queue_refund(d->queue, &r->conn->flow, &r->qnode);
}

void tp_dispatch_exec(struct tp_qnode **nodes, size_t n, void *ctx)
{
	struct tp_dispatch *d = ctx;
	struct tp_req *first = NULL, *last = NULL;
	struct tp_loop *cur = NULL;
	size_t cnt = 0;
	uint32_t start_us = tp_req_us(tp_clock_ns());
	/* pool.max_wait_ms in the requests' microsecond stamps (it is far below their wrap). */
	uint32_t max_wait_us = (uint32_t)(atomic_load_explicit(&d->max_wait_ns, memory_order_relaxed) / 1000);

	for (size_t i = 0; i < n; i++) {
		struct tp_req *r = tp_req_of(nodes[i]);
		struct tp_loop *l = r->conn->loop;

		if (l != cur && cnt) {
			start_us = post_run(cur, first, last, cnt);
			first = NULL;
			cnt = 0;
		}
		r->start_us = start_us;
		r->ran = true;
		if (tp_conn_is_gone(r->conn)) {
			/* Nobody will read the reply: do not sleep for a client that left. */
			r->status = TP_PROTO_OK;
			r->len = 0;
			unrun(d, r);
		} else if (max_wait_us && (uint32_t)(start_us - r->arrival_us) > max_wait_us) {
			/* Its client has most likely given up: do not spend a worker on it. */
			tp_req_fail(r, TP_PROTO_BUSY);
			r->late = true; /* counted as the reply is written (metrics.h) */
			unrun(d, r);
		} else {
			if (!r->qnode.batchable) /* long work: the stall budget it was accepted under */
				tp_pool_stall_accepted_at(d->pool, accepted_ns(r));
			tp_ops_run(r, d->pool);
		}
		cur = l;
		r->dnext = NULL;
		if (first)
			last->dnext = r;
		else
			first = r;
		last = r;
		cnt++;
	}
	if (cnt)
		(void)post_run(cur, first, last, cnt);
}

void tp_dispatch_admit(struct tp_qnode *node, void *ctx)
{
	struct tp_req *r = tp_req_of(node);
	(void)ctx;
	r->wait_end_us = tp_req_us(tp_clock_ns());
	r->waited = true;
	tp_loop_post_admit(r->conn->loop, r);
}

/*
 * Post the requests linked through next from n back to their loops, with
 * status.  Through the mailbox, not at once: an admission notice of one of
 * them may still be in it, and is handled before any completion.
 */
static size_t post_unrun(struct tp_qnode *n, enum tp_proto_status status)
{
	size_t lines = 0;

	while (n) {
		struct tp_qnode *next = n->next;
		struct tp_req *r = tp_req_of(n);
		tp_req_fail(r, status);
		lines += tp_req_lines(r);
		tp_loop_post_done(r->conn->loop, r, r, 1);
		n = next;
	}
	return lines;
}

size_t tp_dispatch_cancel_flow(struct tp_queue *q, struct tp_conn *c)
{
	struct tp_qnode *n;
	(void)tp_queue_take_flow(q, &c->flow, &n);

	/* Never written (the connection is closed); an error status, so it counts as no success. */
	return post_unrun(n, TP_PROTO_SHUTDOWN);
}

size_t tp_dispatch_cancel_all(struct tp_queue *q)
{
	struct tp_qnode *n;

	(void)tp_queue_take_all(q, &n);
	return post_unrun(n, TP_PROTO_SHUTDOWN);
}
