/* SPDX-License-Identifier: MIT */
/*
 * ops: SLEEP and ECHO.
 */
#include "ops.h"

#include "pool.h"
#include "proto.h"

void tp_ops_run(struct tp_req *r, struct tp_pool *pool)
{
	switch ((enum tp_op)r->op) {
	case TP_OP_ECHO:
		/* The text was copied to buf + 3 when the line was parsed. */
		r->len = (uint32_t)tp_proto_format_echo(r->buf + 3, r->len, r->buf);
		r->status = TP_PROTO_OK;
		break;
	case TP_OP_SLEEP:
		if (r->sleep_ms > 0 && tp_pool_sleep_ms(pool, r->sleep_ms) < 0) {
			tp_req_fail(r, TP_PROTO_SHUTDOWN);
			break;
		}
		r->status = TP_PROTO_OK;
		r->len = (uint32_t)tp_proto_format_sleep(r->sleep_ms, r->buf);
		break;
	}
}
