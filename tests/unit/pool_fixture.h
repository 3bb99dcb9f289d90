/* SPDX-License-Identifier: MIT */
/*
 * pool_fixture: the tasks, the exec callback that runs them, the waits
 * for completions, busy workers and thread counts, and the rig of a queue
 * and a pool the unit tests of pool.c share (header only, so each test
 * still links only the layer it tests).
 */
#ifndef TP_POOL_FIXTURE_H
#define TP_POOL_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool.h"
#include "test_util.h"
#include "queue.h"

#define MS 1000000ull

struct task {
	struct tp_qnode node;
	uint32_t sleep_ms;
	int result;        /* what tp_pool_sleep_ms() returned */
	uint64_t start_ns; /* when exec began on it */
	uint64_t end_ns;
	uint64_t accepted_ns; /* when set: told to the pool (tp_pool_stall_accepted_at) */
	_Atomic int runs;
};

/* The exec callback's context: the pool (for sleeping) and the completion count. */
struct ctx {
	struct tp_pool *pool;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t done;
	size_t max_batch;
};

static inline struct task *task_of(struct tp_qnode *n)
{
	return (struct task *)(void *)((char *)n - offsetof(struct task, node));
}

static inline void exec_tasks(struct tp_qnode **nodes, size_t n, void *arg)
{
	struct ctx *c = arg;

	for (size_t i = 0; i < n; i++) {
		struct task *t = task_of(nodes[i]);
		t->start_ns = tp_clock_ns();
		if (t->accepted_ns)
			tp_pool_stall_accepted_at(c->pool, t->accepted_ns);
		t->result = t->sleep_ms ? tp_pool_sleep_ms(c->pool, t->sleep_ms) : 0;
		t->end_ns = tp_clock_ns();
		atomic_fetch_add(&t->runs, 1);
	}
	pthread_mutex_lock(&c->lock);
	c->done += n;
	if (n > c->max_batch)
		c->max_batch = n;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static inline void ctx_init(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

static inline void ctx_destroy(struct ctx *c)
{
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
}

static inline size_t done_count(struct ctx *c)
{
	pthread_mutex_lock(&c->lock);
	size_t d = c->done;
	pthread_mutex_unlock(&c->lock);
	return d;
}

/* Wait up to timeout_ms for n completions. */
static inline bool wait_done(struct ctx *c, size_t n, unsigned timeout_ms)
{
	struct timespec ts = tp_clock_timespec_after(CLOCK_REALTIME, timeout_ms);
	bool ok;

	pthread_mutex_lock(&c->lock);
	while (c->done < n)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
			break;
	ok = c->done >= n;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* Threads of this process. */
static inline size_t count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Poll (bounded) until the process has want threads. */
static inline void wait_tasks(size_t want, unsigned timeout_ms)
{
	size_t n = count_tasks();
	for (unsigned t = 0; n != want && t < timeout_ms; t += 5) {
		sleep_ms(5);
		n = count_tasks();
	}
	if (n != want)
		fail_msg("%zu threads, want %zu", n, want);
}

static inline struct tp_pool_stats stats(struct tp_pool *p)
{
	struct tp_pool_stats st;
	memset(&st, 0xa5, sizeof(st));
	tp_pool_stats(p, &st);
	return st;
}

/* Poll (bounded) until exactly busy workers are inside exec. */
static inline void wait_busy(struct tp_pool *p, size_t busy)
{
	struct tp_pool_stats st = stats(p);
	for (int i = 0; i < 1000 && st.busy != busy; i++) {
		sleep_ms(5);
		st = stats(p);
	}
	if (st.busy != busy)
		fail_msg("%zu busy, want %zu", st.busy, busy);
}

static inline struct task *tasks_new(size_t n, uint32_t ms)
{
	struct task *t = calloc(n, sizeof(*t));
	assert_non_null(t);
	for (size_t i = 0; i < n; i++) {
		t[i].sleep_ms = ms;
		t[i].node.deadline_ns = UINT64_MAX;
	}
	return t;
}

static inline int push_tasks(struct tp_queue *q, struct task *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		t[i].node.next = i + 1 < n ? &t[i + 1].node : NULL;
	return tp_queue_push(q, &t[0].node, n);
}

/* A queue and a pool around it, not started. */
struct rig {
	struct ctx ctx;
	struct tp_queue *q;
	struct tp_pool *p;
	size_t base_tasks;
};

static inline void rig_init(struct rig *r, size_t capacity)
{
	ctx_init(&r->ctx);
	r->base_tasks = count_tasks();
	r->q = tp_queue_new(capacity, NULL, NULL);
	assert_non_null(r->q);
	r->p = tp_pool_new(r->q, exec_tasks, &r->ctx);
	assert_non_null(r->p);
	r->ctx.pool = r->p;
}

static inline void rig_free(struct rig *r)
{
	tp_pool_free(r->p);
	tp_queue_free(r->q);
	ctx_destroy(&r->ctx);
}

static inline void rig_stop(struct rig *r)
{
	tp_pool_stop(r->p);
	/* Every worker joined: only the threads from before remain. */
	assert_int_equal(stats(r->p).workers, 0);
	wait_tasks(r->base_tasks, 2000);
	rig_free(r);
}

static inline void *note_tid(void *arg)
{
	*(pid_t *)arg = gettid();
	return NULL;
}

/*
 * Before a pool test's group runs: create one thread first, so that any
 * thread a runtime starts on first use (ThreadSanitizer's background
 * thread) is already in the baseline that thread counts are compared with,
 * and wait until that thread has left /proc/self/task (the join returns
 * before the kernel has reaped it, and a baseline counting it would be one
 * too high); and an alarm, so that a hung join fails the run rather than
 * wait for the ctest timeout.
 */
static inline void pool_fixture_begin(void)
{
	pthread_t th;
	pid_t tid = 0;
	char path[64];

	assert_int_equal(pthread_create(&th, NULL, note_tid, &tid), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	for (int i = 0; i < 1000 && access(path, F_OK) == 0; i++)
		sleep_ms(5);
	if (access(path, F_OK) == 0)
		fail_msg("the joined thread %d is still in /proc/self/task after 5 s", (int)tid);
	alarm(60);
}

#endif
