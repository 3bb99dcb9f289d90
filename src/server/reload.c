/* SPDX-License-Identifier: MIT */
/*
 * reload: compare the re-read settings with the running ones and apply them.
 */
#include "reload.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "queue.h"

int tp_reload_apply(const struct tp_reload_target *t, const struct tp_config *old, tp_reload_fn fn, void *ctx,
                    struct tp_config *ret)
{
	struct tp_config nc;
	char err[512], why[512];
	int r;

	r = fn(&nc, err, sizeof(err), ctx);
	if (r < 0) {
		struct tp_log_field f[] = {{"TP_RELOAD_ERROR", err}};
		tp_logf(TP_LOG_ERROR, "reload", f, 1, "reload failed, keeping the running configuration: %s",
		        err);
		return r;
	}
	for (const struct tp_setting *s = NULL; (s = tp_config_reload_diff(old, &nc, s, why, sizeof(why)));) {
		if (s->socket && t->activated)
			tp_log(TP_LOG_INFO, "reload", "listen settings are ignored under socket activation");
		else
			tp_log(TP_LOG_WARNING, "reload", "%s", why);
	}
	/* Keep what only a restart can change, so the status stays true. */
	tp_config_keep_restart_settings(&nc, old);

	if (nc.workers != old->workers) {
		r = tp_pool_resize(t->pool, (size_t)nc.workers);
		if (r < 0) {
			tp_log(TP_LOG_ERROR, "reload", "cannot resize the pool to %d workers: %s; keeping %d",
			       nc.workers, strerror(-r), old->workers);
			(void)tp_pool_resize(t->pool, (size_t)old->workers);
			nc.workers = old->workers;
		}
	}
	/* Requests already running keep the stall deadline they started with. */
	tp_pool_set_stall_ms(t->pool, (uint64_t)tp_config_stall_ms(&nc));
	if (nc.queue_size != old->queue_size)
		tp_queue_set_capacity(t->queue, (size_t)nc.queue_size);
	tp_log_set_level(nc.log_level);

	char w[16], q[16];
	snprintf(w, sizeof(w), "%d", nc.workers);
	snprintf(q, sizeof(q), "%d", nc.queue_size);
	struct tp_log_field f[] = {{"TP_WORKERS", w}, {"TP_QUEUE_SIZE", q}};
	tp_logf(TP_LOG_NOTICE, "reload", f, 2,
	        "configuration reloaded: %d workers, queue %d, queue timeout %d ms", nc.workers,
	        nc.queue_size, nc.queue_timeout_ms);
	*ret = nc;
	return 0;
}
