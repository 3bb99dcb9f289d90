/* SPDX-License-Identifier: MIT */
/*
 * conn_end: how a connection ends: closed (its requests may still be in
 * flight), freed once nothing refers to it, and at shutdown answered up to
 * its last line, with a grace for one that has not spoken yet.
 */
#include "conn.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "peer.h"
#include "tp_assert.h"

/* c ends here (logged as event: what); its fd, still open, is the caller's. */
static int end(struct tp_conn *c, const char *event, const char *what)
{
	int fd = c->fd;

	atomic_store_explicit(&c->gone, true, memory_order_relaxed);
	c->closed = true;
	c->fd = -1;
	tp_framer_release(&c->framer);
	tp_peer_hdr_free(c->hdr);
	c->hdr = NULL;
	tp_peer_log(c->addr, c->port, event, what);
	return fd;
}

unsigned tp_conn_close(struct tp_conn *c, const char *reason)
{
	if (c->closed)
		return 0;
	close(end(c, "conn_close", reason)); /* also removes it from epoll */
	return TP_CONN_CLOSED;
}

int tp_conn_let_go(struct tp_conn *c, const char *event, const char *what)
{
	TP_ASSERT(!c->closed);
	(void)epoll_ctl(c->env->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	return end(c, event, what);
}

void tp_conn_free(struct tp_conn *c)
{
	if (!c)
		return;
	TP_ASSERT(tp_conn_unused(c));
	/* Nothing is in flight: every request left is done or never pushed. */
	for (struct tp_req *r = c->ohead, *next; r; r = next) {
		next = r->onext;
		free(r);
	}
	free(c);
}

unsigned tp_conn_shutdown(struct tp_conn *c, uint64_t grace_until_ns)
{
	if (c->closed)
		return 0;
	/*
	 * Its first bytes still undecided (no PROXY header yet, or part of
	 * one), it cannot be handed over as past them: it ends as without
	 * keeping, its header and first request read within the grace.
	 */
	if (tp_conn_kept(c) && c->hdr)
		c->unkept = true;
	if (tp_conn_kept(c))
		return TP_CONN_WRITE; /* its flush hands it over once its replies are out */
	/*
	 * A client whose connection was accepted just before the signal cannot
	 * tell it from one still in the kernel's backlog, which the next
	 * instance would serve: serve its first request rather than close it
	 * unanswered.
	 */
	if (!c->spoke && c->nreqs == 0 && grace_until_ns) {
		c->grace = true;
		c->grace_until_ns = grace_until_ns;
	}
	/*
	 * One last read before deciding it is idle: a line that reached the
	 * socket before the signal is answered, not reset by the close.
	 */
	c->readable = true;
	return (tp_conn_can_read(c) ? TP_CONN_READ : 0) | TP_CONN_WRITE;
}

unsigned tp_conn_grace_check(struct tp_conn *c, uint64_t now_ns)
{
	if (c->grace && now_ns >= c->grace_until_ns) {
		c->grace = false;
		return TP_CONN_WRITE;
	}
	return 0;
}
