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
	/* A copy: an abandoned job's thread may run after the caller's memory is gone. */
	struct tp_reload_outcome outcome;
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

	const struct tp_reload_outcome *o = &job->outcome;

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
	job->outcome = *o;
	job->fn = fn;
	job->ctx = ctx;
	job->wake = wake;
	job->wake_ctx = wake_ctx;
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

/* One of the pool's sizes a reload may change. */
struct resize {
	int (*set)(struct tp_pool *, size_t);
	const char *what;
	int want, old;
};

/*
 * Give the pool the sizes of nc, or none of them: only a growth can fail
 * (a thread that cannot start), and shrinking, which undoes one, cannot;
 * so growths go first, and a failure undoes those done before it.
 * Returns 0, or -errno with the reason in msg and the pool as it was.
 */
static int resize_pool(struct tp_pool *pool, const struct tp_config *old, const struct tp_config *nc,
                       char *msg, size_t msglen)
{
	struct resize rs[2] = {{tp_pool_resize, "workers", nc->workers, old->workers},
	                       {tp_pool_set_cheap, "cheap workers", nc->cheap_workers, old->cheap_workers}};

	if (rs[0].want < rs[0].old && rs[1].want > rs[1].old) {
		struct resize grow = rs[1];
		rs[1] = rs[0];
		rs[0] = grow;
	}
	for (size_t i = 0; i < 2; i++) {
		int r = rs[i].want == rs[i].old ? 0 : rs[i].set(pool, (size_t)rs[i].want);
		if (r == 0)
			continue;
		snprintf(msg, msglen, "cannot resize the pool to %d %s: %s", rs[i].want, rs[i].what,
		         strerror(-r));
		for (size_t j = 0; j <= i; j++)
			if (rs[j].want != rs[j].old)
				(void)rs[j].set(pool, (size_t)rs[j].old);
		return r;
	}
	return 0;
}

static void log_restart_settings(const struct tp_reload_target *t, const struct tp_config *old,
                                 const struct tp_config *nc)
{
	char why[512];

	for (const struct tp_setting *s = NULL; (s = tp_config_reload_diff(old, nc, s, why, sizeof(why)));) {
		if (!t->activated || !(s->socket || s->bound))
			tp_log(TP_LOG_WARNING, "reload", "%s", why);
		else if (s->socket)
			tp_log(TP_LOG_INFO, "reload", "listen settings are ignored under socket activation");
		else
			tp_log(TP_LOG_INFO, "reload", "%s is ignored under socket activation", s->path);
	}
}

int tp_reload_apply(const struct tp_reload_target *t, const struct tp_config *old,
                    const struct tp_config *loaded, struct tp_config *ret, char *msg, size_t msglen)
{
	struct tp_config nc = *loaded;
	int r = resize_pool(t->pool, old, &nc, msg, msglen);

	if (r < 0)
		return r;
	log_restart_settings(t, old, &nc);
	char warning[TP_MSG_MAX];
	for (const tp_config_warning_fn *w = tp_config_warnings; *w; w++)
		if ((*w)(&nc, warning, sizeof(warning)))
			tp_log(TP_LOG_WARNING, "reload", "%s", warning);
	/* Keep what only a restart can change, so the status stays true. */
	tp_config_keep_restart_settings(&nc, old);

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
	return 0;
}
