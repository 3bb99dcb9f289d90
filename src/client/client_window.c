/* SPDX-License-Identifier: MIT */
/*
 * client_window: a connection's outstanding requests.  See client_window.h.
 */
#include "client_window.h"

#include <errno.h>
#include <stdlib.h>

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
