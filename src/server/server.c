/* SPDX-License-Identifier: MIT */
/*
 * server: wiring, lifecycle (start, ready, reload, shutdown), the periodic
 * status and the watchdog.
 *
 * Everything here that is not a constructor runs on loop 0's thread (the
 * main thread), except exec_batch() and admit_one(), which are the pool's
 * and the queue's callbacks.
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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "ops.h"
#include "pool.h"
#include "proto.h"
#include "queue.h"
#include "req.h"
#include "sd.h"

#define MAX_LISTENERS 16
#define MAX_LOOPS 64
#define STATUS_EVERY_NS (2 * 1000000000ull)
#define BUSY_LOG_EVERY_NS (5 * 1000000000ull)
#define LOOP_STALL_NS (5 * 1000000000ull)
#define FORCE_CLOSE_GRACE_NS (1000000000ull)

struct tp_server {
	pthread_mutex_t cfg_lock;
	struct tp_config cfg;
	_Atomic unsigned cfg_gen;
	tp_server_reload_fn reload;
	void *reload_ctx;

	struct tp_listener listeners[MAX_LISTENERS];
	size_t nlisteners;
	bool activated; /* sockets came from systemd */

	struct tp_queue *queue;
	struct tp_pool *pool;
	struct tp_loop *loops[MAX_LOOPS];
	size_t nloops;

	_Atomic bool shutting_down;
	_Atomic bool force_close;
	_Atomic int64_t nconns;
	_Atomic int loops_running; /* threads of loops 1..n-1 still in tp_loop_run */

	/* loop 0 only */
	uint64_t shutdown_deadline_ns;
	uint64_t force_close_ns;
	bool aborted;
	uint64_t last_status_ns, status_served;
	uint64_t last_busy_log_ns, busy_logged;
	uint64_t wd_usec, wd_next_ns;
	bool wd_healthy;
	uint64_t tick_ms;
};

/* Pool callback, on a worker: run a batch and hand each request back to its loop. */
static void exec_batch(struct tp_qnode **nodes, size_t n, void *ctx)
{
	struct tp_server *srv = ctx;
	struct tp_req *first = NULL, *last = NULL;
	struct tp_loop *cur = NULL;
	size_t cnt = 0;

	for (size_t i = 0; i < n; i++) {
		struct tp_req *r = tp_req_of(nodes[i]);
		struct tp_loop *l = r->conn->loop;

		tp_ops_run(r, srv->pool);
		if (l != cur && cnt) {
			tp_loop_post_done(cur, first, last, cnt);
			first = NULL;
			cnt = 0;
		}
		cur = l;
		r->qnode.next = NULL;
		if (first)
			last->qnode.next = &r->qnode;
		else
			first = r;
		last = r;
		cnt++;
	}
	if (cnt)
		tp_loop_post_done(cur, first, last, cnt);
}

/* Queue callback, queue lock held: a waiter got its place. */
static void admit_one(struct tp_qnode *n, void *ctx)
{
	struct tp_req *r = tp_req_of(n);
	(void)ctx;
	tp_loop_post_admit(r->conn->loop, r);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	/* Connections are fds: take all the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int open_listeners(struct tp_server *srv, char *err, size_t errlen)
{
	int n = tp_sd_listen_fds();

	if (n < 0) {
		snprintf(err, errlen, "sd_listen_fds(): %s", strerror(-n));
		return n;
	}
	if (n > 0) {
		if (n > MAX_LISTENERS) {
			snprintf(err, errlen, "%d sockets passed by systemd; at most %d are supported", n,
			         MAX_LISTENERS);
			return -EINVAL;
		}
		for (int i = 0; i < n; i++) {
			int r = tp_listener_adopt(tp_sd_listen_fds_start() + i, &srv->listeners[i], err,
			                          errlen);
			if (r < 0)
				return r;
			srv->nlisteners++;
		}
		srv->activated = true;
		return 0;
	}
	int r = tp_listener_bind(srv->cfg.host, srv->cfg.port, srv->cfg.backlog, &srv->listeners[0], err,
	                         errlen);
	if (r < 0)
		return r;
	srv->nlisteners = 1;
	return 0;
}

int tp_server_new(const struct tp_config *cfg, tp_server_reload_fn reload, void *reload_ctx,
                  struct tp_server **ret, char *err, size_t errlen)
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
	for (size_t i = 0; i < MAX_LISTENERS; i++)
		srv->listeners[i].fd = -1;

	raise_nofile();
	r = open_listeners(srv, err, errlen);
	if (r < 0)
		goto fail;

	srv->queue = tp_queue_new((size_t)cfg->queue_size, admit_one, srv);
	srv->pool = srv->queue ? tp_pool_new(srv->queue, exec_batch, srv) : NULL;
	if (!srv->pool) {
		snprintf(err, errlen, "out of memory creating the queue and pool");
		r = -ENOMEM;
		goto fail;
	}
	srv->nloops = (size_t)cfg->io_threads;
	if (srv->nloops < 1 || srv->nloops > MAX_LOOPS)
		srv->nloops = 1;
	for (size_t i = 0; i < srv->nloops; i++) {
		srv->loops[i] = tp_loop_new(srv, (unsigned)i);
		if (!srv->loops[i]) {
			r = -errno;
			snprintf(err, errlen, "cannot create event loop %zu: %s", i, strerror(errno));
			goto fail;
		}
	}
	r = tp_pool_start(srv->pool, (size_t)cfg->workers);
	if (r < 0) {
		snprintf(err, errlen, "cannot start %d workers: pthread_create(): %s (TasksMax too low?)",
		         cfg->workers, strerror(-r));
		goto fail;
	}
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
	if (srv->pool) {
		tp_pool_stop(srv->pool);
		tp_pool_free(srv->pool);
	}
	tp_queue_free(srv->queue);
	for (size_t i = 0; i < srv->nloops; i++)
		tp_loop_free(srv->loops[i]);
	for (size_t i = 0; i < srv->nlisteners; i++)
		if (srv->listeners[i].fd >= 0)
			close(srv->listeners[i].fd);
	pthread_mutex_destroy(&srv->cfg_lock);
	free(srv);
}

bool tp_server_shutting_down(const struct tp_server *srv)
{
	return atomic_load_explicit(&srv->shutting_down, memory_order_relaxed);
}

bool tp_server_force_close(const struct tp_server *srv)
{
	return atomic_load_explicit(&srv->force_close, memory_order_relaxed);
}

struct tp_queue *tp_server_queue(const struct tp_server *srv)
{
	return srv->queue;
}

struct tp_listener *tp_server_listeners(struct tp_server *srv, size_t *ret_n)
{
	*ret_n = srv->nlisteners;
	return srv->listeners;
}

unsigned tp_server_config_gen(const struct tp_server *srv)
{
	return atomic_load_explicit(&srv->cfg_gen, memory_order_acquire);
}

void tp_server_config_copy(struct tp_server *srv, struct tp_config *ret)
{
	pthread_mutex_lock(&srv->cfg_lock);
	*ret = srv->cfg;
	pthread_mutex_unlock(&srv->cfg_lock);
}

bool tp_server_conn_enter(struct tp_server *srv)
{
	int64_t max;
	pthread_mutex_lock(&srv->cfg_lock);
	max = srv->cfg.max_connections;
	pthread_mutex_unlock(&srv->cfg_lock);
	if (atomic_fetch_add_explicit(&srv->nconns, 1, memory_order_relaxed) >= max) {
		atomic_fetch_sub_explicit(&srv->nconns, 1, memory_order_relaxed);
		return false;
	}
	return true;
}

void tp_server_conn_leave(struct tp_server *srv)
{
	atomic_fetch_sub_explicit(&srv->nconns, 1, memory_order_relaxed);
}

void tp_server_stats(struct tp_server *srv, struct tp_server_stats *ret)
{
	struct tp_pool_stats ps;
	struct tp_queue_stats qs;

	memset(ret, 0, sizeof(*ret));
	tp_pool_stats(srv->pool, &ps);
	tp_queue_stats(srv->queue, &qs);
	ret->workers = ps.target;
	ret->workers_busy = ps.busy;
	ret->oldest_busy_ns = ps.oldest_busy_ns;
	ret->queue_depth = qs.depth;
	ret->queue_waiting = qs.waiting;
	ret->queue_capacity = qs.capacity;
	for (size_t i = 0; i < srv->nloops; i++) {
		struct tp_loop_counters lc;
		tp_loop_counters(srv->loops[i], &lc);
		ret->served += lc.served;
		ret->rejected += lc.busy;
		ret->connections += lc.connections;
	}
}

static void wake_loops(struct tp_server *srv)
{
	for (size_t i = 0; i < srv->nloops; i++)
		tp_loop_wake(srv->loops[i]);
}

static void begin_shutdown(struct tp_server *srv, int signo)
{
	struct tp_server_stats st;
	uint64_t now = tp_clock_ns();

	if (atomic_load(&srv->shutting_down)) {
		/* A second signal: stop waiting for work in progress. */
		tp_log(TP_LOG_NOTICE, "stop", "%s again: cutting the shutdown short", strsignal(signo));
		srv->shutdown_deadline_ns = now;
		return;
	}
	tp_sd_notify("STOPPING=1");
	tp_server_stats(srv, &st);
	tp_log(TP_LOG_NOTICE, "stop",
	       "%s: shutting down; answering %zu queued and %zu running requests, up to %d s",
	       strsignal(signo), st.queue_depth + st.queue_waiting, st.workers_busy,
	       srv->cfg.shutdown_timeout_s);
	srv->shutdown_deadline_ns = now + (uint64_t)srv->cfg.shutdown_timeout_s * 1000000000ull;
	atomic_store(&srv->shutting_down, true);
	wake_loops(srv);
}

/* Past the shutdown deadline: whatever still waits or sleeps gets ERR server shutting down. */
static void abort_work(struct tp_server *srv, uint64_t now)
{
	struct tp_qnode *n;
	size_t cnt;

	srv->aborted = true;
	tp_pool_abort(srv->pool);
	cnt = tp_queue_take_all(srv->queue, &n);
	while (n) {
		struct tp_qnode *next = n->next;
		struct tp_req *r = tp_req_of(n);
		tp_req_fail(r, TP_PROTO_SHUTDOWN);
		tp_loop_post_done(r->conn->loop, r, r, 1);
		n = next;
	}
	tp_log(TP_LOG_WARNING, "stop",
	       "shutdown timeout reached: %zu queued requests answered with ERR server shutting down", cnt);
	srv->force_close_ns = now + FORCE_CLOSE_GRACE_NS;
}

static int apply_reload(struct tp_server *srv)
{
	struct tp_config nc, old;
	char err[512];
	int r;

	if (!srv->reload)
		return 0;
	r = srv->reload(&nc, err, sizeof(err), srv->reload_ctx);
	if (r < 0) {
		struct tp_log_field f[] = {{"TP_RELOAD_ERROR", err}};
		tp_logf(TP_LOG_ERROR, "reload", f, 1, "reload failed, keeping the running configuration: %s",
		        err);
		return r;
	}
	old = srv->cfg;
	if (strcmp(nc.host, old.host) != 0 || nc.port != old.port || nc.backlog != old.backlog) {
		if (srv->activated)
			tp_log(TP_LOG_INFO, "reload", "listen settings are ignored under socket activation");
		else
			tp_log(TP_LOG_WARNING, "reload",
			       "listen settings changed (%s:%d): a restart is needed to apply them", nc.host,
			       nc.port);
	}
	if (nc.io_threads != old.io_threads)
		tp_log(TP_LOG_WARNING, "reload",
		       "pool.io_threads changed to %d: a restart is needed to apply it", nc.io_threads);
	/* Keep what only a restart can change, so the status stays true. */
	snprintf(nc.host, sizeof(nc.host), "%s", old.host);
	nc.port = old.port;
	nc.backlog = old.backlog;
	nc.io_threads = old.io_threads;

	if (nc.workers != old.workers) {
		r = tp_pool_resize(srv->pool, (size_t)nc.workers);
		if (r < 0) {
			tp_log(TP_LOG_ERROR, "reload", "cannot resize the pool to %d workers: %s; keeping %d",
			       nc.workers, strerror(-r), old.workers);
			(void)tp_pool_resize(srv->pool, (size_t)old.workers);
			nc.workers = old.workers;
		}
	}
	if (nc.queue_size != old.queue_size)
		tp_queue_set_capacity(srv->queue, (size_t)nc.queue_size);
	tp_log_set_level(nc.log_level);

	pthread_mutex_lock(&srv->cfg_lock);
	srv->cfg = nc;
	pthread_mutex_unlock(&srv->cfg_lock);
	atomic_fetch_add_explicit(&srv->cfg_gen, 1, memory_order_release);
	wake_loops(srv);

	char w[16], q[16];
	snprintf(w, sizeof(w), "%d", nc.workers);
	snprintf(q, sizeof(q), "%d", nc.queue_size);
	struct tp_log_field f[] = {{"TP_WORKERS", w}, {"TP_QUEUE_SIZE", q}};
	tp_logf(TP_LOG_NOTICE, "reload", f, 2,
	        "configuration reloaded: %d workers, queue %d, queue timeout %d ms", nc.workers,
	        nc.queue_size, nc.queue_timeout_ms);
	return 0;
}

void tp_server_on_signal(struct tp_server *srv, int signo)
{
	switch (signo) {
	case SIGTERM:
	case SIGINT:
		begin_shutdown(srv, signo);
		break;
	case SIGHUP:
		if (atomic_load(&srv->shutting_down))
			break;
		tp_sd_notify("RELOADING=1");
		apply_reload(srv);
		/* Also after a rejected file: the service is up and serving the old settings. */
		tp_sd_notify("READY=1");
		break;
	case SIGUSR1:
	case SIGUSR2:
		/* Not a command here: a stray kill -USR1 must not stop the service. */
		tp_log(TP_LOG_NOTICE, "signal", "%s received: ignored", strsignal(signo));
		break;
	default:
		break;
	}
}

static void send_status(struct tp_server *srv, uint64_t now)
{
	struct tp_server_stats st;
	double secs = srv->last_status_ns ? (double)(now - srv->last_status_ns) / 1e9 : 0;

	tp_server_stats(srv, &st);
	double rps = secs > 0 ? (double)(st.served - srv->status_served) / secs : 0;
	tp_sd_notifyf("STATUS=workers %zu/%zu busy, queue %zu/%zu (+%zu waiting), %" PRIu64
	              " connections, %" PRIu64 " served, %" PRIu64 " busy rejections, %.0f req/s",
	              st.workers_busy, st.workers, st.queue_depth, st.queue_capacity, st.queue_waiting,
	              st.connections, st.served, st.rejected, rps);
	srv->last_status_ns = now;
	srv->status_served = st.served;
}

static void log_busy(struct tp_server *srv, uint64_t now)
{
	struct tp_server_stats st;

	if (now - srv->last_busy_log_ns < BUSY_LOG_EVERY_NS)
		return;
	tp_server_stats(srv, &st);
	if (st.rejected > srv->busy_logged) {
		char rej[24], depth[24], w[16];
		uint64_t n = st.rejected - srv->busy_logged;
		double secs = srv->last_busy_log_ns ? (double)(now - srv->last_busy_log_ns) / 1e9 : 0;
		snprintf(rej, sizeof(rej), "%" PRIu64, n);
		snprintf(depth, sizeof(depth), "%zu", st.queue_depth);
		snprintf(w, sizeof(w), "%zu", st.workers);
		struct tp_log_field f[] = {
		        {"TP_REJECTED", rej}, {"TP_QUEUE_DEPTH", depth}, {"TP_WORKERS", w}};
		tp_logf(TP_LOG_WARNING, "busy", f, 3,
		        "overloaded: %" PRIu64 " requests refused with ERR server busy in the last %.0f s "
		        "(queue %zu/%zu, %zu workers)",
		        n, secs, st.queue_depth, st.queue_capacity, st.workers);
		srv->busy_logged = st.rejected;
	}
	srv->last_busy_log_ns = now;
}

/*
 * Healthy: every event loop went round recently, and no worker has been
 * on one request longer than the stall threshold (a SLEEP within
 * max_sleep_ms is busy, not stuck).  why gets the reason when unhealthy.
 */
static bool healthy(struct tp_server *srv, uint64_t now, char *why, size_t len)
{
	struct tp_pool_stats ps;
	uint64_t stall_ns = (uint64_t)tp_config_stall_ms(&srv->cfg) * 1000000ull;

	for (size_t i = 1; i < srv->nloops; i++) {
		struct tp_loop_counters lc;
		tp_loop_counters(srv->loops[i], &lc);
		if (lc.last_turn_ns && now > lc.last_turn_ns + LOOP_STALL_NS) {
			snprintf(why, len, "event loop %zu has not run for %.1f s", i,
			         (double)(now - lc.last_turn_ns) / 1e9);
			return false;
		}
	}
	tp_pool_stats(srv->pool, &ps);
	if (ps.oldest_busy_ns && now > ps.oldest_busy_ns + stall_ns) {
		snprintf(why, len,
		         "a worker has been on one request for %.1f s (stall threshold %d ms); %zu of %zu "
		         "workers busy",
		         (double)(now - ps.oldest_busy_ns) / 1e9, tp_config_stall_ms(&srv->cfg), ps.busy,
		         ps.workers);
		return false;
	}
	return true;
}

static void watchdog(struct tp_server *srv, uint64_t now)
{
	char why[256];

	if (!srv->wd_usec || now < srv->wd_next_ns)
		return;
	srv->wd_next_ns = now + srv->wd_usec * 1000 / 2;
	if (healthy(srv, now, why, sizeof(why))) {
		if (!srv->wd_healthy)
			tp_log(TP_LOG_NOTICE, "stall", "healthy again: watchdog pings resume");
		srv->wd_healthy = true;
		tp_sd_notify("WATCHDOG=1");
		return;
	}
	if (srv->wd_healthy)
		tp_log(TP_LOG_CRIT, "stall", "unhealthy: %s; not pinging the watchdog", why);
	srv->wd_healthy = false;
}

uint64_t tp_server_tick_ms(const struct tp_server *srv)
{
	return srv->tick_ms ? srv->tick_ms : 1000;
}

void tp_server_tick(struct tp_server *srv, uint64_t now)
{
	watchdog(srv, now);
	if (now - srv->last_status_ns >= STATUS_EVERY_NS)
		send_status(srv, now);
	log_busy(srv, now);
	if (atomic_load(&srv->shutting_down)) {
		if (!srv->aborted && now >= srv->shutdown_deadline_ns)
			abort_work(srv, now);
		if (srv->aborted && !atomic_load(&srv->force_close) && now >= srv->force_close_ns) {
			atomic_store(&srv->force_close, true);
			wake_loops(srv);
		}
	}
}

bool tp_server_all_loops_done(const struct tp_server *srv)
{
	return atomic_load(&srv->loops_running) == 0;
}

void tp_server_loop_exited(struct tp_server *srv)
{
	atomic_fetch_sub(&srv->loops_running, 1);
	tp_loop_wake(srv->loops[0]);
}

int tp_server_run(struct tp_server *srv)
{
	int r;

	srv->wd_usec = tp_sd_watchdog_usec();
	srv->wd_healthy = true;
	srv->tick_ms = 1000;
	if (srv->wd_usec) {
		/* Ticks must come at least as often as the pings (half the interval). */
		uint64_t half_ms = srv->wd_usec / 2000;
		if (half_ms < srv->tick_ms)
			srv->tick_ms = half_ms > 10 ? half_ms : 10;
	}
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
	for (size_t i = 0; i < srv->nlisteners; i++)
		tp_log(TP_LOG_INFO, "start", "listening on %s%s", srv->listeners[i].name,
		       srv->activated ? " (socket from systemd)" : "");
	if (srv->activated)
		tp_log(TP_LOG_INFO, "start", "socket activation: the listen settings are not used");

	char w[16];
	snprintf(w, sizeof(w), "%d", srv->cfg.workers);
	struct tp_log_field f[] = {{"TP_WORKERS", w}};
	tp_logf(TP_LOG_INFO, "ready", f, 1,
	        "ready: %d workers, queue %d (wait %d ms), %zu event loop(s), max %d connections, pid %d",
	        srv->cfg.workers, srv->cfg.queue_size, srv->cfg.queue_timeout_ms, srv->nloops,
	        srv->cfg.max_connections, (int)getpid());
	tp_sd_notifyf("READY=1\nMAINPID=%d", (int)getpid());
	send_status(srv, tp_clock_ns());
	if (srv->wd_usec)
		tp_log(TP_LOG_INFO, "start", "watchdog: pinging every %" PRIu64 " ms while healthy",
		       srv->wd_usec / 2000);

	r = tp_loop_run(srv->loops[0]);
	if (r < 0)
		tp_log(TP_LOG_ERROR, "stop", "event loop 0: epoll_wait: %s", strerror(-r));
	for (size_t i = 1; i < srv->nloops; i++)
		tp_loop_join(srv->loops[i]);
	tp_pool_stop(srv->pool);

	struct tp_server_stats st;
	tp_server_stats(srv, &st);
	tp_log(TP_LOG_NOTICE, "stop", "stopped: %" PRIu64 " requests served, %" PRIu64 " busy rejections",
	       st.served, st.rejected);
	return r < 0 ? 1 : 0;
}
