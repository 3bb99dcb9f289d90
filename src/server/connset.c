/* SPDX-License-Identifier: MIT */
/*
 * connset: a loop's lists of connections.  A connection is on the ready
 * and dirty lists at most once each (in_ready, in_dirty), on the idle list
 * while open, and on no list once closed, except that a pass over a list
 * may still hold it: it is freed only when it is on neither.
 */
#include "connset.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "config.h"
#include "listener.h"
#include "metrics.h"

#include "tp_assert.h"

#define UNREAD_NS 1000000000ull /* no reply taken for this long: its client is not reading */

static void lru_unlink(struct tp_connset *s, struct tp_conn *c)
{
	if (c->lru_prev)
		c->lru_prev->lru_next = c->lru_next;
	else
		s->lru_head = c->lru_next;
	if (c->lru_next)
		c->lru_next->lru_prev = c->lru_prev;
	else
		s->lru_tail = c->lru_prev;
	c->lru_prev = c->lru_next = NULL;
}

static void lru_append(struct tp_connset *s, struct tp_conn *c)
{
	c->lru_next = NULL;
	c->lru_prev = s->lru_tail;
	if (s->lru_tail)
		s->lru_tail->lru_next = c;
	else
		s->lru_head = c;
	s->lru_tail = c;
}

static void touch(struct tp_connset *s, struct tp_conn *c, uint64_t now_ns)
{
	c->last_active_ns = now_ns;
	if (s->lru_tail != c) {
		lru_unlink(s, c);
		lru_append(s, c);
	}
}

void tp_connset_add(struct tp_connset *s, struct tp_conn *c, uint64_t now_ns)
{
	s->nconns++;
	s->nalloc++;
	atomic_store_explicit(&s->connections, s->nconns, memory_order_relaxed);
	c->last_active_ns = now_ns;
	lru_append(s, c);
}

int tp_connset_take(struct tp_connset *s, struct tp_conn_env *env, struct tp_loop *loop, int fd,
                    const struct sockaddr_storage *peer, const struct tp_handover_conn *rec,
                    enum tp_peer_mode mode)
{
	struct sockaddr_storage from;
	struct tp_qgroup *group;
	struct tp_conn *c;

	/*
	 * A handed-over connection counts as its client's address, as it did
	 * before, but is not held to that address's cap again: it was admitted
	 * once (a trusted proxy's LOCAL or UNKNOWN connections all carry the
	 * proxy's own address, which the cap never counted).  A connection
	 * still to send its PROXY header counts under no address (conncap.h)
	 * until the header names it, then is capped there.
	 */
	if (rec)
		tp_conn_handover_peer(rec, &from);
	if (!s->on_enter(s->ctx, rec ? &from : mode == TP_PEER_EXPECT ? NULL : peer, rec != NULL, &group)) {
		if (rec) /* over a limit lowered across the restart: refused as a new client over it */
			tp_listener_refuse(s->listen, fd, env->now_ns);
		return 0;
	}
	c = rec ? tp_conn_adopt(env, loop, fd, rec) : tp_conn_new(env, loop, fd, peer, mode);
	if (!c) {
		int r = errno ? -errno : -ENOMEM;
		s->on_free(s->ctx, group);
		char who[64] = "a handed-over client";
		uint16_t port;
		if (!rec && peer)
			tp_peer_addr_text(peer, who, sizeof(who), &port);
		tp_log(TP_LOG_WARNING, "accept_error", "cannot set up the connection of %s: %s(): %s", who,
		       rec ? "tp_conn_adopt" : "tp_conn_new", strerror(-r));
		return r;
	}
	tp_qflow_init(&c->flow, group);
	tp_connset_add(s, c, env->now_ns);
	if (env->metrics)
		tp_metrics_add(rec ? &env->metrics->adopted : &env->metrics->accepted, 1);
	if (rec)
		tp_connset_act(s, c, TP_CONN_READ); /* its carried input first */
	if (s->shutting_down)                       /* accepted in the turn the shutdown began */
		tp_connset_act(s, c, tp_conn_shutdown(c, s->grace_until_ns));
	return 1;
}

/*
 * Keeping: c has answered all it read; hand it over.  When that is refused
 * (keep_connections_max), it ends as it would without keeping: a silent
 * client's first request is still served within the grace.
 */
static unsigned hand_off(struct tp_connset *s, struct tp_conn *c)
{
	struct tp_handover_conn rec;
	int fd = tp_conn_handover_record(c, &rec);

	if (fd >= 0 && s->on_handoff && s->on_handoff(s->handoff_ctx, fd, &rec))
		return tp_conn_handed_off(c);
	c->unkept = true;
	return tp_conn_shutdown(c, s->grace_until_ns);
}

/*
 * Free c once nothing refers to it: closed, no request in flight, on none
 * of the lists.  Only then is its place under max_connections given back:
 * a closed connection keeps its requests (and their memory) until the
 * queue and the workers are done with them, so a client that resets and
 * reconnects must not get a new place before then.
 */
static void release(struct tp_connset *s, struct tp_conn *c)
{
	if (!tp_conn_unused(c) || c->in_ready || c->in_dirty)
		return;
	struct tp_qgroup *group = c->flow.group;
	tp_conn_free(c);
	TP_ASSERT(s->nalloc > 0);
	s->nalloc--;
	s->on_free(s->ctx, group);
}

/*
 * The client a PROXY header named is over its address's cap: refused as a
 * client at accept is (one line, then a drained close: see listener.h);
 * what came with the header is not answered.
 */
static unsigned refuse_named(struct tp_connset *s, struct tp_conn *c)
{
	int fd = tp_conn_let_go(c, "conn_close", "over limits.max_connections_per_address");

	tp_listener_refuse(s->listen, fd, c->env->now_ns);
	return TP_CONN_CLOSED;
}

void tp_connset_act(struct tp_connset *s, struct tp_conn *c, unsigned ev)
{
	if (!ev && !c->closed)
		return; /* most completions: a request done behind its connection's head */
	if ((ev & TP_CONN_NAMED) && !c->closed && !s->on_named(s->ctx, c))
		ev |= refuse_named(s, c);
	if ((ev & TP_CONN_HANDOFF) && !c->closed)
		ev |= hand_off(s, c);
	if (ev & TP_CONN_CLOSED) {
		/* Its queued requests give their places back now, not when a worker reaches them. */
		if (c->ninflight > 0 && s->on_closed)
			s->on_closed(s->ctx, c);
		lru_unlink(s, c);
		TP_ASSERT(s->nconns > 0);
		s->nconns--;
		s->closes++;
		atomic_store_explicit(&s->connections, s->nconns, memory_order_relaxed);
	}
	if (c->closed) {
		release(s, c);
		return;
	}
	if (ev & TP_CONN_ACTIVE)
		touch(s, c, c->env->now_ns);
	if ((ev & TP_CONN_READ) && !c->in_ready) {
		c->in_ready = true;
		c->ready_next = s->ready;
		s->ready = c;
	}
	if ((ev & TP_CONN_WRITE) && !c->in_dirty) {
		c->in_dirty = true;
		c->dirty_next = s->dirty;
		s->dirty = c;
	}
}

struct tp_req *tp_connset_complete_run(struct tp_connset *s, struct tp_req *r, struct tp_connset_tally *tally)
{
	struct tp_conn *c = r->conn;
	unsigned ev = 0;

	do {
		struct tp_req *next = r->dnext;
		tally->cheap += r->qnode.batchable;
		ev |= tp_conn_complete(c, r);
		r = next;
	} while (r && r->conn == c);
	/* Most requests are done behind their connection's head: nothing to act on. */
	if (ev || c->closed)
		tp_connset_act(s, c, ev);
	return r;
}

struct tp_req *tp_connset_drop_closed(struct tp_connset *s, struct tp_req_batch *b)
{
	struct tp_req *r = b->head, *dropped = NULL, **dtail = &dropped;
	struct tp_req_batch kept = {0};

	if (s->closes == s->closes_seen)
		return NULL;
	s->closes_seen = s->closes;
	while (r) {
		struct tp_req *next = r->bnext;
		if (r->conn->closed) {
			tp_req_fail(r, TP_PROTO_SHUTDOWN); /* never written: the client is gone */
			r->dnext = NULL;
			*dtail = r;
			dtail = &r->dnext;
		} else {
			tp_req_batch_add(&kept, r);
			kept.lines += tp_req_lines(r) - 1; /* a unit's other lines */
		}
		r = next;
	}
	*b = kept;
	return dropped;
}

void tp_connset_run_ready(struct tp_connset *s)
{
	struct tp_conn *c = s->ready;

	s->ready = NULL;
	while (c) {
		struct tp_conn *next = c->ready_next;
		c->in_ready = false;
		tp_connset_act(s, c, c->closed ? 0 : tp_conn_process(c));
		c = next;
	}
}

void tp_connset_run_dirty(struct tp_connset *s)
{
	struct tp_conn *c = s->dirty;

	s->dirty = NULL;
	while (c) {
		struct tp_conn *next = c->dirty_next;
		c->in_dirty = false;
		tp_connset_act(s, c, c->closed ? 0 : tp_conn_flush(c, c->in_ready));
		c = next;
	}
}

void tp_connset_sweep_idle(struct tp_connset *s, uint64_t now_ns, uint64_t limit_ns)
{
	while (s->lru_head && now_ns - s->lru_head->last_active_ns >= limit_ns) {
		struct tp_conn *c = s->lru_head;
		if (c->ninflight > 0) {
			/* Work in progress is not idleness: look again a full period later. */
			touch(s, c, now_ns);
			continue;
		}
		tp_connset_act(s, c, tp_conn_close(c, "idle timeout"));
	}
}

void tp_connset_shutdown(struct tp_connset *s, uint64_t grace_until_ns)
{
	s->shutting_down = true;
	s->grace_until_ns = grace_until_ns;
	for (struct tp_conn *c = s->lru_head; c; c = c->lru_next)
		tp_connset_act(s, c, tp_conn_shutdown(c, grace_until_ns));
}

/* c has replies ready that its socket takes no more of: its client is not reading them. */
static bool not_reading(const struct tp_conn *c)
{
	return c->ohead && c->ohead->done && !c->writable;
}

/*
 * Shutting down: the connections whose clients have taken no reply for
 * UNREAD_NS hold the shutdown (and, keeping, every connection's hand-over)
 * until its deadline.  Said once, with how many and the longest silent.
 */
static void unread_check(struct tp_connset *s, uint64_t now_ns)
{
	const struct tp_conn *longest = NULL;
	size_t n = 0;
	char hp[80];

	if (s->unread_told)
		return;
	for (const struct tp_conn *c = s->lru_head; c; c = c->lru_next)
		if (not_reading(c) && now_ns - c->last_active_ns >= UNREAD_NS && n++ == 0)
			longest = c; /* least recently active first */
	if (n == 0)
		return;
	s->unread_told = true;
	tp_log_host_port(hp, sizeof(hp), longest->addr, longest->port);
	tp_log(TP_LOG_WARNING, "stop",
	       "shutdown waits on %zu %s (longest stalled: %s); %s closed after shutdown.timeout_s", n,
	       n == 1 ? "connection whose client does not read its replies"
	              : "connections whose clients do not read their replies",
	       hp, n == 1 ? "it is" : "they are");
}

/* The PROXY headers overdue: closed (counted in env->turned_away). */
static void header_check(struct tp_connset *s, uint64_t now_ns)
{
	if (!s->lru_head || !s->lru_head->env->cfg->proxy_protocol)
		return; /* no PROXY headers expected here */
	for (struct tp_conn *c = s->lru_head, *next; c; c = next) {
		next = c->lru_next; /* a closed connection may leave the list */
		if (!c->hdr || c->hdr->mode != TP_PEER_EXPECT || now_ns < c->hdr->deadline_ns)
			continue;
		atomic_fetch_add_explicit(&c->env->turned_away[TP_PEER_TIMEOUT], 1, memory_order_relaxed);
		tp_connset_act(s, c, tp_conn_close(c, tp_peer_refusal_name(TP_PEER_TIMEOUT)));
	}
}

void tp_connset_tick(struct tp_connset *s, uint64_t now_ns)
{
	header_check(s, now_ns);
	if (s->shutting_down)
		unread_check(s, now_ns);
}

void tp_connset_limits_changed(struct tp_connset *s)
{
	for (struct tp_conn *c = s->lru_head; c; c = c->lru_next)
		tp_connset_act(s, c, tp_conn_limits_changed(c));
}

void tp_connset_grace_check(struct tp_connset *s, uint64_t now_ns)
{
	if (!s->grace_until_ns || now_ns < s->grace_until_ns)
		return;
	s->grace_until_ns = 0;
	for (struct tp_conn *c = s->lru_head; c; c = c->lru_next)
		tp_connset_act(s, c, tp_conn_grace_check(c, now_ns));
}

void tp_connset_force_close(struct tp_connset *s)
{
	size_t unread = 0;

	while (s->lru_head) {
		unread += not_reading(s->lru_head);
		tp_connset_act(s, s->lru_head, tp_conn_close(s->lru_head, "shutdown timeout"));
	}
	if (unread)
		tp_log(TP_LOG_WARNING, "stop", "shutdown timeout: closed %zu %s", unread,
		       unread == 1 ? "connection whose client did not read its replies"
		                   : "connections whose clients did not read their replies");
}
