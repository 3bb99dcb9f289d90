/* SPDX-License-Identifier: MIT */
/*
 * gate: a one-shot start gate (see gate.h).
 */
#include "gate.h"

void tp_gate_init(struct tp_gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->changed, NULL);
	g->state = 0;
}

void tp_gate_release(struct tp_gate *g)
{
	pthread_cond_destroy(&g->changed);
	pthread_mutex_destroy(&g->lock);
}

bool tp_gate_wait(struct tp_gate *g)
{
	bool open;

	pthread_mutex_lock(&g->lock);
	while (g->state == 0)
		pthread_cond_wait(&g->changed, &g->lock);
	open = g->state > 0;
	pthread_mutex_unlock(&g->lock);
	return open;
}

static void set_state(struct tp_gate *g, int state)
{
	pthread_mutex_lock(&g->lock);
	if (g->state == 0)
		g->state = state; /* the first word is the last */
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

void tp_gate_open(struct tp_gate *g)
{
	set_state(g, 1);
}

void tp_gate_close(struct tp_gate *g)
{
	set_state(g, -1);
}
