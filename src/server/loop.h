/* SPDX-License-Identifier: MIT */
/*
 * loop: an event-loop thread.  It owns an epoll set, the connections it
 * accepted, and their sockets; it accepts from the shared listening
 * sockets, lets its connections read and parse, pushes their requests to
 * the queue, and lets them write replies.  It knows nothing of the server:
 * it is handed its queue, the listening sockets, the state it reads each
 * turn and callbacks for the rest (struct tp_loop_params).
 *
 * Work comes back to it from any thread through tp_loop_post_done() and
 * tp_loop_post_admit() (its mailbox, post.h).  Loop 0 runs on the main
 * thread and also reads the signals and calls the tick callback.
 */
#ifndef TP_LOOP_H
#define TP_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "handover_state.h"
#include "listener.h"
#include "peer.h"
#include "req.h"

struct tp_conn;
struct tp_loop;
struct tp_metrics_slot;
struct tp_queue;
struct tp_scrape;

/* What the server changes and every loop reads each turn (any thread). */
struct tp_loop_shared {
	_Atomic bool shutting_down; /* stop accepting, answer what was read, then close */
	_Atomic bool keeping;       /* set before shutting_down: hand connections over instead */
	_Atomic bool force_close;   /* past the shutdown deadline and its grace: close all */
	_Atomic bool draining;      /* leaving: close connections at request boundaries */
	_Atomic unsigned cfg_gen;   /* bumped after the configuration changed (then config_copy) */
};

/* Callbacks into the server.  Each runs on the calling loop's thread. */
struct tp_loop_hooks {
	void *ctx;
	/*
	 * Count a new connection from peer in, with its address's group in the
	 * queue in *ret_group; false (not counted) over max_connections or
	 * max_connections_per_address.  peer NULL and uncapped as in
	 * tp_conncap_conn_enter() (conncap.h).
	 */
	bool (*conn_enter)(void *ctx, const struct sockaddr_storage *peer, bool uncapped,
	                   struct tp_qgroup **ret_group);
	/* c closed with requests in flight: take back those still queued (may be NULL). */
	void (*conn_closed)(void *ctx, struct tp_conn *c);
	/* A connection of group was freed: its place is free again. */
	void (*conn_leave)(void *ctx, struct tp_qgroup *group);
	/* A PROXY header named c's client: count it under that address; false: over its cap. */
	bool (*conn_named)(void *ctx, struct tp_conn *c);
	/* Copy the current configuration (at creation and when cfg_gen changes). */
	void (*config_copy)(void *ctx, struct tp_config *ret);
	/* Loop 0: a signal of SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 arrived. */
	void (*on_signal)(void *ctx, int signo);
	/* Loop 0: its eventfd was written (a post to its mailbox, tp_loop_wake()); may be NULL. */
	void (*on_wake)(void *ctx);
	/*
	 * Loop 0: the agent-check socket (params.agent) is readable.  Returns 0,
	 * or the errno of a failed accept: out of fds, the loop stops watching
	 * the socket for a while (tp_listener_pause_other()).
	 */
	int (*on_agent)(void *ctx);
	/*
	 * Loop 0: its tick (tick_ms) came round, or a signal arrived.  Returns
	 * a deadline sooner than the next tick at which to be called again
	 * (the end of a leave, the shutdown's), or 0.
	 */
	uint64_t (*on_tick)(void *ctx, uint64_t now_ns);
	/* Loop 0: have every other loop's threads returned?  It stays until then. */
	bool (*others_done)(void *ctx);
	/* Keeping: take a connection's fd and record (hand_off_ctx; any loop's thread). */
	bool (*hand_off)(void *ctx, int fd, const struct tp_handover_conn *rec);
	void *hand_off_ctx;
	/* Other loops: this loop's thread is about to return. */
	void (*on_exit)(void *ctx);
};

struct tp_loop_params {
	unsigned index; /* 0: the main thread's loop */
	struct tp_queue *queue;
	struct tp_listener *listeners; /* shared by every loop (EPOLLEXCLUSIVE) */
	size_t nlisteners;
	const struct tp_loop_shared *shared;
	struct tp_loop_hooks hooks;
	uint64_t tick_ms;                /* loop 0's tick period; other loops tick every second */
	struct tp_metrics_slot *metrics; /* this loop's counters (written on its thread only) */
	struct tp_scrape *scrape;        /* loop 0: the metrics endpoint it watches, or NULL */
	struct tp_listener *agent;       /* loop 0 watches it (fd >= 0; src.kind TP_SOURCE_AGENT) */
};

/*
 * A loop as p describes (p's pointers must outlive it).  Loop 0 also reads
 * the signals above through a signalfd and blocks them in the calling
 * thread: create it before any other thread, which inherits the mask.
 * NULL with errno set on failure.
 */
struct tp_loop *tp_loop_new(const struct tp_loop_params *p);
void tp_loop_free(struct tp_loop *l);

/*
 * Before the loop runs (from the thread that will run it, or before its
 * thread starts): serve fd, handed over by the previous instance with rec.
 * Returns 1 when served; 0 over a connection limit (lowered across the
 * restart): fd is then refused as a new client over it is, told ERR too
 * many connections in a drained close (listener.h); a negative errno when
 * it could not be set up: fd closed (logged).  Whatever the return, fd
 * is the loop's.  Adopting runs before the loop does: its set is this
 * thread's.
 */
int tp_loop_adopt(struct tp_loop *l, int fd, const struct tp_handover_conn *rec);

/* Run until shutdown is over and this loop's connections are freed. Returns 0 or -errno. */
int tp_loop_run(struct tp_loop *l);

/* Wake the loop (any thread). */
void tp_loop_wake(struct tp_loop *l);

/*
 * Any thread: hand back n finished requests of this loop's connections,
 * linked through dnext from first to last.
 */
void tp_loop_post_done(struct tp_loop *l, struct tp_req *first, struct tp_req *last, size_t n);

/* Queue admit callback (queue lock held): r, which was waiting, is admitted. */
void tp_loop_post_admit(struct tp_loop *l, struct tp_req *r);

/* Any thread: the loop's counters, and when it last went round (CLOCK_MONOTONIC ns). */
struct tp_loop_counters {
	uint64_t served;
	uint64_t connections;
	uint64_t last_turn_ns;                       /* 0 once the loop has returned from its shutdown */
	uint64_t turned_away[TP_PEER_REFUSAL_COUNT]; /* closed before their first request, by reason */
};
/* Any thread: l's counters, each read once (relaxed). */
void tp_loop_counters(struct tp_loop *l, struct tp_loop_counters *ret);

/*
 * Start the loop's thread (loops other than 0): it waits at start until the
 * gate opens, and returns at once if it closes.  Returns 0 or -errno.
 */
struct tp_gate;
int tp_loop_start_thread(struct tp_loop *l, struct tp_gate *start);
/* Join the thread of a loop whose tp_loop_start_thread() returned 0. */
void tp_loop_join(struct tp_loop *l);

#endif
