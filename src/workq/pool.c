/* SPDX-License-Identifier: MIT */
/*
 * pool: worker threads around a tp_queue.
 *
 * DESIGN
 * - Workers live in a fixed array of TP_POOL_MAX_WORKERS slots, each on its
 *   own cache line (the busy clock is written per batch).  Slot i runs while
 *   i < target; a shrink lowers target and wakes the queue's sleepers, and a
 *   surplus worker exits after its current batch.  Exited threads are joined
 *   by the next resize or by stop, never by the event loop waiting on a
 *   worker that is still inside a long SLEEP.
 * - Cheap-only workers (tp_pool_set_cheap) live in TP_POOL_MAX_CHEAP more
 *   slots after the general ones, with their own target, and pop with
 *   tp_queue_pop_cheap(): they never run expensive work, so the general
 *   workers' share of it is unchanged.  Otherwise they are workers like the
 *   others (stats, stall deadlines, stop).
 * - A worker blocks only in tp_queue_pop() (the queue's condition variable)
 *   or in tp_pool_sleep_ms() (the pool's abort condition variable), so an
 *   idle pool uses no CPU.
 * - busy_since_ns is the watchdog's evidence: a worker is stuck when it has
 *   been inside one exec call past its stall_at_ns, fixed when the call
 *   began from the stall budget then in force (tp_pool_set_stall_ms), so a
 *   budget lowered later does not turn a long SLEEP accepted under the old
 *   one into a stall.  Nor does one lowered while the SLEEP waited in the
 *   queue: the call then takes the larger budget of before the lowering
 *   (tp_pool_stall_accepted_at; the largest of those lowered, if several).
 * - Lock order: pool `lock`, then the queue's lock (a worker deciding to
 *   exit asks whether the queue is closed); `lock` is never held while
 *   calling exec, and `abort_lock` is a leaf.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

/* Worker stacks: requests need little; keep the memory bound small and deliberate. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WORKER_STACK_BYTES (1024 * 1024)
#else
#define WORKER_STACK_BYTES (256 * 1024)
#endif

/*
 * Nodes one pop may take (8 KiB of the stack): more than a loop turn of
 * pipelined cheap requests (a few hundred), so one wake-up carries a
 * whole turn and the worker that takes it wakes nobody else for the rest.
 */
#define BATCH_MAX 1024

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_EXITED };

struct slot {
	pthread_t thread;
	struct tp_pool *pool;
	_Atomic int state;
	atomic_bool stop;
	_Atomic uint64_t busy_since_ns;
	_Atomic uint64_t stall_at_ns; /* busy past this: stuck (UINT64_MAX: never) */
	_Atomic uint64_t pops;        /* batches taken (only this worker writes it) */
} __attribute__((aligned(64)));

struct tp_pool {
	struct tp_queue *queue;
	tp_pool_exec_fn exec;
	void *ctx;

	pthread_mutex_t lock; /* target, nstarted, slot state changes by the pool */
	pthread_cond_t started;
	size_t target;
	size_t cheap_target;
	size_t nstarted; /* workers that reported running since the last start/resize */

	pthread_mutex_t abort_lock;
	pthread_cond_t abort_cond;
	atomic_bool aborted;
	_Atomic uint64_t stall_ns; /* budget of one exec call, 0: none */
	/* The latest lowering of the budget, and the largest budget lowered. */
	_Atomic uint64_t stall_lowered_at_ns, stall_before_ns;

	struct slot slots[TP_POOL_MAX_WORKERS + TP_POOL_MAX_CHEAP]; /* general, then cheap-only */
};

#define NSLOTS (TP_POOL_MAX_WORKERS + TP_POOL_MAX_CHEAP)

static _Thread_local struct slot *current_slot; /* the worker's own, NULL on other threads */

/* A budget as a length: 0 (none) is the longest. */
static uint64_t budget_len(uint64_t ns)
{
	return ns ? ns : UINT64_MAX;
}

static void *worker_main(void *arg)
{
	struct slot *s = arg;
	struct tp_pool *p = s->pool;
	struct tp_qnode *batch[BATCH_MAX];
	bool cheap = s >= &p->slots[TP_POOL_MAX_WORKERS];

	current_slot = s;
	pthread_mutex_lock(&p->lock);
	p->nstarted++;
	pthread_cond_broadcast(&p->started);
	pthread_mutex_unlock(&p->lock);

	for (;;) {
		size_t n = cheap ? tp_queue_pop_cheap(p->queue, batch, BATCH_MAX, &s->stop)
		                 : tp_queue_pop(p->queue, batch, BATCH_MAX, &s->stop);
		if (n == 0) {
			/*
			 * Closed and drained, or asked to stop.  Decide under the
			 * lock: a resize may have cleared stop again meanwhile,
			 * and then this slot counts as running and must stay.
			 */
			pthread_mutex_lock(&p->lock);
			bool leave = atomic_load(&s->stop) || tp_queue_closed(p->queue);
			if (leave)
				atomic_store_explicit(&s->state, SLOT_EXITED, memory_order_release);
			pthread_mutex_unlock(&p->lock);
			if (leave)
				break;
			continue;
		}
		atomic_store_explicit(&s->pops, atomic_load_explicit(&s->pops, memory_order_relaxed) + 1,
		                      memory_order_relaxed);
		uint64_t now_ns = tp_clock_ns(),
		         stall_ns = atomic_load_explicit(&p->stall_ns, memory_order_acquire);
		atomic_store_explicit(&s->stall_at_ns, stall_ns ? now_ns + stall_ns : UINT64_MAX,
		                      memory_order_relaxed);
		/* Release: a reader that sees this start also sees its deadline. */
		atomic_store_explicit(&s->busy_since_ns, now_ns, memory_order_release);
		bool expensive = !batch[0]->batchable; /* a batch is cheap or one expensive node */
		p->exec(batch, n, p->ctx);
		if (expensive) /* the pop counted it in */
			tp_queue_running_expensive(p->queue, -1);
		atomic_store_explicit(&s->busy_since_ns, 0, memory_order_relaxed);
	}
	return NULL;
}

struct tp_pool *tp_pool_new(struct tp_queue *q, tp_pool_exec_fn exec, void *ctx)
{
	/* The slots are cache-line aligned: calloc() promises only 16 bytes. */
	size_t size = (sizeof(struct tp_pool) + 63) & ~(size_t)63;
	struct tp_pool *p = aligned_alloc(64, size);
	pthread_condattr_t ca;

	if (!p)
		return NULL;
	memset(p, 0, size);
	p->queue = q;
	p->exec = exec;
	p->ctx = ctx;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->started, NULL);
	pthread_mutex_init(&p->abort_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->abort_cond, &ca);
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < NSLOTS; i++)
		p->slots[i].pool = p;
	return p;
}

/* Join slots whose thread has exited. Lock held. */
static void reap(struct tp_pool *p)
{
	for (size_t i = 0; i < NSLOTS; i++) {
		struct slot *s = &p->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_acquire) == SLOT_EXITED) {
			pthread_join(s->thread, NULL);
			atomic_store(&s->state, SLOT_FREE);
		}
	}
}

/* Make slots [first, first + n) run. Lock held. */
static int grow(struct tp_pool *p, size_t first, size_t n)
{
	pthread_attr_t attr;
	size_t want = 0;
	int r = 0;

	pthread_attr_init(&attr);
	(void)pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
	p->nstarted = 0;
	for (size_t i = first; i < first + n; i++) {
		struct slot *s = &p->slots[i];
		if (atomic_load(&s->state) == SLOT_RUNNING) {
			/* Possibly told to stop by an earlier shrink and not gone yet: keep it. */
			atomic_store(&s->stop, false);
			continue;
		}
		atomic_store(&s->stop, false);
		atomic_store(&s->busy_since_ns, 0);
		atomic_store(&s->state, SLOT_RUNNING);
		r = -pthread_create(&s->thread, &attr, worker_main, s);
		if (r < 0) {
			atomic_store(&s->state, SLOT_FREE);
			break;
		}
		want++;
	}
	pthread_attr_destroy(&attr);
	while (p->nstarted < want)
		pthread_cond_wait(&p->started, &p->lock);
	return r;
}

int tp_pool_start(struct tp_pool *p, size_t n)
{
	return tp_pool_resize(p, n);
}

/* Run n of the slots [first, first + max), stopping the others. */
static int set_running(struct tp_pool *p, size_t first, size_t max, size_t n, size_t *target)
{
	int r;

	pthread_mutex_lock(&p->lock);
	reap(p);
	for (size_t i = first + n; i < first + max; i++)
		atomic_store_explicit(&p->slots[i].stop, true, memory_order_release);
	r = grow(p, first, n);
	*target = n;
	pthread_mutex_unlock(&p->lock);
	/* Surplus workers blocked in pop must wake to see their stop flag. */
	tp_queue_wake_all(p->queue);
	return r;
}

int tp_pool_resize(struct tp_pool *p, size_t n)
{
	if (n < 1 || n > TP_POOL_MAX_WORKERS)
		return -EINVAL;
	return set_running(p, 0, TP_POOL_MAX_WORKERS, n, &p->target);
}

int tp_pool_set_cheap(struct tp_pool *p, size_t n)
{
	if (n > TP_POOL_MAX_CHEAP)
		return -EINVAL;
	return set_running(p, TP_POOL_MAX_WORKERS, TP_POOL_MAX_CHEAP, n, &p->cheap_target);
}

int tp_pool_sleep_ms(struct tp_pool *p, uint32_t ms)
{
	struct timespec ts = tp_clock_timespec_after(CLOCK_MONOTONIC, ms);
	int r = 0;

	pthread_mutex_lock(&p->abort_lock);
	while (!atomic_load(&p->aborted)) {
		if (pthread_cond_timedwait(&p->abort_cond, &p->abort_lock, &ts) == ETIMEDOUT)
			break;
	}
	if (atomic_load(&p->aborted))
		r = -ECANCELED;
	pthread_mutex_unlock(&p->abort_lock);
	return r;
}

void tp_pool_abort(struct tp_pool *p)
{
	pthread_mutex_lock(&p->abort_lock);
	atomic_store(&p->aborted, true);
	pthread_cond_broadcast(&p->abort_cond);
	pthread_mutex_unlock(&p->abort_lock);
}

void tp_pool_stop(struct tp_pool *p)
{
	tp_queue_close(p->queue);
	/*
	 * Join without the lock: an exiting worker takes it to record its exit.
	 * Resizes come from the same thread as stop, so the slots cannot change
	 * under us.
	 */
	for (size_t i = 0; i < NSLOTS; i++) {
		struct slot *s = &p->slots[i];
		if (atomic_load(&s->state) != SLOT_FREE) {
			pthread_join(s->thread, NULL);
			atomic_store(&s->state, SLOT_FREE);
		}
	}
	pthread_mutex_lock(&p->lock);
	p->target = 0;
	p->cheap_target = 0;
	pthread_mutex_unlock(&p->lock);
}

void tp_pool_stats(struct tp_pool *p, struct tp_pool_stats *ret)
{
	uint64_t oldest = 0, stall_at = 0, stall_since = 0, pops = 0;
	size_t running = 0, busy = 0;

	for (size_t i = 0; i < NSLOTS; i++) {
		struct slot *s = &p->slots[i];
		pops += atomic_load_explicit(&s->pops, memory_order_relaxed);
		if (atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_RUNNING)
			continue;
		running++;
		uint64_t b = atomic_load_explicit(&s->busy_since_ns, memory_order_acquire);
		if (b) {
			uint64_t a = atomic_load_explicit(&s->stall_at_ns, memory_order_relaxed);
			busy++;
			if (!oldest || b < oldest)
				oldest = b;
			if (a != UINT64_MAX && (!stall_at || a < stall_at)) {
				stall_at = a;
				stall_since = b;
			}
		}
	}
	pthread_mutex_lock(&p->lock);
	ret->target = p->target;
	ret->cheap_target = p->cheap_target;
	pthread_mutex_unlock(&p->lock);
	ret->workers = running;
	ret->busy = busy;
	ret->oldest_busy_ns = oldest;
	ret->stall_at_ns = stall_at;
	ret->stall_since_ns = stall_since;
	ret->pops = pops;
}

void tp_pool_set_stall_ms(struct tp_pool *p, uint64_t ms)
{
	uint64_t ns = ms * 1000000ull, old = atomic_load_explicit(&p->stall_ns, memory_order_relaxed);

	/* From none (the first budget set) is not a lowering: nothing was accepted under none. */
	if (old && budget_len(ns) < old) {
		if (old > atomic_load_explicit(&p->stall_before_ns, memory_order_relaxed))
			atomic_store_explicit(&p->stall_before_ns, old, memory_order_relaxed);
		/* Release: a worker that sees this time (or the budget below) sees the budget before. */
		atomic_store_explicit(&p->stall_lowered_at_ns, tp_clock_ns(), memory_order_release);
	}
	atomic_store_explicit(&p->stall_ns, ns, memory_order_release);
}

void tp_pool_stall_accepted_at(struct tp_pool *p, uint64_t accepted_ns)
{
	struct slot *s = current_slot;

	if (!s || s->pool != p)
		return;
	uint64_t lowered = atomic_load_explicit(&p->stall_lowered_at_ns, memory_order_acquire);
	if (!lowered || accepted_ns >= lowered)
		return;
	uint64_t before = atomic_load_explicit(&p->stall_before_ns, memory_order_relaxed),
	         until = atomic_load_explicit(&s->busy_since_ns, memory_order_relaxed) + before;
	if (until > atomic_load_explicit(&s->stall_at_ns, memory_order_relaxed))
		atomic_store_explicit(&s->stall_at_ns, until, memory_order_relaxed);
}

void tp_pool_free(struct tp_pool *p)
{
	if (!p)
		return;
	pthread_cond_destroy(&p->abort_cond);
	pthread_mutex_destroy(&p->abort_lock);
	pthread_cond_destroy(&p->started);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
