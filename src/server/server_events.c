/* SPDX-License-Identifier: MIT */
/*
 * server_events: what loop 0 does for the server on a signal (reload,
 * leave, shutdown), a tick (health, report, the shutdown's deadlines), a
 * wake-up (a reload's read is done) and an agent check.  Everything here
 * runs on loop 0's thread, except reload_wake, which a reload job's thread
 * calls (reload.h).
 */
#include "server_priv.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

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

#define FORCE_CLOSE_GRACE_NS (1000000000ull)
/* Gone this long before the unit's TimeoutStopSec, when systemd would SIGKILL: the exit's own time. */
#define STOP_MARGIN_NS (500000000ull)
#define MIN_GRACE_NS (500000000ull) /* what the forced close's grace may shrink to */

void tp_server_apply_fairness(struct tp_server *srv, const struct tp_config *cfg)
{
	tp_queue_set_fairness(srv->queue, (enum tp_fairness)cfg->fairness);
	atomic_store_explicit(&srv->dispatch.max_wait_ns, (uint64_t)cfg->max_wait_ms * 1000000ull,
	                      memory_order_relaxed);
}

static void wake_loops(struct tp_server *srv)
{
	for (size_t i = 0; i < srv->nloops; i++)
		tp_loop_wake(srv->loops[i]);
}

/*
 * t, or earlier when it is less than margin before gone_by_ns (never before
 * now): what the shutdown still waits for ends within the unit's stop
 * timeout, the forced close's grace shortened first.
 */
static uint64_t within_stop(const struct tp_server *srv, uint64_t now_ns, uint64_t t_ns, uint64_t margin_ns)
{
	uint64_t last = srv->gone_by_ns > now_ns + margin_ns ? srv->gone_by_ns - margin_ns : now_ns;
	return srv->gone_by_ns && t_ns > last ? last : t_ns;
}

/* now: the signal's (or the leave's end's) clock read, the one gone_by_ns counts from. */
static void begin_shutdown(struct tp_server *srv, int signo, uint64_t now_ns)
{
	struct tp_health_stats st;

	if (atomic_load(&srv->shared.shutting_down)) { /* a second signal: stop waiting for work */
		tp_log(TP_LOG_NOTICE, "stop", "%s again: cutting the shutdown short", strsignal(signo));
		srv->shutdown_deadline_ns = now_ns;
		return;
	}
	/* STOPPING=1 again after a leave: systemd takes it once. */
	int notified = tp_health_stopping(&srv->health, "shutting down", now_ns);
	tp_health_stats(&srv->health, &st);
	uint64_t want = now_ns + (uint64_t)srv->cfg.shutdown_timeout_s * 1000000000ull;
	srv->shutdown_deadline_ns = within_stop(srv, now_ns, want, MIN_GRACE_NS);
	tp_log(TP_LOG_NOTICE, "stop",
	       "%s: shutting down; answering %zu queued and %zu running requests, up to %.1f s%s",
	       strsignal(signo), st.queue_depth + st.queue_waiting, st.workers_busy,
	       (double)(srv->shutdown_deadline_ns - now_ns) / 1e9,
	       srv->shutdown_deadline_ns < want ? " (shortened to end before shutdown.stop_timeout_s)" : "");
	atomic_store(&srv->shared.keeping, tp_handover_begin(srv->handover, &srv->cfg, notified));
	atomic_store(&srv->shared.shutting_down, true);
	tp_sockets_stop_listening(&srv->sock);
	wake_loops(srv);
}

/* Past the shutdown deadline: whatever still waits or sleeps gets ERR server shutting down. */
static void abort_work(struct tp_server *srv, uint64_t now_ns)
{
	size_t cnt;

	srv->aborted = true;
	cnt = tp_dispatch_cancel_all(srv->queue); /* before a woken worker takes some */
	tp_pool_abort(srv->pool);
	tp_log(TP_LOG_WARNING, "stop",
	       "shutdown timeout reached: %zu queued requests answered with ERR server shutting down", cnt);
	srv->force_close_ns = within_stop(srv, now_ns, now_ns + FORCE_CLOSE_GRACE_NS, 0);
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

/* A stop has begun (a leave is its first part): a reload is refused, with no RELOADING=1 after STOPPING=1. */
static bool stopping(struct tp_server *srv)
{
	return atomic_load(&srv->shared.shutting_down) || atomic_load(&srv->shared.draining);
}

static void refuse_stopping(struct tp_server *srv)
{
	tp_log(TP_LOG_NOTICE, "reload", "reload not applied: shutting down");
	tp_reload_outcome_set(&srv->reload_outcome, "refused", "shutting down");
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
	if (stopping(srv)) { /* too late to apply, and no READY=1 any more */
		refuse_stopping(srv);
		if (srv->reload_again) /* a SIGHUP during this read waits for an outcome too */
			refuse_stopping(srv);
		srv->reload_again = false;
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
		/* The queue keeps the work it holds, in each flow's order. */
		tp_server_apply_fairness(srv, &nc);
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

void tp_server_on_wake(void *ctx)
{
	reload_finish(ctx);
}

void tp_server_on_signal(void *ctx, int signo)
{
	struct tp_server *srv = ctx;
	uint64_t now = tp_clock_ns();

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		if (!srv->gone_by_ns) /* systemd's clock starts now */
			srv->gone_by_ns =
			        now + (uint64_t)srv->cfg.stop_timeout_s * 1000000000ull - STOP_MARGIN_NS;
		if (!atomic_load(&srv->shared.shutting_down) &&
		    tp_leave_begin(&srv->leave, srv->cfg.drain_s, signo, now)) {
			/* The leave is the shutdown's first part: the unit is deactivating from now. */
			tp_health_stopping(&srv->health, "leaving", now);
			atomic_store(&srv->shared.draining, true);
			wake_loops(srv);
			break;
		}
		begin_shutdown(srv, signo, now);
		break;
	case SIGHUP:
		if (!srv->reload)
			break;
		if (srv->reload_job)
			srv->reload_again = true; /* coalesced: one more read after this one */
		else if (stopping(srv))
			refuse_stopping(srv);
		else
			reload_start(srv);
		break;
	case SIGUSR1:
	case SIGUSR2:
		tp_leave_signal(&srv->leave, signo, atomic_load(&srv->shared.shutting_down));
		break;
	default:
		break;
	}
}

int tp_server_on_agent(void *ctx)
{
	struct tp_server *srv = ctx;

	return tp_leave_answer(&srv->leave, srv->sock.agent.fd, atomic_load(&srv->shared.shutting_down),
	                       tp_health_ok(&srv->health, tp_clock_ns()));
}

uint64_t tp_server_on_tick(void *ctx, uint64_t now_ns)
{
	struct tp_server *srv = ctx;

	tp_health_tick(&srv->health, now_ns);
	tp_report_tick(&srv->report, now_ns, srv->cfg.stats_interval_s);
	tp_scrape_expire(srv->scrape, now_ns);
	if (tp_leave_tick(&srv->leave, &srv->health, now_ns))
		begin_shutdown(srv, SIGTERM, now_ns);
	if (!atomic_load(&srv->shared.shutting_down))
		return srv->leave.leave_at_ns; /* 0 when not leaving */
	if (!srv->aborted && now_ns >= srv->shutdown_deadline_ns)
		abort_work(srv, now_ns);
	if (srv->aborted && !atomic_load(&srv->shared.force_close) && now_ns >= srv->force_close_ns) {
		atomic_store(&srv->shared.force_close, true);
		wake_loops(srv);
	}
	return !srv->aborted                           ? srv->shutdown_deadline_ns
	       : atomic_load(&srv->shared.force_close) ? 0
	                                               : srv->force_close_ns;
}
