/* SPDX-License-Identifier: MIT */
/*
 * gate: threads created at start wait here until the start is known to
 * have succeeded as a whole (tp_gate_open: they run) or not
 * (tp_gate_close: they return without doing anything), so that a thread
 * that cannot be created leaves nothing half started.
 */
#ifndef TP_GATE_H
#define TP_GATE_H

#include <pthread.h>
#include <stdbool.h>

struct tp_gate {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int state; /* 0 shut, 1 open, -1 closed for good */
};

/* A shut gate; release it once no thread can be waiting at it. */
void tp_gate_init(struct tp_gate *g);
void tp_gate_release(struct tp_gate *g);
/* Any thread: block until the gate is opened (true) or closed for good (false). */
bool tp_gate_wait(struct tp_gate *g);
/* The starting thread: let every waiter (and later comer) run, or return at once for good. */
void tp_gate_open(struct tp_gate *g);
void tp_gate_close(struct tp_gate *g);

#endif
