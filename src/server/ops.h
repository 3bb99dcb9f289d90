/* SPDX-License-Identifier: MIT */
/*
 * ops: what each request does on a worker thread.  Pure: it knows nothing
 * of connections or loops.  Runs on a worker; owns the request for the
 * duration of the call and fills its reply.
 */
#ifndef TP_OPS_H
#define TP_OPS_H

#include "proto.h"
#include "req.h"

struct tp_pool;

/* SLEEP: tp_ops_run() of a SLEEP request. */
void tp_ops_sleep(struct tp_req *r, struct tp_pool *pool);

/*
 * Execute r and leave its reply in r->buf / r->len with r->status set.
 * SLEEP sleeps interruptibly on the pool (a shutdown past its deadline cuts
 * it short with ERR server shutting down).  Never fails otherwise.  Inline:
 * a worker runs it for every request, and an ECHO is a few stores.
 */
static inline void tp_ops_run(struct tp_req *r, struct tp_pool *pool)
{
	switch ((enum tp_op)r->op) {
	case TP_OP_ECHO:
		/* Its lines were laid down when they were read: each one's "OK " is left. */
		tp_proto_echo_finish(r->buf, r->len);
		r->status = TP_PROTO_OK;
		return;
	case TP_OP_SLEEP:
		tp_ops_sleep(r, pool);
		return;
	}
}

#endif
