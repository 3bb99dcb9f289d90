/* SPDX-License-Identifier: MIT */
/*
 * health: counters, STATUS=, the busy log and the watchdog.
 */
#include "health.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addrtab.h"
#include "conncap.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pool.h"
#include "queue.h"
#include "sd.h"
#include "sockets.h"
#include "turnaway.h"

#define STATUS_EVERY_NS (2 * 1000000000ull)
#define BUSY_LOG_EVERY_NS (5 * 1000000000ull)
#define LOOP_STALL_NS (5 * 1000000000ull)

uint64_t tp_health_init(struct tp_health *h)
{
	uint64_t tick_ms = 1000;

	h->wd_usec = tp_sd_watchdog_usec();
	h->wd_healthy = true;
	if (h->wd_usec) {
		/* Half the interval in whole ticks of at most a second, so each ping falls on a tick. */
		uint64_t half_ms = h->wd_usec / 2000, ticks = half_ms > 1000 ? (half_ms + 999) / 1000 : 1;
		tick_ms = half_ms / ticks > 10 ? half_ms / ticks : 10;
		h->wd_early_ns = tick_ms * 1000000 / 2; /* a tick a little early still pings */
	}
	return tick_ms;
}

void tp_health_turned_away(const struct tp_health *h, uint64_t ret[TP_PEER_REFUSAL_COUNT])
{
	tp_turnaway_totals(h->loops, h->nloops, ret);
}

void tp_health_stats(const struct tp_health *h, struct tp_health_stats *ret)
{
	struct tp_pool_stats ps;
	struct tp_queue_stats qs;

	memset(ret, 0, sizeof(*ret));
	tp_pool_stats(h->pool, &ps);
	tp_queue_stats(h->queue, &qs);
	/* busy counts both kinds; after a shrink, threads finishing a request are still workers */
	size_t configured = ps.target + ps.cheap_target;
	ret->workers = configured > ps.workers ? configured : ps.workers;
	ret->workers_busy = ps.busy;
	ret->queue_depth = qs.depth;
	ret->queue_waiting = qs.waiting;
	ret->queue_capacity = qs.capacity;
	ret->flows = qs.flows;
	ret->largest = qs.largest;
	if (h->metrics) /* as they count them: replies written, not those to clients that left */
		tp_metrics_busy(h->metrics, &ret->rejected, &ret->late);
	for (size_t i = 0; i < h->nloops; i++) {
		struct tp_loop_counters lc;
		tp_loop_counters(h->loops[i], &lc);
		ret->served += lc.served;
		ret->connections += lc.connections;
	}
}

void tp_health_status(struct tp_health *h, uint64_t now_ns)
{
	struct tp_health_stats st;
	double secs = h->last_status_ns ? (double)(now_ns - h->last_status_ns) / 1e9 : 0;

	tp_health_stats(h, &st);
	double rps = secs > 0 ? (double)(st.served - h->status_served) / secs : 0;
	tp_sd_notifyf("STATUS=%s%sworkers %zu/%zu busy, queue %zu/%zu (+%zu waiting) in %zu flows, largest "
	              "address %.0f%%, %" PRIu64 " connections, %" PRIu64 " served, %" PRIu64
	              " busy rejections, %" PRIu64 " over max wait, %.0f req/s",
	              h->phase ? h->phase : "", h->phase ? ": " : "", st.workers_busy, st.workers,
	              st.queue_depth, st.queue_capacity, st.queue_waiting, st.flows,
	              st.queue_depth ? 100.0 * (double)st.largest / (double)st.queue_depth : 0.0,
	              st.connections, st.served, st.rejected, st.late, rps);
	h->last_status_ns = now_ns;
	h->status_served = st.served;
}

int tp_health_stopping(struct tp_health *h, const char *phase, uint64_t now_ns)
{
	int r = tp_sd_notify("STOPPING=1");
	h->phase = phase;
	tp_health_status(h, now_ns);
	return r;
}

/* "in the last N s" since the previous look at a count, or "since start" before the first. */
static void since_text(uint64_t last_ns, uint64_t now_ns, char *buf, size_t len)
{
	double s = last_ns ? (double)(now_ns - last_ns) / 1e9 : 0;

	if (last_ns)
		snprintf(buf, len, "in the last %.*f s", s < 9.95 ? 1 : 0, s); /* at the stop: under 5 s */
	else
		snprintf(buf, len, "since start");
}

/* Busy and late rejections: one line each per interval at most (unless flush: the stop). */
static void log_busy(struct tp_health *h, uint64_t now_ns, bool flush)
{
	struct tp_health_stats st;

	if (!flush && now_ns - h->last_busy_log_ns < BUSY_LOG_EVERY_NS)
		return;
	tp_health_stats(h, &st);
	if (st.rejected > h->busy_logged) {
		char rej[24], depth[24], w[16];
		uint64_t n = st.rejected - h->busy_logged;
		char since[32];
		snprintf(rej, sizeof(rej), "%" PRIu64, n);
		snprintf(depth, sizeof(depth), "%zu", st.queue_depth);
		snprintf(w, sizeof(w), "%zu", st.workers);
		since_text(h->last_busy_log_ns, now_ns, since, sizeof(since));
		struct tp_log_field f[] = {
		        {"TP_REJECTED", rej}, {"TP_QUEUE_DEPTH", depth}, {"TP_WORKERS", w}};
		tp_logf(TP_LOG_WARNING, "busy", f, 3,
		        "overloaded: %" PRIu64
		        " requests refused with ERR server busy %s (queue %zu/%zu, %zu "
		        "workers)",
		        n, since, st.queue_depth, st.queue_capacity, st.workers);
		h->busy_logged = st.rejected;
	}
	if (st.late > h->late_logged) {
		char n[24];
		snprintf(n, sizeof(n), "%" PRIu64, st.late - h->late_logged);
		struct tp_log_field f[] = {{"TP_LATE", n}};
		tp_logf(TP_LOG_WARNING, "late", f, 1,
		        "overloaded: %s requests answered ERR server busy unrun, having waited over "
		        "pool.max_wait_ms",
		        n);
		h->late_logged = st.late;
	}
	h->last_busy_log_ns = now_ns;
}

/* Who r's refusals came from, after their count: the one refused most, by name. */
static size_t refused_from(const struct tp_addrtab_refusals *r, char *buf, size_t len)
{
	if (!r->total)
		return 0;
	if (r->more)
		return (size_t)snprintf(buf, len, " from more than %zu addresses, most from %s", r->addrs,
		                        r->top);
	if (r->addrs == 1)
		return (size_t)snprintf(buf, len, ", all from %s", r->top);
	return (size_t)snprintf(buf, len, " from %zu addresses, %" PRIu64 " from %s", r->addrs, r->top_count,
	                        r->top);
}

/*
 * Refused connections, like busy rejections: one line per interval at most
 * (unless flush: the stop), by the limit each was over (at accept, or at
 * its PROXY header), with who was over the per-address one.
 */
static void log_refused(struct tp_health *h, uint64_t now_ns, bool flush)
{
	struct tp_metrics_events ev;
	struct tp_addrtab_refusals r = {0};
	struct tp_health_stats st;
	char n_txt[24], since[32], why[256];
	uint64_t n = 0;
	size_t len = 0;

	if (!h->metrics ||
	    (!flush && h->last_refused_log_ns && now_ns - h->last_refused_log_ns < BUSY_LOG_EVERY_NS))
		return;
	tp_metrics_events(h->metrics, &ev);
	/* Those over the per-address cap counted by the table that names them, so that both agree. */
	(void)tp_conncap_refusals_take(h->conncap, &r);
	for (size_t i = 0; i < TP_REFUSE_COUNT; i++) {
		uint64_t d = i == TP_REFUSE_PER_ADDRESS ? r.total : ev.refused[i] - h->refused_logged[i];
		if (d && len < sizeof(why))
			len += (size_t)snprintf(why + len, sizeof(why) - len, "%s%" PRIu64 " over %s",
			                        n ? ", " : "", d, tp_metrics_refusal_name(i));
		if (i == TP_REFUSE_PER_ADDRESS && len < sizeof(why))
			len += refused_from(&r, why + len, sizeof(why) - len);
		n += d;
	}
	if (!n)
		return;
	tp_health_stats(h, &st);
	since_text(h->last_refused_log_ns, now_ns, since, sizeof(since));
	snprintf(n_txt, sizeof(n_txt), "%" PRIu64, n);
	struct tp_log_field f[] = {{"TP_REFUSED", n_txt}, {"TP_REFUSED_ADDR", r.top}};
	tp_logf(TP_LOG_WARNING, "refused", f, r.total ? 2 : 1,
	        "refused %" PRIu64 " connection%s (%s) %s (%" PRIu64 " open)", n, n == 1 ? "" : "s", why,
	        since, st.connections);
	memcpy(h->refused_logged, ev.refused, sizeof(ev.refused));
	h->last_refused_log_ns = now_ns;
}

/*
 * Give the heap's freed memory back (memtrim.h), off the request path, on
 * loop 0's tick.  Activity: a reply written, a connection come or gone, a
 * rejection since the last tick.
 */
static void trim_memory(struct tp_health *h, uint64_t now_ns)
{
	struct tp_health_stats st;

	tp_health_stats(h, &st);
	bool active = st.served != h->seen_served || st.connections != h->seen_conns ||
	              st.rejected != h->seen_rejected;
	h->seen_served = st.served;
	h->seen_conns = st.connections;
	h->seen_rejected = st.rejected;
	(void)tp_memtrim_tick(&h->trim, active, now_ns); /* whether it trimmed: logged there */
}

/*
 * Whether work has waited in the queue beside an idle worker for
 * LOOP_STALL_NS with nothing taken meanwhile: a worker that missed its
 * wake-up, a pool that no longer takes work.  Seen at two looks that far
 * apart with the same count of pops.
 */
static bool pool_wedged(struct tp_health *h, const struct tp_pool_stats *ps, uint64_t now_ns, char *why,
                        size_t len)
{
	struct tp_queue_stats qs;

	tp_queue_stats(h->queue, &qs);
	if (qs.depth == 0 || qs.idle == 0) {
		h->idle_since_ns = 0;
		return false;
	}
	if (!h->idle_since_ns || ps->pops != h->idle_pops) {
		h->idle_since_ns = now_ns;
		h->idle_pops = ps->pops;
		return false;
	}
	if (now_ns < h->idle_since_ns + LOOP_STALL_NS)
		return false;
	snprintf(why, len, "%zu requests queued and %zu workers idle, none taken for %.1f s", qs.depth,
	         qs.idle, (double)(now_ns - h->idle_since_ns) / 1e9);
	return true;
}

/*
 * Healthy: every event loop went round recently (or ended with the
 * shutdown: the others end before loop 0), no worker has been on
 * one request longer than the stall threshold (a SLEEP within
 * max_sleep_ms is busy, not stuck), and the workers take queued work.
 * why gets the reason when unhealthy.
 */
static bool healthy(struct tp_health *h, uint64_t now_ns, char *why, size_t len)
{
	struct tp_pool_stats ps;

	for (size_t i = 1; i < h->nloops; i++) {
		struct tp_loop_counters lc;
		tp_loop_counters(h->loops[i], &lc);
		if (lc.last_turn_ns && now_ns > lc.last_turn_ns + LOOP_STALL_NS) {
			snprintf(why, len, "event loop %zu has not run for %.1f s", i,
			         (double)(now_ns - lc.last_turn_ns) / 1e9);
			return false;
		}
	}
	tp_pool_stats(h->pool, &ps);
	if (ps.stall_at_ns && now_ns > ps.stall_at_ns) {
		snprintf(why, len,
		         "a worker has been on one request for %.1f s (stall threshold %.0f ms when it "
		         "started); %zu of %zu workers busy",
		         (double)(now_ns - ps.stall_since_ns) / 1e9,
		         (double)(ps.stall_at_ns - ps.stall_since_ns) / 1e6, ps.busy, ps.workers);
		return false;
	}
	return !pool_wedged(h, &ps, now_ns, why, len);
}

bool tp_health_ok(struct tp_health *h, uint64_t now_ns)
{
	char why[256];
	return healthy(h, now_ns, why, sizeof(why));
}

static void watchdog(struct tp_health *h, uint64_t now_ns)
{
	char why[256];

	if (!h->wd_usec || now_ns + h->wd_early_ns < h->wd_next_ns)
		return;
	h->wd_next_ns = now_ns + h->wd_usec * 1000 / 2;
	if (healthy(h, now_ns, why, sizeof(why))) {
		if (!h->wd_healthy)
			tp_log(TP_LOG_NOTICE, "stall", "healthy again: watchdog pings resume");
		h->wd_healthy = true;
		tp_sd_notify("WATCHDOG=1");
		return;
	}
	if (h->wd_healthy && h->metrics)
		tp_metrics_unhealthy(h->metrics);
	if (h->wd_healthy)
		tp_log(TP_LOG_CRIT, "stall", "unhealthy: %s; not pinging the watchdog", why);
	h->wd_healthy = false;
}

void tp_health_tick(struct tp_health *h, uint64_t now_ns)
{
	watchdog(h, now_ns);
	if (now_ns - h->last_status_ns >= STATUS_EVERY_NS)
		tp_health_status(h, now_ns);
	log_busy(h, now_ns, false);
	log_refused(h, now_ns, false);
	tp_turnaway_log_tick(&h->turnaway, h->loops, h->nloops, now_ns);
	trim_memory(h, now_ns);
}

void tp_health_flush(struct tp_health *h, uint64_t now_ns)
{
	log_busy(h, now_ns, true);
	log_refused(h, now_ns, true);
	tp_turnaway_log_flush(&h->turnaway, h->loops, h->nloops, now_ns);
}

void tp_health_log_ready(const struct tp_sockets *sock, const char *metrics_name, const struct tp_config *cfg,
                         size_t nloops)
{
	for (size_t i = 0; i < sock->ndata; i++)
		tp_log(TP_LOG_INFO, "start", "listening on %s%s", sock->data[i].name,
		       sock->activated ? " (socket from systemd)" : "");
	if (sock->activated)
		tp_log(TP_LOG_INFO, "start", "socket activation: the listen settings are not used");
	if (metrics_name[0])
		tp_log(TP_LOG_INFO, "start", "metrics on http://%s/metrics%s", metrics_name,
		       sock->activated ? " (socket from systemd)" : "");
	else if (sock->activated && cfg->metrics_enabled)
		tp_log(TP_LOG_NOTICE, "start",
		       "metrics.enabled is set but systemd passed no \"metrics\" socket: enable "
		       "tpserver-metrics.socket to serve metrics");
	if (sock->agent.fd >= 0)
		tp_log(TP_LOG_INFO, "start", "agent check on %s%s", sock->agent.name,
		       sock->agent_activated ? " (socket from systemd)" : "");
	else if (sock->activated && cfg->agent_enabled)
		tp_log(TP_LOG_NOTICE, "start",
		       "agent.enabled is set but systemd passed no \"agent\" socket: enable "
		       "tpserver-agent.socket to answer agent checks");
	char warning[TP_MSG_MAX];
	for (const tp_config_warning_fn *w = tp_config_warnings; *w; w++)
		if ((*w)(cfg, warning, sizeof(warning)))
			tp_log(TP_LOG_WARNING, "start", "%s", warning);

	char w[16];
	snprintf(w, sizeof(w), "%d", cfg->workers);
	struct tp_log_field f[] = {{"TP_WORKERS", w}};
	tp_logf(TP_LOG_INFO, "ready", f, 1,
	        "ready: %d workers, queue %d (wait %d ms), %zu event loop(s), max %d connections, pid %d",
	        cfg->workers, cfg->queue_size, cfg->queue_timeout_ms, nloops, cfg->max_connections,
	        (int)getpid());
}
