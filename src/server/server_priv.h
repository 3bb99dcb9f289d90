/* SPDX-License-Identifier: MIT */
/*
 * server_priv: the server's state, shared by its two files: server.c
 * (construction, the loops' callbacks, the run) and server_events.c (what
 * loop 0 does on a signal, a tick, a wake-up or an agent check: reload,
 * leave, shutdown).  Nothing else includes it.
 */
#ifndef TP_SERVER_PRIV_H
#define TP_SERVER_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conncap.h"
#include "config.h"
#include "dispatch.h"
#include "gate.h"
#include "health.h"
#include "leave.h"
#include "loop.h"
#include "reload.h"
#include "report.h"
#include "sockets.h"

#define MAX_LOOPS 64

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
	uint64_t gone_by_ns; /* the first SIGTERM + stop_timeout_s, less a margin; 0 before it */
	uint64_t tick_ms;
	struct tp_reload_job *reload_job; /* the read in progress, or NULL */

	struct tp_conncap conncap; /* connections counted in, per address too */
	struct tp_dispatch dispatch;
	struct tp_conncap_ctx caps; /* conncap with the caps of cfg */
	pthread_mutex_t cfg_lock;
	struct tp_leave leave; /* loop 0: drain, graceful leave, the agent check */
	struct tp_health health;
	struct tp_loop *loops[MAX_LOOPS];
	struct tp_gate start;   /* the threads of loops 1..n-1 wait at it until tp_server_run */
	struct tp_sockets sock; /* the listening sockets, from systemd or bound */
	struct tp_reload_outcome reload_outcome;
	_Atomic int loops_running; /* threads of loops 1..n-1 still in tp_loop_run */
	struct tp_loop_shared shared;
	struct tp_config cfg;
	bool reload_again;     /* loop 0: SIGHUP during it: read once more after it */
	bool aborted;          /* loop 0: the shutdown deadline passed: the rest was answered */
	char metrics_name[64]; /* the endpoint's address, for the log */
};

/* The settings the queue and the dispatcher hold a copy of (start, reload). */
void tp_server_apply_fairness(struct tp_server *srv, const struct tp_config *cfg);

/* Loop 0's hooks (struct tp_loop_hooks); ctx is the server. */
void tp_server_on_signal(void *ctx, int signo);
void tp_server_on_wake(void *ctx);
uint64_t tp_server_on_tick(void *ctx, uint64_t now_ns);
int tp_server_on_agent(void *ctx);

#endif
