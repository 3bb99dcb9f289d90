/* SPDX-License-Identifier: MIT */
/*
 * client_window: a connection's outstanding requests.  See client_window.h.
 */
#include "client_window.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_gen.h"
#include "proto.h"

int tp_client_window_init(struct tp_client_window *w, unsigned cap)
{
	w->ring = malloc(cap * sizeof(*w->ring));
	w->cap = cap;
	w->head = w->count = 0;
	return w->ring ? 0 : -ENOMEM;
}

void tp_client_window_release(struct tp_client_window *w)
{
	free(w->ring);
	w->ring = NULL;
	w->count = 0;
}

struct tp_client_req *tp_client_window_at(const struct tp_client_window *w, unsigned i)
{
	unsigned slot = w->head + i;

	return &w->ring[slot >= w->cap ? slot - w->cap : slot];
}

struct tp_client_req *tp_client_window_push(struct tp_client_window *w)
{
	return tp_client_window_at(w, w->count++);
}

struct tp_client_req tp_client_window_pop(struct tp_client_window *w)
{
	struct tp_client_req req = w->ring[w->head];

	if (++w->head == w->cap)
		w->head = 0;
	w->count--;
	return req;
}

void tp_client_window_clear(struct tp_client_window *w)
{
	w->head = w->count = 0;
}

bool tp_client_window_defer(struct tp_client_window *w, const struct tp_client_req *req, int64_t due_ns,
                            unsigned budget)
{
	struct tp_client_req *p;

	if (req->retries >= budget || w->count == w->cap)
		return false;
	p = tp_client_window_push(w);
	*p = *req;
	p->retries++;
	p->due_ns = due_ns;
	return true;
}

const struct tp_client_req *tp_client_window_due(const struct tp_client_window *w, int64_t now_ns)
{
	return w->count > 0 && w->ring[w->head].due_ns <= now_ns ? &w->ring[w->head] : NULL;
}

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
