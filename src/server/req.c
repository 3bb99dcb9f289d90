/* SPDX-License-Identifier: MIT */
/*
 * req: allocation of requests, with a loop's cache of small slots.
 */
#include "req.h"

#include <stdlib.h>

struct tp_req *tp_req_alloc(struct tp_conn *conn, size_t cap)
{
	struct tp_req *r;

	if (cap < TP_REQ_MIN_CAP)
		cap = TP_REQ_MIN_CAP;
	r = malloc(sizeof(*r) + cap);
	if (!r)
		return NULL;
	tp_req_zero(r);
	r->conn = conn;
	r->cap = (uint32_t)cap;
	return r;
}

void tp_req_cache_clear(struct tp_req_cache *cache)
{
	while (cache->head) {
		struct tp_req *r = cache->head;
		cache->head = r->bnext;
		free(r);
	}
	cache->n = 0;
}
