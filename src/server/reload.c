/* SPDX-License-Identifier: MIT */
/*
 * reload: read the settings on a job's thread; compare them with the
 * running ones and apply them on loop 0.
 */
#include "reload.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "pool.h"
#include "queue.h"
#include "reload_status.h"

struct tp_reload_job {
	pthread_t thread;
	const struct tp_reload_outcome *outcome;
	tp_reload_fn fn;
	void *ctx;
	void (*wake)(void *wake_ctx);
	void *wake_ctx;

	pthread_mutex_t lock; /* done-and-wake against abandon */
	atomic_bool done;
	bool abandoned;

	int r; /* written by the thread before done */
	struct tp_config cfg;
	char err[TP_MSG_MAX];
};

static void job_free(struct tp_reload_job *job)
{
	pthread_mutex_destroy(&job->lock);
	free(job);
}

static void *job_main(void *arg)
{
	struct tp_reload_job *job = arg;
	bool abandoned;

	const struct tp_reload_outcome *o = job->outcome;

	/* Before the read: a waiter that saw no read in progress then knows it starts after it looked. */
	if (o->dir[0])
		(void)tp_reload_status_write(o->dir, o->gen, o->state, o->msg, true);
	job->r = job->fn(&job->cfg, job->err, sizeof(job->err), job->ctx);
	pthread_mutex_lock(&job->lock);
	atomic_store_explicit(&job->done, true, memory_order_release);
	abandoned = job->abandoned;
	if (!abandoned)
		job->wake(job->wake_ctx);
	pthread_mutex_unlock(&job->lock);
	if (abandoned)
		job_free(job);
	return NULL;
}

int tp_reload_job_start(const struct tp_reload_outcome *o, tp_reload_fn fn, void *ctx,
                        void (*wake)(void *wake_ctx), void *wake_ctx, struct tp_reload_job **ret)
{
	struct tp_reload_job *job = calloc(1, sizeof(*job));
	int r;

	if (!job)
		return -ENOMEM;
	*job = (struct tp_reload_job){.outcome = o, .fn = fn, .ctx = ctx, .wake = wake, .wake_ctx = wake_ctx};
	pthread_mutex_init(&job->lock, NULL);
	r = pthread_create(&job->thread, NULL, job_main, job);
	if (r) {
		job_free(job);
		return -r;
	}
	*ret = job;
	return 0;
}

bool tp_reload_job_done(struct tp_reload_job *job)
{
	return atomic_load_explicit(&job->done, memory_order_acquire);
}

int tp_reload_job_finish(struct tp_reload_job *job, struct tp_config *ret, char *err, size_t errlen)
{
	int r;

	pthread_join(job->thread, NULL);
	r = job->r;
	if (r == 0)
		*ret = job->cfg;
	else
		snprintf(err, errlen, "%s", job->err);
	job_free(job);
	return r;
}

void tp_reload_job_abandon(struct tp_reload_job *job)
{
	bool done;

	if (!job)
		return;
	pthread_mutex_lock(&job->lock);
	done = atomic_load_explicit(&job->done, memory_order_relaxed);
	job->abandoned = !done;
	pthread_mutex_unlock(&job->lock);
	if (done) {
		pthread_join(job->thread, NULL);
		job_free(job);
	} else {
		pthread_detach(job->thread);
	}
}

void tp_reload_outcome_set(struct tp_reload_outcome *o, const char *state, const char *msg)
{
	int r;

	if (strcmp(state, "started") != 0)
		o->gen++;
	snprintf(o->state, sizeof(o->state), "%s", state);
	snprintf(o->msg, sizeof(o->msg), "%s", msg);
	r = o->dir[0] ? tp_reload_status_write(o->dir, o->gen, o->state, o->msg, false) : 0;
	if (r < 0)
		tp_log(TP_LOG_WARNING, "reload", "cannot write %s/reload-status: %s", o->dir, strerror(-r));
}

/* A pool size changed from old to *io_n: apply it, or keep old (logged) when that fails. */
static void resize(struct tp_pool *pool, int (*set)(struct tp_pool *, size_t), const char *what, int *io_n,
                   int old)
{
	int r;

	if (*io_n == old)
		return;
	r = set(pool, (size_t)*io_n);
	if (r < 0) {
		tp_log(TP_LOG_ERROR, "reload", "cannot resize the pool to %d %s: %s; keeping %d", *io_n, what,
		       strerror(-r), old);
		(void)set(pool, (size_t)old);
		*io_n = old;
	}
}

void tp_reload_apply(const struct tp_reload_target *t, const struct tp_config *old,
                     const struct tp_config *loaded, struct tp_config *ret, char *msg, size_t msglen)
{
	struct tp_config nc = *loaded;
	char why[512];

	for (const struct tp_setting *s = NULL; (s = tp_config_reload_diff(old, &nc, s, why, sizeof(why)));) {
		if (s->socket && t->activated)
			tp_log(TP_LOG_INFO, "reload", "listen settings are ignored under socket activation");
		else
			tp_log(TP_LOG_WARNING, "reload", "%s", why);
	}
	/* Keep what only a restart can change, so the status stays true. */
	tp_config_keep_restart_settings(&nc, old);

	resize(t->pool, tp_pool_resize, "workers", &nc.workers, old->workers);
	resize(t->pool, tp_pool_set_cheap, "cheap workers", &nc.cheap_workers, old->cheap_workers);
	/* Requests already running keep the stall deadline they started with. */
	tp_pool_set_stall_ms(t->pool, (uint64_t)tp_config_stall_ms(&nc));
	if (nc.queue_size != old->queue_size)
		tp_queue_set_capacity(t->queue, (size_t)nc.queue_size);
	/* Those waiting, and those read before and pushed after, get a shorter timeout from now. */
	tp_queue_cap_deadlines(t->queue, tp_clock_ns(), (uint64_t)nc.queue_timeout_ms * 1000000ull);
	tp_log_set_level(nc.log_level);

	char w[16], q[16];
	snprintf(w, sizeof(w), "%d", nc.workers);
	snprintf(q, sizeof(q), "%d", nc.queue_size);
	struct tp_log_field f[] = {{"TP_WORKERS", w}, {"TP_QUEUE_SIZE", q}};
	snprintf(msg, msglen, "configuration reloaded: %d workers, queue %d, queue timeout %d ms", nc.workers,
	         nc.queue_size, nc.queue_timeout_ms);
	tp_logf(TP_LOG_NOTICE, "reload", f, 2, "%s", msg);
	*ret = nc;
}
