/* SPDX-License-Identifier: MIT */
/*
 * client_req: one request drawn, written and checked.  See client_req.h.
 */
#include "client_req.h"

#include <stdio.h>
#include <string.h>

#include "client_gen.h"
#include "proto.h"

void tp_client_req_draw(const struct tp_client_group *g, uint64_t *rng, struct tp_client_req *ret)
{
	uint64_t r_op = tp_client_gen_next(rng), r_arg = tp_client_gen_next(rng);
	bool echo = g->mix == TP_MIX_ECHO || (g->mix == TP_MIX_BALANCED && (r_op >> 63));

	ret->retries = 0;
	if (echo) {
		ret->op = TP_OP_ECHO;
		ret->arg = g->echo_lo + (uint32_t)(r_arg % ((uint64_t)g->echo_hi - g->echo_lo + 1));
		ret->seed = r_op;
	} else {
		ret->op = TP_OP_SLEEP;
		ret->arg =
		        g->sleep_lo_ms + (uint32_t)(r_arg % ((uint64_t)g->sleep_hi_ms - g->sleep_lo_ms + 1));
		ret->seed = 0;
	}
}

size_t tp_client_req_write(const struct tp_client_req *req, char *dst, size_t room)
{
	if (req->op == TP_OP_ECHO) {
		memcpy(dst, "ECHO ", 5);
		tp_client_gen_text(req->seed, dst + 5, req->arg);
		dst[5 + req->arg] = '\n';
		return 6 + (size_t)req->arg;
	}
	return (size_t)snprintf(dst, room, "SLEEP %u\n", req->arg);
}

enum tp_verify_result tp_client_req_check(const struct tp_client_req *req, char *text, const char *line,
                                          size_t len)
{
	struct tp_verify_expect exp = {.op = (enum tp_op)req->op};

	if (req->op == TP_OP_SLEEP) {
		exp.sleep_ms = req->arg;
	} else {
		tp_client_gen_text(req->seed, text, req->arg);
		exp.text = text;
		exp.text_len = req->arg;
	}
	return tp_verify_reply(&exp, line, len);
}
