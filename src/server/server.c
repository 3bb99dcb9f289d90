/* SPDX-License-Identifier: MIT */
/*
 * server: wiring and lifecycle (start, ready, reload, shutdown).  The
 * parts it wires know nothing of it: the loops get their queue, the
 * listening sockets, the shared state and callbacks at creation; the pool
 * runs the dispatcher; reload.c and health.c do SIGHUP's work and the
 * status and watchdog.
 *
 * Everything here that is not a constructor runs on loop 0's thread (the
 * main thread), except the loop callbacks conn_enter, conn_closed, conn_leave,
 * config_copy and loop_exited, which any loop calls, and reload_read and
 * reload_wake, which a reload job's thread calls (reload.h): a reload
 * reads the file there, so a FIFO or a slow file system blocks no loop,
 * and SIGHUPs that arrive meanwhile make one more read once it is done.
 */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admit.h"
#include "clock.h"
#include "dispatch.h"
#include "handover.h"
#include "health.h"
#include "leave.h"
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

#define MAX_LOOPS 64
#define FORCE_CLOSE_GRACE_NS (1000000000ull)

/* Fields in the order that wastes no padding (report is cache-line aligned). */
struct tp_server {
	struct tp_report report;
	tp_reload_fn reload;
	void *reload_ctx;
	struct tp_queue *queue;
	struct tp_pool *pool;
	size_t nloops;
	struct tp_metrics *metrics;
	struct tp_scrape *scrape;     /* the metrics endpoint, on loop 0 */
	struct tp_handover *handover; /* connections kept across restarts */

	/* loop 0 only */
	uint64_t shutdown_deadline_ns;
	uint64_t force_close_ns;
	uint64_t tick_ms;
	struct tp_reload_job *reload_job; /* the read in progress, or NULL */

	struct tp_admit admit; /* connections counted in, per address too */
	struct tp_dispatch dispatch;
	struct tp_admit_caps caps; /* admit with the caps of cfg */
	pthread_mutex_t cfg_lock;
	struct tp_leave leave; /* loop 0: drain, graceful leave, the agent check */
	struct tp_health health;
	struct tp_loop *loops[MAX_LOOPS];
	struct tp_sockets sock; /* the listening sockets, from systemd or bound */
	struct tp_reload_outcome reload_outcome;
	_Atomic int loops_running; /* threads of loops 1..n-1 still in tp_loop_run */
	struct tp_loop_shared shared;
	struct tp_config cfg;
	bool reload_again;     /* loop 0: SIGHUP during it: read once more after it */
	bool aborted;          /* loop 0: the shutdown deadline passed: the rest was answered */
	char metrics_name[64]; /* the endpoint's address, for the log */
};

/* --- loop callbacks (any loop's thread) --- */

static bool conn_enter(void *ctx, const struct sockaddr_storage *peer, bool uncapped,
                       struct tp_qgroup **ret_group)
{
	return tp_admit_conn_enter(&((struct tp_server *)ctx)->caps, peer, uncapped, ret_group);
}

static bool conn_named(void *ctx, struct tp_conn *c)
{
	return tp_admit_conn_named(&((struct tp_server *)ctx)->caps, c);
}

static void conn_closed(void *ctx, struct tp_conn *c)
{
	(void)tp_dispatch_cancel_flow(((struct tp_server *)ctx)->queue, c);
}

static void conn_leave(void *ctx, struct tp_qgroup *group)
{
	tp_admit_leave(&((struct tp_server *)ctx)->admit, group);
}

/* The settings the queue and the dispatcher hold a copy of (start, reload). */
static void apply_fairness(struct tp_server *srv, const struct tp_config *cfg)
{
	tp_queue_set_fairness(srv->queue, (enum tp_fairness)cfg->fairness);
	atomic_store_explicit(&srv->dispatch.max_wait_ns, (uint64_t)cfg->max_wait_ms * 1000000ull,
	                      memory_order_relaxed);
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

static void on_signal(void *ctx, int signo);
static void on_wake(void *ctx);
static uint64_t on_tick(void *ctx, uint64_t now_ns);
static int on_agent(void *ctx);

/* Workers, their queue and the dispatcher between them. */
static int start_pool(struct tp_server *srv, char *err, size_t errlen)
{
	srv->queue = tp_admit_init(&srv->admit) == 0
	                     ? tp_queue_new((size_t)srv->cfg.queue_size, tp_dispatch_admit, NULL)
	                     : NULL;
	srv->pool = srv->queue ? tp_pool_new(srv->queue, tp_dispatch_exec, &srv->dispatch) : NULL;
	srv->dispatch.pool = srv->pool;
	if (!srv->pool) {
		snprintf(err, errlen, "out of memory creating the queue and pool");
		return -ENOMEM;
	}
	apply_fairness(srv, &srv->cfg);
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
	                  .on_signal = on_signal,
	                  .on_tick = on_tick,
	                  .on_agent = on_agent,
	                  .on_wake = on_wake,
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
	srv->caps = (struct tp_admit_caps){&srv->admit, &srv->cfg_lock, &srv->cfg, srv->metrics};
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
	srv->health.dispatch = &srv->dispatch;
	srv->health.loops = srv->loops;
	srv->health.nloops = srv->nloops;
	tp_pool_set_stall_ms(srv->pool, (uint64_t)tp_config_stall_ms(cfg));
	srv->health.metrics = srv->metrics;
	srv->report.metrics = srv->metrics;
	r = tp_pool_start(srv->pool, (size_t)cfg->workers);
	if (r < 0) {
		snprintf(err, errlen, "cannot start %d workers: pthread_create(): %s (TasksMax too low?)",
		         cfg->workers, strerror(-r));
		goto fail;
	}
	r = tp_pool_set_cheap(srv->pool, (size_t)cfg->cheap_workers);
	if (r < 0) {
		snprintf(err, errlen,
		         "cannot start %d cheap workers: pthread_create(): %s (TasksMax too low?)",
		         cfg->cheap_workers, strerror(-r));
		goto fail;
	}
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
	tp_admit_done(&srv->admit);
	tp_sockets_close(&srv->sock);
	tp_handover_free(srv->handover);
	pthread_mutex_destroy(&srv->cfg_lock);
	free(srv);
}

static void wake_loops(struct tp_server *srv)
{
	for (size_t i = 0; i < srv->nloops; i++)
		tp_loop_wake(srv->loops[i]);
}

static void begin_shutdown(struct tp_server *srv, int signo)
{
	struct tp_stats st;
	uint64_t now = tp_clock_ns();

	if (atomic_load(&srv->shared.shutting_down)) { /* a second signal: stop waiting for work */
		tp_log(TP_LOG_NOTICE, "stop", "%s again: cutting the shutdown short", strsignal(signo));
		srv->shutdown_deadline_ns = now;
		return;
	}
	/* STOPPING=1 again after a leave: systemd takes it once. */
	tp_health_stopping(&srv->health, "shutting down", now);
	tp_health_stats(&srv->health, &st);
	tp_log(TP_LOG_NOTICE, "stop",
	       "%s: shutting down; answering %zu queued and %zu running requests, up to %d s",
	       strsignal(signo), st.queue_depth + st.queue_waiting, st.workers_busy,
	       srv->cfg.shutdown_timeout_s);
	srv->shutdown_deadline_ns = now + (uint64_t)srv->cfg.shutdown_timeout_s * 1000000000ull;
	atomic_store(&srv->shared.keeping, tp_handover_begin(srv->handover, &srv->cfg));
	atomic_store(&srv->shared.shutting_down, true);
	wake_loops(srv);
}

/* Past the shutdown deadline: whatever still waits or sleeps gets ERR server shutting down. */
static void abort_work(struct tp_server *srv, uint64_t now)
{
	size_t cnt;

	srv->aborted = true;
	cnt = tp_dispatch_cancel_all(srv->queue); /* before a woken worker takes some */
	tp_pool_abort(srv->pool);
	tp_log(TP_LOG_WARNING, "stop",
	       "shutdown timeout reached: %zu queued requests answered with ERR server shutting down", cnt);
	srv->force_close_ns = now + FORCE_CLOSE_GRACE_NS;
}

/* A reload job's thread: its read is done. */
static void reload_wake(void *ctx)
{
	struct tp_server *srv = ctx;
	tp_loop_wake(srv->loops[0]);
}

static void reload_start(struct tp_server *srv)
{
	int r;

	srv->reload_again = false;
	tp_sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	              tp_clock_ns() / 1000); /* newer systemd wants it */
	r = tp_reload_job_start(&srv->reload_outcome, srv->reload, srv->reload_ctx, reload_wake, srv,
	                        &srv->reload_job);
	if (r < 0) {
		tp_log(TP_LOG_ERROR, "reload", "reload failed: cannot start its thread: %s", strerror(-r));
		srv->reload_job = NULL;
		tp_reload_outcome_set(&srv->reload_outcome, "refused",
		                      "cannot start the thread that reads the file");
		tp_sd_notify("READY=1");
	}
}

/* Loop 0, after a wake-up: apply the result of a reload whose read is done. */
static void reload_finish(struct tp_server *srv)
{
	struct tp_reload_target t = {srv->pool, srv->queue, srv->sock.activated};
	struct tp_config loaded, nc;
	char err[TP_MSG_MAX], msg[TP_MSG_MAX];

	if (!srv->reload_job || !tp_reload_job_done(srv->reload_job))
		return;
	int r = tp_reload_job_finish(srv->reload_job, &loaded, err, sizeof(err));
	srv->reload_job = NULL;
	if (atomic_load(&srv->shared.shutting_down)) { /* too late to apply, and no READY=1 any more */
		tp_log(TP_LOG_NOTICE, "reload", "reload not applied: shutting down");
		tp_reload_outcome_set(&srv->reload_outcome, "refused", "shutting down");
		return;
	}
	/* A file that reads well may still ask for more workers than can start: refused as a whole too. */
	if (r == 0 && (r = tp_reload_apply(&t, &srv->cfg, &loaded, &nc, msg, sizeof(msg))) != 0)
		snprintf(err, sizeof(err), "%s", msg);
	tp_metrics_reload(srv->metrics, r == 0);
	if (r != 0) {
		struct tp_log_field f[] = {{"TP_RELOAD_ERROR", err}};
		tp_logf(TP_LOG_ERROR, "reload", f, 1, "reload failed, keeping the running configuration: %s",
		        err);
		tp_reload_outcome_set(&srv->reload_outcome, "refused", err);
	} else {
		apply_fairness(srv, &nc); /* the queue keeps the work it holds, in each flow's order */
		pthread_mutex_lock(&srv->cfg_lock);
		srv->cfg = nc;
		pthread_mutex_unlock(&srv->cfg_lock);
		atomic_fetch_add_explicit(&srv->shared.cfg_gen, 1, memory_order_release);
		wake_loops(srv);
		tp_reload_outcome_set(&srv->reload_outcome, "applied", msg);
	}
	/* Also after a rejected file: the service is up and serving the old settings. */
	tp_sd_notify("READY=1");
	if (srv->reload_again)
		reload_start(srv);
}

static void on_wake(void *ctx)
{
	reload_finish(ctx);
}

static void on_signal(void *ctx, int signo)
{
	struct tp_server *srv = ctx;

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		if (!atomic_load(&srv->shared.shutting_down) &&
		    tp_leave_begin(&srv->leave, srv->cfg.drain_s, signo, tp_clock_ns())) {
			/* The leave is the shutdown's first part: the unit is deactivating from now. */
			tp_health_stopping(&srv->health, "leaving", tp_clock_ns());
			atomic_store(&srv->shared.draining, true);
			wake_loops(srv);
			break;
		}
		begin_shutdown(srv, signo);
		break;
	case SIGHUP:
		if (atomic_load(&srv->shared.shutting_down) || !srv->reload)
			break;
		if (srv->reload_job)
			srv->reload_again = true; /* coalesced: one more read after this one */
		else
			reload_start(srv);
		break;
	case SIGUSR1:
	case SIGUSR2:
		tp_leave_signal(&srv->leave, signo);
		break;
	default:
		break;
	}
}

static int on_agent(void *ctx)
{
	struct tp_server *srv = ctx;

	return tp_leave_answer(&srv->leave, srv->sock.agent.fd, atomic_load(&srv->shared.shutting_down),
	                       tp_health_ok(&srv->health, tp_clock_ns()));
}

static uint64_t on_tick(void *ctx, uint64_t now)
{
	struct tp_server *srv = ctx;

	tp_health_tick(&srv->health, now);
	tp_report_tick(&srv->report, now, srv->cfg.stats_interval_s);
	tp_scrape_expire(srv->scrape, now);
	if (tp_leave_tick(&srv->leave, &srv->health, now))
		begin_shutdown(srv, SIGTERM);
	if (!atomic_load(&srv->shared.shutting_down))
		return srv->leave.leave_at_ns; /* 0 when not leaving */
	if (!srv->aborted && now >= srv->shutdown_deadline_ns)
		abort_work(srv, now);
	if (srv->aborted && !atomic_load(&srv->shared.force_close) && now >= srv->force_close_ns) {
		atomic_store(&srv->shared.force_close, true);
		wake_loops(srv);
	}
	return !srv->aborted                           ? srv->shutdown_deadline_ns
	       : atomic_load(&srv->shared.force_close) ? 0
	                                               : srv->force_close_ns;
}

int tp_server_run(struct tp_server *srv)
{
	struct tp_stats st;
	int r;

	atomic_store(&srv->loops_running, (int)srv->nloops - 1);
	for (size_t i = 1; i < srv->nloops; i++) {
		r = tp_loop_start_thread(srv->loops[i]);
		if (r < 0) {
			tp_log(TP_LOG_ERROR, "start", "cannot start event loop %zu: %s", i, strerror(-r));
			atomic_store(&srv->loops_running, (int)i - 1);
			begin_shutdown(srv, SIGTERM);
			break;
		}
	}
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

	tp_health_stats(&srv->health, &st);
	tp_log(TP_LOG_NOTICE, "stop", "stopped: %" PRIu64 " requests served, %" PRIu64 " busy rejections",
	       st.served, st.rejected);
	return r < 0 ? 1 : 0;
}
