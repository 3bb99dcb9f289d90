/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of pool.c (with queue.c): workers started and counted both in
 * the stats and as threads in /proc/self/task; sleeps on different workers
 * overlapping; stop draining queued work; resize up and down, a shrink
 * letting busy workers finish rather than cutting them off; abort cutting
 * sleeps short; the busy statistics; and the cheap-only workers.  Timing checks are bounds with
 * wide margins, never exact times.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

static struct task *task_of(struct tp_qnode *n)
{
	return (struct task *)(void *)((char *)n - offsetof(struct task, node));
}

static void exec_tasks(struct tp_qnode **nodes, size_t n, void *arg)
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

static void ctx_init(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

static void ctx_destroy(struct ctx *c)
{
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
}

static size_t done_count(struct ctx *c)
{
	pthread_mutex_lock(&c->lock);
	size_t d = c->done;
	pthread_mutex_unlock(&c->lock);
	return d;
}

/* Wait up to timeout_ms for n completions. */
static bool wait_done(struct ctx *c, size_t n, unsigned timeout_ms)
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
static size_t count_tasks(void)
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
static void wait_tasks(size_t want, unsigned timeout_ms)
{
	size_t n = count_tasks();
	for (unsigned t = 0; n != want && t < timeout_ms; t += 5) {
		sleep_ms(5);
		n = count_tasks();
	}
	if (n != want)
		fail_msg("%zu threads, want %zu", n, want);
}

static struct tp_pool_stats stats(struct tp_pool *p)
{
	struct tp_pool_stats st;
	memset(&st, 0xa5, sizeof(st));
	tp_pool_stats(p, &st);
	return st;
}

/* Poll (bounded) until exactly busy workers are inside exec. */
static void wait_busy(struct tp_pool *p, size_t busy)
{
	struct tp_pool_stats st = stats(p);
	for (int i = 0; i < 1000 && st.busy != busy; i++) {
		sleep_ms(5);
		st = stats(p);
	}
	if (st.busy != busy)
		fail_msg("%zu busy, want %zu", st.busy, busy);
}

static struct task *tasks_new(size_t n, uint32_t ms)
{
	struct task *t = calloc(n, sizeof(*t));
	assert_non_null(t);
	for (size_t i = 0; i < n; i++) {
		t[i].sleep_ms = ms;
		t[i].node.deadline_ns = UINT64_MAX;
	}
	return t;
}

static int push_tasks(struct tp_queue *q, struct task *t, size_t n)
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

static void rig_init(struct rig *r, size_t capacity)
{
	ctx_init(&r->ctx);
	r->base_tasks = count_tasks();
	r->q = tp_queue_new(capacity, NULL, NULL);
	assert_non_null(r->q);
	r->p = tp_pool_new(r->q, exec_tasks, &r->ctx);
	assert_non_null(r->p);
	r->ctx.pool = r->p;
}

static void rig_free(struct rig *r)
{
	tp_pool_free(r->p);
	tp_queue_free(r->q);
	ctx_destroy(&r->ctx);
}

static void rig_stop(struct rig *r)
{
	tp_pool_stop(r->p);
	/* Every worker joined: only the threads from before remain. */
	assert_int_equal(stats(r->p).workers, 0);
	wait_tasks(r->base_tasks, 2000);
	rig_free(r);
}

/*
 * pool.c keeps each worker slot on its own cache line (struct slot is
 * aligned(64)), which makes struct tp_pool 64-byte aligned: tp_pool_new()
 * must return memory with that alignment, or every slot access is
 * undefined behaviour (UBSan: "misaligned address ... requires 64 byte
 * alignment").  Several pools, so that one lucky address proves nothing.
 */
static void test_new_aligned(void **state)
{
	enum { N = 8 };
	struct tp_queue *q = tp_queue_new(4, NULL, NULL);
	struct tp_pool *p[N];
	void *pad[N];
	size_t misaligned = 0;

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < N; i++) {
		pad[i] = malloc(16 + 16 * (size_t)i);
		p[i] = tp_pool_new(q, exec_tasks, NULL);
		assert_non_null(p[i]);
		misaligned += (uintptr_t)p[i] % 64 != 0;
	}
	for (int i = 0; i < N; i++) {
		tp_pool_free(p[i]);
		free(pad[i]);
	}
	tp_queue_free(q);
	if (misaligned)
		fail_msg("%zu of %d pools not 64-byte aligned", misaligned, N);
}

static void test_start(void **state)
{
	struct rig r;
	struct tp_pool_stats st;

	(void)state;
	rig_init(&r, 16);
	st = stats(r.p);
	assert_int_equal(st.workers, 0);
	assert_int_equal(st.busy, 0);
	assert_int_equal(st.oldest_busy_ns, 0);

	assert_int_equal(tp_pool_start(r.p, 4), 0);
	/* Running when start returns: no polling needed. */
	st = stats(r.p);
	assert_int_equal(st.workers, 4);
	assert_int_equal(st.target, 4);
	assert_int_equal(st.busy, 0);
	assert_int_equal(count_tasks(), r.base_tasks + 4);
	/* Out-of-range sizes are refused and change nothing. */
	assert_int_equal(tp_pool_resize(r.p, 0), -EINVAL);
	assert_int_equal(tp_pool_resize(r.p, TP_POOL_MAX_WORKERS + 1), -EINVAL);
	st = stats(r.p);
	assert_int_equal(st.workers, 4);
	assert_int_equal(st.target, 4);
	assert_int_equal(count_tasks(), r.base_tasks + 4);

	/* Idle workers take work. */
	struct task *t = tasks_new(3, 0);
	assert_int_equal(push_tasks(r.q, t, 3), 3);
	assert_true(wait_done(&r.ctx, 3, 5000));
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&t[i].runs), 1);
	rig_stop(&r);
	free(t);
	tp_pool_free(NULL);
}

static void test_sleeps_overlap(void **state)
{
	enum { N = 8, SLEEP = 200 };
	struct rig r;
	struct task *t = tasks_new(N, SLEEP);

	(void)state;
	rig_init(&r, 64);
	assert_int_equal(tp_pool_start(r.p, N), 0);
	uint64_t t0 = tp_clock_ns();
	assert_int_equal(push_tasks(r.q, t, N), N);
	assert_true(wait_done(&r.ctx, N, 10000));
	uint64_t elapsed = tp_clock_ns() - t0;
	/* Each one slept; together they took about one sleep, far from N of them. */
	assert_true(elapsed >= SLEEP * MS);
	if (elapsed >= 4ull * SLEEP * MS)
		fail_msg("%d sleeps of %d ms on %d workers took %llu ms", N, SLEEP, N,
		         (unsigned long long)(elapsed / MS));
	for (int i = 0; i < N; i++) {
		assert_int_equal(t[i].result, 0);
		assert_true(t[i].end_ns - t[i].start_ns >= SLEEP * MS);
	}
	/* Not batchable: one task per exec. */
	assert_int_equal(r.ctx.max_batch, 1);
	wait_busy(r.p, 0);
	rig_stop(&r);
	free(t);
}

/*
 * A turn's worth of cheap work pushed at once goes to one worker in one
 * batch, in either discipline: splitting it would wake more workers for
 * less work each.
 */
static void test_cheap_push_is_one_batch(void **state)
{
	enum { N = 600 };
	static const enum tp_fairness modes[] = {TP_FAIR_NONE, TP_FAIR_ADDRESS};

	(void)state;
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct rig r;
		struct task *t = tasks_new(N, 0);

		rig_init(&r, 1000);
		tp_queue_set_fairness(r.q, modes[m]);
		assert_int_equal(tp_pool_start(r.p, 4), 0);
		for (int i = 0; i < N; i++)
			t[i].node.batchable = true;
		assert_int_equal(push_tasks(r.q, t, N), N);
		assert_true(wait_done(&r.ctx, N, 10000));
		assert_int_equal(r.ctx.max_batch, N);
		rig_stop(&r);
		free(t);
	}
}

static void test_stop_drains(void **state)
{
	enum { N = 40 };
	struct rig r;
	struct task *t = tasks_new(N, 5);

	(void)state;
	rig_init(&r, 4);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	for (int i = 0; i < N; i += 2)
		t[i].node.batchable = true;
	/* 4 admitted, the rest in the wait list. */
	int admitted = push_tasks(r.q, t, N);
	assert_true(admitted >= 4 && admitted < N);
	tp_pool_stop(r.p);
	/* Everything queued ran, exactly once, before stop returned. */
	assert_int_equal(done_count(&r.ctx), N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&t[i].runs), 1);
		assert_int_equal(t[i].result, 0);
	}
	wait_tasks(r.base_tasks, 2000);
	struct task extra = {.node.deadline_ns = UINT64_MAX};
	assert_int_equal(tp_queue_push(r.q, &extra.node, 1), -EPIPE);
	assert_int_equal(stats(r.p).target, 0);
	assert_int_equal(stats(r.p).workers, 0);
	rig_free(&r);
	free(t);
}

static void test_resize_idle(void **state)
{
	struct rig r;

	(void)state;
	rig_init(&r, 16);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	assert_int_equal(count_tasks(), r.base_tasks + 2);
	assert_int_equal(tp_pool_resize(r.p, 6), 0);
	/* Growing returns once the new workers run. */
	assert_int_equal(stats(r.p).workers, 6);
	assert_int_equal(stats(r.p).target, 6);
	assert_int_equal(count_tasks(), r.base_tasks + 6);
	/* Shrinking does not wait, but idle surplus workers leave promptly. */
	assert_int_equal(tp_pool_resize(r.p, 2), 0);
	assert_int_equal(stats(r.p).target, 2);
	wait_tasks(r.base_tasks + 2, 5000);
	assert_int_equal(stats(r.p).workers, 2);
	/* Up again: exited workers are replaced. */
	assert_int_equal(tp_pool_resize(r.p, 3), 0);
	assert_int_equal(stats(r.p).workers, 3);
	assert_int_equal(count_tasks(), r.base_tasks + 3);
	/* The resized pool still does work. */
	struct task *t = tasks_new(6, 1);
	assert_int_equal(push_tasks(r.q, t, 6), 6);
	assert_true(wait_done(&r.ctx, 6, 5000));
	rig_stop(&r);
	free(t);
}

static void test_resize_busy(void **state)
{
	enum { SLEEP = 3000 }; /* long enough that the checks below fall inside the sleeps */
	struct rig r;
	struct task *t = tasks_new(4, SLEEP);

	(void)state;
	rig_init(&r, 16);
	assert_int_equal(tp_pool_start(r.p, 4), 0);
	uint64_t t0 = tp_clock_ns();
	assert_int_equal(push_tasks(r.q, t, 4), 4);
	wait_busy(r.p, 4);

	/* Shrink to 1 while all four sleep: returns at once, kills nobody. */
	uint64_t r0 = tp_clock_ns();
	assert_int_equal(tp_pool_resize(r.p, 1), 0);
	uint64_t resize_ns = tp_clock_ns() - r0;
	if (resize_ns >= SLEEP * MS / 4)
		fail_msg("shrinking took %llu ms", (unsigned long long)(resize_ns / MS));
	sleep_ms(50);
	if (tp_clock_ns() - t0 < SLEEP * MS * 3 / 4) {
		/* Still well inside the sleeps (2.25 s after their start, missed only on a stalled machine):
		 * every thread is still there. */
		assert_int_equal(count_tasks(), r.base_tasks + 4);
		assert_int_equal(done_count(&r.ctx), 0);
		struct tp_pool_stats st = stats(r.p);
		assert_int_equal(st.workers, 4);
		assert_int_equal(st.target, 1);
		assert_int_equal(st.busy, 4);
	}
	/* They finish their sleeps in full, then the surplus three exit. */
	assert_true(wait_done(&r.ctx, 4, 10000));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(t[i].result, 0);
		assert_true(t[i].end_ns - t0 >= SLEEP * MS);
	}
	wait_tasks(r.base_tasks + 1, 5000);
	assert_int_equal(stats(r.p).workers, 1);
	/* The one that stays may still be on its way out of exec. */
	wait_busy(r.p, 0);

	/* The remaining worker still serves the queue. */
	struct task *u = tasks_new(3, 1);
	assert_int_equal(push_tasks(r.q, u, 3), 3);
	assert_true(wait_done(&r.ctx, 7, 5000));
	rig_stop(&r);
	free(u);
	free(t);
}

/* Shrink then grow back while the surplus workers are still busy: they are kept, not doubled. */
static void test_resize_back_while_busy(void **state)
{
	enum { SLEEP = 600 };
	struct rig r;
	struct task *t = tasks_new(3, SLEEP);

	(void)state;
	rig_init(&r, 16);
	assert_int_equal(tp_pool_start(r.p, 3), 0);
	assert_int_equal(push_tasks(r.q, t, 3), 3);
	wait_busy(r.p, 3);
	assert_int_equal(tp_pool_resize(r.p, 1), 0);
	assert_int_equal(tp_pool_resize(r.p, 3), 0);
	assert_int_equal(count_tasks(), r.base_tasks + 3);
	assert_true(wait_done(&r.ctx, 3, 10000));
	/* After their work the three stay: give a would-be leaver time to go. */
	sleep_ms(100);
	assert_int_equal(count_tasks(), r.base_tasks + 3);
	assert_int_equal(stats(r.p).workers, 3);
	rig_stop(&r);
	free(t);
}

static void test_abort(void **state)
{
	struct rig r;
	struct task *t = tasks_new(2, 20000);

	(void)state;
	rig_init(&r, 16);
	/* Without abort, a sleep lasts its time and returns 0. */
	uint64_t t0 = tp_clock_ns();
	assert_int_equal(tp_pool_sleep_ms(r.p, 50), 0);
	assert_true(tp_clock_ns() - t0 >= 50 * MS);
	assert_int_equal(tp_pool_sleep_ms(r.p, 0), 0);

	assert_int_equal(tp_pool_start(r.p, 2), 0);
	assert_int_equal(push_tasks(r.q, t, 2), 2);
	wait_busy(r.p, 2);
	t0 = tp_clock_ns();
	tp_pool_abort(r.p);
	assert_true(wait_done(&r.ctx, 2, 5000));
	uint64_t took = tp_clock_ns() - t0;
	if (took >= 1000 * MS)
		fail_msg("abort took %llu ms to end the sleeps", (unsigned long long)(took / MS));
	for (int i = 0; i < 2; i++)
		assert_int_equal(t[i].result, -ECANCELED);
	/* Later sleeps are cut short at once too. */
	t0 = tp_clock_ns();
	assert_int_equal(tp_pool_sleep_ms(r.p, 20000), -ECANCELED);
	assert_true(tp_clock_ns() - t0 < 1000 * MS);
	struct task *u = tasks_new(1, 20000);
	assert_int_equal(push_tasks(r.q, u, 1), 1);
	assert_true(wait_done(&r.ctx, 3, 5000));
	assert_int_equal(u[0].result, -ECANCELED);
	rig_stop(&r);
	free(u);
	free(t);
}

static void test_busy_stats(void **state)
{
	struct rig r;
	/* The first still runs when the second starts, on a slow machine too. */
	struct task *t = tasks_new(2, 2000);

	(void)state;
	rig_init(&r, 16);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	uint64_t t0 = tp_clock_ns();
	assert_int_equal(push_tasks(r.q, &t[0], 1), 1);
	wait_busy(r.p, 1);
	struct tp_pool_stats st = stats(r.p);
	uint64_t t1 = tp_clock_ns();
	assert_int_equal(st.busy, 1);
	assert_int_equal(st.workers, 2);
	assert_true(st.oldest_busy_ns >= t0 && st.oldest_busy_ns <= t1);
	uint64_t first = st.oldest_busy_ns;

	/* A second, later exec: the oldest stays the first one. */
	sleep_ms(50);
	assert_int_equal(push_tasks(r.q, &t[1], 1), 1);
	wait_busy(r.p, 2);
	st = stats(r.p);
	assert_int_equal(st.busy, 2);
	assert_int_equal(st.oldest_busy_ns, first);

	assert_true(wait_done(&r.ctx, 2, 5000));
	wait_busy(r.p, 0);
	st = stats(r.p);
	assert_int_equal(st.oldest_busy_ns, 0);
	rig_stop(&r);
	free(t);
}

/*
 * Every general worker inside a long job, one more long job queued: the
 * cheap-only worker leaves that one alone, and runs a cheap job pushed
 * then from another flow, long before any long job ends.  With no
 * cheap-only worker the cheap job would wait for a general one.
 */
static void test_cheap_lane(void **state)
{
	struct rig r;
	struct task *t = tasks_new(4, 3000);
	struct tp_queue_stats qs;

	struct tp_qflow victim; /* the cheap job's own flow: the long ones share the null flow */

	(void)state;
	tp_qflow_init(&victim, NULL);
	t[3].sleep_ms = 0;
	t[3].node.batchable = true;
	t[3].node.flow = &victim;
	rig_init(&r, 16);
	tp_queue_set_fairness(r.q, TP_FAIR_CONNECTION);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	assert_int_equal(tp_pool_set_cheap(r.p, 1), 0);
	assert_int_equal(stats(r.p).workers, 3);
	assert_int_equal(stats(r.p).cheap_target, 1);
	assert_int_equal(push_tasks(r.q, &t[0], 3), 3);
	wait_busy(r.p, 2);
	sleep_ms(50); /* time enough for a wrong taker of the third */
	assert_int_equal(stats(r.p).busy, 2);
	tp_queue_stats(r.q, &qs);
	assert_int_equal(qs.depth, 1);

	assert_int_equal(push_tasks(r.q, &t[3], 1), 1);
	assert_true(wait_done(&r.ctx, 1, 2000));
	assert_int_equal(atomic_load(&t[3].runs), 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&t[i].runs), 0); /* the cheap one went first */

	/* Live: the cheap-only worker goes. */
	assert_int_equal(tp_pool_set_cheap(r.p, 0), 0);
	assert_int_equal(tp_pool_set_cheap(r.p, TP_POOL_MAX_CHEAP + 1), -EINVAL);
	tp_pool_abort(r.p);
	assert_true(wait_done(&r.ctx, 4, 5000));
	for (int i = 0; i < 200 && stats(r.p).workers != 2; i++)
		sleep_ms(5);
	assert_int_equal(stats(r.p).workers, 2);
	rig_stop(&r);
	free(t);
}

/* A lowered stall budget applies to execs that start later, not to running ones. */
static void test_stall_deadline_fixed_at_start(void **state)
{
	struct rig r;
	struct task *t = tasks_new(2, 2000); /* both run at once, on a slow machine too */

	(void)state;
	rig_init(&r, 16);
	tp_pool_set_stall_ms(r.p, 10000);
	assert_int_equal(tp_pool_start(r.p, 2), 0);
	assert_int_equal(push_tasks(r.q, &t[0], 1), 1);
	wait_busy(r.p, 1);
	struct tp_pool_stats st = stats(r.p);
	assert_int_equal(st.stall_at_ns, st.stall_since_ns + 10000 * 1000000ull);
	uint64_t first = st.stall_at_ns;

	tp_pool_set_stall_ms(r.p, 100);
	st = stats(r.p);
	assert_int_equal(st.stall_at_ns, first);
	assert_int_equal(push_tasks(r.q, &t[1], 1), 1);
	wait_busy(r.p, 2);
	st = stats(r.p);
	assert_true(st.stall_at_ns < first); /* the later one, with the smaller budget */
	assert_int_equal(st.stall_at_ns, st.stall_since_ns + 100 * 1000000ull);

	assert_true(wait_done(&r.ctx, 2, 5000));
	wait_busy(r.p, 0);
	assert_int_equal(stats(r.p).stall_at_ns, 0);
	rig_stop(&r);
	free(t);
}

/*
 * The stats once one worker is busy with a stall deadline of its start plus
 * budget_ms (none for 0), or after 2 s: the worker sets the deadline in
 * exec, a moment after it is seen busy, and the last task's figures linger
 * until then.
 */
static struct tp_pool_stats stall_budget_seen(struct tp_pool *p, uint64_t budget_ms)
{
	struct tp_pool_stats st = stats(p);
	int i = 0;

	while ((st.busy != 1 ||
	        st.stall_at_ns != (budget_ms ? st.stall_since_ns + budget_ms * 1000000ull : 0)) &&
	       i++ < 400) {
		sleep_ms(5);
		st = stats(p);
	}
	return st;
}

/*
 * Work accepted before the budget was lowered, started after: it keeps the
 * larger budget (the largest lowered, after two lowerings); work accepted
 * after the lowering gets the new one.  Off a worker's thread the call
 * does nothing.
 */
static void test_stall_budget_of_when_accepted(void **state)
{
	struct rig r;
	struct task *t = tasks_new(3, 1000); /* each long enough to be seen running */
	uint64_t before;

	(void)state;
	rig_init(&r, 16);
	tp_pool_set_stall_ms(r.p, 10000);
	before = tp_clock_ns();
	tp_pool_set_stall_ms(r.p, 5000);
	tp_pool_set_stall_ms(r.p, 100);
	tp_pool_stall_accepted_at(r.p, before); /* not a worker: nothing to do, nothing breaks */
	assert_int_equal(tp_pool_start(r.p, 1), 0);

	t[0].accepted_ns = before;
	assert_int_equal(push_tasks(r.q, &t[0], 1), 1);
	struct tp_pool_stats st = stall_budget_seen(r.p, 10000);
	assert_int_equal(st.stall_at_ns, st.stall_since_ns + 10000 * 1000000ull);
	assert_true(wait_done(&r.ctx, 1, 5000));

	t[1].accepted_ns = tp_clock_ns(); /* after the lowering */
	assert_int_equal(push_tasks(r.q, &t[1], 1), 1);
	st = stall_budget_seen(r.p, 100);
	assert_int_equal(st.stall_at_ns, st.stall_since_ns + 100 * 1000000ull);
	assert_true(wait_done(&r.ctx, 2, 5000));

	tp_pool_set_stall_ms(r.p, 0); /* none: not a lowering, and no deadline an older budget shortens */
	t[2].accepted_ns = before;
	assert_int_equal(push_tasks(r.q, &t[2], 1), 1);
	st = stall_budget_seen(r.p, 0);
	assert_int_equal(st.busy, 1);
	assert_int_equal(st.stall_at_ns, 0); /* no deadline */
	assert_true(wait_done(&r.ctx, 3, 5000));
	rig_stop(&r);
	free(t);
}

static void *nothing(void *arg)
{
	return arg;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_new_aligned),
	        cmocka_unit_test(test_start),
	        cmocka_unit_test(test_sleeps_overlap),
	        cmocka_unit_test(test_cheap_push_is_one_batch),
	        cmocka_unit_test(test_stop_drains),
	        cmocka_unit_test(test_resize_idle),
	        cmocka_unit_test(test_resize_busy),
	        cmocka_unit_test(test_resize_back_while_busy),
	        cmocka_unit_test(test_abort),
	        cmocka_unit_test(test_busy_stats),
	        cmocka_unit_test(test_stall_deadline_fixed_at_start),
	        cmocka_unit_test(test_stall_budget_of_when_accepted),
	        cmocka_unit_test(test_cheap_lane),
	};

	/*
	 * Create one thread first, so that any thread a runtime starts on first
	 * use (ThreadSanitizer's background thread) is already in the baseline
	 * that thread counts are compared with.
	 */
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, nothing, NULL), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* A hung join must fail the run, not wait for the ctest timeout. */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
