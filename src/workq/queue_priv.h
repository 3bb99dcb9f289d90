/* SPDX-License-Identifier: MIT */
/*
 * queue_priv: the queue's state, shared by queue.c, its cheap lane
 * (queue_lane.c) and its taking out (queue_take.c), and included by
 * nothing else but the model test, which checks the wait list against it
 * (tests/unit/test_queue_model.c; it does not include queue.h, so that the
 * modules' includes point one way).  Every field is under `lock` unless it says otherwise.
 */
#ifndef TP_QUEUE_PRIV_H
#define TP_QUEUE_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "fairq.h"
#include "spin.h"

struct list {
	struct tp_qnode *head, *tail;
	size_t len;    /* nodes */
	size_t weight; /* the requests they stand for (tp_qnode_weight) */
};

struct tp_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_cond_t cheap_cond; /* cheap-only workers sleep here */
	struct list ready;         /* TP_FAIR_NONE */
	struct list wait;          /* TP_FAIR_NONE */
	struct tp_fairq fq;        /* the fair modes */
	enum tp_fairness mode;
	size_t capacity;                   /* in requests: nodes' weights */
	size_t nidle;                      /* workers blocked in pop */
	size_t nwaking;                    /* signals sent or due that no worker has consumed yet */
	size_t ncheap_idle;                /* cheap-only workers blocked in pop_cheap */
	size_t ncheap_waking;              /* signals on cheap_cond not consumed yet */
	size_t signals_due;                /* signals on cond decided, not sent yet (tp_queue_unlock) */
	size_t cheap_signals_due;          /* the same on cheap_cond */
	_Atomic size_t nexpensive_running; /* workers inside expensive work (tp_queue_running_expensive) */
	bool spinner;                      /* a worker is polling `nready` instead of sleeping */
	struct tp_spin spin;               /* whether polling pays */
	uint64_t long_spins, short_spins;
	uint64_t wait_limit_ns; /* the longest wait from a push (tp_queue_cap_deadlines); UINT64_MAX: none */
	_Atomic size_t nready;  /* admitted weight, readable without the lock */
	bool closed;
	_Atomic uint64_t next_deadline; /* wait list head's deadline, readable without the lock */
	void (*admit)(struct tp_qnode *node, void *ctx); /* queue.h's tp_queue_admit_fn */
	void *admit_ctx;
};

/* now_ns + wait_ns, saturated. */
static inline uint64_t tp_queue_wait_until(uint64_t now_ns, uint64_t wait_ns)
{
	return wait_ns > UINT64_MAX - now_ns ? UINT64_MAX : now_ns + wait_ns;
}

static inline struct tp_qnode *list_shift(struct list *l)
{
	struct tp_qnode *n = l->head;
	if (!n)
		return NULL;
	l->head = n->next;
	if (!l->head)
		l->tail = NULL;
	l->len--;
	l->weight -= tp_qnode_weight(n);
	n->next = NULL;
	return n;
}

static inline void list_append(struct list *l, struct tp_qnode *n)
{
	n->next = NULL;
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	l->len++;
	l->weight += tp_qnode_weight(n);
}

static inline bool fair(const struct tp_queue *q)
{
	return q->mode != TP_FAIR_NONE;
}

static inline struct tp_qnode *oldest_waiter(const struct tp_queue *q)
{
	return fair(q) ? tp_fairq_oldest_waiter(&q->fq) : q->wait.head;
}

/* Admit n (ready) or let it wait, in the discipline's structures. Lock held.  queue.c. */
void tp_queue_add(struct tp_queue *q, struct tp_qnode *n, bool ready);

/* Publish the admitted weight and the wait list head's deadline for lock-free readers. Lock held. */
void tp_queue_publish(struct tp_queue *q);

/*
 * Admit the waiters that fit now (after anything but a pop: an expiry, a
 * flow taken out, a change of capacity or discipline), and wake workers
 * for them.  Lock held.  queue.c.
 */
void tp_queue_admit_and_wake(struct tp_queue *q);

/*
 * After a pop took n nodes (0 too): admit waiters into the places freed,
 * publish, and wake workers for what is left.  queue.c.
 */
void tp_queue_after_pop(struct tp_queue *q, size_t n);

/*
 * Cheap work is queued: wake a cheap-only worker if no general one is idle
 * or spinning while some worker is inside expensive work.  queue_lane.c.
 */
void tp_queue_wake_cheap(struct tp_queue *q);

/*
 * Release the lock, then send the signals decided while it was held
 * (`signals_due`, `cheap_signals_due`; the DESIGN in queue.c says why
 * after).  Every release of the lock goes through here.  queue.c.
 */
void tp_queue_unlock(struct tp_queue *q);

/* The fair queue's clock (groups' debts); CLOCK_MONOTONIC in µs. */
static inline uint64_t tp_queue_now_us(void)
{
	return tp_clock_ns() / 1000;
}

/* The fair queue, empty, in mode, with the queue's clock. */
static inline void tp_queue_fairq_init(struct tp_queue *q, enum tp_fairness mode)
{
	tp_fairq_init(&q->fq, mode);
	q->fq.now_us = tp_queue_now_us;
}

#endif
