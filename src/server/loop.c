/* SPDX-License-Identifier: MIT */
/*
 * loop: one epoll event loop.
 *
 * DESIGN
 * - The loop thread owns its epoll set, its connections and their sockets;
 *   nothing else touches them.  Other threads reach it only through
 *   tp_loop_post_done() / tp_loop_post_admit(): a list under `lock` and an
 *   eventfd written when the list goes from empty to non-empty (`notified`),
 *   so a burst of completions costs one wakeup.
 * - Lock order: the queue lock may be held while taking `lock` (the admit
 *   callback); the loop never takes the queue lock while holding `lock`.
 *   Admission notices and completions share `lock` and are drained
 *   together, admissions first: a request's admission is always posted
 *   before its completion (the queue publishes it before any worker can
 *   take the node), so a connection never sees them out of order.
 * - One turn: wait; handle events (accept, read, parse, push); drain the
 *   posted lists; go on with connections left with input (fairness budget);
 *   expire waiters past their deadline; run the one-second tick; then write
 *   every connection that has replies ready, one writev each.  Replies made
 *   in one turn leave in one write.
 * - With cheap requests (ECHO) in flight and no socket ready (checked with
 *   a non-blocking epoll_wait first), the loop polls `has_posts` for up
 *   to SPIN_NS before it sleeps in epoll_wait, marked `notified` so workers
 *   skip the eventfd write: a reply then reaches its client without two
 *   wake-ups.  Long requests (SLEEP) in flight do not make it spin.
 * - For IDLE_POLL_NS after epoll_wait last returned events, the loop polls
 *   (epoll_wait with timeout 0, yielding the core in between) instead of
 *   blocking.  A request-reply client sends its next line within
 *   microseconds; a blocked thread on an idle vCPU takes tens of
 *   microseconds to wake.  After the polling window the loop blocks as usual.
 * - Timers are the epoll_wait timeout: the earliest of the next waiter
 *   deadline, the next tick and an accept pause.  An idle loop wakes once a
 *   second and burns no CPU.
 * - accept() failing for lack of fds (EMFILE/ENFILE) removes the listening
 *   sockets from this loop's epoll for ACCEPT_PAUSE_MS instead of spinning
 *   on a level-triggered socket that stays readable.
 */
#include "loop.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "queue.h"
#include "server.h"

#define MAX_EVENTS 256
#define SCRATCH_BYTES (16 * 1024)
#define ACCEPT_BURST 64
#define ACCEPT_PAUSE_MS 100
#define TICK_MS 1000
#define LOOP_STACK_BYTES (512 * 1024)

#define SPIN_NS 30000
#define IDLE_POLL_NS 50000
#define FREE_REQS_MAX 4096
#define SHUTDOWN_GRACE_MS 1000 /* a silent connection's time to send its first request */

#define TP_TAG_WAKE 0x57616b65u
#define TP_TAG_SIGNAL 0x5369676eu

struct source {
	uint32_t tag;
};

struct tp_loop {
	struct tp_server *srv;
	unsigned index;
	int epfd;
	struct source wake_src;
	int evfd;
	struct source sig_src;
	int sigfd; /* loop 0 only */
	pthread_t thread;
	bool has_thread;

	uint64_t now_ns;
	struct tp_config cfg; /* this loop's copy, refreshed when the generation changes */
	unsigned cfg_gen;

	pthread_mutex_t lock;
	struct tp_req *done_head, *done_tail;
	struct tp_req *admit_head, *admit_tail;
	bool notified;                /* the loop is awake or spinning: no eventfd write needed */
	atomic_bool has_posts;        /* the lists above are non-empty (for the spin) */
	size_t cheap_inflight;        /* batchable requests of this loop in the pool (loop only) */
	struct tp_req *bhead, *btail; /* this turn's parsed requests, not yet pushed */
	size_t bn;
	struct tp_conn *bconns;   /* connections with requests in it */
	struct tp_req *free_reqs; /* recycled request slots, linked through bnext */
	size_t nfree_reqs;

	struct tp_conn *ready;
	struct tp_conn *dirty;
	struct tp_conn *lru_head, *lru_tail;
	size_t nconns; /* open connections */
	size_t nalloc; /* connections not yet freed (closed ones wait for their requests) */

	bool accepting;
	uint64_t accept_resume_ns;
	uint64_t emfile_logged_ns;
	uint64_t next_tick_ns;
	bool shutdown_seen;
	uint64_t last_work_ns; /* when epoll_wait last returned events */

	_Atomic uint64_t served;
	_Atomic uint64_t busy;
	_Atomic uint64_t connections;
	_Atomic uint64_t last_turn_ns;

	char scratch[SCRATCH_BYTES];
};

static int listen_ctl(struct tp_loop *l, int op)
{
	size_t n;
	struct tp_listener *ls = tp_server_listeners(l->srv, &n);

	for (size_t i = 0; i < n; i++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &ls[i]};
		if (epoll_ctl(l->epfd, op, ls[i].fd, op == EPOLL_CTL_DEL ? NULL : &ev) < 0 &&
		    op != EPOLL_CTL_DEL)
			return -errno;
	}
	return 0;
}

struct tp_loop *tp_loop_new(struct tp_server *srv, unsigned index)
{
	struct tp_loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev;
	int r;

	if (!l)
		return NULL;
	l->srv = srv;
	l->index = index;
	l->sigfd = -1;
	l->evfd = -1;
	pthread_mutex_init(&l->lock, NULL);
	tp_server_config_copy(srv, &l->cfg);
	l->cfg_gen = tp_server_config_gen(srv);
	l->wake_src.tag = TP_TAG_WAKE;
	l->sig_src.tag = TP_TAG_SIGNAL;

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		goto fail;
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->evfd < 0)
		goto fail;
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &l->wake_src};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) < 0)
		goto fail;
	if (index == 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		sigaddset(&set, SIGUSR1);
		sigaddset(&set, SIGUSR2);
		/*
		 * Whatever this signalfd reads must not take its default action
		 * (SIGUSR1/2 would kill the process).  Loop 0 is created before
		 * any other thread, which all inherit this mask.
		 */
		(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
		l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
		if (l->sigfd < 0)
			goto fail;
		ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &l->sig_src};
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ev) < 0)
			goto fail;
	}
	r = listen_ctl(l, EPOLL_CTL_ADD);
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	l->accepting = true;
	return l;
fail:
	r = errno;
	tp_loop_free(l);
	errno = r;
	return NULL;
}

void tp_loop_free(struct tp_loop *l)
{
	if (!l)
		return;
	while (l->free_reqs) {
		struct tp_req *r = l->free_reqs;
		l->free_reqs = r->bnext;
		free(r);
	}
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->evfd >= 0)
		close(l->evfd);
	if (l->epfd >= 0)
		close(l->epfd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void tp_loop_wake(struct tp_loop *l)
{
	uint64_t one = 1;
	ssize_t w = write(l->evfd, &one, sizeof(one));
	(void)w; /* EAGAIN: the counter is already non-zero, the loop will wake */
}

/* Lock held: something was posted. Returns whether the poster must write the eventfd. */
static bool mark_posted(struct tp_loop *l)
{
	bool wake = !l->notified;
	l->notified = true;
	atomic_store_explicit(&l->has_posts, true, memory_order_release);
	return wake;
}

void tp_loop_post_done(struct tp_loop *l, struct tp_req *first, struct tp_req *last, size_t n)
{
	bool wake;

	if (n == 0)
		return;
	last->qnode.next = NULL;
	pthread_mutex_lock(&l->lock);
	if (l->done_tail)
		l->done_tail->qnode.next = &first->qnode;
	else
		l->done_head = first;
	l->done_tail = last;
	wake = mark_posted(l);
	pthread_mutex_unlock(&l->lock);
	if (wake)
		tp_loop_wake(l);
}

void tp_loop_post_admit(struct tp_loop *l, struct tp_req *r)
{
	bool wake;

	r->anext = NULL;
	pthread_mutex_lock(&l->lock);
	if (l->admit_tail)
		l->admit_tail->anext = r;
	else
		l->admit_head = r;
	l->admit_tail = r;
	wake = mark_posted(l);
	pthread_mutex_unlock(&l->lock);
	if (wake)
		tp_loop_wake(l);
}

static void drain_posted(struct tp_loop *l)
{
	struct tp_req *done, *admit;

	pthread_mutex_lock(&l->lock);
	done = l->done_head;
	admit = l->admit_head;
	l->done_head = l->done_tail = NULL;
	l->admit_head = l->admit_tail = NULL;
	l->notified = false;
	atomic_store_explicit(&l->has_posts, false, memory_order_relaxed);
	pthread_mutex_unlock(&l->lock);

	while (admit) {
		struct tp_req *next = admit->anext;
		tp_conn_admitted(admit->conn, admit);
		admit = next;
	}
	while (done) {
		struct tp_req *next = done->qnode.next ? tp_req_of(done->qnode.next) : NULL;
		tp_conn_complete(done->conn, done);
		done = next;
	}
}

uint64_t tp_loop_now_ns(const struct tp_loop *l)
{
	return l->now_ns;
}

const struct tp_config *tp_loop_config(const struct tp_loop *l)
{
	return &l->cfg;
}

struct tp_server *tp_loop_server(const struct tp_loop *l)
{
	return l->srv;
}

int tp_loop_epfd(const struct tp_loop *l)
{
	return l->epfd;
}

char *tp_loop_scratch(struct tp_loop *l, size_t *ret_len)
{
	*ret_len = sizeof(l->scratch);
	return l->scratch;
}

void tp_loop_mark_ready(struct tp_loop *l, struct tp_conn *c)
{
	if (c->in_ready)
		return;
	c->in_ready = true;
	c->ready_next = l->ready;
	l->ready = c;
}

void tp_loop_mark_dirty(struct tp_loop *l, struct tp_conn *c)
{
	if (c->in_dirty)
		return;
	c->in_dirty = true;
	c->dirty_next = l->dirty;
	l->dirty = c;
}

static void lru_unlink(struct tp_loop *l, struct tp_conn *c)
{
	if (c->lru_prev)
		c->lru_prev->lru_next = c->lru_next;
	else
		l->lru_head = c->lru_next;
	if (c->lru_next)
		c->lru_next->lru_prev = c->lru_prev;
	else
		l->lru_tail = c->lru_prev;
	c->lru_prev = c->lru_next = NULL;
}

static void lru_append(struct tp_loop *l, struct tp_conn *c)
{
	c->lru_next = NULL;
	c->lru_prev = l->lru_tail;
	if (l->lru_tail)
		l->lru_tail->lru_next = c;
	else
		l->lru_head = c;
	l->lru_tail = c;
}

void tp_loop_touch(struct tp_loop *l, struct tp_conn *c)
{
	c->last_active_ns = l->now_ns;
	if (l->lru_tail != c) {
		lru_unlink(l, c);
		lru_append(l, c);
	}
}

void tp_loop_conn_closed(struct tp_loop *l, struct tp_conn *c)
{
	lru_unlink(l, c);
	l->nconns--;
	atomic_store_explicit(&l->connections, l->nconns, memory_order_relaxed);
}

void tp_loop_count_busy(struct tp_loop *l)
{
	atomic_fetch_add_explicit(&l->busy, 1, memory_order_relaxed);
}

void tp_loop_count_served(struct tp_loop *l, size_t n)
{
	atomic_fetch_add_explicit(&l->served, n, memory_order_relaxed);
}

void tp_loop_counters(struct tp_loop *l, struct tp_loop_counters *ret)
{
	ret->served = atomic_load_explicit(&l->served, memory_order_relaxed);
	ret->busy = atomic_load_explicit(&l->busy, memory_order_relaxed);
	ret->connections = atomic_load_explicit(&l->connections, memory_order_relaxed);
	ret->last_turn_ns = atomic_load_explicit(&l->last_turn_ns, memory_order_relaxed);
}

/* Refuse a client over max_connections: one line, then close. */
static void refuse(int fd)
{
	const char *msg = tp_proto_error_line(TP_PROTO_TOO_MANY);
	ssize_t w = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w; /* best effort: the client may already be gone */
	close(fd);
}

static void pause_accept(struct tp_loop *l, int err)
{
	if (!l->accepting)
		return;
	(void)listen_ctl(l, EPOLL_CTL_DEL);
	l->accepting = false;
	l->accept_resume_ns = l->now_ns + ACCEPT_PAUSE_MS * 1000000ull;
	/* At most one line every 10 s: an fd flood must not become a log flood. */
	if (!l->emfile_logged_ns || l->now_ns - l->emfile_logged_ns > 10000000000ull) {
		l->emfile_logged_ns = l->now_ns;
		tp_log(TP_LOG_WARNING, "accept_paused",
		       "accept: %s; not accepting for %d ms (raise LimitNOFILE?)", strerror(err),
		       ACCEPT_PAUSE_MS);
	}
}

static void on_accept(struct tp_loop *l, struct tp_listener *ls)
{
	for (int i = 0; i < ACCEPT_BURST && l->accepting; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(ls->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				pause_accept(l, errno);
				return;
			}
			tp_log(TP_LOG_ERROR, "accept_error", "accept on %s: %s", ls->name, strerror(errno));
			return;
		}
		if (!tp_server_conn_enter(l->srv)) {
			refuse(fd);
			continue;
		}
		struct tp_conn *c = tp_conn_new(l, fd, &peer);
		if (!c) {
			tp_server_conn_leave(l->srv);
			tp_log(TP_LOG_WARNING, "accept_error", "cannot set up a connection: %s",
			       strerror(errno));
			continue;
		}
		l->nconns++;
		l->nalloc++;
		atomic_store_explicit(&l->connections, l->nconns, memory_order_relaxed);
		c->last_active_ns = l->now_ns;
		lru_append(l, c);
	}
}

/* Waiters past their deadline get ERR server busy, on whichever loop owns them. */
static void expire_waiters(struct tp_loop *l)
{
	struct tp_qnode *n;
	uint64_t next;
	struct tp_queue *q = tp_server_queue(l->srv);
	uint64_t d = tp_queue_next_deadline(q);

	if (!d || d > l->now_ns)
		return;
	tp_queue_expire(q, l->now_ns, &n, &next);
	while (n) {
		struct tp_qnode *nn = n->next;
		struct tp_req *r = tp_req_of(n);
		tp_req_fail(r, TP_PROTO_BUSY);
		if (r->conn->loop == l)
			tp_conn_complete(r->conn, r);
		else
			tp_loop_post_done(r->conn->loop, r, r, 1);
		n = nn;
	}
}

/* Close connections idle longer than idle_timeout_s (oldest first). */
static void sweep_idle(struct tp_loop *l)
{
	uint64_t limit;

	if (l->cfg.idle_timeout_s <= 0)
		return;
	limit = (uint64_t)l->cfg.idle_timeout_s * 1000000000ull;
	while (l->lru_head && l->now_ns - l->lru_head->last_active_ns >= limit) {
		struct tp_conn *c = l->lru_head;
		if (c->ninflight > 0) {
			/* Work in progress is not idleness: look again a full period later. */
			tp_loop_touch(l, c);
			continue;
		}
		tp_conn_close(c, "idle timeout");
	}
}

static void on_shutdown(struct tp_loop *l)
{
	l->shutdown_seen = true;
	if (l->accepting)
		(void)listen_ctl(l, EPOLL_CTL_DEL);
	l->accepting = false;
	for (struct tp_conn *c = l->lru_head; c; c = c->lru_next)
		tp_conn_shutdown(c, l->now_ns + SHUTDOWN_GRACE_MS * 1000000ull);
}

static void check_grace(struct tp_loop *l)
{
	for (struct tp_conn *c = l->lru_head; c; c = c->lru_next)
		tp_conn_grace_check(c, l->now_ns);
}

static void force_close_all(struct tp_loop *l)
{
	while (l->lru_head)
		tp_conn_close(l->lru_head, "shutdown timeout");
}

static void on_signalfd(struct tp_loop *l)
{
	struct signalfd_siginfo si;
	while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		tp_server_on_signal(l->srv, (int)si.ssi_signo);
}

static int next_timeout_ms(struct tp_loop *l)
{
	uint64_t next = l->next_tick_ns;
	uint64_t d = tp_queue_next_deadline(tp_server_queue(l->srv));

	if (l->ready)
		return 0;
	if (d && d < next)
		next = d;
	if (!l->accepting && !l->shutdown_seen && l->accept_resume_ns < next)
		next = l->accept_resume_ns;
	if (next <= l->now_ns)
		return 0;
	/* Round up: waking a little late is fine, waking early spins. */
	return (int)((next - l->now_ns + 999999) / 1000000);
}

/*
 * Cheap work is in flight and the loop is about to sleep: poll for its
 * completion a little first.  Returns true when something was posted.
 */
static bool spin_for_posts(struct tp_loop *l)
{
	bool have;

	pthread_mutex_lock(&l->lock);
	have = l->done_head || l->admit_head;
	l->notified = true; /* posters need not write the eventfd while we poll */
	pthread_mutex_unlock(&l->lock);
	if (have)
		return true;
	uint64_t end = tp_clock_ns() + SPIN_NS;
	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(&l->has_posts, memory_order_acquire))
			return true;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		/*
		 * Yield now and then: on a machine with more runnable threads
		 * than cores, the thread this one waits for may need this core.
		 */
		if ((i & 63) == 0 && (sched_yield(), tp_clock_ns() >= end))
			break;
	}
	/* Not notified any more: the next post must write the eventfd again. */
	pthread_mutex_lock(&l->lock);
	have = l->done_head || l->admit_head;
	l->notified = have;
	pthread_mutex_unlock(&l->lock);
	return have;
}

struct tp_req *tp_loop_req_get(struct tp_loop *l)
{
	struct tp_req *r = l->free_reqs;
	if (r) {
		l->free_reqs = r->bnext;
		l->nfree_reqs--;
	}
	return r;
}

void tp_loop_req_put(struct tp_loop *l, struct tp_req *r)
{
	/* Enough for a few turns of full batches; beyond that give memory back. */
	if (l->nfree_reqs >= FREE_REQS_MAX) {
		free(r);
		return;
	}
	r->bnext = l->free_reqs;
	l->free_reqs = r;
	l->nfree_reqs++;
}

void tp_loop_cheap_done(struct tp_loop *l)
{
	l->cheap_inflight--;
}

void tp_loop_batch_add(struct tp_loop *l, struct tp_req *r)
{
	r->qnode.next = NULL;
	r->bnext = NULL;
	if (l->btail) {
		l->btail->qnode.next = &r->qnode;
		l->btail->bnext = r;
	} else {
		l->bhead = r;
	}
	l->btail = r;
	l->bn++;
	if (r->qnode.batchable)
		l->cheap_inflight++;
	if (!r->conn->in_batch_list) {
		r->conn->in_batch_list = true;
		r->conn->batch_next = l->bconns;
		l->bconns = r->conn;
	}
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
	struct tp_req *r = l->bhead;
	size_t n = l->bn;
	int admitted;

	for (struct tp_conn *c = l->bconns, *next; c; c = next) {
		next = c->batch_next;
		c->in_batch_list = false;
		tp_conn_turn_done(c);
	}
	l->bconns = NULL;
	if (n == 0)
		return;
	l->bhead = l->btail = NULL;
	l->bn = 0;

	admitted = tp_queue_push(tp_server_queue(l->srv), &r->qnode, n);
	for (size_t i = 0; r; i++) {
		struct tp_req *next = r->bnext;
		if (admitted < 0) {
			/* Closed: the server is past its shutdown deadline. */
			tp_req_fail(r, TP_PROTO_SHUTDOWN);
			tp_conn_complete(r->conn, r);
		} else if (i >= (size_t)admitted) {
			tp_conn_waiting(r->conn, r);
		}
		r = next;
	}
}

static void refresh_config(struct tp_loop *l)
{
	unsigned gen = tp_server_config_gen(l->srv);
	if (gen != l->cfg_gen) {
		tp_server_config_copy(l->srv, &l->cfg);
		l->cfg_gen = gen;
	}
}

static bool finished(struct tp_loop *l)
{
	if (!l->shutdown_seen || l->nalloc > 0)
		return false;
	/* Loop 0 runs the shutdown deadline: it stays until every other loop is done. */
	return l->index != 0 || tp_server_all_loops_done(l->srv);
}

static uint64_t tick_ns(const struct tp_loop *l)
{
	return (l->index == 0 ? tp_server_tick_ms(l->srv) : TICK_MS) * 1000000ull;
}

int tp_loop_run(struct tp_loop *l)
{
	struct epoll_event events[MAX_EVENTS];

	l->now_ns = tp_clock_ns();
	l->next_tick_ns = l->now_ns + tick_ns(l);
	for (;;) {
		int timeout = next_timeout_ms(l);
		int n = -1;
		if (timeout != 0 && l->cheap_inflight > 0) {
			/* Sockets that are ready come first; spin only when none is. */
			n = epoll_wait(l->epfd, events, MAX_EVENTS, 0);
			if (n == 0 && spin_for_posts(l))
				timeout = 0;
		}
		if (n <= 0 && timeout != 0 && tp_clock_ns() - l->last_work_ns < IDLE_POLL_NS) {
			/* Just after work: poll rather than let this vCPU go idle (see DESIGN). */
			sched_yield();
			timeout = 0;
		}
		if (n <= 0)
			n = epoll_wait(l->epfd, events, MAX_EVENTS, timeout);
		if (n > 0)
			l->last_work_ns = tp_clock_ns();
		if (n < 0 && errno != EINTR)
			return -errno;
		l->now_ns = tp_clock_ns();
		atomic_store_explicit(&l->last_turn_ns, l->now_ns, memory_order_relaxed);
		refresh_config(l);

		for (int i = 0; i < n; i++) {
			struct source *src = events[i].data.ptr;
			switch (src->tag) {
			case TP_TAG_CONN:
				tp_conn_on_event((struct tp_conn *)src, events[i].events);
				break;
			case TP_TAG_LISTEN:
				on_accept(l, (struct tp_listener *)src);
				break;
			case TP_TAG_WAKE: {
				uint64_t v;
				ssize_t r = read(l->evfd, &v, sizeof(v));
				(void)r;
				break;
			}
			case TP_TAG_SIGNAL:
				on_signalfd(l);
				break;
			}
		}
		drain_posted(l);

		/* Connections with input left from their budget, or just unpaused. */
		struct tp_conn *c = l->ready;
		l->ready = NULL;
		while (c) {
			struct tp_conn *next = c->ready_next;
			c->in_ready = false;
			if (c->closed)
				tp_conn_release(c);
			else
				tp_conn_process(c);
			c = next;
		}
		push_batch(l);

		expire_waiters(l);

		if (tp_server_shutting_down(l->srv) && !l->shutdown_seen)
			on_shutdown(l);
		if (l->now_ns >= l->next_tick_ns) {
			l->next_tick_ns = l->now_ns + tick_ns(l);
			if (l->index == 0)
				tp_server_tick(l->srv, l->now_ns);
			if (!l->shutdown_seen)
				sweep_idle(l);
			else
				check_grace(l);
		}
		if (!l->accepting && !l->shutdown_seen && l->now_ns >= l->accept_resume_ns) {
			if (listen_ctl(l, EPOLL_CTL_ADD) == 0)
				l->accepting = true;
		}
		if (l->shutdown_seen && tp_server_force_close(l->srv))
			force_close_all(l);

		c = l->dirty;
		l->dirty = NULL;
		while (c) {
			struct tp_conn *next = c->dirty_next;
			c->in_dirty = false;
			if (c->closed)
				tp_conn_release(c);
			else
				tp_conn_flush(c);
			c = next;
		}
		if (finished(l))
			return 0;
	}
}

void tp_loop_conn_freed(struct tp_loop *l)
{
	l->nalloc--;
	/*
	 * The place under max_connections is given back only now: a closed
	 * connection keeps its requests (and their memory) until the queue and
	 * the workers are done with them, so a client that resets and reconnects
	 * must not get a new place before then.
	 */
	tp_server_conn_leave(l->srv);
}

static void *loop_thread(void *arg)
{
	struct tp_loop *l = arg;
	int r = tp_loop_run(l);
	if (r < 0)
		tp_log(TP_LOG_ERROR, "loop_error", "event loop %u: epoll_wait: %s", l->index, strerror(-r));
	tp_server_loop_exited(l->srv);
	return NULL;
}

int tp_loop_start_thread(struct tp_loop *l)
{
	pthread_attr_t attr;
	int r;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, LOOP_STACK_BYTES);
	r = pthread_create(&l->thread, &attr, loop_thread, l);
	pthread_attr_destroy(&attr);
	if (r)
		return -r;
	l->has_thread = true;
	return 0;
}

void tp_loop_join(struct tp_loop *l)
{
	if (l->has_thread)
		pthread_join(l->thread, NULL);
	l->has_thread = false;
}
