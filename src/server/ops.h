/* SPDX-License-Identifier: MIT */
/*
 * ops: what each request does on a worker thread.  Pure: it knows nothing
 * of connections or loops.  Runs on a worker; owns the request for the
 * duration of the call and fills its reply.
 */
#ifndef TP_OPS_H
#define TP_OPS_H

#include "req.h"

struct tp_pool;

/*
 * Execute r and leave its reply in r->buf / r->len with r->status set.
 * SLEEP sleeps interruptibly on the pool (a shutdown past its deadline cuts
 * it short with ERR server shutting down).  Never fails otherwise.
 */
void tp_ops_run(struct tp_req *r, struct tp_pool *pool);

#endif
