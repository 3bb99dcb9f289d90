/* SPDX-License-Identifier: MIT */
/*
 * server: wiring, start and run.  The parts it wires know nothing of it:
 * the loops get their queue, the listening sockets, the shared state and
 * callbacks at creation; the pool runs the dispatcher; server_events.c
 * does what loop 0 does on signals and ticks (reload, leave, shutdown),
 * health.c the status and watchdog.
 *
 * The loop callbacks here (conn_enter, conn_named, conn_closed,
 * conn_leave, config_copy, loop_exited) run on any loop's thread; the
 * rest on the main thread, which is loop 0's.  A start is whole or
 * nothing: the other loops' threads wait at a gate until tp_server_run,
 * so one that cannot be created fails the start before READY=1.
 */
#include "server.h"
#include "server_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conncap.h"
#include "clock.h"
#include "dispatch.h"
#include "gate.h"
#include "handover.h"
#include "health.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pool.h"
#include "queue.h"
#include "reload.h"
#include "reload_status.h"
#include "report.h"
#include "scrape.h"
#include "sd.h"
#include "sockets.h"

/* --- loop callbacks (any loop's thread) --- */

static bool conn_enter(void *ctx, const struct sockaddr_storage *peer, bool uncapped,
                       struct tp_qgroup **ret_group)
{
	return tp_conncap_conn_enter(&((struct tp_server *)ctx)->caps, peer, uncapped, ret_group);
}

static bool conn_named(void *ctx, struct tp_conn *c)
{
	return tp_conncap_conn_named(&((struct tp_server *)ctx)->caps, c);
}

static void conn_closed(void *ctx, struct tp_conn *c)
{
	(void)tp_dispatch_cancel_flow(((struct tp_server *)ctx)->queue, c);
}

static void conn_leave(void *ctx, struct tp_qgroup *group)
{
	tp_conncap_leave(&((struct tp_server *)ctx)->conncap, group);
}

static void config_copy(void *ctx, struct tp_config *ret)
{
	struct tp_server *srv = ctx;
	pthread_mutex_lock(&srv->cfg_lock);
	*ret = srv->cfg;
	pthread_mutex_unlock(&srv->cfg_lock);
}

static bool others_done(void *ctx)
{
	struct tp_server *srv = ctx;
	return atomic_load(&srv->loops_running) == 0;
}

static void loop_exited(void *ctx)
{
	struct tp_server *srv = ctx;
	atomic_fetch_sub(&srv->loops_running, 1);
	tp_loop_wake(srv->loops[0]);
}

/* Workers, their queue and the dispatcher between them. */
static int start_pool(struct tp_server *srv, char *err, size_t errlen)
{
	srv->queue = tp_conncap_init(&srv->conncap) == 0
	                     ? tp_queue_new((size_t)srv->cfg.queue_size, tp_dispatch_admit, NULL)
	                     : NULL;
	srv->pool = srv->queue ? tp_pool_new(srv->queue, tp_dispatch_exec, &srv->dispatch) : NULL;
	srv->dispatch.pool = srv->pool;
	srv->dispatch.queue = srv->queue;
	if (!srv->pool) {
		snprintf(err, errlen, "out of memory creating the queue and pool");
		return -ENOMEM;
	}
	tp_server_apply_fairness(srv, &srv->cfg);
	return 0;
}

static int new_loops(struct tp_server *srv, char *err, size_t errlen)
{
	struct tp_loop_params p = {
	        .queue = srv->queue,
	        .listeners = srv->sock.data,
	        .nlisteners = srv->sock.ndata,
	        .agent = &srv->sock.agent,
	        .shared = &srv->shared,
	        .hooks = {.ctx = srv,
	                  .conn_enter = conn_enter,
	                  .conn_named = conn_named,
	                  .conn_leave = conn_leave,
	                  .conn_closed = conn_closed,
	                  .config_copy = config_copy,
	                  .on_signal = tp_server_on_signal,
	                  .on_tick = tp_server_on_tick,
	                  .on_agent = tp_server_on_agent,
	                  .on_wake = tp_server_on_wake,
	                  .others_done = others_done,
	                  .hand_off = tp_handover_take,
	                  .hand_off_ctx = srv->handover,
	                  .on_exit = loop_exited},
	        .tick_ms = srv->tick_ms,
	};

	srv->nloops = (size_t)srv->cfg.io_threads;
	if (srv->nloops < 1 || srv->nloops > MAX_LOOPS)
		srv->nloops = 1;
	srv->metrics = tp_metrics_new(srv->nloops);
	srv->caps = (struct tp_conncap_ctx){&srv->conncap, &srv->cfg_lock, &srv->cfg, srv->metrics};
	if (!srv->metrics) {
		snprintf(err, errlen, "out of memory creating the metrics");
		return -ENOMEM;
	}
	for (size_t i = 0; i < srv->nloops; i++) {
		p.index = (unsigned)i;
		p.metrics = tp_metrics_slot(srv->metrics, i);
		p.scrape = i == 0 ? srv->scrape : NULL;
		srv->loops[i] = tp_loop_new(&p);
		if (!srv->loops[i]) {
			int e = errno;
			snprintf(err, errlen, "cannot create event loop %zu: %s", i, strerror(e));
			return -e;
		}
	}
	return 0;
}

/* Loops 1..n-1 on their threads, held at the gate: a start that fails leaves none half started. */
static int start_loops(struct tp_server *srv)
{
	size_t i;
	int r = 0;

	for (i = 1; i < srv->nloops && r == 0; i++)
		r = tp_loop_start_thread(srv->loops[i], &srv->start);
	if (r < 0) {
		tp_gate_close(&srv->start);
		for (size_t j = 1; j + 1 < i; j++)
			tp_loop_join(srv->loops[j]);
	}
	return r;
}

/* A start's error for n threads of what that could not be created. */
static int no_threads(char *err, size_t errlen, int r, int n, const char *what)
{
	snprintf(err, errlen, "cannot start %d %s: pthread_create(): %s (TasksMax too low?)", n, what,
	         strerror(-r));
	return r;
}

int tp_server_new(const struct tp_config *cfg, tp_reload_fn reload, void *reload_ctx, struct tp_server **ret,
                  char *err, size_t errlen)
{
	struct tp_server *srv = calloc(1, sizeof(*srv));
	int r;

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&srv->cfg_lock, NULL);
	tp_gate_init(&srv->start);
	srv->cfg = *cfg;
	srv->reload = reload;
	srv->reload_ctx = reload_ctx;
	srv->tick_ms = tp_health_init(&srv->health);
	if (!tp_reload_status_dir(srv->reload_outcome.dir, sizeof(srv->reload_outcome.dir)))
		srv->reload_outcome.dir[0] = '\0';
	tp_report_init(&srv->report, &srv->health);

	r = tp_handover_open(&srv->handover, err, errlen);
	if (r == 0)
		r = tp_sockets_open(&srv->sock, &srv->cfg, err, errlen);
	if (r == 0)
		r = tp_scrape_start(&srv->sock.metrics, tp_report_render, &srv->report, srv->metrics_name,
		                    sizeof(srv->metrics_name), &srv->scrape, err, errlen);
	if (r == 0)
		r = start_pool(srv, err, errlen);
	/* Loop 0 blocks the signals it reads: it is created before any thread. */
	if (r == 0)
		r = new_loops(srv, err, errlen);
	if (r < 0)
		goto fail;
	srv->health.pool = srv->pool;
	srv->health.queue = srv->queue;
	srv->health.loops = srv->loops;
	srv->health.nloops = srv->nloops;
	tp_pool_set_stall_ms(srv->pool, (uint64_t)tp_config_stall_ms(cfg));
	srv->health.metrics = srv->metrics;
	srv->health.conncap = &srv->conncap;
	srv->report.metrics = srv->metrics;
	srv->report.leave = &srv->leave;
	srv->report.shutting_down = &srv->shared.shutting_down;
	if ((r = tp_pool_start(srv->pool, (size_t)cfg->workers)) < 0)
		r = no_threads(err, errlen, r, cfg->workers, "workers");
	if (r == 0 && (r = tp_pool_set_cheap(srv->pool, (size_t)cfg->cheap_workers)) < 0)
		r = no_threads(err, errlen, r, cfg->cheap_workers, "cheap workers");
	if (r == 0 && (r = start_loops(srv)) < 0)
		r = no_threads(err, errlen, r, (int)srv->nloops - 1, "event loop threads");
	if (r < 0)
		goto fail;
	/* Last: a start that fails leaves the connections in the store for the next one. */
	tp_handover_adopt(srv->handover, srv->loops, srv->nloops);
	*ret = srv;
	return 0;
fail:
	tp_server_free(srv);
	return r;
}

void tp_server_free(struct tp_server *srv)
{
	if (!srv)
		return;
	/* A read blocked on a FIFO must not hold up the exit. */
	tp_reload_job_abandon(srv->reload_job);
	if (srv->pool) {
		tp_pool_stop(srv->pool);
		tp_pool_free(srv->pool);
	}
	tp_queue_free(srv->queue);
	for (size_t i = 0; i < srv->nloops; i++)
		tp_loop_free(srv->loops[i]);
	tp_scrape_free(srv->scrape);
	tp_metrics_free(srv->metrics);
	tp_conncap_release(&srv->conncap);
	tp_sockets_close(&srv->sock);
	tp_handover_free(srv->handover);
	tp_gate_release(&srv->start);
	pthread_mutex_destroy(&srv->cfg_lock);
	free(srv);
}

int tp_server_run(struct tp_server *srv)
{
	struct tp_health_stats st;
	int r;

	atomic_store(&srv->loops_running, (int)srv->nloops - 1);
	/* The agent's ready window runs from being ready, however long the start took. */
	tp_leave_start(&srv->leave, srv->cfg.agent_ready_s, tp_clock_ns());
	tp_gate_open(&srv->start);
	tp_health_log_ready(&srv->sock, srv->metrics_name, &srv->cfg, srv->nloops);
	tp_reload_outcome_set(&srv->reload_outcome, "started", "ready");
	tp_sd_notifyf("READY=1\nMAINPID=%d", (int)getpid());
	tp_health_status(&srv->health, tp_clock_ns());
	if (srv->health.wd_usec)
		tp_log(TP_LOG_INFO, "start", "watchdog: pinging every %" PRIu64 " ms while healthy",
		       srv->health.wd_usec / 2000);

	r = tp_loop_run(srv->loops[0]);
	if (r < 0)
		tp_log(TP_LOG_ERROR, "stop", "event loop 0: epoll_wait: %s", strerror(-r));
	for (size_t i = 1; i < srv->nloops; i++)
		tp_loop_join(srv->loops[i]);
	tp_handover_store(srv->handover);
	tp_pool_stop(srv->pool);

	tp_health_flush(&srv->health, tp_clock_ns());
	tp_health_stats(&srv->health, &st);
	tp_log(TP_LOG_NOTICE, "stop",
	       "stopped: %" PRIu64 " requests served, %" PRIu64 " busy rejections, %" PRIu64 " over max wait",
	       st.served, st.rejected, st.late);
	return r < 0 ? 1 : 0;
}
