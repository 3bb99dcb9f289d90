/* SPDX-License-Identifier: MIT */
/*
 * loop: one epoll event loop.
 *
 * DESIGN
 * - The loop thread owns its epoll set, its connections and their sockets;
 *   nothing else touches them.  Other threads reach it only through its
 *   mailbox (post.h): a list under a lock, an eventfd written when it goes
 *   from empty to non-empty (a burst of completions costs one wakeup).
 *   Admission notices are drained before completions, as they are posted
 *   (the queue publishes one before a worker can take the node).
 * - Connections are passive (conn.h): only the loop's bookkeeping
 *   (connset.c) moves them between its lists: `ready` (input to go on
 *   with), `dirty` (replies to write), the idle list (least recently active
 *   first) and, once closed, none until their requests are back.
 * - A turn is a fixed sequence of phases (tp_loop_run): wait; events
 *   (accept, read, parse); the mailbox; connections left with input
 *   (fairness budget); the turn's batch pushed in one queue call; waiters
 *   past their deadline; timers (shutdown, tick, accept pause, forced
 *   close); what workers finished meanwhile; one write per connection.
 * - With ECHOs in flight and no socket ready (a non-blocking epoll_wait
 *   first), the loop polls its mailbox up to SPIN_NS before it sleeps,
 *   marked `notified` so workers skip the eventfd write (no two wake-ups).
 * - For IDLE_POLL_NS after epoll_wait last returned events, the loop polls
 *   (timeout 0, yielding the core in between) rather than block: a client
 *   sends its next line within µs, a blocked idle vCPU takes tens to wake.
 * - Timers are the epoll_wait timeout: the earliest of the next waiter
 *   deadline, the tick (loop 0's also after a signal or at its hook's
 *   deadline), an accept pause's or a drain's end (listener.c), the
 *   shutdown grace (connset.c).  Idle, once a second.
 * - Locks: the loop holds none across a phase.  Its mailbox lock is a leaf
 *   (post.h); the queue's is taken by its calls alone; the config hook
 *   takes the server's cfg_lock, never with another held.
 */
#include "loop.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "connset.h"
#include "gate.h"
#include "log.h"
#include "post.h"
#include "proto.h"
#include "queue.h"
#include "signals.h"
#include "scrape.h"

#define MAX_EVENTS 256
#define SCRATCH_BYTES (16 * 1024)
#define TICK_MS 1000
#define LOOP_STACK_BYTES (512 * 1024)
#define SPIN_NS 30000
#define IDLE_POLL_NS 50000
#define SHUTDOWN_GRACE_MS 1000 /* a silent connection's time to send its first request */

struct tp_loop {
	unsigned index;
	struct tp_queue *queue;
	const struct tp_loop_shared *shared;
	struct tp_loop_hooks hooks;
	uint64_t tick_ns;
	int epfd;
	struct tp_source wake_src;
	struct tp_source sig_src;
	int sigfd; /* loop 0 only */
	pthread_t thread;
	struct tp_gate *start; /* its thread runs once the start is whole */

	struct tp_post post;
	struct tp_listen_set listen;
	struct tp_config cfg; /* this loop's copy, refreshed when the generation changes */
	unsigned cfg_gen;
	struct tp_conn_env env; /* what its connections read: now_ns, cfg, batch, ... */
	size_t cheap_inflight;  /* batchable requests of this loop in the pool */

	struct tp_connset conns;
	struct tp_peer_gate gate; /* from cfg */

	uint64_t next_tick_ns;
	bool shutdown_seen;
	uint64_t last_work_ns; /* when epoll_wait last returned events */

	_Atomic uint64_t last_turn_ns;

	char scratch[SCRATCH_BYTES];
};

static int epoll_add(int epfd, int fd, struct tp_source *src)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = src};
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

struct tp_loop *tp_loop_new(const struct tp_loop_params *p)
{
	struct tp_loop *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return NULL;
	l->index = p->index;
	l->queue = p->queue;
	l->shared = p->shared;
	l->hooks = p->hooks;
	l->tick_ns = (p->index == 0 && p->tick_ms ? p->tick_ms : TICK_MS) * 1000000ull;
	l->sigfd = -1;
	atomic_init(&l->last_turn_ns, tp_clock_ns()); /* one that never turns is stuck too */
	l->wake_src.kind = TP_SOURCE_WAKE;
	l->sig_src.kind = TP_SOURCE_SIGNAL;
	l->cfg_gen = atomic_load_explicit(&p->shared->cfg_gen, memory_order_acquire);
	l->hooks.config_copy(l->hooks.ctx, &l->cfg);
	tp_peer_gate_set(&l->gate, &l->cfg);
	l->env = (struct tp_conn_env){.cfg = &l->cfg, .scratch = l->scratch, .scratch_len = SCRATCH_BYTES};
	l->env.metrics = p->metrics;
	l->conns.on_enter = p->hooks.conn_enter;
	l->conns.on_free = p->hooks.conn_leave;
	l->conns.on_closed = p->hooks.conn_closed;
	l->conns.on_named = p->hooks.conn_named;
	l->conns.on_handoff = p->hooks.hand_off;
	l->conns.handoff_ctx = p->hooks.hand_off_ctx;
	l->conns.ctx = p->hooks.ctx;
	l->conns.listen = &l->listen;
	l->listen.metrics = p->metrics;
	r = tp_post_init(&l->post);
	l->epfd = r < 0 ? -1 : epoll_create1(EPOLL_CLOEXEC);
	if (r == 0 && l->epfd < 0)
		r = -errno;
	l->env.epfd = l->epfd;
	if (r == 0)
		r = epoll_add(l->epfd, l->post.evfd, &l->wake_src);
	if (r == 0 && p->index == 0)
		r = (l->sigfd = tp_signals_open()) < 0 ? l->sigfd : epoll_add(l->epfd, l->sigfd, &l->sig_src);
	if (r == 0)
		r = tp_listener_watch(&l->listen, p->listeners, p->nlisteners, l->epfd);
	if (r == 0 && p->index == 0)
		r = tp_listener_watch_other(&l->listen, p->agent->fd, &p->agent->src, "agent check");
	if (r == 0 && p->scrape)
		r = tp_scrape_watch(p->scrape, &l->listen);
	if (r < 0) {
		tp_loop_free(l);
		errno = -r;
		return NULL;
	}
	return l;
}

void tp_loop_free(struct tp_loop *l)
{
	if (!l)
		return;
	tp_req_cache_clear(&l->env.reqs);
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->epfd >= 0)
		close(l->epfd);
	tp_post_release(&l->post);
	free(l);
}

void tp_loop_wake(struct tp_loop *l)
{
	tp_post_wake(&l->post);
}

void tp_loop_post_done(struct tp_loop *l, struct tp_req *first, struct tp_req *last, size_t n)
{
	tp_post_done(&l->post, first, last, n);
}

void tp_loop_post_admit(struct tp_loop *l, struct tp_req *r)
{
	tp_post_admit(&l->post, r);
}

void tp_loop_counters(struct tp_loop *l, struct tp_loop_counters *ret)
{
	ret->served = atomic_load_explicit(&l->env.served, memory_order_relaxed);
	ret->connections = atomic_load_explicit(&l->conns.connections, memory_order_relaxed);
	ret->last_turn_ns = atomic_load_explicit(&l->last_turn_ns, memory_order_relaxed);
	tp_peer_counts_load(l->env.turned_away, ret->turned_away);
}

/* Requests of this loop came back done, linked through dnext. */
static void complete(struct tp_loop *l, struct tp_req *r)
{
	struct tp_connset_tally t = {0};

	while (r)
		r = tp_connset_complete_run(&l->conns, r, &t);
	l->cheap_inflight -= t.cheap;
}

/* Listener callback: a new client. */
static bool take_conn(void *ctx, int fd, const struct sockaddr_storage *peer)
{
	struct tp_loop *l = ctx;
	enum tp_peer_mode mode;

	if (!tp_peer_gate_check(&l->gate, fd, peer, l->env.turned_away, &mode))
		return true; /* not allowed: closed and counted */
	return tp_connset_take(&l->conns, &l->env, l, fd, peer, NULL, mode) != 0; /* < 0: closed */
}

int tp_loop_adopt(struct tp_loop *l, int fd, const struct tp_handover_conn *rec)
{
	tp_conn_env_now(&l->env, tp_clock_ns()); /* it is active now, not idle since boot */
	return tp_connset_take(&l->conns, &l->env, l, fd, NULL, rec, TP_PEER_DIRECT);
}

/* --- the phases of a turn --- */

static int next_timeout_ms(struct tp_loop *l)
{
	uint64_t next = l->next_tick_ns;
	uint64_t d = tp_queue_next_deadline(l->queue);
	uint64_t resume = tp_listener_next_timer(&l->listen);

	if (l->conns.ready)
		return 0;
	if (d && d < next)
		next = d;
	if (resume && resume < next)
		next = resume;
	if (l->conns.grace_until_ns && l->conns.grace_until_ns < next)
		next = l->conns.grace_until_ns;
	if (next <= l->env.now_ns)
		return 0;
	/* Round up: waking a little late is fine, waking early spins. */
	return (int)((next - l->env.now_ns + 999999) / 1000000);
}

static void refresh_config(struct tp_loop *l)
{
	unsigned gen = atomic_load_explicit(&l->shared->cfg_gen, memory_order_acquire);
	if (gen != l->cfg_gen) {
		l->hooks.config_copy(l->hooks.ctx, &l->cfg);
		tp_peer_gate_set(&l->gate, &l->cfg);
		l->cfg_gen = gen;
		tp_conn_env_now(&l->env, l->env.now_ns); /* what derives from the settings */
		tp_connset_limits_changed(&l->conns);    /* any limit may have changed: look at each once */
	}
}

static void refresh_shutting_down(struct tp_loop *l)
{
	l->env.shutting_down = atomic_load_explicit(&l->shared->shutting_down, memory_order_acquire);
	l->env.keeping = l->env.shutting_down && atomic_load(&l->shared->keeping);
	l->env.draining = atomic_load_explicit(&l->shared->draining, memory_order_relaxed);
	/* Grace set as the lines see it: one read later in this turn still has its first request served. */
	if (l->env.shutting_down && !l->conns.shutting_down)
		tp_connset_shutdown(&l->conns, l->env.now_ns + SHUTDOWN_GRACE_MS * 1000000ull);
}

/* Wait for events (spinning or polling first when that pays; see DESIGN). Returns n or -errno. */
static int wait_events(struct tp_loop *l, struct epoll_event *events)
{
	int timeout_ms = next_timeout_ms(l);
	int n = -1;

	if (timeout_ms != 0 && l->cheap_inflight > 0) {
		/* Sockets that are ready come first; spin only when none is. */
		n = epoll_wait(l->epfd, events, MAX_EVENTS, 0);
		if (n == 0 && tp_post_spin(&l->post, SPIN_NS))
			timeout_ms = 0;
	}
	if (n <= 0 && timeout_ms != 0 && tp_clock_ns() - l->last_work_ns < IDLE_POLL_NS) {
		/* Just after work: poll rather than let this vCPU go idle (see DESIGN). */
		(void)sched_yield();
		timeout_ms = 0;
	}
	if (n <= 0)
		n = epoll_wait(l->epfd, events, MAX_EVENTS, timeout_ms);
	if (n > 0)
		l->last_work_ns = tp_clock_ns();
	if (n < 0 && errno != EINTR)
		return -errno;
	tp_conn_env_now(&l->env, tp_clock_ns());
	atomic_store_explicit(&l->last_turn_ns, l->env.now_ns, memory_order_relaxed);
	refresh_config(l);
	refresh_shutting_down(l);
	size_t used = tp_queue_admitted(l->queue), cap = (size_t)l->cfg.queue_size; /* conn.h */
	l->env.unit_room = tp_queue_next_deadline(l->queue) || used >= cap ? 0 : cap - used;
	return n < 0 ? 0 : n;
}

static void handle_events(struct tp_loop *l, const struct epoll_event *events, int n)
{
	uint64_t now_ns = l->env.now_ns;
	for (int i = 0; i < n; i++) {
		struct tp_source *src = events[i].data.ptr;
		switch ((enum tp_source_kind)src->kind) {
		case TP_SOURCE_CONN: {
			struct tp_conn *c = (struct tp_conn *)src;
			tp_connset_act(&l->conns, c, tp_conn_on_event(c, events[i].events));
			break;
		}
		case TP_SOURCE_LISTEN:
			tp_listener_accept(&l->listen, (struct tp_listener *)src, now_ns, take_conn, l);
			break;
		case TP_SOURCE_WAKE:
			tp_post_clear_wake(&l->post);
			if (l->index == 0 && l->hooks.on_wake)
				l->hooks.on_wake(l->hooks.ctx);
			break;
		case TP_SOURCE_SIGNAL:
			for (int signo; (signo = tp_signals_next(l->sigfd)) != 0;)
				l->hooks.on_signal(l->hooks.ctx, signo);
			refresh_shutting_down(l);
			l->next_tick_ns = now_ns; /* the tick learns the deadline a signal set */
			break;
		case TP_SOURCE_AGENT:
			tp_listener_pause_other(&l->listen, src, l->hooks.on_agent(l->hooks.ctx), now_ns);
			break;
		case TP_SOURCE_REFUSED:
			tp_listener_drain(&l->listen, (struct tp_refused *)src);
			break;
		case TP_SOURCE_SCRAPE:
			tp_listener_pause_other(&l->listen, src,
			                        tp_scrape_on_event(src, events[i].events, now_ns), now_ns);
			break;
		}
	}
}

static void drain_posted(struct tp_loop *l)
{
	struct tp_req *done, *admit;

	tp_post_take(&l->post, &done, &admit);
	while (admit) {
		struct tp_req *next = admit->anext;
		tp_connset_act(&l->conns, admit->conn, tp_conn_admitted(admit->conn, admit));
		admit = next;
	}
	complete(l, done);
}

/*
 * Push this turn's requests with one queue call.  Those past the admitted
 * ones wait; their connections pause (admission notices arrive later, on
 * this thread).  Once pushed, qnode.next belongs to the queue and the
 * workers (a node may be taken, run and posted back at once), so the walk
 * afterwards follows bnext, which only this thread touches.
 */
static void push_batch(struct tp_loop *l)
{
	struct tp_req_batch b = l->env.batch;
	struct tp_req *r;
	int admitted;

	l->env.turn++; /* every connection may parse a new share */
	if (b.n == 0)
		return;
	l->env.batch = (struct tp_req_batch){0};
	l->cheap_inflight += b.ncheap;
	complete(l, tp_connset_drop_closed(&l->conns, &b)); /* closed in the turn that read them */
	if (!(r = b.head))
		return;
	admitted = tp_queue_push(l->queue, &r->qnode, b.n);
	for (size_t i = 0; r; i++) {
		struct tp_req *next = r->bnext;
		if (admitted < 0) {
			/* Closed: the server is past its shutdown deadline. */
			tp_req_fail(r, TP_PROTO_SHUTDOWN);
			r->dnext = NULL;
			complete(l, r);
		} else if (i >= (size_t)admitted) {
			tp_conn_waiting(r->conn, r);
		}
		r = next;
	}
}

/* Waiters past their deadline get ERR server busy, on whichever loop owns them. */
static void expire_waiters(struct tp_loop *l)
{
	struct tp_qnode *n;
	uint64_t next;
	uint64_t d = tp_queue_next_deadline(l->queue);

	if (!d || d > l->env.now_ns)
		return;
	tp_queue_expire(l->queue, l->env.now_ns, &n, &next);
	while (n) {
		struct tp_qnode *nn = n->next;
		struct tp_req *r = tp_req_of(n);
		tp_req_fail(r, TP_PROTO_BUSY);
		r->wait_end_us = tp_req_us(l->env.now_ns);
		r->waited = true;
		r->dnext = NULL;
		if (r->conn->loop == l)
			complete(l, r);
		else
			tp_loop_post_done(r->conn->loop, r, r, 1);
		n = nn;
	}
}

static void on_shutdown(struct tp_loop *l)
{
	l->shutdown_seen = true;
	tp_listener_stop(&l->listen); /* the connections' shutdown began with the flag's */
}

static void on_tick(struct tp_loop *l)
{
	uint64_t at = l->index == 0 ? l->hooks.on_tick(l->hooks.ctx, l->env.now_ns) : 0;
	l->next_tick_ns = at && at < l->env.now_ns + l->tick_ns ? at : l->env.now_ns + l->tick_ns;
	if (!l->shutdown_seen && l->cfg.idle_timeout_s > 0)
		tp_connset_sweep_idle(&l->conns, l->env.now_ns,
		                      (uint64_t)l->cfg.idle_timeout_s * 1000000000ull);
	tp_connset_tick(&l->conns, l->env.now_ns);
}

/* Shutdown, the tick, the end of an accept pause or a refusal's drain, the forced close. */
static void run_timers(struct tp_loop *l)
{
	refresh_shutting_down(l);
	if (l->env.shutting_down && !l->shutdown_seen)
		on_shutdown(l);
	if (l->env.now_ns >= l->next_tick_ns)
		on_tick(l);
	tp_connset_grace_check(&l->conns, l->env.now_ns);
	tp_listener_timers(&l->listen, l->env.now_ns);
	if (l->shutdown_seen && atomic_load_explicit(&l->shared->force_close, memory_order_relaxed))
		tp_connset_force_close(&l->conns);
}

static bool finished(struct tp_loop *l)
{
	if (!l->shutdown_seen || l->conns.nalloc > 0)
		return false;
	/* Loop 0 runs the shutdown deadline: it stays until every other loop is done. */
	return l->index != 0 || l->hooks.others_done(l->hooks.ctx);
}

int tp_loop_run(struct tp_loop *l)
{
	struct epoll_event events[MAX_EVENTS];

	tp_conn_env_now(&l->env, tp_clock_ns());
	l->next_tick_ns = l->env.now_ns + l->tick_ns;
	for (;;) {
		int n = wait_events(l, events);
		if (n < 0)
			return n;
		handle_events(l, events, n);
		drain_posted(l);
		tp_connset_run_ready(&l->conns);
		push_batch(l);
		expire_waiters(l);
		run_timers(l);
		if (atomic_load_explicit(&l->post.has_posts, memory_order_acquire))
			drain_posted(l); /* replies done during this turn leave with it */
		tp_connset_run_dirty(&l->conns);
		if (finished(l))
			return 0;
	}
}

static void *loop_thread(void *arg)
{
	struct tp_loop *l = arg;
	if (!tp_gate_wait(l->start))
		return NULL; /* the start failed: nothing was served */
	int r = tp_loop_run(l);
	if (r < 0)
		tp_log(TP_LOG_ERROR, "loop_error", "event loop %u: epoll_wait: %s", l->index, strerror(-r));
	else /* done with the shutdown, not stuck (tp_loop_counters) */
		atomic_store_explicit(&l->last_turn_ns, 0, memory_order_relaxed);
	l->hooks.on_exit(l->hooks.ctx);
	return NULL;
}

int tp_loop_start_thread(struct tp_loop *l, struct tp_gate *start)
{
	pthread_attr_t attr;
	int r;

	l->start = start; /* before the thread reads it */
	pthread_attr_init(&attr);
	(void)pthread_attr_setstacksize(&attr, LOOP_STACK_BYTES);
	r = pthread_create(&l->thread, &attr, loop_thread, l);
	pthread_attr_destroy(&attr);
	return -r;
}

void tp_loop_join(struct tp_loop *l)
{
	pthread_join(l->thread, NULL);
}
