/* SPDX-License-Identifier: MIT */
/*
 * ops: SLEEP (ECHO is inline in ops.h).
 */
#include "ops.h"

#include "pool.h"
#include "proto.h"

void tp_ops_sleep(struct tp_req *r, struct tp_pool *pool)
{
	if (r->sleep_ms > 0 && tp_pool_sleep_ms(pool, r->sleep_ms) < 0) {
		tp_req_fail(r, TP_PROTO_SHUTDOWN);
		return;
	}
	r->status = TP_PROTO_OK;
	r->len = (uint32_t)tp_proto_format_sleep(r->sleep_ms, r->buf);
}
