/* SPDX-License-Identifier: MIT */
/*
 * health: what the server tells the outside about itself: the counters
 * (summed over the pool, the queue and the loops), the STATUS= line every
 * 2 s, the busy-rejection and refused-connection log lines at most every
 * 5 s each (what is left of the latter logged at the stop), giving freed
 * memory back to the system (memtrim.h), and the watchdog pings, sent only
 * while every loop turns and no worker is stuck.  Runs on loop 0
 * (tp_health_stats on any thread).
 */
#ifndef TP_HEALTH_H
#define TP_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memtrim.h"
#include "metrics.h"
#include "turnaway.h"

struct tp_config;
struct tp_sockets;

struct tp_loop;
struct tp_metrics;
struct tp_conncap;
struct tp_pool;
struct tp_queue;

struct tp_health_stats {
	size_t workers, workers_busy;
	size_t queue_depth, queue_capacity, queue_waiting;
	uint64_t connections;
	uint64_t served;   /* replies written */
	uint64_t rejected; /* ERR server busy: no space before queue_timeout_ms */
	uint64_t late;     /* ERR server busy: waited over pool.max_wait_ms */
	size_t flows;      /* connections with admitted work (fair modes) */
	size_t largest;    /* admitted work of the busiest client address (fair modes) */
};

struct tp_health {
	/* what it looks at; set before the first call */
	struct tp_pool *pool;
	struct tp_queue *queue;
	struct tp_loop *const *loops;
	size_t nloops;
	uint64_t wd_usec;           /* WATCHDOG_USEC, 0 without a watchdog */
	struct tp_metrics *metrics; /* unhealthy episodes go in, busy counts come out; or NULL */
	struct tp_conncap *conncap; /* who was refused over the per-address cap */
	const char *phase;          /* STATUS='s first words: "leaving", "shutting down", or NULL */

	/* its own state (loop 0) */
	uint64_t last_status_ns, status_served;
	uint64_t last_busy_log_ns, busy_logged, late_logged;
	uint64_t last_refused_log_ns, refused_logged[TP_REFUSE_COUNT];
	uint64_t seen_served, seen_conns, seen_rejected; /* the counters at the last tick */
	struct tp_memtrim trim;
	uint64_t wd_next_ns, wd_early_ns;
	uint64_t idle_pops, idle_since_ns; /* queued work and idle workers: pops then, and since when */
	bool wd_healthy;
	struct tp_turnaway_log turnaway; /* connections closed before a first request */
};

/*
 * Read the watchdog interval into h and return how often loop 0 must
 * tick (ms): a whole fraction of half the interval (the pings' period),
 * at most a second.
 */
uint64_t tp_health_init(struct tp_health *h);

/* Sum the counters (any thread). */
void tp_health_stats(const struct tp_health *h, struct tp_health_stats *ret);

/* Connections closed before their first request since start, by reason (any thread). */
void tp_health_turned_away(const struct tp_health *h, uint64_t ret[TP_PEER_REFUSAL_COUNT]);

/* Send STATUS= now. */
void tp_health_status(struct tp_health *h, uint64_t now_ns);

/*
 * The shutdown (or its leave) begins: STOPPING=1, and STATUS= from now on
 * starts with phase.  Returns what sending STOPPING=1 did: > 0 systemd has
 * it, 0 no NOTIFY_SOCKET, or a negative errno.
 */
int tp_health_stopping(struct tp_health *h, const char *phase, uint64_t now_ns);

/* Is the server healthy now (what gates the watchdog): every loop turning, no worker stuck? */
bool tp_health_ok(struct tp_health *h, uint64_t now_ns);

/*
 * Loop 0's tick: ping the watchdog when due and healthy (no worker past
 * the stall deadline its request got when it started, see
 * tp_pool_set_stall_ms), STATUS= when due, the busy log line.
 */
void tp_health_tick(struct tp_health *h, uint64_t now_ns);

/*
 * The stop, once every loop is done: log the busy and late rejections, the
 * refused connections and the connections closed before their first
 * request that no line counted yet, however soon after the last line.
 */
void tp_health_flush(struct tp_health *h, uint64_t now_ns);

/* Log the sockets served and the "ready" line (start, loop 0). */
void tp_health_log_ready(const struct tp_sockets *sock, const char *metrics_name, const struct tp_config *cfg,
                         size_t nloops);

#endif
